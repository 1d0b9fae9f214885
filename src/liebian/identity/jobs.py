from __future__ import annotations

from liebian.db.session import session_scope
from liebian.engine import eventstore, warehouse
from liebian.identity import service
from liebian.ports import Job


def identity_sync() -> dict[str, int]:
    """Copy new identifiers and replay person merges onto the warehouse."""
    with session_scope() as session, warehouse.connect() as con:
        result = service.sync_warehouse(session, con)
        eventstore.commit(con)  # merges replayed: the Parquet store rewrites the affected days
        return result


JOBS = (Job("identity-sync", identity_sync, every_seconds=60),)

"""The fraud graph scan as a scheduled job (`liebian job run fraud-scan`, or `liebian fraud scan`)."""

from __future__ import annotations

from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.fraud import known, service
from liebian.ports import Job


def fraud_scan() -> dict:
    """Score persons and referrals by graph analysis; open review cases for the risky ones."""
    with session_scope() as session, warehouse.connect() as con:
        return service.run_scan(session, con).as_dict()


JOBS = (
    Job("fraud-scan", fraud_scan, every_seconds=3600),
    Job("fraud-known-uses", known.sync_job, every_seconds=900),
)

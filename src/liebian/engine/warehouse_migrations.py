"""The warehouse schema as ordered migrations with a recorded version (the store's Alembic, in small).

A migration is a version number, a description and a function of a DuckDB connection. `migrate`
applies the ones a warehouse lacks, in order, each in one transaction together with its row in
`schema_version`, so a failure leaves the warehouse at the last complete version.

A warehouse created before versioning has no `schema_version` table: it is at version 0.
Migration 1 is that release's schema, written with IF NOT EXISTS, so it creates what is missing,
keeps the tables (and rows) that are there, and stamps the file. A warehouse at a version newer
than this code knows is refused: older code must not write into a schema it does not understand.

To change the schema, append `Migration(<latest + 1>, "…", _sql(…))` to `MIGRATIONS`; never edit a
released migration. Migrations run inside `warehouse.connect`, which holds the process's lock and
DuckDB's file lock, so no other unit of work sees a half-migrated file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

VERSION_TABLE = "schema_version"

# No text column: the privacy domain scans every VARCHAR column of the warehouse for identifiers.
VERSION_DDL = f"""
    CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
        version INTEGER NOT NULL,
        applied_at TIMESTAMP NOT NULL
    )
"""


class WarehouseTooNew(RuntimeError):
    """The warehouse was migrated by a newer liebian than the one opening it."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


def _sql(*statements: str) -> Callable[[duckdb.DuckDBPyConnection], None]:
    def apply(con: duckdb.DuckDBPyConnection) -> None:
        for statement in statements:
            con.execute(statement)

    return apply


# Version 1: the schema of the last release without versioning, verbatim.
# "behaviour – transaction – social": events and orders, identities, referral edges, messages.
# received_at: when the channel's collector got the row (optional input; timeliness is measured
# from it, falling back to ingested_at, the time liebian loaded it).
INITIAL_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS events (
        event_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        channel VARCHAR NOT NULL,
        campaign_id VARCHAR,
        invite_code VARCHAR,
        referrer_person_id BIGINT,
        device_id VARCHAR,
        ip VARCHAR,
        props VARCHAR,
        received_at TIMESTAMP,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS orders (
        order_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        amount_fen BIGINT NOT NULL,
        currency VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        channel VARCHAR NOT NULL,
        campaign_id VARCHAR,
        status_ts TIMESTAMP NOT NULL,
        props VARCHAR,
        received_at TIMESTAMP,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS messages (
        message_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        group_id VARCHAR NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        text VARCHAR,
        channel VARCHAR NOT NULL,
        props VARCHAR,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    # One row per invitee and campaign: who brought whom (the first inviter seen wins here;
    # the campaign engine applies its own first/last-touch rule to rewards).
    """
    CREATE TABLE IF NOT EXISTS referral_edges (
        inviter_person_id BIGINT NOT NULL,
        invitee_person_id BIGINT NOT NULL,
        campaign_id VARCHAR,
        channel VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        event_id VARCHAR NOT NULL
    )
    """,
    # Replica of the operational OneID registry, so analyses can map identifiers to persons.
    """
    CREATE TABLE IF NOT EXISTS identity_map (
        id_type VARCHAR NOT NULL,
        id_value VARCHAR NOT NULL,
        person_id BIGINT NOT NULL
    )
    """,
    # Person merges already applied to the warehouse tables (watermark for the merge log).
    """
    CREATE TABLE IF NOT EXISTS applied_merges (
        merge_id BIGINT NOT NULL,
        applied_at TIMESTAMP NOT NULL
    )
    """,
    # Each loaded import batch; re-running a batch is a no-op thanks to id anti-joins.
    """
    CREATE TABLE IF NOT EXISTS import_batches (
        batch_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        rows_read BIGINT NOT NULL,
        rows_loaded BIGINT NOT NULL,
        rows_duplicate BIGINT NOT NULL,
        rows_rejected BIGINT NOT NULL,
        finished_at TIMESTAMP NOT NULL
    )
    """,
    # Rows that could not be loaded, kept visible (quarantine) besides the rejects file.
    """
    CREATE TABLE IF NOT EXISTS rejects (
        batch_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        line BIGINT,
        field VARCHAR,
        reason VARCHAR NOT NULL,
        raw VARCHAR,
        rejected_at TIMESTAMP NOT NULL
    )
    """,
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema (the last release without versioning)", _sql(*INITIAL_SCHEMA)),
    # Until now `identity.service.sync_watermark` created it on first use; IF NOT EXISTS keeps the
    # watermark of a warehouse that already synced.
    Migration(
        2,
        "identity_sync: how far the OneID registry was copied into identity_map",
        _sql("CREATE TABLE IF NOT EXISTS identity_sync (last_identifier_id BIGINT)"),
    ),
    # Orders in another currency are stored converted (liebian/fx.py): amount_fen/currency in CNY,
    # the amount as given beside them. Rows loaded before were never converted: they keep their
    # currency (analyses count CNY only) and their amount is copied as the original.
    Migration(
        3,
        "orders: orig_amount, orig_currency, fx_rate (amounts converted to CNY on import)",
        _sql(
            "ALTER TABLE orders ADD COLUMN IF NOT EXISTS orig_amount BIGINT",
            "ALTER TABLE orders ADD COLUMN IF NOT EXISTS orig_currency VARCHAR",
            "ALTER TABLE orders ADD COLUMN IF NOT EXISTS fx_rate DECIMAL(38, 12)",
            "UPDATE orders SET orig_amount = amount_fen, orig_currency = currency WHERE orig_amount IS NULL",
        ),
    ),
    # Persons known as members since a time (`member_since` of an imported events or orders file):
    # existing members, never new users (analytics/kpis.py `first_registrations`). Several rows of
    # one person may exist (an earlier time imported later); the earliest counts.
    Migration(
        4,
        "members: person_id, member_since (imported member join times)",
        _sql(
            "CREATE TABLE IF NOT EXISTS members (person_id BIGINT NOT NULL, member_since TIMESTAMP NOT NULL)"
        ),
    ),
    # Titles of campaigns known only from imports (`liebian import campaigns`, or the events'
    # campaign_title column): breakdowns and the console's campaign filter show them. One row per
    # campaign: a later import replaces the title.
    Migration(
        5,
        "campaign_titles: campaign_id, title (titles of imported campaigns)",
        _sql(
            "CREATE TABLE IF NOT EXISTS campaign_titles"
            " (campaign_id VARCHAR NOT NULL, title VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL)"
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The warehouse's recorded version; 0 when it has none (new, or made before versioning)."""
    try:
        # fetchall: DuckDB 2 refuses register() while a fetchone() result is still open
        return con.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}").fetchall()[0][0]
    except duckdb.CatalogException:
        return 0


def migrate(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Bring the warehouse to the last of `migrations`; return the versions applied (none: no-op).

    Raises `WarehouseTooNew` for a warehouse beyond them, before touching anything."""
    _check_order(migrations)
    latest = migrations[-1].version if migrations else 0
    current = current_version(con)
    if current > latest:
        raise WarehouseTooNew(
            f"the warehouse is at schema version {current}, newer than version {latest}, the latest "
            "this liebian knows: it was written by a newer release; upgrade liebian to open it"
        )
    applied = []
    for migration in migrations:
        if migration.version <= current:
            continue
        con.begin()
        try:
            con.execute(VERSION_DDL)
            migration.apply(con)
            con.execute(
                f"INSERT INTO {VERSION_TABLE} VALUES (?, ?)",
                [migration.version, datetime.now(UTC).replace(tzinfo=None)],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        applied.append(migration.version)
    return applied


def _check_order(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"warehouse migrations must be numbered 1, 2, 3… without gaps; got {versions}")

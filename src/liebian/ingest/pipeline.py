"""The pipeline of one batch inside DuckDB: normalise and validate (rejects kept with line, field and
reason), hash the direct identifiers, deduplicate within the batch and against the warehouse,
register the identifiers with OneID beside the load, then load (`load.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from liebian.db.session import session_scope
from liebian.identity import bulk
from liebian.identity import service as identity
from liebian.identity.keys import stored_value
from liebian.ingest import currency
from liebian.ingest.files import KnownKeys, RawFile
from liebian.ingest.load import STATUS_RANK, Outcome, load, load_identities
from liebian.ingest.normalize import DIRECT_TYPES_SQL, ID_COLUMN, clean_sql, ident, normalize_query
from liebian.ingest.presets import Preset, mapping_sql
from liebian.ingest.steps import Steps
from liebian.lazy import lazy_import
from liebian.privacy import pii

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    pa = lazy_import("pyarrow")

TEMP_OBJECTS = (  # views before the tables they read
    "mapped",
    "keyed",
    "raw",
    "to_load",
    "raw0",
    "line_shifts",
    "staged",
    "batch_rejects",
    "hashed",
    "drop_lines",
    "loaded_lines",
    "order_groups",
    "staged_fx",
    "fx_rates_batch",
)


def drop_temp(con: duckdb.DuckDBPyConnection, names: Sequence[str] = TEMP_OBJECTS) -> None:
    """Drop those of `names` that exist as temp tables or views."""
    kinds = dict(
        con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = 'temp'"
        ).fetchall()
    )
    for name in names:
        if name in kinds:
            con.execute(f"DROP {'VIEW' if kinds[name] == 'VIEW' else 'TABLE'} {name}")


def normaliser(kind: str, preset: Preset) -> Callable[[list[str]], tuple[str, str | None]]:
    """The reader's transform: map the file's columns and normalise them while reading (CSV);
    the columns the file has nothing for come apart, as one row (`NormalizedQuery.constants`)."""

    def transform(headers: list[str]) -> tuple[str, str | None]:
        mapping = mapping_sql(preset, kind, headers, keep_raw=True)
        # nul_free: the CSV reader refuses a file holding a NUL byte (files._looks_utf8, detect_encoding)
        query = normalize_query(kind, f"({mapping.sql})", raw_row=True, absent=mapping.absent, nul_free=True)
        return query.sql, query.constants

    return transform


# Kinds whose stored rows a re-imported row can only repeat (an order's row may move its status on).
APPEND_ONLY = ("events", "messages")


def known_keys(con: duckdb.DuckDBPyConnection, kind: str, preset: Preset) -> KnownKeys | None:
    """Re-imports: the rows whose id the warehouse already holds are recognised while reading
    (`files.KnownKeys`) and counted as duplicates, never normalised nor validated again (they
    were when first stored). None for kinds a known id may change, and while nothing is stored."""
    if kind not in APPEND_ONLY or not con.execute(f"SELECT EXISTS (SELECT 1 FROM {kind})").fetchall()[0][0]:
        return None
    id_col = ID_COLUMN[kind]

    def key(headers: list[str]) -> str:
        # The id exactly as the normaliser stores it: the mapped column, cleaned (normalize_query).
        mapping = mapping_sql(preset, kind, headers)
        return f"SELECT {clean_sql(ident(id_col))} AS k FROM ({mapping.sql})"

    return KnownKeys(key=key, stored=f"SELECT {id_col} AS k FROM {kind}", column=id_col)


def _drop_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Free the normalised rows (a table, or a view over the reader's table)."""
    drop_temp(con, ("staged", "raw", "raw0"))


def run_pipeline(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    preset: Preset,
    raw_file: RawFile,
    source: str,
    batch_id: str,
    steps: Steps,
    want_lines: bool = False,
) -> Outcome:
    # The scrub function stays registered until the load: `staged` may be a view that calls it.
    with pii.scrubber(con) as scrub_udf:
        # Row order matters only for reading (rowid = line); from here every row carries its _line.
        con.execute("SET preserve_insertion_order = false")
        with steps.step("normalising"):
            if raw_file.normalised:
                # The reader normalised the rows as it read them (CSV); raw numbers them.
                if raw_file.parse_rejects:  # the numbering runs a subquery per row: once, not per use
                    con.execute("CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM raw")
                    con.execute("DROP VIEW raw")
                    con.execute("DROP TABLE raw0")
                else:
                    con.execute("CREATE OR REPLACE TEMP VIEW staged AS SELECT * FROM raw")
            else:
                mapping = mapping_sql(preset, kind, raw_file.headers, keep_raw=True)
                con.execute(f"CREATE OR REPLACE TEMP VIEW mapped AS {mapping.sql}")
                query = normalize_query(kind, "mapped", raw_row=True)
                con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {query.sql}")
                con.execute("DROP VIEW mapped")
                con.execute("DROP VIEW raw")
                con.execute("DROP TABLE raw0")
            con.execute("DROP TABLE IF EXISTS line_shifts")
            if kind == "orders":
                currency.convert_orders(con)  # to CNY; a row without a rate gets its error here
            _collect_rejects(con, raw_file)
            pii.scrub_batch(con, kind, scrub_udf)  # identifiers in properties, message text and rejects
        with steps.step("hashing identifiers"):
            _hash_direct_identifiers(con, kind)
        if kind == "identities":
            return load_identities(con, source, batch_id, raw_file, steps)
        with steps.step("deduplicating"):
            if kind == "orders":
                _orders_candidates(con)
                _drop_staged(con)
            elif _candidates(con, kind, stored_checked=raw_file.known is not None):
                _drop_staged(con)  # else to_load is a view over it
        with steps.step("resolving identities"):
            registration = _register_identities(con, kind, source)
        try:
            with steps.step("loading"):
                outcome = load(con, kind, source, batch_id, raw_file, want_lines, registration)
        finally:
            if registration is not None:
                registration.abandon()  # joined already unless the load failed
                steps.timings["registering identities (beside loading)"] = round(registration.seconds, 3)
        return outcome


def _collect_rejects(con: duckdb.DuckDBPyConnection, raw_file: RawFile) -> None:
    """batch_rejects: one row per problem of each bad row, with the row as JSON (`_raw`)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE batch_rejects (line BIGINT, field VARCHAR, reason VARCHAR, raw VARCHAR)"
    )
    con.execute(
        """
        INSERT INTO batch_rejects
        SELECT s._line, s.e.field, s.e.reason, s._raw
        FROM (SELECT _line, _raw, unnest(_errors) AS e FROM staged WHERE len(_errors) > 0) s
        """
    )
    if raw_file.parse_rejects:
        con.executemany("INSERT INTO batch_rejects VALUES (?, ?, ?, ?)", raw_file.parse_rejects)


def _hash_direct_identifiers(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """HMAC each distinct direct identifier (phones) once; other identifiers stay as given."""
    if kind == "identities":
        pairs = [("id_type_a", "raw_a"), ("id_type_b", "raw_b")]
    elif kind == "events":
        pairs = [("id_type", "user_raw"), ("referrer_id_type", "referrer_raw")]
    else:
        pairs = [("id_type", "user_raw")]
    union = " UNION ".join(
        f"SELECT DISTINCT {t} AS id_type, {v} AS raw FROM staged "
        f"WHERE len(_errors) = 0 AND list_contains({DIRECT_TYPES_SQL}, {t}) AND {v} IS NOT NULL"
        for t, v in pairs
    )
    rows = con.execute(union).fetchall()
    if not rows:  # no phones in the batch: no Arrow table (its first use imports pandas, ~1 s)
        con.execute("CREATE OR REPLACE TEMP TABLE hashed (id_type VARCHAR, raw VARCHAR, id_value VARCHAR)")
        return
    table = pa.table(
        {
            "id_type": pa.array([t for t, _ in rows], pa.string()),
            "raw": pa.array([r for _, r in rows], pa.string()),
            "id_value": pa.array([stored_value(t, r) for t, r in rows], pa.string()),
        }
    )
    con.register("hashed_arrow", table)
    con.execute("CREATE OR REPLACE TEMP TABLE hashed AS SELECT * FROM hashed_arrow")
    con.unregister("hashed_arrow")


def _keyed_select(con: duckdb.DuckDBPyConnection, kind: str) -> tuple[str, bool]:
    """Valid staged rows with identifiers in stored form (user_id, referrer_id), and whether that
    needs a join (direct identifiers were hashed)."""
    has_direct = con.execute("SELECT count(*) FROM hashed").fetchall()[0][0] > 0
    ref = kind == "events"
    if not has_direct:
        cols = "s.* EXCLUDE (_errors, _raw), s.user_raw AS user_id"
        if ref:
            cols += ", s.referrer_raw AS referrer_id"
        return f"SELECT {cols} FROM staged s WHERE len(s._errors) = 0", False
    cols = "s.* EXCLUDE (_errors, _raw), coalesce(h.id_value, s.user_raw) AS user_id"
    joins = "LEFT JOIN hashed h ON h.id_type = s.id_type AND h.raw = s.user_raw"
    if ref:
        cols += ", coalesce(hr.id_value, s.referrer_raw) AS referrer_id"
        joins += " LEFT JOIN hashed hr ON hr.id_type = s.referrer_id_type AND hr.raw = s.referrer_raw"
    return f"SELECT {cols} FROM staged s {joins} WHERE len(s._errors) = 0", True


def _candidates(con: duckdb.DuckDBPyConnection, kind: str, stored_checked: bool = False) -> bool:
    """Events/messages to load (`to_load`): the first row per id in the batch, unknown to the
    warehouse. Returns whether to_load is a table of its own (else a view over staged).

    Exports seldom repeat an id and a first import finds none in the warehouse, so the rows to
    leave out are found first (a hash aggregate over the ids' 64-bit hashes, exact among the few
    repeated hashes, and a semi-join with the warehouse). When there are none and no phone's HMAC
    must be joined in, to_load is a view: no copy of the batch. With `stored_checked`, the reader
    has left out every row whose id the warehouse holds (`known_keys`; the write lock is held
    since): only repeats within the batch remain to be found.
    """
    id_col = ID_COLUMN[kind]
    keyed, joined = _keyed_select(con, kind)
    # As many distinct hashes as valid rows: no id repeats (a distinct count costs ~40 % less than
    # grouping the hashes to find the repeated ones, which only then runs; a collision just
    # takes that exact path).
    valid, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT hash({id_col})) FROM staged WHERE len(_errors) = 0"
    ).fetchall()[0]
    repeats = (
        f"""
        SELECT _line FROM (
            SELECT _line, row_number() OVER (PARTITION BY {id_col} ORDER BY _line) AS n
            FROM valid WHERE hash({id_col}) IN (
                SELECT hash({id_col}) AS h FROM valid GROUP BY h HAVING count(*) > 1
            )
        ) WHERE n > 1
        """
        if distinct < valid
        else "SELECT _line FROM valid WHERE false"
    )
    stored = (
        ""
        if stored_checked
        else f"UNION SELECT v._line FROM valid v SEMI JOIN {kind} w ON w.{id_col} = v.{id_col}"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE drop_lines AS
        WITH valid AS (SELECT _line, {id_col} FROM staged WHERE len(_errors) = 0)
        {repeats}
        {stored}
        """
    )
    dropped = con.execute("SELECT count(*) FROM drop_lines").fetchall()[0][0]
    if not dropped and not joined:
        con.execute(f"CREATE OR REPLACE TEMP VIEW to_load AS {keyed}")
        return False
    if dropped == valid:
        # Every valid row is known (a file imported again): nothing to key or anti-join.
        con.execute(f"CREATE OR REPLACE TEMP TABLE to_load AS SELECT * FROM ({keyed}) LIMIT 0")
        return True
    con.execute(f"CREATE OR REPLACE TEMP VIEW keyed AS {keyed}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE to_load AS SELECT k.* FROM keyed k ANTI JOIN drop_lines d ON d._line = k._line"
    )
    con.execute("DROP VIEW keyed")
    return True


def _orders_candidates(con: duckdb.DuckDBPyConnection) -> None:
    """Orders: one row per order_id; a later terminal status updates a known order."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE to_load AS {_keyed_select(con, 'orders')[0]}")
    # Per order in the batch: its first row and its final state (terminal statuses outrank paid,
    # then the later time, then the later line).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE order_groups AS
        SELECT order_id,
               min(_line) AS first_line,
               arg_max({{'status': status, 'ts': ts, 'line': _line}},
                       {{'r': {STATUS_RANK}, 'ts': ts, 'line': _line}}) AS final
        FROM to_load GROUP BY order_id
        """
    )


def _register_identities(con: duckdb.DuckDBPyConnection, kind: str, source: str) -> bulk.Registration | None:
    """Found persons for identifiers never seen, then refresh the warehouse's identity_map.

    Many new identifiers are written to the store while the rows load (`bulk.Registration`): the
    load's transaction then adds them to identity_map and commits after the store has.
    """
    with session_scope() as session:
        identity.sync_warehouse(session, con)
    if kind == "orders":
        subject = "SELECT t.* FROM to_load t SEMI JOIN order_groups g ON g.first_line = t._line ANTI JOIN orders o ON o.order_id = t.order_id"
    else:
        subject = "SELECT * FROM to_load"
    parts = [f"SELECT DISTINCT id_type, user_id AS id_value FROM ({subject})"]
    if kind == "events":
        parts.append(
            "SELECT DISTINCT referrer_id_type, referrer_id FROM to_load WHERE referrer_id IS NOT NULL"
        )
    # The distinct identifiers the warehouse has not seen (raw kept for direct ones: their
    # ciphertext and masked display), registered set-based: ids and displays computed in DuckDB.
    return bulk.register_beside(
        con,
        f"""
        SELECT k.id_type, k.id_value, h.raw FROM ({" UNION ".join(parts)}) k
        ANTI JOIN identity_map m ON m.id_type = k.id_type AND m.id_value = k.id_value
        LEFT JOIN hashed h ON h.id_type = k.id_type AND h.id_value = k.id_value
        """,
        source=source[:64],
    )

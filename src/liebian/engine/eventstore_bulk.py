"""Bulk loading into the event store: rows produced by SQL written straight into the Parquet dataset.

`eventstore.commit` makes the store equal to the warehouse; loading 100M generated events through
the warehouse first would measure the warehouse, not the store. `append_rows` writes the rows of a
DuckDB SELECT per table (columns by name, the warehouse's schema; missing ones NULL) straight into
the store as ONE committed batch, by the store's own commit path: `COPY … (PARTITION_BY (day))` to
the staging folder, the files moved into place, then a new manifest published by an atomic rename
(engine/eventstore.py). A writer killed before the rename leaves no file a reader sees.

The manifest's per-day fingerprints (rows, sum of row hashes) are computed from the written files,
as the warehouse would compute them from the same rows. The warehouse stays the source of truth of
a store that ingest commits to: a later `eventstore.commit` from a warehouse that lacks these rows
makes the store equal to that warehouse again. So bulk loading is for stores without a writing
warehouse: benchmarks (benchmarks/bench_scale.py) and datasets produced elsewhere.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from liebian.engine import eventstore, warehouse, warehouse_migrations
from liebian.errors import Invalid
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")


def _typed(table: str, select: str) -> str:
    """`select`'s rows with the warehouse's columns, in its order and types, plus the partition `day`."""
    return (
        f"SELECT t.*, {eventstore._part_sql(table)} AS day FROM "
        f"((SELECT * FROM {table} LIMIT 0) UNION ALL BY NAME ({select})) t"
    )


def append_rows(
    selects: dict[str, str | list[str]],
    batch_id: str,
    url: str | None = None,
    memory_limit: str | None = None,
) -> dict:
    """Write each table's SELECT (or list of SELECTs: chunks, each copied on its own, so that a
    partitioned COPY buffers one chunk, not the table) into the store at `url` (LIEBIAN_EVENT_STORE
    by default) as one committed batch; returns {version, rows: {table: n}}. A batch the manifest
    lists already is not written again. One writer at a time (as for `eventstore.commit`)."""
    unknown = sorted(set(selects) - set(warehouse.TABLES))
    if unknown:
        raise Invalid("event_store", f"not tables of the event store: {', '.join(unknown)}", field="table")
    loc = eventstore.location(url)
    manifest = eventstore.read_manifest(loc)
    if batch_id in manifest["batches"]:
        return {"version": manifest["version"], "rows": {}}
    con = duckdb.connect()  # empty tables of the warehouse's schema: the SELECTs are typed by them
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = false")  # a partitioned COPY needs no order
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        warehouse_migrations.migrate(con)
        return _append(con, loc, manifest, selects, batch_id)
    finally:
        con.close()


def _append(
    con: duckdb.DuckDBPyConnection,
    loc: eventstore.Location,
    manifest: dict,
    selects: dict[str, str | list[str]],
    batch_id: str,
) -> dict:
    writer = eventstore._Writer(con, loc)
    tables = {t: list(manifest["tables"].get(t, [])) for t in warehouse.TABLES}
    watermarks = dict(manifest.get("watermarks", {}))
    counts: dict[str, int] = {}
    try:
        writer.staging.mkdir(parents=True)
        # a spill, if any, goes with the staging folder (not to the working directory's .tmp)
        con.execute(f"SET temp_directory = '{writer.staging / 'spill'}'")
        for table in warehouse.TABLES:
            groups = tables[table]
            if table in selects:
                new, latest = _write_chunks(writer, table, selects[table], batch_id)
                counts[table] = sum(g["rows"] for g in new)
                if counts[table]:  # the schema file of an empty table is no longer needed
                    groups = [g for g in groups if g["rows"]]
                groups += [g for g in new if g["rows"]]
                if table in eventstore.LOADED_TABLES and latest:
                    watermarks[table] = max([w for w in [watermarks.get(table)] if w] + [latest])
            if not groups:
                groups = [writer.schema_file(table)]
            tables[table] = groups
        new_manifest = {
            "version": manifest["version"] + 1,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "batches": (manifest["batches"] + [batch_id])[-eventstore.KEEP_BATCH_IDS :],
            "watermarks": watermarks,
            "merges": manifest.get("merges", 0),
            "tables": tables,
        }
        writer.publish(new_manifest)
    except BaseException:
        writer.cleanup()
        raise
    eventstore._prune_manifests(loc, new_manifest["version"])
    writer.cleanup()
    return {"version": new_manifest["version"], "rows": counts}


def _write_chunks(
    writer: eventstore._Writer, table: str, chunks: str | list[str], batch_id: str
) -> tuple[list[dict], str | None]:
    """Every chunk written; one group per day holding the chunks' files of that day, and the latest
    ingested_at among the rows (loaded tables)."""
    days: dict[str, dict] = {}
    latest: list[str] = []
    for i, chunk in enumerate([chunks] if isinstance(chunks, str) else chunks):
        written, last = _write(writer, table, chunk, batch_id, f"{table}-bulk-{i}")
        latest += [last] if last else []
        for g in written:
            had = days.setdefault(g["part"], {**g, "files": [], "rows": 0, "fp": 0})
            had["files"] += g["files"]
            had["rows"] += g["rows"]
            had["fp"] = (had["fp"] + g["fp"]) % eventstore.HASH_MOD
    return list(days.values()), max(latest, default=None)


def _write(
    writer: eventstore._Writer, table: str, select: str, batch_id: str, name: str
) -> tuple[list[dict], str | None]:
    """COPY the rows to staging (by day for the day tables), fingerprint the files, move them in."""
    by_day = table in eventstore.DAY_TABLES
    staged = writer._copy(_typed(table, select), [], writer.staging / name, by_day)
    if not staged:
        return [], None
    columns = ", ".join(
        f'"{c}"' for (c,) in writer.con.execute(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()
    )
    latest = "max(t.ingested_at)" if table in eventstore.LOADED_TABLES else "NULL::TIMESTAMP"
    # the warehouse's fingerprint of the same rows (the hash of each row of the table's columns), per
    # day; each staged file holds one day
    union = " UNION ALL ".join(
        f"SELECT '{day}' AS part, count(*) AS n, sum(hash(t)) AS fp, {latest} AS latest FROM "
        f"(SELECT {columns} FROM read_parquet('{path}', hive_partitioning = false)) t"
        for day, path in staged
    )
    found = writer.con.execute(
        f"SELECT part, sum(n), CAST(sum(fp) % {eventstore.HASH_MOD} AS UBIGINT), max(latest) "
        f"FROM ({union}) GROUP BY part"
    ).fetchall()
    prints = {str(day): (int(n), int(fp)) for day, n, fp, _ in found}
    last = max((row[3] for row in found if row[3] is not None), default=None)
    groups = writer.place_groups(table, staged, prints, batch_id, by_day)
    return groups, last.isoformat() if last else None

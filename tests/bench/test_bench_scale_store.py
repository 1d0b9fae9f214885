"""Bulk loading into the event store (engine/eventstore_bulk.py, which bench_scale generates its data
through): one committed batch the readers see, the warehouse's own fingerprints, written once."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from benchmarks import bench_scale

from liebian.engine import eventstore, eventstore_bulk, warehouse, warehouse_migrations


def test_generated_rows_go_straight_into_the_store_as_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setattr(
        bench_scale, "CHUNK", 7_000
    )  # three chunks of events: their files of a day in one group
    rows = bench_scale.selects(20_000)
    done = eventstore_bulk.append_rows(rows, "gen-1", url=url)
    assert done["version"] == 1 and done["rows"]["events"] == 20_000 and done["rows"]["orders"] == 1_000
    # the same rows put in a warehouse: the manifest's per-day fingerprints are the warehouse's
    con = duckdb.connect()
    warehouse_migrations.migrate(con)
    for table, select in rows.items():
        for chunk in [select] if isinstance(select, str) else select:
            con.execute(f"INSERT INTO {table} BY NAME {chunk}")
    manifest = eventstore.read_manifest(eventstore.location(url))
    assert manifest["batches"] == ["gen-1"]
    assert (
        len(manifest["tables"]["events"]) == 90 and len(eventstore.table_files(manifest, "events")) == 3 * 90
    )
    for table in rows:
        assert eventstore._stored(manifest["tables"][table]) == eventstore._fingerprints(con, table)[0], table
    with eventstore.duckdb_reader(url) as reader:
        for table in warehouse.TABLES:  # every table readable; the ones not generated are empty
            want = con.execute(f"SELECT count(*), sum(hash(t)) FROM {table} t").fetchall()
            assert reader.execute(f"SELECT count(*), sum(hash(t)) FROM {table} t").fetchall() == want, table
        # the shape: 90 days, one person per 10 events
        days, persons = reader.execute(
            "SELECT count(DISTINCT CAST(ts AS DATE)), count(DISTINCT person_id) FROM events"
        ).fetchall()[0]
        assert days == 90 and 1_980 <= persons <= 2_000
    # the same batch again: nothing written
    assert eventstore_bulk.append_rows(rows, "gen-1", url=url) == {"version": 1, "rows": {}}
    assert not list((tmp_path / "store" / eventstore.STAGING_DIR).glob("*"))

"""Erasure reaches every byte: after a person is erased, neither their phone, its HMAC nor their
unionid is in the raw bytes of warehouse.duckdb or liebian.db, in any Parquet export or in any
rejects file (the reproduction: all of them kept the values after `privacy delete`)."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from liebian.config import get_settings
from liebian.db.session import dispose_engines, session_scope
from liebian.engine import warehouse
from liebian.engine.backend import export_parquet
from liebian.identity import service as identity
from liebian.ingest.service import import_file
from liebian.privacy import compaction
from liebian.privacy.crypto import identifier_hmac
from liebian.web.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))
from ingest_helpers import write_csv  # noqa: E402

PHONE = "13987654321"
UNIONID = "oUnion-erase-me-7f3k2q"
OTHER = "oUnion-someone-else-9x1"


def _seed(tmp_path: Path) -> None:
    """The person arrives by phone and unionid through imports; someone else's order names the
    phone; a rejected row carries it; the tables are exported to Parquet."""
    write_csv(
        tmp_path / "ids.csv",
        ["id_type_a", "id_a", "id_type_b", "id_b"],
        [["phone", PHONE, "unionid", UNIONID]],
    )
    assert import_file(tmp_path / "ids.csv", "identities").rows_loaded == 1
    events = [
        ["e1", "2024-05-01 10:00:00", PHONE, "phone", "signup", "wechat", ""],
        ["e2", "2024-05-01 10:05:00", UNIONID, "unionid", "view", "wechat", f"来自 {UNIONID}"],
        ["e3", "2024-05-01 10:06:00", OTHER, "unionid", "view", "wechat", f"friend {PHONE}"],
        ["e4", "not a time", PHONE, "phone", "view", "wechat", ""],  # rejected
    ]
    header = ["event_id", "ts", "user_id", "id_type", "event", "channel", "note"]
    result = import_file(write_csv(tmp_path / "events.csv", header, events), "events")
    assert (result.rows_loaded, result.rows_rejected) == (3, 1) and result.rejects_path
    export_parquet()


def _person() -> int:
    with session_scope() as s:
        return identity.lookup(s, [("unionid", UNIONID)])[("unionid", UNIONID)]


def _raw_files(data: Path) -> list[Path]:
    files = [
        p for p in data.iterdir() if p.is_file() and p.name.startswith(("warehouse.duckdb", "liebian.db"))
    ]
    return files + list(compaction.data_files(data))


def _traces(data: Path, needles: list[str]) -> dict[str, list[str]]:
    """needle -> the files whose raw bytes (Parquet: also its decoded text columns) hold it."""
    found: dict[str, list[str]] = {}
    for path in _raw_files(data):
        blob = path.read_bytes()
        if path.suffix == ".parquet":
            con = duckdb.connect()
            blob += "\n".join(
                str(v)
                for row in con.execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
                for v in row
            ).encode()
            con.close()
        for needle in needles:
            if needle.encode() in blob:
                found.setdefault(needle, []).append(path.name)
    return found


def test_erasure_leaves_no_byte_of_the_person(store, admin_headers, tmp_path):
    _seed(tmp_path)
    data = get_settings().data_dir
    needles = [PHONE, identifier_hmac(PHONE), UNIONID]
    dispose_engines()  # SQLite: closing the connections checkpoints the WAL into liebian.db
    before = _traces(data, needles)
    # the scan sees them before (it can fail); the phone itself was never stored in clear (ingest)
    assert set(before) == {identifier_hmac(PHONE), UNIONID}
    assert any(name.endswith(".parquet") for name in before[UNIONID])
    assert any(name.endswith(".csv") for name in before[identifier_hmac(PHONE)])  # the rejects file

    pid = _person()
    with TestClient(create_app(), headers=admin_headers) as client:
        r = client.post("/api/v1/privacy/requests/delete", json={"person_id": pid, "reason": "PIPL art. 47"})
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["traces_after"] == {}
    assert any(k.endswith(".parquet") for k in record["files"]) and any(
        k.endswith(".csv") for k in record["files"]
    )
    dispose_engines()
    after = _traces(data, needles)
    if store == "postgres":  # the store is not a file here: the warehouse and the files are
        after = {k: [f for f in v if not f.startswith("liebian.db")] for k, v in after.items()}
        after = {k: v for k, v in after.items() if v}
    assert after == {}
    # the facts stay, under the pseudonymous person id, and the someone else's event is intact
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 3
        (props,) = con.execute("SELECT props FROM events WHERE event_id = 'e3'").fetchall()[0]
    assert "friend [phone:139****4321:[erased]]" in props


@pytest.mark.parametrize("rewrite", [False, True])
def test_duckdb_checkpoint_alone_keeps_erased_bytes(tmp_path, rewrite):
    """Why the warehouse is rewritten: CHECKPOINT leaves an updated value in the freed blocks."""
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT i, 'u' || i AS v FROM range(100000) r(i)")
    con.execute(f"INSERT INTO t VALUES (-1, '{UNIONID}')")
    con.execute("CHECKPOINT")
    con.execute(f"UPDATE t SET v = '[erased]' WHERE v = '{UNIONID}'")
    con.execute("CHECKPOINT")
    con.close()
    if rewrite:
        compaction.compact_warehouse(path)
    assert (UNIONID.encode() in path.read_bytes()) is not rewrite

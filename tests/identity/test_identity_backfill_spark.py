"""OneID backfill on Spark: the same identifier → person map as the embedded path (`service.link`,
what `liebian import identities` runs) on the same history, and both equal to the known persons.

The history: persons with a unionid (or none), two openids, a phone written two ways (one HMAC),
a device, and for some a chain of ten devices linked one after the other (several rounds of label
propagation); unrelated pairs that stay their own persons; two unionids sharing a device (a
conflict: the earlier link wins); rows with unusable identifiers; a pair given twice. Then a second
history, of observations (one column per identifier type), joins new identifiers to the persons of
the first and merges two of them: the registry the first run left is the starting point.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from liebian.config import get_settings, reset_settings_cache
from liebian.db.session import dispose_engines, session_scope
from liebian.engine import eventstore, warehouse
from liebian.identity import service
from liebian.identity.keys import DIRECT_TYPES, ID_TYPES, person_id_for, stored_value
from liebian.identity.models import Identifier, Person

SPARK_ENABLED = os.environ.get("LIEBIAN_TEST_SPARK") == "1" and shutil.which("java") is not None
pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(not SPARK_ENABLED, reason="Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH"),
]
PERSONS = 60
T0 = datetime(2026, 3, 1, 9, 0, 0)
OBS_COLUMNS = ("unionid", "openid", "phone", "device_id", "ts")


def _history() -> tuple[list[tuple], list[set[tuple[str, str]]]]:
    """(rows: id_type_a, id_a, id_type_b, id_b, ts, source; the true persons as sets of raw identifiers)."""
    rows: list[tuple] = []
    persons: list[set[tuple[str, str]]] = []
    for i in range(PERSONS):
        ids = {("openid", f"mp{i}"), ("openid", f"mini{i}"), ("device_id", f"d{i}")}
        hub = ("unionid", f"u{i}") if i % 5 != 4 else ("openid", f"mp{i}")
        ids.add(hub)
        pairs = [(hub, ("openid", f"mini{i}")), (("openid", f"mp{i}"), ("device_id", f"d{i}"))]
        if hub[0] == "unionid":
            pairs.append((hub, ("openid", f"mp{i}")))
        if i % 3 == 0:  # one phone, written two ways by two channels: one HMAC
            ids.add(("phone", f"139{i:08d}"))
            pairs.append((("openid", f"mp{i}"), ("phone", f"139{i:08d}")))
            pairs.append((("phone", f"+86 139 {i:08d}"), ("device_id", f"d{i}")))
        if i % 7 == 0:  # a chain of ten devices, linked one after the other
            chain = [("device_id", f"d{i}")] + [("device_id", f"c{i}_{k}") for k in range(10)]
            ids.update(chain)
            pairs += list(zip(chain, chain[1:], strict=False))
        persons.append(ids)
        rows += [
            (a[0], a[1], b[0], b[1], T0 + timedelta(minutes=i * 20 + n), "mp")
            for n, (a, b) in enumerate(pairs)
        ]
    for j in range(8):  # unrelated: their own persons
        persons.append({("device_id", f"x{j}"), ("payment_account", f"pay{j}")})
        rows.append(
            ("device_id", f"x{j}", "payment_account", f"pay{j}", T0 + timedelta(days=1, minutes=j), "pos")
        )
    # Two unionids meet on one device: the earlier link merges, the later one is a conflict.
    persons.append({("unionid", "uc1"), ("device_id", "shared")})
    persons.append({("unionid", "uc2"), ("openid", "oc2")})
    rows += [
        ("unionid", "uc2", "openid", "oc2", T0 + timedelta(days=2), "mp"),
        ("unionid", "uc1", "device_id", "shared", T0 + timedelta(days=2, hours=1), "app"),
        ("device_id", "shared", "unionid", "uc2", T0 + timedelta(days=2, hours=2), "app"),
    ]
    rows += [
        ("phone", "12", "openid", "mp1", T0, "bad"),  # too few digits: rejected
        ("email", "a@b.c", "openid", "mp2", T0, "bad"),  # unknown type: rejected
        rows[0],  # given twice: counted once
    ]
    random.Random(24).shuffle(rows)
    return rows, persons


def _observations() -> tuple[list[dict], list[tuple]]:
    """Rows of the second history, and the pairs they mean (first present identifier ~ each other)."""
    obs = [
        {"unionid": "u1", "openid": "late1", "phone": "", "device_id": "", "ts": "2026-03-05 10:00:00"},
        # persons 4 and 9 (no unionid) meet on a new device: merged
        {
            "unionid": "",
            "openid": "mp4",
            "phone": "13700000001",
            "device_id": "dn",
            "ts": "2026-03-05 11:00:00",
        },
        {"unionid": "", "openid": "mp9", "phone": "", "device_id": "dn", "ts": "2026-03-05 12:00:00"},
        {
            "unionid": "",
            "openid": "new-alone",
            "phone": "",
            "device_id": "new-dev",
            "ts": "2026-03-05 13:00:00",
        },
    ]
    pairs = []
    for row in obs:
        present = [(t, row[t]) for t in ID_TYPES if row.get(t)]
        pairs += [(present[0], other, row["ts"]) for other in present[1:]]
    return obs, pairs


def _key(id_type: str, raw: str) -> tuple[str, str]:
    return (id_type, stored_value(id_type, raw))


def _truth(persons: list[set[tuple[str, str]]]) -> dict[tuple[str, str], int]:
    """Independently: a person's id is the smallest founding id of its identifiers."""
    out = {}
    for raws in persons:
        keys = {_key(*r) for r in raws}
        pid = min(person_id_for(*k) for k in keys)
        out.update(dict.fromkeys(keys, pid))
    return out


def _embedded(rows: list[tuple]) -> None:
    """What an identities import does: valid rows, each pair once, through link(); then the sync."""
    seen, evidence = set(), []
    for ta, ra, tb, rb, ts, source in rows:
        try:
            sides = [service.RawIdentifier(t, r) for t, r in ((ta, ra), (tb, rb))]
            pair = tuple(sorted(s.key for s in sides))
        except ValueError:
            continue
        if pair in seen:
            continue
        seen.add(pair)
        a, b = (s if s.id_type in DIRECT_TYPES else s.key for s in sides)
        evidence.append(service.LinkEvidence(a, b, source=source, observed_at=ts))
    with session_scope() as session:
        service.link(session, evidence)
    with session_scope() as session, warehouse.connect() as con:
        service.sync_warehouse(session, con)
        eventstore.commit(con)


def _maps() -> tuple[dict, dict, set[int]]:
    """(registry map, warehouse identity_map, live person ids)."""
    with session_scope() as session:
        registry = {
            (t, v): p
            for t, v, p in session.execute(
                select(Identifier.id_type, Identifier.id_value, Identifier.person_id)
            )
        }
        live = set(session.scalars(select(Person.id).where(Person.merged_into.is_(None))))
    with warehouse.connect() as con:
        wh = {
            (t, v): p
            for t, v, p in con.execute("SELECT id_type, id_value, person_id FROM identity_map").fetchall()
        }
    return registry, wh, live


def _fresh_store(root: Path, template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dispose_engines()
    monkeypatch.setenv("LIEBIAN_DATA_DIR", str(root))
    monkeypatch.setenv("LIEBIAN_EVENT_STORE", str(root / "store"))
    reset_settings_cache()
    target = Path(get_settings().sqlalchemy_url.removeprefix("sqlite:///"))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return root


@pytest.fixture
def spark(monkeypatch: pytest.MonkeyPatch):
    """The engine's session, its Python workers this interpreter (they run the OneID functions)."""
    from liebian.engine.spark import spark_session, stop_spark_session

    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("LIEBIAN_SPARK_SHUFFLE_PARTITIONS", "4")
    if spark_session().sparkContext.pythonExec != sys.executable:
        stop_spark_session()
    return spark_session()


def test_spark_backfill_gives_the_embedded_persons(
    spark, sqlite_template: Path, tmp_path: Path, monkeypatch
) -> None:
    from liebian.identity import backfill_spark

    # One HMAC key for both stores: the same phone must hash alike in both.
    monkeypatch.setenv("LIEBIAN_HMAC_KEY", "ab" * 32)
    monkeypatch.setenv("LIEBIAN_ENCRYPTION_KEY", "cd" * 32)
    rows, persons = _history()
    obs, obs_pairs = _observations()
    history = tmp_path / "identities.csv"
    with history.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_type_a", "id_a", "id_type_b", "id_b", "ts", "source"])
        w.writerows([(*r[:4], r[4].isoformat(sep=" "), r[5]) for r in rows])
    observations = tmp_path / "observations.csv"
    with observations.open("w", newline="") as fh:
        dw = csv.DictWriter(fh, fieldnames=OBS_COLUMNS)
        dw.writeheader()
        dw.writerows(obs)
    obs_rows = [(a[0], a[1], b[0], b[1], datetime.fromisoformat(ts), "obs") for a, b, ts in obs_pairs]

    # The embedded path.
    _fresh_store(tmp_path / "embedded", sqlite_template, monkeypatch)
    _embedded(rows)
    embedded_1, embedded_wh_1, _ = _maps()
    _embedded(obs_rows)
    embedded_2, embedded_wh_2, embedded_live = _maps()

    # The Spark path, on a store of its own.
    root = _fresh_store(tmp_path / "spark", sqlite_template, monkeypatch)
    report = backfill_spark.backfill(str(history), spark)
    spark_1, spark_wh_1, _ = _maps()

    truth = _truth(persons)
    assert spark_1 == embedded_1 == truth
    assert spark_wh_1 == embedded_wh_1 == truth
    assert report.rows == len(rows) and report.rejected == 2 and report.evidence == len(rows) - 3
    assert report.conflicts == 1 and report.conflict_components == 1
    assert report.rounds >= 3  # the ten-device chains took several rounds
    assert report.new_identifiers == len(truth)
    assert report.merged == sum(len({person_id_for(*_key(*r)) for r in p}) - 1 for p in persons)

    # The second history starts from the registry the first one left.
    report2 = backfill_spark.backfill(str(observations), spark)
    spark_2, spark_wh_2, spark_live = _maps()
    assert spark_2 == embedded_2 and spark_wh_2 == embedded_wh_2 and spark_live == embedded_live
    p4, p9, p1 = (truth[_key("openid", f"mp{i}")] for i in (4, 9, 1))
    expected = dict(truth)
    merged4_9 = {k for k, p in truth.items() if p in (p4, p9)} | {
        _key("device_id", "dn"),
        _key("phone", "13700000001"),
    }
    expected.update(dict.fromkeys(merged4_9, min([p4, p9, person_id_for(*_key("device_id", "dn")),
                                                  person_id_for(*_key("phone", "13700000001"))])))  # fmt: skip
    late1 = min(p1, person_id_for(*_key("openid", "late1")))
    expected.update({k: late1 for k, p in truth.items() if p == p1} | {_key("openid", "late1"): late1})
    alone = min(person_id_for(*_key("openid", "new-alone")), person_id_for(*_key("device_id", "new-dev")))
    expected[_key("openid", "new-alone")] = expected[_key("device_id", "new-dev")] = alone
    assert spark_2 == expected
    assert report2.new_identifiers == 5 and report2.conflicts == 0

    # Later analyses see it: the Parquet event store's identity map is the registry's.
    with eventstore.duckdb_reader(str(root / "store")) as con:
        stored = {
            (t, v): p
            for t, v, p in con.execute("SELECT id_type, id_value, person_id FROM identity_map").fetchall()
        }
    assert stored == spark_2

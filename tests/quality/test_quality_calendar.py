"""The volume check and the holiday calendar: a 双11 spike is labelled, not an error; the same
spike on an ordinary day is a finding; a brand date set in the settings labels its day too."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd

from liebian.config import reset_settings_cache
from liebian.engine import warehouse
from liebian.quality import service

FIRST_DAY, DAYS = date(2026, 10, 12), 56  # 12 October – 6 December 2026
WEEKLY = [40, 42, 45, 41, 50, 60, 58]
SPIKES = {date(2026, 11, 11): 3, date(2026, 11, 25): 3}  # 双11, and an ordinary Wednesday
NOW = datetime(2026, 12, 8)


def _events() -> pd.DataFrame:
    rows = []
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        start = datetime(day.year, day.month, day.day) - timedelta(hours=8) + timedelta(hours=2)  # Shanghai
        n = (WEEKLY[day.weekday()] + d % 3) * SPIKES.get(day, 1)
        for i in range(n):
            ts = start + timedelta(seconds=31 * i)
            rows.append({"event_id": f"e{d}-{i}", "ts": ts, "person_id": 1000 + i, "id_type": "openid",
                         "user_id": f"o{1000 + i}", "event": "view", "channel": "wecom", "received_at": ts,
                         "batch_id": "b1", "ingested_at": ts + timedelta(minutes=5)})  # fmt: skip
    return pd.DataFrame(rows)


def _report():
    with warehouse.connect() as con:
        con.register("frame", _events())
        con.execute("INSERT INTO events BY NAME SELECT * FROM frame")
        con.unregister("frame")
        return service.quality_report(con, now=NOW)


def test_a_double_eleven_spike_is_labelled_not_flagged(data_dir) -> None:
    r = _report()
    found = {a.date: a for a in r.volume_anomalies}
    assert set(found) == set(SPIKES)  # both spikes are seen …
    assert found[date(2026, 11, 11)].explained_by == "双11"  # … 双11 is labelled …
    assert found[date(2026, 11, 25)].explained_by is None
    volume = [f for f in r.findings if f.check == "volume_anomaly"]
    assert [f.detail[:10] for f in volume] == ["2026-11-25"]  # … and only the ordinary day is a finding
    rows = [row for row in service.metric_rows(r) if row["section"] == "volume_anomaly"]
    assert any(row["name"] == "2026-11-11" and "(双11)" in row["value"] for row in rows)
    truth = {"volume_anomalies": [{"channel": "wecom", "date": "2026-11-11"}]}
    # a labelled day does not count as detected by the check
    check = [c for c in service.check_ground_truth(r, truth) if c["kind"].startswith("volume_anomaly")]
    assert check and check[0]["detected"] == 0


def test_a_brand_date_from_the_settings_labels_its_day(data_dir, monkeypatch) -> None:
    brand = {"brand_dates": [{"name": "品牌周年庆", "start": "2026-11-25", "end": "2026-11-25"}]}
    monkeypatch.setenv("LIEBIAN_CALENDAR", json.dumps(brand))
    reset_settings_cache()
    r = _report()
    assert {a.date: a.explained_by for a in r.volume_anomalies} == {
        date(2026, 11, 11): "双11",
        date(2026, 11, 25): "品牌周年庆",
    }
    assert [f for f in r.findings if f.check == "volume_anomaly"] == []

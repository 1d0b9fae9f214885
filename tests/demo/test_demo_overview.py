"""The KPI overview on a hand-made warehouse whose every number is worked out below by hand.

Runs on DuckDB, and on Spark when LIEBIAN_TEST_SPARK=1 and java is available (CI).
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from liebian.analytics import catalogue
from liebian.analytics.overview import overview, overview_rows
from liebian.engine import warehouse
from liebian.engine.backend import analytics_backend, export_parquet

SPARK = os.environ.get("LIEBIAN_TEST_SPARK") == "1" and shutil.which("java") is not None


def utc(local: str) -> datetime:
    """Asia/Shanghai wall time -> the naive UTC the warehouse stores."""
    return datetime.fromisoformat(local) - timedelta(hours=8)


# person, local time, event, campaign, referrer
EVENTS = [
    (1, "2026-03-01 10:00:00", "signup", None, None),
    (1, "2026-03-01 10:05:00", "exposure", "c1", None),
    (1, "2026-03-01 10:06:00", "join_campaign", "c1", None),
    (1, "2026-03-02 09:00:00", "app_open", None, None),  # P1 back on D1
    (1, "2026-03-03 09:00:00", "app_open", None, None),
    (2, "2026-03-01 23:30:00", "signup", "c1", None),
    (2, "2026-03-01 23:31:00", "invite_accept", "c1", 1),
    (2, "2026-03-02 00:10:00", "app_open", None, None),  # D1 in Shanghai, the same day in UTC
    (3, "2026-03-02 09:00:00", "signup", "c1", None),
    (3, "2026-03-02 09:01:00", "invite_accept", "c1", 1),
    (3, "2026-03-02 09:05:00", "join_campaign", "c1", None),  # P3 not back on 03-03
    (4, "2026-03-02 12:00:00", "exposure", "c1", None),  # an existing member, reached only
    (5, "2026-03-03 12:00:00", "signup", "c1", None),  # signs up on the last day: no D1 yet
    (5, "2026-03-03 12:01:00", "invite_accept", "c1", 5),  # a self-referral does not count
]
# order, person, local time, yuan, status (one row per order, as the importer keeps them)
ORDERS = [
    ("o1", 1, "2026-03-01 11:00:00", 100.00, "paid"),
    ("o2", 1, "2026-03-03 11:00:00", 50.00, "paid"),
    ("o3", 2, "2026-03-02 10:00:00", 80.00, "refunded"),
    ("o4", 3, "2026-03-02 10:00:00", 30.00, "cancelled"),
    ("o5", 4, "2026-03-02 13:00:00", 200.00, "paid"),
    ("o6", 3, "2026-03-02 11:00:00", 60.00, "paid"),
]
EXPECTED = {
    "persons": 5,
    "events": len(EVENTS),
    "placed_orders": 5,  # o4 was cancelled
    "gmv_fen": 49000,  # 100 + 50 + 80 + 200 + 60 yuan
    "aov_fen": 10250,  # the sheet's: paid revenue (100 + 50 + 200 + 60) / 4 paid orders
    "refund_rate": 0.2,  # o3 of five
    "reached": 5,  # everyone has a campaign event
    "participants": 2,  # P1, P3
    "participation_rate": 0.4,
    "new_users": 4,  # P1, P2, P3, P5 signed up; P4 is an existing member (no sign-up)
    "new_referred_users": 2,  # P2, P3 (P5 referred itself)
    "referred_share_of_new": 0.5,
    "k_factor": 1.0,  # received an invite: P2, P3, P5 (per participant 3 / 2) × accepted 2 / 3
    "retention_d1": 0.6667,  # P1 and P2 of P1, P2, P3 (P5 signed up on the last day)
    "ltv_multiplier": 0.4,  # referred (0 + 60) / 2 = 30 vs other new (150 + 0) / 2 = 75
}


def write_warehouse() -> None:
    now = datetime(2026, 3, 4)
    ev = pd.DataFrame(
        [
            {
                "event_id": f"e{i}",
                "ts": utc(t),
                "person_id": p,
                "id_type": "openid",
                "user_id": f"u{p}",
                "event": e,
                "channel": "miniprogram",
                "campaign_id": c,
                "invite_code": None,
                "referrer_person_id": r,
                "device_id": None,
                "ip": None,
                "props": None,
                "received_at": None,
                "batch_id": "b",
                "ingested_at": now,
            }
            for i, (p, t, e, c, r) in enumerate(EVENTS)
        ]
    )
    ev["referrer_person_id"] = ev.referrer_person_id.astype("Int64")
    od = pd.DataFrame(
        [
            {
                "order_id": o,
                "ts": utc(t),
                "person_id": p,
                "id_type": "openid",
                "user_id": f"u{p}",
                "amount_fen": round(y * 100),
                "currency": "CNY",
                "status": s,
                "channel": "miniprogram",
                "campaign_id": None,
                "status_ts": utc(t),
                "props": None,
                "received_at": None,
                "batch_id": "b",
                "ingested_at": now,
            }
            for o, p, t, y, s in ORDERS
        ]
    )
    # the importer's referral edges: an accepted invite from another person (not P5's self-referral)
    ed = pd.DataFrame(
        [
            {"inviter_person_id": r, "invitee_person_id": p, "campaign_id": c, "channel": "miniprogram",
             "ts": utc(t), "event_id": f"e{i}"}
            for i, (p, t, e, c, r) in enumerate(EVENTS)
            if e == "invite_accept" and r is not None and r != p
        ]
    )  # fmt: skip
    with warehouse.connect() as con:
        for name, frame in (("events", ev), ("orders", od), ("referral_edges", ed)):
            con.register("incoming", frame)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM incoming")
            con.unregister("incoming")


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_overview_matches_the_hand_calculation(data_dir: Path, engine: str) -> None:
    if engine == "spark" and not SPARK:
        pytest.skip("Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH (CI sets both)")
    write_warehouse()
    if engine == "spark":
        export_parquet()
    with analytics_backend(engine) as backend:
        got = overview(backend, tz="Asia/Shanghai")
    assert got == pytest.approx(EXPECTED, abs=1e-4)


def test_overview_of_an_empty_warehouse_has_no_ratios(data_dir: Path) -> None:
    with warehouse.connect():
        pass
    with analytics_backend("duckdb") as backend:
        got = overview(backend)
    assert got["persons"] == 0 and got["placed_orders"] == 0 and got["gmv_fen"] == 0
    assert got["participation_rate"] is None and got["retention_d1"] is None and got["ltv_multiplier"] is None
    rows = {r["metric"]: r["value"] for r in overview_rows(got)}
    assert rows["参与率 Participation rate"] == "—"


def test_overview_rows_format_ratios_as_percentages() -> None:
    """Labels and units are the catalogue's: probabilities as percentages, money in yuan, the rest as
    numbers (K-factor can exceed 1, so it is no percentage)."""
    rows = {r["metric"]: r["value"] for r in overview_rows(EXPECTED)}
    assert rows["次日留存 D1 retention"] == "66.7%"
    assert rows["GMV"] == "¥490.00"
    assert rows["用户数 Persons"] == "5"
    assert rows["K 因子 K-factor"] == "1"  # decimals: at most two places, no trailing zeros (liebian.display)
    assert list(rows) == [catalogue.metric(key).label for key in EXPECTED]

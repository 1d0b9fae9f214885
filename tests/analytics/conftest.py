"""Analytics fixtures: hand-made warehouse rows, and the engine (DuckDB, and Spark when enabled).

Spark runs when LIEBIAN_TEST_SPARK=1 and `java` is on PATH (CI sets both); the SparkSession is
created once per test session (engine/spark.py caches it) since it takes seconds to start.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from liebian.engine import warehouse
from liebian.engine.backend import export_parquet

SPARK_ENABLED = os.environ.get("LIEBIAN_TEST_SPARK") == "1" and shutil.which("java") is not None
SPARK_SKIP = "Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH (CI sets both)"
OFFSET = timedelta(hours=8)  # Asia/Shanghai


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Rows:
    """Rows given in Asia/Shanghai local time; stored as naive UTC like the importers do."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.orders: list[dict] = []
        self.edges: list[dict] = []
        self._ids = itertools.count(1)

    def event(
        self, person: int, when: str, event: str, channel: str = "wecom", campaign: str | None = "c1", **extra
    ):
        n = next(self._ids)
        self.events.append(
            {"event_id": f"e{n}", "local": local(when), "person_id": person, "event": event, "channel": channel,
             "campaign_id": campaign, **extra}
        )  # fmt: skip

    def order(self, person: int, when: str, amount_fen: int, status: str = "paid", channel: str = "wecom",
              campaign: str | None = "c1") -> None:  # fmt: skip
        n = next(self._ids)
        self.orders.append(
            {"order_id": f"o{n}", "local": local(when), "person_id": person, "amount_fen": amount_fen,
             "status": status, "channel": channel, "campaign_id": campaign}
        )  # fmt: skip

    def edge(
        self, inviter: int, invitee: int, when: str, channel: str = "wecom", campaign: str | None = "c1"
    ):
        n = next(self._ids)
        self.edges.append(
            {"inviter_person_id": inviter, "invitee_person_id": invitee, "local": local(when), "channel": channel,
             "campaign_id": campaign, "event_id": f"x{n}"}
        )  # fmt: skip

    def write(self) -> None:
        now = datetime(2026, 4, 1)
        ev = pd.DataFrame(
            [
                {"event_id": e["event_id"], "ts": e["local"] - OFFSET, "person_id": e["person_id"], "id_type": "app",
                 "user_id": f"u{e['person_id']}", "event": e["event"], "channel": e["channel"],
                 "campaign_id": e["campaign_id"], "invite_code": None, "referrer_person_id": e.get("referrer"),
                 "device_id": None, "ip": None, "props": e.get("props"), "received_at": None, "batch_id": "t",
                 "ingested_at": now}
                for e in self.events
            ],
            columns=["event_id", "ts", "person_id", "id_type", "user_id", "event", "channel", "campaign_id",
                     "invite_code", "referrer_person_id", "device_id", "ip", "props", "received_at", "batch_id",
                     "ingested_at"],
        )  # fmt: skip
        od = pd.DataFrame(
            [
                {"order_id": o["order_id"], "ts": o["local"] - OFFSET, "person_id": o["person_id"], "id_type": "app",
                 "user_id": f"u{o['person_id']}", "amount_fen": o["amount_fen"], "currency": "CNY",
                 "status": o["status"], "channel": o["channel"], "campaign_id": o["campaign_id"],
                 "status_ts": o["local"] - OFFSET, "props": None, "received_at": None, "batch_id": "t",
                 "ingested_at": now}
                for o in self.orders
            ],
            columns=["order_id", "ts", "person_id", "id_type", "user_id", "amount_fen", "currency", "status",
                     "channel", "campaign_id", "status_ts", "props", "received_at", "batch_id", "ingested_at"],
        )  # fmt: skip
        ed = pd.DataFrame(
            [
                {"inviter_person_id": x["inviter_person_id"], "invitee_person_id": x["invitee_person_id"],
                 "campaign_id": x["campaign_id"], "channel": x["channel"], "ts": x["local"] - OFFSET,
                 "event_id": x["event_id"]}
                for x in self.edges
            ],
            columns=["inviter_person_id", "invitee_person_id", "campaign_id", "channel", "ts", "event_id"],
        )  # fmt: skip
        with warehouse.connect() as con:
            for name, df in (("events", ev), ("orders", od), ("referral_edges", ed)):
                if len(df):
                    con.register("incoming", df)
                    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM incoming")
                    con.unregister("incoming")


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "spark" and not SPARK_ENABLED:
        pytest.skip(SPARK_SKIP)
    return request.param


@pytest.fixture
def spark_required() -> None:
    if not SPARK_ENABLED:
        pytest.skip(SPARK_SKIP)


@pytest.fixture
def rows(data_dir: Path, sqlite_store: str) -> Rows:
    # sqlite_store: the KPI sheet's reward cost comes from the reward ledger in the operational store
    return Rows()


@pytest.fixture
def load(rows: Rows):
    """Write the rows to the warehouse (and export Parquet for Spark); returns the engine name."""

    def _load(engine: str = "duckdb") -> str:
        rows.write()
        if engine == "spark":
            export_parquet()
        return engine

    return _load


def fill_scenario(r: Rows) -> None:
    """The shared hand-made data set (local Asia/Shanghai times), deliberately inserted out of order.

    Period of interest: 2026-03-01 .. 2026-03-07.
    1 wecom: full journey, 2 invites, two paid orders (repeat buyer), back on D1 and D7.
    2 douyin exposure 23:59:59 then miniprogram page_view at 00:00:00 (midnight, two channels
      merged by OneID into one person), join at the same instant as the page view, one paid order
      and one refunded order.
    3 invited by 1 (edge), signup + join, a cancelled order.
    4 invited by 3 (generation 2), page_view only.
    5 old user, active 2026-01-10, silent since, back 03-03 (reactivated).
    6 old user, active 2026-02-20 (not silent), back 03-02.
    7 exposure only (reached, never active) on 03-06 in douyin.
    8 invited by 1 via douyin campaign c2, joins, buys twice.
    9 active only after the period (03-09), and 10 only before it (02-27, equal timestamps).
    """
    r.event(1, "2026-03-08 09:00:00", "app_open")  # D7 return, inserted first on purpose
    r.order(8, "2026-03-06 18:00:00", 3000, channel="douyin", campaign="c2")
    r.event(2, "2026-03-02 00:00:00", "page_view", channel="miniprogram")
    r.event(2, "2026-03-02 00:00:00", "join_campaign", channel="miniprogram")
    r.event(2, "2026-03-01 23:59:59", "exposure", channel="douyin", campaign=None)
    r.event(1, "2026-03-01 10:00:00", "exposure")
    r.event(1, "2026-03-01 10:05:00", "page_view")
    r.event(1, "2026-03-01 10:10:00", "join_campaign")
    r.event(1, "2026-03-01 10:20:00", "invite_share")
    r.event(1, "2026-03-01 10:20:00", "invite_share")
    r.event(1, "2026-03-02 09:00:00", "app_open", campaign=None)
    r.event(1, "2026-03-03 11:00:00", "share", campaign=None)
    r.event(3, "2026-03-02 09:59:00", "invite_click")
    r.event(3, "2026-03-02 10:00:00", "signup", referrer=1)
    r.event(3, "2026-03-02 10:01:00", "join_campaign")
    r.event(3, "2026-03-02 10:30:00", "invite_share")
    r.event(4, "2026-03-04 08:00:00", "page_view")
    r.event(5, "2026-01-10 12:00:00", "app_open", campaign=None)
    r.event(5, "2026-03-03 12:00:00", "login", campaign=None)
    r.event(6, "2026-02-20 12:00:00", "app_open", campaign=None)
    r.event(6, "2026-03-02 12:00:00", "checkin", campaign=None)
    r.event(7, "2026-03-06 20:00:00", "exposure", channel="douyin", campaign=None)
    r.event(8, "2026-03-04 09:00:00", "exposure", channel="douyin", campaign="c2")
    r.event(8, "2026-03-04 09:30:00", "join_campaign", channel="douyin", campaign="c2")
    r.event(9, "2026-03-09 10:00:00", "app_open", campaign=None)
    r.event(10, "2026-02-27 10:00:00", "exposure")
    r.event(10, "2026-02-27 10:00:00", "page_view")
    r.order(1, "2026-03-02 12:00:00", 10000)
    r.order(1, "2026-03-05 12:00:00", 5000)
    r.order(2, "2026-03-03 12:00:00", 8000, channel="miniprogram")
    r.order(2, "2026-03-04 12:00:00", 20000, status="refunded", channel="miniprogram")
    r.order(3, "2026-03-02 11:00:00", 4000, status="cancelled")
    r.order(8, "2026-03-04 10:00:00", 6000, channel="douyin", campaign="c2")
    r.order(10, "2026-02-27 11:00:00", 9000)
    r.edge(1, 3, "2026-03-02 10:00:00")
    r.edge(3, 4, "2026-03-04 08:00:00")
    r.edge(1, 8, "2026-03-04 09:30:00", channel="douyin", campaign="c2")


def random_rows(rows: Rows, seed: int) -> None:
    rng = random.Random(seed)
    names = ["exposure", "page_view", "join_campaign", "app_open"]
    base = datetime(2026, 2, 27)
    for p in range(1, 61):
        for _ in range(rng.randint(3, 14)):
            # half-hour resolution over 11 days: many equal timestamps and some outside the period
            when = base + timedelta(minutes=rng.randrange(11 * 24 * 60) // 30 * 30)
            rows.event(p, when.isoformat(sep=" "), rng.choice(names), channel=rng.choice(["wecom", "douyin"]))
        for _ in range(rng.randint(1, 6)):
            when = base + timedelta(minutes=rng.randrange(11 * 24 * 60) // 30 * 30)
            rows.order(
                p, when.isoformat(sep=" "), rng.randint(1, 9) * 1000, rng.choice(["paid", "paid", "refunded"])
            )


@pytest.fixture
def random_data(rows: Rows) -> Rows:
    """60 persons with random events and orders on a half-hour grid (equal timestamps are common)."""
    random_rows(rows, seed=11)
    return rows


@pytest.fixture
def scenario(rows: Rows) -> Rows:
    fill_scenario(rows)
    return rows

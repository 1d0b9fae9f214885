"""Hourly KPI series of live campaigns: counts against plain Python (Asia/Shanghai hours, midnight
included), the daily cycle in the detector, the hourly watch (job, rules, API, CLI)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.campaigns import service as campaigns
from liebian.cli import app as cli_app
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.jobs import registry
from liebian.monitor import anomalies, service
from liebian.monitor import rules as monitor_rules
from liebian.monitor.detector import detect
from liebian.web.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from campaign_helpers import rules  # noqa: E402

OFFSET = timedelta(hours=8)  # Asia/Shanghai, the display zone: UTC+8 all year


def write(events: list[dict], orders: list[dict] = ()) -> None:
    """Rows with a naive *local* time `at` go into the warehouse as naive UTC, like the importers."""
    now = utcnow()
    ev = pd.DataFrame(
        [{"event_id": f"e{i}", "ts": e["at"] - OFFSET, "person_id": e["person"], "id_type": "app",
          "user_id": f"u{e['person']}", "event": e["event"], "channel": e.get("channel", "wecom"),
          "campaign_id": e.get("campaign"), "batch_id": "t", "ingested_at": now} for i, e in enumerate(events)]
    )  # fmt: skip
    od = pd.DataFrame(
        [{"order_id": f"o{i}", "ts": o["at"] - OFFSET, "person_id": o["person"], "id_type": "app",
          "user_id": f"u{o['person']}", "amount_fen": o["fen"], "currency": "CNY", "status": o.get("status", "paid"),
          "channel": o.get("channel", "wecom"), "campaign_id": o.get("campaign"), "status_ts": o["at"] - OFFSET,
          "batch_id": "t", "ingested_at": now} for i, o in enumerate(orders)]
    )  # fmt: skip
    with warehouse.connect() as con:
        for name, df in (("events", ev), ("orders", od)):
            if len(df):
                con.register("incoming", df)
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM incoming")
                con.unregister("incoming")


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def plain_counts(events: list[dict], orders: list[dict], campaign: str, channel: str | None = None) -> dict:
    """Per local hour, counted in plain Python: {hour: {metric: value}}."""
    mine = [
        e for e in events if e.get("campaign") == campaign and channel in (None, e.get("channel", "wecom"))
    ]
    paid = [o for o in orders if o.get("campaign") == campaign and o.get("status", "paid") == "paid"
            and channel in (None, o.get("channel", "wecom"))]  # fmt: skip
    # new users: first registration; no channel here has a sign-up, so a person's first event or
    # order anywhere registers them, and counts when that row is of the campaign (and channel)
    rows = [("e", x) for x in events] + [("o", x) for x in orders]
    first_at: dict[int, datetime] = {}
    for _, x in rows:
        first_at[x["person"]] = min(first_at.get(x["person"], x["at"]), x["at"])
    first = {
        x["person"]: x["at"] for _, x in rows
        if x["at"] == first_at[x["person"]] and x.get("campaign") == campaign
        and channel in (None, x.get("channel", "wecom"))
    }  # fmt: skip
    out: dict[datetime, dict] = defaultdict(lambda: defaultdict(set))
    for e in mine:
        h = out[hour_of(e["at"])]
        h["reached"].add(e["person"])
        if e["event"] != "exposure":
            h["active_users"].add(e["person"])
        if e["event"] == "join_campaign":
            h["participants"].add(e["person"])
    for person, at in first.items():
        out[hour_of(at)]["new_users"].add(person)
    result = {}
    for hour, sets in out.items():
        result[hour] = {k: len(v) for k, v in sets.items()}
    for o in paid:
        r = result.setdefault(hour_of(o["at"]), {})
        r["paid_orders"] = r.get("paid_orders", 0) + 1
        r["revenue_fen"] = r.get("revenue_fen", 0) + o["fen"]
    return result


COUNTS = ("reached", "active_users", "participants", "new_users", "paid_orders", "revenue_fen")


def test_hourly_series_match_plain_python_counts_across_local_midnight(data_dir) -> None:
    d1 = datetime(2026, 10, 5)  # local days: 10-05 20:00 … 10-06 04:00 spans local midnight
    rng = np.random.default_rng(7)
    events = [  # persons 1–20 were seen ten days earlier: not new in the window
        {"at": d1 - timedelta(days=10) + timedelta(minutes=p), "person": p, "event": "page_view", "campaign": "c_live"}
        for p in range(1, 21)
    ]  # fmt: skip
    for _ in range(500):
        events.append({
            "at": d1 + timedelta(hours=20, seconds=int(rng.integers(0, 8 * 3600))),
            "person": int(rng.integers(1, 80)),
            "event": str(rng.choice(["exposure", "page_view", "join_campaign", "invite_share"])),
            "campaign": str(rng.choice(["c_live", "c_other"])),
            "channel": str(rng.choice(["wecom", "app"])),
        })  # fmt: skip
    # the boundary: 23:59:59 belongs to 10-05 23:00, 00:00:00 to 10-06 00:00 (UTC 15:59:59 / 16:00:00)
    midnight = d1 + timedelta(days=1)
    events += [
        {
            "at": midnight - timedelta(seconds=1),
            "person": 901,
            "event": "join_campaign",
            "campaign": "c_live",
        },
        {"at": midnight, "person": 902, "event": "join_campaign", "campaign": "c_live"},
        {
            "at": midnight - timedelta(seconds=30),
            "person": 903,
            "event": "join_campaign",
            "campaign": "c_live",
        },
        {
            "at": midnight + timedelta(seconds=10),
            "person": 903,
            "event": "join_campaign",
            "campaign": "c_live",
        },
    ]
    orders = [
        {"at": d1 + timedelta(hours=20, seconds=int(rng.integers(0, 8 * 3600))), "person": int(rng.integers(1, 80)),
         "fen": int(rng.integers(100, 10000)), "campaign": str(rng.choice(["c_live", "c_other"])),
         "status": str(rng.choice(["paid", "paid", "refunded"])), "channel": str(rng.choice(["wecom", "app"]))}
        for _ in range(120)
    ] + [
        {"at": midnight - timedelta(seconds=1), "person": 901, "fen": 1990, "campaign": "c_live"},
        {"at": midnight, "person": 902, "fen": 2990, "campaign": "c_live"},
    ]  # fmt: skip
    write(events, orders)

    far = datetime(2027, 1, 1)  # every hour has ended
    for channel in (None, "app"):
        frame = anomalies.kpi_frame(d1.date(), midnight.date(), grain="hour", campaign_id="c_live", channel=channel, now=far)  # fmt: skip
        assert len(frame) == 48 and frame.index[0] == pd.Timestamp(d1)
        want = plain_counts(events, orders, "c_live", channel)
        for ts, row in frame.iterrows():
            exp = want.get(ts.to_pydatetime(), {})
            assert {k: int(row[k]) for k in COUNTS} == {k: exp.get(k, 0) for k in COUNTS}, (channel, ts)
            reached = exp.get("reached", 0)
            rate = row["participation_rate"]
            assert (
                np.isnan(rate)
                if reached == 0
                else rate == pytest.approx(exp.get("participants", 0) / reached)
            )
        assert frame["participants"].sum() > 0 and frame["new_users"].sum() > 0
    series = anomalies.metric_series("participants", d1.date(), midnight.date(), grain="hour", campaign_id="c_live", now=far)  # fmt: skip
    for hour, inside, outside in (
        (midnight - timedelta(hours=1), {901, 903}, 902),
        (midnight, {902, 903}, 901),
    ):
        joiners = {e["person"] for e in events if e["event"] == "join_campaign" and e.get("campaign") == "c_live"
                   and hour_of(e["at"]) == hour}  # fmt: skip
        assert inside <= joiners and outside not in joiners
        assert series[pd.Timestamp(hour)] == len(joiners)
    # The daily series splits at the same local midnight (10-05 vs 10-06)
    daily = anomalies.metric_series("paid_orders", d1.date(), midnight.date(), campaign_id="c_live")
    day_counts = defaultdict(int)
    for o in orders:
        if o.get("campaign") == "c_live" and o.get("status", "paid") == "paid":
            day_counts[o["at"].date()] += 1
    assert [int(v) for v in daily] == [day_counts[d1.date()], day_counts[midnight.date()]]
    # The hour in progress is left out (it would read as a drop); so are later hours
    during = midnight + timedelta(hours=3, minutes=30) - OFFSET  # 10-06 03:30 local, as naive UTC
    cut = anomalies.metric_series("participants", d1.date(), midnight.date(), grain="hour", campaign_id="c_live", now=during)  # fmt: skip
    assert cut.index[-1] == pd.Timestamp(midnight + timedelta(hours=2))
    # bad input is named
    with pytest.raises(service.MonitorError, match="grain"):
        anomalies.metric_series("participants", d1.date(), d1.date(), grain="minute")
    with pytest.raises(service.MonitorError, match="at most 31 days"):
        anomalies.metric_series("participants", date(2026, 1, 1), date(2026, 3, 1), grain="hour")


def _launch(session, cid: str, launched_at: datetime, **window) -> None:
    campaigns.create_campaign(session, rules("invite_task", **window), campaign_id=cid)
    campaigns.launch(session, cid, now=launched_at)


def test_live_series_cover_live_campaigns_only_from_their_start(sqlite_store) -> None:
    now = utcnow()
    local_now = now + OFFSET
    launched = now - timedelta(hours=30)
    with session_scope() as s:
        _launch(s, "c_live", launched, end_at=(now + timedelta(days=10)).isoformat())
        _launch(s, "c_ended", now - timedelta(days=5), end_at=(now - timedelta(hours=1)).isoformat())
        campaigns.create_campaign(s, rules("invite_task"), campaign_id="c_draft")
        _launch(s, "c_paused", now - timedelta(days=2))
        campaigns.pause(s, "c_paused")
    start = hour_of(local_now) - timedelta(hours=40)  # ten hours before c_live's launch
    events = [
        {"at": start + timedelta(hours=h, minutes=m), "person": 1000 * h + m + (500 if ch == "app" else 0),
         "event": "join_campaign", "campaign": cid, "channel": ch}
        for h in range(41) for m in range(0, 60, 20) for cid in ("c_live", "c_ended", "c_draft", "c_paused")
        for ch in ("wecom", "app")
    ]  # fmt: skip
    write(events)
    with session_scope() as s:
        live = anomalies.live_series(s, days=3, now=now)
    assert {e["campaign_id"] for e in live} == {"c_live"}  # ended, draft and paused are not watched
    assert {e["channel"] for e in live} == {None, "wecom", "app"}
    since = hour_of(launched + OFFSET)
    for e in live:
        frame = e["frame"]
        assert e["since"] == since and frame.index[0] == pd.Timestamp(since)
        assert frame.index[-1] == pd.Timestamp(
            hour_of(local_now) - timedelta(hours=1)
        )  # the last finished hour
        want = plain_counts(events, [], "c_live", e["channel"])
        got = {ts.to_pydatetime(): int(v) for ts, v in frame["participants"].items()}
        assert got == {h: want.get(h, {}).get("participants", 0) for h in got}
        assert sum(got.values()) == 3 * (2 if e["channel"] is None else 1) * len(got)


PROFILE = np.array([1.0, .5, .3, .2, .2, .3, .8, 1.8, 2.6, 3.0, 3.2, 3.8, 4.2, 3.6, 3.2, 3.0, 3.2, 3.6, 4.2,
                    5.0, 5.6, 5.4, 4.0, 2.2])  # fmt: skip
PROFILE = PROFILE / PROFILE.mean()  # a consumer day: quiet nights, a lunch peak, the evening peak


def cycle(rng: np.random.Generator, days: int = 9, level: float = 500.0, noise: float = 0.03) -> pd.Series:
    idx = pd.date_range("2026-11-01", periods=24 * days, freq="h")
    trend = level * (1 + 0.02 * np.arange(len(idx)) / 24)
    return pd.Series(trend * PROFILE[idx.hour] * np.exp(rng.normal(0, noise, len(idx))), index=idx)


def test_detector_on_hourly_series_with_a_daily_cycle() -> None:
    """A daily cycle (period 24) the way daily series have a weekly one: injected spikes and drops in
    days 6–9 are found, a normal cycle (×28 between 4:00 and 20:00) raises nothing."""
    found = alerts = true_alerts = normal_alerts = 0
    n = 12
    for seed in range(n):
        rng = np.random.default_rng(seed)
        normal = cycle(rng)
        normal_alerts += sum(a.alert for a in detect(normal, period=24))
        s = normal.copy()
        at = int(rng.integers(24 * 5, 24 * 9))
        s.iloc[at] *= float(rng.choice([1.6, 2.0, 0.5, 0.4]))
        flagged = [s.index.get_loc(a.ts) for a in detect(s, period=24) if a.alert]
        alerts += len(flagged)
        true_alerts += flagged.count(at)
        found += at in flagged
    print(f"hourly detector: found {found}/{n}, precision {true_alerts / max(alerts, 1):.3f}, "
          f"alerts on {n} normal series {normal_alerts}")  # fmt: skip
    assert normal_alerts == 0
    assert found / n >= 0.9 and true_alerts / alerts >= 0.9


def test_detector_on_hourly_counts_uses_the_square_root() -> None:
    """Hourly counts are Poisson: ~3 at night, ~100 in the evening. In logs the night noise would
    dwarf the evening's; `counts=True` (the square root) keeps a normal day quiet and finds a ×2.5
    evening spike."""
    rng = np.random.default_rng(3)
    idx = pd.date_range("2026-11-01", periods=24 * 9, freq="h")
    mean = 40 * PROFILE[idx.hour]
    normal = pd.Series(rng.poisson(mean).astype(float), index=idx)
    log_alerts = sum(a.alert for a in detect(normal, period=24))
    sqrt_alerts = sum(a.alert for a in detect(normal, period=24, counts=True))
    print(f"Poisson hourly counts: alerts on a normal series in logs {log_alerts}, square root {sqrt_alerts}")
    assert sqrt_alerts == 0 and log_alerts > 0
    spiked = normal.copy()
    at = 24 * 8 + 20  # day 9, 20:00
    spiked.iloc[at] = rng.poisson(mean[at] * 2.5)
    hits = [a for a in detect(spiked, period=24, counts=True) if a.alert]
    assert [a.ts for a in hits] == [idx[at]] and hits[0].observed > 2 * hits[0].expected


def _cycle_events(
    rng, start: datetime, hours: int, campaign: str, person: int, spike_at: datetime
) -> list[dict]:
    """Joins per hour following PROFILE (~20/h on average) in two channels; ×3 in `app` at spike_at."""
    out = []
    for h in range(hours):
        at = start + timedelta(hours=h)
        for ch, share in (("wecom", 0.6), ("app", 0.4)):
            n = int(rng.poisson(20 * share * PROFILE[at.hour] * (3 if at == spike_at and ch == "app" else 1)))
            for i in range(n):
                person += 1
                out.append({"at": at + timedelta(minutes=int(i * 59 / n)), "person": person,
                            "event": "join_campaign", "campaign": campaign, "channel": ch})  # fmt: skip
    return out


def test_hourly_watch_alerts_a_spike_of_a_live_campaign_and_not_a_normal_hour(sqlite_store) -> None:
    # A fixed evening (no calendar effect that day); the campaigns' status follows the real clock.
    spike = datetime(2026, 10, 20, 20)  # local
    start = spike - timedelta(days=8)
    now = utcnow()
    with session_scope() as s:
        _launch(
            s, "c_live", start - OFFSET - timedelta(hours=1), end_at=(now + timedelta(days=3)).isoformat()
        )
        _launch(s, "c_ended", start - OFFSET, end_at=(now - timedelta(minutes=1)).isoformat())
    rng = np.random.default_rng(11)
    hours = 24 * 8 + 1
    write(_cycle_events(rng, start, hours, "c_live", 0, spike) + _cycle_events(rng, start, hours, "c_ended", 10**6, spike))  # fmt: skip
    with session_scope() as s:
        # 19:00, the hour before the spike: a normal hour of the daily cycle raises nothing
        before = anomalies.scan_live(s, now=spike - OFFSET + timedelta(minutes=5), notify_new=False)
        assert before["hour"] == (spike - timedelta(hours=1)).isoformat()
        assert before["alerts"] == 0 and before["series"] == 6, before  # total, wecom, app × 2 metrics
        after = anomalies.scan_live(s, now=spike - OFFSET + timedelta(hours=1, minutes=5), notify_new=False)
        opened = service.list_alerts(s, status="open")
    assert after["hour"] == spike.isoformat() and after["alerts"] >= 1
    by_scope = {(a["scope"].get("campaign_id"), a["scope"].get("channel")): a for a in opened}
    assert ("c_live", "app") in by_scope and not any(cid == "c_ended" for cid, _ in by_scope)
    a = by_scope[("c_live", "app")]
    assert a["metric"] == "participants" and a["kind"] == "anomaly" and a["period"] == "2026-10-20T20:00"
    assert a["observed"] > 2 * a["expected"] and "突增" in a["title"]  # stated against the expectation
    assert a["suggested_action"] == "review_channel"


def test_hourly_rate_rule_on_live_campaigns(sqlite_store) -> None:
    now = utcnow()
    hour = hour_of(now + OFFSET) - timedelta(hours=2)
    with session_scope() as s:
        for cid in ("c_low", "c_small"):
            _launch(s, cid, now - timedelta(days=1))
        _launch(s, "c_over", now - timedelta(days=3), end_at=(now - timedelta(minutes=1)).isoformat())
        rule = monitor_rules.create_rule(s, {"name": "参与率低于15%", "metric": "participation_rate", "op": "<",
                                       "threshold": 0.15, "level": "重要", "action": "raise_reward_tier"}, actor="t")  # fmt: skip
        monitor_rules.create_rule(
            s, {"name": "负面", "metric": "negative_share", "op": ">", "threshold": 0.05}, actor="t"
        )
    events = []
    for k, (cid, reached, joined) in enumerate((("c_low", 40, 4), ("c_small", 10, 0), ("c_over", 40, 0))):
        for p in range(reached):
            events.append({"at": hour + timedelta(minutes=p), "person": 1000 * k + p, "campaign": cid,
                           "event": "join_campaign" if p < joined else "page_view"})  # fmt: skip
    write(events)
    with session_scope() as s:
        found = monitor_rules.evaluate_rules(s, hour=hour + timedelta(minutes=17), now=now, notify_new=False)
    # 4/40 = 10% with 40 reached alerts; 0/10 is below the 30-person base; an ended campaign is not live
    assert [(a["scope"], a["observed"], a["period"]) for a in found] == [
        ({"campaign_id": "c_low"}, 0.1, hour.strftime("%Y-%m-%dT%H:00"))
    ]
    assert found[0]["rule_id"] == rule["id"]
    with pytest.raises(service.MonitorError, match="day or an hour"), session_scope() as s:
        monitor_rules.evaluate_rules(s)


def test_hourly_series_over_http_cli_and_the_job(sqlite_store, admin_headers) -> None:
    now = utcnow()
    hour = hour_of(now + OFFSET) - timedelta(hours=1)
    with session_scope() as s:
        _launch(s, "c_live", now - timedelta(hours=5))
    write([{"at": hour + timedelta(minutes=m), "person": m, "event": "join_campaign", "campaign": "c_live",
            "channel": "app"} for m in range(7)])  # fmt: skip
    day = hour.date().isoformat()
    with TestClient(create_app(), headers=admin_headers) as c:
        r = c.get("/api/v1/monitor/series", params={"metric": "participants", "start": day, "end": day,
                                                   "grain": "hour", "campaign_id": "c_live"})  # fmt: skip
        assert r.status_code == 200, r.text
        points = {p["ts"]: p["value"] for p in r.json()["points"]}
        assert points[hour.isoformat()] == 7 and max(points) == hour.isoformat()  # nothing unfinished
        r = c.get("/api/v1/monitor/series", params={"metric": "nope", "start": day, "end": day})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "metric"
        # two days: `hour` is yesterday's last hour when the test runs just after local midnight
        r = c.get("/api/v1/monitor/series/live", params={"metric": "participants", "days": 2})
        assert r.status_code == 200
        live = {(e["campaign_id"], e["channel"]): e for e in r.json()}
        assert set(live) == {("c_live", None), ("c_live", "app")}
        assert {p["ts"]: p["value"] for p in live[("c_live", "app")]["points"]}[hour.isoformat()] == 7
        r = c.post("/api/v1/monitor/rules/evaluate", params={"hour": hour.isoformat()})
        assert r.status_code == 200 and r.json() == []
    runner = CliRunner()
    out = runner.invoke(cli_app, ["alerts", "series", "--metric", "participants", "--start", day, "--end", day,
                                  "--grain", "hour", "--campaign-id", "c_live", "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert {p["ts"]: p["value"] for p in json.loads(out.stdout)}[hour.isoformat()] == 7
    out = runner.invoke(cli_app, ["alerts", "live", "--days", "2", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert {(p["channel"], p["ts"]): p["value"] for p in json.loads(out.stdout)}[
        ("app", hour.isoformat())
    ] == 7
    assert "monitor-live" in registry()
    out = runner.invoke(cli_app, ["job", "run", "monitor-live"])
    assert out.exit_code == 0, out.output
    assert (
        "too little history" in out.output or "need at least" in out.output
    )  # five hours old: skipped, said so

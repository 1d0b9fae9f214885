"""The data-quality report on hand-made warehouse data with known, injected problems.

Every figure is checked against a calculation in pandas over the frames the test inserted.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.identity import service as identity
from liebian.quality import service
from liebian.web.app import create_app

NOW = datetime(2026, 9, 1)
FIRST_DAY = date(2026, 6, 1)
DAYS = 56
WEEKDAY_BASE = {"wecom": [40, 42, 45, 41, 50, 60, 58], "douyin": [30, 31, 29, 33, 35, 45, 44]}
PERSONS = range(1000, 1200)
ANOMALY = ("douyin", date(2026, 7, 8), 0.15)


def utc_start_of_local_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day) - timedelta(hours=8)  # Asia/Shanghai, no DST


def clean_frames() -> dict[str, pd.DataFrame]:
    events, orders, messages = [], [], []
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        base = utc_start_of_local_day(day) + timedelta(hours=2)
        for channel, weekly in WEEKDAY_BASE.items():
            n = weekly[day.weekday()] + (d * 7 % 5) - 2  # a little deterministic noise
            for i in range(n):
                ts = base + timedelta(seconds=61 * i)
                person = PERSONS[(i + d) % len(PERSONS)]
                event_id = f"{channel}-{d}-{i}"
                events.append(
                    {
                        "event_id": event_id,
                        "ts": ts,
                        "person_id": person,
                        "id_type": "openid",
                        "user_id": f"o{person}",
                        "event": "view",
                        "channel": channel,
                        "campaign_id": "c1",
                        "device_id": f"dev{person}",
                        "ip": "10.0.0.1",
                        "received_at": ts + timedelta(minutes=5),
                        "batch_id": "b1",
                        "ingested_at": ts + timedelta(hours=1),
                    }
                )
                if i % 10 == 0:
                    orders.append(
                        {
                            "order_id": f"ord-{event_id}",
                            "ts": ts,
                            "person_id": person,
                            "id_type": "openid",
                            "user_id": f"o{person}",
                            "amount_fen": 1990 + i,
                            "currency": "CNY",
                            "status": "paid",
                            "channel": channel,
                            "campaign_id": "c1",
                            "status_ts": ts,
                            "received_at": ts + timedelta(minutes=1),
                            "batch_id": "b1",
                            "ingested_at": ts + timedelta(hours=1),
                        }
                    )
        messages.append(
            {
                "message_id": f"m{d}",
                "ts": base,
                "group_id": "g1",
                "person_id": PERSONS[d],
                "id_type": "openid",
                "user_id": f"o{PERSONS[d]}",
                "text": "早上好",
                "channel": "wecom",
                "batch_id": "b1",
                "ingested_at": base,
            }
        )
    edges = [
        {
            "inviter_person_id": PERSONS[i],
            "invitee_person_id": PERSONS[i + 1],
            "campaign_id": "c1",
            "channel": "wecom",
            "ts": datetime(2026, 6, 2) + timedelta(minutes=i),
            "event_id": f"wecom-1-{i}",
        }
        for i in range(20)
    ]
    idmap = [{"id_type": "openid", "id_value": f"o{p}", "person_id": p} for p in PERSONS]
    return {
        "events": pd.DataFrame(events),
        "orders": pd.DataFrame(orders),
        "messages": pd.DataFrame(messages),
        "referral_edges": pd.DataFrame(edges),
        "identity_map": pd.DataFrame(idmap),
        "rejects": pd.DataFrame(
            columns=["batch_id", "kind", "source", "line", "field", "reason", "raw", "rejected_at"]
        ),
    }


def inject_problems(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    ev, od = frames["events"].copy(), frames["orders"].copy()
    # volume anomaly: keep 15 % of one channel-day
    channel, day, factor = ANOMALY
    start = utc_start_of_local_day(day)
    that_day = ev[(ev.channel == channel) & (ev.ts >= start) & (ev.ts < start + timedelta(days=1))]
    ev = ev.drop(that_day.index[round(len(that_day) * factor) :])
    # duplicate content: the same view again 0.4 s later under a new event id
    dups = ev.iloc[[5, 300, 900, 1500, 2500]].copy()
    dups["event_id"] += "-dup"
    dups["ts"] += timedelta(milliseconds=400)
    # a resend 3 s later is not a duplicate
    resend = ev.iloc[[10]].copy()
    resend["event_id"] += "-resend"
    resend["ts"] += timedelta(seconds=3)
    ev = pd.concat([ev, dups, resend], ignore_index=True)
    # blanks in required and optional fields
    ev.loc[[20, 21, 22], "user_id"] = ""
    ev.loc[[30], "channel"] = "  "
    ev.loc[range(40, 52), "campaign_id"] = None
    ev.loc[range(60, 64), "device_id"] = ""
    # late arrivals: received 30 h after the event; one without received_at, ingested 48 h later
    ev.loc[[100, 101, 102, 103], "received_at"] = ev.loc[[100, 101, 102, 103], "ts"] + timedelta(hours=30)
    ev.loc[[104], "received_at"] = None
    ev.loc[[104], "ingested_at"] = ev.loc[[104], "ts"] + timedelta(hours=48)
    # out-of-range times
    future = ev.iloc[[200]].copy().assign(event_id="future", ts=datetime(2027, 1, 1), received_at=None)
    old = ev.iloc[[201]].copy().assign(event_id="old", ts=datetime(2014, 5, 1), received_at=None)
    future["ingested_at"] = future["ts"]
    old["ingested_at"] = old["ts"] + timedelta(minutes=1)
    ev = pd.concat([ev, future, old], ignore_index=True)

    od.loc[[3, 4], "amount_fen"] = 0
    od.loc[[5], "amount_fen"] = 20_000_000
    od.loc[[6], ["status", "status_ts"]] = ["refunded", od.loc[6, "ts"] - timedelta(hours=2)]
    od.loc[[7], ["status", "status_ts"]] = [
        "refunded",
        od.loc[7, "ts"] + timedelta(days=2),
    ]  # a normal refund
    od.loc[[8], "received_at"] = None
    od.loc[[8], "ingested_at"] = od.loc[8, "ts"] + timedelta(hours=25)
    stranger = od.iloc[[9]].copy().assign(order_id="ord-stranger", person_id=999_999)
    again = od.iloc[[10]].copy()  # the same order_id loaded twice
    od = pd.concat([od, stranger, again], ignore_index=True)

    edges = pd.concat(
        [
            frames["referral_edges"],
            pd.DataFrame(
                [
                    {
                        "inviter_person_id": PERSONS[0],
                        "invitee_person_id": 888_888,
                        "campaign_id": "c1",
                        "channel": "wecom",
                        "ts": datetime(2026, 6, 3),
                        "event_id": "ghost",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    at = datetime(2026, 7, 1, 12)
    rejects = pd.DataFrame(
        [
            ("b2", "events", "a.csv", 2, "ts", "unreadable timestamp 2026-13-45", "raw", at),
            ("b2", "events", "a.csv", 3, "ts", "unreadable timestamp yesterday", "raw", at),
            ("b2", "events", "a.csv", 4, "user_id", "missing user_id", "raw", at),
            ("b2", "events", "a.csv", 5, "event_id", "missing event_id", "raw", at),
            ("b2", "events", "a.csv", 5, "channel", "unknown channel 火星", "raw", at),  # same line: one row
            ("b2", "events", "a.csv", 6, "channel", "unknown channel myspace", "raw", at),
            ("b3", "orders", "o.xlsx", 2, "amount_fen", "negative amount", "raw", at),
            ("b3", "orders", "o.xlsx", 3, "amount", "negative amount", "raw", at),
            ("b3", "orders", "o.xlsx", 4, "user_id", "not a phone number", "raw", at),
            ("b4", "events", "api", None, "row", "too many columns: expected 9", "raw", at),
        ],
        columns=["batch_id", "kind", "source", "line", "field", "reason", "raw", "rejected_at"],
    )
    return frames | {"events": ev, "orders": od, "referral_edges": edges, "rejects": rejects}


def load(frames: dict[str, pd.DataFrame]) -> None:
    with warehouse.connect() as con:
        for table, frame in frames.items():
            if frame.empty:
                continue
            con.register("frame", frame)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")
            con.unregister("frame")


def report(**kwargs):
    with warehouse.connect() as con:
        return service.quality_report(con, now=NOW, **kwargs)


# ------------------------------------------------------------------------- independent figures


def blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype("string").str.strip() == "")


def expected_duplicates(ev: pd.DataFrame) -> int:
    ev = ev.sort_values(["person_id", "event", "channel", "ts", "event_id"])
    gap = ev.groupby(["person_id", "event", "channel"])["ts"].diff()
    return int((gap <= pd.Timedelta(seconds=1)).sum())


def delay(frame: pd.DataFrame) -> pd.Series:
    arrived = pd.to_datetime(frame["received_at"]).fillna(pd.to_datetime(frame["ingested_at"]))
    return arrived - pd.to_datetime(frame["ts"])


def expected_late(frame: pd.DataFrame, hours: float = 24) -> pd.Series:
    return delay(frame) > pd.Timedelta(hours=hours)


@pytest.fixture
def dirty(data_dir):
    frames = inject_problems(clean_frames())
    load(frames)
    return frames


def test_clean_data_scores_100_with_no_findings(data_dir):
    load(clean_frames())
    r = report()
    assert r.scores.model_dump() == {
        "completeness": 100,
        "consistency": 100,
        "timeliness": 100,
        "overall": 100,
    }
    assert r.findings == []
    assert r.volume_anomalies == []
    assert r.error_rate.error_rate == 0 and r.error_rate.passed
    assert r.quarantine.rejected_rows == 0 and r.quarantine.by_category == {}
    frames = clean_frames()
    assert r.error_rate.rows_received == sum(len(frames[t]) for t in ("events", "orders", "messages"))


def test_empty_warehouse_is_clean_not_an_error(data_dir):
    r = report()
    assert r.scores.overall == 100 and r.findings == [] and r.error_rate.rows_received == 0


def test_completeness_null_rates_match_pandas(dirty):
    r = report()
    fields = {(f.table, f.field): f for f in r.completeness.fields}
    required_cells = missing_cells = 0
    for table, required in service.REQUIRED_FIELDS.items():
        frame = dirty[table]
        for column in required + service.OPTIONAL_FIELDS[table]:
            missing = int(blank(frame[column]).sum())
            got = fields[(table, column)]
            assert (got.rows, got.missing) == (len(frame), missing), (table, column)
            assert got.null_rate == pytest.approx(missing / len(frame))
            if column in required:
                required_cells += len(frame)
                missing_cells += missing
    assert fields[("events", "user_id")].missing == 3
    assert fields[("events", "campaign_id")].missing == 12 and not fields[("events", "campaign_id")].required
    assert fields[("events", "device_id")].missing == 4
    assert r.completeness.missing_cells == missing_cells == 4
    assert r.scores.completeness == pytest.approx(100 * (1 - missing_cells / required_cells))


def test_consistency_figures_match_pandas(dirty):
    r = report()
    c = r.consistency
    ev, od, msg, edges = dirty["events"], dirty["orders"], dirty["messages"], dirty["referral_edges"]

    assert c.duplicate_content_events == expected_duplicates(ev) == 5
    assert c.out_of_range_amounts == int(((od.amount_fen <= 0) | (od.amount_fen > 10_000_000)).sum()) == 3
    assert c.duplicate_order_ids == int(od.order_id.duplicated().sum()) == 1
    assert c.future_timestamps == int((ev.ts > NOW).sum()) == 1
    assert c.too_old_timestamps == int((ev.ts < datetime(2015, 1, 1)).sum()) == 1
    assert c.refunds_without_payment == int(((od.status == "refunded") & (od.status_ts < od.ts)).sum()) == 1
    assert c.orders_without_events == int((~od.person_id.isin(ev.person_id)).sum()) == 1
    known = set(dirty["identity_map"].person_id) | set(ev.person_id) | set(od.person_id)
    unknown = ~edges.inviter_person_id.isin(known) | ~edges.invitee_person_id.isin(known)
    assert c.edges_to_unknown_persons == int(unknown.sum()) == 1
    assert c.identity_conflicts is None  # no operational store was given

    rows = len(ev) + len(od) + len(msg) + len(edges)
    problems = (
        5 + 1 + 1 + (3 + 1 + 1 + 1) + 1
    )  # events: dup, future, old; orders: amount×3, dup id, refund, orphan; edge
    assert (c.rows_checked, c.rows_with_problems) == (rows, problems)
    assert r.scores.consistency == pytest.approx(100 * (1 - problems / rows))


def test_a_higher_amount_limit_accepts_the_large_order(dirty):
    r = report(config=service.QualityConfig(max_amount_fen=50_000_000, amount_outlier_factor=0))
    assert r.consistency.out_of_range_amounts == 2


def test_amounts_far_from_the_median_order_are_out_of_range(data_dir):
    # a ¥0.01 test order and a price keyed in fen as yuan (¥88,888 for a ¥20 basket) are below the
    # absolute limit but two orders of magnitude off the median order
    frames = clean_frames()
    od = frames["orders"].copy()
    od.loc[[0], "amount_fen"] = 1
    od.loc[[1], "amount_fen"] = 8_888_800
    od.loc[[2], "amount_fen"] = 20 * 1990  # a big basket, twenty times the median: plausible
    load(frames | {"orders": od})
    median = od.amount_fen.median()
    expected = int(((od.amount_fen * 100 < median) | (od.amount_fen > median * 100)).sum())
    assert report().consistency.out_of_range_amounts == expected == 2
    assert report(config=service.QualityConfig(amount_outlier_factor=0)).consistency.out_of_range_amounts == 0


def test_timeliness_per_channel_matches_pandas(dirty):
    r = report()
    ev, od = dirty["events"], dirty["orders"]
    # 4 received 30 h late, 1 without received_at ingested 48 h late
    assert r.timeliness.late_events == int(expected_late(ev).sum()) == 5
    assert r.timeliness.late_orders == int(expected_late(od).sum()) == 1
    for ch in r.timeliness.channels:
        frame = ev if ch.table == "events" else od
        frame = frame[frame.channel == ch.channel]
        late = expected_late(frame)
        delay_h = delay(frame).dt.total_seconds() / 3600
        assert (ch.rows, ch.late_rows) == (len(frame), int(late.sum())), ch
        assert ch.median_delay_hours == pytest.approx(delay_h.median())
        assert ch.p95_delay_hours == pytest.approx(delay_h.quantile(0.95))
    total = len(ev) + len(od)
    assert r.scores.timeliness == pytest.approx(100 * (1 - 6 / total))

    stricter = report(config=service.QualityConfig(late_hours=0.5))
    assert stricter.timeliness.late_events == int(expected_late(ev, 0.5).sum())


def test_the_injected_volume_drop_is_the_only_anomaly(dirty):
    r = report()
    assert len(r.volume_anomalies) == 1
    a = r.volume_anomalies[0]
    channel, day, _ = ANOMALY
    assert (a.table, a.channel, a.date) == ("events", channel, day)

    ev = dirty["events"]
    ev = ev[(ev.channel == channel) & (ev.ts >= datetime(2015, 1, 1)) & (ev.ts <= NOW)]
    local = (ev.ts + pd.Timedelta(hours=8)).dt.date
    daily = local.value_counts()
    assert a.observed == daily[day]
    edges = (min(daily.index), max(daily.index))  # partial days are not references
    others = [day + timedelta(weeks=k) for k in (-3, -2, -1, 1, 2, 3)]
    calendar_days = {date(2026, 6, 17)}  # 618 (liebian/calendar.py) is no reference for other days
    neighbours = [daily[d] for d in others if d in daily.index and d not in {*edges, *calendar_days}]
    assert len(neighbours) == 4  # two weeks before (and not 618), two after (the data ends on 26 July)
    assert a.expected == pytest.approx(pd.Series(neighbours).median())
    assert a.ratio == pytest.approx(daily[day] / a.expected)
    assert a.z < -3.5


def test_a_silent_day_and_a_spike_are_anomalies(data_dir):
    frames = clean_frames()
    ev = frames["events"]
    silent = utc_start_of_local_day(date(2026, 6, 24))
    ev = ev[~((ev.channel == "wecom") & (ev.ts >= silent) & (ev.ts < silent + timedelta(days=1)))]
    spike_start = utc_start_of_local_day(date(2026, 7, 1))
    spike_day = ev[
        (ev.channel == "douyin") & (ev.ts >= spike_start) & (ev.ts < spike_start + timedelta(days=1))
    ]
    spike = pd.concat(
        [
            spike_day.assign(
                event_id=spike_day.event_id + f"-x{k}", ts=spike_day.ts + timedelta(seconds=5 + k)
            )
            for k in range(3)
        ]
    )
    load(frames | {"events": pd.concat([ev, spike], ignore_index=True)})
    found = {(a.channel, a.date, a.observed) for a in report().volume_anomalies}
    assert ("wecom", date(2026, 6, 24), 0) in found
    assert ("douyin", date(2026, 7, 1), 4 * len(spike_day)) in found
    assert len(found) == 2


def test_quarantine_counts_rows_once_by_category(dirty):
    q = report().quarantine
    rejects = dirty["rejects"]
    assert (
        q.rejected_rows
        == len(rejects.drop_duplicates(["batch_id", "kind", "source", "line"]).query("line.notna()")) + 1
    )
    assert q.rejected_rows == 9
    assert q.by_category == {
        "bad_identifier": 1,
        "bad_timestamp": 2,
        "missing_id": 2,
        "negative_amount": 2,
        "other": 1,
        "unknown_channel": 2,
    }
    groups = {(g.kind, g.field, g.reason): g.rows for g in q.by_reason}
    assert groups[("events", "ts", "unreadable timestamp")] == 2  # the values are not part of the group
    assert groups[("events", "channel", "unknown channel")] == 2
    assert groups[("events", "row", "too many columns")] == 1


def test_error_rate_against_the_target(dirty):
    r = report()
    e = r.error_rate
    loaded = len(dirty["events"]) + len(dirty["orders"]) + len(dirty["messages"])
    # rejected rows + loaded rows with an out-of-range value or a duplicate (refunds/orphans are not errors)
    errors = 9 + (5 + 1 + 1) + (3 + 1)
    assert (e.rows_received, e.rejected_rows, e.problem_rows) == (loaded + 9, 9, errors - 9)
    assert e.error_rate == pytest.approx(errors / (loaded + 9))
    assert e.target == 0.003
    assert e.passed is (errors / (loaded + 9) <= 0.003) is False
    assert r.findings[0].check == "error_rate"
    checks = {f.check for f in r.findings}
    assert {
        "duplicate_content_events",
        "out_of_range_amounts",
        "late_data",
        "volume_anomaly",
        "rejected:bad_timestamp",
        "missing_values",
    } <= checks
    assert report(error_target=0.01).error_rate.passed


def test_window_limits_every_figure(dirty):
    start, end = datetime(2026, 6, 15), datetime(2026, 7, 1)
    r = report(start=start, end=end)
    ev, od = dirty["events"], dirty["orders"]
    ev_in = ev[(ev.ts >= start) & (ev.ts < end)]
    od_in = od[(od.ts >= start) & (od.ts < end)]
    msg_in = dirty["messages"][(dirty["messages"].ts >= start) & (dirty["messages"].ts < end)]
    assert r.completeness.fields[0].rows == len(ev_in)
    assert r.consistency.duplicate_content_events == expected_duplicates(ev_in)
    assert r.timeliness.late_events == int(expected_late(ev_in).sum())
    assert r.error_rate.rows_received == len(ev_in) + len(od_in) + len(msg_in)  # rejects are from July
    assert r.volume_anomalies == []  # the drop is on 8 July
    with pytest.raises(ValueError, match="is not before end"):
        report(start=end, end=start)


def test_ground_truth_shape_of_the_demo_is_checked(dirty):
    truth = {
        "bad_rows": {"bad_timestamp": 2, "missing_id": 2, "negative_amount": 2, "unknown_channel": 2},
        "duplicate_content_events": 5,
        "late_events": 5,
        "out_of_range_amounts": 3,
        "volume_anomalies": [{"channel": "douyin", "date": "2026-07-08", "factor": 0.15}],
    }
    rows = service.check_ground_truth(report(), truth)
    assert all(row["ok"] for row in rows), rows
    assert len(rows) == 8
    truth["duplicate_content_events"] = 6
    assert not all(row["ok"] for row in service.check_ground_truth(report(), truth))


def test_identity_conflicts_from_the_store(dirty, sqlite_store):
    with session_scope() as s:
        identity.link(
            s,
            [
                identity.LinkEvidence(
                    identity.RawIdentifier("unionid", "u1"), identity.RawIdentifier("device_id", "d")
                ),
                identity.LinkEvidence(
                    identity.RawIdentifier("unionid", "u2"), identity.RawIdentifier("device_id", "d")
                ),
            ],
        )
    with session_scope() as s:
        r = report(session=s)
    without = report()
    assert r.consistency.identity_conflicts == 1
    assert r.consistency.rows_checked == without.consistency.rows_checked + 1
    assert r.consistency.rows_with_problems == without.consistency.rows_with_problems + 1


def test_cli_and_http_report(dirty, sqlite_store, admin_headers):
    runner = CliRunner()
    out = runner.invoke(cli_app, ["quality", "report", "--format", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["consistency"]["duplicate_content_events"] == 5
    assert body["error_rate"]["passed"] is False

    csv_out = runner.invoke(
        cli_app,
        ["quality", "report", "--format", "csv", "--max-amount-yuan", "500000", "--outlier-factor", "0"],
    )
    assert csv_out.exit_code == 0, csv_out.output
    lines = csv_out.stdout.splitlines()
    assert lines[0] == "section,name,table,channel,value"
    assert "consistency,out_of_range_amounts,,,2" in lines

    table = runner.invoke(cli_app, ["quality", "report", "--start", "2026-06-15", "--end", "2026-07-01"])
    assert table.exit_code == 0 and "error rate" in table.stdout and "findings" in table.stdout

    bad = runner.invoke(cli_app, ["quality", "report", "--start", "2026-07-01", "--end", "2026-06-01"])
    assert bad.exit_code == 2 and "is not before end" in bad.stderr

    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        response = client.get("/api/v1/quality/report", params={"late_hours": 0.5})
        assert response.status_code == 200, response.text
        assert response.json()["timeliness"]["late_events"] == int(expected_late(dirty["events"], 0.5).sum())
        assert response.json()["scores"]["overall"] == pytest.approx(body["scores"]["overall"], abs=5)
        windowed = client.get(
            "/api/v1/quality/report",
            params={"start": "2026-06-15T08:00:00+08:00", "end": "2026-07-01T00:00:00Z"},
        )
        assert windowed.json()["start"] == "2026-06-15T00:00:00Z"  # UTC, RFC 3339
        bad = client.get("/api/v1/quality/report", params={"start": "2026-07-01", "end": "2026-06-01"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "end"
        bad = client.get("/api/v1/quality/report", params={"late_hours": -1})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.late_hours"
        for field, value in [("late_hours", "inf"), ("max_amount_yuan", "nan"), ("outlier_factor", "inf")]:
            bad = client.get("/api/v1/quality/report", params={field: value})  # not a number a query can use
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == f"query.{field}", bad.text


def test_cli_on_a_fresh_store_migrates_it_and_counts_identity_conflicts(dirty):
    out = CliRunner().invoke(cli_app, ["quality", "report", "--format", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    # the CLI created the operational store on the way, so conflicts are counted (none here)
    assert body["consistency"]["identity_conflicts"] == 0
    assert body["consistency"]["duplicate_content_events"] == 5

"""The community programme on a real import: membership from join/leave events, weekly-active share
against targets with alerts through the monitor, check-ins with streaks, UGC share; API and CLI.

The scenario (UTC times; week of Monday 2026-11-02): group g1 has join/leave events, g2 has none.
  g1: u1 u2 u3 u5 u6 join 10-26; u5 leaves 10-30; u4 joins 11-03; u6 leaves 11-04.
      posts: u1 11-02 and 11-03, u2 11-05 (a 打卡 message), u7 11-06 (never joined: posting makes a member).
      check-in events: u1 11-02 11-03 11-04, u2 11-06 11-07.
  g2: posts by u1 and u8, and staff01 (a staff account).
Members of g1 during that week = at its start {u1 u2 u3 u6} + joined {u4} + posters {u1 u2 u7} = 6;
speakers 3 → speaking share 0.5. The week before: members {u1 u2 u3 u5 u6} (joined), no posts → 0.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.community import content_calendar, jobs, membership, programme, service
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.ingest import service as ingest
from liebian.monitor import service as monitor
from liebian.web.app import create_app
from shared_helpers import make_api_key

JOINS = [  # (user, event, day)
    *((u, "group_join", "2026-10-26") for u in ("u1", "u2", "u3", "u5", "u6")),
    ("u5", "group_leave", "2026-10-30"),
    ("u4", "group_join", "2026-11-03"),
    ("u6", "group_leave", "2026-11-04"),
    *(("u1", "checkin", d) for d in ("2026-11-02", "2026-11-03", "2026-11-04")),
    *(("u2", "checkin", d) for d in ("2026-11-06", "2026-11-07")),
]
POSTS = [  # (group, user, day, text)
    ("g1", "u1", "2026-11-02", "早上好"),
    ("g1", "u1", "2026-11-03", "新品好喝"),
    ("g1", "u2", "2026-11-05", "今天打卡第一天"),
    ("g1", "u7", "2026-11-06", "大家好"),
    ("g2", "u1", "2026-11-04", "有优惠吗"),
    ("g2", "u8", "2026-11-05", "想问一下门店地址"),
    ("g2", "staff01", "2026-11-05", "欢迎大家，今晚八点直播"),
]


@pytest.fixture
def imported(store: str, tmp_path: Path) -> dict[str, int]:
    """Import the scenario from CSV files; return user id → person id."""
    events = ["event_id,ts,user_id,id_type,event,channel,group_id"]
    events += [
        f"e{i},{d}T10:00:00Z,wo_{u},external_userid,{ev},wecom,g1" for i, (u, ev, d) in enumerate(JOINS)
    ]
    posts = ["message_id,ts,group_id,user_id,id_type,text"]
    posts += [f"m{i},{d}T12:00:00Z,{g},wo_{u},external_userid,{t}" for i, (g, u, d, t) in enumerate(POSTS)]
    (tmp_path / "events.csv").write_text("\n".join(events) + "\n", encoding="utf-8")
    (tmp_path / "messages.csv").write_text("\n".join(posts) + "\n", encoding="utf-8")
    assert ingest.import_file(tmp_path / "events.csv", "events").rows_loaded == len(JOINS)
    assert ingest.import_file(tmp_path / "messages.csv", "messages").rows_loaded == len(POSTS)
    with warehouse.connect() as con:
        rows = con.execute(
            "SELECT user_id, person_id FROM events UNION SELECT user_id, person_id FROM messages"
        )
        return {u.removeprefix("wo_"): int(p) for u, p in rows.fetchall()}


def test_speaking_share_is_over_members_from_join_and_leave_events(imported) -> None:
    with warehouse.connect() as con:
        health = {g["group_id"]: g for g in service.group_health(con, date(2026, 11, 2), date(2026, 11, 8))}
        record = membership.load(con)["g1"]
    g1, g2 = health["g1"], health["g2"]
    assert (g1["membership_basis"], g1["members"], g1["speakers"], g1["speaking_share"]) == (
        "members",
        6,
        3,
        0.5,
    )
    # without join/leave events the figure is over posters only, never a share of members
    assert (g2["membership_basis"], g2["members"], g2["speakers"], g2["speaking_share"]) == (
        "posters_only", 3, 3, None,
    )  # fmt: skip
    ids = {
        imported[u] for u in ("u1", "u2", "u3", "u4")
    }  # on 11-05: u5 and u6 have left; u7 has not posted yet
    assert record.members_at(datetime(2026, 11, 5)) == ids


def test_weekly_active_against_targets_raises_monitor_alerts(imported) -> None:
    with session_scope() as s, warehouse.connect() as con:
        weeks = {(w.group_id, w.week.isoformat()): w for w in programme.weekly_active(
            con, s, date(2026, 10, 26), date(2026, 11, 8))}  # fmt: skip
    before, week = weeks[("g1", "2026-10-26")], weeks[("g1", "2026-11-02")]
    assert (before.members, before.active, before.share, before.below_target) == (5, 0, 0.0, True)
    assert (week.members, week.active, week.share, week.target, week.below_target) == (6, 3, 0.5, 0.10, False)
    assert weeks[("g2", "2026-10-26")].share is None  # nobody there yet: no share, no alert
    with session_scope() as s:
        programme.set_target(s, "g1", 0.6, actor="test")
        raised = jobs.alert_below_target(s, date(2026, 11, 4), notify=False)
        again = jobs.alert_below_target(s, date(2026, 11, 4), notify=False)  # the same week: one alert
        listed = monitor.list_alerts(s)
    assert [(a["scope"]["group_id"], a["observed"], a["threshold"]) for a in raised] == [("g1", 0.5, 0.6)]
    assert again[0]["id"] == raised[0]["id"] and again[0]["occurrences"] == 2
    assert raised[0]["metric"] == "weekly_active_share" and raised[0]["id"] in {a["id"] for a in listed}


def test_streaks_on_dates() -> None:
    d = date.fromisoformat
    days = [d("2026-11-01"), d("2026-11-02"), d("2026-11-04"), d("2026-11-05"), d("2026-11-06")]
    assert programme.streaks(days, d("2026-11-06")) == (3, 3)
    assert programme.streaks(days, d("2026-11-07")) == (3, 3)  # today may not be over
    assert programme.streaks(days, d("2026-11-08")) == (0, 3)
    assert programme.streaks([], d("2026-11-08")) == (0, 0)


def test_checkins_and_ugc_share(imported) -> None:
    with warehouse.connect() as con:
        result = programme.checkins(con, date(2026, 11, 2), date(2026, 11, 8))
        ugc = {g.group_id: g for g in programme.ugc_share(con, staff_ids=["wo_staff01"])}
    persons = {p.person_id: p for p in result.persons}
    u1, u2 = persons[imported["u1"]], persons[imported["u2"]]
    assert (u1.days, u1.current_streak, u1.longest_streak) == (3, 0, 3)  # last check-in 11-04
    assert (u2.days, u2.current_streak, u2.longest_streak) == (3, 3, 3)  # message 11-05, events 11-06/07
    assert set(persons) == {imported["u1"], imported["u2"]}
    assert [(g.group_id, g.checked_in, g.members, g.rate) for g in result.groups] == [
        ("g1", 2, 6, round(2 / 6, 4))
    ]
    assert (ugc["g2"].messages, ugc["g2"].staff_messages, ugc["g2"].ugc_share) == (3, 1, round(2 / 3, 4))
    assert ugc["g1"].ugc_share == 1.0


def test_api_routes(imported, admin_headers) -> None:
    with TestClient(create_app()) as client:
        r = client.put("/api/v1/community/targets/g1", json={"target": 0.6}, headers=admin_headers)
        assert r.status_code == 200, r.text
        bad = client.put("/api/v1/community/targets/g1", json={"target": 1.5}, headers=admin_headers)
        extra = client.put(
            "/api/v1/community/targets/g1", json={"target": 0.2, "x": 1}, headers=admin_headers
        )
        assert bad.status_code == 422 and "target" in bad.text and extra.status_code == 422
        targets = client.get("/api/v1/community/targets", headers=admin_headers).json()
        assert targets["default"] == 0.10 and targets["goal"] == 0.35
        assert targets["groups"] == [{"group_id": "g1", "target": 0.6}]
        weeks = client.get(
            "/api/v1/community/weekly-active", params={"start": "2026-11-02", "end": "2026-11-08"},
            headers=admin_headers,
        ).json()  # fmt: skip
        assert [(w["group_id"], w["share"], w["below_target"]) for w in weeks] == [
            ("g1", 0.5, True), ("g2", 1.0, False),
        ]  # fmt: skip
        checkins = client.get("/api/v1/community/checkins", headers=admin_headers).json()
        assert checkins["groups"][0]["checked_in"] == 2
        ugc = client.get("/api/v1/community/ugc", headers=admin_headers).json()
        assert {g["group_id"] for g in ugc} == {"g1", "g2"}
        assert client.delete("/api/v1/community/targets/g1", headers=admin_headers).status_code == 204
        gone = client.delete("/api/v1/community/targets/g1", headers=admin_headers)
        assert gone.status_code == 404 and gone.json()["field"] == "group_id"


def test_cli_commands(imported) -> None:
    runner = CliRunner()
    r = runner.invoke(cli_app, ["community", "target-set", "g1", "0.6"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["community", "weekly-active", "--start", "2026-11-02", "--end", "2026-11-08",
                                "--below-only", "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [(w["group_id"], w["share"]) for w in json.loads(r.stdout)] == [("g1", 0.5)]
    r = runner.invoke(cli_app, ["community", "checkins", "--groups", "--format", "csv"])
    assert r.exit_code == 0 and "g1" in r.output
    assert runner.invoke(cli_app, ["community", "target-set", "g1", "2"]).exit_code == 2
    r = runner.invoke(cli_app, ["community", "calendar-add", "g1", "2026-11-05", "打卡日", "--kind", "theme_day",
                                "--theme", "打卡互动"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["community", "calendar", "--format", "json"])
    assert [(i["title"], i["checkins"], i["theme_messages"]) for i in json.loads(r.stdout)] == [
        ("打卡日", 1, 1)
    ]
    assert (
        runner.invoke(
            cli_app, ["community", "calendar-add", "g1", "2026-11-05", "x", "--kind", "party"]
        ).exit_code
        == 2
    )
    r = runner.invoke(cli_app, ["community", "ugc", "--format", "json"])
    assert r.exit_code == 0 and {g["group_id"] for g in json.loads(r.stdout)} == {"g1", "g2"}


def test_console_page_in_both_languages(imported, admin_headers) -> None:
    viewer = {"Authorization": f"Bearer {make_api_key('service', 'viewer')}"}
    with TestClient(create_app(), headers=admin_headers) as client:
        zh = client.get("/community?start=2026-11-02&end=2026-11-08")
        assert zh.status_code == 200, zh.text
        assert "社群运营" in zh.text and "仅发言者" in zh.text and "成员（入群/退群）" in zh.text
        assert "打卡连续天数" in zh.text and "50.0%" in zh.text  # g1's speaking share
        en = client.get("/community?start=2026-11-02&end=2026-11-08&lang=en").text
        assert "Posters only" in en and "Weekly-active share against target" in en
        csv_text = client.get(
            "/community?start=2026-11-02&end=2026-11-08&export=community_weekly&format=csv"
        ).content.decode("utf-8-sig")
        assert csv_text.splitlines()[1].startswith("g1,2026-11-02")
        assert client.get("/community?start=2026-13-01").status_code == 422
        seen_by_viewer = client.get("/community", headers=viewer)
        assert seen_by_viewer.status_code == 200 and "打卡连续天数" not in seen_by_viewer.text  # person ids


def test_content_calendar_items_carry_their_results(imported, admin_headers) -> None:
    with session_scope() as s:
        theme_day = content_calendar.add_item(
            s, "g1", date(2026, 11, 5), "theme_day", "打卡日", "打卡互动", "test"
        )
        content_calendar.add_item(s, "g1", date(2026, 11, 6), "post", "新品预告", None, "test")
        with pytest.raises(service.CommunityError, match="theme"):
            content_calendar.add_item(s, "g1", date(2026, 11, 6), "post", "x", "不存在", "test")
    with session_scope() as s, warehouse.connect() as con:
        items = content_calendar.calendar(con, s, date(2026, 11, 1), date(2026, 11, 30), "g1")
    first, second = items
    # 11-05 in g1: u2's 打卡 message only; the 7 days before: one message on 11-02 and one on 11-03
    assert (first.id, first.messages, first.posters, first.checkins, first.theme_messages) == (
        theme_day,
        1,
        1,
        1,
        1,
    )
    assert (first.baseline_messages, first.baseline_posters) == (round(2 / 7, 2), round(2 / 7, 2))
    # 11-06: u7's message; u2's check-in event
    assert (second.messages, second.posters, second.checkins, second.theme_messages) == (1, 1, 1, None)
    with TestClient(create_app(), headers=admin_headers) as client:
        r = client.post("/api/v1/community/calendar",
                        json={"group_id": "g2", "day": "2026-11-05", "kind": "theme_day", "title": "晒单日"})  # fmt: skip
        assert r.status_code == 201, r.text
        bad = client.post("/api/v1/community/calendar",
                          json={"group_id": "g2", "day": "2026-11-05", "kind": "party", "title": "x"})  # fmt: skip
        assert bad.status_code == 422 and "kind" in bad.text
        listed = client.get("/api/v1/community/calendar", params={"group_id": "g2"}).json()
        assert [(i["title"], i["messages"], i["posters"]) for i in listed] == [("晒单日", 2, 2)]
        page = client.get("/community?start=2026-11-02&end=2026-11-08").text
        assert "内容日历与当日效果" in page and "打卡日" in page and "主题日" in page
        assert client.delete(f"/api/v1/community/calendar/{r.json()['id']}").status_code == 204
        assert client.delete(f"/api/v1/community/calendar/{r.json()['id']}").status_code == 404


def test_the_weekly_job_alerts_every_group_silent_since(imported) -> None:
    # the scenario's last message is in November 2026: any later complete week has members and no
    # poster in both groups, under the default target
    r = CliRunner().invoke(cli_app, ["job", "run", "community-weekly-active"])
    assert r.exit_code == 0, r.output
    with session_scope() as s:
        opened = [a for a in monitor.list_alerts(s) if a["metric"] == "weekly_active_share"]
    assert sorted((a["scope"]["group_id"], a["scope"]["basis"], a["observed"]) for a in opened) == [
        ("g1", "members", 0.0), ("g2", "posters_only", 0.0),
    ]  # fmt: skip

"""The KOC programme on a real import: nominate from the ranking, tasks with progress from the
warehouse (checked against an independent count of the scenario), rewards through the real reward
ledger (idempotent, chain verified), results; API and CLI; and display-zone days at the boundary.

The scenario, group g1, task period 2026-11-02 … 2026-11-08 as Asia/Shanghai days (UTC+8):
- k1 (the KOC) posts 5 messages: 11-01 16:30Z (= 11-02 00:30 Shanghai, inside), three on 11-03/04,
  one 11-08 17:00Z (= 11-09 01:00 Shanghai, outside); one of them is a 打卡 message on 11-03.
- u2 posts 4 messages; u2 and u3 check in on 11-03 (events); u3 also on 11-04 (k1 did not).
- k1 invites f1, f2, f3 in the period and f4 before it; f1, f2, f4 join g1 in the period.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.community import koc, programme, service
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.ingest import service as ingest
from liebian.rewards import service as ledger
from liebian.web.app import create_app

SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIOD = (date(2026, 11, 2), date(2026, 11, 8))
POSTS = [  # (user, UTC time, text)
    ("k1", "2026-11-01T16:30:00", "早安各位"),
    ("k1", "2026-11-03T02:00:00", "今天打卡第一天"),
    ("k1", "2026-11-03T04:00:00", "新品真好喝"),
    ("k1", "2026-11-04T04:00:00", "推荐大家试试"),
    ("k1", "2026-11-08T17:00:00", "晚安"),
    *(("u2", f"2026-11-0{d}T05:00:00", "好的") for d in (2, 3, 5, 6)),
]
EVENTS = [  # (user, event, UTC time, group, referrer)
    *((f, "register", ts, "", "k1") for f, ts in
      (("f1", "2026-11-02T03:00:00"), ("f2", "2026-11-04T03:00:00"), ("f3", "2026-11-05T03:00:00"),
       ("f4", "2026-10-20T03:00:00"))),
    *((f, "group_join", "2026-11-06T03:00:00", "g1", "") for f in ("f1", "f2", "f4")),
    ("u2", "checkin", "2026-11-03T01:00:00", "g1", ""),
    ("u3", "checkin", "2026-11-03T01:30:00", "g1", ""),
    ("u3", "checkin", "2026-11-04T01:30:00", "g1", ""),
]  # fmt: skip


def _local_day(ts: str) -> date:
    return datetime.fromisoformat(ts).replace(tzinfo=UTC).astimezone(SHANGHAI).date()


def _in_period(ts: str) -> bool:
    return PERIOD[0] <= _local_day(ts) <= PERIOD[1]


def expected_progress() -> dict[str, int]:
    """The task counts from the scenario lists, independently of the warehouse queries."""
    ugc = sum(u == "k1" and _in_period(ts) for u, ts, _ in POSTS)
    joined = {u for u, ev, ts, _, _ in EVENTS if ev == "group_join" and _in_period(ts)}
    invited = {u for u, ev, ts, _, ref in EVENTS if ref == "k1" and _in_period(ts)}
    checked: dict[date, set[str]] = defaultdict(set)
    for u, ev, ts, _, _ in EVENTS:
        if ev == "checkin" and _in_period(ts):
            checked[_local_day(ts)].add(u)
    for u, ts, text in POSTS:
        if "打卡" in text and _in_period(ts):
            checked[_local_day(ts)].add(u)
    hosted = {u for members in checked.values() if "k1" in members for u in members} - {"k1"}
    return {"ugc_messages": ugc, "invitees": len(invited & joined), "checkin_hosted": len(hosted)}


@pytest.fixture
def imported(store: str, tmp_path: Path) -> dict[str, int]:
    posts = ["message_id,ts,group_id,user_id,id_type,text"]
    posts += [f"m{i},{ts}Z,g1,wo_{u},external_userid,{t}" for i, (u, ts, t) in enumerate(POSTS)]
    events = ["event_id,ts,user_id,id_type,event,channel,group_id,referrer_id,referrer_id_type"]
    events += [
        f"e{i},{ts}Z,wo_{u},external_userid,{ev},wecom,{g},{'wo_' + r if r else ''},{'external_userid' if r else ''}"
        for i, (u, ev, ts, g, r) in enumerate(EVENTS)
    ]
    (tmp_path / "messages.csv").write_text("\n".join(posts) + "\n", encoding="utf-8")
    (tmp_path / "events.csv").write_text("\n".join(events) + "\n", encoding="utf-8")
    assert ingest.import_file(tmp_path / "messages.csv", "messages").rows_loaded == len(POSTS)
    assert ingest.import_file(tmp_path / "events.csv", "events").rows_loaded == len(EVENTS)
    with warehouse.connect() as con:
        rows = con.execute(
            "SELECT user_id, person_id FROM events UNION SELECT user_id, person_id FROM messages"
        )
        return {u.removeprefix("wo_"): int(p) for u, p in rows.fetchall()}


def test_progress_matches_an_independent_count(imported) -> None:
    expected = expected_progress()
    assert expected == {"ugc_messages": 4, "invitees": 2, "checkin_hosted": 2}  # the scenario's intent
    with warehouse.connect() as con:
        found = {kind: koc.progress(con, kind, imported["k1"], "g1", *PERIOD) for kind in koc.KINDS}
        candidates = [c["person_id"] for c in service.top_contributors(con, group_id="g1")]
    assert found == expected
    assert candidates[0] == imported["k1"]  # the ranking the KOC is nominated from


def test_nominate_tasks_rewards_through_the_ledger_and_results(imported) -> None:
    k1 = imported["k1"]
    with session_scope() as s, warehouse.connect() as con:
        with pytest.raises(service.CommunityError, match="person_id"):
            koc.nominate(s, con, imported["f3"], "g1", "ops")  # never posted in g1: not in the ranking
        nominated = koc.nominate(s, con, k1, "g1", "ops")
        assert koc.nominate(s, con, k1, "g1", "ops")["id"] == nominated["id"]  # once per person and group
        kid = nominated["id"]
        tasks = {kind: koc.add_task(s, kid, kind, target, *PERIOD, fen, "ops")["id"]
                 for kind, target, fen in (("ugc_messages", 4, 800), ("invitees", 3, 1000),
                                           ("checkin_hosted", 2, 500))}  # fmt: skip
        assert koc.settle(s, con, "ops") == []  # only an active KOC's tasks are rewarded
        koc.set_status(s, kid, "active", "ops")
        with pytest.raises(service.CommunityError, match="status"):
            koc.set_status(s, kid, "nominated", "ops")
    with session_scope() as s, warehouse.connect() as con:
        rewarded = koc.settle(s, con, "ops")
        assert koc.settle(s, con, "ops") == []  # a task is rewarded once
    assert sorted(t["id"] for t in rewarded) == sorted((tasks["ugc_messages"], tasks["checkin_hosted"]))
    with session_scope() as s:
        rewards = ledger.list_rewards(s, campaign_id=koc.REWARD_CAMPAIGN)
        assert sorted((r.person_id, r.value_fen, r.state) for r in rewards) == [
            (k1, 500, "pending"),
            (k1, 800, "pending"),
        ]
        # the same (koc, task) key granted again is the same reward: nothing new in the ledger
        again = ledger.grant(s, campaign_id="koc", person_id=k1, reward_code=koc.REWARD_CODE, value_fen=800,
                             reason="", source_ref=f"koc_task:{tasks['ugc_messages']}",
                             idempotency_key=f"koc:{kid}:task:{tasks['ugc_messages']}", hold_until=None)  # fmt: skip
        assert again.id in {r.id for r in rewards} and len(ledger.list_rewards(s, campaign_id="koc")) == 2
        paid = next(r for r in rewards if r.value_fen == 800)
        ledger.transition(s, paid.id, "approved", idempotency_key="t-approve", actor="ops")
        ledger.transition(s, paid.id, "issued", idempotency_key="t-issue", actor="ops")
        assert ledger.verify_chain(s).ok
    with session_scope() as s, warehouse.connect() as con:
        (result,) = koc.results(s, con, *PERIOD)
        progress = {t["kind"]: (t["progress"], t["done"]) for t in koc.list_tasks(s, con, kid)}
    assert progress == {"ugc_messages": (4, True), "invitees": (2, False), "checkin_hosted": (2, True)}
    member_messages = sum(_in_period(ts) for _, ts, _ in POSTS)
    assert (result.tasks, result.tasks_done, result.ugc_messages, result.invitees) == (3, 2, 4, 2)
    assert result.ugc_share == round(4 / member_messages, 4)
    assert (result.reward_fen, result.reward_cost_fen) == (1300, 800)  # cost: issued rewards only


def test_api_and_cli(imported, admin_headers) -> None:
    k1 = imported["k1"]
    with TestClient(create_app(), headers=admin_headers) as client:
        r = client.post("/api/v1/community/koc", json={"person_id": k1, "group_id": "g1"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        for bad in ({"person_id": imported["f3"], "group_id": "g1"}, {"person_id": -1, "group_id": "g1"},
                    {"person_id": k1, "group_id": ""}, {"person_id": 2**70, "group_id": "g1"}):  # fmt: skip
            answer = client.post("/api/v1/community/koc", json=bad)
            assert answer.status_code == 422, answer.text
            assert ("person_id" in answer.text) if bad["group_id"] else ("group_id" in answer.text)
        task = {"koc_id": kid, "kind": "ugc_messages", "target": 4, "start": "2026-11-02", "end": "2026-11-08",
                "reward_fen": 800}  # fmt: skip
        for field, value in (
            ("kind", "spam"),
            ("target", 10**12),
            ("reward_fen", -1),
            ("start", "2026-13-01"),
        ):
            answer = client.post("/api/v1/community/koc/tasks", json={**task, field: value})
            assert answer.status_code == 422 and field in answer.text, answer.text
        backwards = client.post("/api/v1/community/koc/tasks", json={**task, "start": "2026-11-09"})
        assert backwards.status_code == 422 and "start" in backwards.text
        missing = client.post("/api/v1/community/koc/tasks", json={**task, "koc_id": 999})
        assert missing.status_code == 404 and "koc_id" in missing.text
        assert client.post("/api/v1/community/koc/tasks", json=task).status_code == 201
        assert (
            client.post(f"/api/v1/community/koc/{kid}/status", json={"status": "active"}).status_code == 200
        )
        assert client.post(f"/api/v1/community/koc/{kid}/status", json={"status": "boss"}).status_code == 422
        settled = client.post("/api/v1/community/koc/settle").json()
        assert [(t["kind"], t["progress"], t["done"]) for t in settled] == [("ugc_messages", 4, True)]
        results = client.get(
            "/api/v1/community/koc/results", params={"start": "2026-11-02", "end": "2026-11-08"}
        )
        assert [(x["person_id"], x["tasks_done"], x["reward_fen"]) for x in results.json()] == [(k1, 1, 800)]
        assert client.get("/api/v1/ledger/verify").json()["ok"] is True
    runner = CliRunner()
    r = runner.invoke(cli_app, ["community", "koc-task", str(kid), "--kind", "checkin_hosted", "--target", "2",
                                "--start", "2026-11-02", "--end", "2026-11-08", "--reward-fen", "500"])  # fmt: skip
    assert r.exit_code == 0, r.output
    bad = runner.invoke(cli_app, ["community", "koc-task", str(kid), "--kind", "spam", "--target", "2",
                                  "--start", "2026-11-02", "--end", "2026-11-08"])  # fmt: skip
    assert bad.exit_code == 2 and "kind" in bad.output
    assert runner.invoke(cli_app, ["community", "koc-settle"]).exit_code == 0
    r = runner.invoke(cli_app, ["community", "koc-results", "--start", "2026-11-02", "--end", "2026-11-08",
                                "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [(x["tasks_done"], x["reward_fen"]) for x in json.loads(r.stdout)] == [(2, 1300)]


def test_days_are_display_zone_days_at_the_boundary(imported) -> None:
    """k1's 16:30Z message on 11-01 is a Shanghai 11-02 message; the 17:00Z one on 11-08 is 11-09."""
    with warehouse.connect() as con:
        per_day = {
            (r["date"], r["messages"])
            for r in service.negative_share(con, date(2026, 11, 2), date(2026, 11, 2))
        }
        ninth = service.negative_share(con, date(2026, 11, 9), date(2026, 11, 9))
        checks = programme.checkins(con, date(2026, 11, 3), date(2026, 11, 3))
    u2_on_2nd = sum(u == "u2" and _local_day(ts) == date(2026, 11, 2) for u, ts, _ in POSTS)
    assert per_day == {("2026-11-02", 1 + u2_on_2nd)}  # k1's 00:30 Shanghai message and u2's
    assert [(r["date"], r["messages"]) for r in ninth] == [("2026-11-09", 1)]
    assert {p.person_id for p in checks.persons} == {imported["k1"], imported["u2"], imported["u3"]}


def test_console_section_forms_and_hostile_values(imported, admin_headers) -> None:
    k1 = imported["k1"]
    hx = {**admin_headers, "HX-Request": "true"}
    with TestClient(create_app(), headers=hx) as client:
        r = client.post("/community/koc", data={"person_id": str(k1), "group_id": "g1"})
        assert r.status_code == 204 and r.headers["HX-Redirect"] == "/community", r.text
        refused = {  # hostile and wrong values: a catalogued reason naming the field, never a 5xx
            "person_id": client.post("/community/koc", data={"person_id": "1e999", "group_id": "g1"}),
            "group_id": client.post("/community/koc", data={"person_id": str(k1), "group_id": "x" * 500}),
            "target": client.post("/community/koc/task", data={"koc_id": "1", "kind": "ugc_messages",
                                  "target": "99999999999999999999", "start": "2026-11-02", "end": "2026-11-08"}),
            "reward": client.post("/community/koc/task", data={"koc_id": "1", "kind": "ugc_messages", "target": "4",
                                  "start": "2026-11-02", "end": "2026-11-08", "reward_yuan": "abc"}),
            "start": client.post("/community/koc/task", data={"koc_id": "1", "kind": "ugc_messages", "target": "4",
                                 "start": "2026-11-09", "end": "2026-11-08"}),
            "koc_id": client.post("/community/koc/status", data={"koc_id": "<script>", "status": "active"}),
        }  # fmt: skip
        for field, answer in refused.items():
            assert answer.status_code == 200 and "flash error" in answer.text, (field, answer.text)
            assert answer.text.count("：") >= 1 and "<script>" not in answer.text, field
        assert "成员 ID" in refused["person_id"].text and "目标" in refused["target"].text
        assert "奖励（元）" in refused["reward"].text and "开始日期" in refused["start"].text
        task = {"koc_id": "1", "kind": "ugc_messages", "target": "4", "start": "2026-11-02", "end": "2026-11-08",
                "reward_yuan": "8.00"}  # fmt: skip
        assert client.post("/community/koc/task", data=task).status_code == 204
        assert (
            client.post("/community/koc/status", data={"koc_id": "1", "status": "active"}).status_code == 204
        )
        settled = client.post("/community/koc/settle")
        assert "1" in settled.text and "flash ok" in settled.text
        zh = client.get("/community?start=2026-11-02&end=2026-11-08").text
        assert "KOC 计划" in zh and "KOC 成果" in zh and "进行中" in zh and "¥8.00" in zh
        en = client.get("/community?start=2026-11-02&end=2026-11-08&lang=en").text
        assert "KOC programme" in en and "Post UGC messages" in en
        csv_text = client.get(
            "/community?start=2026-11-02&end=2026-11-08&export=community_koc&format=csv"
        ).content.decode("utf-8-sig")
        assert str(k1) in csv_text.splitlines()[1]

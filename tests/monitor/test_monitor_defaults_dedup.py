"""Alerts deduplicate by metric × subject × day: the rules job re-checks yesterday every hour, and a
resolved alert of that day stays resolved (no new alert, no new notification) unless a higher level
is crossed. On SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from liebian.campaigns import service as campaigns
from liebian.db.session import session_scope
from liebian.monitor import notifications, rules, service
from liebian.monitor.models import Alert, Delivery

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from campaign_helpers import rules as campaign_rules  # noqa: E402
from test_monitor_hourly import OFFSET, write  # noqa: E402
from test_monitor_notify import Receiver  # noqa: E402

DAY = date(2026, 11, 19)  # local day the rules job checks ("yesterday")
T0 = datetime(2026, 11, 20, 1, 0)  # naive UTC: 09:00 local the next morning


def _raise(
    session, level: str = "重要", period: str = "2026-11-19", now: datetime = T0, observed: float = 0.1
):
    return service.raise_alert(
        session, kind="threshold", metric="participation_rate", scope={"campaign_id": "c1"}, level=level,
        title="参与率低", observed=observed, threshold=0.15, period=period, now=now,
    )  # fmt: skip


def test_a_resolved_alert_stays_resolved_for_its_subject_and_day(session) -> None:
    a, new = _raise(session)
    assert new
    service.resolve(session, a["id"], "已修复", actor="ops", now=T0 + timedelta(minutes=30))
    for hour in range(1, 24):  # the hourly job checks the same day again and again
        again, is_new = _raise(session, now=T0 + timedelta(hours=hour), observed=0.09)
        assert not is_new and again["id"] == a["id"] and again["status"] == "resolved"
    # an hourly period of the same day is the same day
    hourly, is_new = _raise(session, period="2026-11-19T15:00", now=T0 + timedelta(hours=2))
    assert not is_new and hourly["id"] == a["id"]
    assert session.scalar(select(func.count()).select_from(Alert)) == 1
    # the next day is another alert
    tomorrow, is_new = _raise(session, period="2026-11-20", now=T0 + timedelta(days=1))
    assert is_new and tomorrow["id"] != a["id"]


def test_a_higher_level_reopens_and_an_open_alert_takes_the_higher_level(session) -> None:
    a, _ = _raise(session, level="一般")
    up, is_new = _raise(session, level="重要", now=T0 + timedelta(hours=1))
    assert not is_new and up["id"] == a["id"] and up["level"] == "重要" and up["occurrences"] == 2
    service.resolve(session, a["id"], "处理完毕", actor="ops", now=T0 + timedelta(hours=2))
    same, is_new = _raise(session, level="重要", now=T0 + timedelta(hours=3))
    lower, is_lower_new = _raise(session, level="一般", now=T0 + timedelta(hours=3))
    assert not is_new and not is_lower_new and same["status"] == lower["status"] == "resolved"
    worse, is_new = _raise(session, level="紧急", now=T0 + timedelta(hours=4))
    assert is_new and worse["id"] != a["id"] and worse["status"] == "open" and worse["level"] == "紧急"


@pytest.fixture
def receiver(allow_private_urls: None) -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _low_participation_day(cid: str) -> None:
    """40 persons reached on DAY (local), 4 of them joined: participation 10%."""
    start = datetime.combine(DAY, datetime.min.time()) + timedelta(hours=10)
    write(
        [
            {
                "at": start + timedelta(minutes=p),
                "person": p,
                "campaign": cid,
                "event": "join_campaign" if p < 4 else "page_view",
            }
            for p in range(40)
        ]  # fmt: skip
    )


def test_the_rules_job_rechecking_yesterday_does_not_reopen_a_resolved_alert(store: str, receiver) -> None:
    with session_scope() as s:
        campaigns.create_campaign(s, campaign_rules("invite_task"), campaign_id="c_low")
        campaigns.launch(
            s, "c_low", now=datetime.combine(DAY, datetime.min.time()) - OFFSET - timedelta(days=2)
        )
        rule = rules.create_rule(s, {"name": "参与率低于15%", "metric": "participation_rate", "op": "<",
                                     "threshold": 0.15, "campaign_id": "c_low", "level": "重要"}, actor="t")  # fmt: skip
        notifications.add_channel(s, "hook", "webhook", f"{receiver.url}/hook", actor="t")
    _low_participation_day("c_low")
    with session_scope() as s:
        (opened,) = rules.evaluate_rules(s, DAY, now=T0, rule_ids=[rule["id"]])
        assert opened["observed"] == pytest.approx(0.1)
        service.resolve(s, opened["id"], "渠道已恢复", actor="ops", now=T0 + timedelta(minutes=20))
    for hour in range(1, 6):  # the job runs every hour and checks yesterday each time
        with session_scope() as s:
            assert rules.evaluate_rules(s, DAY, now=T0 + timedelta(hours=hour), rule_ids=[rule["id"]]) == []
    with session_scope() as s:
        alerts = s.scalars(select(Alert)).all()
        sent = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.event == "opened"))
    assert [(a.id, a.status) for a in alerts] == [(opened["id"], "resolved")]
    assert sent == 1 and len(receiver.requests) == 1  # notified once, when it opened

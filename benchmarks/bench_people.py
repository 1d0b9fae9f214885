"""Person labels (web/people.py): how long naming the persons of one console table takes — each
person's latest invite nickname and best masked identifier, two indexed look-ups per 900 ids — on
the SQLite store, for tables of 20 to 1,000 persons among 20,000 (half of them inviters with a
nickname). `MAX_LABELLED` (250) bounds what one table costs.

Scales: "5k" (smoke), "20k" (default) persons.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Report

SCALES = {"5k": 5_000, "20k": 20_000}
SIZES = (20, 100, 250, 1000)
REPEATS = 7
RULES = {
    "type": "double_sided", "title": "标签基准", "rules_text": "每邀请一位新朋友注册即可获得奖励，每人最多 10 位。",
    "qualifying_event": {"kind": "signup"}, "per_inviter_cap": 10, "budget_fen": 1_000_000, "hold_days": 7,
    "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
}  # fmt: skip


def run(scale: str = "") -> Report:
    persons = SCALES.get(scale or "20k", 20_000)
    os.environ["LIEBIAN_DATA_DIR"] = str(Path(tempfile.mkdtemp(prefix="liebian-bench-people-")))
    from liebian.campaigns import service as campaigns
    from liebian.campaigns.models import Invite
    from liebian.config import reset_settings_cache
    from liebian.db import migrate
    from liebian.db.base import utcnow
    from liebian.db.session import dispose_engines, session_scope
    from liebian.identity import service as identity
    from liebian.web.people import person_labels

    reset_settings_cache()
    dispose_engines()
    migrate.upgrade()
    with session_scope() as s:
        campaigns.create_campaign(s, RULES, campaign_id="bench")
    with session_scope() as s:
        found = identity.resolve(s, [identity.RawIdentifier("phone", f"139{i:08d}") for i in range(persons)])
        ids = sorted(set(found.values()))
        now = utcnow()
        s.add_all(
            Invite(token=f"t{i}", campaign_id="bench", inviter_person_id=pid, channel="share",
                   nickname=f"用户{i}", created_at=now, expires_at=now)
            for i, pid in enumerate(ids[::2])
        )  # fmt: skip
    report = Report(title="Person labels in console tables (web/people.py)", scale=scale,
                    columns=["persons in the table", "p50 ms", "min ms", "max ms"])  # fmt: skip
    for size in SIZES:
        times = []
        for _ in range(REPEATS):
            with session_scope() as s:
                started = time.perf_counter()
                labels = person_labels(s, ids[:size])
                times.append((time.perf_counter() - started) * 1000)
        assert all(label.masked for label in labels.values())
        report.add(size, statistics.median(times), min(times), max(times))
    report.notes.append(
        f"{persons:,} persons with a phone each (masked), every second one an inviter with a nickname; "
        f"{REPEATS} runs per size on SQLite. 1-minute load average at the end: {os.getloadavg()[0]:.1f}."
    )
    return report

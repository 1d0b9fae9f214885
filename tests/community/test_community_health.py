"""Community health on the demo brand, checked against independent SQL and the ground truth."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from liebian.community import sentiment, service
from liebian.engine import warehouse


def test_negative_group_days_match_the_ground_truth(demo_brand) -> None:
    truth = json.loads((demo_brand / "demo" / "ground_truth.json").read_text(encoding="utf-8"))
    listed = {(g["group_id"], g["date"]) for g in truth["community"]["negative_group_days"]}
    injected = {
        (g["group_id"], g["date"]) for g in truth["community"]["negative_group_days"] if g["injected"]
    }
    with warehouse.connect() as con:
        rows = service.negative_share(con)
    flagged = {(r["group_id"], r["date"]) for r in rows if r["alert"]}
    recall = len(flagged & listed) / len(listed)
    precision = len(flagged & listed) / len(flagged)
    print(
        f"negative group-days: truth {len(listed)}, flagged {len(flagged)}, precision {precision:.3f} recall {recall:.3f}"
    )
    assert injected <= flagged  # every complaint storm
    assert recall >= 0.9 and precision >= 0.9


def test_sentiment_on_the_demo_messages(demo_brand) -> None:
    labels = pd.read_parquet(demo_brand / "demo" / "truth" / "message_labels.parquet")
    with warehouse.connect() as con:
        msgs = con.execute("SELECT message_id, text FROM messages").fetchdf()
    m = msgs.merge(labels, on="message_id")
    assert len(m) == len(msgs)
    want = m["sentiment"].map(
        {"positive": "positive", "complaint": "negative", "question": "neutral", "neutral": "neutral"}
    )
    got = m["text"].map(lambda t: sentiment.classify(t).label)
    acc = float((want == got).mean())
    complaints = want == "negative"
    complaint_recall = float((got[complaints] == "negative").mean())
    print(f"demo messages: accuracy {acc:.3f}, complaint recall {complaint_recall:.3f} (n={len(m)})")
    assert complaint_recall >= 0.9  # what the negative-share alert depends on
    assert float((got[~complaints] == "negative").mean()) < 0.01  # and few false complaints


def test_group_health_against_independent_sql(demo_brand) -> None:
    start, end = date(2026, 10, 1), date(2026, 10, 31)
    with warehouse.connect() as con:
        health = {g["group_id"]: g for g in service.group_health(con, start, end)}
        ref = con.execute(
            """SELECT group_id, count(*) AS n, count(DISTINCT person_id) AS speakers,
                      count(DISTINCT person_id) FILTER (WHERE ts >= TIMESTAMP '2026-10-25') AS weekly
               FROM messages WHERE ts >= TIMESTAMP '2026-10-01' AND ts < TIMESTAMP '2026-11-01' GROUP BY 1"""
        ).fetchall()
        members = dict(con.execute(
            "SELECT group_id, count(DISTINCT person_id) FROM messages WHERE ts < TIMESTAMP '2026-11-01' GROUP BY 1"
        ).fetchall())  # fmt: skip
        top = service.top_contributors(con, start, end, limit=3)
        top_ref = con.execute(
            """SELECT person_id, count(*) FROM messages WHERE ts >= TIMESTAMP '2026-10-01'
               AND ts < TIMESTAMP '2026-11-01' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3"""
        ).fetchall()
    assert set(health) == {r[0] for r in ref}
    for gid, n, speakers, weekly in ref:
        g = health[gid]
        assert (g["messages"], g["speakers"], g["weekly_active"], g["members"]) == (
            n,
            speakers,
            weekly,
            members[gid],
        )
        # the demo has no join/leave events: members are the posters, with no speaking share
        assert g["membership_basis"] == "posters_only" and g["speaking_share"] is None
        assert g["messages_per_member"] == round(n / members[gid], 3)
        assert sum(g["themes"].values()) > 0 and g["interactions"] == 0  # the demo has no @/replies
    assert [(t["person_id"], t["messages"]) for t in top] == [(int(p), int(n)) for p, n in top_ref]


def test_interactions_count_mentions_and_replies() -> None:
    assert service._interaction("@小王 今天打卡了吗", None)
    assert service._interaction("好的", json.dumps({"reply_to": "msg1"}))
    assert not service._interaction("好的", "{not json")
    assert not service._interaction("好的", None)


def test_bad_window_is_named(demo_brand) -> None:
    import pytest

    with warehouse.connect() as con, pytest.raises(service.CommunityError, match="after end"):
        service.group_health(con, date(2026, 10, 2), date(2026, 10, 1))

"""Community health from the warehouse's group messages (WeCom groups and the like).

Per group: members (from join/leave events, `membership`; a group without them is measured over
its posters, labelled "posters only" and given no speaking share), speakers in the window and their
share of members,
messages per member, the weekly active share (speakers of the window's last 7 days / members),
interactions (messages that @-mention someone or reply to / quote a message: `@` in the text, or
`reply_to` / `quote_id` in props), the content themes, and the sentiment mix (community.sentiment,
offline). Top contributors (KOC candidates) are pseudonymous person ids: person-level data.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from liebian.community import days, membership, sentiment
from liebian.errors import Invalid
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

MIN_MESSAGES = 10  # a group-day with fewer messages is too small for a share to mean anything
NEGATIVE_THRESHOLD = 0.05

# Theme → keywords (a message can touch several themes).
THEMES = {
    "配送物流": ("配送", "外卖", "骑手", "送到", "送错", "等了", "出餐", "发货"),
    "价格优惠": ("优惠", "券", "折扣", "满减", "半价", "价格", "贵", "便宜", "划算", "积分"),
    "口味品质": (
        "好喝",
        "好吃",
        "难喝",
        "难吃",
        "味道",
        "口感",
        "新鲜",
        "甜",
        "奶茶",
        "蛋糕",
        "面包",
        "新品",
    ),
    "活动裂变": ("邀请", "拼团", "助力", "活动", "奖励", "抽奖", "好友", "拉新"),
    "服务体验": ("服务", "店员", "客服", "态度", "排队", "门店", "店长"),
    "售后问题": ("退款", "投诉", "取消", "失败", "闪退", "打不开", "用不了", "没收到"),
    "打卡互动": ("打卡", "签到", "晒", "直播"),
}


class CommunityError(Invalid, ValueError):
    """Bad input to a community analysis; the message is "field: reason" or just the reason."""

    def __init__(self, message: str):
        super().__init__("invalid", message)


@lru_cache(maxsize=50_000)
def _label(text: str) -> str:
    return sentiment.classify(text).label  # templates repeat: cache by text


def day_window(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start, end] calendar days of the display zone (`days`) as [s, e) naive UTC instants; a start
    after the end is refused."""
    if start and end and start > end:
        raise CommunityError(f"start {start} is after end {end}")
    s = days.start_of(start) if start else None
    e = days.start_of(end + timedelta(days=1)) if end else None
    return s, e


def time_filter(s: datetime | None, e: datetime | None, group_id: str | None) -> tuple[str, list[object]]:
    """The WHERE clause (on `ts`, `group_id`) and its parameters of a window and an optional group."""
    parts: list[str] = ["1=1"]
    params: list[object] = []
    if s:
        parts.append("ts >= ?")
        params.append(s)
    if e:
        parts.append("ts < ?")
        params.append(e)
    if group_id:
        parts.append("group_id = ?")
        params.append(group_id)
    return " AND ".join(parts), params


def _interaction(text: str | None, props: str | None) -> bool:
    if text and "@" in text:
        return True
    if props:
        try:
            p = json.loads(props)
        except ValueError:
            return False
        return isinstance(p, dict) and bool(p.get("reply_to") or p.get("quote_id") or p.get("mentions"))
    return False


def negative_share(
    con: duckdb.DuckDBPyConnection,
    start: date | None = None,
    end: date | None = None,
    group_id: str | None = None,
) -> list[dict[str, Any]]:
    """Per group and (local) day: messages, negative messages and their share, sorted by group, day."""
    s, e = day_window(start, end)
    where, params = time_filter(s, e, group_id)
    rows = con.execute(
        f"SELECT group_id, {days.day_sql()} AS day, text FROM messages WHERE {where}", params
    ).fetchall()
    counts: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    for gid, day, text in rows:
        c = counts[(gid, day)]
        c[0] += 1
        c[1] += _label(text or "") == "negative"
    return [
        {"group_id": g, "date": d.isoformat(), "messages": n, "negative": neg, "negative_share": round(neg / n, 4),
         "alert": n >= MIN_MESSAGES and neg / n > NEGATIVE_THRESHOLD}
        for (g, d), (n, neg) in sorted(counts.items())
    ]  # fmt: skip


def group_health(
    con: duckdb.DuckDBPyConnection,
    start: date | None = None,
    end: date | None = None,
    group_id: str | None = None,
) -> list[dict[str, Any]]:
    """The health sheet of every group (or one) over [start, end] (calendar days, inclusive)."""
    s, e = day_window(start, end)
    groups = membership.load(con, group_id)
    where, params = time_filter(s, e, group_id)
    rows = con.execute(
        f"SELECT group_id, person_id, ts, text, props FROM messages WHERE {where} ORDER BY group_id, ts",
        params,
    ).fetchall()
    last_ts = max((r[2] for r in rows), default=None)
    week_end = e or (last_ts + timedelta(seconds=1) if last_ts else None)
    week_from = week_end - timedelta(days=7) if rows and week_end else None
    acc: dict[str, dict[str, Any]] = {}
    for gid, pid, ts, text, props in rows:
        g = acc.setdefault(gid, {"messages": 0, "speakers": set(), "weekly": set(), "interactions": 0,
                                 "labels": Counter(), "themes": Counter()})  # fmt: skip
        g["messages"] += 1
        g["speakers"].add(pid)
        if week_from is not None and ts >= week_from:
            g["weekly"].add(pid)
        g["interactions"] += _interaction(text, props)
        g["labels"][_label(text or "")] += 1
        for theme, words in THEMES.items():
            if text and any(w in text for w in words):
                g["themes"][theme] += 1
    out = []
    for gid in sorted(acc):
        g = acc[gid]
        record = groups.get(gid, membership.GroupMembership(gid))
        n_members = len(record.members_during(s, week_end or datetime.max)) or len(g["speakers"])
        n = g["messages"]
        tracked = record.basis == membership.BASIS_MEMBERS
        out.append(
            {
                "group_id": gid,
                "membership_basis": record.basis,
                "members": n_members,
                "speakers": len(g["speakers"]),
                "speaking_share": round(len(g["speakers"]) / n_members, 4) if tracked else None,
                "messages": n,
                "messages_per_member": round(n / n_members, 3) if n_members else None,
                "weekly_active": len(g["weekly"]),
                "weekly_active_share": round(len(g["weekly"]) / n_members, 4) if n_members else None,
                "interactions": g["interactions"],
                "interaction_share": round(g["interactions"] / n, 4) if n else None,
                "positive_share": round(g["labels"]["positive"] / n, 4) if n else None,
                "negative_share": round(g["labels"]["negative"] / n, 4) if n else None,
                "themes": dict(g["themes"].most_common()),
            }
        )
    return out


def top_contributors(
    con: duckdb.DuckDBPyConnection,
    start: date | None = None,
    end: date | None = None,
    group_id: str | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """KOC candidates: persons by messages posted (and groups they are active in), most first."""
    if limit < 1 or limit > 1000:
        raise CommunityError(f"limit: {limit} is not within 1–1000")
    s, e = day_window(start, end)
    where, params = time_filter(s, e, group_id)
    rows = con.execute(
        f"""SELECT person_id, count(*) AS messages, count(DISTINCT group_id) AS groups,
                   count(DISTINCT {days.day_sql()}) AS active_days, list(text) AS texts
            FROM messages WHERE {where} GROUP BY person_id ORDER BY messages DESC, person_id LIMIT ?""",
        [*params, limit],
    ).fetchall()
    out = []
    for pid, n, groups, active_days, texts in rows:
        labels = Counter(_label(t or "") for t in texts)
        out.append({"person_id": int(pid), "messages": int(n), "groups": int(groups), "active_days": int(active_days),
                    "positive_share": round(labels["positive"] / n, 4)})  # fmt: skip
    return out

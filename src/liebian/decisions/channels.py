"""The "move budget to the best channel" option: per-channel results from the warehouse, the move,
its expected effect and range.

Per channel and display-zone day over the WINDOW_DAYS ending at the last day with referral edges:
- referred users: distinct invitees on referral edges of the channel (the catalogue's
  `referred_users`, channel filter on the edge);
- reward cost: the catalogue's `reward_cost_fen` — rewards issued (a `reward_issued` ledger event in
  the warehouse, on its issue day) and not revoked since — given a channel, which rewards do not
  carry: a reward belongs to the channels of its person's referral edges in its campaign (as the
  invitee: the edge that brought them; as the inviter: the edges they made), split by the number
  of edges per channel.
Efficiency = referred users per yuan of reward cost over the window. The option moves MOVE_SHARE of
the worst channel's reward spend to the best one (total cost unchanged): the expected extra users
over the horizon = moved yuan × (best − worst efficiency). The range is the 10th–90th percentile of
that figure over a bootstrap of the window's days (RUNS resamples with replacement, fixed seed), so
a channel that was good on one lucky day gets a wide range. Offered when at least two channels
have reward cost on MIN_DAYS days or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from liebian.analytics.common import zone_offset_seconds
from liebian.config import get_settings
from liebian.engine import warehouse
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import numpy as np
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    np = lazy_import("numpy")

OPTION = "move_budget_to_best_channel"
MOVE_SHARE = 0.20  # of the worst channel's reward spend
WINDOW_DAYS = 28
MIN_DAYS = 5  # days with reward cost a channel needs before its efficiency is compared
RUNS = 400
SEED = 20261207


@dataclass(frozen=True)
class ChannelDay:
    channel: str
    day: int  # display-zone day number (days since 1970-01-01 local)
    referred_users: int
    reward_cost_fen: float


def _day(column: str, offset: int) -> str:
    return f"CAST(floor((epoch({column}) + {offset}) / 86400) AS BIGINT)"


def daily_results(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> list[ChannelDay]:
    """Per channel and local day of the window: referred users and the reward cost (see above)."""
    offset = zone_offset_seconds(get_settings().timezone)
    camp, cp = ("AND campaign_id = ?", [campaign_id]) if campaign_id else ("", [])
    last = con.execute(
        f"SELECT max({_day('ts', offset)}) FROM referral_edges WHERE TRUE {camp}", cp
    ).fetchone()
    if not last or last[0] is None:
        return []
    first = int(last[0]) - WINDOW_DAYS + 1
    users = con.execute(
        f"""SELECT channel, {_day("ts", offset)} AS d, count(DISTINCT invitee_person_id)
            FROM referral_edges WHERE {_day("ts", offset)} BETWEEN ? AND ? {camp} GROUP BY 1, 2""",
        [first, int(last[0]), *cp],
    ).fetchall()
    costs = con.execute(
        f"""WITH issued AS (
              SELECT i.person_id, i.campaign_id, {_day("i.ts", offset)} AS d,
                     CAST(json_extract(i.props, '$.value_fen') AS DOUBLE) AS fen
              FROM events i
              WHERE i.event = 'reward_issued' AND {_day("i.ts", offset)} BETWEEN ? AND ? {camp.replace("campaign_id", "i.campaign_id")}
                AND NOT EXISTS (SELECT 1 FROM events r WHERE r.event = 'reward_revoked'
                  AND json_extract(r.props, '$.reward_id') = json_extract(i.props, '$.reward_id'))),
            ties AS (
              SELECT invitee_person_id AS person_id, campaign_id, channel FROM referral_edges
              UNION ALL
              SELECT inviter_person_id, campaign_id, channel FROM referral_edges),
            shares AS (
              SELECT person_id, campaign_id, channel,
                     count(*) / sum(count(*)) OVER (PARTITION BY person_id, campaign_id) AS share
              FROM ties GROUP BY 1, 2, 3)
            SELECT s.channel, i.d, sum(i.fen * s.share) FROM issued i
            JOIN shares s ON s.person_id = i.person_id AND s.campaign_id IS NOT DISTINCT FROM i.campaign_id
            GROUP BY 1, 2""",
        [first, int(last[0]), *cp],
    ).fetchall()
    cells: dict[tuple[str, int], list[float]] = {}
    for channel, d, n in users:
        cells.setdefault((str(channel), int(d)), [0, 0.0])[0] = int(n)
    for channel, d, fen in costs:
        cells.setdefault((str(channel), int(d)), [0, 0.0])[1] = float(fen or 0)
    return [ChannelDay(c, d, int(v[0]), v[1]) for (c, d), v in sorted(cells.items())]


def _efficiency(users: np.ndarray, cost_fen: np.ndarray) -> np.ndarray:
    """Referred users per yuan along the last axis (NaN without cost)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cost_fen > 0, users / (cost_fen / 100), np.nan)


def move_budget(rows: list[ChannelDay], horizon_days: int) -> dict[str, Any] | None:
    """The option's move, expected effect and evidence; None when fewer than two channels qualify."""
    days = sorted({r.day for r in rows})
    paid_days: dict[str, int] = {}
    for r in rows:
        paid_days[r.channel] = paid_days.get(r.channel, 0) + (r.reward_cost_fen > 0)
    channels = sorted(c for c, n in paid_days.items() if n >= MIN_DAYS)
    if len(channels) < 2:
        return None
    index = {d: i for i, d in enumerate(days)}
    users = np.zeros((len(channels), len(days)))
    cost = np.zeros((len(channels), len(days)))
    for r in rows:
        if r.channel in channels:
            users[channels.index(r.channel), index[r.day]] = r.referred_users
            cost[channels.index(r.channel), index[r.day]] = r.reward_cost_fen
    eff = _efficiency(users.sum(axis=1), cost.sum(axis=1))
    best, worst = int(np.nanargmax(eff)), int(np.nanargmin(eff))
    if best == worst or eff[best] == eff[worst]:
        return None
    moved_fen = MOVE_SHARE * cost[worst].sum() / len(days) * horizon_days
    rng = np.random.default_rng(SEED)
    picks = rng.integers(0, len(days), size=(RUNS, len(days)))
    boot_eff = _efficiency(users[:, picks].sum(axis=2), cost[:, picks].sum(axis=2))  # channel × run
    gains = np.nan_to_num((boot_eff[best] - boot_eff[worst]) * moved_fen / 100)
    expected = float((eff[best] - eff[worst]) * moved_fen / 100)
    daily_users = users.sum() / len(days)
    return {
        "from_channel": channels[worst],
        "to_channel": channels[best],
        "moved_fen": round(moved_fen),
        "share": MOVE_SHARE,
        "expected": {
            "horizon_days": horizon_days,
            "baseline_users": float(daily_users * horizon_days),
            "users": expected,
            "users_range": [float(np.percentile(gains, 10)), float(np.percentile(gains, 90))],
            "cost_fen": 0.0,  # the budget moves; the total stays
            "cost_range_fen": [0.0, 0.0],
            "runs": RUNS,
            "seed": SEED,
        },
        "channels": [
            {
                "channel": c,
                "referred_users": int(users[i].sum()),
                "reward_cost_fen": round(float(cost[i].sum())),
                "users_per_yuan": round(float(eff[i]), 4),
                "days_with_cost": paid_days[c],
            }
            for i, c in enumerate(channels)
        ],  # fmt: skip
        "window_days": len(days),
    }


def channel_option(campaign_id: str | None, horizon_days: int) -> dict[str, Any] | None:
    """`move_budget` over the warehouse's per-channel results (of one campaign, or all)."""
    with warehouse.connect() as con:
        return move_budget(daily_results(con, campaign_id), horizon_days)

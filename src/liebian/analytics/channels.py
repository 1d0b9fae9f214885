"""Channel efficacy radar (渠道效能雷达图): fission power against conversion power per channel.

Each channel's axes are the KPI sheet's values with the channel as filter (definitions of kpis.py,
docs/metrics.md): invites sent, K-factor, conversion rate, AOV and D7 retention. They are computed
for every channel at once — the sheet's counts grouped by channel in ONE query, instead of one
sheet per channel (tests check the two agree). Each axis is normalised by the best channel
(value / max, so the best channel scores 1 and a channel without data 0). Fission power = mean of
the normalised invites and K-factor; conversion power = mean of the normalised conversion rate, AOV
and D7 retention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from liebian.analytics.common import Frame, clean, passive, ratio
from liebian.analytics.kpis import Costs, k_factor_inputs, reached_buyers, registrations_by_channel
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    ir = lazy_import("ibis.expr.types")

FISSION_AXES = ("invites_sent", "k_factor")
CONVERSION_AXES = ("conversion_rate", "aov_fen", "retention_d7")
RETENTION_DAY = 7


def channel_names(fr: Frame) -> list[str]:
    e = fr.events()
    return sorted(str(c) for c in fr.execute(e.select("channel").distinct()).channel)


def channel_counts(fr: Frame) -> ir.Table:
    """One row per channel with an event in the period: the counts the radar's axes divide.

    Grouping by channel gives each channel exactly the rows its channel filter would select:
    events, referral edges and paid orders by their own channel; new users by the channel of their
    first registration (kpis.new_users); the last data day by the channel's last event. Coming back counts in any
    channel, as in the sheet."""
    ev = fr.ev
    e = fr.events()
    e = e.filter(e.channel.notnull())
    # One aggregation per (channel, person) gives the distinct persons: two distinct counts would
    # cost DuckDB a hash aggregation over all the events each. Flags as the sheet's (kpis.py).
    joined = e.event == ev.join
    per = e.group_by("channel", "person_id").aggregate(
        joined=joined.any(),
        reached_c=(e.campaign_id.notnull() | joined).any(),
        invites=e.event_id.count(where=e.event == ev.invite_share),
    )
    out = per.group_by("channel").aggregate(
        reached=per.person_id.count(where=per.reached_c),
        participants=per.person_id.count(where=per.joined),
        invites_sent=per.invites.sum(),
    )
    edges = fr.edges()
    referred = edges.group_by("channel").aggregate(referred_users=edges.invitee_person_id.nunique())
    opened = e.filter(e.event.isin([ev.invite_click, ev.invite_accept])).select("channel", "person_id")
    rec = ibis.union(opened, edges.select("channel", person_id=edges.invitee_person_id), distinct=True)
    recipients = rec.group_by("channel").aggregate(invite_recipients=rec.person_id.count())
    paid = fr.orders()
    money = paid.group_by("channel").aggregate(
        buyers=paid.person_id.nunique(), paid_orders=paid.order_id.count(), revenue_fen=paid.amount_fen.sum()
    )
    rb = reached_buyers(per, paid, ("channel", "person_id"))
    rb = rb.group_by("channel").aggregate(reached_buyers=rb.person_id.count())
    # D7 retention of the channel's new users (first event in the channel falls in the period).
    seen = fr.events(period=False)
    as_of = seen.group_by("channel").aggregate(as_of=fr.day_of(seen.ts.max()))
    new = fr.in_period(registrations_by_channel(fr), "first_ts")
    all_edges = fr.table("referral_edges")
    ref_new = new.semi_join(all_edges, new.person_id == all_edges.invitee_person_id)
    ref_new = ref_new.group_by("channel").aggregate(new_referred_users=ref_new.person_id.count())
    cohort = new.mutate(first_day=fr.day_of(new.first_ts)).join(as_of, "channel")
    eligible = cohort.filter(cohort.first_day + RETENTION_DAY <= cohort.as_of)
    back_ev = fr.in_segment(fr.table("events"))
    back_ev = back_ev.filter(~passive(fr, back_ev.event))
    back_days = back_ev.select("person_id", day=fr.day_of(back_ev.ts)).distinct()
    back = eligible.semi_join(
        back_days,
        [eligible.person_id == back_days.person_id, back_days.day == eligible.first_day + RETENTION_DAY],
    )
    base = eligible.group_by("channel").aggregate(d_base=eligible.person_id.count())
    came_back = back.group_by("channel").aggregate(d_back=back.person_id.count())
    for part in (referred, recipients, money, rb, ref_new, base, came_back):
        out = out.left_join(part, "channel").drop("channel_right")
    return out


def channel_radar(
    fr: Frame, channels: list[str] | None = None, costs: Costs | None = None
) -> list[dict[str, Any]]:
    """The radar's rows: the channels asked for, else the filters', else every channel seen in the
    period (a channel without data has zero counts and n/a rates). `costs` do not enter the axes."""
    found = {str(r["channel"]): r for r in fr.execute(channel_counts(fr)).to_dict(orient="records")}
    names = channels or list(fr.filters.channels) or sorted(found)
    rows: list[dict[str, Any]] = []
    for name in names:
        c = {k: clean(v) for k, v in found.get(name, {}).items()}
        invites = int(c.get("invites_sent") or 0)
        counts = {
            k: int(c.get(k) or 0)
            for k in ("invite_recipients", "participants", "referred_users", "new_referred_users")
        }
        rows.append(
            {
                "channel": name,
                "invites_sent": invites,
                "k_factor": k_factor_inputs(counts)["k_factor"],
                "conversion_rate": ratio(c.get("reached_buyers") or 0, c.get("reached") or 0),
                "aov_fen": ratio(c.get("revenue_fen") or 0, c.get("paid_orders") or 0),
                "retention_d7": ratio(c.get("d_back") or 0, c.get("d_base") or 0),
            }
        )
    for axis in FISSION_AXES + CONVERSION_AXES:
        best = max((r[axis] or 0) for r in rows) if rows else 0
        for r in rows:
            r[f"{axis}_norm"] = (r[axis] or 0) / best if best else 0.0
    for r in rows:
        r["fission_power"] = sum(r[f"{a}_norm"] for a in FISSION_AXES) / len(FISSION_AXES)
        r["conversion_power"] = sum(r[f"{a}_norm"] for a in CONVERSION_AXES) / len(CONVERSION_AXES)
    return rows

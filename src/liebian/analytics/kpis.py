"""The KPI sheet: participation, invites, K-factor, conversion, money, retention, stickiness.

All counts come out of ONE query (single-row aggregates cross-joined), the ratios are then taken
in Python so both engines divide the same exact integers. Definitions: docs/metrics.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from liebian.analytics.common import DAY, Frame, clean, ratio


@dataclass(frozen=True)
class Costs:
    """Money spent in the period, in fen: rewards plus configured cost inputs (media, staff, tools)."""

    reward_cost_fen: int = 0
    other_cost_fen: int = 0

    @property
    def total_fen(self) -> int:
        return self.reward_cost_fen + self.other_cost_fen


def _active(fr: Frame, t: ir.Table) -> ir.Table:
    return t.filter(~t.event.isin(list(fr.ev.passive)))


def first_seen(fr: Frame, dims: bool = True) -> ir.Table:
    """person_id, first_ts: each person's first event (all time; filtered by channel/campaign/segment)."""
    t = fr.events(period=False, dims=dims)
    return t.group_by("person_id").aggregate(first_ts=t.ts.min())


def new_users(fr: Frame) -> ir.Table:
    """Persons whose first event falls in the period."""
    return fr.in_period(first_seen(fr), "first_ts")


def _reference_day(fr: Frame) -> ir.Table:
    """One row: as_of (last local day with data) and ref_day (the period end, else as_of)."""
    t = fr.events(period=False)
    ref = t.aggregate(as_of=fr.day_of(t.ts.max()))
    end = fr.filters.end
    return ref.mutate(ref_day=ibis.literal(fr.day_number(end), "int64") if end else ref.as_of)


def kpi_counts(fr: Frame) -> ir.Table:
    """One row with every count the KPI sheet divides."""
    ev = fr.ev
    e = fr.events()
    passive = e.event.isin(list(ev.passive))
    parts: list[ir.Table] = [
        e.aggregate(
            reached=e.person_id.nunique(),
            active_users=e.person_id.nunique(where=~passive),
            participants=e.person_id.nunique(where=e.event == ev.join),
            invites_sent=e.event_id.count(where=e.event == ev.invite_share),
            invite_clicks=e.event_id.count(where=e.event == ev.invite_click),
            shares=e.event_id.count(where=e.event.isin([ev.share, ev.invite_share])),
            events=e.event_id.count(),
        )
    ]

    edges = fr.edges()
    parts.append(
        edges.aggregate(
            referred_users=edges.invitee_person_id.nunique(),
            inviters=edges.inviter_person_id.nunique(),
        )
    )
    # Viral cycle time: from the inviter's first appearance anywhere to the invitee's acquisition.
    seen = fr.table("events")
    seen = seen.group_by("person_id").aggregate(first_ts=seen.ts.min())
    cyc = edges.join(seen, edges.inviter_person_id == seen.person_id)
    cyc = cyc.select(secs=ibis.greatest(fr.seconds(cyc.ts) - fr.seconds(cyc.first_ts), 0))
    parts.append(cyc.aggregate(viral_cycle_seconds=cyc.secs.median()))

    paid = fr.orders()
    parts.append(
        paid.aggregate(
            buyers=paid.person_id.nunique(),
            paid_orders=paid.order_id.count(),
            revenue_fen=paid.amount_fen.sum(),
        )
    )
    per_buyer = paid.group_by("person_id").aggregate(n=paid.order_id.count())
    parts.append(per_buyer.aggregate(repeat_buyers=per_buyer.person_id.count(where=per_buyer.n >= 2)))
    refunded = fr.orders(paid=False)
    refunded = refunded.filter(refunded.status == "refunded")
    parts.append(
        refunded.aggregate(refunded_orders=refunded.order_id.count(), refunded_fen=refunded.amount_fen.sum())
    )

    new = new_users(fr)
    parts.append(new.aggregate(new_users=new.person_id.count()))
    all_edges = fr.table("referral_edges")
    referred_new = new.semi_join(all_edges, new.person_id == all_edges.invitee_person_id)
    parts.append(referred_new.aggregate(new_referred_users=referred_new.person_id.count()))
    # Observed LTV: every paid order of the period's new users, in any channel, to date.
    all_paid = fr.table("orders")
    all_paid = all_paid.filter(all_paid.status == "paid")
    new_rev = all_paid.semi_join(new, all_paid.person_id == new.person_id)
    parts.append(new_rev.aggregate(new_user_revenue_fen=new_rev.amount_fen.sum()))

    # Retention on day N after the first day; only cohorts whose day N is already in the data count.
    ref = _reference_day(fr)
    cohort = new.mutate(first_day=fr.day_of(new.first_ts)).cross_join(ref)
    # Coming back counts in any channel or campaign (the filters chose who was acquired).
    back_ev = _active(fr, fr.in_segment(fr.table("events")))
    back_days = back_ev.select("person_id", day=fr.day_of(back_ev.ts)).distinct()
    for n in fr.config.retention_days:
        eligible = cohort.filter(cohort.first_day + n <= cohort.as_of)
        back = eligible.semi_join(
            back_days,
            [eligible.person_id == back_days.person_id, back_days.day == eligible.first_day + n],
        )
        parts.append(eligible.aggregate(**{f"d{n}_base": eligible.person_id.count()}))
        parts.append(back.aggregate(**{f"d{n}_back": back.person_id.count()}))

    # Stickiness: average DAU over the 30 days ending at the period end (or the last data day) / MAU.
    act = _active(fr, fr.events(period=False))
    act_days = act.select("person_id", day=fr.day_of(act.ts)).distinct()
    win = act_days.cross_join(ref.select("ref_day"))
    win = win.filter((win.day <= win.ref_day) & (win.day > win.ref_day - 30))
    parts.append(win.aggregate(person_days_30=win.person_id.count(), mau=win.person_id.nunique()))

    start = fr.filters.start
    if start:
        silent_before = fr.utc_bound(start - timedelta(days=fr.config.silent_days))
        before = act.filter(act.ts < fr.utc_bound(start))
        last = before.group_by("person_id").aggregate(last_ts=before.ts.max())
        silent = last.filter(last.last_ts < silent_before)
        in_period = _active(fr, fr.events())
        back = silent.semi_join(in_period, silent.person_id == in_period.person_id)
        parts.append(silent.aggregate(silent_users=silent.person_id.count()))
        parts.append(back.aggregate(reactivated_users=back.person_id.count()))

    out = parts[0]
    for part in parts[1:]:
        out = out.cross_join(part)
    return out


def kpis(fr: Frame, costs: Costs | None = None) -> dict[str, Any]:
    """The KPI sheet for the frame's filters: counts, rates and money (fen), None where undefined."""
    costs = costs or Costs()
    row = {k: clean(v) for k, v in fr.execute(kpi_counts(fr)).to_dict(orient="records")[0].items()}
    for key in ("revenue_fen", "refunded_fen", "new_user_revenue_fen"):
        row[key] = int(row[key] or 0)
    r = row
    out: dict[str, Any] = dict(fr.filters.describe())
    out.update(
        reached=r["reached"],
        active_users=r["active_users"],
        participants=r["participants"],
        participation_rate=ratio(r["participants"], r["reached"]),
        invites_sent=r["invites_sent"],
        invite_clicks=r["invite_clicks"],
        shares=r["shares"],
        invites_per_participant=ratio(r["invites_sent"], r["participants"]),
        referred_users=r["referred_users"],
        invite_conversion=ratio(r["referred_users"], r["invites_sent"]),
    )
    ipp, conv = out["invites_per_participant"], out["invite_conversion"]
    out["k_factor"] = None if ipp is None or conv is None else ipp * conv
    cycle = r["viral_cycle_seconds"]
    out["viral_cycle_days"] = None if cycle is None else cycle / DAY
    out.update(
        inviters=r["inviters"],
        referral_rate=ratio(r["inviters"], r["active_users"]),
        buyers=r["buyers"],
        conversion_rate=ratio(r["buyers"], r["reached"]),
        paid_orders=r["paid_orders"],
        revenue_fen=r["revenue_fen"],
        aov_fen=ratio(r["revenue_fen"], r["paid_orders"]),
        repeat_buyers=r["repeat_buyers"],
        repurchase_rate=ratio(r["repeat_buyers"], r["buyers"]),
        refunded_orders=r["refunded_orders"],
        refunded_fen=r["refunded_fen"],
        new_users=r["new_users"],
        new_referred_users=r["new_referred_users"],
        referred_share_of_new=ratio(r["new_referred_users"], r["new_users"]),
        reward_cost_fen=costs.reward_cost_fen,
        other_cost_fen=costs.other_cost_fen,
        total_cost_fen=costs.total_fen,
        cac_fen=ratio(costs.total_fen, r["new_users"]) if costs.total_fen else None,
        ltv_fen=ratio(r["new_user_revenue_fen"], r["new_users"]),
    )
    out["ltv_cac"] = ratio(out["ltv_fen"], out["cac_fen"])
    out["roi"] = ratio(r["revenue_fen"] - costs.total_fen, costs.total_fen) if costs.total_fen else None
    for n in fr.config.retention_days:
        out[f"retention_d{n}"] = ratio(r[f"d{n}_back"], r[f"d{n}_base"])
        out[f"retention_d{n}_base"] = r[f"d{n}_base"]
    out["dau_avg_30d"] = r["person_days_30"] / 30
    out["mau"] = r["mau"]
    out["dau_mau"] = ratio(r["person_days_30"] / 30, r["mau"])
    out["silent_users"] = r.get("silent_users")
    out["reactivated_users"] = r.get("reactivated_users")
    out["reactivation_rate"] = ratio(r.get("reactivated_users"), r.get("silent_users"))
    return out

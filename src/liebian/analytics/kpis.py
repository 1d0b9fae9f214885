"""The KPI sheet: participation, invites, K-factor, conversion, money, retention, stickiness.

All counts come out of ONE query (single-row aggregates cross-joined), the ratios are then taken
in Python so both engines divide the same exact integers. Definitions: docs/metrics.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from liebian.analytics.common import DAY, AnalyticsError, Frame, clean, ratio, records
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    ir = lazy_import("ibis.expr.types")


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


_ROW = ("person_id", "ts", "channel", "campaign_id")


def _rows(t: ir.Table) -> ir.Table:
    """person_id, ts, channel, campaign_id of `t`, nullable (tables differ in NOT NULL)."""
    types = {"person_id": "int64", "ts": "timestamp(6)", "channel": "string", "campaign_id": "string"}
    return t.select(**{c: t[c].cast(ibis.dtype(types[c]).copy(nullable=True)) for c in _ROW})


def _registration_rows(fr: Frame) -> ir.Table:
    """Rows that register a person: a registration event (sign-up, follow), or, in a channel that has
    no registration event at all, an order or any event there (all time, every dimension)."""
    ev, od = fr.table("events"), fr.table("orders")
    reg = ev.filter(ev.event.isin(list(fr.ev.registration)))
    reg_channels = reg.select(reg_channel=reg.channel).distinct()
    rows = ibis.union(_rows(ev), _rows(od))
    bare = rows.anti_join(reg_channels, rows.channel == reg_channels.reg_channel)
    return ibis.union(_rows(reg), _rows(bare))


def first_registrations(fr: Frame) -> ir.Table:
    """person_id, first_ts: each person's first registration (all time, every dimension), without the
    persons active before the configured baseline day (existing members)."""
    rows = _registration_rows(fr)
    first = rows.group_by("person_id").aggregate(first_ts=rows.ts.min())
    baseline = fr.config.baseline
    if baseline is not None:
        ev, od = fr.table("events"), fr.table("orders")
        bound = fr.utc_bound(baseline)
        before = ibis.union(_rows(ev.filter(ev.ts < bound)), _rows(od.filter(od.ts < bound)))
        first = first.anti_join(before, first.person_id == before.person_id)
    return first


def registrations_by_channel(fr: Frame) -> ir.Table:
    """channel, person_id, first_ts: the rows (matching the filters) of each person's first
    registration, so that a channel filter selects exactly that channel's rows."""
    first = first_registrations(fr)
    hit = fr.with_dims(_registration_rows(fr))
    got = hit.join(first, [hit.person_id == first.person_id, hit.ts == first.first_ts])
    return got.select("channel", "person_id", "first_ts").distinct()


def new_users(fr: Frame) -> ir.Table:
    """person_id, first_ts: persons whose first registration falls in the period (docs/metrics.md).

    A person's first registration is the earliest of `_registration_rows`; it counts for the filters
    (channel, campaign, segment) when that row matches them. Persons with no registration (members known
    before the data) are never new, nor are persons active before the configured baseline day.
    """
    first = first_registrations(fr)
    f = fr.filters
    if f.channels or f.campaigns or f.segment is not None:
        hit = fr.with_dims(_registration_rows(fr))
        first = first.semi_join(hit, [first.person_id == hit.person_id, first.first_ts == hit.ts])
    return fr.in_period(first, "first_ts")


def _reference_day(fr: Frame) -> ir.Table:
    """One row: as_of (last local day with data) and ref_day (the period end, else as_of)."""
    t = fr.events(period=False)
    ref = t.aggregate(as_of=fr.day_of(t.ts.max()))
    end = fr.filters.end
    return ref.mutate(ref_day=ibis.literal(fr.day_number(end), "int64") if end else ref.as_of)


# The counts of the period that add up per day or hour: one definition each, used by the KPI sheet
# (whole period) and by the series (per local day or hour).
def _row_counts(fr: Frame, e: ir.Table) -> dict[str, ir.Value]:
    ev = fr.ev
    return {
        "invites_sent": e.event_id.count(where=e.event == ev.invite_share),
        "invite_clicks": e.event_id.count(where=e.event == ev.invite_click),
        "shares": e.event_id.count(where=e.event.isin([ev.share, ev.invite_share])),
        "events": e.event_id.count(),
    }


def _person_flags(fr: Frame, t: ir.Table, in_period: ir.BooleanValue) -> dict[str, ir.Value]:
    """Per person, in the period: seen; reached by a campaign (an event of a campaign, or joining one);
    active (a non-passive event); joined; sent an invite (and active). Each subset flag implies its
    base, so every rate over them is a probability by construction."""
    ev = fr.ev
    joined = in_period & (t.event == ev.join)
    shared = in_period & (t.event == ev.invite_share)
    return {
        "seen": in_period.any(),
        "reached_c": (in_period & t.campaign_id.notnull() | joined).any(),
        "active": (in_period & ~t.event.isin(list(ev.passive))).any(),
        "joined": joined.any(),
        "shared": (shared & ~t.event.isin(list(ev.passive))).any(),
    }


def _person_counts(per: ir.Table) -> dict[str, ir.Value]:
    # Persons counted from one aggregation per person: several distinct counts with conditions
    # would cost DuckDB one hash aggregation over all the events each.
    return {
        "seen_users": per.person_id.count(where=per.seen),
        "reached": per.person_id.count(where=per.reached_c),
        "active_users": per.person_id.count(where=per.active),
        "participants": per.person_id.count(where=per.joined),
        "sharers": per.person_id.count(where=per.shared),
    }


def invite_recipients(fr: Frame, e: ir.Table, edges: ir.Table, bucket: int | None = None) -> ir.Table:
    """Distinct persons who received or opened an invite (clicked one, accepted one, or are an accepted
    invite's invitee): the base of invite conversion, which holds every invitee (per bucket if given)."""
    ev = fr.ev
    opened = e.filter(e.event.isin([ev.invite_click, ev.invite_accept]))
    opened = opened.select(
        "person_id", bucket=fr.bucket_of(opened.ts, bucket) if bucket else ibis.literal(0, "int64")
    )
    inv = edges.select(
        person_id=edges.invitee_person_id,
        bucket=fr.bucket_of(edges.ts, bucket) if bucket else ibis.literal(0, "int64"),
    )
    return ibis.union(opened, inv, distinct=True)


def reached_buyers(per: ir.Table, paid: ir.Table, keys: tuple[str, ...] = ("person_id",)) -> ir.Table:
    """The distinct buyers (per `keys`) among the persons a campaign reached."""
    buyers = paid.select(*keys).distinct()
    reached = per.filter(per.reached_c)
    return buyers.semi_join(reached, [buyers[k] == reached[k] for k in keys])


def _event_counts(fr: Frame, e: ir.Table, bucket: ir.Value, size: int) -> ir.Table:
    """The event counts of `e` per bucket (a local day or hour)."""
    per = e.group_by(person_id=e.person_id, bucket=bucket).aggregate(**_person_flags(fr, e, e.ts.notnull()))
    persons = per.group_by("bucket").aggregate(**_person_counts(per))
    out = persons.join(e.group_by(bucket=bucket).aggregate(**_row_counts(fr, e)), "bucket")
    paid = fr.orders()
    rb = reached_buyers(per, paid.mutate(bucket=fr.bucket_of(paid.ts, size)), ("person_id", "bucket"))
    rb = rb.group_by("bucket").aggregate(reached_buyers=rb.person_id.count())
    out = out.left_join(rb, "bucket").drop("bucket_right")
    return out.mutate(reached_buyers=ibis.coalesce(out.reached_buyers, 0))


def _edge_counts(edges: ir.Table) -> dict[str, ir.Value]:
    return {
        "referred_users": edges.invitee_person_id.nunique(),
        "inviters": edges.inviter_person_id.nunique(),
    }


def _paid_counts(paid: ir.Table) -> dict[str, ir.Value]:
    return {
        "buyers": paid.person_id.nunique(),
        "paid_orders": paid.order_id.count(),
        "revenue_fen": paid.amount_fen.sum(),
    }


def referred_new(fr: Frame, new: ir.Table) -> ir.Table:
    """The new users who arrived through an accepted invite (an edge names them as invitee)."""
    all_edges = fr.table("referral_edges")
    return new.semi_join(all_edges, new.person_id == all_edges.invitee_person_id)


# Rates of one count over another (None when the base is empty), shared by the sheet and the series.
RATES = {
    "participation_rate": ("participants", "reached"),
    "invites_per_participant": ("invites_sent", "participants"),
    "invite_conversion": ("referred_users", "invite_recipients"),
    "referral_rate": ("sharers", "active_users"),
    "conversion_rate": ("reached_buyers", "reached"),
    "aov_fen": ("revenue_fen", "paid_orders"),
    "referred_share_of_new": ("new_referred_users", "new_users"),
}


def _rate(counts: dict[str, Any], name: str) -> float | None:
    num, den = RATES[name]
    return ratio(counts[num], counts[den])


def _retention_counts(fr: Frame, new: ir.Table, ref: ir.Table) -> list[ir.Table]:
    """Day-N retention of the period's new users: the base and who came back, per N."""
    out: list[ir.Table] = []
    # Retention on day N after the first day; only cohorts whose day N is already in the data count.
    cohort = new.mutate(first_day=fr.day_of(new.first_ts)).cross_join(ref)
    days = fr.config.retention_days
    out.append(
        cohort.aggregate(
            **{f"d{n}_base": cohort.person_id.count(where=cohort.first_day + n <= cohort.as_of) for n in days}
        )
    )
    # Coming back counts in any channel or campaign (the filters chose who was acquired): a semi-join
    # of (person, first day + N) with the events' (person, day), no distinct over all person-days.
    back_ev = _active(fr, fr.in_segment(fr.table("events")))
    back_days = back_ev.select("person_id", day=fr.day_of(back_ev.ts))
    targets = ibis.union(*(cohort.mutate(n=ibis.literal(n, "int64")) for n in days))
    targets = targets.filter(targets.first_day + targets.n <= targets.as_of)
    came = targets.semi_join(
        back_days,
        [targets.person_id == back_days.person_id, targets.first_day + targets.n == back_days.day],
    )
    out.append(came.aggregate(**{f"d{n}_back": came.person_id.count(where=came.n == n) for n in days}))
    return out


def _activity_counts(fr: Frame, ref: ir.Table) -> list[ir.Table]:
    """Stickiness (person-days and MAU of the 30 days to the reference day); silent and reactivated users."""
    out: list[ir.Table] = []
    # Stickiness: average DAU over the 30 days ending at the period end (or the last data day) / MAU.
    act = _active(fr, fr.events(period=False))
    act_days = act.select("person_id", day=fr.day_of(act.ts)).cross_join(ref.select("ref_day"))
    # the window first, then the distinct (person, day) pairs of those 30 days only
    act_days = act_days.filter((act_days.day <= act_days.ref_day) & (act_days.day > act_days.ref_day - 30))
    win = act_days.select("person_id", "day").distinct()
    out.append(win.aggregate(person_days_30=win.person_id.count(), mau=win.person_id.nunique()))

    start = fr.filters.start
    if start:
        silent_before = fr.utc_bound(start - timedelta(days=fr.config.silent_days))
        before = act.filter(act.ts < fr.utc_bound(start))
        last = before.group_by("person_id").aggregate(last_ts=before.ts.max())
        silent = last.filter(last.last_ts < silent_before)
        in_period = _active(fr, fr.events())
        back = silent.semi_join(in_period, silent.person_id == in_period.person_id)
        out.append(silent.aggregate(silent_users=silent.person_id.count()))
        out.append(back.aggregate(reactivated_users=back.person_id.count()))
    return out


def kpi_counts(fr: Frame) -> ir.Table:
    """One row with every count the KPI sheet divides."""
    # One aggregation per person over the events of all time (filtered by channel, campaign,
    # segment) gives their first event (new users) and what they did in the period.
    t = fr.events(period=False)
    per = t.group_by("person_id").aggregate(first_ts=t.ts.min(), **_person_flags(fr, t, fr.period_mask(t.ts)))
    e = fr.events()
    parts: list[ir.Table] = [
        per.aggregate(**_person_counts(per)).cross_join(e.aggregate(**_row_counts(fr, e)))
    ]

    edges = fr.edges()
    parts.append(edges.aggregate(**_edge_counts(edges)))
    rec = invite_recipients(fr, e, edges)
    parts.append(rec.aggregate(invite_recipients=rec.person_id.count()))
    # Viral cycle time: from the inviter's first appearance anywhere to the invitee's acquisition.
    f = fr.filters
    if f.channels or f.campaigns or f.segment is not None:
        seen = fr.table("events")
        seen = seen.group_by("person_id").aggregate(first_ts=seen.ts.min())
    else:
        seen = per  # the same first events
    cyc = edges.join(seen, edges.inviter_person_id == seen.person_id)
    cyc = cyc.select(secs=ibis.greatest(fr.seconds(cyc.ts) - fr.seconds(cyc.first_ts), 0))
    parts.append(cyc.aggregate(viral_cycle_seconds=cyc.secs.median()))

    paid = fr.orders()
    parts.append(paid.aggregate(**_paid_counts(paid)))
    rb = reached_buyers(per, paid)
    parts.append(rb.aggregate(reached_buyers=rb.person_id.count()))
    per_buyer = paid.group_by("person_id").aggregate(n=paid.order_id.count())
    parts.append(per_buyer.aggregate(repeat_buyers=per_buyer.person_id.count(where=per_buyer.n >= 2)))
    refunded = fr.orders(paid=False)
    refunded = refunded.filter(refunded.status == "refunded")
    parts.append(
        refunded.aggregate(refunded_orders=refunded.order_id.count(), refunded_fen=refunded.amount_fen.sum())
    )

    new = new_users(fr)
    parts.append(new.aggregate(new_users=new.person_id.count()))
    ref_new = referred_new(fr, new)
    parts.append(ref_new.aggregate(new_referred_users=ref_new.person_id.count()))
    # Observed LTV: every paid order of the period's new users, in any channel, to date.
    all_paid = fr.table("orders")
    all_paid = all_paid.filter(all_paid.status == "paid")
    new_rev = all_paid.semi_join(new, all_paid.person_id == new.person_id)
    parts.append(new_rev.aggregate(new_user_revenue_fen=new_rev.amount_fen.sum()))

    ref = _reference_day(fr)
    parts += _retention_counts(fr, new, ref)
    parts += _activity_counts(fr, ref)

    out = parts[0]
    for part in parts[1:]:
        out = out.cross_join(part)
    return out


def k_factor_inputs(r: dict[str, Any]) -> dict[str, Any]:
    """K-factor = invites per participant × conversion per invite, where an invite is a person who
    received or opened one: (invite_recipients / participants) × (referred_users / invite_recipients).
    Without invite events it falls back to referred new users / participants (`k_factor_basis` says
    which one); None without participants."""
    if r["invite_recipients"]:
        k = ratio(r["invite_recipients"], r["participants"])
        conv = ratio(r["referred_users"], r["invite_recipients"])
        return {"k_factor": None if k is None or conv is None else k * conv, "k_factor_basis": "invites"}
    return {
        "k_factor": ratio(r["new_referred_users"], r["participants"]),
        "k_factor_basis": "referred_new_users",
    }


def kpis(fr: Frame, costs: Costs | None = None) -> dict[str, Any]:
    """The KPI sheet for the frame's filters: counts, rates and money (fen), None where undefined."""
    costs = costs or Costs()
    row = records(fr.execute(kpi_counts(fr)))[0]
    for key in ("revenue_fen", "refunded_fen", "new_user_revenue_fen"):
        row[key] = int(row[key] or 0)
    r = row
    out: dict[str, Any] = dict(fr.filters.describe())
    out.update(
        seen_users=r["seen_users"],
        reached=r["reached"],
        active_users=r["active_users"],
        participants=r["participants"],
        participation_rate=_rate(r, "participation_rate"),
        invites_sent=r["invites_sent"],
        invite_clicks=r["invite_clicks"],
        shares=r["shares"],
        invites_per_participant=_rate(r, "invites_per_participant"),
        referred_users=r["referred_users"],
        invite_recipients=r["invite_recipients"],
        invite_conversion=_rate(r, "invite_conversion"),
    )
    out.update(k_factor_inputs(r))
    cycle = r["viral_cycle_seconds"]
    out["viral_cycle_days"] = None if cycle is None else cycle / DAY
    out.update(
        inviters=r["inviters"],
        sharers=r["sharers"],
        referral_rate=_rate(r, "referral_rate"),
        buyers=r["buyers"],
        reached_buyers=r["reached_buyers"],
        conversion_rate=_rate(r, "conversion_rate"),
        paid_orders=r["paid_orders"],
        revenue_fen=r["revenue_fen"],
        aov_fen=_rate(r, "aov_fen"),
        repeat_buyers=r["repeat_buyers"],
        repurchase_rate=ratio(r["repeat_buyers"], r["buyers"]),
        refunded_orders=r["refunded_orders"],
        refunded_fen=r["refunded_fen"],
        new_users=r["new_users"],
        new_referred_users=r["new_referred_users"],
        referred_share_of_new=_rate(r, "referred_share_of_new"),
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


SERIES_GRAINS = {"day": DAY, "hour": 3600}
SERIES_COUNTS = (
    "seen_users", "reached", "active_users", "participants", "sharers", "invite_recipients",
    "reached_buyers", "invites_sent", "invite_clicks", "shares", "events",
    "referred_users", "inviters", "buyers", "paid_orders", "revenue_fen", "new_users", "new_referred_users",
)  # fmt: skip


def kpi_series(fr: Frame, grain: str = "day") -> list[dict[str, Any]]:
    """The sheet's per-period counts and count-over-count rates (RATES) per local day or hour.

    Buckets are days or hours of the display zone (the same epoch arithmetic as `Frame.day_of`),
    computed in one query; every bucket of [start, end] is listed, an empty one with zero counts and
    None rates. Counts that are not additive over time (retention, stickiness) are not series.
    """
    if grain not in SERIES_GRAINS:
        raise AnalyticsError(f"grain: {grain!r} is not one of {', '.join(SERIES_GRAINS)}")
    f = fr.filters
    if f.start is None or f.end is None:
        raise AnalyticsError("start, end: a series needs both")
    size = SERIES_GRAINS[grain]

    def per_bucket(t: ir.Table, counts: dict[str, ir.Value], column: str = "ts") -> ir.Table:
        return t.group_by(bucket=fr.bucket_of(t[column], size)).aggregate(**counts)

    e, edges, paid = fr.events(), fr.edges(), fr.orders()
    new = new_users(fr)
    ref_new = referred_new(fr, new)
    rec = invite_recipients(fr, e, edges, size)
    parts = [
        _event_counts(fr, e, fr.bucket_of(e.ts, size), size),
        per_bucket(edges, _edge_counts(edges)),
        rec.group_by("bucket").aggregate(invite_recipients=rec.person_id.count()),
        per_bucket(paid, _paid_counts(paid)),
        per_bucket(new, {"new_users": new.person_id.count()}, "first_ts"),
        per_bucket(ref_new, {"new_referred_users": ref_new.person_id.count()}, "first_ts"),
    ]
    out = ibis.union(*(p.select("bucket") for p in parts), distinct=True)
    for part in parts:
        out = out.left_join(part, "bucket").drop("bucket_right")
    found = {int(r["bucket"]): r for r in fr.execute(out).to_dict(orient="records")}
    first = fr.day_number(f.start) * DAY // size
    last = (fr.day_number(f.end) + 1) * DAY // size
    rows = []
    for number in range(first, last):
        r = found.get(number, {})
        counts = {k: int(clean(r.get(k)) or 0) for k in SERIES_COUNTS}
        start = fr.bucket_start(number, size)
        rows.append(
            {"start": start.date().isoformat() if grain == "day" else start.isoformat(), **counts}
            | {name: _rate(counts, name) for name in RATES}
        )
    return rows

"""The KPI sheet: participation, invites, K-factor, conversion, money, retention, stickiness.

All counts come out of ONE query (single-row aggregates cross-joined), the ratios are then taken
in Python so both engines divide the same exact integers. Every metric is defined in the catalogue
(analytics/catalogue.py; docs/metrics.md is generated from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from liebian.analytics import catalogue
from liebian.analytics.cohorts import bit_count as _bit_count
from liebian.analytics.common import (
    DAY,
    AnalyticsError,
    Frame,
    analysable,
    clean,
    one_of,
    passive,
    ratio,
    records,
)
from liebian.analytics.kpi_retention import (
    FLAG_BASE,
    STICKY_DAYS,
    WORD_COLUMNS,
    day_words,
    retention_counts,
    top_shift,
    with_day_back,
)
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
    reg_channels = _registration_channels(fr)
    rows = ibis.union(_rows(ev), _rows(od))
    bare = rows.anti_join(reg_channels, rows.channel == reg_channels.reg_channel)
    return ibis.union(_rows(reg), _rows(bare))


def _registration_channels(fr: Frame) -> ir.Table:
    """reg_channel: the channels that have a registration event."""
    ev = fr.table("events")
    reg = ev.filter(ev.event.isin(list(fr.ev.registration)))
    return reg.select(reg_channel=reg.channel).distinct()


def _registers(
    fr: Frame, t: ir.Table, events: bool, channels: tuple[str, ...] | None = None
) -> ir.BooleanValue:
    """Whether a row of the events (`events`) or of the orders is one of `_registration_rows`;
    `channels`: those that have a registration event, when they were read before (`_known_channels`),
    so that the query tests a list instead of joining every row with a subquery over the events."""
    reg = _registration_channels(fr).reg_channel if channels is None else list(channels)
    bare = (~t.channel.isin(reg)).fill_null(True)  # as the anti-join
    return t.event.isin(list(fr.ev.registration)) | bare if events else bare


def _known_channels(fr: Frame) -> tuple[str, ...]:
    """The channels that have a registration event, read now (a small query of its own)."""
    df = fr.execute_cached("registration_channels", lambda: _registration_channels(fr))
    return tuple(sorted({str(c) for c in df.reg_channel if clean(c) is not None}))


def first_registrations(fr: Frame) -> ir.Table:
    """person_id, first_ts: each person's first registration (all time, every dimension), without the
    existing members: persons active before the configured baseline day, and persons imported with a
    `member_since` on a day before that of their first registration (members before the data)."""
    rows = _registration_rows(fr)
    return _without_members(fr, rows.group_by("person_id").aggregate(first_ts=rows.ts.min()))


def _without_members(fr: Frame, first: ir.Table) -> ir.Table:
    """`first` (person_id, first_ts) without the existing members (see `first_registrations`)."""
    try:
        members = fr.table("members")
    except AnalyticsError:  # a Parquet export older than the table has none: no member is known
        members = None
    if members is not None:
        first = first.anti_join(
            members,
            [
                first.person_id == members.person_id,
                fr.day_of_any(members.member_since) < fr.day_of(first.first_ts),
            ],
        )
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


def _new_users_from(fr: Frame, per: ir.Table, channels: tuple[str, ...] | None = None) -> ir.Table:
    """new_users(fr) without filters, the events' side of each first registration taken from `per`
    (the sheet's aggregation of every event by person, with `reg_ts`): the events are grouped by
    person once instead of twice; the orders' side is added from its own, smaller, aggregation."""
    od = fr.table("orders")
    od = od.filter(_registers(fr, od, events=False, channels=channels))
    from_orders = od.group_by(buyer=od.person_id).aggregate(order_ts=od.ts.min())
    # A full join, not a union aggregated by person: the orders' side (a few buyers) is the hash
    # table, every person probes it once; a person may have events only, or orders only.
    both = per.outer_join(from_orders, per.person_id == from_orders.buyer)
    first = both.select(
        person_id=ibis.coalesce(both.person_id, both.buyer),
        first_ts=ibis.least(both.reg_ts, both.order_ts),  # LEAST skips NULLs (DuckDB and Spark)
        **{c: both[c] for c in WORD_COLUMNS},  # the active days (`day_words`), NULL without events
    )
    first = first.filter(first.first_ts.notnull())  # persons without any registration row
    return fr.in_period(_without_members(fr, first), "first_ts")


def _reference_day(fr: Frame) -> ir.Table:
    """One row: last_ts (the last time with data), as_of (its local day) and ref_day (the period end,
    else as_of)."""
    t = _events_where(fr, None, period=False)
    ref = t.aggregate(last_ts=t.ts.max())
    ref = ref.mutate(as_of=fr.day_of(ref.last_ts))
    end = fr.filters.end
    return ref.mutate(ref_day=ibis.literal(fr.day_number(end), "int64") if end else ref.as_of)


def _events_where(
    fr: Frame, names: list[str] | None, period: bool = True, columns: tuple[str, ...] = ()
) -> ir.Table:
    """The events (filtered like `fr.events`) named one of `names` (when None: all of them, with the
    columns person_id, ts, channel and campaign_id and those of `columns` that the table has), as
    their own relation: not the one the sheet's aggregation by person reads, so that the engine scans
    the table again (cheap, the filter is pushed into the scan) instead of keeping every column of
    every event in memory for a second reader."""
    t = fr.backend.table("events")
    if names is None:  # a node of its own: the columns `fr.events` filters on and the time only
        t = t.select("person_id", "ts", "channel", "campaign_id", *(c for c in columns if c in t.columns))
    else:  # likewise (filtered on the name before the times)
        t = t.filter(one_of(t.event, names))
    t = analysable(t)
    t = fr.with_dims(t)
    return fr.in_period(t) if period else t


# The counts of the period that add up per day or hour: one definition each, used by the KPI sheet
# (whole period) and by the series (per local day or hour).
def _row_counts(fr: Frame, e: ir.Table, clicks: bool = True) -> dict[str, ir.Value]:
    """`clicks=False`: without `invite_clicks` (the sheet counts them over the clicks alone)."""
    ev = fr.ev
    out = {
        "invites_sent": e.event_id.count(where=e.event == ev.invite_share),
        "shares": e.event_id.count(where=e.event.isin([ev.share, ev.invite_share])),
        "events": e.event_id.count(),
    }
    return {**out, "invite_clicks": _invite_clicks(fr, e)} if clicks else out


# An engine click that was not a new visitor (campaigns/visits.py: a repeat, or the inviter's own).
_NOT_A_NEW_VISITOR = r'"visit"\s*:\s*"(repeat|own)"'


def _invite_clicks(fr: Frame, e: ir.Table) -> ir.IntegerValue:
    """Clicks of invites as distinct visitors: an imported click naming its inviter (referrer)
    counts once per visitor, inviter and campaign in the period, never the inviter's own; the
    engine's clicks (no referrer) count when campaigns/visits.py judged them a new visitor (their
    `props.visit`); any other click counts as it is."""
    click = e.event == fr.ev.invite_click
    named = click & e.referrer_person_id.notnull() & (e.person_id != e.referrer_person_id)
    pair = e.person_id.cast("string").concat(
        "|", e.referrer_person_id.cast("string"), "|", e.campaign_id.fill_null("")
    )
    unnamed = click & e.referrer_person_id.isnull()
    if "props" in e.columns:  # tables built by hand (tests) may lack it
        # CASE, not AND: the engine then matches the pattern on the clicks only, not on every event
        unnamed = ibis.ifelse(unnamed, ~e.props.fill_null("").re_search(_NOT_A_NEW_VISITOR), False)
    # likewise the pair is built for the named clicks only (NULL elsewhere, which nunique skips)
    return ibis.ifelse(named, pair, ibis.null("string")).nunique() + e.event_id.count(where=unnamed)


def _person_flags(fr: Frame, t: ir.Table, in_period: ir.BooleanValue) -> dict[str, ir.Value]:
    """Per person, in the period: seen; reached by a campaign (an event of a campaign, or joining one);
    active (a non-passive event); joined; sent an invite (and active). Each subset flag implies its
    base, so every rate over them is a probability by construction."""
    return {name: row.any() for name, row in _flag_rows(fr, t, in_period).items()}


def _flag_rows(fr: Frame, t: ir.Table, in_period: ir.BooleanValue) -> dict[str, ir.BooleanValue]:
    """The rows that set each flag of `_person_flags` (a person has the flag when any row does)."""
    ev = fr.ev
    joined = in_period & (t.event == ev.join)
    shared = in_period & (t.event == ev.invite_share)
    return {
        "seen": in_period,
        "reached_c": in_period & t.campaign_id.notnull() | joined,
        "active": in_period & ~passive(fr, t.event),
        "joined": joined,
        "shared": shared & ~passive(fr, t.event),
    }


# The sheet packs each person's flags (`_flag_rows`) into the top bits of the active-day bit set
# `days_1` (kpi_retention.day_words), so that its aggregation by person keeps two BIT_ORs instead of
# one aggregate per flag (each aggregate costs the engine a pass over every event's group state).
FLAG_BIT = {name: FLAG_BASE + i for i, name in enumerate(("seen", "reached_c", "active", "joined", "shared"))}
DAY_BITS = 2**STICKY_DAYS - 1


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


def reached_buyers(
    per: ir.Table, paid: ir.Table, keys: tuple[str, ...] = ("person_id",), distinct: bool = True
) -> ir.Table:
    """The distinct buyers (per `keys`) among the persons a campaign reached; `distinct=False`: `paid`
    holds one row per `keys` already."""
    buyers = paid.select(*keys).distinct() if distinct else paid.select(*keys)
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


def _paid_counts(paid: ir.Table, buyers: bool = True) -> dict[str, ir.Value]:
    """`buyers=False`: without `buyers` (the sheet counts them from its aggregation by buyer)."""
    out = {"paid_orders": paid.order_id.count(), "revenue_fen": paid.amount_fen.sum()}
    return {"buyers": paid.person_id.nunique(), **out} if buyers else out


def referred_new(fr: Frame, new: ir.Table) -> ir.Table:
    """The new users who arrived through an accepted invite (an edge names them as invitee)."""
    all_edges = fr.table("referral_edges")
    return new.semi_join(all_edges, new.person_id == all_edges.invitee_person_id)


# Rates of one count over another (None when the base is empty), shared by the sheet and the series:
# the catalogue's (analytics/catalogue.py) additive rates.
RATES = catalogue.series_rates()


def _rate(counts: dict[str, Any], name: str) -> float | None:
    num, den = RATES[name]
    return ratio(counts[num], counts[den])


def _ref_day(fr: Frame, ref: ir.Table) -> ir.IntegerValue:
    """The reference day (`_reference_day`) as a value for the aggregation by person."""
    end = fr.filters.end
    return ibis.literal(fr.day_number(end), "int64") if end else ref.ref_day.as_scalar()


def _activity_flags(fr: Frame, t: ir.Table, flags: dict[str, ir.BooleanValue]) -> dict[str, ir.Value]:
    """Per person, from their events `t` (all time, with kpi_retention.BACK): their active days
    (kpi_retention.day_words, whose `days_0` holds the 30 days to the reference day: the period end,
    else the last data day) with the `flags` rows' as the bits of FLAG_BIT; with a period start, the
    time of their last active event before it (silent, reactivated users). Folded into the sheet's
    aggregation by person: no distinct over all (person, day) pairs."""
    bits = ibis.literal(0, "int64")
    for name, row in flags.items():  # BIGINT literals: a small one would be a 32-bit INT on Spark
        bits += ibis.ifelse(row, ibis.literal(1 << FLAG_BIT[name], "int64"), ibis.literal(0, "int64"))
    out = day_words(fr, t, bits)
    start = fr.filters.start
    if start:
        active = ~passive(fr, t.event)
        out["last_active_before"] = t.ts.max(where=active & (t.ts < fr.utc_bound(start)))
    return out


def _unpacked(fr: Frame, per: ir.Table) -> ir.Table:
    """The sheet's aggregation by person with `days_30` (the active days of the 30 to the reference day)
    and one column per flag."""
    flags = per[WORD_COLUMNS[1]]
    bit = {name: ibis.literal(1 << b, "int64") for name, b in FLAG_BIT.items()}
    days_30 = (per[WORD_COLUMNS[0]] >> top_shift(fr)) & DAY_BITS
    return per.mutate(days_30=days_30, **{name: (flags & b) != 0 for name, b in bit.items()})


def _activity_counts(fr: Frame, per: ir.Table) -> dict[str, ir.Value]:
    """Stickiness (person-days and MAU of the 30 days to the reference day); silent and reactivated users
    (persons whose last active event before the period start is older than `silent_days`; reactivated:
    active in the period), from the flags of `_activity_flags`."""
    out: dict[str, ir.Value] = {
        "person_days_30": ibis.coalesce(_bit_count()(per.days_30).cast("int64").sum(), 0),
        "mau": per.person_id.count(where=per.days_30 != 0),
    }
    start = fr.filters.start
    if start:
        silent_before = fr.utc_bound(start - timedelta(days=fr.config.silent_days))
        silent = per.last_active_before < silent_before
        out["silent_users"] = per.person_id.count(where=silent)
        out["reactivated_users"] = per.person_id.count(where=silent & per.active)
    return out


def _new_user_counts(fr: Frame, cohort: ir.Table) -> list[ir.Table]:
    """The new users (`cohort`: person_id, first_ts, first_day, as_of, ref_day), the referred ones, their
    revenue to date and their day-N retention. Every count reads `cohort` (one relation, which the
    engine computes once): `referred_new` as a condition (IN), not a semi-join that would expand the
    new users again."""
    invitees = fr.table("referral_edges").invitee_person_id
    counts = {
        "new_users": cohort.person_id.count(),
        "new_referred_users": cohort.person_id.count(where=cohort.person_id.isin(invitees)),
    }
    # Observed LTV: every paid order of the period's new users, in any channel, to date.
    all_paid = fr.table("orders")
    all_paid = all_paid.filter(all_paid.status == "paid")
    new_rev = all_paid.semi_join(cohort, all_paid.person_id == cohort.person_id)
    parts = [new_rev.aggregate(new_user_revenue_fen=new_rev.amount_fen.sum())]
    # the counts over the new users themselves in one aggregation with their day-N retention
    return parts + retention_counts(fr, cohort, counts)


def kpi_counts(fr: Frame, reg_channels: tuple[str, ...] | None = None) -> ir.Table:
    """One row with every count the KPI sheet divides; `reg_channels`: the channels that have a
    registration event, when read before (`_known_channels`)."""
    # One aggregation per person over the events of all time (filtered by channel, campaign,
    # segment) gives their first event (new users) and what they did in the period.
    ref = _reference_day(fr)
    t = with_day_back(fr, fr.events(period=False), _ref_day(fr, ref))
    f = fr.filters
    # Without filters these are all the events: the same aggregation finds each person's first
    # registration among them (`_new_users_from`), sparing a second group-by of every event.
    shared = not (f.channels or f.campaigns or f.segment is not None)
    reg = (
        {"reg_ts": t.ts.min(where=_registers(fr, t, events=True, channels=reg_channels))}
        if shared and reg_channels != ()
        else {}
    )
    # Every analysable row has a time (`analysable`): without a period, every row is in it (a constant
    # the engine folds, rather than a NULL test in each flag of every event).
    in_period = fr.period_mask(t.ts) if f.start or f.end else ibis.literal(True)
    # The persons' flags, stickiness and silent users come out of the same aggregation, with as few
    # aggregates as can be (`_activity_flags` packs the flags); every other reader of the events reads
    # its own, pre-filtered rows (`_events_where`).
    per = t.group_by("person_id").aggregate(
        first_ts=t.ts.min(), **reg, **_activity_flags(fr, t, _flag_rows(fr, t, in_period))
    )
    per = _unpacked(fr, per)
    if shared and reg_channels == ():  # no registration event: every event registers
        per = per.mutate(reg_ts=per.first_ts)
    # The period's row counts: summed over the rows, with no group state to keep per person.
    e = _events_where(fr, None, columns=("event_id", "event"))
    # The clicks' distinct count over the clicks alone: beside the other counts, a distinct count
    # makes the engine keep every event's row for a second reader.
    clicks = _events_where(fr, [fr.ev.invite_click])
    parts: list[ir.Table] = [
        per.aggregate(**_person_counts(per), **_activity_counts(fr, per)),
        e.aggregate(**{k: ibis.coalesce(v, 0) for k, v in _row_counts(fr, e, clicks=False).items()}),
        clicks.aggregate(invite_clicks=ibis.coalesce(_invite_clicks(fr, clicks), 0)),
    ]

    edges = fr.edges()
    parts.append(edges.aggregate(**_edge_counts(edges)))
    ev = fr.ev
    rec = invite_recipients(fr, _events_where(fr, [ev.invite_click, ev.invite_accept]), edges)
    parts.append(rec.aggregate(invite_recipients=rec.person_id.count()))
    # Viral cycle time: from the inviter's first appearance anywhere to the invitee's acquisition.
    if not shared:
        seen = fr.table("events")
        seen = seen.group_by("person_id").aggregate(first_ts=seen.ts.min())
    else:
        seen = per  # the same first events
    cyc = edges.join(seen, edges.inviter_person_id == seen.person_id)
    cyc = cyc.select(secs=ibis.greatest(fr.seconds(cyc.ts) - fr.seconds(cyc.first_ts), 0))
    parts.append(cyc.aggregate(viral_cycle_seconds=cyc.secs.median()))

    paid = fr.orders()
    parts.append(paid.aggregate(**_paid_counts(paid, buyers=False)))
    # Buyers, repeat buyers and reached buyers from one aggregation of the paid orders by buyer, not
    # a distinct count, a distinct and a group-by of them each (a hash table of the buyers each).
    per_buyer = paid.group_by("person_id").aggregate(n=paid.order_id.count())
    parts.append(
        per_buyer.aggregate(
            buyers=per_buyer.person_id.count(),
            repeat_buyers=per_buyer.person_id.count(where=per_buyer.n >= 2),
        )
    )
    rb = reached_buyers(per, per_buyer, distinct=False)
    parts.append(rb.aggregate(reached_buyers=rb.person_id.count()))
    refunded = fr.orders(paid=False)
    refunded = refunded.filter(refunded.status == "refunded")
    parts.append(
        refunded.aggregate(refunded_orders=refunded.order_id.count(), refunded_fen=refunded.amount_fen.sum())
    )

    new = _new_users_from(fr, per, reg_channels) if shared else new_users(fr)
    parts += _new_user_counts(fr, new.mutate(first_day=fr.day_of(new.first_ts)).cross_join(ref))

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


def _cost_based(v: dict[str, Any], value: float | None) -> float | None:
    return value if v["total_cost_fen"] else None  # n/a without costs, never a 0 cost


# The sheet's metrics that are neither a count of `kpi_counts` nor a rate of two named values: their
# formula (the catalogue states it) as code, over the values computed before them in catalogue order.
DERIVED: dict[str, Any] = {
    "viral_cycle_days": lambda v: (
        None if v["viral_cycle_seconds"] is None else v["viral_cycle_seconds"] / DAY
    ),
    "total_cost_fen": lambda v: v["reward_cost_fen"] + v["other_cost_fen"],
    "cac_fen": lambda v: _cost_based(v, ratio(v["total_cost_fen"], v["new_users"])),
    "roi": lambda v: _cost_based(v, ratio(v["revenue_fen"] - v["total_cost_fen"], v["total_cost_fen"])),
    "dau_avg_30d": lambda v: v["person_days_30"] / 30,
}


def kpis(fr: Frame, costs: Costs | None = None) -> dict[str, Any]:
    """The KPI sheet for the frame's filters: every sheet metric of the catalogue, in its order, from
    the counts of `kpi_counts` (counts, rates of two values, `DERIVED`), None where undefined."""
    costs = costs or Costs()
    f = fr.filters
    # Without filters the sheet's registrations read the channels that have a registration event
    # (a small query), so that its aggregation by person tests them as a list.
    shared = not (f.channels or f.campaigns or f.segment is not None)
    reg = _known_channels(fr) if shared else None
    v = records(fr.execute_cached(("kpis", reg), lambda: kpi_counts(fr, reg)))[0]
    for key in ("revenue_fen", "refunded_fen", "new_user_revenue_fen"):
        v[key] = int(v[key] or 0)
    v.update(reward_cost_fen=costs.reward_cost_fen, other_cost_fen=costs.other_cost_fen)
    v.update(k_factor_inputs(v))
    out: dict[str, Any] = dict(fr.filters.describe())
    for m in catalogue.sheet_metrics(fr.config.retention_days):
        if m.key in DERIVED:
            v[m.key] = DERIVED[m.key](v)
        elif m.numerator and m.denominator:
            v[m.key] = ratio(v.get(m.numerator), v.get(m.denominator))
        elif m.source:
            v[m.key] = v[m.source]
        elif m.key not in v:  # counts that need a start (silent, reactivated users)
            v[m.key] = None
        out[m.key] = v[m.key]
        if m.key == "k_factor":
            out["k_factor_basis"] = v["k_factor_basis"]
    return out


SERIES_GRAINS = {"day": DAY, "hour": 3600}
SERIES_COUNTS = catalogue.series_counts()


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

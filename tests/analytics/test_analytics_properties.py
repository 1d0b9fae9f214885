"""Properties of the KPI sheet over random event sets (hypothesis), on DuckDB in memory.

Whatever the events, orders and referral edges: every probability-type KPI (shown as a percentage)
lies in [0, 1], every count is ≥ 0, and a count under a filter (channel, campaign, segment) is never
larger than the same count without it. Before the definitions were fixed, invite conversion
(referred users / invites sent) broke the first property on the demo brand (148 % with a filter).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warehouse_helpers import backend

from liebian.analytics.common import Filters, Frame, MetricConfig
from liebian.analytics.kpis import kpis

PROBABILITIES = (
    "participation_rate", "invite_conversion", "referral_rate", "conversion_rate", "repurchase_rate",
    "referred_share_of_new", "retention_d1", "retention_d7", "retention_d30", "dau_mau", "reactivation_rate",
)  # fmt: skip
COUNTS = (
    "seen_users", "reached", "active_users", "participants", "invites_sent", "invite_clicks", "shares",
    "referred_users", "invite_recipients", "inviters", "sharers", "buyers", "reached_buyers", "paid_orders",
    "revenue_fen", "refunded_orders", "refunded_fen", "new_users", "new_referred_users",
)  # fmt: skip
NAMES = ["signup", "follow", "exposure", "page_view", "join_campaign", "invite_share", "invite_click",
         "invite_accept", "share", "app_open"]  # fmt: skip
CHANNELS = ["wecom", "douyin", "store"]
CAMPAIGNS = [None, "c1", "c2"]
BASE = datetime(2026, 3, 1)
PERIOD = Filters(start=date(2026, 3, 3), end=date(2026, 3, 9))
FILTERS = [
    Filters(start=PERIOD.start, end=PERIOD.end, channels=("wecom",)),
    Filters(start=PERIOD.start, end=PERIOD.end, campaigns=("c1",)),
    Filters(start=PERIOD.start, end=PERIOD.end, channels=("douyin", "store"), campaigns=("c2",)),
    Filters(start=PERIOD.start, end=PERIOD.end, segment=frozenset({1, 2, 3})),
]

person = st.integers(1, 8)
when = st.integers(0, 14 * 24 - 1).map(lambda h: BASE + timedelta(hours=h))
event = st.tuples(person, when, st.sampled_from(NAMES), st.sampled_from(CHANNELS), st.sampled_from(CAMPAIGNS))
order = st.tuples(
    person, when, st.integers(1, 50_000), st.sampled_from(["paid", "paid", "refunded", "cancelled"]),
    st.sampled_from(CHANNELS), st.sampled_from(CAMPAIGNS),
)  # fmt: skip
edge = st.tuples(person, person, when, st.sampled_from(CHANNELS), st.sampled_from(CAMPAIGNS))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(event, max_size=40),
    orders=st.lists(order, max_size=12),
    edges=st.lists(edge, max_size=10),
)
def test_probabilities_lie_in_0_1_counts_are_nonnegative_and_filters_only_narrow(events, orders, edges):
    con = backend(events, orders, edges)
    config = MetricConfig(timezone="Asia/Shanghai")
    whole = kpis(Frame(con, PERIOD, config))
    for f in [PERIOD, *FILTERS]:
        got = whole if f is PERIOD else kpis(Frame(con, f, config))
        for key in PROBABILITIES:
            assert got[key] is None or 0 <= got[key] <= 1, (key, f, got[key])
        for key in COUNTS:
            assert got[key] >= 0, (key, f)
            assert got[key] <= whole[key], (key, f, got[key], whole[key])
        assert got["k_factor"] is None or got["k_factor"] >= 0

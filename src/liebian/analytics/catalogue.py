"""The metric catalogue: every metric liebian shows, defined once.

Each `Metric` names its key, its zh-CN and English names, its formula over the named counts
`kpis.kpi_counts` computes (a rate names its numerator and denominator, which `kpis.kpis` and
`kpis.kpi_series` divide), its unit, its population, time semantics, default filters, and where it
differs from PostHog's or the source plans' definition and why. The KPI sheet, the daily series,
the scorecard, the benchmarks, the demo summary, the reports, the alert rules, the console, the API
and the CLI take names, units and formulas from here; `docs/metrics.md` is generated from it
(`python -m liebian.analytics.metrics_doc --write`).

Data only: nothing adds to it at import or later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from liebian import display

Unit = Literal["count", "fen", "ratio", "probability", "days"]

# How the console, the reports and the demo summary show a value of each unit. Only probabilities
# are shown as percentages: a quotient that can exceed 1 is shown as a number (issue #18).
DISPLAY: dict[str, str] = {
    "count": "int",
    "fen": "fen",
    "ratio": "float",
    "probability": "pct",
    "days": "float",
}

UNIT_NAMES: dict[str, tuple[str, str]] = {
    "count": ("计数", "count"),
    "fen": ("分（人民币）", "fen (CNY)"),
    "ratio": ("比值", "ratio"),
    "probability": ("概率 [0, 1]", "probability [0, 1]"),
    "days": ("天", "days"),
}

# The catalogue's sections, in the order the KPI sheet and docs/metrics.md list them.
SECTIONS: dict[str, tuple[str, str]] = {
    "reach": ("触达与参与", "Reach and participation"),
    "invites": ("邀请与裂变", "Invites and referral"),
    "purchase": ("转化与收入", "Conversion and revenue"),
    "new_users": ("新增用户", "New users"),
    "costs": ("成本与回报", "Costs and return"),
    "retention": ("留存与活跃", "Retention and activity"),
    "changes": ("环比（综合评估）", "Changes (scorecard)"),
    "summary": ("演示摘要", "Demo summary"),
}

# The default filters, by the rows they apply to (docs/metrics.md "Filters").
F_EVENTS = "period; channel, campaign, segment on the events"
F_EDGES = "period on the edge; channel, campaign on the edge; segment on the inviter"
F_ORDERS = "period; channel, campaign, segment on the orders"
F_NEW = "registration in the period; channel, campaign, segment on the registration row"
F_REWARDS = (
    "issue day in the period; campaign; segment on the rewarded person (no channel: rewards have none)"
)
F_NONE = "none: the whole warehouse"
# Time semantics most metrics share.
T_PERIOD = "counted in the period P (local days of the display zone)"
T_COHORT = "the period's new users, followed to the last day with data, in any channel or campaign"


@dataclass(frozen=True)
class Metric:
    key: str
    zh: str
    en: str
    unit: Unit
    section: str
    formula: str  # over the named counts (and earlier metrics), in words
    population: str
    time: str = T_PERIOD
    filters: str = F_EVENTS
    numerator: str | None = None  # a rate: numerator / denominator, None when the base is 0
    denominator: str | None = None
    differs: str = ""  # how and why it differs from PostHog's / the plans' definition
    sheet: bool = True  # in the KPI sheet (`kpis.kpis`, the API's /kpis, `liebian analyze kpis`)
    series: bool = False  # additive per day/hour: in `kpis.kpi_series`
    change_of: str | None = None  # a change against the previous period of this metric
    change: Literal["relative", "points"] = "relative"
    source: str | None = None  # the count of `kpi_counts` a count metric reads, when not its key

    @property
    def probability(self) -> bool:
        return self.unit == "probability"

    @property
    def display(self) -> str:
        """The console's display kind of a value (int, fen, float, pct)."""
        return DISPLAY[self.unit]

    def name(self, locale: str = "zh-CN") -> str:
        return self.en if locale == "en" else self.zh

    @property
    def label(self) -> str:
        """Both names, for bilingual surfaces (reports, the demo summary): 参与率 Participation rate."""
        return self.zh if self.zh == self.en else f"{self.zh} {self.en}"


# fmt: off
_REACH = (
    Metric("seen_users", "可见用户", "Seen users", "count", "reach", "distinct persons with any event in E_P",
           "persons with an event in P passing the filters", series=True),
    Metric("reached", "触达人数", "Reached", "count", "reach",
           "distinct persons in E_P with an event of a campaign (`campaign_id` set) or a `join_campaign`",
           "persons a campaign touched in P", series=True,
           differs="PostHog has no reach; the plans define it as the persons a campaign touched. Counting campaign "
           "events (not every event) makes participation the plans' 参与率 with its 30 % inflection point."),
    Metric("active_users", "活跃用户", "Active users", "count", "reach",
           "distinct persons with an active event (any but passive `exposure`) in E_P", "persons active in P",
           series=True),
    Metric("participants", "参与人数", "Participants", "count", "reach", "distinct persons with `join_campaign` in E_P",
           "persons who joined a campaign in P", series=True),
    Metric("participation_rate", "参与率", "Participation rate", "probability", "reach", "participants / reached",
           "the reached", numerator="participants", denominator="reached", series=True,
           differs="The plans' 参与率 (participants over the persons reached); over every visitor it read 29.8 % on the "
           "demo where the summary read 37.6 %."),
)

_INVITES = (
    Metric("invites_sent", "邀请次数", "Invites sent", "count", "invites", "number of `invite_share` events in E_P",
           "invite shares in P", series=True),
    Metric("invite_clicks", "邀请点击", "Invite clicks", "count", "invites",
           "distinct visitors of invites in E_P: an imported `invite_click` naming an inviter counts once per (visitor, "
           "inviter, campaign), the inviter's own clicks never; an engine click counts when the campaign engine judged "
           "it a new visitor (`props.visit`)", "visitors of invites in P", series=True),
    Metric("shares", "分享次数", "Shares", "count", "invites", "number of `share` and `invite_share` events in E_P",
           "shares in P", series=True),
    Metric("invites_per_participant", "人均邀请", "Invites per participant", "ratio", "invites",
           "invites_sent / participants", "participants", numerator="invites_sent", denominator="participants",
           series=True),
    Metric("referred_users", "被邀请用户", "Referred users", "count", "invites", "distinct invitees on edges in P",
           "invitees of accepted invites in P", filters=F_EDGES, series=True),
    Metric("invite_recipients", "收到邀请人数", "Invite recipients", "count", "invites",
           "distinct persons with an `invite_click` or `invite_accept` in E_P, or the invitee of an edge in P",
           "persons who received or opened an invite in P", filters=F_EVENTS + "; edges as for referred_users",
           series=True),
    Metric("invite_conversion", "邀请转化率", "Invite conversion", "probability", "invites",
           "referred_users / invite_recipients", "persons who received or opened an invite",
           numerator="referred_users", denominator="invite_recipients", series=True,
           differs="The plans divide referred users by invites sent; one share reaches many people, so that quotient "
           "exceeded 100 % (148 % with a Douyin filter). Divided by the persons who received or opened an invite, "
           "which holds every invitee, it is a probability."),
    Metric("k_factor", "K 因子", "K-factor", "ratio", "invites",
           "(invite_recipients / participants) × (referred_users / invite_recipients) = referred_users / participants; "
           "without invite recipients: new_referred_users / participants (`k_factor_basis` says `invites` or "
           "`referred_new_users`)", "participants",
           differs="The classic K = invites per user × conversion per invite. Invites are counted by their recipients, "
           "so K is the persons each participant brought (the plans' 口碑传播系数); with no invite events at all it "
           "falls back to referred new users per participant instead of being null."),
    Metric("viral_cycle_days", "裂变周期（天）", "Viral cycle (days)", "days", "invites",
           "median over edges in P of (edge time − the inviter's first event anywhere) in days; negative gaps count "
           "as 0", "edges in P", filters=F_EDGES),
    Metric("inviters", "邀请人数", "Inviters", "count", "invites", "distinct inviters on edges in P",
           "inviters of accepted invites in P", filters=F_EDGES, series=True),
    Metric("sharers", "分享人数", "Sharers", "count", "invites", "distinct active persons with an `invite_share` in E_P",
           "active persons who sent an invite in P", series=True),
    Metric("shares_per_active", "人均分享", "Shares per active user", "ratio", "invites", "shares / active_users",
           "active users", numerator="shares", denominator="active_users"),
    Metric("referral_rate", "推荐率", "Referral rate", "probability", "invites", "sharers / active_users",
           "active users", numerator="sharers", denominator="active_users", series=True,
           differs="Counted within its base (sharers among the active), so it never exceeds 100 %; the plans' "
           "version (shares over users) could."),
)

_PURCHASE = (
    Metric("buyers", "购买人数", "Buyers", "count", "purchase", "distinct persons with a paid order in P",
           "persons with a paid order in P", filters=F_ORDERS, series=True),
    Metric("reached_buyers", "触达购买人数", "Reached buyers", "count", "purchase", "buyers who were reached in P",
           "buyers among the reached", filters=F_ORDERS + "; reach as for reached", series=True),
    Metric("conversion_rate", "转化率", "Conversion rate", "probability", "purchase", "reached_buyers / reached",
           "the reached", numerator="reached_buyers", denominator="reached", series=True,
           differs="Buyers are counted among the reached, so it never exceeds 100 %; buyers over the reached counted "
           "persons who were never reached (100.8 % on the demo's scorecard)."),
    Metric("paid_orders", "支付订单", "Paid orders", "count", "purchase", "paid orders in P", "orders with status `paid`",
           filters=F_ORDERS, series=True),
    Metric("revenue_fen", "成交额", "Revenue", "fen", "purchase", "sum of the paid orders' amounts in P (CNY fen)",
           "orders with status `paid`", filters=F_ORDERS, series=True,
           differs="Net of refunds: a refunded order is no revenue (GMV, which keeps it, is the demo summary's)."),
    Metric("aov_fen", "客单价", "Average order value", "fen", "purchase", "revenue_fen / paid_orders", "paid orders",
           filters=F_ORDERS, numerator="revenue_fen", denominator="paid_orders", series=True),
    Metric("repeat_buyers", "复购人数", "Repeat buyers", "count", "purchase", "buyers with ≥ 2 paid orders in P",
           "buyers", filters=F_ORDERS),
    Metric("repurchase_rate", "复购率", "Repurchase rate", "probability", "purchase", "repeat_buyers / buyers", "buyers",
           filters=F_ORDERS, numerator="repeat_buyers", denominator="buyers"),
    Metric("refunded_orders", "退款订单", "Refunded orders", "count", "purchase",
           "orders in P whose status is `refunded`", "refunded orders", filters=F_ORDERS),
    Metric("refunded_fen", "退款额", "Refunded amount", "fen", "purchase", "sum of the refunded orders' amounts in P",
           "refunded orders", filters=F_ORDERS),
)

_NEW_USERS = (
    Metric("new_users", "新增用户", "New users", "count", "new_users",
           "persons whose first registration (all time) falls in P. Registration: a `signup` or `follow` event; in a "
           "channel with no registration event at all, the first order or first event there",
           "persons who registered; members known before the data (no registration, imported with a `member_since` "
           "before their first registration, or active before `MetricConfig.baseline`) are never new", filters=F_NEW, series=True,
           differs="PostHog's new users are persons whose first event falls in the period; imported data begins in the "
           "middle of a brand's life, so that counted 25,779 returning members of the demo as new (D1 5.5 %). A "
           "registration is an arrival; the plans count sign-ups, follows and first activity are added for channels "
           "without sign-ups."),
    Metric("new_referred_users", "裂变新增用户", "New users via referral", "count", "new_users",
           "new users who appear as invitee on any edge", "new users", filters=F_NEW, series=True),
    Metric("referred_share_of_new", "裂变新增占比", "Share of new users via referral", "probability", "new_users",
           "new_referred_users / new_users", "new users", filters=F_NEW, numerator="new_referred_users",
           denominator="new_users", series=True),
)

_COSTS = (
    Metric("reward_cost_fen", "奖励成本", "Reward cost", "fen", "costs",
           "the reward ledger's rewards now issued or redeemed (issued minus revoked) whose issue entry falls in P, or "
           "the cost given (`--reward-cost`)", "rewards of the campaign filter", filters=F_REWARDS,
           differs="The plans leave reward cost out of CAC; here it comes from the ledger so CAC and ROI see it."),
    Metric("other_cost_fen", "其他成本", "Other costs", "fen", "costs",
           "operator-entered costs (media, staff, tools, other; `liebian costs`, `/api/v1/costs`), each spread evenly "
           "over its days and counted for its days inside P; a campaign filter takes that campaign's costs, no filter "
           "also the brand-wide ones; or the cost given (`--other-cost`)", "cost inputs", filters=F_REWARDS),
    Metric("total_cost_fen", "总成本", "Total cost", "fen", "costs", "reward_cost_fen + other_cost_fen", "cost inputs",
           filters=F_REWARDS),
    Metric("cac_fen", "获客成本", "CAC", "fen", "costs", "total_cost_fen / new_users; n/a without costs", "new users",
           filters=F_NEW),
    Metric("ltv_fen", "LTV（已观测）", "LTV (observed)", "fen", "costs",
           "new_user_revenue_fen / new_users: all paid orders, any channel, to date, of the period's new users",
           "new users", time=T_COHORT, filters=F_NEW, numerator="new_user_revenue_fen", denominator="new_users"),
    Metric("ltv_cac", "LTV/CAC", "LTV/CAC", "ratio", "costs", "ltv_fen / cac_fen", "new users", filters=F_NEW,
           numerator="ltv_fen", denominator="cac_fen"),
    Metric("roi", "ROI", "ROI", "ratio", "costs",
           "(revenue_fen − total_cost_fen) / total_cost_fen; n/a without costs", "the period's revenue and costs",
           filters=F_ORDERS,
           differs="A return per fen spent, shown as a number (it is not a probability and can exceed 1)."),
)


def retention_metrics(n: int) -> tuple[Metric, Metric]:
    """Day-N retention of the period's new users and its base (any N of `MetricConfig.retention_days`)."""
    zh = "次日留存" if n == 1 else f"{n} 日留存"
    base = Metric(f"retention_d{n}_base", f"{zh}基数", f"D{n} retention base", "count", "retention",
              f"new users whose day {n} is not after the last day with data", "new users", time=T_COHORT,
              filters=F_NEW, source=f"d{n}_base")  # fmt: skip
    rate = Metric(f"retention_d{n}", zh, f"D{n} retention", "probability", "retention",
              f"retention_d{n}_back / retention_d{n}_base: of the base, the share with an active event "
              f"(any channel or campaign) on exactly day {n} after their first day",
              "new users", time=T_COHORT, filters=F_NEW, numerator=f"d{n}_back", denominator=f"d{n}_base",
              differs="PostHog's retention follows everyone whose first event falls in the period; here only new "
              "users (first registration), so returning members do not drag D1 down (23.1 % → the plans' 32–41 %).")  # fmt: skip
    return rate, base


_ACTIVITY = (
    Metric("dau_avg_30d", "日均活跃（30 天）", "Average DAU (30 days)", "ratio", "retention",
           "person_days_30 / 30: person-days with an active event in E over the 30 days ending at `end` (or the last "
           "data day)", "active persons", time="the 30 days ending at the period end"),
    Metric("mau", "月活跃", "MAU", "count", "retention", "distinct persons active in those 30 days", "active persons",
           time="the 30 days ending at the period end"),
    Metric("dau_mau", "DAU/MAU", "DAU/MAU", "probability", "retention", "dau_avg_30d / mau", "active persons",
           time="the 30 days ending at the period end", numerator="dau_avg_30d", denominator="mau"),
    Metric("silent_users", "沉默用户", "Silent users", "count", "retention",
           "persons with an active event in E before P, none in the `silent_days` (30) before P's start",
           "persons seen before P", time="before P (needs `start`)"),
    Metric("reactivated_users", "唤醒用户", "Reactivated users", "count", "retention",
           "silent users with an active event in E_P", "silent users", time="before and in P (needs `start`)"),
    Metric("reactivation_rate", "沉默唤醒率", "Reactivation rate", "probability", "retention",
           "reactivated_users / silent_users", "silent users", time="before and in P (needs `start`)",
           numerator="reactivated_users", denominator="silent_users"),
)

# Changes against the previous period of the same length (the scorecard's indicators).
_CHANGES = (
    Metric("new_user_growth", "新增用户环比", "New-user growth", "ratio", "changes",
           "(new_users − previous new_users) / previous new_users", "new users", change_of="new_users",
           time="P against the previous period of the same length", filters=F_NEW, sheet=False),
    Metric("reach_growth", "触达人数环比", "Reach growth", "ratio", "changes",
           "(reached − previous reached) / previous reached", "the reached", change_of="reached",
           time="P against the previous period of the same length", sheet=False),
    Metric("aov_change", "客单价环比", "AOV change", "ratio", "changes", "(aov_fen − previous aov_fen) / previous aov_fen",
           "paid orders", change_of="aov_fen", filters=F_ORDERS,
           time="P against the previous period of the same length", sheet=False),
    Metric("repurchase_change", "复购率变化（百分点）", "Repurchase change (points)", "ratio", "changes",
           "repurchase_rate − previous repurchase_rate (percentage points as a fraction)", "buyers",
           change_of="repurchase_rate", change="points", filters=F_ORDERS,
           time="P against the previous period of the same length", sheet=False),
)

# The demo summary's whole-warehouse figures besides the sheet's (analytics/overview.py).
_SUMMARY = (
    Metric("persons", "用户数", "Persons", "count", "summary", "distinct persons with an event or an order",
           "everyone in the warehouse", time="all time", filters=F_NONE, sheet=False),
    Metric("events", "事件数", "Events", "count", "summary", "number of events", "every event", time="all time",
           filters=F_NONE, sheet=False, series=True),
    Metric("placed_orders", "下单数", "Orders placed", "count", "summary", "distinct orders not cancelled",
           "orders not cancelled", time="all time", filters=F_NONE, sheet=False),
    Metric("gmv_fen", "GMV", "GMV", "fen", "summary",
           "sum of the placed orders' amounts (refunded ones included: GMV is gross)", "orders not cancelled",
           time="all time", filters=F_NONE, sheet=False),
    Metric("refund_rate", "退款率", "Refund rate", "probability", "summary", "refunded orders / placed_orders",
           "orders not cancelled", time="all time", filters=F_NONE, sheet=False),
    Metric("ltv_multiplier", "LTV 倍数", "LTV multiplier", "ratio", "summary",
           "paid revenue per referred new user / per other new user, to date", "new users", time=T_COHORT,
           filters=F_NONE, sheet=False, differs="The plans' LTV multiplier; n/a when either group has no revenue."),
)

# fmt: on
DEFAULT_RETENTION_DAYS = (1, 7, 30)


def _build(retention_days: tuple[int, ...]) -> tuple[Metric, ...]:
    retention = tuple(m for n in retention_days for m in retention_metrics(n))
    return _REACH + _INVITES + _PURCHASE + _NEW_USERS + _COSTS + retention + _ACTIVITY + _CHANGES + _SUMMARY


METRICS: tuple[Metric, ...] = _build(DEFAULT_RETENTION_DAYS)
BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}

# The counts the formulas name that are not metrics themselves (kpis.kpi_counts computes them).
INPUT_COUNTS: dict[str, str] = {
    "new_user_revenue_fen": "all paid orders (any channel, to date) of the period's new users, fen",
    "dN_back": "new users of the day-N base active on exactly day N after their first day",
    "dN_base": "new users whose day N is not after the last day with data",
    "person_days_30": "person-days with an active event in the 30 days ending at the period end",
    "viral_cycle_seconds": "median seconds from an inviter's first event to an edge",
}

_RETENTION_KEY = re.compile(r"retention_d(\d+)(_base)?")


def metric(key: str) -> Metric:
    """The metric of `key` (retention_dN for any N); KeyError for a key that is not a metric."""
    if key in BY_KEY:
        return BY_KEY[key]
    found = _RETENTION_KEY.fullmatch(key)
    if found:
        rate, base = retention_metrics(int(found.group(1)))
        return base if found.group(2) else rate
    raise KeyError(key)


def is_metric(key: str) -> bool:
    return key in BY_KEY or _RETENTION_KEY.fullmatch(key) is not None


def sheet_metrics(retention_days: tuple[int, ...] = DEFAULT_RETENTION_DAYS) -> tuple[Metric, ...]:
    """The KPI sheet's metrics, in its order, for the configured retention days."""
    return tuple(m for m in _build(retention_days) if m.sheet)


def series_counts() -> tuple[str, ...]:
    """The counts `kpi_series` gives per day or hour (they add up over time)."""
    return tuple(m.key for m in METRICS if m.series and m.numerator is None)


def series_rates() -> dict[str, tuple[str, str]]:
    """Rate → (numerator, denominator) of the rates `kpi_series` gives per day or hour."""
    return {
        m.key: (m.numerator, m.denominator) for m in METRICS if m.series and m.numerator and m.denominator
    }


def describe(m: Metric) -> dict[str, Any]:
    """A metric's definition as plain data (the API's /metrics, `liebian analyze metrics`)."""
    return {
        "key": m.key, "name_zh": m.zh, "name_en": m.en, "unit": m.unit, "probability": m.probability,
        "section": m.section, "formula": m.formula, "numerator": m.numerator, "denominator": m.denominator,
        "population": m.population, "time": m.time, "filters": m.filters, "differs": m.differs or None,
        "in_kpi_sheet": m.sheet, "in_series": m.series,
    }  # fmt: skip


def section_metrics(section: str) -> tuple[Metric, ...]:
    return tuple(m for m in METRICS if m.section == section)


def display_kind(key: str) -> str:
    """The console's display kind of a metric's value (int, fen, float, pct)."""
    return metric(key).display


def labels(locale: str) -> dict[str, str]:
    """Metric key → its name in `locale`."""
    return {m.key: m.name(locale) for m in METRICS}


# A unit's kind for liebian.display (documents: reports, the demo summary's text)
DOCUMENT_KIND: dict[str, str] = {
    "count": "count",
    "fen": "fen",
    "ratio": "decimal",
    "probability": "pct",
    "days": "decimal",
}


def metric_kind(key: str) -> str:
    """How a document shows a metric's value (liebian.display kinds: count, fen, decimal, pct)."""
    return DOCUMENT_KIND[metric(key).unit]


def format_value(key: str, value: Any, lang: str = "zh-CN") -> str:
    """A metric's value as a document's table cell shows it, by its catalogue unit (liebian.display):
    probabilities as percentages, money in yuan, counts as whole numbers."""
    return display.cell(value, metric_kind(key), lang)

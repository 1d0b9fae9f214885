"""The KPI overview: the handful of numbers a growth team reads first (the demo prints them).

Ibis expressions over the warehouse tables, run on whichever backend `analytics_backend()` gives
(DuckDB or PySpark): only exact distinct counts, no ordered aggregates, and calendar days computed
as integer day numbers from `epoch_seconds` in the display zone, which both backends floor alike.

Definitions
- persons: distinct persons with an event or an order.
- orders: distinct orders not cancelled; GMV: their amounts (refunded ones included: GMV is gross);
  refund rate: refunded orders / orders; AOV: GMV / orders.
- reached, participants, participation, new persons (`new_users`), referred (`new_referred_users`),
  referral share, K-factor and D1 retention are the KPI sheet's (analytics/kpis.py, docs/metrics.md),
  computed by it: the demo summary, the CLI, the API and the console give the same numbers.
- LTV multiplier: paid (not refunded) revenue per referred new person / per other new person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from liebian.analytics.common import Frame, MetricConfig, analysable
from liebian.analytics.kpis import kpis, new_users, referred_new
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    ir = lazy_import("ibis.expr.types")


LABELS = {
    "persons": "用户数 persons",
    "events": "事件数 events",
    "orders": "订单数 orders",
    "gmv_yuan": "GMV ¥",
    "aov_yuan": "客单价 AOV ¥",
    "refund_rate": "退款率 refund rate",
    "reached": "触达 reached",
    "participants": "参与 participants",
    "participation": "参与率 participation",
    "new_persons": "新增 new persons",
    "referred_persons": "裂变新增 referred",
    "referral_share": "裂变占比 referral share",
    "k_factor": "K 因子 K-factor",
    "d1_retention": "次日留存 D1 retention",
    "ltv_multiplier": "LTV 倍数 LTV multiplier",
}
RATIOS = {"refund_rate", "participation", "referral_share", "d1_retention"}


def _ratio(num: float, den: float, digits: int = 4) -> float | None:
    return round(num / den, digits) if den else None


def _scalar(expr: ir.Scalar) -> int:
    value = expr.execute()
    return 0 if value is None or value != value else int(value)  # NaN/None from empty tables


def overview(backend: ibis.BaseBackend, tz: str | None = None) -> dict[str, Any]:
    """The KPI overview of everything in the warehouse (see the module docstring for definitions)."""
    events = analysable(backend.table("events"))
    orders = analysable(backend.table("orders"))
    out: dict[str, Any] = {}

    out["persons"] = _scalar(
        ibis.union(events.select("person_id"), orders.select("person_id"), distinct=True).count()
    )
    out["events"] = _scalar(events.count())

    placed = orders.filter(orders.status != "cancelled")
    per_order = placed.group_by("order_id").aggregate(
        amount=placed.amount_fen.max(),
        refunded=(placed.status == "refunded").cast("int64").max(),
    )
    money = per_order.aggregate(
        n=per_order.count(), gmv=per_order.amount.sum(), refunded=per_order.refunded.sum()
    )
    row = money.execute().iloc[0]
    n_orders = int(row["n"])
    gmv_fen = 0 if n_orders == 0 else int(row["gmv"])
    out["orders"] = n_orders
    out["gmv_yuan"] = round(gmv_fen / 100, 2)
    out["aov_yuan"] = round(gmv_fen / 100 / n_orders, 2) if n_orders else None
    out["refund_rate"] = _ratio(0 if n_orders == 0 else int(row["refunded"]), n_orders)

    # The growth metrics are the KPI sheet's (analytics/kpis.py), not a second definition.
    fr = Frame(backend, config=MetricConfig(timezone=tz or ""))
    sheet = kpis(fr)
    out["reached"] = sheet["reached"]
    out["participants"] = sheet["participants"]
    out["participation"] = sheet["participation_rate"]
    out["new_persons"] = sheet["new_users"]
    out["referred_persons"] = sheet["new_referred_users"]
    out["referral_share"] = sheet["referred_share_of_new"]
    out["k_factor"] = sheet["k_factor"]
    out["d1_retention"] = sheet["retention_d1"]

    new = new_users(fr).select("person_id")
    referred = referred_new(fr, new).select("person_id")
    paid = orders.filter(orders.status == "paid")
    revenue = paid.group_by("person_id").aggregate(revenue=paid.amount_fen.sum())
    flagged = new.left_join(referred.mutate(is_referred=ibis.literal(1)), "person_id").select(
        "person_id", is_referred=ibis.coalesce(ibis._.is_referred, 0)
    )
    with_rev = flagged.left_join(revenue, "person_id").select(
        "is_referred", revenue=ibis.coalesce(ibis._.revenue, 0)
    )
    ltv = (
        with_rev.group_by("is_referred")
        .aggregate(n=with_rev.count(), revenue=with_rev.revenue.sum())
        .execute()
    )
    per = {int(r.is_referred): (int(r.revenue) / int(r.n) if int(r.n) else 0.0) for r in ltv.itertuples()}
    out["ltv_multiplier"] = round(per[1] / per[0], 3) if per.get(0) and 1 in per else None
    return out


def overview_rows(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The overview as label/value rows for a table, ratios as percentages."""
    rows = []
    for key, label in LABELS.items():
        value = values.get(key)
        if value is None:
            shown = "—"
        elif key in RATIOS:
            shown = f"{value:.1%}"
        elif isinstance(value, float):
            shown = f"{value:,.2f}"
        else:
            shown = f"{value:,}"
        rows.append({"metric": label, "value": shown})
    return rows

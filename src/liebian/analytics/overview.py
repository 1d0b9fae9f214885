"""The KPI overview (the demo summary): the handful of numbers a growth team reads first.

Ibis expressions over the warehouse tables, run on whichever backend `analytics_backend()` gives
(DuckDB or PySpark). Every figure is a metric of the catalogue (analytics/catalogue.py) under its
key: the whole-warehouse ones (persons, events, placed_orders, gmv_fen, refund_rate,
ltv_multiplier) are computed here as the catalogue defines them; the growth metrics (reached,
participation, new users, K-factor, retention…) are the KPI sheet's, taken from `kpis.kpis`, so the
summary, the CLI, the API and the console give the same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from liebian.analytics import catalogue
from liebian.analytics.common import Frame, MetricConfig, analysable, ratio
from liebian.analytics.kpis import Costs, kpis, new_users, referred_new
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    ir = lazy_import("ibis.expr.types")


# The summary's metrics, in the order it prints them (names and units: the catalogue).
SUMMARY = ("persons", "events", "placed_orders", "gmv_fen", "aov_fen", "refund_rate")
FROM_SHEET = ("reached", "participants", "participation_rate", "new_users", "new_referred_users",
              "referred_share_of_new", "k_factor", "retention_d1", "aov_fen")  # fmt: skip
KEYS = (*SUMMARY, *(k for k in FROM_SHEET if k not in SUMMARY), "ltv_multiplier")


def _scalar(expr: ir.Scalar) -> int:
    value = expr.execute()
    return 0 if value is None or value != value else int(value)  # NaN/None from empty tables


def overview(backend: ibis.BaseBackend, tz: str | None = None, costs: Costs | None = None) -> dict[str, Any]:
    """The summary's metrics (`KEYS`) of everything in the warehouse, as the catalogue defines them;
    `costs` are the KPI sheet's (the reward ledger's, from the caller), so its cost metrics agree."""
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
    out["placed_orders"] = n_orders
    out["gmv_fen"] = 0 if n_orders == 0 else int(row["gmv"])
    out["refund_rate"] = ratio(0 if n_orders == 0 else int(row["refunded"]), n_orders)

    # The growth metrics are the KPI sheet's (analytics/kpis.py), not a second definition.
    fr = Frame(backend, config=MetricConfig(timezone=tz or ""))
    sheet = kpis(fr, costs)
    out.update({key: sheet[key] for key in FROM_SHEET})
    out["ltv_multiplier"] = _ltv_multiplier(fr, orders)
    return {key: out[key] for key in KEYS}


def _ltv_multiplier(fr: Frame, orders: ir.Table) -> float | None:
    """Paid revenue per referred new user / per other new user, to date (the catalogue's formula)."""
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
    return per[1] / per[0] if per.get(0) and 1 in per else None


def overview_rows(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The overview as label/value rows for a table: the catalogue's names (zh and en) and units."""
    return [
        {"metric": catalogue.metric(key).label, "value": catalogue.format_value(key, values.get(key))}
        for key in KEYS
        if key in values
    ]

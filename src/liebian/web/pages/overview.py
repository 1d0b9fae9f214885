"""The north-star overview: the one number, the KPI cards, daily trends with anomaly markers, and the
drill-down by channel and by day (clicking a day or a channel narrows every page to it)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from liebian.analytics.catalogue import display_kind
from liebian.db.session import session_scope
from liebian.lazy import lazy_import
from liebian.monitor import detector
from liebian.monitor.anomalies import calendar_for
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    cached,
    cached_analytics,
    filter_options,
    first_page_for,
    render,
)
from liebian.web.i18n import LOCALES, locale_of, translator

if TYPE_CHECKING:
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    pd = lazy_import("pandas")

router = APIRouter(include_in_schema=False)

# The cards after the north-star metric: (metric, display kind), names and units from the catalogue
CARD_METRICS = ("k_factor", "participation_rate", "participants", "referred_users", "invite_conversion",
                "conversion_rate", "revenue_fen", "retention_d1", "retention_d7", "ltv_cac", "roi", "new_users")  # fmt: skip
CARDS = [(key, display_kind(key)) for key in CARD_METRICS]
TREND_LINES = ("new_users", "new_referred_users", "participants", "active_users")
BY_CHANNEL = ("invites_sent", "k_factor", "conversion_rate", "aov_fen", "retention_d7")


def _anomaly_marks(trend: list[dict], metric: str) -> list[dict]:
    """Points the monitor's detector flags on this series (calendar effects are not marked)."""

    if len(trend) < 15:
        return []
    series = pd.Series(
        [float(r[metric]) for r in trend], index=pd.DatetimeIndex([r["start"] for r in trend]), name=metric
    )
    years = sorted({d.year for d in series.index})
    with session_scope() as s:
        calendar = calendar_for(s, years)
    try:
        found = detector.detect(series, period=7, calendar=calendar)
    except detector.DetectorError:
        return []
    return [
        {"day": a.ts.date().isoformat(), "observed": a.observed, "expected": round(a.expected, 1)}
        for a in found
        if a.alert
    ]


def _trend_chart(t, trend: list[dict], filters: ConsoleFilters) -> tuple[Chart, list[dict]]:
    days = [r["start"] for r in trend]
    series, anomalies = [], []
    for metric in TREND_LINES:
        marks = _anomaly_marks(trend, metric)
        anomalies += [m | {"metric": metric} for m in marks]
        series.append(
            {
                "name": t(f"kpi.{metric}"),
                "type": "line",
                "showSymbol": False,
                "data": [r[metric] for r in trend],
                "markPoint": {
                    "symbol": "pin",
                    "itemStyle": {"color": "#b3102a"},
                    "data": [{"coord": [m["day"], m["observed"]], "value": "!"} for m in marks],
                },
            }
        )
    revenue = {
        "name": t("kpi.revenue_fen"),
        "type": "bar",
        "yAxisIndex": 1,
        "itemStyle": {"color": "#d0d7de"},
        "data": [round(r["revenue_fen"] / 100, 2) for r in trend],
    }
    links = [f"/{filters.query(start=d, end=d)}" for d in days]
    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 50, "right": 60, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": days},
        "yAxis": [{"type": "value"}, {"type": "value", "name": "¥", "splitLine": {"show": False}}],
        "series": [revenue, *series],
        # a click on a day narrows the console to that day (console.js follows these)
        "liebianLinks": [links] * (len(series) + 1),
    }
    return Chart("trend", option, "overview.trend", height=340), anomalies


def _compute(t, af, filters: ConsoleFilters):
    """Everything the overview computes (kept by `cached` while the warehouse is unchanged)."""
    analyses = _analyses(af)
    if analyses is None:
        return None
    kpis, trend, by_channel, period = analyses
    chart, anomalies = _trend_chart(t, trend, filters)
    return kpis, trend, chart, anomalies, by_channel, period


def _analyses(af):
    """The overview's analyses (shared through the cache with other pages and the warmer)."""

    span = cached_analytics("run_data_span", af)
    if span is None:
        return None
    # The trend covers the chosen period, or all the data when none is chosen.
    period = replace(af, start=af.start or span[0], end=af.end or span[1])
    trend = cached_analytics("run_kpi_series", period, "day")
    return cached_analytics("run_kpis", af), trend, cached_analytics("run_channels", af), period


def _overview_data(filters: ConsoleFilters, af, locale: str):
    """`_compute` through the console's cache, per locale (the trend chart carries translated names)."""

    return cached(("overview", filters, af, locale), lambda: _compute(translator(locale), af, filters))


def warm_default_view() -> None:
    filters = ConsoleFilters()
    for locale in LOCALES:
        _overview_data(filters, filters.to_analytics(), locale)


@router.get("/")
def overview(request: Request) -> Response:

    landing = first_page_for(request)
    if landing != "/":  # a role without analytics (e.g. a reviewer) lands on its first page
        return RedirectResponse(landing, status_code=303)
    t = translator(locale_of(request))
    filters = ConsoleFilters.from_request(request)
    context: dict = {"filters": filters, "options": filter_options(), "error": None, "has_data": False}
    try:
        af = filters.to_analytics()
    except FilterError as exc:
        return render(request, "overview.html", context | {"error": str(exc)}, status_code=422)
    data = _overview_data(filters, af, locale_of(request))
    if data is None:
        return render(request, "overview.html", context)
    kpis, trend, chart, anomalies, by_channel, period = data
    channels = Table(
        "by_channel",
        [Column("channel", "filters.channel", codes="channel")]
        + [Column(m, f"kpi.{m}", display_kind(m)) for m in BY_CHANNEL],
        by_channel,
        title="overview.by_channel",
        link=lambda row: "/" + filters.query(channel=row["channel"]),
        link_column="channel",
    )
    daily = Table(
        "daily",
        [Column("start", "overview.day", "date")]
        + [Column(m, f"kpi.{m}", display_kind(m)) for m in (*TREND_LINES, "revenue_fen")],
        list(reversed(trend)),
        title="overview.daily",
        link=lambda row: "/" + filters.query(start=row["start"], end=row["start"]),
        link_column="start",
    )  # fmt: skip
    alert_table = Table(
        "anomalies",
        [
            Column("day", "overview.day", "date"),
            Column("metric", "alerts.metric"),
            Column("observed", "alerts.observed", "float"),
            Column("expected", "alerts.expected", "float"),
        ],
        [a | {"metric": t(f"kpi.{a['metric']}")} for a in anomalies],
        title="overview.anomalies",
    )
    context |= {
        "has_data": True,
        "kpis": kpis,
        "cards": CARDS,
        "charts": [chart],
        "tables": [channels, alert_table, daily],
        "period": (period.start.isoformat(), period.end.isoformat()),
    }
    return render(request, "overview.html", context, tables=[channels, daily, alert_table])

"""Analytics service: parse filters, open the configured engine, run an analysis, return plain data.

Other domains (reports, monitor, console) call these functions; the CLI and the HTTP API are thin
layers over them. Every `run_*` opens the backend for the one unit of work (DuckDB allows one
writer per file) and returns JSON-ready dicts/lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from liebian import ports
from liebian.analytics import benchmarks as bench
from liebian.analytics import channels as channels_mod
from liebian.analytics import cohorts as cohorts_mod
from liebian.analytics import funnel as funnel_mod
from liebian.analytics import insights_funnel as funnel_modes
from liebian.analytics import kpis as kpis_mod
from liebian.analytics import referral_tree as tree_mod
from liebian.analytics import scorecard as score_mod
from liebian.analytics.common import AnalyticsError, Filters, Frame, MetricConfig, records
from liebian.analytics.kpis import Costs
from liebian.engine.backend import analytics_backend


def parse_date(value: str | date | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise AnalyticsError(f"{field}: {value!r} is not a date (YYYY-MM-DD)") from exc


def parse_ids(values: Iterable[Any], field: str = "segment") -> frozenset[int]:
    ids = set()
    for i, raw in enumerate(values, 1):
        text = str(raw).strip()
        if not text:
            continue
        try:
            ids.add(int(text))
        except ValueError as exc:
            raise AnalyticsError(f"{field}: item {i} ({text!r}) is not a person id") from exc
    return frozenset(ids)


def read_segment_file(path: Path) -> frozenset[int]:
    """One person id per line (a header line `person_id` is allowed)."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise AnalyticsError(f"segment file {path}: {exc}") from exc
    if lines and lines[0].strip().lower() == "person_id":
        lines = lines[1:]
    return parse_ids((line.split(",")[0] for line in lines), field=f"segment file {path} line")


def make_filters(
    start: str | date | None = None,
    end: str | date | None = None,
    channels: Sequence[str] = (),
    campaigns: Sequence[str] = (),
    segment: Iterable[Any] | None = None,
) -> Filters:
    return Filters(
        start=parse_date(start, "start"),
        end=parse_date(end, "end"),
        channels=tuple(c for c in channels if c),
        campaigns=tuple(c for c in campaigns if c),
        segment=None if segment is None else parse_ids(segment),
    )


@contextmanager
def frame(
    filters: Filters | None = None, engine: str | None = None, config: MetricConfig | None = None
) -> Iterator[Frame]:
    with analytics_backend(engine) as backend:
        yield Frame(backend, filters or Filters(), config)


def costs_for(
    filters: Filters, reward_cost_fen: int | None = None, other_cost_fen: int | None = None
) -> Costs:
    """The costs of the KPI sheet: each cost given, else the wired provider's — the reward ledger's
    issued rewards the filters select (`rewards.costs.reward_cost_fen`) and the operator-entered
    other costs pro-rated to the period (`costs.service.other_cost_fen`)."""
    wiring = ports.current()
    if reward_cost_fen is None:
        if wiring.reward_cost is None:
            raise ports.NotWired("no reward-cost provider is wired: the KPI costs would silently be 0")
        reward_cost_fen = wiring.reward_cost(filters)
    if other_cost_fen is None:
        if wiring.other_cost is None:
            raise ports.NotWired("no other-cost provider is wired: the KPI costs would silently be 0")
        other_cost_fen = wiring.other_cost(filters)
    if reward_cost_fen < 0 or other_cost_fen < 0:
        raise AnalyticsError("costs must not be negative")
    return Costs(reward_cost_fen=reward_cost_fen, other_cost_fen=other_cost_fen)


def run_kpis(
    filters: Filters,
    engine: str | None = None,
    reward_cost_fen: int | None = None,
    other_cost_fen: int | None = None,
) -> dict[str, Any]:
    costs = costs_for(filters, reward_cost_fen, other_cost_fen)
    with frame(filters, engine) as fr:
        return kpis_mod.kpis(fr, costs)


def run_kpi_series(filters: Filters, grain: str = "day", engine: str | None = None) -> list[dict[str, Any]]:
    """The KPI counts and rates per local day or hour of [start, end] (kpis.kpi_series)."""
    with frame(filters, engine) as fr:
        return kpis_mod.kpi_series(fr, grain)


def run_kpi_series_by_channel(
    filters: Filters, grain: str = "day", engine: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """`run_kpi_series` for each channel seen in the period (the filters' channels, if given)."""
    with frame(filters, engine) as fr:
        names = list(filters.channels) or channels_mod.channel_names(fr)
        return {
            name: kpis_mod.kpi_series(Frame(fr.backend, replace(filters, channels=(name,)), fr.config), grain)
            for name in names
        }


def run_funnel(
    filters: Filters,
    steps: str | Sequence[str] | None = None,
    window_days: float = 14,
    breakdown: str | None = None,
    segments: dict[str, Sequence[int]] | None = None,
    engine: str | None = None,
    mode: str = "ordered",
    exclusions: Sequence[funnel_modes.Exclusion] = (),
) -> dict[str, Any]:
    """The funnel; `mode` and `exclusions` as analytics/insights_funnel.py describes."""
    parsed = funnel_mod.parse_steps(steps)
    build = funnel_modes.builder(parsed, mode, tuple(exclusions))
    with frame(filters, engine) as fr:
        result = funnel_mod.funnel(fr, parsed, timedelta(days=window_days), breakdown, segments, build=build)
    return {
        "filters": filters.describe(),
        "window_days": result.window_days,
        "breakdown": breakdown,
        "median_seconds_to_convert": result.median_seconds_to_convert,
        "steps": result.rows(),
    }


def run_dropped(
    filters: Filters,
    at_step: int,
    steps: str | Sequence[str] | None = None,
    window_days: float = 14,
    engine: str | None = None,
    mode: str = "ordered",
    exclusions: Sequence[funnel_modes.Exclusion] = (),
) -> list[dict[str, Any]]:
    parsed = funnel_mod.parse_steps(steps)
    build = funnel_modes.builder(parsed, mode, tuple(exclusions))
    with frame(filters, engine) as fr:
        return records(funnel_mod.dropped_persons(fr, at_step, parsed, timedelta(days=window_days), build))


def run_retention(
    filters: Filters, unit: str = "week", cohort_by: str = "first_event", periods: int = 12, cohorts: int = 12,
    engine: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    with frame(filters, engine) as fr:
        result = cohorts_mod.retention(fr, unit, cohort_by, periods, cohorts)
    return {"unit": unit, "cohort_by": cohort_by, "matrix": result.matrix("rate"), "cells": result.rows()}


def run_revenue(
    filters: Filters, unit: str = "month", cohort_by: str = "first_event", periods: int = 12, cohorts: int = 12,
    engine: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    with frame(filters, engine) as fr:
        result = cohorts_mod.revenue(fr, unit, cohort_by, periods, cohorts)
    return {
        "unit": unit,
        "cohort_by": cohort_by,
        "ltv_curves": result.matrix("ltv_fen"),
        "cells": result.rows(),
    }


def run_referral_tree(
    filters: Filters, top: int = 20, max_graph_nodes: int = 500, engine: str | None = None
) -> dict[str, Any]:
    provider = ports.current().flagged_persons if ports.is_wired() else None
    flagged = provider() if provider else frozenset()
    with frame(filters, engine) as fr:
        return asdict(tree_mod.referral_tree(fr, top, max_graph_nodes, flagged))


def run_data_span(filters: Filters, engine: str | None = None) -> tuple[date, date] | None:
    """First and last local day with events under the filters' channel/campaign/segment (any date)."""
    with frame(filters, engine) as fr:
        t = fr.events(period=False)
        row = fr.execute(t.aggregate(first=fr.day_of(t.ts.min()), last=fr.day_of(t.ts.max()))).iloc[0]
    if row["first"] is None or row["first"] != row["first"]:
        return None
    return fr.day_date(int(row["first"])), fr.day_date(int(row["last"]))


def run_channels(filters: Filters, engine: str | None = None) -> list[dict[str, Any]]:
    with frame(filters, engine) as fr:
        return channels_mod.channel_radar(fr, costs=costs_for(filters))


def run_scorecard(
    filters: Filters,
    stage: str = "mature",
    weights: dict[str, float] | None = None,
    engine: str | None = None,
) -> dict[str, Any]:
    with frame(filters, engine) as fr:
        return score_mod.scorecard(fr, stage, weights, costs_for(filters))


def run_benchmarks(
    filters: Filters, sector: str, reference: dict[str, Any] | None = None, engine: str | None = None
) -> dict[str, Any]:
    if reference is not None:
        reference = bench.validate_reference(reference)
    table = reference or bench.DEFAULT_REFERENCE
    if sector not in table:  # fail before the query
        raise AnalyticsError(f"sector must be one of {', '.join(sorted(table))}; got {sector!r}")
    with frame(filters, engine) as fr:
        kpi = kpis_mod.kpis(fr)
    return {"sector": sector, "filters": filters.describe(), "comparison": bench.compare(kpi, sector, table)}


ANALYSES = (
    "kpis",
    "funnel",
    "dropped",
    "retention",
    "revenue",
    "referral-tree",
    "channels",
    "scorecard",
    "benchmarks",
)

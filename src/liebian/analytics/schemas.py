"""Response shapes of the analytics API. Analyses return per-query columns (breakdowns, cohorts,
steps): the models declare what every answer has and pass the rest through (see liebian.shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from liebian.shapes import Open

Rows = list[dict[str, Any]]


class AppliedFilters(BaseModel):
    start: str | None
    end: str | None
    channels: list[str]
    campaigns: list[str]
    segment_size: int | None


class Kpis(Open):
    """The KPI sheet: the value of each of its metrics (definitions: /api/v1/analytics/metrics), with
    the filters applied."""


class MetricDefinition(BaseModel):
    """One metric of the catalogue (analytics/catalogue.py)."""

    key: str
    name_zh: str
    name_en: str
    unit: str
    probability: bool
    section: str
    formula: str
    numerator: str | None
    denominator: str | None
    population: str
    time: str
    filters: str
    differs: str | None
    in_kpi_sheet: bool
    in_series: bool


class Funnel(Open):
    """Steps with their counts and conversion, overall and per breakdown value."""

    filters: AppliedFilters
    window_days: float
    breakdown: str | None
    median_seconds_to_convert: Any
    steps: Rows


class Dropped(Open):
    """A person who reached the step before `at_step` and not `at_step`."""


class Retention(Open):
    """Cohorts by period with their retained counts and rates (`matrix`: one row per cohort)."""

    unit: str
    cohort_by: str
    matrix: Rows
    cells: Rows


class Revenue(Open):
    """Cohorts by period with their cumulative revenue per person (fen)."""

    unit: str
    cohort_by: str
    ltv_curves: Rows
    cells: Rows


class ReferralTree(Open):
    """The referral forest: generations, depth and breadth, top spreaders, a bounded graph."""

    generations: Rows
    depth_distribution: Rows
    breadth_distribution: Rows
    top_spreaders: Rows
    graph: dict[str, Any]
    summary: dict[str, Any]


class Channel(Open):
    """One channel's radar scores and raw measures."""


class Scorecard(Open):
    """The weighted score of the stage and its parts."""


class Benchmarks(Open):
    """The brand's metrics against the sector's reference values."""

    sector: str
    filters: AppliedFilters
    comparison: Any

"""Response shapes of the analytics API. Analyses return per-query columns (breakdowns, cohorts,
steps): the models declare what every answer has and pass the rest through (see liebian.shapes)."""

from __future__ import annotations

from liebian.shapes import Open


class Kpis(Open):
    """The KPI sheet: each metric's value, inputs and definition, with the filters applied."""


class Funnel(Open):
    """Steps with their counts and conversion, overall and per breakdown value."""


class Dropped(Open):
    """A person who reached the step before `at_step` and not `at_step`."""


class Retention(Open):
    """Cohorts by period with their retained counts and rates."""


class Revenue(Open):
    """Cohorts by period with their revenue (fen) and per-person revenue."""


class ReferralTree(Open):
    """The referral forest's summary, the top inviters and a graph limited to `max_graph_nodes`."""


class Channel(Open):
    """One channel's radar scores and raw measures."""


class Scorecard(Open):
    """The weighted score of the stage and its parts."""


class Benchmarks(Open):
    """The brand's metrics against the sector's reference values."""

"""Composite scorecard (综合效益评估): 4 first-level indicators, 15 second-level ones, a 1–10 score.

Each second-level indicator belongs to a first-level one (user growth, brand voice, AOV lift,
repurchase change) and to a dimension (scale, activity, conversion). The business stage sets the
dimension weights (default "mature": scale 20 / activity 30 / conversion 50, the plan's example);
a dimension's weight is split evenly over its indicators. An indicator scores 1 at or below its
`low` reference and 10 at or above its `high` one, linearly between. Indicators without data are
left out and the other weights renormalised. Changes compare with the previous period of the same
length. References and weights are configurable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from liebian.analytics import catalogue
from liebian.analytics.common import AnalyticsError, Frame
from liebian.analytics.kpis import Costs, kpis

FIRST_LEVEL = {
    "user_growth": "用户增长 user growth",
    "brand_voice": "品牌声量 brand voice",
    "aov_lift": "客单价提升 AOV lift",
    "repurchase_change": "复购变化 repurchase change",
}

STAGES: dict[str, dict[str, float]] = {
    "launch": {"scale": 50, "activity": 30, "conversion": 20},
    "growth": {"scale": 30, "activity": 40, "conversion": 30},
    "mature": {"scale": 20, "activity": 30, "conversion": 50},
}


@dataclass(frozen=True)
class Indicator:
    """A scorecard indicator: a catalogue metric (its name and formula are the catalogue's), where it
    belongs and its scoring references."""

    key: str
    parent: str
    dimension: str
    low: float
    high: float

    @property
    def label(self) -> str:
        return catalogue.metric(self.key).label


INDICATORS: tuple[Indicator, ...] = (
    Indicator("new_user_growth", "user_growth", "scale", -0.2, 0.5),
    Indicator("referred_share_of_new", "user_growth", "scale", 0.05, 0.5),
    Indicator("k_factor", "user_growth", "scale", 0.05, 1.0),
    Indicator("referral_rate", "user_growth", "scale", 0.01, 0.2),
    Indicator("reach_growth", "brand_voice", "scale", -0.2, 0.5),
    Indicator("shares_per_active", "brand_voice", "activity", 0.05, 1.0),
    Indicator("participation_rate", "brand_voice", "activity", 0.05, 0.3),
    Indicator("invites_per_participant", "brand_voice", "activity", 0.5, 3.0),
    Indicator("retention_d7", "brand_voice", "activity", 0.05, 0.4),
    Indicator("dau_mau", "brand_voice", "activity", 0.05, 0.3),
    Indicator("aov_change", "aov_lift", "conversion", -0.1, 0.2),
    Indicator("conversion_rate", "aov_lift", "conversion", 0.01, 0.15),
    Indicator("invite_conversion", "aov_lift", "conversion", 0.05, 0.4),
    Indicator("repurchase_rate", "repurchase_change", "conversion", 0.05, 0.35),
    Indicator("repurchase_change", "repurchase_change", "conversion", -0.05, 0.05),
)


def change(m: catalogue.Metric, now: dict[str, Any], before: dict[str, Any]) -> float | None:
    """A change metric of the catalogue: relative ((now − before) / before) or in points (now − before)."""
    assert m.change_of is not None
    a, b = now.get(m.change_of), before.get(m.change_of)
    if a is None or b is None:
        return None
    if m.change == "points":
        return float(a - b)
    return None if b == 0 else (a - b) / b


def indicator_values(
    now: dict[str, Any], before: dict[str, Any], indicators: tuple[Indicator, ...] = INDICATORS
) -> dict[str, float | None]:
    """Each indicator's value: the sheet's metric, or the catalogue's change against the period before."""
    out: dict[str, float | None] = {}
    for ind in indicators:
        m = catalogue.metric(ind.key)
        out[ind.key] = change(m, now, before) if m.change_of else now[ind.key]
    return out


def score_value(value: float, low: float, high: float) -> float:
    """1 at `low`, 10 at `high`, linear between, clamped."""
    share = (value - low) / (high - low)
    return 1 + 9 * min(1.0, max(0.0, share))


def score(
    values: dict[str, float | None],
    stage: str = "mature",
    weights: dict[str, float] | None = None,
    indicators: tuple[Indicator, ...] = INDICATORS,
) -> dict[str, Any]:
    """Pure scoring: indicator values → weighted 1–10 score with each indicator's contribution."""
    if weights is None:
        if stage not in STAGES:
            raise AnalyticsError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
        weights = STAGES[stage]
    dims = {i.dimension for i in indicators}
    if set(weights) != dims or any(w < 0 for w in weights.values()) or not sum(weights.values()):
        raise AnalyticsError(f"weights need a non-negative weight for each of {', '.join(sorted(dims))}")
    total_w = sum(weights.values())
    per_dim = {d: sum(1 for i in indicators if i.dimension == d) for d in dims}
    rows: list[dict[str, Any]] = []
    for ind in indicators:
        weight = weights[ind.dimension] / total_w / per_dim[ind.dimension]
        v = values.get(ind.key)
        s = None if v is None else score_value(v, ind.low, ind.high)
        rows.append({"key": ind.key, "label": ind.label, "parent": ind.parent, "dimension": ind.dimension,
                     "value": v, "score": s, "weight": weight})  # fmt: skip
    used = sum(r["weight"] for r in rows if r["score"] is not None)
    for r in rows:
        r["contribution"] = None if r["score"] is None or not used else r["score"] * r["weight"] / used
    total = sum(r["contribution"] for r in rows if r["contribution"] is not None) if used else None
    first = []
    for key, name in FIRST_LEVEL.items():
        kids = [r for r in rows if r["parent"] == key and r["score"] is not None]
        w = sum(r["weight"] for r in kids)
        first.append(
            {
                "key": key,
                "label": name,
                "score": sum(r["score"] * r["weight"] for r in kids) / w if w else None,
                "contribution": sum(r["contribution"] for r in kids) if kids else None,
            }
        )
    return {"stage": stage if weights is STAGES.get(stage) else "custom", "weights": dict(weights),
            "score": total, "first_level": first, "indicators": rows}  # fmt: skip


def scorecard(
    fr: Frame, stage: str = "mature", weights: dict[str, float] | None = None, costs: Costs | None = None
) -> dict[str, Any]:
    f = fr.filters
    if not (f.start and f.end):
        raise AnalyticsError("the scorecard compares with the previous period: give start and end")
    length = (f.end - f.start).days + 1
    prev_start, prev_end = f.start - timedelta(days=length), f.start - timedelta(days=1)
    prev = replace(f, start=prev_start, end=prev_end)
    now = kpis(fr, costs)
    before = kpis(Frame(fr.backend, prev, fr.config), costs)
    out = score(indicator_values(now, before), stage, weights)
    out["period"] = f.describe()
    out["kpis"] = now  # the period's KPI sheet the values came from (e.g. for a benchmark comparison)
    out["previous_period"] = {"start": prev_start.isoformat(), "end": prev_end.isoformat()}
    return out

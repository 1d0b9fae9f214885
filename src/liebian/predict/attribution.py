"""Multi-touch attribution over touchpoint paths: rule-based models and the Markov removal effect.

A path is the ordered touchpoints (channel or campaign) of one person before a conversion (or
before the end of data for non-converters). Credits per conversion sum to 1 in every model, and
revenue is split with the same weights.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import
from liebian.predict.common import PredictError

if TYPE_CHECKING:
    import numpy as np
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")

START, CONV, NULL = "(start)", "(conversion)", "(null)"
MODELS = ("first", "last", "linear", "time_decay", "position", "markov")


@dataclass
class Path:
    touches: Sequence[str]
    converted: bool
    revenue: float = 0.0
    # hours before the conversion (or the path end) of each touch, for time decay
    ages_hours: Sequence[float] = field(default_factory=list)


def _weights(
    model: str, n: int, ages: Sequence[float], half_life_hours: float, position_ends: float
) -> np.ndarray:
    if model == "first":
        w = np.zeros(n)
        w[0] = 1
    elif model == "last":
        w = np.zeros(n)
        w[-1] = 1
    elif model == "linear":
        w = np.full(n, 1 / n)
    elif model == "time_decay":
        if len(ages) != n:
            raise PredictError("time_decay: every touch needs its age (ages_hours)")
        w = 0.5 ** (np.asarray(ages, float) / half_life_hours)
        w = w / w.sum()
    elif model == "position":
        if n == 1:
            w = np.ones(1)
        elif n == 2:
            w = np.full(2, 0.5)
        else:  # U-shaped: 40 % first, 40 % last, the rest spread over the middle
            w = np.full(n, (1 - 2 * position_ends) / (n - 2))
            w[0] = w[-1] = position_ends
    else:
        raise PredictError(f"model: unknown {model!r}; known: {', '.join(MODELS)}")
    return w


def rule_based(
    paths: Sequence[Path], model: str, half_life_hours: float = 72.0, position_ends: float = 0.4
) -> dict[str, dict[str, float]]:
    """Conversions and revenue credited to each touchpoint by a rule-based model."""
    if half_life_hours <= 0:
        raise PredictError(f"half_life_hours: must be positive (got {half_life_hours})")
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"conversions": 0.0, "revenue": 0.0})
    for p in paths:
        if not p.converted or not p.touches:
            continue
        w = _weights(model, len(p.touches), p.ages_hours, half_life_hours, position_ends)
        for touch, wi in zip(p.touches, w, strict=True):
            out[touch]["conversions"] += float(wi)
            out[touch]["revenue"] += float(wi * p.revenue)
    return dict(out)


def _conversion_probability(paths: Sequence[Path], removed: str | None = None) -> float:
    """P(reaching conversion from start) in the first-order chain fitted on the paths.

    Removing a touchpoint sends every transition into it to (null), as in Anderl et al. (2016).
    """
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for p in paths:
        seq = [START, *p.touches, CONV if p.converted else NULL]
        for a, b in zip(seq, seq[1:], strict=False):
            counts[a][b] += 1
    states = sorted({s for s in counts} | {t for row in counts.values() for t in row} - {CONV, NULL})
    idx = {s: i for i, s in enumerate(states)}
    n = len(states)
    Q = np.zeros((n, n))  # transient → transient
    R = np.zeros(n)  # transient → conversion
    for a, row in counts.items():
        total = sum(row.values())
        if a == removed:
            continue  # a removed state converts nobody (its row stays zero → absorbed in null)
        for b, c in row.items():
            if b == CONV:
                R[idx[a]] += c / total
            elif b != NULL and b != removed:
                Q[idx[a], idx[b]] += c / total
    # absorption probabilities: x = Q x + R
    x = np.linalg.solve(np.eye(n) - Q, R)
    return float(x[idx[START]])


def markov(paths: Sequence[Path]) -> dict[str, dict[str, float]]:
    """Removal-effect attribution: credit ∝ 1 − P(conv without the touchpoint) / P(conv)."""
    converted = [p for p in paths if p.converted]
    if not converted:
        return {}
    base = _conversion_probability(paths)
    touches = sorted({t for p in paths for t in p.touches})
    removal = {t: 1 - _conversion_probability(paths, t) / base for t in touches}
    total_effect = sum(removal.values())
    n_conv = len(converted)
    revenue = sum(p.revenue for p in converted)
    return {
        t: {
            "removal_effect": removal[t],
            "conversions": n_conv * removal[t] / total_effect if total_effect else 0.0,
            "revenue": revenue * removal[t] / total_effect if total_effect else 0.0,
        }
        for t in touches
    }


def attribute(paths: Sequence[Path], half_life_hours: float = 72.0) -> list[dict]:
    """Every model side by side, one row per touchpoint."""
    results = {m: rule_based(paths, m, half_life_hours) for m in MODELS if m != "markov"}
    results["markov"] = markov(paths)
    touches = sorted({t for r in results.values() for t in r})
    rows = []
    for t in touches:
        row: dict[str, str | float] = {"touchpoint": t}
        for m, r in results.items():
            row[f"{m}_conversions"] = round(r.get(t, {}).get("conversions", 0.0), 6)
            row[f"{m}_revenue_fen"] = round(r.get(t, {}).get("revenue", 0.0), 2)
        row["removal_effect"] = round(results["markov"].get(t, {}).get("removal_effect", 0.0), 6)
        rows.append(row)
    return rows

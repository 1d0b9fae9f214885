"""A/B tests of mechanisms: deterministic assignment, readouts, SRM, power, and a fixed horizon.

Peeking guard: an experiment is planned with a minimum sample size per variant (from the power
calculation); a readout before every variant reaches it is reported as `status: "running"` with no
decision, so a result is never called early. (A fixed horizon, not a sequential test: simple to
explain to operators and exact for the z/t tests used.)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import
from liebian.predict.common import PredictError

if TYPE_CHECKING:
    import numpy as np
    import scipy.stats as stats
    import statsmodels.stats.power as sm_power
    import statsmodels.stats.proportion as sm_proportion
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")
    stats = lazy_import("scipy.stats")
    sm_power = lazy_import("statsmodels.stats.power")
    sm_proportion = lazy_import("statsmodels.stats.proportion")

SRM_ALPHA = 0.001  # the usual threshold for a sample-ratio mismatch alarm


def assign(
    experiment: str, unit_id: str, variants: Sequence[str], weights: Sequence[float] | None = None
) -> str:
    """The variant of one unit: sha256(experiment:unit) mapped into the cumulative weights.

    Deterministic (the same person always sees the same variant) and independent across experiments.
    """
    if len(variants) < 2:
        raise PredictError(f"variants: an experiment needs at least two (got {list(variants)})")
    weights = list(weights) if weights is not None else [1.0] * len(variants)
    if len(weights) != len(variants) or any(w <= 0 for w in weights):
        raise PredictError(f"weights: need one positive weight per variant (got {weights})")
    digest = hashlib.sha256(f"{experiment}:{unit_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edges = np.cumsum(weights) / sum(weights)
    return variants[int(np.searchsorted(edges, u, side="right"))]


def sample_size_proportions(baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per variant to detect an absolute lift `mde` over `baseline` (two-sided z-test)."""
    if not 0 < baseline < 1 or not 0 < baseline + mde < 1 or mde == 0:
        raise PredictError(
            f"baseline/mde: need 0 < baseline < 1 and 0 < baseline+mde < 1 (got {baseline}, {mde})"
        )
    es = sm_proportion.proportion_effectsize(baseline + mde, baseline)
    if not abs(es) > 1e-9:  # a lift this small rounds away: no sample size detects it
        raise PredictError(f"mde: {mde} is too small a lift to detect over {baseline}")
    n = sm_power.NormalIndPower().solve_power(effect_size=abs(es), alpha=alpha, power=power, ratio=1.0)
    if not math.isfinite(n):
        raise PredictError(f"alpha/power: no sample size reaches power {power} at alpha {alpha}")
    return math.ceil(n)


def sample_size_means(sd: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per variant to detect a difference `mde` in means with standard deviation `sd` (t-test)."""
    if sd <= 0 or mde == 0:
        raise PredictError(f"sd/mde: need sd > 0 and mde != 0 (got {sd}, {mde})")
    return math.ceil(
        sm_power.TTestIndPower().solve_power(effect_size=abs(mde) / sd, alpha=alpha, power=power, ratio=1.0)
    )


def srm_check(counts: Sequence[int], weights: Sequence[float] | None = None) -> dict:
    """Chi-square goodness of fit of the observed split against the planned weights."""
    observed = np.asarray(counts, float)
    planned = np.asarray(weights if weights is not None else [1.0] * len(observed), float)
    if planned.shape != observed.shape or not (np.isfinite(planned) & (planned > 0)).all():
        raise PredictError(f"weights: need one positive weight per variant, {len(observed)} in all")
    expected = observed.sum() * planned / planned.sum()
    chi2, p = stats.chisquare(observed, expected)
    return {"chi2": float(chi2), "p_value": float(p), "mismatch": bool(p < SRM_ALPHA)}


def readout(
    control: dict,
    treatment: dict,
    alpha: float = 0.05,
    planned_n: int | None = None,
    weights: Sequence[float] | None = None,
) -> dict:
    """Compare two variants.

    Each side: {"name", "units", "conversions"} and optionally "revenue" (a list of per-unit revenue,
    zeros included). Conversion: two-proportion z-test, chi-square and a Newcombe CI of the
    difference; revenue: Welch's t-test with its CI.
    """
    for side, label in ((control, "control"), (treatment, "treatment")):
        for key in ("units", "conversions"):
            if key not in side:
                raise PredictError(f"{label}.{key}: missing")
        if side["units"] <= 0 or not 0 <= side["conversions"] <= side["units"]:
            raise PredictError(
                f"{label}: need units > 0 and 0 <= conversions <= units (got {side['units']}, {side['conversions']})"
            )
    n = np.array([treatment["units"], control["units"]])
    x = np.array([treatment["conversions"], control["conversions"]])
    table = np.array([x, n - x])
    if (table.sum(axis=1) == 0).any():
        # nobody (or everybody) converted in both variants: nothing differs, and the tests'
        # variance is zero (scipy refuses, statsmodels returns NaN)
        z, p_z, chi2, p_chi2 = 0.0, 1.0, 0.0, 1.0
    else:
        z, p_z = sm_proportion.proportions_ztest(x, n)
        chi2, p_chi2, _, _ = stats.chi2_contingency(table, correction=False)
    lo, hi = sm_proportion.confint_proportions_2indep(x[0], n[0], x[1], n[1], method="newcomb", alpha=alpha)
    rates = x / n
    out = {
        "control": control.get("name", "control"),
        "treatment": treatment.get("name", "treatment"),
        "units": {"control": int(n[1]), "treatment": int(n[0])},
        "conversion_rate": {"control": float(rates[1]), "treatment": float(rates[0])},
        "diff": float(rates[0] - rates[1]),
        "diff_ci": [float(lo), float(hi)],
        "relative_lift": float(rates[0] / rates[1] - 1) if rates[1] else None,
        "z": float(z),
        "p_value_z": float(p_z),
        "chi2": float(chi2),
        "p_value_chi2": float(p_chi2),
        "srm": srm_check([n[1], n[0]], weights),
        "alpha": alpha,
    }
    if "revenue" in control and "revenue" in treatment:
        a, b = np.asarray(treatment["revenue"], float), np.asarray(control["revenue"], float)
        res = stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(confidence_level=1 - alpha)
        out["revenue"] = {
            "mean_control": float(b.mean()),
            "mean_treatment": float(a.mean()),
            "diff": float(a.mean() - b.mean()),
            "diff_ci": [float(ci.low), float(ci.high)],
            "t": float(res.statistic),
            "df": float(res.df),
            "p_value": float(res.pvalue),
        }
    reached = planned_n is None or min(n) >= planned_n
    out["planned_n_per_variant"] = planned_n
    out["status"] = "invalid" if out["srm"]["mismatch"] else "final" if reached else "running"
    out["decision"] = DECISIONS[verdict(out)].format(
        planned_n=planned_n, treatment=out["treatment"], control=out["control"]
    )
    return out


# A readout's conclusion by code (verdict), and its text as the API gives it; the console shows the
# code's message in its language.
DECISIONS = {
    "srm": "样本比例失衡 sample-ratio mismatch: fix assignment before reading",
    "wait": "未达样本量 wait until every variant has {planned_n} units",
    "treatment_wins": "{treatment} wins",
    "control_wins": "{control} wins",
    "no_difference": "no significant difference",
}


def verdict(out: dict) -> str:
    """The conclusion of a readout (new or stored) as a DECISIONS code, from its status and test."""
    if out["status"] == "invalid":
        return "srm"
    if out["status"] == "running":
        return "wait"
    if out["p_value_z"] < out["alpha"]:
        return "treatment_wins" if out["diff"] > 0 else "control_wins"
    return "no_difference"


def summarise_units(
    rows: Sequence[dict], variants: Sequence[str] | None = None, label: str = "row", start: int = 1
) -> dict[str, dict]:
    """Per-variant units, conversions and revenue from unit rows {unit_id, variant, converted, revenue_fen}.

    Bad rows are errors naming the row number (`label` `start`…, e.g. "line 2" after a CSV header)
    and the field; a unit listed twice is an error too.
    """
    seen: set[str] = set()
    out: dict[str, dict] = {}
    for i, row in enumerate(rows, start):
        unit = str(row.get("unit_id", "")).strip()
        variant = str(row.get("variant", "")).strip()
        if not unit:
            raise PredictError(f"{label} {i}: unit_id is empty")
        if not variant:
            raise PredictError(f"{label} {i}: variant is empty")
        if unit in seen:
            raise PredictError(f"{label} {i}: unit_id {unit!r} appears twice")
        seen.add(unit)
        conv_raw = str(row.get("converted", "")).strip().lower()
        if conv_raw not in ("0", "1", "true", "false"):
            raise PredictError(
                f"{label} {i}: converted must be 0/1/true/false (got {row.get('converted')!r})"
            )
        try:
            revenue = float(row.get("revenue_fen") or 0)
        except ValueError as exc:
            raise PredictError(
                f"{label} {i}: revenue_fen {row.get('revenue_fen')!r} is not a number"
            ) from exc
        side = out.setdefault(variant, {"name": variant, "units": 0, "conversions": 0, "revenue": []})
        side["units"] += 1
        side["conversions"] += conv_raw in ("1", "true")
        side["revenue"].append(revenue)
    if variants:
        missing = [v for v in variants if v not in out]
        if missing:
            raise PredictError(f"variant: no rows for {missing}; found {sorted(out)}")
    return out

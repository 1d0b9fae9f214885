"""Industry benchmarks (行业基准): reference values by sector and a comparison of five core indicators.

The default table is an orientation aid, NOT sourced statistics: its figures are placeholders in
the ranges the planning documents mention (participation around the 30 % inflection point, next-day
retention 32 %→41 %, LTV multipliers). Replace it with your own references (`reference` argument,
or a JSON file given to the CLI/API) before you judge a campaign by it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liebian.analytics.common import AnalyticsError

CORE = ("participation_rate", "conversion_rate", "k_factor", "retention_d7", "ltv_fen")

# sector → indicator → reference value (rates as fractions, LTV in fen)
DEFAULT_REFERENCE: dict[str, dict[str, float]] = {
    "food_service": {
        "participation_rate": 0.20,
        "conversion_rate": 0.08,
        "k_factor": 0.35,
        "retention_d7": 0.25,
        "ltv_fen": 15000,
    },
    "education": {
        "participation_rate": 0.15,
        "conversion_rate": 0.04,
        "k_factor": 0.30,
        "retention_d7": 0.30,
        "ltv_fen": 150000,
    },
    "ecommerce": {
        "participation_rate": 0.12,
        "conversion_rate": 0.05,
        "k_factor": 0.25,
        "retention_d7": 0.20,
        "ltv_fen": 30000,
    },
    "beauty": {
        "participation_rate": 0.18,
        "conversion_rate": 0.06,
        "k_factor": 0.40,
        "retention_d7": 0.22,
        "ltv_fen": 45000,
    },
    "fmcg": {
        "participation_rate": 0.15,
        "conversion_rate": 0.07,
        "k_factor": 0.30,
        "retention_d7": 0.18,
        "ltv_fen": 12000,
    },
    "maternal_baby": {
        "participation_rate": 0.22,
        "conversion_rate": 0.06,
        "k_factor": 0.45,
        "retention_d7": 0.32,
        "ltv_fen": 60000,
    },
}
SECTOR_NAMES = {
    "food_service": "餐饮 food service",
    "education": "教育 education",
    "ecommerce": "电商 e-commerce",
    "beauty": "美妆 beauty",
    "fmcg": "快消 FMCG",
    "maternal_baby": "母婴 maternal & baby",
}
TOLERANCE = 0.10  # within ±10 % of the reference counts as "on par"


def load_reference(path: Path) -> dict[str, dict[str, float]]:
    """A JSON file {sector: {indicator: value}}; every indicator must be one of CORE and numeric."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AnalyticsError(f"reference file {path}: {exc}") from exc
    return validate_reference(data)


def validate_reference(data: Any) -> dict[str, dict[str, float]]:
    if not isinstance(data, dict) or not data:
        raise AnalyticsError("reference: expected an object {sector: {indicator: value}}")
    for sector, values in data.items():
        if not isinstance(values, dict):
            raise AnalyticsError(f"reference.{sector}: expected an object of indicator values")
        for key, value in values.items():
            if key not in CORE:
                raise AnalyticsError(f"reference.{sector}.{key}: unknown indicator (use {', '.join(CORE)})")
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise AnalyticsError(
                    f"reference.{sector}.{key}: must be a non-negative number, got {value!r}"
                )
    return data


def compare(
    kpi: dict[str, Any], sector: str, reference: dict[str, dict[str, float]] | None = None
) -> list[dict[str, Any]]:
    """The five core indicators against the sector's references: ratio and above/on par/below."""
    reference = reference or DEFAULT_REFERENCE
    if sector not in reference:
        raise AnalyticsError(f"sector must be one of {', '.join(sorted(reference))}; got {sector!r}")
    rows = []
    for key in CORE:
        value, ref = kpi.get(key), reference[sector].get(key)
        rel = None if value is None or not ref else value / ref
        if rel is None:
            verdict = "n/a"
        elif rel > 1 + TOLERANCE:
            verdict = "above"
        elif rel < 1 - TOLERANCE:
            verdict = "below"
        else:
            verdict = "on par"
        rows.append({"indicator": key, "value": value, "reference": ref, "ratio": rel, "verdict": verdict})
    return rows

"""Anomaly detection on a metric series: STL (trend + weekly seasonality) and a robust 3σ rule.

1. Days of known calendar effects (618, 双11, 春节, campaign launches) are replaced by an
   interpolation before the fit, so a big sales day neither distorts the seasonal pattern nor raises
   an alert of its own; a deviation on such a day is reported as *explained*, not alerted.
2. `statsmodels.tsa.seasonal.STL(robust=True)` splits the series into trend + seasonal + residual;
   robust LOESS weights keep the anomalies themselves from bending the fit.
3. The residual scale is 1.4826 × MAD of the residuals of ordinary days (a standard-deviation
   estimate that a few outliers cannot inflate); a day whose residual exceeds `sensitivity` × that
   scale is an anomaly. `expected` = trend + seasonal, `observed` = the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from statsmodels.tsa.seasonal import STL

DEFAULT_SENSITIVITY = 3.0
MIN_PERIODS = 3  # at least three full cycles before STL says anything

# 春节 (Spring Festival) moves with the lunar calendar: the first day of the year, 2024–2030.
SPRING_FESTIVAL = {
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}


class DetectorError(ValueError):
    pass


@dataclass(frozen=True)
class CalendarEffect:
    """A known business effect on [start, end] (inclusive) that explains unusual values."""

    name: str
    start: date
    end: date
    kind: str = "holiday"  # holiday | promotion | campaign_launch

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


def default_calendar(years: Iterable[int]) -> list[CalendarEffect]:
    """618 (6/16–6/18), 双11 (11/10–11/12, the demo brand's peak days too), 春节 (eve − 1 … 初六)."""
    effects: list[CalendarEffect] = []
    for y in sorted(set(years)):
        effects.append(CalendarEffect("618", date(y, 6, 16), date(y, 6, 18), "promotion"))
        effects.append(CalendarEffect("双11", date(y, 11, 10), date(y, 11, 12), "promotion"))
        if y in SPRING_FESTIVAL:
            sf = SPRING_FESTIVAL[y]
            effects.append(CalendarEffect("春节", sf - timedelta(days=2), sf + timedelta(days=6), "holiday"))
    return effects


def launch_effects(launches: Iterable[tuple[str, date]], days: int = 2) -> list[CalendarEffect]:
    """A campaign launch explains its first `days` days."""
    return [
        CalendarEffect(f"活动上线 {cid}", d, d + timedelta(days=days - 1), "campaign_launch") for cid, d in launches
    ]


@dataclass(frozen=True)
class Anomaly:
    ts: pd.Timestamp
    observed: float
    expected: float
    residual: float
    score: float  # residual in robust sigmas (signed)
    direction: str  # spike | drop
    explained_by: str | None = None  # a calendar effect's name: reported, not alerted

    @property
    def alert(self) -> bool:
        return self.explained_by is None

    def as_dict(self) -> dict:
        out = asdict(self)
        out["ts"] = self.ts.isoformat()
        out["alert"] = self.alert
        return out


def _as_series(values: pd.Series | Sequence[tuple[object, float]]) -> pd.Series:
    s = values if isinstance(values, pd.Series) else pd.Series(dict(values), dtype="float64")
    if not isinstance(s.index, pd.DatetimeIndex):
        try:
            s.index = pd.to_datetime(s.index)
        except (ValueError, TypeError) as exc:
            raise DetectorError(f"series index: not timestamps ({exc})") from exc
    s = s.sort_index().astype("float64")
    if s.index.has_duplicates:
        raise DetectorError(f"series index: duplicate timestamp {s.index[s.index.duplicated()][0]}")
    return s


def detect(
    values: pd.Series | Sequence[tuple[object, float]],
    *,
    period: int = 7,
    sensitivity: float = DEFAULT_SENSITIVITY,
    calendar: Sequence[CalendarEffect] = (),
    min_scale: float = 1e-9,
) -> list[Anomaly]:
    """Anomalies of a regular series (daily: period 7; hourly: period 24 or 168).

    Missing values (NaN) are interpolated for the fit and never reported. `sensitivity` is the
    number of robust sigmas a residual must exceed (3 = the 3σ rule; larger = fewer alerts).
    """
    if sensitivity <= 0:
        raise DetectorError(f"sensitivity: must be > 0, got {sensitivity}")
    if period < 2:
        raise DetectorError(f"period: must be ≥ 2, got {period}")
    s = _as_series(values)
    if len(s) < MIN_PERIODS * period:
        raise DetectorError(f"series: {len(s)} points, need at least {MIN_PERIODS * period} (3 × period {period})")
    days = [ts.date() for ts in s.index]
    effect_of = [next((e.name for e in calendar if e.covers(d)), None) for d in days]
    masked = np.array([e is not None for e in effect_of])
    missing = s.isna().to_numpy()
    fit_input = s.copy()
    fit_input[masked | missing] = np.nan
    # Interpolate in position (not time) so gaps of an irregular index still fill; ends take nearest.
    fit_input = fit_input.reset_index(drop=True).interpolate(limit_direction="both")
    if fit_input.isna().all():
        raise DetectorError("series: no usable values")
    res = STL(fit_input.to_numpy(), period=period, robust=True).fit()
    expected = res.trend + res.seasonal
    observed = s.to_numpy()
    resid = observed - expected
    ordinary = ~(masked | missing)
    r = resid[ordinary]
    scale = 1.4826 * float(np.median(np.abs(r - np.median(r)))) if len(r) else 0.0
    # A perfectly regular series has MAD 0: fall back to a small share of its level, so that
    # rounding noise is not "infinitely" anomalous.
    scale = max(scale, 1e-3 * float(np.nanmedian(np.abs(observed))), min_scale)
    out: list[Anomaly] = []
    for i, ts in enumerate(s.index):
        if missing[i]:
            continue
        z = resid[i] / scale
        if abs(z) <= sensitivity:
            continue
        out.append(
            Anomaly(
                ts=ts,
                observed=float(observed[i]),
                expected=float(expected[i]),
                residual=float(resid[i]),
                score=float(z),
                direction="spike" if z > 0 else "drop",
                explained_by=effect_of[i],
            )
        )
    return out

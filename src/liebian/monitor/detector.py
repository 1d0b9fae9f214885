"""Anomaly detection on a metric series: STL (trend + seasonality) and a robust 3σ rule.

Daily series carry a weekly cycle (period 7), hourly series a daily cycle (period 24): the same
machinery with the period of the series.

Each point is judged from the points before it (as a monitor sees it): a variance-stabilising
transform (logs, or the Anscombe square root for small counts), `statsmodels` STL on the cleaned
history, a one-step forecast = last trend + seasonal one period back, and the 3σ rule on the
forecast error with σ = 1.4826 × MAD of past errors, plus a materiality threshold (`min_change`).
Days of known calendar effects (liebian/calendar.py: 春节 and 国庆 windows, public holidays and adjusted
working days, 618, 双11, brand dates; and campaign launches) are reported as *explained*,
never alerted, and kept out of the fit. Level shifts, cold start and episodes: see `detect` and
docs/monitoring.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from liebian import calendar as holiday_calendar
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import statsmodels.tsa.seasonal as sm_seasonal
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")
    pd = lazy_import("pandas")
    sm_seasonal = lazy_import("statsmodels.tsa.seasonal")

from liebian.errors import Invalid

DEFAULT_SENSITIVITY = 3.0
DEFAULT_MIN_CHANGE = 0.15  # below this relative move no alert (3% noise makes 3σ ≈ 9%)
MIN_PERIODS = 3  # full cycles of history before the first forecast (two more learn its error)


class DetectorError(Invalid, ValueError):
    """A series the detector cannot use; the message is "field: reason"."""

    def __init__(self, message: str):
        super().__init__("invalid", message)


# A known business effect on [start, end] (inclusive) that explains unusual values: the holiday
# calendar's window (liebian/calendar.py), or a campaign launch (kind "campaign_launch").
CalendarEffect = holiday_calendar.Window


def default_calendar(
    years: Iterable[int], calendar: holiday_calendar.HolidayCalendar | None = None
) -> list[CalendarEffect]:
    """The holiday calendar's effects in `years` (the running settings' calendar by default): brand
    dates, promotions (618, 双11, 双12), the 春节 and 国庆 windows, public holidays and adjusted
    working days (liebian/calendar.py)."""
    wanted = sorted(set(years))
    if not wanted:
        return []
    cal = calendar or holiday_calendar.current()
    return cal.effects(date(wanted[0], 1, 1), date(wanted[-1], 12, 31))


def launch_effects(launches: Iterable[tuple[str, date]], days: int = 2) -> list[CalendarEffect]:
    """A campaign launch explains its first `days` days."""
    return [
        CalendarEffect(f"活动上线 {cid}", d, d + timedelta(days=days - 1), "campaign_launch")
        for cid, d in launches
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
    episode_start: pd.Timestamp | None = None  # first point of this run of same-direction flags
    episode_length: int = 1

    @property
    def alert(self) -> bool:
        """A new alert: not explained by the calendar and the first point of its episode."""
        return self.explained_by is None and self.episode_start == self.ts

    @property
    def kind(self) -> str:
        return "level_shift" if self.episode_length >= 3 else self.direction

    def as_dict(self) -> dict:
        out = asdict(self)
        out["ts"] = self.ts.isoformat()
        out["episode_start"] = self.episode_start.isoformat() if self.episode_start is not None else None
        out["kind"] = self.kind
        out["alert"] = self.alert
        return out


def _as_series(values: pd.Series | Sequence[tuple[object, float]]) -> pd.Series:
    if isinstance(values, pd.Series):
        s = values
    else:  # not via dict(): a repeated timestamp must be reported, not silently overwritten
        pairs = list(values)
        s = pd.Series([v for _, v in pairs], index=[k for k, _ in pairs], dtype="float64")
    if not isinstance(s.index, pd.DatetimeIndex):
        try:
            s.index = pd.to_datetime(s.index)
        except (ValueError, TypeError) as exc:
            raise DetectorError(f"series index: not timestamps ({exc})") from exc
    s = s.sort_index().astype("float64")
    if s.index.has_duplicates:
        raise DetectorError(f"series index: duplicate timestamp {s.index[s.index.duplicated()][0]}")
    return s


def _transform(raw: np.ndarray, log: bool | None, counts: bool = False) -> tuple[Callable, Callable]:
    """The variance-stabilising transform and its inverse for a series.

    Rates and volumes vary multiplicatively (a weekend ×1.3 scales the noise too): logs make the
    weekly pattern additive and the noise even. A series with zeros is a small count (a quiet
    channel's daily orders): the Anscombe square root sqrt(x + 3/8) evens Poisson noise, where a
    log of a near-zero value would explode. `counts=True` asks for the square root outright: an
    hourly count swings ×20 between night and evening, and in logs the quiet hours' Poisson noise
    would be several times the busy hours' (every night hour would look like an anomaly).
    Negative values, or log=False: no transform.
    """
    lowest = float(np.nanmin(raw))
    if log and lowest <= 0:
        raise DetectorError("log: every value must be > 0 to work in logs")
    if log is False or lowest < 0:
        return (lambda x: x), (lambda z: z)
    if lowest > 0 and not counts:
        return np.log, np.exp
    return (lambda x: np.sqrt(np.asarray(x) + 0.375)), (lambda z: np.square(z) - 0.375)


def _cold(
    hist: np.ndarray, fwd: Callable, inv: Callable, min_change: float
) -> tuple[float, tuple[float, float]]:
    """Scale and accepted range (transformed) of a short history (see the cold start in `detect`)."""
    mid = float(np.median(hist))
    scale = max(1.4826 * float(np.median(np.abs(hist - mid))), 1e-3 * abs(mid), 1e-9)
    lo, hi = float(inv(hist.min())), float(inv(hist.max()))
    lo_ok = lo - min_change * abs(lo)
    hi_ok = hi + min_change * abs(hi)
    return scale, (float(fwd(max(lo_ok, 0.0))) if lo >= 0 else lo_ok, float(fwd(hi_ok)))


def _forecast(work: np.ndarray, t: int, period: int, window: int, errors: list[float], fwd, inv,
              min_change: float) -> tuple[float, float, tuple[float, float] | None]:  # fmt: skip
    """The expected (transformed) value at `t` from the cleaned history before it, the scale of a
    normal forecast error, and the cold-start bounds when the cold-start rule applies."""
    cold_bounds = None
    if t < MIN_PERIODS * period:
        # Cold start (a campaign's first weeks): too short to learn a weekly pattern, so the
        # median of what came before is expected, and only a value outside everything seen so
        # far (one full cycle at least, weekend peaks included) by the materiality margin counts.
        expected = float(np.median(work[:t]))
        scale, cold_bounds = _cold(work[:t], fwd, inv, min_change)
    else:
        hist = work[max(0, t - window) : t]
        # History is already cleaned of anomalies, so a plain (non-robust) fit; a wide seasonal
        # window keeps one noisy week from reshaping the weekly pattern.
        fit = sm_seasonal.STL(hist, period=period, seasonal=31).fit()
        # one step ahead: the last trend level and the seasonal value one period back
        expected = float(fit.trend[-1] + fit.seasonal[-period])
        if len(errors) >= 2 * period:  # two cycles of forecast errors before judging by them
            recent = np.array(errors[-window:])
            scale = 1.4826 * float(np.median(np.abs(recent - np.median(recent))))
            scale = max(scale, 1e-3 * abs(expected), 1e-9)
        else:  # still warming up: the cold-start rule
            scale, cold_bounds = _cold(work[:t], fwd, inv, min_change)
    return expected, scale, cold_bounds


def _checked_series(
    values: pd.Series | Sequence[tuple[object, float]], period: int, sensitivity: float
) -> pd.Series:
    if sensitivity <= 0:
        raise DetectorError(f"sensitivity: must be > 0, got {sensitivity}")
    if period < 2:
        raise DetectorError(f"period: must be ≥ 2, got {period}")
    s = _as_series(values)
    need = period + 1
    if len(s) < need:
        raise DetectorError(f"series: {len(s)} points, need at least {need} (period {period} + 1)")
    return s


def _keep_flagged(work: np.ndarray, y: np.ndarray, t: int, run: list[int], run_errors: list[float],
                  shift_after: int, expected: float) -> None:  # fmt: skip
    """What the cleaned history keeps for a flagged point: the expected value, until the episode is
    long enough to be a level shift, from which on the observed values."""
    if len(run) == shift_after:
        # A level shift: move the older history onto the new level (in logs: rescale it),
        # so neither the trend nor the weekly pattern has to absorb the step.
        shift = float(np.median(run_errors))
        work[: run[0]] += shift
        for i in range(run[0], run[-1] + 1):  # a calendar day inside the episode moves with the history
            work[i] = y[i] if i in run else work[i] + shift
    elif len(run) > shift_after:
        work[t] = y[t]
    else:
        work[t] = expected


def _anomaly(s: pd.Series, t: int, observed: float, shown: float, score: float, effect: str | None,
             run: list[int]) -> Anomaly:  # fmt: skip
    return Anomaly(
        ts=s.index[t],
        observed=observed,
        expected=shown,
        residual=observed - shown,
        score=score,
        direction="spike" if score > 0 else "drop",
        explained_by=effect,
        episode_start=s.index[run[0]] if run else s.index[t],
        episode_length=len(run) or 1,
    )


def detect(
    values: pd.Series | Sequence[tuple[object, float]],
    *,
    period: int = 7,
    sensitivity: float = DEFAULT_SENSITIVITY,
    calendar: Sequence[CalendarEffect] = (),
    history_periods: int = 8,
    shift_after: int = 3,
    log: bool | None = None,
    min_change: float = DEFAULT_MIN_CHANGE,
    counts: bool = False,
) -> list[Anomaly]:
    """Anomalies of a regular series (daily: period 7; hourly: period 24), judged as a monitor would.

    Each point is compared with a forecast from the points before it only (no hindsight: a centred
    fit would "see" a level shift coming and flag the days before it). Flagged and calendar points
    are replaced by their expected value in the history, so one spike does not distort the next
    forecasts; a run of `shift_after` flags in one direction is accepted as a level shift (the
    older history is moved onto the new level so the fit adapts). Consecutive flags in one direction form one
    episode: only its first point is an alert, the others carry `episode_start`.
    `sensitivity` is the number of robust sigmas a forecast error must exceed (3 = the 3σ rule);
    `min_change` the smallest relative move that counts. With under three periods of history (a
    young campaign) a point must leave the whole range seen so far by `min_change` (cold start).
    `counts=True` marks a series of counts (Poisson noise: square-root transform, see `_transform`).
    """
    s = _checked_series(values, period, sensitivity)
    effect_of = [next((e.name for e in calendar if e.covers(ts.date())), None) for ts in s.index]
    raw = s.to_numpy()
    if np.isnan(raw).all():
        raise DetectorError("series: no usable values")
    fwd, inv = _transform(raw, log, counts)
    y = fwd(raw)
    filled = (
        pd.Series(y).where(~np.array([e is not None for e in effect_of])).interpolate(limit_direction="both")
    )
    work = filled.to_numpy().copy()
    errors: list[float] = []
    out: list[Anomaly] = []
    run: list[int] = []  # indices of the current episode
    run_sign = 0
    run_errors: list[float] = []
    window = history_periods * period
    for t in range(period, len(y)):
        expected, scale, cold_bounds = _forecast(work, t, period, window, errors, fwd, inv, min_change)
        if np.isnan(y[t]):
            work[t] = expected
            continue
        err = float(y[t] - expected)
        if effect_of[t] is None and t >= MIN_PERIODS * period:
            errors.append(err)
        # Materiality: a move smaller than min_change (relative) is noise to an operator, however
        # many sigmas a very quiet series makes it.
        shown_expected = float(inv(expected))
        change = abs(float(raw[t]) - shown_expected) / max(abs(shown_expected), 1e-9)
        flagged = scale is not None and abs(err) > sensitivity * scale and change >= min_change
        if cold_bounds is not None:
            flagged = flagged and not (cold_bounds[0] <= y[t] <= cold_bounds[1])
        sign = 1 if err > 0 else -1
        # a calendar day neither ends nor extends an episode (调休 on a Sunday inside a level shift)
        if effect_of[t] is None and (not flagged or sign != run_sign):
            run, run_sign, run_errors = [], 0, []
        if effect_of[t] is not None:
            work[t] = expected
        elif flagged:
            run.append(t)
            run_sign = sign
            run_errors.append(err)
            _keep_flagged(work, y, t, run, run_errors, shift_after, expected)
        else:
            work[t] = y[t]
        if flagged:
            out.append(_anomaly(s, t, float(raw[t]), shown_expected, err / scale, effect_of[t], run))
    return out

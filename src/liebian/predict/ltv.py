"""LTV: BG/NBD (how often, and for how long, a customer keeps buying) with Gamma-Gamma spend.

The fitters are `lifetimes` 0.11.3, pinned: unmaintained since 2020, but its maximum-likelihood
fitters reproduce the parameters published by Fader, Hardie & Lee (2005, BG/NBD) and Fader & Hardie
(2013, Gamma-Gamma) on CDNOW (see tests/predict/test_predict_ltv.py). Its
`summary_data_from_transaction_data` returns NaN rows under pandas 3, so the RFM summary is built
here in DuckDB SQL. Arrays are passed to lifetimes as numpy (a DataFrame's `.T` is its transpose).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import
from liebian.predict.common import PredictError, aggregate_row

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
    import scipy.stats as stats
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    np = lazy_import("numpy")
    pd = lazy_import("pandas")
    stats = lazy_import("scipy.stats")

# CDNOW, 2357 customers, time unit = weeks (the papers' reference values)
PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


def _lifetimes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about a pandas option removed in pandas 4
        # deferred: lifetimes pulls SciPy and pandas; only LTV fits need it (start-up time)
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    return BetaGeoFitter, GammaGammaFitter


def rfm_summary(
    con: duckdb.DuckDBPyConnection, cutoff: datetime | None = None, unit_days: float = 7.0
) -> pd.DataFrame:
    """Per buyer: frequency (repeat purchase days), recency and T (in units), mean repeat spend (fen).

    Paid orders before `cutoff` (default: the latest order) only; one purchase per calendar day as
    in the papers; refunded and cancelled orders are not purchases.
    """
    if unit_days <= 0:
        raise PredictError(f"unit_days: must be positive (got {unit_days})")
    if cutoff is None:
        cutoff = aggregate_row(con, "SELECT max(ts) FROM orders WHERE status = 'paid'")[0]
        if cutoff is None:
            raise PredictError("orders: no paid orders in the warehouse; LTV needs purchases")
    df = con.execute(
        """
        WITH days AS (
            SELECT person_id, date_trunc('day', ts) AS d, sum(amount_fen) AS fen
            FROM orders WHERE status = 'paid' AND ts <= ?
            GROUP BY ALL
        ), ranked AS (
            SELECT *, row_number() OVER (PARTITION BY person_id ORDER BY d) AS k FROM days
        )
        SELECT person_id,
               count(*) - 1 AS frequency,
               date_diff('day', min(d), max(d)) / ? AS recency,
               date_diff('second', min(d), CAST(? AS TIMESTAMP)) / 86400.0 / ? AS T,
               coalesce(avg(fen) FILTER (WHERE k > 1), 0) AS monetary_value,
               sum(fen) AS total_fen
        FROM ranked GROUP BY person_id ORDER BY person_id
        """,
        [cutoff, unit_days, cutoff, unit_days],
    ).df()
    df["frequency"] = df["frequency"].astype(int)
    return df


@dataclass
class LtvModel:
    bgnbd: dict
    gamma_gamma: dict | None
    unit_days: float
    n_customers: int
    bgnbd_se: dict


PENALIZERS = (0.0, 0.001, 0.01, 0.1)


def fit_bgnbd(frequency, recency, T, penalizer: float | None = None) -> tuple[dict, dict]:
    """Maximum-likelihood BG/NBD parameters and their standard errors (and the penalizer used).

    Without an explicit penalizer, the plain MLE is tried first; when it does not converge (short
    histories where hardly anyone drops out drive a and b to infinity) a small L2 penalty is added.
    """
    # deferred: lifetimes pulls SciPy and pandas; only LTV fits need it (start-up time)
    from lifetimes.utils import ConvergenceError

    BetaGeoFitter, _ = _lifetimes()
    f, r, t = (np.asarray(x, dtype=float) for x in (frequency, recency, T))
    if len(f) < 10:
        raise PredictError(f"BG/NBD needs at least 10 customers (got {len(f)})")
    for pen in PENALIZERS if penalizer is None else (penalizer,):
        try:
            # lifetimes prints the optimizer result on failure: keep stdout clean for --format json
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                bgf = BetaGeoFitter(penalizer_coef=pen).fit(f, r, t)
            break
        except ConvergenceError:
            continue
    else:
        raise PredictError(
            f"BG/NBD did not converge on {len(f)} customers, even with penalizer {PENALIZERS[-1]}"
        )
    try:
        se = {k: float(v) for k, v in bgf.summary["se(coef)"].items()}
    except Exception:  # a singular Hessian leaves no standard errors
        se = {k: float("nan") for k in bgf.params_.index}
    params = {k: float(v) for k, v in bgf.params_.items()}
    return params, {**se, "penalizer": pen}


def fit_gamma_gamma(frequency, monetary_value, penalizer: float = 0.0) -> dict:
    """Gamma-Gamma spend parameters on repeat buyers (frequency > 0)."""
    _, GammaGammaFitter = _lifetimes()
    f, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    keep = (f > 0) & (m > 0)
    if keep.sum() < 10:
        raise PredictError(f"Gamma-Gamma needs at least 10 repeat buyers (got {int(keep.sum())})")
    # deferred: lifetimes pulls SciPy and pandas; only LTV fits need it (start-up time)
    from lifetimes.utils import ConvergenceError

    ggf = GammaGammaFitter(penalizer_coef=penalizer)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ggf.fit(f[keep], m[keep])
    except ConvergenceError as exc:
        raise PredictError(f"Gamma-Gamma did not converge on {int(keep.sum())} repeat buyers") from exc
    return {k: float(v) for k, v in ggf.params_.items()}


def expected_purchases(params: dict, t, frequency, recency, T) -> np.ndarray:
    """E[purchases in (T, T+t)] for each customer (the BG/NBD conditional expectation)."""
    BetaGeoFitter, _ = _lifetimes()
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(params)
    return np.asarray(
        bgf.conditional_expected_number_of_purchases_up_to_time(
            t, np.asarray(frequency, float), np.asarray(recency, float), np.asarray(T, float)
        ),
        dtype=float,
    )


def expected_spend(params: dict | None, frequency, monetary_value, fallback: float) -> np.ndarray:
    """Gamma-Gamma conditional mean spend per purchase; `fallback` (population mean) without a model."""
    f, m = np.asarray(frequency, float), np.asarray(monetary_value, float)
    if params is None:
        return np.full(len(f), fallback)
    p, q, v = params["p"], params["q"], params["v"]
    with np.errstate(invalid="ignore", divide="ignore"):
        cond = (p * (v + f * m)) / (p * f + q - 1)
    pop = v * p / (q - 1)
    return np.where(f > 0, cond, pop)


def clv(
    bgnbd: dict,
    gamma_gamma: dict | None,
    summary: pd.DataFrame,
    horizon_units: int,
    discount_rate: float,
    fallback_spend: float = 0.0,
) -> pd.DataFrame:
    """Expected purchases and discounted value per person over `horizon_units` periods.

    Value of period i = (E[X(i)] - E[X(i-1)]) × expected spend / (1 + discount_rate)^i: the decay
    factor of the source plan, applied per unit of time.
    """
    if horizon_units < 1:
        raise PredictError(f"horizon: must be at least 1 unit (got {horizon_units})")
    if not 0 <= discount_rate < 1:
        raise PredictError(f"discount_rate: must be in [0, 1) per unit (got {discount_rate})")
    f, r, t = summary["frequency"], summary["recency"], summary["T"]
    spend = expected_spend(gamma_gamma, f, summary["monetary_value"], fallback_spend)
    prev = np.zeros(len(summary))
    value = np.zeros(len(summary))
    for i in range(1, horizon_units + 1):
        cum = expected_purchases(bgnbd, i, f, r, t)
        value += (cum - prev) * spend / (1 + discount_rate) ** i
        prev = cum
    return pd.DataFrame(
        {
            "person_id": summary["person_id"].to_numpy(),
            "expected_purchases": prev,
            "expected_spend_fen": spend,
            "clv_fen": value,
            "historical_fen": summary["total_fen"].to_numpy(),
        }
    )


def simulate_bgnbd(
    n: int, T: float, r: float, alpha: float, a: float, b: float, seed: int = 0
) -> pd.DataFrame:
    """Customers drawn from BG/NBD: frequency, recency and T for an observation window T.

    λ ~ Gamma(r, rate α), p ~ Beta(a, b); purchases arrive as a Poisson(λ) process from the first
    purchase at 0; after each repeat purchase the customer drops out with probability p.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    t = np.zeros(n)
    freq = np.zeros(n, dtype=int)
    rec = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        within = t[idx] <= T
        bought = idx[within]
        freq[bought] += 1
        rec[bought] = t[bought]
        alive[idx[~within]] = False
        alive[bought[rng.random(len(bought)) < p[bought]]] = False
    return pd.DataFrame({"frequency": freq, "recency": rec, "T": np.full(n, float(T))})


BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_CELLS = 4_000_000  # resampled values held at once (32 MB): 2000 resamples go in batches


def ratio_ci(a: np.ndarray, b: np.ndarray, confidence: float = 0.95, seed: int = 0) -> dict:
    """mean(a)/mean(b) with a BCa bootstrap interval (the two groups resampled independently).

    The bootstrap distribution is scipy's (resampled in batches, so that 100k customers do not need
    gigabytes); the BCa acceleration uses the jackknife of a ratio of means in closed form
    (leave-one-out means), where scipy's generic jackknife builds n resamples of n - 1 values:
    O(n²) memory, 36 GiB at 70k customers. The interval is the one scipy's `method="bca"` gives.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        raise PredictError(
            f"LTV multiplier needs two groups of at least 2 customers (got {len(a)} and {len(b)})"
        )
    if b.mean() == 0:
        raise PredictError("LTV multiplier: the comparison group's mean value is 0")

    def stat(x, y, axis=-1):
        return np.mean(x, axis=axis) / np.mean(y, axis=axis)

    res = stats.bootstrap(
        (a, b),
        stat,
        confidence_level=confidence,
        n_resamples=BOOTSTRAP_RESAMPLES,
        batch=max(1, min(BOOTSTRAP_RESAMPLES, BOOTSTRAP_CELLS // (len(a) + len(b)))),
        method="percentile",  # only the distribution; the BCa interval follows
        rng=np.random.default_rng(seed),
    )
    low, high = _bca_ratio_interval(a, b, res.bootstrap_distribution, confidence)
    return {
        "multiplier": float(a.mean() / b.mean()),
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
        "n_group": len(a),
        "n_other": len(b),
    }


def _bca_ratio_interval(
    a: np.ndarray, b: np.ndarray, dist: np.ndarray, confidence: float
) -> tuple[float, float]:
    """Efron & Tibshirani (14.3, 15.4) as in scipy's `_bca_interval`, for mean(a)/mean(b)."""
    # deferred: SciPy is heavy; only LTV fits need it (start-up time)
    from scipy.special import ndtr, ndtri

    theta = a.mean() / b.mean()
    z0 = ndtri((np.count_nonzero(dist < theta) + np.count_nonzero(dist <= theta)) / (2 * dist.size))
    # jackknife values of each sample with one value left out, in closed form
    jack = (((a.sum() - a) / (len(a) - 1)) / b.mean(), a.mean() / ((b.sum() - b) / (len(b) - 1)))
    nums = dens = 0.0
    for t in jack:
        n = float(t.size)
        u = (n - 1) * (t.mean() - t)
        nums += np.sum(u**3) / n**3
        dens += np.sum(u**2) / n**2
    accel = nums / 6 / dens**1.5 if dens > 0 else 0.0
    z = float(ndtri((1 - confidence) / 2))
    lo = ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))
    hi = ndtr(z0 + (z0 - z) / (1 - accel * (z0 - z)))
    ci = stats.quantile(dist, np.array([lo, hi]))
    return float(ci[0]), float(ci[1])

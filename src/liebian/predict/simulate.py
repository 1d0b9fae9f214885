"""Growth what-if: a Galton–Watson branching process per referral cycle.

Each user of a generation stays (1 − churn), participates with probability `participation` and
then brings Poisson(`k_per_participant`) new users one cycle later. The mean offspring is
R = (1 − churn) × participation × k; generation g has expected size Z0·Rᵍ, and growth "takes off"
(does not die out) only when R > 1, i.e. above participation* = 1 / ((1 − churn)·k).
Each new user costs `cost_per_user` (reward + media); the budget runs out in the cycle where the
cumulative cost passes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import
from liebian.predict.common import PredictError

if TYPE_CHECKING:
    import numpy as np
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")


@dataclass(frozen=True)
class GrowthParams:
    seed_users: int = 1000
    k_per_participant: float = 2.0  # new users each participant brings
    participation: float = 0.3
    churn: float = 0.1  # per cycle, before participating
    cycle_days: float = 7.0
    cost_per_user_fen: int = 500
    budget_fen: int | None = None
    cycles: int = 10
    start: date | None = None

    def __post_init__(self) -> None:
        checks = {
            "seed_users": self.seed_users >= 1,
            "k_per_participant": self.k_per_participant >= 0,
            "participation": 0 <= self.participation <= 1,
            "churn": 0 <= self.churn <= 1,
            "cycle_days": self.cycle_days > 0,
            "cost_per_user_fen": self.cost_per_user_fen >= 0,
            "cycles": 1 <= self.cycles <= 200,
        }
        for name, ok in checks.items():
            if not ok:
                raise PredictError(f"{name}: out of range (got {getattr(self, name)})")

    @property
    def r(self) -> float:
        return (1 - self.churn) * self.participation * self.k_per_participant


def expected_sizes(p: GrowthParams) -> np.ndarray:
    """Closed form: E[Z_g] = Z0 · Rᵍ for g = 0..cycles."""
    return p.seed_users * p.r ** np.arange(p.cycles + 1)


def expected_variance(p: GrowthParams) -> np.ndarray:
    """Var[Z_g] for the branching process (offspring mean R, variance σ²), from Z0 independent roots."""
    q, k, s = p.participation, p.k_per_participant, 1 - p.churn
    m = p.r
    # offspring = Poisson(k) with prob s·q, else 0: Var = s·q·k + s·q·(1 − s·q)·k²
    sigma2 = s * q * k + s * q * (1 - s * q) * k**2
    g = np.arange(p.cycles + 1)
    var1 = g * sigma2 if abs(m - 1) < 1e-12 else sigma2 * m ** (g - 1) * (m**g - 1) / (m - 1)
    return p.seed_users * var1


MAX_USERS = 1e15


def simulate(p: GrowthParams, runs: int = 1000, seed: int = 0) -> np.ndarray:
    """Monte Carlo generation sizes, shape (runs, cycles + 1)."""
    if runs < 1:
        raise PredictError(f"runs: must be at least 1 (got {runs})")
    rng = np.random.default_rng(seed)
    z = np.full(runs, p.seed_users, dtype=np.int64)
    out = [z.copy()]
    for cycle in range(p.cycles):
        participants = rng.binomial(z, (1 - p.churn) * p.participation)
        lam = p.k_per_participant * participants
        if lam.max(initial=0) > MAX_USERS:  # beyond what Poisson draws (and int64) hold
            raise PredictError(
                f"k_per_participant/cycles: the projection outgrows {MAX_USERS:.0e} users by cycle {cycle + 1}"
            )
        z = rng.poisson(lam)
        out.append(z.copy())
    return np.stack(out, axis=1)


def project(p: GrowthParams, runs: int = 1000, seed: int = 0) -> dict:
    """Expected and simulated users per cycle, cost, the budget-exhaustion date and the take-off point."""
    sims = simulate(p, runs, seed)
    exp = expected_sizes(p)
    start = p.start or date.today()
    if not date(2000, 1, 1) <= start <= date(2199, 12, 31):
        raise PredictError(f"start: {start} lies outside 2000-01-01 … 2199-12-31")
    cum_new = np.cumsum(exp) - p.seed_users  # acquired users (seeds are already there)
    cost = cum_new * p.cost_per_user_fen
    rows = []
    budget_out = None
    for g in range(p.cycles + 1):
        day = start + timedelta(days=p.cycle_days * g)
        rows.append(
            {"cycle": g, "date": day.isoformat(), "expected_new": float(exp[g]),
             "expected_total": float(cum_new[g] + p.seed_users), "cost_fen": float(cost[g]),
             "sim_mean_new": float(sims[:, g].mean()), "sim_p10": float(np.percentile(sims[:, g], 10)),
             "sim_p90": float(np.percentile(sims[:, g], 90))}
        )  # fmt: skip
        if p.budget_fen is not None and budget_out is None and cost[g] > p.budget_fen:
            budget_out = day.isoformat()
    denom = (1 - p.churn) * p.k_per_participant
    return {
        "params": {**asdict(p), "start": start.isoformat()},
        "r": p.r,
        "takes_off": p.r > 1,
        "takeoff_participation": (1 / denom) if denom > 0 else None,
        "extinction_share": float((sims[:, -1] == 0).mean()),
        "budget_exhausted_on": budget_out,
        "cycles": rows,
    }


def participation_sweep(p: GrowthParams, levels: Sequence[float] | None = None) -> list[dict]:
    """Expected acquired users after all cycles at each participation level (the take-off curve)."""
    levels = levels if levels is not None else [i / 20 for i in range(21)]
    out = []
    for q in levels:
        pq = GrowthParams(**{**asdict(p), "participation": q})
        out.append({"participation": q, "r": pq.r, "expected_acquired": float(expected_sizes(pq)[1:].sum())})
    return out

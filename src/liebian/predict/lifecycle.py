"""The lifecycle Markov chain: new → active → loyal → silent → churned, per period.

Each person gets one state per period from their activity (any event or paid order) and paid
orders; the transition matrix is the row-normalised count of state pairs in consecutive periods;
projections multiply the current distribution by it and value each state by its observed mean
revenue per period, discounted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import
from liebian.predict.common import PredictError, aggregate_row

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    np = lazy_import("numpy")
    pd = lazy_import("pandas")

STATES = ("new", "active", "loyal", "silent", "churned")


@dataclass(frozen=True)
class LifecycleConfig:
    period_days: int = 14
    # loyal: active in the period with at least `loyal_orders` paid orders over the last `loyal_periods`
    loyal_orders: int = 2
    loyal_periods: int = 3
    # churned: no activity for at least `churn_periods` periods in a row (before that: silent)
    churn_periods: int = 3

    def __post_init__(self) -> None:
        for name in ("period_days", "loyal_orders", "loyal_periods", "churn_periods"):
            if getattr(self, name) < 1:
                raise PredictError(f"{name}: must be at least 1 (got {getattr(self, name)})")


def activity_by_period(con: duckdb.DuckDBPyConnection, cfg: LifecycleConfig, end: datetime | None = None):
    """person × period activity (events + paid orders) and paid orders/revenue, from the warehouse."""
    if end is None:
        end = aggregate_row(
            con, "SELECT greatest((SELECT max(ts) FROM events), (SELECT max(ts) FROM orders))"
        )[0]
        if end is None:
            raise PredictError("events/orders: the warehouse is empty; the lifecycle needs activity")
    start = aggregate_row(con, "SELECT least((SELECT min(ts) FROM events), (SELECT min(ts) FROM orders))")[0]
    n_periods = int((end - start) / timedelta(days=cfg.period_days)) + 1
    origin = end - timedelta(days=cfg.period_days * n_periods)  # periods end at `end`
    df = con.execute(
        """
        WITH act AS (
            SELECT person_id, ts, 0 AS orders, 0 AS fen FROM events WHERE ts > ? AND ts <= ?
            UNION ALL
            SELECT person_id, ts, 1, amount_fen FROM orders WHERE status = 'paid' AND ts > ? AND ts <= ?
        )
        SELECT person_id,
               -- exact microseconds: date_diff('second') counts boundaries, and with sub-second
               -- times it put the latest row one period past the end
               CAST(floor((epoch_us(ts) - epoch_us(CAST(? AS TIMESTAMP)) - 1)
                          / (86400e6 * ?)) AS INTEGER) AS period,
               count(*) AS acts, sum(orders) AS orders, sum(fen) AS fen
        FROM act GROUP BY ALL
        """,
        [origin, end, origin, end, origin, cfg.period_days],
    ).df()
    return df, n_periods, origin


def states_matrix(df: pd.DataFrame, n_periods: int, cfg: LifecycleConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """State per person (rows) and period (columns); '' before a person's first activity."""
    persons = np.sort(df["person_id"].unique())
    row = np.searchsorted(persons, df["person_id"].to_numpy())
    col = df["period"].to_numpy().astype(int)
    acts = np.zeros((len(persons), n_periods), dtype=np.int64)
    orders = np.zeros_like(acts)
    fen = np.zeros_like(acts)
    acts[row, col] = df["acts"].to_numpy()
    orders[row, col] = df["orders"].to_numpy()
    fen[row, col] = df["fen"].to_numpy()
    active = acts > 0
    first = np.where(active.any(axis=1), active.argmax(axis=1), n_periods)
    states = np.full(acts.shape, "", dtype=object)
    idle = np.zeros(len(persons), dtype=int)
    for k in range(n_periods):
        lo = max(0, k - cfg.loyal_periods + 1)
        recent_orders = orders[:, lo : k + 1].sum(axis=1)
        idle = np.where(active[:, k], 0, idle + 1)
        s = np.full(len(persons), "", dtype=object)
        s[active[:, k]] = "active"
        s[active[:, k] & (recent_orders >= cfg.loyal_orders)] = "loyal"
        s[first == k] = "new"
        s[(~active[:, k]) & (k > first)] = "silent"
        s[(~active[:, k]) & (k > first) & (idle >= cfg.churn_periods)] = "churned"
        states[:, k] = s
    frame = pd.DataFrame(states, index=persons)
    return frame, fen


def transition_matrix(states: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row-normalised transition probabilities between STATES and the raw counts."""
    idx = {s: i for i, s in enumerate(STATES)}
    counts = np.zeros((len(STATES), len(STATES)), dtype=np.int64)
    values = states.to_numpy()
    for k in range(values.shape[1] - 1):
        a, b = values[:, k], values[:, k + 1]
        keep = a != ""
        for s_from, s_to in zip(a[keep], b[keep], strict=True):
            counts[idx[s_from], idx[s_to]] += 1
    # "new" is an entry state only; a state never observed stays where it is
    probs = np.zeros_like(counts, dtype=float)
    for i in range(len(STATES)):
        total = counts[i].sum()
        if total:
            probs[i] = counts[i] / total
        else:
            probs[i, i] = 1.0
    return probs, counts


def project(
    P: np.ndarray, start: np.ndarray, value_per_state: np.ndarray, periods: int, discount_rate: float = 0.0
) -> list[dict]:
    """Expected persons per state and expected (discounted) revenue for each of the next periods."""
    if periods < 1:
        raise PredictError(f"periods: must be at least 1 (got {periods})")
    dist = np.asarray(start, dtype=float)
    out = []
    cumulative = 0.0
    for n in range(1, periods + 1):
        dist = dist @ P
        value = float(dist @ value_per_state) / (1 + discount_rate) ** n
        cumulative += value
        out.append(
            {"period": n, **{s: float(x) for s, x in zip(STATES, dist, strict=True)}, "value_fen": value,
             "cumulative_value_fen": cumulative}
        )  # fmt: skip
    return out


def fit_lifecycle(
    con: duckdb.DuckDBPyConnection,
    cfg: LifecycleConfig | None = None,
    periods: int = 6,
    discount_rate: float = 0.0,
) -> dict:
    cfg = cfg or LifecycleConfig()
    df, n_periods, origin = activity_by_period(con, cfg)
    if n_periods < 2:
        raise PredictError("the data covers fewer than two periods; shorten period_days")
    states, fen = states_matrix(df, n_periods, cfg)
    P, counts = transition_matrix(states)
    values = states.to_numpy()
    value_per_state = np.array(
        [float(fen[values == s].mean()) if (values == s).any() else 0.0 for s in STATES]
    )
    current = np.array([(values[:, -1] == s).sum() for s in STATES], dtype=float)
    return {
        "config": asdict(cfg),
        "states": list(STATES),
        "periods_observed": n_periods,
        "origin": origin.isoformat(),
        "transition_matrix": P.round(6).tolist(),
        "transition_counts": counts.tolist(),
        "value_per_state_fen": value_per_state.round(2).tolist(),
        "current": dict(zip(STATES, current.astype(int).tolist(), strict=True)),
        "projection": project(P, current, value_per_state, periods, discount_rate),
        "person_states": states,
    }

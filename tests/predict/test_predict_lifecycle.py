"""Lifecycle Markov chain: states and the transition matrix against a hand count; the projection."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import pytest

from liebian.engine.warehouse import ensure_schema
from liebian.predict import lifecycle
from liebian.predict.common import PredictError

END = datetime(2026, 3, 5)


@pytest.fixture
def con():
    c = duckdb.connect()
    ensure_schema(c)

    def event(person, days_before):
        ts = END - timedelta(days=days_before)
        c.execute(
            "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, batch_id, ingested_at) "
            "VALUES (?, ?, ?, 'app', 'u', 'app_open', 'app', 'b', ?)",
            [f"e{person}-{days_before}", ts, person, ts],
        )

    def order(person, days_before, fen):
        ts = END - timedelta(days=days_before)
        c.execute(
            "INSERT INTO orders VALUES (?, ?, ?, 'app', 'u', ?, 'CNY', 'paid', 'app', NULL, ?, NULL, NULL, 'b', ?, NULL, NULL, NULL)",
            [f"o{person}-{days_before}", ts, person, fen, ts, ts],
        )

    # 7-day periods ending at END: p0 = (END-35, END-28], …, p4 = (END-7, END]
    event(1, 34), order(1, 27, 1000), order(1, 20, 3000)  # new, active, loyal, silent, churned
    event(2, 27), event(2, 13), event(2, 6)  # –, new, silent, active, active
    event(3, 34), event(3, 0)  # new, silent, churned, churned, active (the END instant is in p4)
    yield c
    c.close()


CFG = lifecycle.LifecycleConfig(period_days=7, loyal_orders=2, loyal_periods=2, churn_periods=2)


def test_states_follow_the_definitions(con):
    df, n, origin = lifecycle.activity_by_period(con, CFG)
    assert n == 5 and origin == END - timedelta(days=35)
    states, _fen = lifecycle.states_matrix(df, n, CFG)
    assert states.loc[1].tolist() == ["new", "active", "loyal", "silent", "churned"]
    assert states.loc[2].tolist() == ["", "new", "silent", "active", "active"]
    assert states.loc[3].tolist() == ["new", "silent", "churned", "churned", "active"]


def test_transition_matrix_is_the_hand_count(con):
    result = lifecycle.fit_lifecycle(con, CFG, periods=3)
    P = np.array(result["transition_matrix"])
    # new→{active 1, silent 2}; active→{active 1, loyal 1}; loyal→silent; silent→{active 1, churned 2};
    # churned→{churned 1, active 1}
    expected = np.array(
        [
            [0, 1 / 3, 0, 2 / 3, 0],
            [0, 1 / 2, 1 / 2, 0, 0],
            [0, 0, 0, 1, 0],
            [0, 1 / 3, 0, 0, 2 / 3],
            [0, 1 / 2, 0, 0, 1 / 2],
        ]
    )
    np.testing.assert_allclose(P, expected, atol=1e-6)
    assert result["current"] == {"new": 0, "active": 2, "loyal": 0, "silent": 0, "churned": 1}
    # value per state: mean fen of its cells (active cells 1000, 0, 0, 0; the loyal cell 3000)
    assert result["value_per_state_fen"][1] == pytest.approx(250) and result["value_per_state_fen"][2] == 3000
    dist = np.array([0, 2, 0, 0, 1.0])
    for row in result["projection"]:
        dist = dist @ expected
        assert [row[s] for s in lifecycle.STATES] == pytest.approx(dist.tolist())
        assert row["value_fen"] == pytest.approx(dist[1] * 250 + dist[2] * 3000)


def test_bad_configuration_is_named():
    with pytest.raises(PredictError, match="churn_periods"):
        lifecycle.LifecycleConfig(churn_periods=0)
    with pytest.raises(PredictError, match="periods"):
        lifecycle.project(np.eye(5), np.ones(5), np.zeros(5), 0)

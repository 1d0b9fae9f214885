"""Growth simulation: the branching process against its closed-form mean and variance."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from liebian.predict import simulate
from liebian.predict.common import PredictError
from liebian.predict.simulate import GrowthParams


@pytest.mark.parametrize("participation", [0.2, 0.5, 0.8])
def test_simulated_generation_sizes_match_the_closed_form(participation):
    p = GrowthParams(seed_users=200, k_per_participant=2.5, participation=participation, churn=0.2, cycles=6)
    sims = simulate.simulate(p, runs=4000, seed=1)
    exp = simulate.expected_sizes(p)
    var = simulate.expected_variance(p)
    assert exp[3] == pytest.approx(200 * ((1 - 0.2) * participation * 2.5) ** 3)
    for g in range(p.cycles + 1):
        sem = np.sqrt(var[g] / 4000)
        assert abs(sims[:, g].mean() - exp[g]) <= 4 * sem + 1e-9, g
        if g > 0 and exp[g] > 1:
            assert sims[:, g].var() == pytest.approx(var[g], rel=0.15), g


def test_takeoff_participation_and_extinction():
    p = GrowthParams(seed_users=5, k_per_participant=4, participation=0.2, churn=0.0, cycles=15)
    out = simulate.project(p, runs=2000)
    assert out["takeoff_participation"] == pytest.approx(0.25)
    assert out["r"] == pytest.approx(0.8) and out["takes_off"] is False
    assert out["extinction_share"] > 0.5  # subcritical: most runs die out
    sweep = simulate.participation_sweep(p)
    below = [r for r in sweep if r["participation"] < 0.25]
    above = [r for r in sweep if r["participation"] > 0.25]
    assert max(r["expected_acquired"] for r in below) < min(r["expected_acquired"] for r in above)


def test_budget_runs_out_on_the_cycle_the_cost_passes_it():
    p = GrowthParams(seed_users=100, k_per_participant=2, participation=0.5, churn=0.0, cycles=5,
                     cost_per_user_fen=1000, budget_fen=250_000, cycle_days=7, start=date(2026, 1, 1))  # fmt: skip
    out = simulate.project(p, runs=10)
    # R = 1: 100 new users per cycle at 1000 fen → cumulative 100k, 200k, 300k: out in cycle 3
    assert [round(c["cost_fen"]) for c in out["cycles"][:4]] == [0, 100_000, 200_000, 300_000]
    assert out["budget_exhausted_on"] == "2026-01-22"


def test_bad_parameters_are_named():
    with pytest.raises(PredictError, match="participation"):
        GrowthParams(participation=1.5)
    with pytest.raises(PredictError, match="cycles"):
        GrowthParams(cycles=0)

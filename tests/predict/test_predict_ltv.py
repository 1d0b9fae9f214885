"""LTV: the published CDNOW parameters, recovery of known parameters, the RFM summary, CLV by hand."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

from liebian.engine.warehouse import ensure_schema
from liebian.predict import ltv
from liebian.predict.common import PredictError


def test_bgnbd_reproduces_the_published_cdnow_parameters_within_one_percent():
    d = load_cdnow_summary()
    params, se = ltv.fit_bgnbd(d["frequency"], d["recency"], d["T"])
    assert se["penalizer"] == 0.0  # the plain maximum-likelihood fit, as in the paper
    for name, published in ltv.PAPER_BGNBD.items():
        assert params[name] == pytest.approx(published, rel=0.01), name


def test_gamma_gamma_reproduces_the_published_cdnow_parameters_within_one_percent():
    d = load_cdnow_summary_data_with_monetary_value()
    params = ltv.fit_gamma_gamma(d["frequency"], d["monetary_value"])
    for name, published in ltv.PAPER_GAMMA_GAMMA.items():
        assert params[name] == pytest.approx(published, rel=0.01), name


@pytest.mark.parametrize("seed", [1, 2])
def test_bgnbd_recovers_known_parameters_from_simulated_customers(seed):
    """Tolerance: r and α within 6 %, a and b within 3 standard errors of the fit (they are the
    weakly identified dropout parameters: their SE is ~8 % at this size)."""
    true = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    data = ltv.simulate_bgnbd(20_000, 52.0, seed=seed, **true)
    params, se = ltv.fit_bgnbd(data["frequency"], data["recency"], data["T"])
    assert params["r"] == pytest.approx(true["r"], rel=0.06)
    assert params["alpha"] == pytest.approx(true["alpha"], rel=0.06)
    for name in ("a", "b"):
        assert abs(params[name] - true[name]) < 3 * se[name], (name, params[name], se[name])


def test_simulated_frequencies_match_the_bgnbd_expected_count():
    """E[X(t)] of BG/NBD (Fader et al. eq. 9), the fitter's own formula, against the simulation."""
    true = {"r": 0.5, "alpha": 3.0, "a": 0.6, "b": 2.0}
    data = ltv.simulate_bgnbd(40_000, 30.0, seed=3, **true)
    from lifetimes import BetaGeoFitter

    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(true)
    expected = float(bgf.expected_number_of_purchases_up_to_time(30.0))
    sem = data["frequency"].std() / np.sqrt(len(data))
    assert abs(data["frequency"].mean() - expected) < 4 * sem


@pytest.fixture
def con():
    c = duckdb.connect()
    ensure_schema(c)
    rows = [
        # person 1: three purchase days (two orders on day 1 merge), a refund ignored
        ("o1", "2026-01-01 10:00", 1, 1000, "paid"),
        ("o2", "2026-01-01 18:00", 1, 500, "paid"),
        ("o3", "2026-01-08 10:00", 1, 2000, "paid"),
        ("o4", "2026-01-15 09:00", 1, 4000, "paid"),
        ("o5", "2026-01-20 09:00", 1, 9000, "refunded"),
        # person 2: one purchase only
        ("o6", "2026-01-22 00:00", 2, 700, "paid"),
        # person 3: only a cancelled order: not a customer
        ("o7", "2026-01-05 00:00", 3, 700, "cancelled"),
    ]
    for oid, ts, person, fen, status in rows:
        c.execute(
            "INSERT INTO orders VALUES (?, ?, ?, 'app', 'u', ?, 'CNY', ?, 'app', NULL, ?, NULL, NULL, 'b', ?, NULL, NULL, NULL)",
            [oid, ts, person, fen, status, ts, ts],
        )
    yield c
    c.close()


def test_rfm_summary_counts_purchase_days_and_ignores_refunds(con):
    s = ltv.rfm_summary(con, cutoff=datetime(2026, 1, 29), unit_days=7.0).set_index("person_id")
    assert list(s.index) == [1, 2]
    assert s.loc[1, "frequency"] == 2  # days 1, 8, 15: two repeat purchases
    assert s.loc[1, "recency"] == pytest.approx(14 / 7)
    assert s.loc[1, "T"] == pytest.approx(28 / 7)
    assert s.loc[1, "monetary_value"] == pytest.approx((2000 + 4000) / 2)  # repeat purchases only
    assert s.loc[1, "total_fen"] == 7500
    assert s.loc[2, "frequency"] == 0 and s.loc[2, "recency"] == 0
    assert s.loc[2, "T"] == pytest.approx(7 / 7)


def test_clv_is_expected_purchases_times_spend_discounted_per_period():
    params = {"r": 0.5, "alpha": 3.0, "a": 0.6, "b": 2.0}
    gg = {"p": 6.0, "q": 4.0, "v": 15.0}
    summary = pd.DataFrame(
        {"person_id": [1, 2], "frequency": [3, 0], "recency": [10.0, 0.0], "T": [12.0, 12.0],
         "monetary_value": [50.0, 0.0], "total_fen": [200, 40]}
    )  # fmt: skip
    out = ltv.clv(params, gg, summary, horizon_units=3, discount_rate=0.1)
    f, r, t = summary["frequency"], summary["recency"], summary["T"]
    e = [ltv.expected_purchases(params, i, f, r, t) for i in range(4)]
    spend = np.array([(6 * (15 + 3 * 50)) / (6 * 3 + 4 - 1), 15 * 6 / (4 - 1)])  # Gamma-Gamma means
    by_hand = sum((e[i] - e[i - 1]) * spend / 1.1**i for i in range(1, 4))
    np.testing.assert_allclose(out["clv_fen"], by_hand)
    np.testing.assert_allclose(out["expected_purchases"], e[3])
    # no discount: value is exactly purchases × spend
    flat = ltv.clv(params, gg, summary, 3, 0.0)
    np.testing.assert_allclose(flat["clv_fen"], e[3] * spend)


def test_bad_inputs_are_named():
    summary = pd.DataFrame(
        {
            "person_id": [1],
            "frequency": [0],
            "recency": [0.0],
            "T": [1.0],
            "monetary_value": [0.0],
            "total_fen": [1],
        }
    )
    with pytest.raises(PredictError, match="discount_rate"):
        ltv.clv({"r": 1, "alpha": 1, "a": 1, "b": 1}, None, summary, 3, 1.5)
    with pytest.raises(PredictError, match="horizon"):
        ltv.clv({"r": 1, "alpha": 1, "a": 1, "b": 1}, None, summary, 0, 0.1)
    with pytest.raises(PredictError, match="at least 10 customers"):
        ltv.fit_bgnbd([0, 1], [0, 1], [2, 2])
    with pytest.raises(PredictError, match="two groups"):
        ltv.ratio_ci(np.array([1.0]), np.array([1.0, 2.0]))


def test_ratio_ci_covers_the_true_ratio():
    rng = np.random.default_rng(0)
    a, b = rng.exponential(180, 800), rng.exponential(100, 900)
    got = ltv.ratio_ci(a, b)
    assert got["multiplier"] == pytest.approx(a.mean() / b.mean())
    assert got["ci_low"] < 1.8 < got["ci_high"]
    assert got["ci_low"] < got["multiplier"] < got["ci_high"]


def _orders_without_referrals(n_persons: int = 60, seed: int = 3) -> pd.DataFrame:
    """A brand with paid orders (many repeat buyers) and no referral at all."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(1, n_persons + 1):
        first = datetime(2026, 1, 1) + pd.Timedelta(days=int(rng.integers(0, 60)))
        for k in range(int(rng.integers(1, 6))):
            ts = first + pd.Timedelta(days=int(k * rng.integers(5, 30)))
            rows.append(
                {"order_id": f"o{p}-{k}", "ts": ts, "person_id": p, "id_type": "phone", "user_id": f"u{p}",
                 "amount_fen": int(rng.integers(2000, 20000)), "currency": "CNY", "status": "paid",
                 "channel": "store", "campaign_id": None, "status_ts": ts, "props": None, "received_at": None,
                 "batch_id": "b", "ingested_at": datetime(2026, 6, 1)}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_ltv_on_orders_without_referrals_fits_and_reports_the_multiplier_unavailable(data_dir):
    """Before: `liebian predict ltv` failed outright ("LTV multiplier needs two groups of at least 2
    customers (got 0 and 0)"). The fit and per-person CLV stand; the multiplier says why it is missing."""
    import json

    from typer.testing import CliRunner

    from liebian.cli import app
    from liebian.engine import warehouse

    orders = _orders_without_referrals()
    with warehouse.connect() as con:
        con.register("incoming", orders)
        con.execute("INSERT INTO orders BY NAME SELECT * FROM incoming")
        con.unregister("incoming")
    res = CliRunner().invoke(app, ["predict", "ltv", "--format", "json", "--top", "100"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    m = out["metrics"]["ltv_multiplier"]
    assert m["available"] is False and m["multiplier"] is None
    assert "two groups of at least 2 customers" in m["reason"]
    assert out["metrics"]["customers"] == orders.person_id.nunique()
    assert len(out["top"]) == orders.person_id.nunique() and all(r["clv_fen"] >= 0 for r in out["top"])
    assert set(out["params"]["bgnbd"]) == {"r", "alpha", "a", "b"}
    table = CliRunner().invoke(app, ["predict", "ltv"])
    assert table.exit_code == 0 and "unavailable" in table.stdout

"""A/B tests: readouts equal statsmodels/scipy, SRM, assignment, power, the fixed-horizon guard."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from liebian.predict import experiments
from liebian.predict.common import PredictError


def _sides(seed=0):
    rng = np.random.default_rng(seed)
    rev_c = np.where(rng.random(5000) < 0.10, rng.gamma(2, 5000, 5000), 0)
    rev_t = np.where(rng.random(5200) < 0.12, rng.gamma(2, 5000, 5200), 0)
    control = {
        "name": "抽奖",
        "units": 5000,
        "conversions": int((rev_c > 0).sum()),
        "revenue": rev_c.tolist(),
    }
    treatment = {
        "name": "限时优惠",
        "units": 5200,
        "conversions": int((rev_t > 0).sum()),
        "revenue": rev_t.tolist(),
    }
    return control, treatment, rev_c, rev_t


def test_readout_equals_statsmodels_and_scipy():
    control, treatment, rev_c, rev_t = _sides()
    got = experiments.readout(control, treatment, weights=[5000, 5200])
    x = np.array([treatment["conversions"], control["conversions"]])
    n = np.array([5200, 5000])
    z, p = proportions_ztest(x, n)
    assert got["z"] == pytest.approx(z) and got["p_value_z"] == pytest.approx(p)
    chi2, p_chi2, _, _ = stats.chi2_contingency(np.array([x, n - x]), correction=False)
    assert got["chi2"] == pytest.approx(chi2) and got["p_value_chi2"] == pytest.approx(p_chi2)
    assert got["chi2"] == pytest.approx(z**2)  # the 2×2 chi-square is the squared z
    lo, hi = confint_proportions_2indep(x[0], n[0], x[1], n[1], method="newcomb")
    assert got["diff_ci"] == pytest.approx([lo, hi])
    welch = stats.ttest_ind(rev_t, rev_c, equal_var=False)
    assert got["revenue"]["t"] == pytest.approx(welch.statistic)
    assert got["revenue"]["p_value"] == pytest.approx(welch.pvalue)
    # Welch by hand: t = Δ / sqrt(s1²/n1 + s2²/n2)
    se = math.sqrt(rev_t.var(ddof=1) / len(rev_t) + rev_c.var(ddof=1) / len(rev_c))
    assert got["revenue"]["t"] == pytest.approx((rev_t.mean() - rev_c.mean()) / se)
    assert got["status"] == "final" and got["decision"] == "限时优惠 wins"
    assert got["srm"]["mismatch"] is False


def test_z_by_hand():
    got = experiments.readout({"units": 1000, "conversions": 100}, {"units": 1000, "conversions": 130})
    pooled = 230 / 2000
    z = (0.13 - 0.10) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert got["z"] == pytest.approx(z)
    assert got["p_value_z"] == pytest.approx(2 * stats.norm.sf(z))


def test_sample_ratio_mismatch_invalidates_the_readout():
    got = experiments.readout({"units": 5000, "conversions": 500}, {"units": 5400, "conversions": 600})
    assert got["srm"]["mismatch"] is True and got["status"] == "invalid"
    assert got["srm"]["p_value"] == pytest.approx(stats.chisquare([5000, 5400]).pvalue)


def test_peeking_guard_holds_the_decision_until_the_planned_sample():
    early = experiments.readout(
        {"units": 300, "conversions": 20}, {"units": 300, "conversions": 45}, planned_n=3000
    )
    assert early["p_value_z"] < 0.05  # would be "significant" if read early
    assert early["status"] == "running" and "3000" in early["decision"]


def test_sample_size_matches_the_normal_approximation():
    n = experiments.sample_size_proportions(0.10, 0.02)
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.10))  # Cohen's h
    by_hand = ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / h) ** 2 * 2
    assert n == math.ceil(by_hand)
    assert experiments.sample_size_means(sd=100, mde=10) > 1500  # ~1571 for d = 0.1
    with pytest.raises(PredictError, match="baseline/mde"):
        experiments.sample_size_proportions(0.99, 0.05)


def test_assignment_is_deterministic_and_follows_the_weights():
    variants = ["限时优惠", "抽奖"]
    first = [experiments.assign("exp1", f"u{i}", variants) for i in range(20000)]
    assert first == [experiments.assign("exp1", f"u{i}", variants) for i in range(20000)]
    counts = Counter(first)
    assert stats.chisquare([counts[v] for v in variants]).pvalue > 0.001
    weighted = Counter(experiments.assign("exp2", f"u{i}", variants, [3, 1]) for i in range(20000))
    assert weighted["限时优惠"] / 20000 == pytest.approx(0.75, abs=0.015)
    other = [experiments.assign("exp3", f"u{i}", variants) for i in range(20000)]
    assert sum(a == b for a, b in zip(first, other, strict=True)) / 20000 == pytest.approx(0.5, abs=0.02)
    with pytest.raises(PredictError, match="at least two"):
        experiments.assign("e", "u", ["only"])


def test_unit_rows_with_problems_name_the_row():
    ok = [{"unit_id": "1", "variant": "a", "converted": "1", "revenue_fen": "100"},
          {"unit_id": "2", "variant": "b", "converted": "0", "revenue_fen": ""}]  # fmt: skip
    sides = experiments.summarise_units(ok, ["a", "b"])
    assert sides["a"]["conversions"] == 1 and sides["b"]["revenue"] == [0.0]
    with pytest.raises(PredictError, match="row 3: unit_id '1' appears twice"):
        experiments.summarise_units([*ok, {"unit_id": "1", "variant": "a", "converted": "1"}])
    with pytest.raises(PredictError, match="row 1: converted must be"):
        experiments.summarise_units([{"unit_id": "1", "variant": "a", "converted": "yes"}])
    with pytest.raises(PredictError, match="row 1: revenue_fen 'x'"):
        experiments.summarise_units([{"unit_id": "1", "variant": "a", "converted": "1", "revenue_fen": "x"}])
    with pytest.raises(PredictError, match=r"no rows for \['c'\]"):
        experiments.summarise_units(ok, ["a", "c"])
    with pytest.raises(PredictError, match="control: need units"):
        experiments.readout({"units": 10, "conversions": 11}, {"units": 10, "conversions": 1})


def test_cli_readout_plan_and_assign(data_dir, tmp_path):
    import csv
    import json

    from typer.testing import CliRunner

    from liebian.cli import app as cli_app

    path = tmp_path / "units.csv"
    rows = [(f"u{i}", "抽奖", int(i % 10 == 0), 1000 if i % 10 == 0 else 0) for i in range(2000)]
    rows += [(f"v{i}", "限时优惠", int(i % 7 == 0), 900 if i % 7 == 0 else 0) for i in range(2000)]
    with path.open("w", encoding="utf-8-sig", newline="") as fh:  # Excel-style BOM
        w = csv.writer(fh)
        w.writerow(["unit_id", "variant", "converted", "revenue_fen"])
        w.writerows(rows)
    runner = CliRunner()
    r = runner.invoke(cli_app, ["predict", "ab-readout", str(path), "--control", "抽奖", "--treatment", "限时优惠",
                                "--planned-n", "1500", "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    z, p = proportions_ztest([286, 200], [2000, 2000])
    assert out["z"] == pytest.approx(z) and out["p_value_z"] == pytest.approx(p)
    assert out["status"] == "final" and out["decision"] == "限时优惠 wins"
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write("u5,抽奖,maybe,0\n")
    r = runner.invoke(
        cli_app, ["predict", "ab-readout", str(path), "--control", "抽奖", "--treatment", "限时优惠"]
    )
    assert r.exit_code == 2 and "units.csv: line 4002: unit_id 'u5' appears twice" in " ".join(
        r.output.split()
    )
    r = runner.invoke(
        cli_app, ["predict", "ab-plan", "--baseline", "0.1", "--mde", "0.02", "--format", "json"]
    )
    assert json.loads(r.stdout)["n_per_variant"] == experiments.sample_size_proportions(0.1, 0.02)
    r = runner.invoke(
        cli_app,
        ["predict", "ab-assign", "--experiment", "e1", "--unit", "a", "--unit", "b", "--format", "json"],
    )
    assert [x["variant"] for x in json.loads(r.stdout)] == [
        experiments.assign("e1", u, ["限时优惠", "抽奖"]) for u in "ab"
    ]

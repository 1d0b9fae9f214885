"""Segmentation: k chosen by silhouette on data with known clusters; the sample-size guard; RFM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, silhouette_score

from liebian.predict import segment
from liebian.predict.common import PredictError


@pytest.mark.parametrize("k_true", [3, 5])
def test_silhouette_picks_the_true_number_of_clusters(k_true):
    X, y = make_blobs(n_samples=1500, centers=k_true, n_features=4, cluster_std=0.6, random_state=k_true)
    got = segment.choose_k(X, range(2, 9))
    assert got["k"] == k_true
    assert adjusted_rand_score(y, got["model"].labels_) > 0.99
    assert got["silhouette"][k_true] == pytest.approx(silhouette_score(X, got["model"].labels_))
    assert got["silhouette"][k_true] == max(got["silhouette"].values())


def _personas(n_each=400, seed=0):
    """Three kinds of users with known traits: dormant, active non-buyers, high-value buyers."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, (rec, orders, spend, events) in {
        "dormant": (60, 0, 0, 0),
        "active": (2, 0, 0, 30),
        "valuable": (3, 6, 90000, 25),
    }.items():
        for _ in range(n_each):
            rows.append({"kind": kind, "recency_days": rng.gamma(20, rec / 20) if rec else 0,
                         "orders_total": rng.poisson(orders), "spend_total_fen": rng.gamma(20, spend / 20) if spend else 0,
                         "events_30d": rng.poisson(events)})  # fmt: skip
    df = pd.DataFrame(rows)
    df.insert(0, "person_id", np.arange(len(df)))
    return df


def test_profiles_recover_known_personas_with_readable_names():
    df = _personas()
    out = segment.kmeans_profiles(df, ["recency_days", "orders_total", "spend_total_fen", "events_30d"])
    assert out["k"] == 3
    assert adjusted_rand_score(df["kind"], out["assignments"]["cluster"]) > 0.95
    names = {p["name"] for p in out["profiles"]}
    assert any("高价值" in n for n in names) and any("沉默" in n for n in names)
    valuable = max(out["profiles"], key=lambda p: p["mean_spend_total_fen"])
    assert valuable["size"] == pytest.approx(400, abs=10)
    assert sum(p["share"] for p in out["profiles"]) == pytest.approx(1)
    # every name reads back as its trait codes (the console names them in its language)
    assert "high_value" in segment.trait_codes(valuable["name"])
    assert all(segment.trait_codes(n) for n in names) and segment.trait_codes("某个名字") is None


def test_refuses_below_1000_samples_unless_allowed():
    df = _personas(n_each=300)  # 900
    with pytest.raises(PredictError, match=r"at least 1000 samples .*\(got 900\)"):
        segment.kmeans_profiles(df, ["recency_days", "orders_total"])
    with pytest.warns(UserWarning, match="only 900 samples"):
        out = segment.kmeans_profiles(df, ["recency_days", "orders_total"], allow_small=True)
    assert out["warning"]
    with pytest.raises(PredictError, match="unknown feature"):
        segment.kmeans_profiles(df, ["recency", "orders_total"])


def test_rfm_scores_are_quintiles_best_is_five():
    df = pd.DataFrame({"person_id": range(10), "recency_days": range(10), "orders_total": range(10),
                       "spend_total_fen": [x * 100 for x in range(10)]})  # fmt: skip
    out = segment.rfm_scores(df).set_index("person_id")
    assert out.loc[0, "r_score"] == 5 and out.loc[9, "r_score"] == 1  # most recent is best
    assert out.loc[9, "f_score"] == 5 and out.loc[0, "m_score"] == 1
    assert out.loc[9, "rfm"] == "155"
    assert sorted(out["f_score"].value_counts().tolist()) == [2, 2, 2, 2, 2]

"""Segmentation: RFM scores and K-Means profiles on standardised features, k by silhouette."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import
from liebian.predict.common import PredictError, single_thread

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import sklearn.cluster as sk_cluster
    import sklearn.metrics as sk_metrics
    import sklearn.preprocessing as sk_preprocessing
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")
    pd = lazy_import("pandas")
    sk_cluster = lazy_import("sklearn.cluster")
    sk_metrics = lazy_import("sklearn.metrics")
    sk_preprocessing = lazy_import("sklearn.preprocessing")

MIN_SAMPLES = 1000  # the source plan: K-Means on at least 1000 users (001 §2.2.3)
SILHOUETTE_SAMPLE = 5000  # silhouette is O(n²): score a fixed random sample beyond this


def rfm_scores(
    df: pd.DataFrame, recency="recency_days", frequency="orders_total", monetary="spend_total_fen"
):
    """1–5 quintile scores (5 = best: most recent, most frequent, highest spend) and the RFM code."""
    out = pd.DataFrame({"person_id": df["person_id"].to_numpy()})
    for col, letter, ascending in ((recency, "r", False), (frequency, "f", True), (monetary, "m", True)):
        ranks = df[col].rank(method="first", ascending=ascending, pct=True).to_numpy()
        out[f"{letter}_score"] = np.clip(np.ceil(ranks * 5), 1, 5).astype(int)
    out["rfm"] = out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
    return out


def choose_k(X: np.ndarray, k_range=range(2, 9), seed: int = 0, allow_small: bool = False) -> dict:
    """K-Means for each k; the k with the highest silhouette coefficient wins."""
    n = len(X)
    warning = None
    if n < MIN_SAMPLES:
        if not allow_small:
            raise PredictError(
                f"K-Means needs at least {MIN_SAMPLES} samples for stable profiles (got {n}); "
                "pass allow_small to run anyway"
            )
        warning = f"only {n} samples (< {MIN_SAMPLES}): clusters may not be stable"
        warnings.warn(warning, stacklevel=2)
    ks = [k for k in k_range if 2 <= k < n]
    if not ks:
        raise PredictError(f"k_range: no k between 2 and {n - 1} samples")
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, SILHOUETTE_SAMPLE, replace=False) if n > SILHOUETTE_SAMPLE else np.arange(n)
    scores, models = {}, {}
    for k in ks:
        with single_thread():
            km = sk_cluster.KMeans(n_clusters=k, n_init=10, random_state=seed).fit(X)
        labels = km.labels_
        if len(np.unique(labels[sample])) < 2:
            continue
        scores[k] = float(sk_metrics.silhouette_score(X[sample], labels[sample]))
        models[k] = km
    if not scores:
        raise PredictError("K-Means found fewer than two distinct clusters for every k")
    best = max(scores, key=scores.__getitem__)
    return {"k": best, "silhouette": scores, "model": models[best], "warning": warning}


# A segment's traits by code → their part of the stored (bilingual) name; the console shows each
# code's name in its language (web messages `seg.trait.<code>`).
TRAITS = {
    "high_value": "高价值 high-value",
    "dormant": "沉默 dormant",
    "active": "活跃 active",
    "sharers": "爱分享 sharers",
    "newcomers": "新客 newcomers",
    "referred": "裂变 referred",
    "typical": "普通 typical",
}
_TRAIT_OF = {text: code for code, text in TRAITS.items()}


def _name(z: pd.Series) -> str:
    """A readable name from the standardised centre: the strongest traits first."""
    codes = []
    if z.get("spend_total_fen", 0) > 0.8 or z.get("orders_total", 0) > 0.8:
        codes.append("high_value")
    if z.get("recency_days", 0) > 0.8:
        codes.append("dormant")
    elif z.get("events_30d", 0) > 0.5 or z.get("active_days_30d", 0) > 0.5:
        codes.append("active")
    if z.get("invites_90d", 0) > 0.8 or z.get("shares_30d", 0) > 0.8:
        codes.append("sharers")
    if z.get("tenure_days", 0) < -0.8:
        codes.append("newcomers")
    if z.get("referred", 0) > 0.8:
        codes.append("referred")
    return " · ".join(TRAITS[c] for c in codes or ["typical"])


def trait_codes(name: str) -> list[str] | None:
    """The trait codes of a segment name `_name` gave (stored fits too); None for another name."""
    codes = [_TRAIT_OF.get(part) for part in str(name).split(" · ")]
    return None if None in codes else [c for c in codes if c is not None]


def kmeans_profiles(
    df: pd.DataFrame, columns: list[str], k_range=range(2, 9), seed: int = 0, allow_small: bool = False
) -> dict:
    """Cluster persons on standardised `columns`; profile each cluster in original units."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PredictError(f"columns: unknown feature(s) {missing}; known: {sorted(df.columns)}")
    raw = df[columns].astype(float)
    X = sk_preprocessing.StandardScaler().fit_transform(
        np.log1p(raw.clip(lower=0))
    )  # heavy-tailed counts and money
    chosen = choose_k(X, k_range, seed, allow_small)
    labels = chosen["model"].labels_
    centres = pd.DataFrame(X, columns=columns).groupby(labels).mean()
    profiles = []
    for c in sorted(np.unique(labels)):
        members = raw[labels == c]
        profiles.append(
            {"cluster": int(c), "name": _name(centres.loc[c]), "size": int(len(members)),
             "share": float(len(members) / len(raw)), **{f"mean_{col}": float(members[col].mean()) for col in columns}}
        )  # fmt: skip
    return {
        "k": chosen["k"],
        "silhouette": chosen["silhouette"],
        "warning": chosen["warning"],
        "profiles": profiles,
        "assignments": pd.DataFrame({"person_id": df["person_id"].to_numpy(), "cluster": labels}),
    }

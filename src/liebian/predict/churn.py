"""Churn risk: gradient boosting on behaviour + RFM features taken only from before a cutoff.

Label: a person active before the cutoff has no activity (event or paid order) in the `window_days`
after it. Validation is a time split: the model is trained at cutoff t0 (labels from (t0, t1]) and
judged at t1 = t0 + window (labels from (t1, t1 + window]) — a later slice it never saw. Every
feature query filters `ts <= cutoff`, so rows after the cutoff cannot change a feature (tested).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import
from liebian.predict.common import PredictError, aggregate_row, single_thread

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
    import sklearn.calibration as sk_calibration
    import sklearn.ensemble as sk_ensemble
    import sklearn.inspection as sk_inspection
    import sklearn.metrics as sk_metrics
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    np = lazy_import("numpy")
    pd = lazy_import("pandas")
    sk_calibration = lazy_import("sklearn.calibration")
    sk_ensemble = lazy_import("sklearn.ensemble")
    sk_inspection = lazy_import("sklearn.inspection")
    sk_metrics = lazy_import("sklearn.metrics")

FEATURES = (
    "recency_days",
    "tenure_days",
    "events_7d",
    "events_30d",
    "events_90d",
    "active_days_30d",
    "channels_90d",
    "checkins_30d",
    "coupons_30d",
    "shares_30d",
    "invites_90d",
    "orders_90d",
    "spend_90d_fen",
    "orders_total",
    "spend_total_fen",
    "order_recency_days",
    "refunds_total",
    "referred",
)
FEATURE_LABELS = {
    "recency_days": "久未活跃 days since last activity",
    "tenure_days": "用户时长 tenure",
    "events_7d": "近7天互动 events in 7 days",
    "events_30d": "近30天互动 events in 30 days",
    "events_90d": "近90天互动 events in 90 days",
    "active_days_30d": "近30天活跃天数 active days in 30 days",
    "channels_90d": "触点渠道数 channels used",
    "checkins_30d": "签到 check-ins",
    "coupons_30d": "领券 coupons claimed",
    "shares_30d": "分享 shares",
    "invites_90d": "邀请 invites sent",
    "orders_90d": "近90天订单 orders in 90 days",
    "spend_90d_fen": "近90天消费 spend in 90 days",
    "orders_total": "累计订单 orders",
    "spend_total_fen": "累计消费 spend",
    "order_recency_days": "距上次购买 days since last order",
    "refunds_total": "退款 refunds",
    "referred": "裂变获客 referred",
}

FEATURE_SQL = """
WITH ev AS (SELECT * FROM events WHERE ts <= $cutoff),
od AS (SELECT * FROM orders WHERE ts <= $cutoff),
people AS (
    SELECT person_id FROM ev UNION SELECT person_id FROM od WHERE status = 'paid'
),
e AS (
    SELECT person_id,
        max(ts) AS last_ts, min(ts) AS first_ts,
        count(*) FILTER (WHERE ts > $cutoff - INTERVAL 7 DAY) AS events_7d,
        count(*) FILTER (WHERE ts > $cutoff - INTERVAL 30 DAY) AS events_30d,
        count(*) FILTER (WHERE ts > $cutoff - INTERVAL 90 DAY) AS events_90d,
        count(DISTINCT CAST(ts AS DATE)) FILTER (WHERE ts > $cutoff - INTERVAL 30 DAY) AS active_days_30d,
        count(DISTINCT channel) FILTER (WHERE ts > $cutoff - INTERVAL 90 DAY) AS channels_90d,
        count(*) FILTER (WHERE event = 'checkin' AND ts > $cutoff - INTERVAL 30 DAY) AS checkins_30d,
        count(*) FILTER (WHERE event = 'coupon_claim' AND ts > $cutoff - INTERVAL 30 DAY) AS coupons_30d,
        count(*) FILTER (WHERE event = 'share' AND ts > $cutoff - INTERVAL 30 DAY) AS shares_30d,
        count(*) FILTER (WHERE event = 'invite_share' AND ts > $cutoff - INTERVAL 90 DAY) AS invites_90d
    FROM ev GROUP BY person_id
),
o AS (
    SELECT person_id,
        max(ts) FILTER (WHERE status = 'paid') AS last_order_ts,
        min(ts) AS first_order_ts,
        count(*) FILTER (WHERE status = 'paid' AND ts > $cutoff - INTERVAL 90 DAY) AS orders_90d,
        coalesce(sum(amount_fen) FILTER (WHERE status = 'paid' AND ts > $cutoff - INTERVAL 90 DAY), 0)
            AS spend_90d_fen,
        count(*) FILTER (WHERE status = 'paid') AS orders_total,
        coalesce(sum(amount_fen) FILTER (WHERE status = 'paid'), 0) AS spend_total_fen,
        count(*) FILTER (WHERE status = 'refunded') AS refunds_total
    FROM od GROUP BY person_id
),
r AS (SELECT DISTINCT invitee_person_id AS person_id FROM referral_edges WHERE ts <= $cutoff)
SELECT p.person_id,
    date_diff('second', greatest(coalesce(e.last_ts, o.last_order_ts), coalesce(o.last_order_ts, e.last_ts)),
              $cutoff) / 86400.0 AS recency_days,
    date_diff('second', least(coalesce(e.first_ts, o.first_order_ts), coalesce(o.first_order_ts, e.first_ts)),
              $cutoff) / 86400.0 AS tenure_days,
    coalesce(e.events_7d, 0) AS events_7d, coalesce(e.events_30d, 0) AS events_30d,
    coalesce(e.events_90d, 0) AS events_90d, coalesce(e.active_days_30d, 0) AS active_days_30d,
    coalesce(e.channels_90d, 0) AS channels_90d, coalesce(e.checkins_30d, 0) AS checkins_30d,
    coalesce(e.coupons_30d, 0) AS coupons_30d, coalesce(e.shares_30d, 0) AS shares_30d,
    coalesce(e.invites_90d, 0) AS invites_90d,
    coalesce(o.orders_90d, 0) AS orders_90d, coalesce(o.spend_90d_fen, 0) AS spend_90d_fen,
    coalesce(o.orders_total, 0) AS orders_total, coalesce(o.spend_total_fen, 0) AS spend_total_fen,
    coalesce(date_diff('second', o.last_order_ts, $cutoff) / 86400.0, 9999) AS order_recency_days,
    coalesce(o.refunds_total, 0) AS refunds_total,
    CASE WHEN r.person_id IS NULL THEN 0 ELSE 1 END AS referred
FROM people p LEFT JOIN e USING (person_id) LEFT JOIN o USING (person_id) LEFT JOIN r USING (person_id)
ORDER BY p.person_id
"""


def features(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> pd.DataFrame:
    """One row per person seen at or before `cutoff`; every value uses rows with ts <= cutoff only."""
    df = con.execute(FEATURE_SQL, {"cutoff": cutoff}).df()
    for col in FEATURES:
        df[col] = df[col].astype(float)
    return df


def labels(
    con: duckdb.DuckDBPyConnection, persons: pd.Series, cutoff: datetime, window_days: int
) -> np.ndarray:
    """1 = churned: no event and no paid order in (cutoff, cutoff + window]."""
    active = con.execute(
        """
        SELECT DISTINCT person_id FROM events WHERE ts > $c AND ts <= $c + to_days($w)
        UNION SELECT DISTINCT person_id FROM orders WHERE status = 'paid' AND ts > $c AND ts <= $c + to_days($w)
        """,
        {"c": cutoff, "w": window_days},
    ).df()["person_id"]
    return (~persons.isin(set(active))).to_numpy().astype(int)


def data_end(con: duckdb.DuckDBPyConnection) -> datetime:
    end = aggregate_row(con, "SELECT greatest((SELECT max(ts) FROM events), (SELECT max(ts) FROM orders))")[0]
    if end is None:
        raise PredictError("events/orders: the warehouse is empty; churn needs activity")
    return end


def _model(seed: int) -> sk_ensemble.HistGradientBoostingClassifier:
    # shallow, regularised trees: a few thousand persons per slice, and probabilities must stay calibrated
    return sk_ensemble.HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.03,
        max_depth=3,
        min_samples_leaf=50,
        l2_regularization=1.0,
        random_state=seed,
    )


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    prob_true, prob_pred = sk_calibration.calibration_curve(y, p, n_bins=bins, strategy="quantile")
    return [{"predicted": float(a), "observed": float(b)} for a, b in zip(prob_pred, prob_true, strict=True)]


def fit_churn(con: duckdb.DuckDBPyConnection, window_days: int = 30, seed: int = 0, steps=None) -> dict:
    """Train at t0, validate on the later slice t1, refit at t1 for scoring now; metrics and model."""
    if window_days < 1:
        raise PredictError(f"window_days: must be at least 1 (got {window_days})")
    end = data_end(con)
    t1 = end - timedelta(days=window_days)
    t0 = t1 - timedelta(days=window_days)
    say = steps.step if steps else (lambda _label: None)
    train = features(con, t0)
    y_train = labels(con, train["person_id"], t0, window_days)
    test = features(con, t1)
    y_test = labels(con, test["person_id"], t1, window_days)
    say("features")
    for name, y in (("training slice", y_train), ("validation slice", y_test)):
        if len(y) < 50 or y.min() == y.max():
            raise PredictError(
                f"{name}: needs at least 50 persons with both churned and retained ones (got {len(y)} persons, "
                f"{int(y.sum())} churned); use a shorter window_days or more data"
            )
    X_train, X_test = train[list(FEATURES)].to_numpy(), test[list(FEATURES)].to_numpy()
    model = _model(seed).fit(X_train, y_train)
    say("fit")
    p_test = model.predict_proba(X_test)[:, 1]
    with single_thread():
        imp = sk_inspection.permutation_importance(
            model, X_test, y_test, scoring="roc_auc", n_repeats=3, random_state=seed
        )
    say("validate")
    metrics = {
        "auc": float(sk_metrics.roc_auc_score(y_test, p_test)),
        "brier": float(sk_metrics.brier_score_loss(y_test, p_test)),
        "base_rate": float(y_test.mean()),
        "brier_baseline": float(sk_metrics.brier_score_loss(y_test, np.full(len(y_test), y_train.mean()))),
        "reliability": reliability(y_test, p_test),
        # expected calibration error over the (equal-count) reliability bins
        "ece": float(np.mean([abs(b["predicted"] - b["observed"]) for b in reliability(y_test, p_test)])),
        "n_train": len(y_train),
        "n_test": len(y_test),
        "train_cutoff": t0.isoformat(),
        "test_cutoff": t1.isoformat(),
        "window_days": window_days,
        "importance": [
            {"feature": f, "auc_drop": drop}
            for f, drop in sorted(
                ((f, float(m)) for f, m in zip(FEATURES, imp.importances_mean, strict=True)),
                key=lambda feature_drop: -feature_drop[1],
            )
        ],
    }
    # the scoring model learns from the most recent labelled slice
    final = _model(seed).fit(X_test, y_test)
    reference = test[list(FEATURES)].median().to_dict()
    say("refit")
    return {"model": final, "reference": reference, "metrics": metrics, "scoring_cutoff": end}


def risk_with_reasons(model, reference: dict, feats: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Risk per person and the features that raise it most.

    A feature's contribution is the drop in predicted risk when that one value is replaced by the
    population median: what this person's value adds compared with a typical person.
    """
    X = feats[list(FEATURES)].to_numpy(dtype=float)
    with single_thread():
        risk = model.predict_proba(X)[:, 1]
        contrib = np.zeros((len(X), len(FEATURES)))
        for j, name in enumerate(FEATURES):
            Xj = X.copy()
            Xj[:, j] = reference[name]
            contrib[:, j] = risk - model.predict_proba(Xj)[:, 1]
    order = np.argsort(-contrib, axis=1)[:, :top]
    reasons = [
        [
            {"feature": FEATURES[j], "label": FEATURE_LABELS[FEATURES[j]], "value": float(X[i, j]),
             "contribution": round(float(contrib[i, j]), 4)}
            for j in order[i] if contrib[i, j] > 0
        ]
        for i in range(len(X))
    ]  # fmt: skip
    return pd.DataFrame({"person_id": feats["person_id"].to_numpy(), "risk": risk, "reasons": reasons})

"""Predict service: open the warehouse, fit, store the model with its snapshot and metrics.

Every `fit_*` shows Rich progress when `progress=True` (the CLI) and returns a JSON-ready dict with
the stored model's manifest entry. Other domains (tags, automation, reports) call these functions.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liebian.analytics.common import MetricConfig, analysable_views, zone_offset_seconds
from liebian.cells import safe_cell
from liebian.engine import warehouse
from liebian.lazy import lazy_import
from liebian.predict import attribution, churn, lifecycle, ltv, segment, simulate
from liebian.predict import store as model_store
from liebian.predict.common import (
    PredictError,
    aggregate_row,
    data_snapshot,
    fit_progress,
    jsonable,
    single_thread,
)

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    np = lazy_import("numpy")
    pd = lazy_import("pandas")

__all__ = [
    "PredictError",
    "fit_ltv",
    "fit_lifecycle",
    "fit_churn",
    "churn_risk",
    "fit_segments",
    "attribution_report",
    "touch_paths",
    "calibrate_growth",
    "growth_projection",
    "person_features",
    "churn_scores",
]


@contextmanager
def _reading() -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse for a model: its timed tables hold only analysable rows (a year-1 time
    stored before the edges checked times would overflow every period computation)."""
    with warehouse.connect(read_only=True) as con:
        analysable_views(con)
        yield con


def _new_persons(con: duckdb.DuckDBPyConnection, new_after_days: float) -> pd.DataFrame:
    """Persons acquired during the data, and whether by referral.

    Acquired = has a `signup` event; without sign-up events in the data, first seen at least
    `new_after_days` after the data starts (existing members are active from the start).
    """
    has_signups = aggregate_row(con, "SELECT count(*) FROM events WHERE event = 'signup'")[0] > 0
    acquired = (
        "SELECT DISTINCT person_id FROM events WHERE event = 'signup'"
        if has_signups
        else """
        SELECT person_id FROM (
            SELECT person_id, min(ts) AS first_ts FROM (
                SELECT person_id, ts FROM events UNION ALL SELECT person_id, ts FROM orders
            ) GROUP BY person_id
        ) WHERE first_ts >= (SELECT min(ts) FROM events) + to_seconds(CAST($days * 86400 AS BIGINT))
        """
    )
    return con.execute(
        f"""
        SELECT person_id, person_id IN (SELECT invitee_person_id FROM referral_edges) AS referred
        FROM ({acquired}) ORDER BY person_id
        """,
        {"days": new_after_days} if not has_signups else {},
    ).df()


def fit_ltv(
    horizon_days: int = 180,
    discount_rate_annual: float = 0.10,
    unit_days: float = 7.0,
    new_after_days: float = 7.0,
    progress: bool = False,
    store: bool = True,
) -> dict[str, Any]:
    """BG/NBD + Gamma-Gamma on the warehouse's paid orders; per-person CLV; the LTV multiplier.

    The multiplier compares users acquired by referral with other users acquired over the same
    time (existing members are left out): mean value per person (paid so far + predicted for the horizon, 0 for non-buyers),
    with a bootstrap 95 % interval; unavailable, with the reason, when either group is too small.
    """
    if horizon_days < unit_days:
        raise PredictError(f"horizon_days: must be at least one unit ({unit_days} days) (got {horizon_days})")
    if not 0 <= discount_rate_annual < 10:
        raise PredictError(f"discount_rate_annual: must be in [0, 10) (got {discount_rate_annual})")
    with fit_progress("LTV BG/NBD + Gamma-Gamma", 4, progress) as steps:
        # read, then let the warehouse go: the fit takes a while and other work needs the warehouse
        with _reading() as con:
            snap = data_snapshot(con)
            summary = ltv.rfm_summary(con, unit_days=unit_days)
            new = _new_persons(con, new_after_days)
            channels = primary_channels(con, churn.data_end(con))
        steps.step("RFM summary")
        bg, bg_se = ltv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
        steps.step("BG/NBD")
        try:
            gg = ltv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
        except PredictError:
            gg = None  # too few repeat buyers: the mean spend stands in
        steps.step("Gamma-Gamma")
        per_unit = (1 + discount_rate_annual) ** (unit_days / 365.0) - 1
        horizon = max(1, round(horizon_days / unit_days))
        fallback = float(summary["total_fen"].sum() / max(1, (summary["frequency"] + 1).sum()))
        values = ltv.clv(bg, gg, summary, horizon, per_unit, fallback)
        values = with_channel(values, channels)
        merged = new.merge(values, on="person_id", how="left").fillna(
            {"clv_fen": 0.0, "historical_fen": 0.0, "expected_purchases": 0.0}
        )
        merged["value_fen"] = merged["clv_fen"] + merged["historical_fen"]
        ref = merged["referred"].astype(bool)
        multiplier = _multiplier(
            merged.loc[ref, "value_fen"].to_numpy(), merged.loc[~ref, "value_fen"].to_numpy()
        )
        steps.step("CLV")
    params = {
        "bgnbd": bg,
        "gamma_gamma": gg,
        "unit_days": unit_days,
        "horizon_units": horizon,
        "discount_rate_per_unit": per_unit,
        "fallback_spend_fen": fallback,
    }
    metrics = {
        "customers": len(summary),
        "repeat_customers": int((summary["frequency"] > 0).sum()),
        "bgnbd_se": bg_se,
        "mean_clv_fen": float(values["clv_fen"].mean()),
        "ltv_multiplier": multiplier,
    }
    entry = model_store.save_model("ltv", params, metrics, snap, artefact=values) if store else None
    return jsonable({"model": entry, "params": params, "metrics": metrics}) | {"per_person": values}


def _multiplier(referred: Any, others: Any) -> dict[str, Any]:
    """The LTV multiplier with its interval, or `available: False` with the reason when a group is too
    small or worth nothing (the fit and per-person CLV stand regardless)."""
    try:
        return {"available": True, "reason": None, **ltv.ratio_ci(referred, others)}
    except PredictError as exc:
        return {
            "available": False,
            "reason": exc.message,
            "multiplier": None,
            "ci_low": None,
            "ci_high": None,
            "n_referred": len(referred),
            "n_other": len(others),
        }


def fit_lifecycle(
    period_days: int = 14,
    loyal_orders: int = 2,
    loyal_periods: int = 3,
    churn_periods: int = 3,
    periods: int = 6,
    discount_rate: float = 0.0,
    progress: bool = False,
    store: bool = True,
) -> dict[str, Any]:
    cfg = lifecycle.LifecycleConfig(period_days, loyal_orders, loyal_periods, churn_periods)
    with (
        fit_progress("Lifecycle Markov chain", 2, progress) as steps,
        _reading() as con,
    ):
        snap = data_snapshot(con)
        steps.step("states")
        result = lifecycle.fit_lifecycle(con, cfg, periods, discount_rate)
        steps.step("transitions")
    states = result.pop("person_states")
    metrics = {
        "persons": len(states),
        "current": result["current"],
        "periods_observed": result["periods_observed"],
    }
    entry = model_store.save_model("lifecycle", result, metrics, snap) if store else None
    return jsonable({"model": entry, **result})


def fit_churn(
    window_days: int = 30, seed: int = 0, progress: bool = False, store: bool = True
) -> dict[str, Any]:
    """Fit, validate on a later slice, store; the stored artefact scores persons later."""
    with (
        fit_progress("Churn risk (gradient boosting)", 4, progress) as steps,
        _reading() as con,
    ):
        snap = data_snapshot(con)
        with single_thread():
            result = churn.fit_churn(con, window_days, seed, steps)
    params = {
        "window_days": window_days,
        "features": list(churn.FEATURES),
        "scoring_cutoff": result["scoring_cutoff"],
    }
    artefact = {"model": result["model"], "reference": result["reference"]}
    entry = (
        model_store.save_model("churn", params, result["metrics"], snap, artefact=artefact) if store else None
    )
    return jsonable({"model": entry, "params": params, "metrics": result["metrics"]})


def churn_risk(
    model_id: str | None = None,
    person_ids: Sequence[int] | None = None,
    at: datetime | None = None,
    top: int = 3,
) -> list[dict[str, Any]]:
    """Risk per person (highest first) with its main reasons, from a stored churn model."""
    entry = model_store.get_model(model_id, kind="churn")
    art = model_store.load_artefact(entry)
    with _reading() as con:
        feats = churn.features(con, at or churn.data_end(con))
    if person_ids is not None:
        wanted = set(int(p) for p in person_ids)
        unknown = wanted - set(feats["person_id"].tolist())
        if unknown:
            raise PredictError(f"person_id: {sorted(unknown)[:5]} not found in the warehouse")
        feats = feats[feats["person_id"].isin(wanted)]
    risk = churn.risk_with_reasons(art["model"], art["reference"], feats, top).sort_values(
        "risk", ascending=False
    )
    return jsonable([{**r, "model_id": entry["id"]} for r in risk.to_dict("records")])


def fit_segments(
    columns: Sequence[str] = ("recency_days", "orders_total", "spend_total_fen", "events_30d", "invites_90d"),
    k_min: int = 2,
    k_max: int = 8,
    allow_small: bool = False,
    export: Path | None = None,
    seed: int = 0,
    progress: bool = False,
    store: bool = True,
) -> dict[str, Any]:
    """RFM scores + K-Means profiles (k by silhouette) on the churn feature set at the latest time."""
    if k_min < 2 or k_max < k_min:
        raise PredictError(f"k range: need 2 <= k_min <= k_max (got {k_min}..{k_max})")
    with (
        fit_progress("Segmentation (RFM + K-Means)", 3, progress) as steps,
        _reading() as con,
    ):
        snap = data_snapshot(con)
        end = churn.data_end(con)
        feats = churn.features(con, end)
        channels = primary_channels(con, end)
        steps.step("features")
    rfm = segment.rfm_scores(feats)
    result = segment.kmeans_profiles(feats, list(columns), range(k_min, k_max + 1), seed, allow_small)
    steps.step("k-means")
    table = rfm.merge(result["assignments"], on="person_id")
    names = {p["cluster"]: p["name"] for p in result["profiles"]}
    table["cluster_name"] = table["cluster"].map(names)
    table = with_channel(table, channels)
    if export is not None:
        export = Path(export)
        export.parent.mkdir(parents=True, exist_ok=True)
        text = table.select_dtypes(include="object").columns
        table.assign(**{c: table[c].map(safe_cell) for c in text}).to_csv(
            export, index=False, quoting=csv.QUOTE_MINIMAL, encoding="utf-8-sig"
        )  # Excel reads BOM UTF-8
    steps.step("profiles")
    params = {"columns": list(columns), "k": result["k"], "seed": seed}
    metrics = {
        "silhouette": result["silhouette"],
        "profiles": result["profiles"],
        "warning": result["warning"],
    }
    entry = model_store.save_model("segments", params, metrics, snap, artefact=table) if store else None
    return jsonable(
        {
            "model": entry,
            "params": params,
            "k": result["k"],
            **metrics,
            "export": str(export) if export else None,
        }
    ) | {"assignments": table}


def touch_paths(
    con: duckdb.DuckDBPyConnection,
    by: str = "channel",
    lookback_days: int = 30,
    start: datetime | None = None,
    end: datetime | None = None,
    person_ids: Sequence[int] | None = None,
) -> list[attribution.Path]:
    """Touchpoint paths: events before each person's first paid order (within the lookback) or all events.

    `start`/`end` bound the conversions (paid orders); `person_ids` keeps only those persons' paths.
    """
    if by not in ("channel", "campaign"):
        raise PredictError(f"by: must be 'channel' or 'campaign' (got {by!r})")
    col = "channel" if by == "channel" else "coalesce(campaign_id, '(none)')"
    persons = "" if person_ids is None else "AND e.person_id IN (SELECT unnest(CAST(? AS BIGINT[])))"
    df = con.execute(
        f"""
        WITH conv AS (
            SELECT person_id, min(ts) AS conv_ts, arg_min(amount_fen, ts) AS revenue
            FROM orders WHERE status = 'paid' AND ts >= coalesce(CAST(? AS TIMESTAMP), ts)
              AND ts <= coalesce(CAST(? AS TIMESTAMP), ts)
            GROUP BY person_id
        ), ends AS (
            SELECT person_id, max(ts) AS end_ts FROM events GROUP BY person_id
        )
        SELECT e.person_id, {col} AS touch, e.ts, c.conv_ts, c.revenue, n.end_ts
        FROM events e JOIN ends n USING (person_id) LEFT JOIN conv c USING (person_id)
        WHERE e.event NOT IN ('signup', 'login')
          AND e.ts <= coalesce(c.conv_ts, n.end_ts)
          AND e.ts >= coalesce(c.conv_ts, n.end_ts) - to_days(CAST(? AS INTEGER))
          {persons}
        ORDER BY e.person_id, e.ts, e.event_id
        """,
        [start, end, lookback_days] + ([] if person_ids is None else [[int(p) for p in person_ids]]),
    ).df()
    if df.empty:
        return []
    pid = df["person_id"].to_numpy()
    touch = df["touch"].to_numpy(dtype=object)
    ts = df["ts"].to_numpy(dtype="datetime64[us]")
    converted = df["conv_ts"].notna().to_numpy()
    ref_ts = np.where(
        converted,
        df["conv_ts"].to_numpy(dtype="datetime64[us]"),
        df["end_ts"].to_numpy(dtype="datetime64[us]"),
    )
    revenue = df["revenue"].fillna(0).to_numpy(dtype=float)
    age_hours = (ref_ts - ts) / np.timedelta64(1, "h")
    starts = np.r_[0, np.flatnonzero(pid[1:] != pid[:-1]) + 1]
    # consecutive repeats of the same touchpoint are one touch (one visit, many page views)
    keep = np.r_[True, (touch[1:] != touch[:-1]) | (pid[1:] != pid[:-1])]
    paths = []
    for a, b in zip(starts, np.r_[starts[1:], len(pid)], strict=True):
        k = keep[a:b]
        paths.append(
            attribution.Path(
                touch[a:b][k].tolist(), bool(converted[a]), float(revenue[a]) if converted[a] else 0.0,
                age_hours[a:b][k].tolist(),
            )
        )  # fmt: skip
    return paths


def attribution_report(
    by: str = "channel",
    lookback_days: int = 30,
    half_life_hours: float = 72.0,
    start: date | None = None,
    end: date | None = None,
    person_ids: Sequence[int] | None = None,
    store_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every attribution model side by side, one row per touchpoint.

    `start`/`end` are calendar days in the display zone (inclusive) bounding the conversions;
    `person_ids` restricts the paths to a segment. With `store_params` the report is also stored in
    the model store (kind "attribution", those params plus the ones above, and the data snapshot),
    so that it can be shown again without recomputing while the data is unchanged.
    """
    lo, hi = _utc_days(start, end)
    with _reading() as con:
        snap = data_snapshot(con) if store_params is not None else None
        paths = touch_paths(con, by, lookback_days, lo, hi, person_ids)
    if not any(p.converted for p in paths):
        raise PredictError("orders: no paid order follows a touchpoint; nothing to attribute")
    rows = attribution.attribute(paths, half_life_hours)
    report = jsonable(
        {"by": by, "paths": len(paths), "conversions": sum(p.converted for p in paths),
         "revenue_fen": sum(p.revenue for p in paths), "half_life_hours": half_life_hours, "rows": rows}
    )  # fmt: skip
    if store_params is not None and snap is not None:
        params = {"by": by, "lookback_days": lookback_days, "half_life_hours": half_life_hours,
                  "start": start.isoformat() if start else None, "end": end.isoformat() if end else None}  # fmt: skip
        report["model"] = model_store.save_model("attribution", params | store_params, report, snap)
    return report


def _utc_days(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """Local calendar days (inclusive) as naive UTC bounds."""

    if start and end and start > end:
        raise PredictError(f"start {start} is after end {end}")
    offset = timedelta(seconds=zone_offset_seconds(MetricConfig().zone))
    lo = datetime(start.year, start.month, start.day) - offset if start else None
    hi = datetime(end.year, end.month, end.day) + timedelta(days=1, microseconds=-1) - offset if end else None
    return lo, hi


def calibrate_growth(campaign_id: str) -> dict[str, Any]:
    """Observed K-factor, participation and cycle time of a running campaign (warehouse data).

    participation = participants (join/share in the campaign) / persons reached by it;
    k_per_participant = referred persons / participants; cycle = median hours from an inviter's
    first campaign action to their invitees' arrival.
    """
    with _reading() as con:
        row = aggregate_row(
            con,
            """
            WITH c AS (SELECT * FROM events WHERE campaign_id = ?),
            reached AS (SELECT count(DISTINCT person_id) AS n FROM c),
            part AS (
                SELECT person_id, min(ts) AS t FROM c WHERE event IN ('join_campaign', 'invite_share') GROUP BY 1
            ),
            edges AS (SELECT * FROM referral_edges WHERE campaign_id = ?)
            SELECT (SELECT n FROM reached), (SELECT count(*) FROM part), (SELECT count(DISTINCT invitee_person_id) FROM edges),
                   (SELECT median(date_diff('second', p.t, e.ts)) / 86400.0 FROM edges e JOIN part p
                      ON p.person_id = e.inviter_person_id WHERE e.ts >= p.t)
            """,
            [campaign_id, campaign_id],
        )
    reached, participants, referred, cycle_days = row
    if not reached:
        raise PredictError(f"campaign_id: no events of campaign {campaign_id!r} in the warehouse")
    if not participants:
        raise PredictError(
            f"campaign {campaign_id!r}: nobody joined or shared yet; nothing to calibrate from"
        )
    return {
        "campaign_id": campaign_id,
        "reached": int(reached),
        "participants": int(participants),
        "referred": int(referred),
        "participation": participants / reached,
        "k_per_participant": referred / participants,
        "cycle_days": float(cycle_days) if cycle_days is not None else None,
    }


def growth_projection(params: simulate.GrowthParams, runs: int = 1000, seed: int = 0) -> dict[str, Any]:
    result = simulate.project(params, runs, seed)
    result["participation_sweep"] = simulate.participation_sweep(params)
    return jsonable(result)


def lifecycle_config_defaults() -> dict[str, Any]:
    return asdict(lifecycle.LifecycleConfig())


def person_features(at: datetime | None = None) -> pd.DataFrame:
    """Behaviour + RFM features per person at `at` (default: the latest data), plus primary channel.

    The same features as the churn model (rows with ts <= at only); `channel` is the channel with
    most of the person's events (ties: alphabetical). Tags and automation read this.
    """
    with _reading() as con:
        at = at or churn.data_end(con)
        feats = churn.features(con, at)
        channels = primary_channels(con, at)
    out = with_channel(feats, channels)
    out.attrs["at"] = at
    return out


def primary_channels(con: duckdb.DuckDBPyConnection, at: datetime) -> pd.DataFrame:
    """Each person's channel: the one with most of their events up to `at` (ties: alphabetical)."""
    return con.execute(
        """
        SELECT person_id, channel FROM events WHERE ts <= ? GROUP BY person_id, channel
        QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY count(*) DESC, channel) = 1
        """,
        [at],
    ).df()


def with_channel(df: pd.DataFrame, channels: pd.DataFrame) -> pd.DataFrame:
    """`df` with a `channel` column (persons without events: "(none)")."""
    out = df.merge(channels, on="person_id", how="left")
    out["channel"] = out["channel"].fillna("(none)")
    return out


def churn_scores(feats: pd.DataFrame, model_id: str | None = None) -> pd.Series | None:
    """Risk per row of `feats` (person_features) from the newest stored churn model; None without one."""
    try:
        entry = model_store.get_model(model_id, kind="churn")
    except PredictError:
        return None
    art = model_store.load_artefact(entry)
    return pd.Series(
        art["model"].predict_proba(feats[list(churn.FEATURES)].to_numpy(float))[:, 1], index=feats.index
    )

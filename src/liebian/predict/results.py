"""Stored fits and results, summarised for reading: LTV by channel or segment, segment profiles,
attribution reports, experiment readouts.

Fitting is slow (the LTV fit takes about a minute on 50 000 persons); reading a stored fit is fast.
These functions read the newest entry of a kind from the model store (`predict.store`) and summarise
its per-person artefact for a selection of persons (a channel, a tag's members). Whether a stored fit
still describes the data is answered by comparing its snapshot with `current_snapshot()`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from liebian.engine import warehouse
from liebian.lazy import lazy_import
from liebian.predict import experiments
from liebian.predict import store as model_store
from liebian.predict.common import PredictError, data_snapshot, jsonable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")
    pd = lazy_import("pandas")

BY = ("channel", "segment")
UNSEGMENTED = "(未分群 unsegmented)"


_SNAPSHOT: dict[tuple, dict] = {}


def current_snapshot() -> dict:
    """What the warehouse holds now (row counts, latest times, content hash) — see data_snapshot.

    Hashing every event id takes a while on millions of events, so the snapshot is reused while the
    warehouse file and its WAL are unchanged (any committed write changes them): never stale.
    """
    path = warehouse.warehouse_path()
    state = warehouse.file_state(path)
    cached = _SNAPSHOT.get(state)
    if cached is not None:
        return cached
    with warehouse.connect(read_only=True) as con:
        snapshot = data_snapshot(con)
    _SNAPSHOT.clear()
    _SNAPSHOT[state] = snapshot
    return snapshot


def is_current(entry: dict, snapshot: dict) -> bool:
    """Whether a stored fit saw exactly the data the warehouse holds now."""
    return (entry.get("snapshot") or {}).get("hash") == snapshot.get("hash")


def latest(kind: str, params: dict | None = None) -> dict | None:
    """The newest stored entry of `kind` (whose params include `params`), or None."""
    wanted = (params or {}).items()
    for entry in reversed(model_store.list_models(kind)):
        if wanted <= (entry.get("params") or {}).items():
            return entry
    return None


def select_persons(
    df: pd.DataFrame, channel: str | None = None, person_ids: Collection[int] | None = None
) -> pd.DataFrame:
    """Rows of persons in `channel` (their main channel) and among `person_ids` (None = everyone)."""
    if channel:
        df = df[df["channel"] == channel] if "channel" in df.columns else df.iloc[0:0]
    if person_ids is not None:
        df = df[df["person_id"].isin(np.fromiter(person_ids, dtype=np.int64, count=len(person_ids)))]
    return df


def _nice_edges(high: float) -> list[float]:
    """Bin edges 0, 1, 2, 5, 10, 20, 50… (in yuan) up to the first edge above `high`."""
    edges, base = [0.0], 1.0
    while edges[-1] <= high:
        for m in (1, 2, 5):
            edges.append(base * m)
            if edges[-1] > high:
                break
        base *= 10
    return edges


def _summaries(values: pd.DataFrame, key: pd.Series) -> list[dict]:
    """Customers, CLV mean/median/p90/total, mean paid so far and expected purchases per `key`."""
    grouped = values.groupby(key, sort=False)
    clv = grouped["clv_fen"]
    table = pd.DataFrame(
        {
            "customers": clv.size(),
            "mean_clv_fen": clv.mean(),
            "median_clv_fen": clv.median(),
            "p90_clv_fen": clv.quantile(0.9),
            "total_clv_fen": clv.sum(),
            "mean_historical_fen": grouped["historical_fen"].mean(),
            "expected_purchases": grouped["expected_purchases"].mean(),
        }
    )
    return [{"group": name, **row} for name, row in zip(table.index, table.to_dict("records"), strict=True)]


def _overall(values: pd.DataFrame) -> dict:
    clv = values["clv_fen"].to_numpy()
    if not len(clv):
        return {"customers": 0, "mean_clv_fen": None, "median_clv_fen": None, "p90_clv_fen": None,
                "total_clv_fen": 0.0, "mean_historical_fen": None, "expected_purchases": None}  # fmt: skip
    return {
        "customers": len(clv),
        "mean_clv_fen": float(clv.mean()),
        "median_clv_fen": float(np.median(clv)),
        "p90_clv_fen": float(np.quantile(clv, 0.9)),
        "total_clv_fen": float(clv.sum()),
        "mean_historical_fen": float(values["historical_fen"].to_numpy().mean()),
        "expected_purchases": float(values["expected_purchases"].to_numpy().mean()),
    }


def _segments_of(persons: pd.DataFrame) -> pd.Series:
    """Each person's K-Means segment name from the newest segmentation (UNSEGMENTED without one)."""
    entry = latest("segments")
    if entry is None:
        raise PredictError("segments: no segmentation is stored yet; fit one (liebian predict segments)")
    table = model_store.load_artefact(entry)[["person_id", "cluster_name"]]
    names = persons[["person_id"]].merge(table, on="person_id", how="left")["cluster_name"]
    return names.fillna(UNSEGMENTED).set_axis(persons.index)


def ltv_breakdown(
    by: str = "channel",
    channel: str | None = None,
    person_ids: Collection[int] | None = None,
    top: int = 200,
) -> dict | None:
    """Predicted LTV (the newest stored LTV fit) per channel or per segment, for the selected buyers.

    Groups: customers, mean/median/90th percentile and total predicted CLV (fen, discounted over the
    fit's horizon), mean paid so far, mean expected purchases. Also the overall summary, a histogram
    of CLV (yuan bins 0-1-2-5-10…) and the `top` persons by CLV. None when no LTV fit is stored.
    """
    if by not in BY:
        raise PredictError(f"by: must be one of {', '.join(BY)} (got {by!r})")
    entry = latest("ltv")
    if entry is None:
        return None
    per = model_store.load_artefact(entry)
    if "channel" not in per.columns:  # fits stored before the channel was recorded
        per = per.assign(channel="(none)")
    per = select_persons(per, channel, person_ids)
    per = per.assign(segment=_segments_of(per) if by == "segment" else None)
    groups = _summaries(per, per[by])
    groups.sort(key=lambda g: -g["total_clv_fen"])
    yuan = per["clv_fen"].to_numpy() / 100
    edges = _nice_edges(float(yuan.max()) if len(yuan) else 0.0)
    counts, _ = np.histogram(yuan, bins=edges)
    first = int(np.argmax(counts > 0)) if counts.any() else 0  # leading empty bins say nothing
    edges, counts = edges[first:], counts[first:]
    ranked = per.sort_values(["clv_fen", "person_id"], ascending=[False, True]).head(top)
    columns = [
        "person_id",
        "channel",
        "clv_fen",
        "historical_fen",
        "expected_purchases",
        "expected_spend_fen",
    ]
    if by == "segment":
        columns.append("segment")
    return jsonable(
        {
            "model": entry,
            "by": by,
            "overall": _overall(per),
            "groups": groups,
            "histogram": [
                {"low_yuan": lo, "high_yuan": hi, "customers": int(n)}
                for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)
            ],
            "top": ranked[columns].to_dict("records"),
        }
    )


def segment_summary(channel: str | None = None, person_ids: Collection[int] | None = None) -> dict | None:
    """The newest segmentation: k, silhouette per k, each segment's profile (over everyone) and its
    size among the selected persons, and the RFM grid (persons per recency × frequency score)."""
    entry = latest("segments")
    if entry is None:
        return None
    table = select_persons(model_store.load_artefact(entry), channel, person_ids)
    sizes = table.groupby("cluster").size()
    selected = len(table)
    profiles = [
        p | {"selected": int(sizes.get(p["cluster"], 0)),
             "selected_share": float(sizes.get(p["cluster"], 0) / selected) if selected else None}
        for p in entry["metrics"]["profiles"]
    ]  # fmt: skip
    grid = table.groupby(["r_score", "f_score"]).size()
    return jsonable(
        {
            "model": entry,
            "k": entry["params"]["k"],
            "silhouette": entry["metrics"]["silhouette"],
            "persons": selected,
            "profiles": profiles,
            "rfm_grid": [
                {"r_score": r, "f_score": f, "persons": int(n)}
                for (r, f), n in zip(grid.index, grid, strict=True)
            ],
        }
    )


def record_readout(
    name: str,
    control: dict,
    treatment: dict,
    alpha: float = 0.05,
    planned_n: int | None = None,
    weights: Sequence[float] | None = None,
    source: str = "form",
    created_by: str = "",
) -> dict:
    """Read out an experiment (experiments.readout) and keep it in the model store (kind "experiment").

    Per-unit revenue lists are not stored, only their count and sum (the readout keeps the test).
    """
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise PredictError("name: the experiment needs a name of 1–100 characters")
    result = experiments.readout(control, treatment, alpha, planned_n, weights)

    def side(v: dict) -> dict:
        out = {k: v[k] for k in ("name", "units", "conversions") if k in v}
        if v.get("revenue") is not None:
            out["revenue_sum_fen"] = float(np.sum(v["revenue"]))
        return out

    params = {"name": name, "control": side(control), "treatment": side(treatment), "alpha": alpha,
              "planned_n": planned_n, "weights": list(weights) if weights else None, "created_by": created_by}  # fmt: skip
    return model_store.save_model("experiment", params, result, {"source": source})


def experiment_readouts() -> list[dict]:
    """Recorded readouts, newest first."""
    return list(reversed(model_store.list_models("experiment")))

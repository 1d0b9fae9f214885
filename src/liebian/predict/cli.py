"""`liebian predict …`: LTV, lifecycle, churn, segments, attribution, A/B tests, growth simulation."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import typer

from liebian.output import Format, emit, err_console
from liebian.predict import experiments, service, simulate
from liebian.predict import store as model_store
from liebian.predict.common import PredictError, jsonable

app = typer.Typer(no_args_is_help=True)
FMT = typer.Option(Format.table, "--format")


def _fail(exc: Exception) -> None:
    err_console.print(f"[red]{exc}[/red]")
    raise typer.Exit(2)


def _show(fmt: Format, record: dict, rows: list[dict] | None = None, title: str = "") -> None:
    """JSON: the whole result; table/CSV: the summary rows (or the record's scalar fields)."""
    if fmt is Format.json:
        emit(record, fmt)
    elif rows is not None:
        emit([{k: _short(v) for k, v in r.items()} for r in rows], fmt, title)
    else:
        emit({k: _short(v) for k, v in record.items() if not isinstance(v, dict | list)}, fmt, title)


def _short(value):
    """Readable numbers in tables (JSON keeps full precision)."""
    if isinstance(value, float):
        return round(value, 3) if abs(value) < 100 else round(value)
    return value


@app.command("ltv")
def ltv_cmd(
    horizon_days: int = typer.Option(180, help="prediction horizon"),
    discount: float = typer.Option(0.10, help="annual discount (decay) rate"),
    unit_days: float = typer.Option(7.0, help="time unit of the model in days (the papers use weeks)"),
    top: int = typer.Option(10, help="persons shown, highest predicted value first"),
    fmt: Format = FMT,
) -> None:
    """Fit BG/NBD + Gamma-Gamma, store it, show CLV per person and the LTV multiplier."""
    try:
        result = service.fit_ltv(horizon_days, discount, unit_days, progress=fmt is not Format.json)
    except PredictError as exc:
        _fail(exc)
    per_person = result.pop("per_person").sort_values("clv_fen", ascending=False).head(top)
    result["top"] = jsonable(per_person.to_dict("records"))
    m = result["metrics"]["ltv_multiplier"]
    rows = [
        {"field": "model", "value": result["model"]["id"]},
        *({"field": f"bgnbd.{k}", "value": round(v, 4)} for k, v in result["params"]["bgnbd"].items()),
        *({"field": f"gamma_gamma.{k}", "value": round(v, 4)} for k, v in (result["params"]["gamma_gamma"] or {}).items()),
        {"field": "ltv_multiplier", "value": (
            f"{m['multiplier']:.2f} [{m['ci_low']:.2f}, {m['ci_high']:.2f}]" if m.get("multiplier") is not None
            else f"不可用 unavailable: {m.get('reason')}"
        )},
        {"field": "mean_clv_fen", "value": round(result["metrics"]["mean_clv_fen"])},
    ]  # fmt: skip
    _show(fmt, result, rows, "LTV")


@app.command("lifecycle")
def lifecycle_cmd(
    period_days: int = typer.Option(14),
    loyal_orders: int = typer.Option(2, help="paid orders over --loyal-periods that make a person loyal"),
    loyal_periods: int = typer.Option(3),
    churn_periods: int = typer.Option(3, help="idle periods after which a silent person counts as churned"),
    periods: int = typer.Option(6, help="periods to project"),
    discount: float = typer.Option(0.0, help="discount rate per period"),
    fmt: Format = FMT,
) -> None:
    """Lifecycle Markov chain: transition matrix, projected states and value."""
    try:
        result = service.fit_lifecycle(
            period_days,
            loyal_orders,
            loyal_periods,
            churn_periods,
            periods,
            discount,
            progress=fmt is not Format.json,
        )
    except PredictError as exc:
        _fail(exc)
    _show(fmt, result, result["projection"], "lifecycle projection")


@app.command("churn")
def churn_cmd(window_days: int = typer.Option(30), fmt: Format = FMT) -> None:
    """Fit the churn model (time-split AUC and calibration), store it."""
    try:
        result = service.fit_churn(window_days, progress=fmt is not Format.json)
    except PredictError as exc:
        _fail(exc)
    m = result["metrics"]
    rows = [
        {"field": k, "value": m[k]}
        for k in ("auc", "brier", "brier_baseline", "base_rate", "n_train", "n_test")
    ]
    rows.insert(0, {"field": "model", "value": result["model"]["id"]})
    _show(fmt, result, rows, "churn model")


@app.command("risk")
def risk_cmd(
    person: list[int] = typer.Option(None, "--person", help="person id (repeatable); default all"),
    model: str | None = typer.Option(None, help="stored churn model id; default the newest"),
    top: int = typer.Option(20, help="rows shown (highest risk first)"),
    fmt: Format = FMT,
) -> None:
    """Churn risk per person with its main reasons."""
    try:
        rows = service.churn_risk(model, person or None)[:top]
    except PredictError as exc:
        _fail(exc)
    if fmt is Format.json:
        emit(rows, fmt)
    else:
        emit(
            [{"person_id": r["person_id"], "risk": round(r["risk"], 3),
              "reasons": "; ".join(x["label"] for x in r["reasons"])} for r in rows], fmt, "churn risk"
        )  # fmt: skip


@app.command("segments")
def segments_cmd(
    k_min: int = typer.Option(2),
    k_max: int = typer.Option(8),
    allow_small: bool = typer.Option(False, help="run K-Means below 1000 persons (with a warning)"),
    export: Path | None = typer.Option(None, help="write person, RFM and cluster to this CSV"),
    fmt: Format = FMT,
) -> None:
    """RFM scores and K-Means profiles (k by silhouette)."""
    try:
        result = service.fit_segments(
            k_min=k_min, k_max=k_max, allow_small=allow_small, export=export, progress=fmt is not Format.json
        )
    except PredictError as exc:
        _fail(exc)
    result.pop("assignments")
    if result["warning"]:
        err_console.print(f"[yellow]{result['warning']}[/yellow]")
    _show(
        fmt,
        result,
        result["profiles"],
        f"k={result['k']} silhouette={result['silhouette'][str(result['k'])]:.3f}",
    )


@app.command("attribution")
def attribution_cmd(
    by: str = typer.Option("channel", help="channel | campaign"),
    lookback_days: int = typer.Option(30),
    half_life_hours: float = typer.Option(72.0, help="time-decay half-life"),
    fmt: Format = FMT,
) -> None:
    """First, last, linear, time-decay, position-based and Markov attribution."""
    try:
        result = service.attribution_report(by, lookback_days, half_life_hours)
    except PredictError as exc:
        _fail(exc)
    _show(fmt, result, result["rows"], "attribution (conversions)")


@app.command("models")
def models_cmd(kind: str | None = typer.Option(None), fmt: Format = FMT) -> None:
    """Stored models with their data snapshot and headline metrics."""
    rows = [
        {"id": e["id"], "kind": e["kind"], "created_at": e["created_at"], "snapshot": e["snapshot"]["hash"],
         "events": e["snapshot"]["rows"]["events"], "orders": e["snapshot"]["rows"]["orders"]}
        for e in model_store.list_models(kind)
    ]  # fmt: skip
    emit(rows if fmt is not Format.json else model_store.list_models(kind), fmt, "models")


@app.command("ab-assign")
def ab_assign_cmd(
    experiment: str = typer.Option(...),
    unit: list[str] = typer.Option(..., "--unit", help="unit id (repeatable)"),
    variants: str = typer.Option("限时优惠,抽奖", help="comma-separated variants"),
    weights: str | None = typer.Option(None, help="comma-separated weights"),
    fmt: Format = FMT,
) -> None:
    """Deterministic hash assignment of units to variants."""
    try:
        names = [v.strip() for v in variants.split(",") if v.strip()]
        w = [float(x) for x in weights.split(",")] if weights else None
        emit([{"unit_id": u, "variant": experiments.assign(experiment, u, names, w)} for u in unit], fmt)
    except (PredictError, ValueError) as exc:
        _fail(exc)


@app.command("ab-plan")
def ab_plan_cmd(
    baseline: float = typer.Option(..., help="control conversion rate, e.g. 0.10"),
    mde: float = typer.Option(..., help="absolute lift to detect, e.g. 0.02"),
    alpha: float = typer.Option(0.05),
    power: float = typer.Option(0.8),
    fmt: Format = FMT,
) -> None:
    """Minimum sample size per variant (the fixed horizon of the test)."""
    try:
        n = experiments.sample_size_proportions(baseline, mde, alpha, power)
    except PredictError as exc:
        _fail(exc)
    emit({"baseline": baseline, "mde": mde, "alpha": alpha, "power": power, "n_per_variant": n}, fmt)


@app.command("ab-readout")
def ab_readout_cmd(
    file: Path = typer.Argument(..., help="CSV: unit_id, variant, converted (0/1), revenue_fen"),
    control: str = typer.Option(...),
    treatment: str = typer.Option(...),
    planned_n: int | None = typer.Option(None, help="units per variant planned (fixed horizon)"),
    alpha: float = typer.Option(0.05),
    fmt: Format = FMT,
) -> None:
    """Readout: z-test, chi-square, Welch's t-test on revenue, CIs, SRM, fixed-horizon status."""
    try:
        with file.open(encoding="utf-8-sig", newline="") as fh:
            sides = experiments.summarise_units(list(csv.DictReader(fh)), [control, treatment], "line", 2)
        result = experiments.readout(sides[control], sides[treatment], alpha, planned_n)
    except OSError as exc:
        _fail(PredictError(f"{file}: {exc.strerror}"))
    except PredictError as exc:
        _fail(PredictError(f"{file}: {exc}"))
    _show(fmt, result)


@app.command("simulate")
def simulate_cmd(
    seed_users: int = typer.Option(1000),
    k: float = typer.Option(2.0, "--k", help="new users per participant"),
    participation: float = typer.Option(0.3),
    churn: float = typer.Option(0.1),
    cycle_days: float = typer.Option(7.0),
    cost_per_user_fen: int = typer.Option(500),
    budget_fen: int | None = typer.Option(None),
    cycles: int = typer.Option(10),
    start: str | None = typer.Option(None, help="first day YYYY-MM-DD (default today)"),
    calibrate: str | None = typer.Option(
        None, help="campaign id: take k, participation, cycle from its data"
    ),
    runs: int = typer.Option(1000),
    fmt: Format = FMT,
) -> None:
    """Growth what-if (branching process): users, cost, budget date, take-off participation."""
    try:
        calib = None
        if calibrate:
            calib = service.calibrate_growth(calibrate)
            k, participation = calib["k_per_participant"], calib["participation"]
            cycle_days = calib["cycle_days"] or cycle_days
        params = simulate.GrowthParams(
            seed_users, k, participation, churn, cycle_days, cost_per_user_fen, budget_fen, cycles,
            date.fromisoformat(start) if start else None,
        )  # fmt: skip
        result = service.growth_projection(params, runs)
        result["calibration"] = calib
    except ValueError as exc:  # PredictError included; also a bad --start date
        _fail(exc)
    if fmt is not Format.json:
        err_console.print(
            f"R = {result['r']:.3f}; takes off: {result['takes_off']}; take-off participation "
            f"{result['takeoff_participation']}; budget exhausted on {result['budget_exhausted_on']}"
        )
    _show(fmt, result, result["cycles"], "growth projection")

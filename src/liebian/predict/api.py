"""HTTP endpoints under /api/v1/predict: the same models as `liebian predict`."""

from __future__ import annotations

from fastapi import APIRouter, Query

from liebian.errors import blame
from liebian.predict import experiments, schemas, service, simulate
from liebian.predict import store as model_store
from liebian.predict.common import jsonable
from liebian.predict.schemas import AssignRequest, ReadoutRequest, SimulateRequest

router = APIRouter(prefix="/api/v1/predict", tags=["predict"])


def _call(field: str, fn, *args, **kwargs):
    with blame(field):  # a PredictError names the parameter this route was given
        return fn(*args, **kwargs)


@router.post("/ltv", response_model=schemas.LtvFit)
def fit_ltv(
    horizon_days: int = Query(180, ge=1), discount: float = Query(0.10, ge=0), unit_days: float = Query(7.0, gt=0),
    top: int = Query(20, ge=0, le=10000),
):  # fmt: skip
    result = _call("ltv", service.fit_ltv, horizon_days, discount, unit_days)
    per_person = result.pop("per_person")
    result["top"] = jsonable(per_person.sort_values("clv_fen", ascending=False).head(top).to_dict("records"))
    return result


@router.post("/lifecycle", response_model=schemas.ModelFit)
def fit_lifecycle(
    period_days: int = Query(14, ge=1), loyal_orders: int = Query(2, ge=1), loyal_periods: int = Query(3, ge=1),
    churn_periods: int = Query(3, ge=1), periods: int = Query(6, ge=1, le=120), discount: float = Query(0.0, ge=0),
):  # fmt: skip
    return _call(
        "lifecycle",
        service.fit_lifecycle,
        period_days,
        loyal_orders,
        loyal_periods,
        churn_periods,
        periods,
        discount,
    )


@router.post("/churn", response_model=schemas.ModelFit)
def fit_churn(window_days: int = Query(30, ge=1, le=365)):
    return _call("window_days", service.fit_churn, window_days)


@router.get("/churn/risk", response_model=list[schemas.ChurnRisk])
def churn_risk(
    person: list[int] | None = Query(None), model: str | None = None, limit: int = Query(100, ge=1, le=100000)
):
    result = _call("person", service.churn_risk, model, person)
    return result[:limit]


@router.post("/segments", response_model=schemas.ModelFit)
def fit_segments(k_min: int = Query(2, ge=2), k_max: int = Query(8, ge=2), allow_small: bool = False):
    result = _call("segments", service.fit_segments, k_min=k_min, k_max=k_max, allow_small=allow_small)
    result.pop("assignments")
    return result


@router.get("/attribution", response_model=schemas.Attribution)
def attribution(
    by: str = Query("channel", pattern="^(channel|campaign)$"), lookback_days: int = Query(30, ge=1),
    half_life_hours: float = Query(72.0, gt=0),
):  # fmt: skip
    return _call("attribution", service.attribution_report, by, lookback_days, half_life_hours)


@router.get("/models", response_model=list[schemas.StoredModel])
def models(kind: str | None = None) -> list[dict]:
    return model_store.list_models(kind)


@router.post("/experiments/assign", response_model=list[schemas.Assignment])
def ab_assign(body: AssignRequest):
    with blame("variants"):
        return [
            {"unit_id": u, "variant": experiments.assign(body.experiment, u, body.variants, body.weights)}
            for u in body.units
        ]


@router.get("/experiments/plan", response_model=schemas.Plan)
def ab_plan(
    baseline: float = Query(..., gt=0, lt=1), mde: float = Query(...), alpha: float = Query(0.05, gt=0, lt=1),
    power: float = Query(0.8, gt=0, lt=1),
):  # fmt: skip
    n = _call("mde", experiments.sample_size_proportions, baseline, mde, alpha, power)
    return {"n_per_variant": n, "baseline": baseline, "mde": mde}


@router.post("/experiments/readout", response_model=schemas.Readout)
def ab_readout(body: ReadoutRequest):
    c, t = body.control.model_dump(exclude_none=True), body.treatment.model_dump(exclude_none=True)
    return _call("readout", experiments.readout, c, t, body.alpha, body.planned_n, body.weights)


@router.post("/simulate", response_model=schemas.Projection)
def growth(body: SimulateRequest):
    with blame("simulate"):
        calib = None
        k, q, cycle = body.k_per_participant, body.participation, body.cycle_days
        if body.calibrate_campaign:
            calib = service.calibrate_growth(body.calibrate_campaign)
            k, q, cycle = calib["k_per_participant"], calib["participation"], calib["cycle_days"] or cycle
        params = simulate.GrowthParams(
            body.seed_users,
            k,
            q,
            body.churn,
            cycle,
            body.cost_per_user_fen,
            body.budget_fen,
            body.cycles,
            body.start,
        )
        return service.growth_projection(params, body.runs) | {"calibration": calib}

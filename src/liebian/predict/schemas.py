"""Request bodies of the predict API."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from liebian.schemas import Request
from liebian.shapes import Open


class Variant(Request):
    name: str = Field(max_length=200)
    units: int = Field(gt=0, le=10**12)
    conversions: int = Field(ge=0, le=10**12)
    revenue: list[float] | None = Field(
        default=None, max_length=1_000_000, description="per-unit revenue (fen), zeros included"
    )


class ReadoutRequest(Request):
    control: Variant
    treatment: Variant
    alpha: float = Field(0.05, gt=0, lt=1)
    planned_n: int | None = Field(
        None, gt=0, le=10**12, description="units per variant planned (fixed horizon)"
    )
    weights: list[float] | None = Field(None, max_length=1000)


class AssignRequest(Request):
    experiment: str = Field(min_length=1)
    units: list[str] = Field(min_length=1)
    variants: list[str] = Field(default_factory=lambda: ["限时优惠", "抽奖"], min_length=2)
    weights: list[float] | None = None


class SimulateRequest(Request):
    seed_users: int = Field(1000, ge=1, le=10**12)
    k_per_participant: float = Field(2.0, ge=0, le=1000)
    participation: float = Field(0.3, ge=0, le=1)
    churn: float = Field(0.1, ge=0, le=1)
    cycle_days: float = Field(7.0, gt=0, le=365)
    cost_per_user_fen: int = Field(500, ge=0, le=10**9)
    budget_fen: int | None = Field(None, ge=0, le=10**15)
    cycles: int = Field(10, ge=1, le=200)
    start: date | None = None
    calibrate_campaign: str | None = None
    runs: int = Field(1000, ge=1, le=20000)


# ------------------------------------------------------------------ responses


class LtvFit(Open):
    """The fitted CLV model: its metrics and the `top` persons by CLV."""

    top: list[dict[str, Any]]


class ModelFit(Open):
    """A fitted model's summary (lifecycle chain, churn classifier, segments): metrics and parameters."""


class ChurnRisk(Open):
    """One person's churn probability under the stored model."""


class Attribution(Open):
    """Credit per channel or campaign under each attribution model."""


class StoredModel(Open):
    """A fitted model kept in the model store."""


class Assignment(BaseModel):
    unit_id: str
    variant: str


class Plan(BaseModel):
    n_per_variant: int | float
    baseline: float
    mde: float


class Readout(Open):
    """The experiment's effect, interval and decision."""


class Projection(Open):
    """The growth simulation's runs summarised per cycle; `calibration` when fitted to a campaign."""

    calibration: dict[str, Any] | None = None

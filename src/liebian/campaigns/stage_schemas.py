"""Shapes of the staged roll-out (`campaigns.stages`): the plan an operator sets, and its views."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liebian.schemas import UtcDateTime

STAGES = ("pilot", "rollout", "optimise")
StageName = Literal["pilot", "rollout", "optimise"]


class Pilot(BaseModel):
    """Who the pilot admits: a share of traffic and/or chosen regions and stores (all that are given
    must hold)."""

    model_config = ConfigDict(extra="forbid")
    share: float | None = Field(None, gt=0, le=1, description="share of participants admitted (0–1]")
    regions: list[str] | None = Field(None, min_length=1, description="regions taking part")
    stores: list[str] | None = Field(None, min_length=1, description="stores taking part")

    @model_validator(mode="after")
    def _something(self) -> Pilot:
        if self.share is None and not self.regions and not self.stores:
            raise ValueError("a pilot names a share of traffic, regions or stores")
        for name in ("regions", "stores"):
            for value in getattr(self, name) or []:
                if not value.strip() or len(value) > 64:
                    raise ValueError(f"{name}: {value!r} is not a region or store name")
        return self


class Gate(BaseModel):
    """What must hold, measured since the stage began, before the campaign moves on."""

    model_config = ConfigDict(extra="forbid")
    min_days: float = Field(0, ge=0, description="days in the stage")
    min_participants: int = Field(0, ge=0)
    min_accepts: int = Field(0, ge=0)
    min_qualified: int = Field(0, ge=0)
    min_fission_rate: float | None = Field(0.10, ge=0, description="qualified invitees ÷ participants")


class ExitRule(BaseModel):
    """001 §4.1 退出机制: fission rate below `min_fission_rate` (once `min_participants` took part
    since the stage began or the rule last fired) → raise every reward by `step_pct`, never above
    `max_reward_fen`; when every reward is at the ceiling (or action is pause) → pause."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    min_fission_rate: float = Field(0.10, ge=0)
    min_participants: int = Field(20, ge=1, description="the sample the rate is judged on")
    action: Literal["raise", "pause"] = "raise"
    step_pct: float = Field(0.2, gt=0, le=1, description="raise: by this share each time")
    max_reward_fen: int | None = Field(None, ge=1, description="raise: the ceiling of any reward")
    cooldown_hours: float = Field(24, ge=0, description="rest after firing")

    @model_validator(mode="after")
    def _ceiling(self) -> ExitRule:
        if self.action == "raise" and self.max_reward_fen is None:
            raise ValueError("raising rewards needs a ceiling (max_reward_fen)")
        return self


def _default_gates() -> dict[StageName, Gate]:
    return {"pilot": Gate(), "rollout": Gate()}


class StagePlanDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pilot: Pilot
    gates: dict[StageName, Gate] = Field(
        default_factory=_default_gates, description="per stage: what must hold to move on"
    )
    exit_rules: dict[StageName, ExitRule] = Field(default_factory=dict, description="per stage")
    auto_advance: bool = Field(False, description="the scheduled job moves on when the gate is met")


class AdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = Field(False, description="move on although the gate is not met (audited)")
    note: str = Field("", max_length=500)


class StageMetrics(BaseModel):
    since: UtcDateTime
    participants: int
    accepts: int
    qualified: int
    fission_rate: float | None = Field(description="qualified ÷ participants; null without participants")
    qualify_rate: float | None = Field(description="qualified ÷ accepts")
    days: float


class Check(BaseModel):
    metric: str
    value: float | None
    threshold: float
    ok: bool


class GateView(BaseModel):
    stage: StageName
    passed: bool
    checks: list[Check]
    metrics: StageMetrics


class ExitView(BaseModel):
    stage: StageName
    enabled: bool
    fired: bool
    action: str = Field(description="raised, paused, none, or why not: cooldown, small_sample, not_live…")
    reason: str
    metrics: StageMetrics
    rule: ExitRule | None
    changes: list[str] = Field(default_factory=list)


class StageEventView(BaseModel):
    id: int
    ts: UtcDateTime
    actor: str
    kind: str
    stage: str
    passed: bool | None
    action: str
    detail: dict


class StageView(BaseModel):
    campaign_id: str
    stage: StageName
    next_stage: StageName | None
    entered_at: UtcDateTime
    plan: StagePlanDoc
    gate: GateView
    exit_rule: ExitView
    history: list[StageEventView]

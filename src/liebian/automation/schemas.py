"""Journey definitions: trigger → steps (wait, branch, action) → conversion goal."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from liebian.shapes import Open


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentTrigger(_Strict):
    type: Literal["segment"]
    tag: str = Field(min_length=1, description="enter when the person carries this tag")


class EventTrigger(_Strict):
    type: Literal["event"]
    event: str = Field(min_length=1)
    lookback_hours: float = Field(24, gt=0, description="first scan looks this far back")


class ChurnTrigger(_Strict):
    type: Literal["churn_risk"]
    threshold: float = Field(gt=0, lt=1)


class SilenceTrigger(_Strict):
    type: Literal["silence"]
    days: int = Field(ge=1, description="no active event for this many days")


Trigger = Annotated[
    SegmentTrigger | EventTrigger | ChurnTrigger | SilenceTrigger, Field(discriminator="type")
]


class Wait(_Strict):
    hours: float = Field(gt=0)


class Condition(_Strict):
    event: str | None = Field(None, description="the person did this event since entering")
    tag: str | None = Field(None, description="the person carries this tag")

    @model_validator(mode="after")
    def _one(self) -> Condition:
        if (self.event is None) == (self.tag is None):
            raise ValueError("a condition needs exactly one of event or tag")
        return self


Target = int | Literal["next", "exit"]


class Branch(_Strict):
    if_: Condition = Field(alias="if")
    then: Target = "next"
    else_: Target = Field("next", alias="else")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Action(_Strict):
    type: Literal["webhook", "tag", "campaign"]
    channel: str = Field("", max_length=32, description="webhook: wecom, sms, coupon …")
    url: HttpUrl | None = None
    secret: str | None = Field(None, min_length=16, description="HMAC-SHA256 key for the signature")
    payload: dict = Field(default_factory=dict)
    name: str | None = Field(None, description="tag name or campaign id")

    @model_validator(mode="after")
    def _fields(self) -> Action:
        if self.type == "webhook" and (self.url is None or not self.channel or not self.secret):
            raise ValueError("a webhook action needs url, channel and secret")
        if self.type in ("tag", "campaign") and not self.name:
            raise ValueError(f"a {self.type} action needs name")
        return self


class Step(_Strict):
    wait: Wait | None = None
    branch: Branch | None = None
    action: Action | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        if sum(x is not None for x in (self.wait, self.branch, self.action)) != 1:
            raise ValueError("a step is exactly one of wait, branch, action")
        return self


class Goal(_Strict):
    event: str = "order_paid"
    within_days: float = Field(14, gt=0)


class JourneyDefinition(_Strict):
    trigger: Trigger
    steps: list[Step] = Field(min_length=1)
    goal: Goal = Field(default_factory=Goal)
    holdout_pct: int = Field(10, ge=0, le=90, description="share held out as the control group")
    quiet_hours: str | None = Field(None, description="override of the global quiet hours, e.g. 22-8")

    @model_validator(mode="after")
    def _targets(self) -> JourneyDefinition:
        for i, step in enumerate(self.steps):
            if step.branch:
                for t in (step.branch.then, step.branch.else_):
                    if isinstance(t, int) and not 0 <= t < len(self.steps):
                        raise ValueError(f"steps[{i}].branch: goto {t} is not a step index")
        return self


class JourneyIn(_Strict):
    name: str = Field(min_length=1, max_length=128)
    definition: JourneyDefinition


# ------------------------------------------------------------------ responses


class JourneyOut(Open):
    id: int
    name: str
    status: str
    definition: dict[str, Any]
    created_at: str
    last_scan_at: str | None = None


class PassOut(Open):
    """One pass of a journey: how many persons entered and what each step did."""


class StatsOut(Open):
    """A journey's statistics (entered, per step, goal reached)."""

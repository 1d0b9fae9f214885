"""The journey editor's form: a journey definition (the automation service's JSON, which stays the
storage format) as flat form fields and back, the editing operations (add, remove, move a step) and
the field checks with catalogued messages (`plans.journey.invalid.*`), so every bad value is named
next to its field before the automation service sees the definition.

Field names: `name`, `trigger_type`, `trigger_tag`, `trigger_event`, `trigger_lookback_hours`,
`trigger_threshold`, `trigger_days`, `steps-{i}-kind` (wait | branch | action) with `steps-{i}-hours`;
`-cond` (event | tag), `-cond_value`, `-then`, `-else` (next | exit | a step number from 1);
`-action` (webhook | tag | campaign), `-channel`, `-url`, `-secret`, `-payload` (JSON), `-name`;
`goal_event`, `goal_days`, `holdout_pct`, `quiet_hours`, `activate`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from liebian.automation import service

TRIGGERS = ("silence", "segment", "event", "churn_risk")
KINDS = ("action", "wait", "branch")
ACTIONS = ("webhook", "tag", "campaign")
MAX_STEPS = 50
MAX_HOURS = 24 * 365 * 5
MAX_DAYS = 3650
MAX_TEXT = 64
MAX_URL = 2048
STEP_FIELDS = ("kind", "hours", "cond", "cond_value", "then", "else", "action", "channel", "url", "secret",
               "payload", "name")  # fmt: skip
TOP_FIELDS = ("name", "trigger_type", "trigger_tag", "trigger_event", "trigger_lookback_hours", "trigger_threshold",
              "trigger_days", "goal_event", "goal_days", "holdout_pct", "quiet_hours")  # fmt: skip


def blank_step(kind: str) -> dict[str, str]:
    step = dict.fromkeys(STEP_FIELDS, "")
    step |= {"kind": kind if kind in KINDS else "action", "cond": "event", "then": "exit", "else": "next",
             "action": "tag", "hours": "24"}  # fmt: skip
    return step


def from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The editor's state (every value a string) from the posted fields."""
    state: dict[str, Any] = {k: str(form.get(k, "") or "")[:4096] for k in TOP_FIELDS}
    state["activate"] = bool(form.get("activate"))
    steps = []
    for i in range(MAX_STEPS):
        if f"steps-{i}-kind" not in form:
            break
        steps.append({f: str(form.get(f"steps-{i}-{f}", "") or "")[:8192] for f in STEP_FIELDS})
    state["steps"] = steps
    return state


def _renumber(steps: list[dict[str, str]], mapping: dict[int, int | None]) -> None:
    """Branch targets that name a step follow it (1-based numbers); a removed step's become next."""
    for step in steps:
        for key in ("then", "else"):
            value = step.get(key, "")
            if value.isdigit() and int(value) - 1 in mapping:
                new = mapping[int(value) - 1]
                step[key] = "next" if new is None else str(new + 1)


def apply(state: dict[str, Any], op: str, kind: str = "") -> dict[str, Any]:
    """An editing operation: `add` (a step of `kind`), `remove-N`, `up-N`, `down-N` (0-based N)."""
    steps: list[dict[str, str]] = state["steps"]
    name, _, arg = op.partition("-")
    if name == "add" and len(steps) < MAX_STEPS:
        steps.append(blank_step(kind))
        return state
    if not arg.isdigit() or not 0 <= int(arg) < len(steps):
        return state
    i = int(arg)
    n = len(steps)
    if name == "remove":
        steps.pop(i)
        _renumber(steps, {j: (None if j == i else j - (j > i)) for j in range(n)})
    elif name in ("up", "down"):
        j = i - 1 if name == "up" else i + 1
        if 0 <= j < n:
            steps[i], steps[j] = steps[j], steps[i]
            _renumber(steps, {i: j, j: i})
    return state


def from_definition(definition: Mapping[str, Any], name: str = "") -> dict[str, Any]:
    """The editor's state of a stored (or example) definition."""
    trigger = definition.get("trigger") or {}
    goal = definition.get("goal") or {}
    state: dict[str, Any] = dict.fromkeys(TOP_FIELDS, "")
    state |= {
        "name": name, "trigger_type": str(trigger.get("type", "silence")), "trigger_tag": str(trigger.get("tag", "")),
        "trigger_event": str(trigger.get("event", "")),
        "trigger_lookback_hours": _text(trigger.get("lookback_hours", 24)),
        "trigger_threshold": _text(trigger.get("threshold", "")), "trigger_days": _text(trigger.get("days", "")),
        "goal_event": str(goal.get("event", "order_paid")), "goal_days": _text(goal.get("within_days", 14)),
        "holdout_pct": _text(definition.get("holdout_pct", 10)), "quiet_hours": str(definition.get("quiet_hours") or ""),
        "activate": True,
    }  # fmt: skip
    steps = []
    for raw in definition.get("steps") or []:
        step = blank_step("action")
        if raw.get("wait"):
            step |= {"kind": "wait", "hours": _text(raw["wait"].get("hours", ""))}
        elif raw.get("branch"):
            b = raw["branch"]
            cond = b.get("if") or {}
            step |= {"kind": "branch", "cond": "tag" if cond.get("tag") else "event",
                     "cond_value": str(cond.get("tag") or cond.get("event") or ""),
                     "then": _target_text(b.get("then", "next")), "else": _target_text(b.get("else", "next"))}  # fmt: skip
        else:
            a = raw.get("action") or {}
            step |= {"kind": "action", "action": str(a.get("type", "tag")), "channel": str(a.get("channel", "")),
                     "url": str(a.get("url") or ""), "secret": str(a.get("secret") or ""),
                     "payload": json.dumps(a["payload"], ensure_ascii=False) if a.get("payload") else "",
                     "name": str(a.get("name") or "")}  # fmt: skip
        steps.append(step)
    state["steps"] = steps
    return state


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _target_text(target: Any) -> str:
    return str(target + 1) if isinstance(target, int) else str(target)


# ------------------------------------------------------------------ checks


def _number(
    text: str, low: float, high: float, *, whole: bool = False, low_open: bool = False
) -> float | None:
    """A finite number within [low, high] (low excluded with low_open), or None."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        return None
    if whole and value != int(value):
        return None
    return value


def _label(text: str) -> str | None:
    value = text.strip()
    return value if 0 < len(value) <= MAX_TEXT and "\x00" not in value else None


def _url(text: str) -> str | None:
    value = text.strip()
    parts = urlsplit(value) if len(value) <= MAX_URL else None
    return value if parts and parts.scheme in ("http", "https") and parts.hostname else None


def _trigger(state: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    kind = state["trigger_type"]
    if kind not in TRIGGERS:
        errors["trigger_type"] = "plans.journey.invalid.choice"
        return {}
    if kind == "segment":
        tag = _label(state["trigger_tag"])
        if tag is None:
            errors["trigger_tag"] = "plans.journey.invalid.label"
        return {"type": kind, "tag": tag}
    if kind == "event":
        event, hours = (
            _label(state["trigger_event"]),
            _number(state["trigger_lookback_hours"], 0, MAX_HOURS, low_open=True),
        )
        if event is None:
            errors["trigger_event"] = "plans.journey.invalid.label"
        if hours is None:
            errors["trigger_lookback_hours"] = "plans.journey.invalid.hours"
        return {"type": kind, "event": event, "lookback_hours": hours}
    if kind == "churn_risk":
        threshold = _number(state["trigger_threshold"], 0, 1, low_open=True)
        if threshold is None or threshold == 1:
            errors["trigger_threshold"] = "plans.journey.invalid.threshold"
        return {"type": kind, "threshold": threshold}
    days = _number(state["trigger_days"], 1, MAX_DAYS, whole=True)
    if days is None:
        errors["trigger_days"] = "plans.journey.invalid.days"
    return {"type": kind, "days": int(days) if days is not None else None}


def _target(text: str, n: int) -> int | str | None:
    if text in ("next", "exit"):
        return text
    return int(text) - 1 if text.isdigit() and 1 <= int(text) <= n else None


def _action(step: dict[str, str], at: str, errors: dict[str, str]) -> dict[str, Any]:
    kind = step["action"]
    if kind not in ACTIONS:
        errors[at + "action"] = "plans.journey.invalid.choice"
        return {}
    if kind != "webhook":
        name = _label(step["name"])
        if name is None:
            errors[at + "name"] = "plans.journey.invalid.label"
        return {"type": kind, "name": name}
    out: dict[str, Any] = {"type": kind, "channel": step["channel"].strip(), "url": _url(step["url"]),
                           "secret": step["secret"]}  # fmt: skip
    if not 0 < len(out["channel"]) <= 32:
        errors[at + "channel"] = "plans.journey.invalid.channel"
    if out["url"] is None:
        errors[at + "url"] = "plans.journey.invalid.url"
    if not 16 <= len(out["secret"]) <= 256:
        errors[at + "secret"] = "plans.journey.invalid.secret"
    if step["payload"].strip():
        try:
            payload = json.loads(step["payload"])
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            errors[at + "payload"] = "plans.journey.invalid.payload"
        else:
            out["payload"] = payload
    return out


def _step(step: dict[str, str], i: int, n: int, errors: dict[str, str]) -> dict[str, Any]:
    at = f"steps-{i}-"
    if step["kind"] == "wait":
        hours = _number(step["hours"], 0, MAX_HOURS, low_open=True)
        if hours is None:
            errors[at + "hours"] = "plans.journey.invalid.hours"
        return {"wait": {"hours": hours}}
    if step["kind"] == "branch":
        value = _label(step["cond_value"])
        if value is None:
            errors[at + "cond_value"] = "plans.journey.invalid.label"
        if step["cond"] not in ("event", "tag"):
            errors[at + "cond"] = "plans.journey.invalid.choice"
        then, else_ = _target(step["then"], n), _target(step["else"], n)
        for key, target in (("then", then), ("else", else_)):
            if target is None:
                errors[at + key] = "plans.journey.invalid.target"
        return {"branch": {"if": {step["cond"]: value}, "then": then, "else": else_}}
    if step["kind"] != "action":
        errors[at + "kind"] = "plans.journey.invalid.choice"
        return {}
    return {"action": _action(step, at, errors)}


def to_definition(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The definition the automation service stores, and every field's problem (field → message key)."""
    errors: dict[str, str] = {}
    if not 0 < len(state["name"].strip()) <= 128 or "\x00" in state["name"]:
        errors["name"] = "plans.journey.invalid.name"
    steps = state["steps"]
    if not steps:
        errors["steps"] = "plans.journey.invalid.steps"
    definition: dict[str, Any] = {
        "trigger": _trigger(state, errors),
        "steps": [_step(step, i, len(steps), errors) for i, step in enumerate(steps)],
    }
    goal_event, goal_days = (
        _label(state["goal_event"]),
        _number(state["goal_days"], 0, MAX_DAYS, low_open=True),
    )
    if goal_event is None:
        errors["goal_event"] = "plans.journey.invalid.label"
    if goal_days is None:
        errors["goal_days"] = "plans.journey.invalid.days"
    definition["goal"] = {"event": goal_event, "within_days": goal_days}
    holdout = _number(state["holdout_pct"], 0, 90, whole=True)
    if holdout is None:
        errors["holdout_pct"] = "plans.journey.invalid.holdout"
    definition["holdout_pct"] = int(holdout) if holdout is not None else None
    quiet = state["quiet_hours"].strip()
    if quiet:
        try:
            service.quiet_hours(quiet)
        except (ValueError, service.AutomationError):
            errors["quiet_hours"] = "plans.journey.invalid.quiet_hours"
        definition["quiet_hours"] = quiet
    return definition, errors


def field_of(loc: tuple[Any, ...]) -> str:
    """The form field of a pydantic error location in the definition (best effort)."""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        rest = [str(p) for p in loc[2:] if p not in ("wait", "branch", "action", "if")]
        return f"steps-{loc[1]}-{rest[-1] if rest else 'kind'}"
    if loc and loc[0] == "trigger":
        return f"trigger_{loc[-1]}" if len(loc) > 2 else "trigger_type"
    return {"goal": "goal_event", "holdout_pct": "holdout_pct", "quiet_hours": "quiet_hours"}.get(
        str(loc[0]) if loc else "", "name"
    )

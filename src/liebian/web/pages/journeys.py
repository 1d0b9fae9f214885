"""The console's /journeys pages (issue #11, marketing automation): the journeys with their statistics
(entered, actioned, converted, hold-out control and lift — the automation service's `stats_many`), one
journey as a readable flow with the contact rules checked before every action, and creating,
activating and pausing journeys.

Every number and every rule comes from liebian.automation.service.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from pydantic import ValidationError

from liebian.automation import service
from liebian.automation.schemas import JourneyOut
from liebian.automation.service import AutomationError
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.schemas import Int64
from liebian.urlguard import UnsafeURL
from liebian.web.console import Chart, Column, Table, flash_fragment, htmx_redirect, render
from liebian.web.format import validation_reason
from liebian.web.i18n import locale_of, translator
from liebian.web.pages import journey_form

router = APIRouter(include_in_schema=False)

EXAMPLES: dict[str, dict] = {
    "silence": {
        "trigger": {"type": "silence", "days": 14},
        "steps": [
            {"action": {"type": "webhook", "channel": "sms", "url": "https://sms.example.com/send",
                        "secret": "replace-with-your-signing-secret", "payload": {"template": "wake_up_1"}}},
            {"wait": {"hours": 48}},
            {"branch": {"if": {"event": "order_paid"}, "then": "exit", "else": "next"}},
            {"action": {"type": "webhook", "channel": "wecom", "url": "https://wecom.example.com/hook",
                        "secret": "replace-with-your-signing-secret"}},
            {"action": {"type": "tag", "name": "woken"}},
        ],
        "goal": {"event": "order_paid", "within_days": 14},
        "holdout_pct": 10,
    },
    "churn": {
        "trigger": {"type": "churn_risk", "threshold": 0.7},
        "steps": [
            {"action": {"type": "webhook", "channel": "coupon", "url": "https://coupons.example.com/grant",
                        "secret": "replace-with-your-signing-secret", "payload": {"coupon": "COMEBACK20"}}},
            {"wait": {"hours": 72}},
            {"branch": {"if": {"event": "order_paid"}, "then": "exit", "else": "next"}},
            {"action": {"type": "tag", "name": "churn_risk_contacted"}},
        ],
        "goal": {"event": "order_paid", "within_days": 21},
        "holdout_pct": 10,
    },
    "segment": {
        "trigger": {"type": "segment", "tag": "high_value"},
        "steps": [
            {"action": {"type": "campaign", "name": "your-campaign-id"}},
            {"wait": {"hours": 24}},
            {"action": {"type": "webhook", "channel": "wecom", "url": "https://wecom.example.com/hook",
                        "secret": "replace-with-your-signing-secret"}},
        ],
        "goal": {"event": "join_campaign", "within_days": 7},
        "holdout_pct": 10,
        "quiet_hours": "22-8",
    },
}  # fmt: skip


def _target_text(t, target) -> str:
    if target == "next":
        return t("journeys.target.next")
    if target == "exit":
        return t("journeys.target.exit")
    return t("journeys.target.step").format(n=int(target) + 1)


def _num(value: float) -> str:
    return f"{value:g}"


def _data(value: object) -> Markup:
    return Markup('<span translate="no">{}</span>').format(value)


def trigger_text(t, trigger: dict) -> Markup:
    """The trigger in words; the tag and event names in it are data (marked translate="no")."""
    kind = trigger["type"]

    def text(key: str, **values: Any) -> Markup:
        return Markup(escape(t(key))).format(**values)

    if kind == "segment":
        return text("journeys.trigger.segment", tag=_data(trigger["tag"]))
    if kind == "event":
        return text(
            "journeys.trigger.event",
            event=_data(trigger["event"]),
            hours=_num(trigger.get("lookback_hours", 24)),
        )
    if kind == "churn_risk":
        return text("journeys.trigger.churn_risk", threshold=_num(trigger["threshold"]))
    return text("journeys.trigger.silence", days=trigger["days"])


def flow(t, definition: dict) -> list[dict]:
    """The journey's steps as readable nodes: kind, text, and for a branch where each answer goes."""
    nodes = []
    for i, step in enumerate(definition["steps"]):
        node: dict[str, Any] = {"n": i + 1, "anchor": f"step-{i + 1}"}
        if step.get("wait"):
            node |= {"kind": "wait", "text": t("journeys.wait").format(hours=_num(step["wait"]["hours"]))}
        elif step.get("branch"):
            b = step["branch"]
            cond = b["if"]
            cond_text = (
                t("journeys.cond_event").format(event=cond["event"])
                if cond.get("event")
                else t("journeys.cond_tag").format(tag=cond["tag"])
            )
            node |= {
                "kind": "branch",
                "text": t("journeys.branch").format(cond=cond_text),
                "answers": [
                    (
                        t("journeys.then").format(target=_target_text(t, b.get("then", "next"))),
                        b.get("then", "next"),
                    ),
                    (
                        t("journeys.else").format(target=_target_text(t, b.get("else", "next"))),
                        b.get("else", "next"),
                    ),
                ],
            }
        else:
            a = step["action"]
            if a["type"] == "webhook":
                text = t("journeys.action.webhook").format(channel=a.get("channel", ""), url=a.get("url", ""))
            else:
                text = t(f"journeys.action.{a['type']}").format(name=a.get("name", ""))
            node |= {"kind": "action", "action": a["type"], "text": text, "payload": a.get("payload") or None}
        nodes.append(node)
    return nodes


def contact_rules(t, definition: dict) -> list[str]:
    """The checks the automation service makes before every action, with this journey's settings."""

    settings = get_settings()
    own = definition.get("quiet_hours") is not None
    quiet = service.quiet_hours(definition.get("quiet_hours"))
    source = t("journeys.rule_quiet_own") if own else t("journeys.rule_quiet_global")
    quiet_text = (
        t("journeys.rule_quiet_none").format(source=source)
        if quiet is None
        else t("journeys.rule_quiet").format(hours=f"{quiet[0]:02d}:00–{quiet[1]:02d}:00", zone=settings.timezone,
                                             source=source)
    )  # fmt: skip
    return [
        t("journeys.rule_consent"),
        quiet_text,
        t("journeys.rule_cap").format(
            cap=settings.automation_cap_contacts, days=settings.automation_cap_window_days
        ),
        t("journeys.rule_holdout").format(pct=definition.get("holdout_pct", 10)),
    ]


def _journey_row(t, journey: JourneyOut, st: dict) -> dict:
    tr, co = st["arms"]["treatment"], st["arms"]["control"]
    return {
        "id": journey.id,
        "name": journey.name,
        "status": t(f"journeys.status.{journey.status}"),
        "trigger": trigger_text(t, journey.definition["trigger"]),
        "entered": tr["entered"],
        "control_entered": co["entered"],
        "actioned": tr["actioned"],
        "converted": tr["converted"],
        "treatment_rate": tr["conversion_rate"],
        "control_rate": co["conversion_rate"],
        "lift": st["lift"],
        "uplift": st["uplift"],
        "last_scan_at": journey.last_scan_at,
    }


def _rates_chart(t, rows: list[dict], chart_id: str = "journey-rates", links: bool = True) -> Chart:
    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 50, "right": 20, "top": 36, "bottom": 40},
        "xAxis": {"type": "category", "data": [r["name"] for r in rows]},
        "yAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
        "series": [
            {
                "name": t("journeys.arm.treatment"),
                "type": "bar",
                "itemStyle": {"color": "#b3102a"},
                "data": [
                    None if r["treatment_rate"] is None else round(r["treatment_rate"] * 100, 2) for r in rows
                ],
            },
            {
                "name": t("journeys.arm.control"),
                "type": "bar",
                "itemStyle": {"color": "#8c959f"},
                "data": [
                    None if r["control_rate"] is None else round(r["control_rate"] * 100, 2) for r in rows
                ],
            },
        ],
    }
    if links:  # a click on a journey's bars opens it
        option["liebianLinks"] = [[f"/journeys/{r['id']}" for r in rows]] * 2
    return Chart(chart_id, option, "journeys.rates_chart", height=300)


def warm_journey_stats() -> None:
    """The journeys' results change with the operational store, so they are not kept; computing them
    once loads what the page needs (modules, the warehouse columns of the goals) before a visitor."""

    with session_scope() as s:
        service.stats_many(s, [j.id for j in service.list_journeys(s)])


@router.get("/journeys")
def journeys_page(request: Request) -> Response:

    t = translator(locale_of(request))
    with session_scope() as s:
        journeys = service.list_journeys(s)
        stats = service.stats_many(s, [j.id for j in journeys])
    rows = [_journey_row(t, j, stats[j.id]) for j in journeys]
    table = Table(
        "journeys",
        [
            Column("name", "journeys.name", data=True),
            Column("status", "journeys.status"),
            Column("trigger", "journeys.trigger"),
            Column("entered", "journeys.entered", "int"),
            Column("control_entered", "journeys.control_entered", "int"),
            Column("actioned", "journeys.actioned", "int"),
            Column("converted", "journeys.converted", "int"),
            Column("treatment_rate", "journeys.treatment_rate", "pct"),
            Column("control_rate", "journeys.control_rate", "pct"),
            Column("lift", "journeys.lift", "pct"),
            Column("uplift", "journeys.uplift", "pct"),
            Column("last_scan_at", "journeys.last_scan", "datetime"),
        ],
        rows,
        title="journeys.list",
        link=lambda row: f"/journeys/{row['id']}",
        link_column="name",
    )
    charts = [_rates_chart(t, rows)] if rows else []
    return render(request, "reports/journeys.html", {"table": table, "charts": charts}, tables=[table])


@router.get("/journeys/new")
def journey_new(request: Request) -> Response:
    """The form editor (steps as forms), prefilled from an example or, with `from`, a copy of a
    journey; `mode=json` is the raw JSON editor."""
    example = request.query_params.get("example", "silence")
    if example not in EXAMPLES:
        example = "silence"
    if request.query_params.get("mode") == "json":
        definition = json.dumps(EXAMPLES[example], ensure_ascii=False, indent=2)
        return render(
            request,
            "reports/journey_new.html",
            {"definition": definition, "examples": list(EXAMPLES), "example": example},
        )
    state = journey_form.from_definition(EXAMPLES[example])
    source = request.query_params.get("from", "")
    if source.isdigit() and len(source) <= 18:
        try:
            with session_scope() as s:
                journey = service.get_journey(s, int(source))
            state = journey_form.from_definition(journey.definition, journey.name)
        except AutomationError:
            pass  # an unknown journey: the example instead
    return _editor(request, state, {}, page=True, example=example)


def _editor(
    request: Request, state: dict, errors: dict[str, str], *, page: bool = False, example: str = ""
) -> Response:
    context = {"state": state, "errors": errors, "examples": list(EXAMPLES), "example": example,
               "triggers": journey_form.TRIGGERS, "kinds": journey_form.KINDS, "actions": journey_form.ACTIONS,
               "max_steps": journey_form.MAX_STEPS}  # fmt: skip
    template = "reports/journey_editor.html" if page else "reports/_journey_editor.html"
    return render(request, template, context)


@router.post("/journeys/editor")
async def journey_editor(request: Request) -> Response:
    """The form editor's operations: add, remove or move a step (the form comes back), or save
    (through the automation service; a refused field comes back marked with its catalogued reason)."""
    form = await request.form()
    state = journey_form.from_form(form)
    op = str(form.get("op", ""))[:32]
    if op != "save":
        return _editor(request, journey_form.apply(state, op, str(form.get("add_kind", ""))), {})
    definition, errors = journey_form.to_definition(state)
    if errors:
        return _editor(request, state, errors)
    try:
        with session_scope() as s:
            journey = service.create_journey(s, state["name"].strip(), definition)
            if not state["activate"]:
                service.set_status(s, journey.id, "paused")
    except ValidationError as exc:
        return _editor(
            request,
            state,
            {journey_form.field_of(tuple(exc.errors()[0]["loc"])): "plans.journey.invalid.other"},
        )
    except UnsafeURL:
        urls = [
            f"steps-{i}-url"
            for i, st in enumerate(state["steps"])
            if st["kind"] == "action" and st["action"] == "webhook"
        ]
        return _editor(request, state, dict.fromkeys(urls, "plans.journey.invalid.unsafe_url"))
    except AutomationError as exc:
        field = exc.field or "name"
        return _editor(
            request,
            state,
            {field: "plans.journey.invalid.exists" if exc.status == 409 else "plans.journey.invalid.other"},
        )
    return htmx_redirect(f"/journeys/{journey.id}")


def _validation_text(exc, locale: str) -> str:
    """A pydantic error as 'field.path: reason; …' (the definition's own field names), each reason
    in the console's language when its type has a message."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        reason = validation_reason(err, locale)
        parts.append(f"definition.{loc}: {reason}" if loc else f"definition: {reason}")
    return "; ".join(parts)


@router.post("/journeys")
def journey_create(
    request: Request, name: str = Form(""), definition: str = Form(""), activate: str = Form("")
) -> Response:

    t = translator(locale_of(request))
    if not name.strip():
        return flash_fragment(t("reports.required").format(field="name"), ok=False)
    try:
        data = json.loads(definition)
    except json.JSONDecodeError as exc:
        return flash_fragment(t("journeys.bad_json").format(error=exc), ok=False)
    if not isinstance(data, dict):
        return flash_fragment(t("journeys.bad_json").format(error="an object {…} is expected"), ok=False)
    try:
        with session_scope() as s:
            journey = service.create_journey(s, name.strip()[:128], data)
            if not activate:
                service.set_status(s, journey.id, "paused")
    except ValidationError as exc:
        return flash_fragment(_validation_text(exc, locale_of(request)), ok=False)
    except (AutomationError, UnsafeURL) as exc:
        return flash_fragment(exc.message, ok=False)
    return htmx_redirect(f"/journeys/{journey.id}")


@router.get("/journeys/{journey_id}")
def journey_page(request: Request, journey_id: Int64) -> Response:

    t = translator(locale_of(request))
    try:
        with session_scope() as s:
            journey = service.get_journey(s, journey_id)
            st = service.stats(s, journey_id)
    except AutomationError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain; charset=utf-8")
    definition = journey.definition
    row = _journey_row(t, journey, st)
    arms = Table(
        "arms",
        [
            Column("arm", "journeys.arm"),
            Column("entered", "journeys.arm_entered", "int"),
            Column("actioned", "journeys.actioned", "int"),
            Column("converted", "journeys.converted", "int"),
            Column("conversion_rate", "journeys.conversion_rate", "pct"),
        ],
        [{"arm": t(f"journeys.arm.{arm}"), **st["arms"][arm]} for arm in ("treatment", "control")],
        title="journeys.arms",
    )
    outcomes = Table(
        "outcomes",
        [Column("outcome", "journeys.outcome"), Column("count", "journeys.count", "int")],
        [{"outcome": t(f"journeys.outcome.{k}"), "count": n} for k, n in sorted(st["outcomes"].items())],
        title="journeys.outcomes",
    )
    goal = definition.get("goal") or {"event": "order_paid", "within_days": 14}
    context = {
        "journey": journey,
        "stats": st,
        "row": row,
        "trigger": trigger_text(t, definition["trigger"]),
        "nodes": flow(t, definition),
        "goal": t("journeys.goal_text").format(event=goal["event"], days=_num(goal["within_days"])),
        "rules": contact_rules(t, definition),
        "charts": [_rates_chart(t, [row], "journey-arms", links=False)],
        "tables": [arms, outcomes],
    }
    return render(request, "reports/journey.html", context, tables=[arms, outcomes])


def _set_status(journey_id: int, status: str) -> Response:

    try:
        with session_scope() as s:
            service.set_status(s, journey_id, status)
    except AutomationError as exc:
        return flash_fragment(exc.message, ok=False)
    return htmx_redirect(f"/journeys/{journey_id}")


@router.post("/journeys/{journey_id}/pause")
def journey_pause(journey_id: Int64) -> Response:
    return _set_status(journey_id, "paused")


@router.post("/journeys/{journey_id}/activate")
def journey_activate(journey_id: Int64) -> Response:
    return _set_status(journey_id, "active")

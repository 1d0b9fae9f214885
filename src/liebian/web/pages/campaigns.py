"""Campaigns in the console: the list, the editor (a draft is edited in place, a launched campaign
gets a new version of its rules), and the detail page with the compliance check, the lifecycle
actions (launch is refused while a hard compliance rule fails), the poster preview and the referrals.

Everything a campaign is and does is the campaign service's (liebian.campaigns.service): this page
turns its form into the service's rules document — field names are the rules' own paths, so the
problems the service reports land next to the field they name — and shows what the service returns.
"""

from __future__ import annotations

import base64
from datetime import datetime
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from liebian.campaigns import invites, service
from liebian.campaigns import views as campaign_views
from liebian.campaigns.common import CampaignError
from liebian.campaigns.schemas import CAMPAIGN_TYPES, CampaignCreate
from liebian.campaigns.views import CampaignStats
from liebian.db.session import session_scope
from liebian.rewards import service as ledger
from liebian.web.console import Column, ConsoleFilters, Table, flash_fragment, htmx_redirect, render
from liebian.web.console import _principal as principal
from liebian.web.format import validation_reason, zone_label
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.campaign_form import (
    GROWING,
    MAX_ROWS,
    all_fields,
    default_rules,
    editor_sections,
    list_row,
    local_time,
    place_errors,
    preview_rules,
    row_count,
    rules_from_form,
    rules_rows,
    values_from_rules,
)
from liebian.web.pages.campaign_stages import stage_section

router = APIRouter(include_in_schema=False)

STATUSES = ("draft", "scheduled", "live", "paused", "ended")
REFERRAL_STATES = ("accepted", "held", "blocked", "refunded", "duplicate")
SHOWN_REFERRALS = 200  # the detail page shows the first ones; the export has them all
IRREVERSIBLE = ("launch", "end")  # actions that need confirm=1 (a dialog in the browser)


def channel_namer(locale: str):
    """A channel's display name; a channel without a message shows as it is stored."""
    t = translator(locale)

    def name(channel: str) -> str:
        text = t(f"channel.{channel}")
        return channel if text == f"channel.{channel}" else text

    return name


# --- pages --------------------------------------------------------------------------------------


def _principal(request: Request):

    return principal(request)


def _campaign_error_page(request: Request, message: str, status: int) -> Response:
    return render(request, "campaigns/missing.html", {"message": message}, status_code=status)


def _list_rows(t, views: list[dict], stats: dict[str, CampaignStats]) -> list[dict]:
    rows = []
    for v in views:
        s = stats.get(v["id"], CampaignStats())
        rules = v.get("rules") or {}
        budget, used = v["budget_fen"], v["budget_used_fen"]
        rows.append(
            {
                "id": v["id"],
                "title": v["title"],
                "type": t(f"campaigns.type.{v['type']}"),
                "type_code": v["type"],
                "status": t(f"campaigns.status.{v['status']}"),
                "status_code": v["status"],
                "start": local_time(rules.get("start_at")),
                "end": local_time(rules.get("end_at")),
                "budget_fen": budget,
                "budget_used_fen": used,
                "budget_used_share": (used / budget) if budget else None,
                "participants": s.participants,
                "referrals": s.referrals,
                "qualified": s.qualified,
                "held": s.states.get("held", 0),
                "version": v["version"],
                "created_at": local_time(v["created_at"]),
            }
        )
    return rows


def _overlaps(row: dict, start: str, end: str) -> bool:
    """Does the campaign's window meet the period [start, end] (dates in the brand's zone)?"""
    if start and row["end"] is not None and row["end"].date().isoformat() < start:
        return False
    return not (end and row["start"] is not None and row["start"].date().isoformat() > end)


@router.get("/campaigns")
def campaign_list(request: Request) -> Response:

    t = translator(locale_of(request))
    filters = ConsoleFilters.from_request(request)
    q = request.query_params
    wanted = {
        "status": q.get("status", "") if q.get("status", "") in STATUSES else "",
        "type": q.get("type", "") if q.get("type", "") in CAMPAIGN_TYPES else "",
        "q": (q.get("q") or "").strip(),
    }
    with session_scope() as s:
        views = service.list_campaigns(s, wanted["status"] or None, with_rules=True)
        stats = campaign_views.campaign_stats(s)
    rows = _list_rows(t, views, stats)
    needle = wanted["q"].lower()
    rows = [
        r
        for r in rows
        if (not wanted["type"] or r["type_code"] == wanted["type"])
        and (not needle or needle in r["id"].lower() or needle in r["title"].lower())
        and (not filters.campaign or r["id"] == filters.campaign)
        and _overlaps(r, filters.start, filters.end)
    ]
    rows.sort(key=lambda r: r["created_at"] or datetime.min, reverse=True)
    table = Table(
        "campaigns",
        [
            Column("id", "campaigns.id", data=True),
            Column("title", "campaigns.title", data=True),
            Column("type", "campaigns.type"),
            Column("status", "campaigns.status"),
            Column("start", "campaigns.start", "datetime"),
            Column("end", "campaigns.end", "datetime"),
            Column("budget_used_fen", "campaigns.budget_used", "fen"),
            Column("budget_fen", "campaigns.budget", "fen"),
            Column("budget_used_share", "campaigns.budget_used_share", "pct"),
            Column("participants", "campaigns.participants", "int"),
            Column("referrals", "campaigns.referrals", "int"),
            Column("qualified", "campaigns.qualified", "int"),
            Column("held", "campaigns.held", "int"),
            Column("version", "campaigns.version", "int"),
        ],
        rows,
        title="campaigns.list",
        link=lambda row: f"/campaigns/{row['id']}",
        link_column="id",
    )
    context = {
        "filters": filters,
        "wanted": wanted,
        "statuses": STATUSES,
        "types": CAMPAIGN_TYPES,
        "table": table,
        "any_campaign": bool(views),
        "zone": zone_label(),
    }
    return render(request, "campaigns/list.html", context, tables=[table])


# editor -----------------------------------------------------------------------------------------


def _editor_context(
    request: Request,
    *,
    campaign: dict[str, Any] | None,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The editor for a new campaign (campaign None) or an existing one, showing `values` (a
    submitted form) or else the campaign's current rules."""
    new = campaign is None
    launched = campaign is not None and campaign["status"] != "draft"
    source_rules = default_rules() if campaign is None else campaign["rules"]
    kind = (values or {}).get("type") or source_rules.get("type") or "invite_task"
    if kind not in CAMPAIGN_TYPES:
        kind = "invite_task"
    if values is None:  # the campaign's own rows (tiers, ranks), or one empty row
        probe = editor_sections(kind, rules_rows(source_rules, kind), new=new, launched=launched)
        values = values_from_rules(source_rules, all_fields(probe))
        values["type"] = kind
    sections = editor_sections(
        kind, row_count(values, GROWING.get(kind, "tiers")), new=new, launched=launched
    )
    errors = errors or {}
    labels = _field_labels(translator(locale_of(request)), sections)
    error_list = [(*labels[name], "; ".join(reasons)) for name, reasons in errors.items() if name in labels]
    unplaced = [f"{name}: {'; '.join(reasons)}" for name, reasons in errors.items() if name not in labels]
    action = "/campaigns/new" if campaign is None else f"/campaigns/{campaign['id']}/edit"
    return {
        "campaign": campaign,
        "new": new,
        "launched": launched,
        "kind": kind,
        "sections": sections,
        "values": values,
        "errors": errors,
        "error_count": sum(len(v) for v in errors.values()),
        "error_list": error_list,
        "unplaced": unplaced,
        "max_rows": MAX_ROWS,
        "action": action,
        "next_version": (campaign["version"] + 1) if campaign is not None and launched else 1,
    }


def _field_labels(t, sections) -> dict[str, tuple[str, str]]:
    """Each field's (DOM id, label as the operator reads it: a row's field with its row), for the
    error summary that names every field at fault."""
    out: dict[str, tuple[str, str]] = {}
    for sec in sections:
        if sec.group:
            out[sec.group] = (f"group-{sec.group.replace('.', '-')}", t(sec.legend))
        for f in sec.fields:
            out[f.name] = (f.dom_id, t(f.label))
        for label, n, fields in sec.rows:
            row = t(label).replace("{n}", str(n))
            out |= {f.name: (f.dom_id, f"{row} · {t(f.label)}") for f in fields}
    return out


def _form_values(form) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key.startswith("_"):
            continue
        out[key] = value if isinstance(value, str) else ""
    return out


def _submitted(request: Request) -> dict[str, Any] | None:
    """On a type change the editor re-renders with what was typed so far (htmx GET with the form)."""
    if request.query_params.get("_submitted") != "1":
        return None
    return _form_values(request.query_params)


def _load_campaign(campaign_id: str) -> dict[str, Any] | None:

    with session_scope() as s:
        try:
            return service.get_campaign(s, campaign_id)
        except CampaignError:
            return None


def _editor_page(request: Request, campaign: dict[str, Any] | None) -> Response:
    context = _editor_context(request, campaign=campaign, values=_submitted(request))
    return render(request, "campaigns/editor.html", context)


@router.get("/campaigns/editor/row")
def editor_row(request: Request) -> Response:
    """One more tier (or rank) row for the editor, and the "add" button moved on (htmx out-of-band)."""
    kind = request.query_params.get("kind", "")
    n_text = request.query_params.get("n", "")
    n = int(n_text) if n_text.isascii() and n_text.isdigit() and len(n_text) <= 3 else MAX_ROWS
    if kind not in GROWING or n >= MAX_ROWS:  # a full list (or a made-up request) adds nothing
        return render(request, "campaigns/_row.html", {"row": None, "grow": GROWING.get(kind, "tiers"),
                                                        "kind": kind, "n": MAX_ROWS, "max_rows": MAX_ROWS})  # fmt: skip
    context = {"row": list_row(kind, n), "grow": GROWING[kind], "kind": kind, "n": n + 1, "max_rows": MAX_ROWS,
               "values": {}, "errors": {}, "launched": False, "action": ""}  # fmt: skip
    return render(request, "campaigns/_row.html", context)


def _preview(request: Request, values: dict[str, Any]) -> Response:
    """The poster as the form stands (an <img> with the PNG inline), for the editor's live preview."""
    t = translator(locale_of(request))
    kind = str(values.get("type")) if values.get("type") in CAMPAIGN_TYPES else "invite_task"
    sections = editor_sections(kind, row_count(values, GROWING.get(kind, "tiers")), new=False, launched=False)
    doc, _errors, _renumbered = rules_from_form(values, all_fields(sections), t)
    png = invites.render_poster(preview_rules(doc, kind), "", invites.invite_link("preview"))
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    alt = escape(t("ccamp.preview_alt"))
    return HTMLResponse(f'<img id="poster-preview-img" src="{src}" width="300" height="440" alt="{alt}">')


@router.post("/campaigns/editor/preview")
async def editor_preview(request: Request) -> Response:
    values = _form_values(await request.form())
    return await run_in_threadpool(_preview, request, values)


@router.get("/campaigns/new")
def campaign_new(request: Request) -> Response:
    return _editor_page(request, None)


@router.get("/campaigns/{campaign_id}/edit")
def campaign_edit(request: Request, campaign_id: str) -> Response:
    campaign = _load_campaign(campaign_id)
    if campaign is None:
        return _campaign_error_page(request, campaign_id, 404)
    return _editor_page(request, campaign)


def _save(request: Request, campaign: dict[str, Any] | None, values: dict[str, Any]) -> Response:
    """Create or edit through the service; its refusals come back next to the fields they name."""

    t = translator(locale_of(request))
    new = campaign is None
    kind: str = values["type"] if values.get("type") in CAMPAIGN_TYPES else "invite_task"
    launched = campaign is not None and campaign["status"] != "draft"
    if campaign is not None and launched:
        kind = campaign["type"]  # a launched campaign keeps its type
        values["type"] = kind
    sections = editor_sections(
        kind, row_count(values, GROWING.get(kind, "tiers")), new=new, launched=launched
    )
    doc, errors, renumbered = rules_from_form(values, all_fields(sections), t)
    if campaign is not None:  # the form has no region / store-type variants: they stay as they are
        doc.setdefault("variants", campaign["rules"].get("variants", []))
    campaign_id = (values.get("id") or "").strip() or None
    if new and campaign_id == "new":  # /campaigns/new is the editor: such a campaign had no page
        errors.setdefault("id", []).append(t("campaigns.err.reserved_id"))
    elif new and campaign_id:
        try:
            CampaignCreate(id=campaign_id, rules={})
        except Exception as exc:  # noqa: BLE001 - pydantic says what is wrong with the slug
            first = exc.errors()[0]  # type: ignore[attr-defined]
            errors.setdefault("id", []).append(validation_reason(first, locale_of(request)))
    if not errors:
        actor = _principal(request).name
        try:
            with session_scope() as s:
                if campaign is None:
                    saved = service.create_campaign(s, doc, campaign_id=campaign_id, actor=actor)
                else:
                    saved = service.edit_campaign(
                        s, campaign["id"], doc, note=(values.get("note") or "").strip(), actor=actor
                    )
            return htmx_redirect(f"/campaigns/{saved['id']}")
        except CampaignError as exc:
            locale = locale_of(request)
            reason = exc.message_zh if locale == "zh-CN" else exc.message
            errors = place_errors(exc.errors or [{"field": "rules", "reason": reason}], renumbered, locale)
    context = _editor_context(request, campaign=campaign, values=values, errors=errors)
    # 200: htmx swaps only successful answers; the form comes back with the problems marked
    return render(request, "campaigns/editor.html", context)


@router.post("/campaigns/new")
async def campaign_create(request: Request) -> Response:
    values = _form_values(await request.form())
    return await run_in_threadpool(_save, request, None, values)


@router.post("/campaigns/{campaign_id}/edit")
async def campaign_update(request: Request, campaign_id: str) -> Response:
    values = _form_values(await request.form())
    campaign = await run_in_threadpool(_load_campaign, campaign_id)
    if campaign is None:
        return flash_fragment(
            f"{translator(locale_of(request))('campaigns.not_found')}: {campaign_id}", ok=False
        )
    return await run_in_threadpool(_save, request, campaign, values)


# detail -----------------------------------------------------------------------------------------


def referral_state(referral: dict) -> str:
    """What a referral's state reads as: an accepted friend who reached the qualifying event is
    qualified (已达标); held, blocked, refunded and duplicate referrals read as they are."""
    if referral["state"] == "accepted" and referral.get("qualified_at"):
        return "qualified"
    return str(referral["state"])


def _detail_tables(t, referrals: list[dict], versions: list[dict], balances: list[dict],
                   audit: list[dict]) -> list[Table]:  # fmt: skip
    """The detail page's tables: referrals, rewards by state, rule versions, audit."""
    referral_table = Table(
        "referrals",
        [
            Column("referral_id", "campaigns.referral_id", "int"),
            Column("inviter_person_id", "campaigns.inviter", data=True),
            Column("friend_person_id", "campaigns.friend", data=True),
            Column("parent_referral_id", "campaigns.parent"),
            Column("generation", "campaigns.generation", "int"),
            Column("state_text", "campaigns.referral_state"),
            Column("channel", "campaigns.channel", codes="channel"),
            Column("version", "campaigns.version", "int"),
            Column("qualified_at", "campaigns.qualified_at", "datetime"),
        ],
        referrals,
        title="campaigns.referral_list",
    )
    version_table = Table(
        "versions",
        [
            Column("version", "campaigns.version", "int"),
            Column("created_at", "campaigns.created", "datetime"),
            Column("note", "campaigns.note", data=True),
        ],
        [{**v, "created_at": local_time(v["created_at"])} for v in reversed(versions)],
        title="campaigns.versions",
    )
    reward_table = Table(
        "rewards",
        [
            Column("state", "campaigns.reward_state"),
            Column("rewards", "campaigns.rewards", "int"),
            Column("value_fen", "campaigns.value", "fen"),
        ],
        [{**b, "state": t(f"campaigns.rstate.{b['state']}")} for b in balances],
        title="campaigns.rewards_by_state",
    )
    audit_table = Table(
        "audit",
        [
            Column("ts", "campaigns.time", "datetime"),
            Column("actor", "campaigns.actor", data=True),
            Column("action", "campaigns.action", codes="campaigns.auditaction"),
        ],
        [{**a, "ts": local_time(a["ts"])} for a in audit],
        title="campaigns.audit",
    )
    return [referral_table, reward_table, version_table, audit_table]


@router.get("/campaigns/{campaign_id}")
def campaign_detail(request: Request, campaign_id: str) -> Response:

    t = translator(locale_of(request))
    exporting = request.query_params.get("export") == "referrals"
    with session_scope() as s:
        try:
            campaign = service.get_campaign(s, campaign_id)
        except CampaignError:
            return _campaign_error_page(request, campaign_id, 404)
        report = service.compliance_report(s, campaign_id)
        stats = campaign_views.campaign_stats(s, campaign_id).get(campaign_id, CampaignStats())
        tree = campaign_views.referral_tree(s, campaign_id, limit=None if exporting else SHOWN_REFERRALS)
        referrals = [dict(node) for node in tree]  # the fields as they are (times stay datetimes)
        versions = service.versions(s, campaign_id)
        balances = ledger.balances(s, by="campaign", key=campaign_id)
        audit = service.audit_log(s, campaign_id, limit=20)
        staged = stage_section(s, campaign_id)  # None when the campaign is not staged
    channel_name = channel_namer(locale_of(request))
    for r in referrals:
        r["state_text"] = t(f"campaigns.state.{referral_state(r)}")
        r["channel"] = channel_name(r["channel"])
        r["qualified_at"] = local_time(r["qualified_at"])
    tables = _detail_tables(t, referrals, versions, balances, audit)
    rules = campaign["rules"]
    context = {
        "campaign": campaign,
        "rules": rules,
        "report": report,
        "stats": stats,
        "held": stats.states.get("held", 0),
        "start": local_time(rules.get("start_at")),
        "end": local_time(rules.get("end_at")),
        "zone": zone_label(),
        "tables": tables,
        "referral_total": stats.referrals,
        "shown_referrals": SHOWN_REFERRALS,
        "stages": staged,
    }
    return render(request, "campaigns/detail.html", context, tables=tables)


@router.get("/campaigns/{campaign_id}/poster.png")
def campaign_poster(campaign_id: str) -> Response:

    try:
        with session_scope() as s:
            png = invites.poster_preview(s, campaign_id)
    except CampaignError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def confirmed(form) -> bool:
    """Whether an irreversible action was confirmed (the button's confirm dialog adds confirm=1): a
    replayed or hand-made POST without it is refused, and says so."""
    return form.get("confirm") == "1"


def _lifecycle(request: Request, campaign_id: str, action: str, form=None) -> Response:

    fn = {"launch": service.launch, "pause": service.pause, "end": service.end}[action]
    if action in IRREVERSIBLE and not confirmed(form or {}):
        return flash_fragment(translator(locale_of(request))("ccamp.confirm_required"), ok=False)
    try:
        with session_scope() as s:
            fn(s, campaign_id, actor=_principal(request).name)
    except CampaignError as exc:
        reasons = [f"{e['field']}: {e['reason']}" for e in exc.errors] or [exc.message]
        return flash_fragment(" · ".join(reasons), ok=False)
    return htmx_redirect(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/launch")
async def campaign_launch(request: Request, campaign_id: str) -> Response:
    """Launch (confirmed) after the compliance check; a failing check is refused and says why."""
    form = await request.form()
    return await run_in_threadpool(_lifecycle, request, campaign_id, "launch", form)


@router.post("/campaigns/{campaign_id}/pause")
def campaign_pause(request: Request, campaign_id: str) -> Response:
    return _lifecycle(request, campaign_id, "pause")


@router.post("/campaigns/{campaign_id}/end")
async def campaign_end(request: Request, campaign_id: str) -> Response:
    """End the campaign (confirmed): it cannot be resumed."""
    form = await request.form()
    return await run_in_threadpool(_lifecycle, request, campaign_id, "end", form)

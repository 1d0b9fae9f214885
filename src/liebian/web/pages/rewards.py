"""The rewards page (/rewards): the reward ledger's rewards by state and campaign; pending rewards
approved one by one or in bulk, approved ones issued in one payout batch, the payout file exported.

Every move is the ledger's own (`rewards.service.transition`, `rewards.payouts.issue_batch`):
idempotent, hash-chained, refused when the state does not allow it (a reward held for fraud review
cannot be approved). The ledger records the acting user or API key, and so does the audit log
(`reward.approve`, `payout.issue`; the payout export through its watermark). A confirmation comes
before every move (they cannot be undone from the console)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from liebian.auth import service as auth_service
from liebian.auth.deps import client_ip, write_refused
from liebian.campaigns import service as campaign_service
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.rewards import payouts, service
from liebian.schemas import Int64
from liebian.web.console import Column, Table, _principal, render
from liebian.web.i18n import locale_of, translator
from liebian.web.people import may_name, person_labels

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
EXPORT_LIMIT = 50_000
TABS = (*service.STATES, "all")
MAX_SELECTED = 1000  # rewards one bulk action may name
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _params(source) -> dict[str, Any]:  # noqa: ANN001 - query params or a form
    """The page's filters from the URL (GET) or the form's hidden fields (after an action)."""
    state = source.get("state") or service.PENDING
    try:
        page = max(1, min(10**6, int(source.get("page") or 1)))
    except ValueError:
        page = 1
    campaign = (source.get("campaign") or "").strip()
    return {
        "state": state if state in TABS else service.PENDING,
        # no campaign id is longer than 64 characters or holds a NUL (PostgreSQL refuses those)
        "campaign": campaign if len(campaign) <= 64 and "\x00" not in campaign else "",
        "page": page,
    }


def _url(params: dict[str, Any], path: str = "/rewards", **overrides: Any) -> str:
    values = {**params, **overrides}
    query = {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}
    return path + (("?" + urlencode(query)) if query else "")


COLUMNS = [
    Column("id", "rewards_page.id", "int"),
    Column("person_id", "rewards_page.person", data=True),
    Column("campaign_id", "rewards_page.campaign", data=True),
    Column("reward_code", "rewards_page.code", data=True),
    Column("value_fen", "rewards_page.value", "fen"),
    Column("state", "rewards_page.state", codes="campaigns.rstate"),
    Column("held_for_review", "rewards_page.held"),
    Column("hold_until", "rewards_page.hold_until", "utc"),
    Column("created_at", "rewards_page.created", "utc"),
    Column("source_ref", "rewards_page.source", data=True),
]


def _page(request: Request, params: dict[str, Any], flash: tuple[str, bool] | None = None) -> Response:
    state = None if params["state"] == "all" else params["state"]
    campaign = params["campaign"] or None
    exporting = request.query_params.get("export") == "rewards"
    with session_scope() as s:
        total = service.count_rewards(s, state=state, campaign_id=campaign)
        pages = max(1, -(-total // PAGE_SIZE))
        params = {**params, "page": min(params["page"], pages)}
        limit, offset = (EXPORT_LIMIT, 0) if exporting else (PAGE_SIZE, (params["page"] - 1) * PAGE_SIZE)
        rewards = [r.as_dict() for r in service.list_rewards(s, state=state, campaign_id=campaign,
                                                             limit=limit, offset=offset)]  # fmt: skip
        balances = service.balances(s, "campaign", campaign)  # every campaign when None
        campaigns = _campaign_choices(s)
        labels = person_labels(s, [r["person_id"] for r in rewards[:PAGE_SIZE]], may_name(request))
    totals: dict[str, list[int]] = {st: [0, 0] for st in service.STATES}
    for b in balances:
        totals[b["state"]][0] += b["rewards"]
        totals[b["state"]][1] += b["value_fen"]
    t = translator(locale_of(request))
    for r in rewards:
        r["held_for_review"] = t("rewards_page.held_yes") if r["held_for_review"] else ""
    table = Table("rewards", COLUMNS, rewards, title="rewards_page.list")
    context = {
        "params": params,
        "tabs": TABS,
        "totals": totals,
        "rewards": rewards,
        "labels": labels,
        "total": total,
        "pages": pages,
        "campaigns": campaigns,
        "url": lambda path="/rewards", **o: _url(params, path, **o),
        "flash": flash,
        "batch_key": uuid.uuid4().hex,
        "can_write": _principal(request).can("rewards:write"),
    }
    return render(request, "rewards/page.html", context, tables=[table])


def _campaign_choices(session) -> list[tuple[str, str]]:  # noqa: ANN001 - a store session
    """(id, title) of every campaign with rewards: the engine's titles, else the id."""
    titles = dict(campaign_service.campaign_titles(session))
    return [(cid, titles.get(cid, cid)) for cid in service.reward_campaigns(session)]


@router.get("/rewards")
def rewards_page(request: Request) -> Response:
    return _page(request, _params(request.query_params))


# --- actions ------------------------------------------------------------------------------------


async def _form(request: Request) -> tuple[dict[str, str], list[int], str]:
    """The form's text fields, the reward ids it names (at most MAX_SELECTED; an id that is not an
    integer of 64 bits is named as the problem) and that problem, if any."""
    form = await request.form()
    ids: list[int] = []
    problem = ""
    for value in form.getlist("reward_ids"):
        if not isinstance(value, str):
            continue
        text = value.strip()
        if not (text.isdigit() and len(text) <= 18):
            problem = text[:40]
            continue
        ids.append(int(text))
    # free text reaches the ledger: no NUL characters (PostgreSQL refuses them in text)
    fields = {k: v.replace("\x00", "") for k, v in form.items() if isinstance(v, str)}
    return fields, list(dict.fromkeys(ids))[:MAX_SELECTED], problem


def _error_text(t, exc: DomainError, locale: str) -> str:  # noqa: ANN001 - a translator
    """A refused move in the reader's language: the catalogue's sentence for the ledger's code."""
    key = f"rewards_page.err.{exc.code}"
    text = t(key)
    if text != key:
        return text
    return exc.message_zh if locale == "zh-CN" else exc.message


def _approve(request: Request, form: dict[str, str], ids: list[int], problem: str) -> Response:
    locale = locale_of(request)
    t = translator(locale)
    params = _params(form)
    if problem:
        write_refused(request)
        return _page(request, params, (f"{t('rewards_page.bad_id')} {problem}", False))
    if not ids:
        write_refused(request)
        return _page(request, params, (t("rewards_page.none_selected"), False))
    actor, note = _principal(request).name, form.get("note", "").strip()[:500]
    done, same, failed = [], [], []
    for rid in ids:
        try:
            with session_scope() as s:  # one reward per transaction: one refusal spoils no other
                before = service.get_reward(s, rid).state
                view = service.transition(s, rid, service.APPROVED, idempotency_key=f"console:approve:{rid}",
                                          actor=actor, note=note)  # fmt: skip
                if before != view.state:
                    auth_service.audit(s, actor, "reward.approve", f"reward:{rid}",
                                       {"campaign_id": view.campaign_id, "value_fen": view.value_fen}, client_ip(request))  # fmt: skip
                    done.append(rid)
                else:
                    same.append(rid)
        except DomainError as exc:
            failed.append(f"#{rid} {_error_text(t, exc, locale)}")
    if not done:
        write_refused(request)
    parts = []
    if done:
        parts.append(t("rewards_page.approved") + " " + " ".join(f"#{i}" for i in done))
    if same:
        parts.append(t("rewards_page.unchanged") + " " + " ".join(f"#{i}" for i in same))
    if failed:
        parts.append(t("rewards_page.failed") + " " + "; ".join(failed))
    return _page(request, params, (" · ".join(parts), not failed))


@router.post("/rewards/approve")
async def approve_selected(request: Request) -> Response:
    """Approve the selected pending rewards (each on its own: one refusal leaves the others)."""
    form, ids, problem = await _form(request)
    return await run_in_threadpool(_approve, request, form, ids, problem)


@router.post("/rewards/{reward_id}/approve")
async def approve_one(request: Request, reward_id: Int64) -> Response:
    form, _ids, _problem = await _form(request)
    return await run_in_threadpool(_approve, request, form, [reward_id], "")


def _issue(request: Request, form: dict[str, str], ids: list[int], problem: str) -> Response:
    locale = locale_of(request)
    t = translator(locale)
    params = _params(form)
    every = form.get("all") == "1"
    if problem or not (ids or every):
        write_refused(request)
        message = f"{t('rewards_page.bad_id')} {problem}" if problem else t("rewards_page.none_selected")
        return _page(request, params, (message, False))
    actor = _principal(request).name
    try:
        with session_scope() as s:
            batch = payouts.issue_batch(
                s, idempotency_key=f"console:{form.get('batch_key') or uuid.uuid4().hex}"[:160], actor=actor,
                reward_ids=None if every else ids, all_approved=every, campaign_id=params["campaign"] or None,
                note=form.get("note", "").strip()[:500],
            )  # fmt: skip
            auth_service.audit(s, actor, "payout.issue", f"payout_batch:{batch.id}",
                               {"rewards": batch.reward_ids, "total_fen": batch.total_fen}, client_ip(request))  # fmt: skip
    except DomainError as exc:
        write_refused(request)
        return _page(request, params, (f"{t('rewards_page.failed')} {_error_text(t, exc, locale)}", False))
    if not batch.reward_ids:
        return _page(request, params, (t("rewards_page.nothing_to_issue"), False))
    shown = " ".join(f"#{i}" for i in batch.reward_ids[:20]) + (" …" if len(batch.reward_ids) > 20 else "")
    message = t("rewards_page.issued").format(count=len(batch.reward_ids), batch=batch.id) + " " + shown
    return _page(request, params, (message, True))


@router.post("/rewards/issue")
async def issue(request: Request) -> Response:
    """Issue the selected approved rewards (or, with all=1, every payable approved one of the
    campaign filter) in one payout batch; the form's batch key makes a repeated submit a no-op."""
    form, ids, problem = await _form(request)
    return await run_in_threadpool(_issue, request, form, ids, problem)


@router.get("/rewards/payouts")
def export_payouts(request: Request) -> Response:
    """The payout file of the approved, payable rewards (of the campaign filter), watermarked —
    the same file as `GET /api/v1/payouts/export` and `liebian ledger export`."""
    fmt = request.query_params.get("format", "csv")
    campaign = _params(request.query_params)["campaign"] or None
    if fmt not in ("csv", "xlsx"):
        return Response(f"format: {fmt[:20]!r} is not csv or xlsx", status_code=422, media_type="text/plain")
    with session_scope() as s:
        rewards = payouts.payable(s, service.APPROVED, campaign)
        mark = payouts.mark_export(s, len(rewards), fmt, service.APPROVED, campaign,
                                   actor=_principal(request).name, ip=client_ip(request))  # fmt: skip
        data = payouts.export_bytes(rewards, fmt, mark)
    media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX_MEDIA
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="payouts.{fmt}"'})  # fmt: skip

"""HTTP API of the WeCom integration.

`GET/POST /api/v1/wecom/callback` are called by WeCom itself: they need no operator login, their
authentication is the message signature (see `PUBLIC_ROUTES`). The contact-way endpoints are for
operators.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from liebian.background import worker_lifespan
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.schemas import encode
from liebian.wecom import processing, service
from liebian.wecom.schemas import (
    CallbackOut,
    ContactWayCreate,
    ContactWayOut,
    ContactWayUpdate,
    FollowOut,
    GroupMemberOut,
)

log = logging.getLogger(__name__)


# Pipeline events are handed to the collector in batches, off the callback's request path.
router = APIRouter(tags=["wecom"], lifespan=worker_lifespan(service.outbox_flusher))

# (method, path) authenticated by WeCom's msg_signature instead of an operator session.
PUBLIC_ROUTES = [("GET", "/api/v1/wecom/callback"), ("POST", "/api/v1/wecom/callback")]


# WeCom is answered in plain text, refusals included (the app's shared errors are JSON).
# The gate refuses a bad API key before the route runs, in JSON like every other route.
PLAIN_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": "refused, with the reason",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
        },
    }
    for status in (400, 401, 403, 413, 429, 503)
}


def _reject(exc: service.CallbackRejected, request: Request) -> PlainTextResponse:
    ip = request.client.host if request.client else "-"
    # The reason is logged; the token, key and message content never are.
    log.warning("WeCom callback rejected from %s: %s (%s)", ip, exc.code, exc.message)
    return PlainTextResponse(f"{exc.code}: {exc.message}", status_code=exc.status)


@router.get("/api/v1/wecom/callback", response_class=PlainTextResponse, responses=PLAIN_REFUSALS)
def callback_verify(
    request: Request,
    msg_signature: str | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
    echostr: str | None = None,
):
    """WeCom's URL verification: answer the decrypted echostr (signature-authenticated, no login)."""
    try:
        echo, ts = service.verify_url(msg_signature, timestamp, nonce, echostr)
        assert nonce is not None  # verify_url rejects a request without one
        with session_scope() as s:
            processing.claim_nonce(s, nonce, ts, utcnow())
    except service.CallbackRejected as exc:
        return _reject(exc, request)
    return PlainTextResponse(echo)


@router.post("/api/v1/wecom/callback", response_class=PlainTextResponse, responses=PLAIN_REFUSALS)
async def callback_event(
    request: Request,
    msg_signature: str | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
):
    """An encrypted event from WeCom. Answers `success`; rejected requests get 4xx and a logged reason.
    A failure while applying the event answers 500 with nothing stored, so WeCom's retry can succeed."""
    body = await request.body()
    return await run_in_threadpool(_handle_event, request, msg_signature, timestamp, nonce, body)


def _handle_event(request: Request, msg_signature, timestamp, nonce, body: bytes):
    try:
        msg = service.open_envelope(msg_signature, timestamp, nonce, body)
        msg = service.enrich(msg, service.get_client())
        with session_scope() as s:
            result = processing.process(s, msg)
    except service.CallbackRejected as exc:
        return _reject(exc, request)
    log.info("WeCom %s/%s: %s", result.get("event"), result.get("change_type"), result.get("outcome"))
    return PlainTextResponse("success")


# ---------------------------------------------------------------- operators


def _run(fn: Callable[..., Any], *args, status: int = 200, **kwargs) -> Any:
    try:
        with session_scope() as s:
            result = fn(s, *args, **kwargs)
    # Domain errors (WecomError, WecomApiError 502, CampaignError) are answered by the app's handler
    except ValueError as exc:  # bad input found by a library (no code of ours)
        return JSONResponse(status_code=422, content={"detail": str(exc), "code": "invalid", "errors": []})
    return JSONResponse(status_code=status, content=encode(result))  # times as RFC 3339 UTC


@router.post("/api/v1/wecom/contact-ways", status_code=201, response_model=ContactWayOut)
def create_contact_way(body: ContactWayCreate):
    """A 联系我 code whose state maps to an inviter's invite or to a channel (created in WeCom unless
    `create_in_wecom` is false)."""
    return _run(service.create_contact_way, body, service.get_client(), status=201)


@router.get("/api/v1/wecom/contact-ways", response_model=list[ContactWayOut])
def list_contact_ways(campaign_id: str | None = None):
    return _run(service.list_states, campaign_id)


@router.get("/api/v1/wecom/contact-ways/{state}", response_model=ContactWayOut)
def get_contact_way(state: str):
    return _run(service.get_state, state)


@router.put("/api/v1/wecom/contact-ways/{state}", response_model=ContactWayOut)
def update_contact_way(state: str, body: ContactWayUpdate):
    return _run(service.update_contact_way, state, body, service.get_client())


@router.delete("/api/v1/wecom/contact-ways/{state}", response_model=ContactWayOut)
def delete_contact_way(state: str):
    return _run(service.delete_contact_way, state, service.get_client())


@router.get("/api/v1/wecom/follows", response_model=list[FollowOut])
def follows(external_userid: str):
    """The staff members an external contact follows or followed (added/deleted, by whom)."""
    return _run(service.follows, external_userid)


@router.get("/api/v1/wecom/groups/{chat_id}/members", response_model=list[GroupMemberOut])
def group_members(chat_id: str):
    return _run(service.group_members, chat_id)


@router.get("/api/v1/wecom/callbacks", response_model=list[CallbackOut])
def recent_callbacks(limit: int = Query(100, ge=1, le=1000)):
    """Recently processed callback events with their outcome (attribution, churn, ignored …)."""
    return _run(service.callbacks, limit)

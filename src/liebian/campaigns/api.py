"""HTTP API of the campaign engine: operators (/api/v1/campaigns…) and brand front ends (invites,
accept, conversions, progress, leaderboard), plus the short link `/i/{code}` that records a click."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass
from functools import partial
from typing import Any

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from liebian.auth.deps import principal_of
from liebian.background import worker_lifespan
from liebian.campaigns import claims, flows, invites, service, verification, views
from liebian.campaigns.common import CampaignError
from liebian.campaigns.schemas import (
    AcceptBlocked,
    AcceptRequest,
    AcceptView,
    AuditEntry,
    CampaignCreate,
    CampaignEdit,
    CampaignSummary,
    CampaignView,
    ComplianceReport,
    ConversionRequest,
    ConversionView,
    GrantView,
    InviteInfo,
    InviteRequest,
    LeaderboardRow,
    MyInviteView,
    OrderCallback,
    Participant,
    ProgressView,
    ReferralNode,
    RefundRequest,
    RefundView,
    ShopCreate,
    ShopView,
    VerifiedOrderView,
    VersionView,
)
from liebian.db.session import get_engine, session_scope
from liebian.privacy import tokens
from liebian.schemas import encode

# The short link's visitor cookie: a random id, so a browser's clicks count as one visitor.
VISITOR_COOKIE = "liebian_visitor"
VISITOR_COOKIE_AGE = 365 * 24 * 3600

# Warehouse events are queued in the operational store and moved to DuckDB off the request path.
router = APIRouter(tags=["campaigns"], lifespan=worker_lifespan(service.warehouse_flusher))


def _run(
    fn: Callable[..., Any], *args: Any, status: int = 200, acting: str | None = None, **kwargs: Any
) -> Any:
    """One transaction per request. A refused request (a `DomainError`: CampaignError, LedgerError…)
    rolls back everything and is answered by the app's one handler. `acting`: who the campaign audit
    names for the request's changes (the caller's API key or user), where the flow names no actor."""
    with session_scope() as s:
        if acting:
            s.info["actor"] = acting
        result = fn(s, *args, **kwargs)
    if is_dataclass(result) and not isinstance(result, type):
        result = _as_dict(result)
    if status != 200:
        return JSONResponse(status_code=status, content=_encode(result))
    return result


# The front ends' hot routes (accept, conversion) wait for a place on the event loop, not in a worker
# thread: the store serialises their writes (SQLite: one writer; PostgreSQL: the ledger head and the
# counters) and the interpreter their Python, so 40 threads at once (anyio's default) only add
# thread switches, ~20 per request at 50 in flight, and the CPU they cost (issue #23). On SQLite one
# at a time: its statements run in microseconds without a round trip to overlap, and the writes queue
# on one lock anyway, so a second transaction only takes the GIL back and forth (measured, mean of
# six runs each on a shared machine: server CPU per accept 3.0 -> 2.6 ms, per conversion 3.8 -> 3.5).
AT_ONCE = 4
AT_ONCE_SQLITE = 1
_limiter: RunVar[CapacityLimiter] = RunVar("liebian_campaign_transactions")  # one per event loop


def at_once() -> int:
    """How many accept or conversion transactions an event loop runs at once on the store."""
    return AT_ONCE_SQLITE if get_engine().dialect.name == "sqlite" else AT_ONCE


async def _run_queued(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`_run` in a worker thread, at most `at_once()` of them at once. Being a coroutine, the route
    also validates its response on the event loop (FastAPI sends a sync route's to a thread as well)."""
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(at_once())
        _limiter.set(limiter)
    return await to_thread.run_sync(partial(_run, fn, *args, **kwargs), limiter=limiter)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> bool:
    """JSON-ready as it is: what `encode` would give back unchanged (no datetimes, no models)."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is list:
        return all(_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def _as_dict(result: Any) -> dict[str, Any]:
    """`asdict`, without its deep copy when every field is plain JSON already (an accept's result)."""
    shallow = {f.name: getattr(result, f.name) for f in fields(result)}
    return shallow if _plain(shallow) else asdict(result)


def _encode(result: Any) -> Any:
    """`encode` (jsonable_encoder), skipped for plain JSON values: it walks them at a cost per request."""
    return result if _plain(result) else encode(result)


def _actor(request: Request) -> str:
    """Who acts, for the campaign audit and the ledger: the authenticated caller, never the body."""
    return principal_of(request).name


# ---------------------------------------------------------------- front ends: the hot routes


# The front ends' hot routes come first: a request tries the routes in order until one matches (and
# again to handle it), ~3 µs each; behind 16 operator routes that was ~55 µs of every accept's and
# conversion's CPU (issue #23). No route before them matched their paths and methods, so moving them
# changes no match (a GET of /api/v1/invites/accept still finds the invite info route).
@router.post(
    "/api/v1/invites/accept",
    status_code=201,
    response_model=AcceptView,
    responses={403: {"model": AcceptBlocked, "description": "blocked by the risk checks (kept)"}},
)
async def accept(body: AcceptRequest, request: Request):
    """A friend accepts an invite (signs up through it). A blocked referral answers 403 and is kept."""
    if body.ip is None and request.client:
        body.ip = request.client.host
    result = await _run_queued(flows.accept_invite, body, acting=_actor(request))
    if result["state"] == "blocked":
        return JSONResponse(
            status_code=403,
            content={
                "detail": "the referral was blocked by risk checks",
                "code": "blocked",
                **_encode(result),
            },
        )
    result["participant_token"] = tokens.issue_for(request, body.id_type, result["friend_person_id"])
    return JSONResponse(status_code=201, content=_encode(result))


@router.post(
    "/api/v1/campaigns/{campaign_id}/conversions",
    response_model=ConversionView,
    response_model_exclude_unset=True,  # a note says why a role got nothing: role and state only
)
async def report_conversion(campaign_id: str, body: ConversionRequest, request: Request):
    """Report an order or custom event; the same order_id again changes nothing (duplicate: true).

    With the public front-end key the conversion is `pending` until a trusted source confirms the
    order (the operator's order feed, a signed shop callback, an import); its amount, currency and
    status then come from the trusted order. Any other key is trusted: judged at once."""
    trusted = principal_of(request).kind != "public"
    return await _run_queued(verification.report, campaign_id, body, trusted=trusted, acting=_actor(request))


# ---------------------------------------------------------------- operators


@router.post("/api/v1/campaigns", status_code=201, response_model=CampaignView)
def create_campaign(body: CampaignCreate, request: Request):
    """Create a draft campaign from its rules (contradictory rules → 422 naming the fields)."""
    return _run(service.create_campaign, body.rules, campaign_id=body.id, actor=_actor(request), status=201)


@router.get("/api/v1/campaigns", response_model=list[CampaignSummary])
def list_campaigns(status: str | None = None):
    return _run(service.list_campaigns, status)


@router.get("/api/v1/campaigns/{campaign_id}", response_model=CampaignView)
def get_campaign(campaign_id: str):
    return _run(service.get_campaign, campaign_id)


@router.put("/api/v1/campaigns/{campaign_id}", response_model=CampaignView)
def edit_campaign(campaign_id: str, body: CampaignEdit, request: Request):
    """Edit the rules: in place for a draft, as a new version for a launched campaign."""
    return _run(service.edit_campaign, campaign_id, body.rules, note=body.note, actor=_actor(request))


@router.get("/api/v1/campaigns/{campaign_id}/versions", response_model=list[VersionView])
def campaign_versions(campaign_id: str):
    return _run(service.versions, campaign_id)


@router.post("/api/v1/campaigns/{campaign_id}/launch", response_model=CampaignView)
def launch(campaign_id: str, request: Request):
    """Launch after the compliance check (hard failures → 422 listing them)."""
    return _run(service.launch, campaign_id, actor=_actor(request))


@router.post("/api/v1/campaigns/{campaign_id}/pause", response_model=CampaignView)
def pause(campaign_id: str, request: Request):
    return _run(service.pause, campaign_id, actor=_actor(request))


@router.post("/api/v1/campaigns/{campaign_id}/end", response_model=CampaignView)
def end(campaign_id: str, request: Request):
    """End the campaign (a leaderboard grants its rank rewards now)."""
    return _run(service.end, campaign_id, actor=_actor(request))


@router.get(
    "/api/v1/campaigns/{campaign_id}/compliance",
    response_model=ComplianceReport,
    response_model_exclude_unset=True,  # hard findings carry no score
)
def compliance(campaign_id: str):
    return _run(service.compliance_report, campaign_id)


@router.get("/api/v1/campaigns/{campaign_id}/audit", response_model=list[AuditEntry])
def audit(campaign_id: str, limit: int = Query(200, ge=1, le=5000)):
    return _run(service.audit_log, campaign_id, limit)


@router.get("/api/v1/campaigns/{campaign_id}/referrals", response_model=list[ReferralNode])
def referrals(campaign_id: str):
    """The referral tree: each referral with its parent and generation."""
    return _run(views.referral_tree, campaign_id)


# ---------------------------------------------------------------- front ends


@router.post("/api/v1/campaigns/{campaign_id}/invites", response_model=MyInviteView)
def my_invite(campaign_id: str, body: InviteRequest, request: Request):
    """My invite code and link for this campaign and channel (the same until it expires), and my
    participant token (for progress and my/* with the public key). The inviter's device and IP +
    user agent (default: this request's) mark their own clicks."""
    ip = body.ip or (request.client.host if request.client else None)
    view = _run(
        invites.get_invite,
        campaign_id,
        body,
        acting=_actor(request),
        channel=body.channel,
        device_id=body.device_id,
        ip=ip,
        user_agent=body.user_agent or request.headers.get("user-agent"),
    )
    return {**view, "participant_token": tokens.issue_for(request, body.id_type, view["inviter_person_id"])}


@router.get("/api/v1/invites/{code}", response_model=InviteInfo)
def invite_info(code: str):
    return _run(invites.invite_info, code)


@router.get(
    "/api/v1/invites/{code}/poster.png",
    response_class=Response,
    response_model=None,
    responses={200: {"content": {"image/png": {}}, "description": "the poster (PNG)"}},
)
def invite_poster(code: str):
    result = _run(invites.poster_png, code)
    return Response(content=result, media_type="image/png")


@router.get(
    "/p/{code}.png",
    response_class=Response,
    response_model=None,
    responses={
        200: {"content": {"image/png": {}}, "description": "the poster (PNG)"},
        403: {"description": "the signature does not match, or the link has expired"},
    },
)
def signed_poster(code: str, exp: str = Query("", max_length=64), sig: str = Query("", max_length=64)):
    """An invite's poster without an API key, for an H5 page's <img>: the URL the invite response
    gives as `poster_url` (signed, expiring with the invite). An altered or expired link: 403."""
    invites.check_poster_link(
        code, int(exp) if exp.isascii() and exp.isdigit() and len(exp) <= 12 else -1, sig
    )
    png = _run(invites.poster_png, code)
    return Response(content=png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/i/{code}", include_in_schema=False, response_class=RedirectResponse, response_model=None)
def click(
    code: str,
    request: Request,
    id_type: str | None = Query(None, max_length=64),
    id: str | None = Query(None, max_length=256),
    device_id: str | None = Query(None, max_length=128),
):
    """The short link: record the click (invite_click) and redirect to the landing page. A click
    counts once per distinct visitor (`invites.click`); the visitor cookie tells browsers apart."""
    ip = request.client.host if request.client else None
    cookie = request.cookies.get(VISITOR_COOKIE) or None
    minted = None if cookie else secrets.token_hex(16)
    result = _run(
        lambda s: invites.click(
            s, code, ip=ip, user_agent=request.headers.get("user-agent"), device_id=device_id or cookie,
            id_type=id_type, visitor_id=id, minted=minted,
        )[1]
    )  # fmt: skip
    response = RedirectResponse(result, status_code=302)
    if minted:
        response.set_cookie(
            VISITOR_COOKIE, minted, max_age=VISITOR_COOKIE_AGE, path="/i/", httponly=True, samesite="lax"
        )
    return response


@router.post("/api/v1/campaigns/{campaign_id}/refunds", response_model=RefundView)
def refund(campaign_id: str, body: RefundRequest, request: Request):
    """An order was refunded: within the hold its rewards are revoked (the ledger and the campaign
    audit record the caller as the actor)."""
    return _run(flows.refund, campaign_id, body.order_id, note=body.note, actor=_actor(request))


@router.post("/api/v1/campaigns/{campaign_id}/claims", response_model=GrantView)
def claim(campaign_id: str, body: Participant, request: Request):
    """Share-for-coupon: claim the coupon once the link was opened often enough."""
    return _run(claims.claim, campaign_id, body, acting=_actor(request))


@router.get("/api/v1/campaigns/{campaign_id}/progress", response_model=ProgressView)
def progress(
    campaign_id: str,
    request: Request,
    id_type: str | None = Query(None, max_length=64),
    id: str | None = Query(None, min_length=1, max_length=256),
    x_participant_token: str | None = Header(None, description="the public key's participant token"),
):
    """My progress and rewards in a campaign. With the public key: the participant token's person
    (id_type and id are not consulted: no answer tells whether an identifier is known); operators
    name the participant with id_type and id."""
    caller = tokens.caller_person(request)
    if caller is not None:
        return _run(views.progress_of, campaign_id, caller)
    if id_type is None or id is None:
        raise CampaignError(422, "invalid", "id_type and id: required", field="id")
    return _run(views.progress, campaign_id, Participant(id_type=id_type, id=id))


@router.get("/api/v1/campaigns/{campaign_id}/leaderboard", response_model=list[LeaderboardRow])
def leaderboard(campaign_id: str, limit: int = Query(20, ge=1, le=500)):
    return _run(views.leaderboard, campaign_id, limit)


# ---------------------------------------------------------------- trusted orders


@router.post(
    "/api/v1/orders/callback",
    response_model=VerifiedOrderView,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OrderCallback.model_json_schema()}},
        }
    },
)
async def order_callback(request: Request):
    """A shop's server reports an order (paid, refunded, cancelled). Authenticated by the header
    `X-Liebian-Signature: sha256=<hex HMAC-SHA256 of the raw body under the shop's secret>`; a
    missing or wrong signature, or an unknown shop, answers 401. The order confirms (or rejects,
    or refunds) the conversions reported with its id."""
    body = await request.body()
    signature = request.headers.get(verification.SIGNATURE_HEADER)
    return await run_in_threadpool(_run, verification.order_callback, body, signature)


@router.post("/api/v1/orders/shops", status_code=201, response_model=ShopView)
def create_shop(body: ShopCreate, request: Request):
    """A shop that may post signed order callbacks; its secret is in this answer only."""
    return _run(verification.create_shop, body.shop_id, actor=principal_of(request).name, status=201)


@router.get("/api/v1/orders/shops", response_model=list[ShopView])
def list_shops():
    return _run(verification.list_shops)


@router.delete("/api/v1/orders/shops/{shop_id}", response_model=ShopView)
def revoke_shop(shop_id: str, request: Request):
    """Revoke a shop's secret: its callbacks are refused from now on."""
    return _run(verification.revoke_shop, shop_id, actor=principal_of(request).name)

"""Rewards API: rewards and their transitions, the ledger, payouts and webhooks (thin over services)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from liebian.auth.deps import client_ip, principal_of
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.lazy import lazy_import
from liebian.privacy import tokens
from liebian.rewards import payouts, schemas, service, webhooks
from liebian.rewards.group_commit import committer
from liebian.rewards.service import LedgerError
from liebian.schemas import EdgeDateTime, Int64

if TYPE_CHECKING:
    import httpx
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    httpx = lazy_import("httpx")

router = APIRouter(prefix="/api/v1", tags=["rewards"])

ACTIONS = {
    "approve": service.APPROVED,
    "issue": service.ISSUED,
    "redeem": service.REDEEMED,
    "reject": service.REJECTED,
    "revoke": service.REVOKED,
}


def _key(body_key: str | None, header_key: str | None) -> str:
    key = body_key or header_key
    if not key:
        raise LedgerError(
            "invalid", "idempotency_key: required (in the body or the Idempotency-Key header)", 422
        )
    return key


@router.get("/rewards", response_model=list[schemas.Reward])
def list_rewards(
    state: str | None = None,
    campaign_id: str | None = None,
    person_id: Int64 | None = None,
    source_ref: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
):
    with session_scope() as s:
        rows = service.list_rewards(
            s,
            state=state,
            campaign_id=campaign_id,
            person_id=person_id,
            source_ref=source_ref,
            limit=limit,
            offset=offset,
        )
        return [r.as_dict() for r in rows]


@router.get("/rewards/{reward_id}", response_model=schemas.RewardDetail)
def get_reward(reward_id: Int64):
    with session_scope() as s:
        return {
            **service.get_reward(s, reward_id).as_dict(),
            "entries": service.entries(s, reward_id=reward_id),
        }


def _make_transition(action: str, to_state: str):
    def endpoint(
        request: Request,
        reward_id: int,
        body: schemas.TransitionRequest,
        idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    ):
        key = _key(body.idempotency_key, idempotency_key)
        actor = principal_of(request).name  # who is authenticated, never what the body claims
        # concurrent moves share transactions (group commit, docs/ledger.md); errors are the same
        view = committer().transition(reward_id, to_state, idempotency_key=key, actor=actor, note=body.note)
        return view.as_dict()

    endpoint.__name__ = f"{action}_reward"
    endpoint.__doc__ = f"Move a reward to {to_state} (idempotent by key; 409 if the move is not allowed)."
    return endpoint


for _action, _to in ACTIONS.items():
    router.add_api_route(
        f"/rewards/{{reward_id}}/{_action}",
        _make_transition(_action, _to),
        methods=["POST"],
        response_model=schemas.Reward,
    )


@router.post("/rewards/{reward_id}/review-hold", response_model=schemas.Reward)
def review_hold(request: Request, reward_id: Int64, body: schemas.ReviewHoldRequest):
    """Hold a reward for fraud review, or clear the hold (the ledger records the caller)."""
    actor = principal_of(request).name
    with session_scope() as s:
        return service.set_review_hold(s, reward_id, body.held, actor=actor, note=body.note).as_dict()


@router.get("/my/rewards", response_model=schemas.MyRewards)
def my_rewards(
    request: Request,
    person_id: Int64 | None = None,
    x_participant_token: str | None = Header(None, description="the public key's participant token"),
):
    """A participant's rewards and balances. With the public key: the person of the participant
    token (a person_id, if given, must be theirs); operators name the person."""
    caller = tokens.caller_person(request)
    with session_scope() as s:
        if caller is not None:
            if person_id is not None and person_id not in service.person_ids(s, caller):
                raise LedgerError(
                    "forbidden", "person_id: a participant token reads its own person only", 403
                )
            person_id = caller
        elif person_id is None:
            raise LedgerError("invalid", "person_id: required", 422)
        totals: dict[str, list[int]] = {}
        for b in service.balances(s, "person", service.person_ids(s, person_id)):
            totals.setdefault(b["state"], [0, 0])
            totals[b["state"]][0] += b["value_fen"]
            totals[b["state"]][1] += b["rewards"]
        return {
            "rewards": [r.as_dict() for r in service.rewards_for(s, person_id)],
            "balances": [
                {"state": state, "value_fen": value, "rewards": count}
                for state, (value, count) in sorted(
                    totals.items(), key=lambda kv: service.STATES.index(kv[0])
                )
            ],
        }


@router.get("/ledger/verify", response_model=schemas.VerifyResult)
def verify():
    """Replay the hash chain; `first_bad_seq` names the first edited, deleted, inserted or moved entry."""
    with session_scope() as s:
        return service.verify_chain(s).as_dict()


@router.get("/ledger/entries", response_model=list[schemas.Entry])
def ledger_entries(
    reward_id: Int64 | None = None, after_seq: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=5000)
):
    with session_scope() as s:
        return service.entries(s, reward_id=reward_id, after_seq=after_seq, limit=limit)


@router.get("/ledger/balances", response_model=list[schemas.Balance])
def ledger_balances(
    by: Literal["person", "campaign"] = "campaign", key: str | None = Query(None, max_length=128)
):
    if by == "person" and key is not None and not re.fullmatch(r"-?\d{1,18}", key):
        raise LedgerError("invalid", "key: a person id is an integer of at most 18 digits", 422, field="key")
    with session_scope() as s:
        return [
            {"key": str(b[by]), "state": b["state"], "value_fen": b["value_fen"], "rewards": b["rewards"]}
            for b in service.balances(s, by, key)
        ]


@router.post("/ledger/release", response_model=schemas.Released)
def release(as_of: EdgeDateTime | None = None):
    """Approve pending rewards whose hold period is over (the background worker also does this).

    `as_of` (Z, an offset or the display zone; default now) runs the release for a given time.
    """
    with session_scope() as s:
        return {"released": service.release_due(s, as_of or utcnow())}


@router.get(
    "/payouts/export",
    response_class=Response,
    responses={
        200: {
            "description": "the payout file",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        }
    },
)
def export_payouts(
    request: Request,
    state: str = "approved",
    format: Literal["csv", "xlsx"] = "csv",
    campaign_id: str | None = None,
):
    """Rewards ready to issue as a CSV or XLSX file (ids and amounts; no personal data), watermarked."""
    with session_scope() as s:
        rewards = payouts.payable(s, state, campaign_id)
        mark = payouts.mark_export(
            s,
            len(rewards),
            format,
            state,
            campaign_id,
            actor=principal_of(request).name,
            ip=client_ip(request),
        )
        data = payouts.export_bytes(rewards, format, mark)
    media = (
        "text/csv; charset=utf-8"
        if format == "csv"
        else ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    )
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="payouts-{state}-{stamp}.{format}"'},
    )


@router.post("/payouts/issue", response_model=schemas.Batch)
def issue_payouts(
    request: Request,
    body: schemas.IssueBatchRequest,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    """Mark rewards issued in one idempotent batch: exactly `reward_ids`, or every payable approved
    reward with `all_approved: true` (optionally of `campaign_id`). Neither → 422, nothing issued."""
    key = _key(body.idempotency_key, idempotency_key)
    with session_scope() as s:
        return payouts.issue_batch(
            s,
            idempotency_key=key,
            actor=principal_of(request).name,
            reward_ids=body.reward_ids,
            all_approved=body.all_approved,
            campaign_id=body.campaign_id,
            note=body.note,
        ).as_dict()


@router.post("/webhooks/endpoints", response_model=schemas.EndpointCreated, status_code=201)
def create_endpoint(body: schemas.EndpointCreate):
    with session_scope() as s:
        view, secret = webhooks.create_endpoint(
            s, body.url, body.event_types, secret=body.secret, description=body.description
        )
        return {**view.as_dict(), "secret": secret}


@router.get("/webhooks/endpoints", response_model=list[schemas.Endpoint])
def list_endpoints():
    with session_scope() as s:
        return [e.as_dict() for e in webhooks.list_endpoints(s)]


@router.get("/webhooks/endpoints/{endpoint_id}", response_model=schemas.Endpoint)
def get_endpoint(endpoint_id: Int64):
    with session_scope() as s:
        return webhooks.get_endpoint(s, endpoint_id).as_dict()


@router.patch("/webhooks/endpoints/{endpoint_id}", response_model=schemas.Endpoint)
def update_endpoint(endpoint_id: Int64, body: schemas.EndpointUpdate):
    with session_scope() as s:
        return webhooks.update_endpoint(
            s,
            endpoint_id,
            url=body.url,
            event_types=body.event_types,
            active=body.active,
            description=body.description,
        ).as_dict()


@router.delete("/webhooks/endpoints/{endpoint_id}", status_code=204, response_class=Response)
def delete_endpoint(endpoint_id: Int64):
    with session_scope() as s:
        webhooks.delete_endpoint(s, endpoint_id)
    return Response(status_code=204)


@router.get("/webhooks/deliveries", response_model=list[schemas.Delivery])
def list_deliveries(
    status: str | None = None, endpoint_id: Int64 | None = None, limit: int = Query(100, ge=1, le=1000)
):
    with session_scope() as s:
        return webhooks.list_deliveries(s, status=status, endpoint_id=endpoint_id, limit=limit)


@router.get("/webhooks/deliveries/{delivery_id}", response_model=schemas.DeliveryDetail)
def get_delivery(delivery_id: Int64):
    with session_scope() as s:
        return webhooks.get_delivery(s, delivery_id)


@router.post("/webhooks/deliveries/{delivery_id}/replay", response_model=schemas.Delivery)
def replay_delivery(delivery_id: Int64):
    """Send a delivery again (same id and body) on the worker's next round."""
    with session_scope() as s:
        return webhooks.replay(s, delivery_id)


@router.post("/webhooks/deliver", response_model=schemas.DeliveryRound)
def deliver_now():
    """Run one delivery round now (the background worker and `liebian ledger deliver` do the same)."""
    with session_scope() as s, httpx.Client(timeout=webhooks.TIMEOUT_S) as client:
        return {"attempted": webhooks.deliver_due(s, utcnow(), client)}

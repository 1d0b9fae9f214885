"""WeCom attribution on top of the campaign engine, composed only of its flows and views.

- A friend added through an invite's 联系我 code accepts that invite (`accept_invite`), with the
  external_userid as the identifier and the unionid as a further one (OneID links them).
- "Counts only friends who stay": a campaign whose qualifying event is
  `{"kind": "custom", "event_name": "add_external_contact"}` qualifies the friend by the add itself,
  reported as a conversion with the order id `wecom-add:<external_userid>`. When the friend later
  deletes every staff member within the campaign's `hold_days`, that conversion is refunded: the
  inviter's count drops and rewards still in their hold are revoked (`refund`). After the hold the
  loss is recorded only (the friend stayed long enough). Other campaigns record the loss as an event.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from liebian.campaigns import flows, views
from liebian.campaigns.common import rules_of
from liebian.campaigns.schemas import AcceptRequest, ConversionRequest
from liebian.errors import DomainError

log = logging.getLogger(__name__)

WECOM_QUALIFYING_EVENT = "add_external_contact"


def stay_order_id(external_userid: str) -> str:
    return f"wecom-add:{external_userid}"


def counts_only_staying(session: Session, campaign_id: str, version: int) -> bool:
    q = rules_of(session, campaign_id, version).qualifying_event
    return q.kind == "custom" and q.event_name == WECOM_QUALIFYING_EVENT


def attribute_add(
    session: Session,
    *,
    invite_code: str,
    external_userid: str,
    unionid: str | None = None,
    region: str | None = None,
    store: str | None = None,
) -> dict:
    """The friend added a staff member through an invite's 联系我 code: accept the invite and, where
    the campaign qualifies by the WeCom add, report that add as the qualifying conversion.

    A refusal by the engine or the ledger (not new, already accepted, campaign not live, own
    invite …) is an outcome, not an error: it is returned with its code and nothing of the attempt
    stays, so WeCom is answered `success` and its retries converge.
    """
    other = {"unionid": unionid} if unionid else {}
    try:
        with session.begin_nested():
            accepted = flows.accept_invite(
                session,
                AcceptRequest(
                    code=invite_code, id_type="external_userid", id=external_userid, other_ids=other
                ),
            )
    except DomainError as exc:  # CampaignError, LedgerError …: an outcome that WeCom's retry cannot change
        return {"outcome": "not_attributed", "code": exc.code, "reason": exc.message}
    out: dict[str, Any] = {
        "outcome": "attributed" if accepted.state != "blocked" else "blocked",
        "campaign_id": accepted.campaign_id,
        "referral_id": accepted.referral_id,
        "inviter_person_id": accepted.inviter_person_id,
        "friend_person_id": accepted.friend_person_id,
        "referral_state": accepted.state,
        "grants": accepted.grants,
    }
    if accepted.state != "blocked" and counts_only_staying(session, accepted.campaign_id, accepted.version):
        try:
            with session.begin_nested():
                conv = flows.report_conversion(
                    session,
                    accepted.campaign_id,
                    ConversionRequest(
                        id_type="external_userid",
                        id=external_userid,
                        other_ids=other,
                        order_id=stay_order_id(external_userid),
                        event=WECOM_QUALIFYING_EVENT,
                        region=region,
                        store=store,
                    ),
                    verified_by="wecom",  # the add is WeCom's own event, reported by the server
                )
            out["qualified"] = conv["status"] == "qualified"
            out["grants"] = list(out["grants"]) + list(conv["grants"])
        except DomainError as exc:  # the engine's or the ledger's refusal: an outcome, never a 500
            out["qualified"] = False
            out["qualify_error"] = exc.code
            out["qualify_reason"] = exc.message
    return out


def churn(session: Session, *, campaign_id: str, external_userid: str, referral_id: int | None) -> dict:
    """The friend left (deleted every staff member): subtract them where the campaign counts only
    friends who stay and the hold is not over; otherwise the loss is only recorded."""
    try:
        with session.begin_nested():
            refunded = flows.refund(
                session,
                campaign_id,
                stay_order_id(external_userid),
                note="the friend deleted the staff member (WeCom del_follow_user)",
                actor="wecom",
            )
    except DomainError as exc:
        if exc.code == "unknown_order":
            return {"outcome": "recorded", "reason": "the campaign does not count only friends who stay"}
        return {"outcome": "recorded", "reason": f"{exc.code}: {exc.message}"}
    ref = next(
        (r for r in views.referral_tree(session, campaign_id) if r.referral_id == referral_id),
        None,
    )
    subtracted = ref is not None and ref.state == "refunded" and not refunded["duplicate"]
    return {
        "outcome": "subtracted" if subtracted else "recorded",
        "revoked_rewards": refunded["revoked"],
        "reason": "" if subtracted else "the friend stayed past the campaign's hold",
    }

"""The rewards of one qualification are granted together (`budget.grant_all`, issue #23): with
room for all of them the same rewards, reservations and budget as granting them one by one, and
without room the first ones in order get what is left, as before."""

from __future__ import annotations

import pytest
from campaign_helpers import FIRST_ORDER_DOUBLE_SIDED
from sqlalchemy import select

from liebian.campaigns import flows, invites, service, verification
from liebian.campaigns.models import Campaign, Reservation
from liebian.campaigns.schemas import AcceptRequest, ConversionRequest, Participant
from liebian.db.session import session_scope
from liebian.rewards import service as ledger

RULES = FIRST_ORDER_DOUBLE_SIDED


def _qualify(limits: dict, friends: int) -> list[list[dict]]:
    """Launch a double-sided campaign with `limits`, then accept and convert `friends` friends."""
    with session_scope() as s:
        service.create_campaign(s, {**RULES, **limits}, campaign_id="batch")
        service.launch(s, "batch")
    with session_scope() as s:
        code = invites.get_invite(s, "batch", Participant(id_type="unionid", id="inviter"))["code"]
    out = []
    for i in range(friends):
        with session_scope() as s:
            s.info["actor"] = "test"
            flows.accept_invite(s, AcceptRequest(code=code, id_type="unionid", id=f"friend{i}"))
        req = ConversionRequest(id_type="unionid", id=f"friend{i}", order_id=f"o{i}", amount_fen=9900)
        with session_scope() as s:
            s.info["actor"] = "test"
            out.append(verification.report(s, "batch", req, trusted=True)["grants"])
    return out


def _books() -> tuple[Campaign, list[Reservation], list[ledger.RewardView]]:
    with session_scope() as s:
        c = s.get_one(Campaign, "batch")
        s.expunge(c)
        held = list(s.scalars(select(Reservation).order_by(Reservation.id)))
        s.expunge_all()
        assert ledger.verify_chain(s).ok
        return c, held, ledger.list_rewards(s, campaign_id="batch", limit=100)


@pytest.mark.parametrize(
    ("limits", "states"),
    [
        ({"budget_fen": 3000}, [["granted", "granted"], ["granted", "granted"]]),
        # room for the second friend's reward only (given first), not for its inviter's
        ({"budget_fen": 2000}, [["granted", "granted"], ["granted", "budget_exhausted"]]),
        ({"stock": 3}, [["granted", "granted"], ["granted", "budget_exhausted"]]),
        ({"budget_fen": 1200}, [["granted", "budget_exhausted"], ["granted", "budget_exhausted"]]),
    ],
)
def test_grants_of_one_qualification_keep_the_budget_and_the_order(store, limits, states) -> None:
    grants = _qualify(limits, 2)
    assert [[g["role"] for g in qualified] for qualified in grants] == [["friend", "inviter"]] * 2
    assert [[g["state"] for g in qualified] for qualified in grants] == states
    campaign, held, rewards = _books()
    granted = [g for qualified in grants for g in qualified if g["state"] == "granted"]
    assert (
        campaign.budget_used_fen == sum(g["value_fen"] for g in granted) == sum(r.value_fen for r in rewards)
    )
    assert campaign.stock_used == len(granted) == len(rewards)
    # one open reservation per reward, naming it
    assert sorted(r.reward_id for r in held) == sorted(g["reward_id"] for g in granted)
    assert all(r.reward_id is not None and not r.released for r in held)

"""The campaign flows reach other domains only through the wiring (`liebian.ports`): with fakes in
place of the fraud rules and the ledger's subscribers, a conversion runs flows → risk → budget →
ledger → subscribers, and each fake sees what it should."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from campaign_helpers import rules
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from liebian import ports
from liebian.campaigns import budget, flows, invites, merges, service, views
from liebian.campaigns.models import Campaign
from liebian.campaigns.schemas import AcceptRequest, ConversionRequest, Participant
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.rewards import service as ledger
from liebian.risk import RiskContext, RiskSignal


@dataclass
class FakeRisk:
    """A risk check that records every context and answers with the signals given per stage."""

    answers: dict[str, list[RiskSignal]]
    seen: list[RiskContext] = field(default_factory=list)

    def __call__(self, _session: Session, ctx: RiskContext) -> list[RiskSignal]:
        self.seen.append(ctx)
        return list(self.answers.get(ctx.stage, []))


@dataclass
class FakeSubscriber:
    """A ledger subscriber that records each entry with the reward it moved."""

    entries: list[tuple[dict, dict]] = field(default_factory=list)

    def __call__(self, _session: Session, entry: dict, reward: dict) -> None:
        self.entries.append((dict(entry), dict(reward)))


def _campaign_with_a_friend(cid: str) -> tuple[int, int]:
    """A live double-sided campaign (inviter 1000 fen, friend 500) where bob accepted alice's invite."""
    doc = rules("double_sided", per_device_cap=None, require_new_friend=False)
    with session_scope() as s:
        service.create_campaign(s, doc, campaign_id=cid)
        service.launch(s, cid)
        code = invites.get_invite(s, cid, Participant(id_type="unionid", id="alice"))["code"]
    with session_scope() as s:
        accepted = flows.accept_invite(
            s, AcceptRequest(code=code, id_type="unionid", id="bob", ip="10.1.1.1")
        )
    assert accepted.state == "accepted"
    return accepted.inviter_person_id, accepted.friend_person_id


def _convert(cid: str, order_id: str = "o-1") -> dict:
    with session_scope() as s:
        return flows.report_conversion(
            s,
            cid,
            ConversionRequest(id_type="unionid", id="bob", order_id=order_id, amount_fen=9900, region="east"),
        )


def test_a_conversion_runs_through_the_wired_risk_check_into_budget_and_ledger(store) -> None:
    hold = RiskSignal("FAKE_HOLD", 60, "the fake says: hold")  # hold_at 50 ≤ 60 < block_at 100
    risk = FakeRisk({"conversion": [hold]})
    with ports.use(ports.Wiring(risk_checks=(risk,))):
        inviter, friend = _campaign_with_a_friend("wired")
        out = _convert("wired")

    assert [c.stage for c in risk.seen] == ["accept", "conversion"]
    conversion = risk.seen[1]
    assert (conversion.campaign_id, conversion.inviter, conversion.friend) == ("wired", inviter, friend)
    assert conversion.referral_id is not None and conversion.rules.type == "double_sided"
    assert risk.seen[0].ip == "10.1.1.1" and risk.seen[0].friend_is_new

    # held, not blocked: the referral qualifies, its rewards wait for a reviewer
    assert out["status"] == "qualified"
    assert {(g["person_id"], g["reward_code"], g["state"]) for g in out["grants"]} == {
        (friend, "NEW", "granted"),
        (inviter, "INV", "granted"),
    }
    with session_scope() as s:
        assert [r.state for r in views.referral_tree(s, "wired")] == ["held"]
        granted = [ledger.get_reward(s, g["reward_id"]) for g in out["grants"]]
        assert all(r.held_for_review and r.state == "pending" for r in granted)
        view = service.get_campaign(s, "wired")
    assert view["budget_used_fen"] == 1500 and view["stock_used"] == 2


def test_a_blocking_risk_check_grants_nothing_and_takes_no_budget(store) -> None:
    risk = FakeRisk({"conversion": [RiskSignal("FAKE_BLOCK", 100, "the fake says: block")]})
    with ports.use(ports.Wiring(risk_checks=(risk,))):
        _campaign_with_a_friend("blocked")
        out = _convert("blocked")
    assert (out["status"], out["reason"], out["grants"]) == ("blocked", "FAKE_BLOCK", [])
    with session_scope() as s:
        assert service.get_campaign(s, "blocked")["budget_used_fen"] == 0


def test_an_unwired_process_refuses_instead_of_skipping_the_risk_checks(store) -> None:
    with ports.use(ports.Wiring(risk_checks=())):
        _campaign_with_a_friend("unwired")
    previous = ports._current
    ports._current = None
    try:
        with pytest.raises(ports.NotWired):
            _convert("unwired")
    finally:
        ports._current = previous


def test_the_ledger_tells_its_wired_subscribers_about_each_grant(store) -> None:
    subscriber = FakeSubscriber()
    with ports.use(ports.Wiring(ledger_subscribers=(subscriber,))):
        inviter, friend = _campaign_with_a_friend("subs")
        out = _convert("subs")
    granted = {g["reward_id"] for g in out["grants"]}
    assert {reward["id"] for _entry, reward in subscriber.entries} == granted
    assert {(reward["person_id"], entry["to_state"]) for entry, reward in subscriber.entries} == {
        (friend, "pending"),
        (inviter, "pending"),
    }


def test_release_on_entry_gives_the_budget_back_once_for_a_final_entry(store) -> None:
    with ports.use(ports.Wiring()):
        _campaign_with_a_friend("release")
        out = _convert("release")
    friend_reward = next(g["reward_id"] for g in out["grants"] if g["reward_code"] == "NEW")
    with session_scope() as s:
        reward = {"id": friend_reward}
        budget.release_on_entry(s, {"to_state": "approved"}, reward)  # not final: nothing
        assert service.get_campaign(s, "release")["budget_used_fen"] == 1500
        budget.release_on_entry(s, {"to_state": "rejected"}, reward)
        budget.release_on_entry(s, {"to_state": "revoked"}, reward)  # released once only
        view = service.get_campaign(s, "release")
    assert (view["budget_used_fen"], view["stock_used"]) == (1000, 1)
    with session_scope() as s:  # the repair job finds nothing left to do
        assert budget.reconcile_reservations(s) == 0


def test_release_on_entry_never_waits_for_a_campaign_row_a_grant_holds(store) -> None:
    """The subscriber runs holding the ledger head, and a grant takes the campaign row before the
    head: instead of waiting in the opposite order, the release is left to the repair job."""
    if store != "postgres":
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    with ports.use(ports.Wiring()):
        _campaign_with_a_friend("busy")
        out = _convert("busy")
    friend_reward = next(g["reward_id"] for g in out["grants"] if g["reward_code"] == "NEW")
    with session_scope() as grant_in_flight:
        grant_in_flight.execute(select(Campaign.id).where(Campaign.id == "busy").with_for_update())
        with session_scope() as s:
            s.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail, not hang
            budget.release_on_entry(s, {"to_state": "rejected"}, {"id": friend_reward})
    with session_scope() as s:
        assert service.get_campaign(s, "busy")["budget_used_fen"] == 1500
        budget.release_on_entry(s, {"to_state": "rejected"}, {"id": friend_reward})
    with session_scope() as s:
        assert service.get_campaign(s, "busy")["budget_used_fen"] == 1000


def test_follow_merges_moves_campaign_person_ids(store) -> None:
    with ports.use(ports.Wiring()):
        inviter, _friend = _campaign_with_a_friend("merge")
        with session_scope() as s:
            twin = identity.resolve(s, [identity.RawIdentifier("unionid", "alice-2")], source="test")
            twin_id = next(iter(twin.values()))
            merges.follow_merges(s, {inviter: twin_id})
        with session_scope() as s:
            assert [r.inviter_person_id for r in views.referral_tree(s, "merge")] == [twin_id]

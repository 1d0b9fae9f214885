"""Stateful property test of the campaign engine's conversion path (issue #19): random accepts,
trusted and public conversions (real or made up), shop confirmations, refunds, re-qualification,
fraud review, expiry and payouts, on SQLite and PostgreSQL. After every step:

- at most one live reward per (inviter, tier), and per (inviter, tier, qualifying referral);
- budget and stock never exceeded, and the budget used is what the live rewards are worth;
- a revoked reward is never issued (no ledger entry after its revocation);
- every live reward traces to a verified order that qualified;
- `ledger verify` passes.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from liebian.campaigns import flows, invites, service, verification, views
from liebian.campaigns.common import CampaignError
from liebian.campaigns.models import Campaign, CampaignOrder
from liebian.campaigns.schemas import AcceptRequest, CampaignRules, ConversionRequest, InviteRequest
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.identity import service as identity
from liebian.rewards import service as rewards

FRIENDS = 5
BUDGET, STOCK = 2000, 4
LIVE = ("pending", "approved", "issued", "redeemed")
_examples = itertools.count()


def _rules() -> CampaignRules:
    return CampaignRules.model_validate(
        {
            "type": "invite_task",
            "title": "state machine",
            "rules_text": "每邀请一位好友完成首单即得奖励",
            "qualifying_event": {"kind": "order_min_amount", "min_amount_fen": 1000},
            "require_new_friend": False,
            "per_inviter_cap": 3,
            "budget_fen": BUDGET,
            "stock": STOCK,
            "tiers": [
                {"threshold": 1, "reward": {"code": "T1", "value_fen": 300}},
                {"threshold": 2, "reward": {"code": "T2", "value_fen": 700}},
            ],
            "friend_reward": {"code": "NEW", "value_fen": 200},
        }
    )


class ConversionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        n = next(_examples)
        self.prefix = f"sm{n}"
        with session_scope() as s:
            c = service.create_campaign(s, _rules().model_dump(mode="json"), campaign_id=f"sm-{n}")
            self.cid = c["id"]
            service.launch(s, self.cid)
            inv = invites.get_invite(
                s, self.cid, InviteRequest(id_type="unionid", id=f"{self.prefix}-inviter")
            )
            self.code = inv["code"]
        self.orders: dict[str, int] = {}  # order id → friend index
        self.seq = itertools.count()

    def uid(self, friend: int) -> str:
        return f"{self.prefix}-f{friend}"

    def person(self, friend: int) -> int | None:
        with session_scope() as s:
            return identity.find_person(s, "unionid", self.uid(friend))

    # ------------------------------------------------------------ steps

    @initialize()
    def first_friends(self) -> None:
        for friend in range(3):  # most friends accept before anything else happens
            self.accept(friend)

    @rule(friend=st.integers(0, FRIENDS - 1))
    def accept(self, friend: int) -> None:
        req = AcceptRequest(code=self.code, id_type="unionid", id=self.uid(friend))
        try:
            with session_scope() as s:
                flows.accept_invite(s, req)
        except CampaignError:
            pass  # already accepted, not new …: refused, nothing stays

    @rule(
        friend=st.integers(0, FRIENDS - 1),
        amount=st.sampled_from([1500, 1500, 500, 99_900]),
        trusted=st.booleans(),
    )
    def convert(self, friend: int, amount: int, trusted: bool) -> None:
        order_id = f"{self.prefix}-o{next(self.seq)}"
        req = ConversionRequest(id_type="unionid", id=self.uid(friend), order_id=order_id, amount_fen=amount)
        try:
            with session_scope() as s:
                verification.report(s, self.cid, req, trusted=trusted)
        except DomainError:
            return
        self.orders[order_id] = friend

    @rule(
        data=st.data(),
        amount=st.sampled_from([1500, 500]),
        status=st.sampled_from(["paid", "paid", "refunded"]),
    )
    def shop_confirms(self, data: st.DataObject, amount: int, status: str) -> None:
        if not self.orders:
            return
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        buyer = self.person(self.orders[order_id])
        order = verification.TrustedOrder(order_id, "callback", buyer, amount, "CNY", status, utcnow())
        try:
            with session_scope() as s:
                verification.record(s, order)
        except DomainError:
            pass

    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        if not self.orders:
            return
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        with session_scope() as s:
            flows.refund(s, self.cid, order_id, actor="test")

    @rule(data=st.data(), approved=st.booleans())
    def review(self, data: st.DataObject, approved: bool) -> None:
        with session_scope() as s:
            ids = sorted(r.referral_id for r in views.referral_tree(s, self.cid) if r.state == "held")
        if ids:
            with session_scope() as s:
                flows.review_referral(s, data.draw(st.sampled_from(ids)), approved, actor="test")

    @rule()
    def expire(self) -> None:
        with session_scope() as s:
            verification.expire_pending(s, utcnow() + timedelta(days=30))

    @rule()
    def payout(self) -> None:
        with session_scope() as s:
            rewards.release_due(s, utcnow() + timedelta(days=8))
        with session_scope() as s:
            for r in rewards.list_rewards(s, campaign_id=self.cid, state="approved", limit=1000):
                rewards.transition(s, r.id, "issued", idempotency_key=f"issue:{r.id}", actor="test")

    # ------------------------------------------------------------ invariants

    @invariant()
    def one_live_reward_per_tier(self) -> None:
        with session_scope() as s:
            live = [r for r in rewards.list_rewards(s, campaign_id=self.cid, limit=1000) if r.state in LIVE]
        tiers = Counter((r.person_id, r.reason) for r in live if ":tier" in r.reason)
        assert all(n == 1 for n in tiers.values()), tiers
        friends = Counter((r.person_id, r.source_ref) for r in live if r.reason.endswith(":friend"))
        assert all(n == 1 for n in friends.values()), friends

    @invariant()
    def budget_and_stock_hold(self) -> None:
        with session_scope() as s:
            c = s.get_one(Campaign, self.cid)
            live = [r for r in rewards.list_rewards(s, campaign_id=self.cid, limit=1000) if r.state in LIVE]
            assert c.budget_used_fen <= BUDGET and c.stock_used <= STOCK
            assert c.budget_used_fen == sum(r.value_fen for r in live)
            assert c.stock_used == len(live)

    @invariant()
    def revoked_is_never_issued_after(self) -> None:
        with session_scope() as s:
            for r in rewards.list_rewards(s, campaign_id=self.cid, state="revoked", limit=1000):
                states = [e["to_state"] for e in rewards.entries(s, reward_id=r.id)]
                assert states[-1] == "revoked" and states.count("revoked") == 1, states

    @invariant()
    def live_rewards_trace_to_verified_orders(self) -> None:
        with session_scope() as s:
            orders = {
                o.order_id: o
                for o in s.scalars(select(CampaignOrder).where(CampaignOrder.campaign_id == self.cid))
            }
            for r in rewards.list_rewards(s, campaign_id=self.cid, limit=1000):
                if r.state not in LIVE:
                    continue
                order = orders[r.source_ref.removeprefix(f"order:{self.cid}:")]
                assert order.verified_by is not None and order.status == "qualified", (r, order.status)
                assert order.amount_fen >= 1000  # the trusted amount met the minimum

    @invariant()
    def ledger_verifies(self) -> None:
        with session_scope() as s:
            assert rewards.verify_chain(s).ok


def test_conversion_path_state_machine(store: str) -> None:
    run_state_machine_as_test(
        ConversionMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )

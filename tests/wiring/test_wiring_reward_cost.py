"""The reward-cost provider (rewards.costs.reward_cost_fen): which rewards it counts, by which day."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from liebian.analytics.common import Filters
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.rewards import costs
from liebian.rewards import service as rewards

# Issue times in UTC; the display zone is Asia/Shanghai (UTC+8).
LAST_SECOND_OF_MARCH_1 = datetime(2026, 3, 1, 15, 59, 59)  # 23:59:59 on 1 March, Shanghai
FIRST_SECOND_OF_MARCH_2 = datetime(2026, 3, 1, 16, 0, 0)  # 00:00:00 on 2 March, Shanghai


def _reward(session, key: str, person: int, value: int, *moves: str, campaign: str = "c1") -> int:
    view = rewards.grant(session, campaign_id=campaign, person_id=person, reward_code="R", value_fen=value,
                         reason="", source_ref=f"src-{key}", idempotency_key=key, hold_until=None)  # fmt: skip
    for n, state in enumerate(moves):
        rewards.transition(session, view.id, state, idempotency_key=f"{key}:{n}", actor="test")
    return view.id


def test_counts_issued_and_redeemed_rewards_by_local_day_of_issue(
    store: str, monkeypatch: pytest.MonkeyPatch
):
    clock = [LAST_SECOND_OF_MARCH_1]
    monkeypatch.setattr(rewards, "utcnow", lambda: clock[0])
    with session_scope() as s:
        _reward(s, "pending", 1, 1)
        _reward(s, "approved", 1, 2, "approved")
        _reward(s, "rejected", 1, 4, "rejected")
        _reward(s, "issued", 1, 8, "approved", "issued")
        _reward(s, "redeemed", 1, 16, "approved", "issued", "redeemed")
        _reward(s, "revoked", 1, 32, "approved", "issued", "revoked")
        _reward(s, "other-campaign", 1, 64, "approved", "issued", campaign="c2")
    clock[0] = FIRST_SECOND_OF_MARCH_2
    with session_scope() as s:
        _reward(s, "next-day", 1, 128, "approved", "issued")

    def cost(start=None, end=None, campaigns=()):
        return costs.reward_cost_fen(Filters(start=start, end=end, campaigns=campaigns))

    assert cost() == 8 + 16 + 64 + 128
    assert cost(date(2026, 3, 1), date(2026, 3, 1)) == 8 + 16 + 64
    assert cost(date(2026, 3, 2), date(2026, 3, 2)) == 128
    assert cost(end=date(2026, 2, 28)) == 0 and cost(start=date(2026, 3, 3)) == 0
    assert cost(campaigns=("c1",)) == 8 + 16 + 128
    assert cost(date(2026, 3, 1), date(2026, 3, 1), campaigns=("c2", "c9")) == 64
    # a channel filter does not narrow the cost: rewards carry no channel
    assert costs.reward_cost_fen(Filters(channels=("wecom",))) == cost()


def test_a_segment_selects_rewards_of_its_persons_after_merges(store: str) -> None:
    with session_scope() as s:
        found = identity.resolve(s, [identity.RawIdentifier("unionid", u) for u in ("s-a", "s-b", "s-c")])
        a, b, c = (found[identity.key_of("unionid", u)] for u in ("s-a", "s-b", "s-c"))
        _reward(s, "a", a, 100, "approved", "issued")
        _reward(s, "b", b, 20, "approved", "issued")
        _reward(s, "c", c, 3, "approved", "issued")
    with session_scope() as s:
        survivor = identity.merge(s, a, b)  # b's reward stays on b's id; it is now the survivor's
    merged = b if survivor == a else a
    assert costs.reward_cost_fen(Filters(segment=frozenset({survivor}))) == 120
    assert costs.reward_cost_fen(Filters(segment=frozenset({merged}))) == 0  # an old id is no person now
    assert costs.reward_cost_fen(Filters(segment=frozenset({c, 999}))) == 3
    assert costs.reward_cost_fen(Filters(segment=frozenset())) == 0

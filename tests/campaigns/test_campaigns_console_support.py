"""Service functions the console's campaign pages use: per-campaign counts, a limited referral list
and the poster preview (checked against independent counts and the real poster renderer)."""

from __future__ import annotations

import io

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from liebian.campaigns import invites, views
from liebian.campaigns.common import CampaignError
from liebian.campaigns.models import Invite, Referral
from liebian.campaigns.views import CampaignStats
from liebian.db.session import session_scope
from liebian.web.app import create_app


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


def test_campaign_stats_count_participants_referrals_and_states(api: Api) -> None:
    api.create(rules("double_sided", per_device_cap=None), "s1")
    api.create(rules("double_sided", per_device_cap=None), "s2")
    api.create(rules("double_sided"), "s3", launch=False)  # a draft nobody joined
    alice = api.invite("s1", "alice")["code"]
    api.invite("s1", "alice", channel="poster")  # a second code of the same inviter: one participant
    carol = api.invite("s1", "carol")["code"]
    assert api.accept(alice, "bob").status_code == 201
    assert api.accept(alice, "dan").status_code == 201
    assert api.accept(carol, "erin").status_code == 201
    assert api.order("s1", "bob", "o-1").status_code == 200  # bob qualifies (first order)
    zed = api.invite("s2", "zed")["code"]
    assert api.accept(zed, "yan").status_code == 201

    with session_scope() as s:
        stats = views.campaign_stats(s)
        one = views.campaign_stats(s, "s1")
        # independent counts straight from the tables
        inviters = s.scalar(
            select(func.count(func.distinct(Invite.inviter_person_id))).where(Invite.campaign_id == "s1")
        )
        qualified = s.scalar(
            select(func.count()).where(Referral.campaign_id == "s1", Referral.qualified_at.is_not(None))
        )
    assert stats["s1"].participants == inviters == 2
    assert stats["s1"].referrals == 3 and stats["s1"].states == {"accepted": 3}
    assert stats["s1"].qualified == qualified == 1
    assert stats["s2"] == CampaignStats(participants=1, referrals=1, qualified=0, states={"accepted": 1})
    assert "s3" not in stats  # no invites, no referrals
    assert one == {"s1": stats["s1"]}


def test_referral_tree_can_be_limited_to_the_first_referrals(api: Api) -> None:
    api.create(rules("double_sided", per_device_cap=None, per_inviter_cap=10), "lim")
    code = api.invite("lim", "alice")["code"]
    for friend in ("f1", "f2", "f3"):
        assert api.accept(code, friend).status_code == 201
    with session_scope() as s:
        everything = views.referral_tree(s, "lim")
        first_two = views.referral_tree(s, "lim", limit=2)
    assert len(everything) == 3 and first_two == everything[:2]


def test_poster_preview_is_the_campaign_poster_with_a_sample_link(api: Api) -> None:
    api.create(rules("double_sided", title="海报预览活动", poster_template="minimal"), "pp", launch=False)
    with session_scope() as s:
        png = invites.poster_preview(s, "pp")
        with pytest.raises(CampaignError) as missing:
            invites.poster_preview(s, "nope")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (750, 1100)
    # the minimal template's light background, not the classic red
    assert image.getpixel((5, 5)) == (245, 245, 245)
    assert missing.value.status == 404

"""The contact-way client against a local HTTP server implementing WeCom's documented shapes.

The real WeCom service (qyapi.weixin.qq.com) cannot be reached from here; `FakeWecom` answers as it
documents: HTTP 200 with `errcode`/`errmsg`, tokens from `gettoken`, 42001 for an expired token,
40014 for an invalid one, 45009 at the frequency limit.
"""

from __future__ import annotations

import logging

import pytest
from wecom_helpers import SAMPLE_CORP_ID, SECRET, FakeWecom

from liebian.wecom.client import WecomApiError, WecomClient


@pytest.fixture
def fake():
    with FakeWecom() as server:
        yield server


def make(fake: FakeWecom, **kw) -> tuple[WecomClient, list[float]]:
    sleeps: list[float] = []
    client = WecomClient(SAMPLE_CORP_ID, SECRET, fake.url, sleep=sleeps.append, **kw)
    return client, sleeps


def test_contact_way_lifecycle_with_documented_shapes(fake: FakeWecom):
    client, _ = make(fake)
    made = client.add_contact_way(state="lbinviter01", users=["zhangsan"], remark="春季裂变")
    assert made["config_id"] == "cfg0001" and made["qr_code"].startswith("https://")
    ((query, body),) = fake.api_calls("externalcontact/add_contact_way")
    assert query["access_token"].startswith("tok-")
    assert body == {
        "type": 1,
        "scene": 2,
        "remark": "春季裂变",
        "skip_verify": True,
        "state": "lbinviter01",
        "user": ["zhangsan"],
    }
    # several staff members: type 2
    client.add_contact_way(state="lbchannel02", users=["zhangsan", "lisi"])
    assert fake.api_calls("externalcontact/add_contact_way")[1][1]["type"] == 2
    client.update_contact_way("cfg0001", users=["lisi"], remark="换人")
    assert (
        fake.contact_ways["cfg0001"]["user"] == ["lisi"] and fake.contact_ways["cfg0001"]["remark"] == "换人"
    )
    client.del_contact_way("cfg0001")
    assert "cfg0001" not in fake.contact_ways
    with pytest.raises(WecomApiError) as exc:
        client.del_contact_way("cfg0001")
    assert exc.value.errcode == 40058 and "invalid" in str(exc.value)
    assert fake.token_calls == 1  # one token for all five calls


def test_state_limit_is_checked_before_calling(fake: FakeWecom):
    client, _ = make(fake)
    with pytest.raises(ValueError, match="30"):
        client.add_contact_way(state="x" * 31, users=["zhangsan"])
    client.add_contact_way(state="x" * 30, users=["zhangsan"])
    assert len(fake.api_calls("externalcontact/add_contact_way")) == 1


@pytest.mark.parametrize("errcode", [42001, 40014])
def test_rejected_token_is_refreshed_once(fake: FakeWecom, errcode: int):
    client, _ = make(fake)
    client.add_contact_way(state="s1", users=["u"])
    if errcode == 42001:
        fake.expire_tokens()  # our cached token now answers 42001
    else:
        client._token = "garbage"  # a token WeCom never issued answers 40014
    client.add_contact_way(state="s2", users=["u"])
    assert fake.token_calls == 2
    tokens = [q["access_token"] for q, _ in fake.api_calls("externalcontact/add_contact_way")]
    assert len(tokens) == 3 and tokens[1] != tokens[2]  # the failed call, then the retry with a new token
    assert len(fake.contact_ways) == 2


def test_token_refresh_that_keeps_failing_is_reported(fake: FakeWecom, monkeypatch):
    client, _ = make(fake)
    client.add_contact_way(state="s1", users=["u"])
    # every new token is immediately invalid: refresh once, then give up with a clear message
    monkeypatch.setattr(
        fake, "valid_tokens", type("Never", (set,), {"__contains__": lambda self, x: False})()
    )
    with pytest.raises(WecomApiError) as exc:
        client.add_contact_way(state="s2", users=["u"])
    assert exc.value.errcode == 42001 and "expired" in str(exc.value)
    assert fake.token_calls == 2


def test_rate_limit_backs_off_then_succeeds(fake: FakeWecom):
    client, sleeps = make(fake, backoff=0.5)
    client.access_token()
    fake.rate_limited = 2
    client.add_contact_way(state="s1", users=["u"])
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert len(fake.api_calls("externalcontact/add_contact_way")) == 3
    assert len(fake.contact_ways) == 1


def test_rate_limit_that_persists_is_raised_with_a_clear_message(fake: FakeWecom):
    client, sleeps = make(fake, backoff=0.1, max_retries=3)
    client.access_token()
    fake.rate_limited = 100
    with pytest.raises(WecomApiError) as exc:
        client.add_contact_way(state="s1", users=["u"])
    assert exc.value.errcode == 45009
    assert "frequency limit" in str(exc.value)
    assert sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert len(fake.api_calls("externalcontact/add_contact_way")) == 4
    assert fake.contact_ways == {}


def test_bad_credentials_name_the_setting(fake: FakeWecom):
    with pytest.raises(WecomApiError) as exc:
        WecomClient(SAMPLE_CORP_ID, "wrong", fake.url).access_token()
    assert exc.value.errcode == 40001 and "LIEBIAN_WECOM_SECRET" in str(exc.value)
    with pytest.raises(WecomApiError) as exc:
        WecomClient("wwnotmycorp", SECRET, fake.url).access_token()
    assert exc.value.errcode == 40013 and "LIEBIAN_WECOM_CORP_ID" in str(exc.value)


def test_external_contact_details(fake: FakeWecom):
    fake.contacts["woFRIEND1"] = {
        "external_userid": "woFRIEND1",
        "name": "小明",
        "type": 1,
        "unionid": "oUNION1",
    }
    client, _ = make(fake)
    assert client.get_external_contact("woFRIEND1")["external_contact"]["unionid"] == "oUNION1"
    with pytest.raises(WecomApiError) as exc:
        client.get_external_contact("woUNKNOWN")
    assert exc.value.errcode == 84061 and "not an external contact" in str(exc.value)


def test_unreachable_server_does_not_leak_the_secret():
    client = WecomClient(SAMPLE_CORP_ID, SECRET, "http://127.0.0.1:9", timeout=2)
    with pytest.raises(WecomApiError) as exc:
        client.access_token()
    assert SECRET not in str(exc.value) and "network error" in str(exc.value)


def test_secret_and_token_are_never_logged(fake: FakeWecom, caplog):
    caplog.set_level(logging.DEBUG)
    client, _ = make(fake)
    client.add_contact_way(state="s1", users=["u"])
    fake.expire_tokens()
    fake.rate_limited = 1
    client.add_contact_way(state="s2", users=["u"])
    token = client._token
    text = caplog.text + repr(client)
    assert "WeCom" in caplog.text  # the refresh and the backoff were logged…
    assert SECRET not in text and token not in text  # …without the secret or a token

"""The callback endpoints: URL verification, and rejection (with a logged reason, nothing stored) of
bad signatures, replays, stale timestamps, malformed XML and foreign ciphertexts."""

from __future__ import annotations

import logging

import pytest
from wecom_helpers import SAMPLE_AES_KEY, SAMPLE_CORP_ID, SAMPLE_TOKEN, envelope, event_xml

from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.wecom import service
from liebian.wecom.crypto import MsgCrypt, signature

CB = "/api/v1/wecom/callback"
PUBLISHED_VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}


def _nothing_stored() -> None:
    with session_scope() as s:
        assert service.callbacks(s) == []
        assert service.pending_events(s) == 0


def _verify_params(echo_plain: str = "5927782489442352469", nonce: str = "771") -> dict:
    crypt = MsgCrypt(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID)
    ts = service.epoch()
    echostr = crypt.encrypt(echo_plain)
    return {
        "msg_signature": signature(SAMPLE_TOKEN, ts, nonce, echostr),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": echostr,
    }


def test_url_verification_answers_the_echostr(client):
    r = client.get(CB, params=_verify_params())
    assert r.status_code == 200 and r.text == "5927782489442352469"


def test_url_verification_with_the_published_sample(client, monkeypatch):
    # The published request is from 2014: widen the replay window to let it through.
    monkeypatch.setenv("LIEBIAN_WECOM_REPLAY_WINDOW_SECONDS", str(10**10))
    reset_settings_cache()
    r = client.get(CB, params=PUBLISHED_VERIFY)
    assert r.status_code == 200 and r.text == "1616140317555161061"


def test_url_verification_rejects_bad_signature_and_replay(client, caplog):
    caplog.set_level(logging.WARNING)
    params = _verify_params(nonce="772")
    bad = {**params, "msg_signature": "0" * 40}
    r = client.get(CB, params=bad)
    assert r.status_code == 403 and "bad_signature" in r.text
    assert client.get(CB, params=params).status_code == 200
    r = client.get(CB, params=params)
    assert r.status_code == 403 and "replayed_nonce" in r.text
    # the published (2014) request under the default window: too old
    r = client.get(CB, params=PUBLISHED_VERIFY)
    assert r.status_code == 403 and "stale_timestamp" in r.text
    assert "bad_signature" in caplog.text and "replayed_nonce" in caplog.text
    assert SAMPLE_TOKEN not in caplog.text and SAMPLE_AES_KEY not in caplog.text


def _add_xml(**extra) -> str:
    return event_xml("add_external_contact", UserID="zhangsan", ExternalUserID="woREJECT1", **extra)


def test_tampered_signature_is_rejected_and_nothing_stored(client, caplog):
    caplog.set_level(logging.WARNING)
    params, body = envelope(_add_xml())
    r = client.post(CB, params={**params, "msg_signature": params["msg_signature"][::-1]}, content=body)
    assert r.status_code == 403 and "bad_signature" in r.text
    assert "WeCom callback rejected" in caplog.text and "bad_signature" in caplog.text
    _nothing_stored()


def test_tampered_ciphertext_is_rejected(client):
    params, body = envelope(_add_xml())
    start = body.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    flipped = body[:start] + ("A" if body[start] != "A" else "B") + body[start + 1 :]
    r = client.post(CB, params=params, content=flipped)
    assert r.status_code == 403 and "bad_signature" in r.text  # the signature covers the ciphertext
    _nothing_stored()


def test_foreign_receive_id_is_rejected(client):
    other_corp = MsgCrypt(SAMPLE_TOKEN, SAMPLE_AES_KEY, "wwANOTHERCORP0001")
    params, body = envelope(_add_xml(), other_corp)
    r = client.post(CB, params=params, content=body)
    assert r.status_code == 400 and "bad_receive_id" in r.text
    _nothing_stored()


def test_stale_and_future_timestamps_are_rejected(client):
    now = int(service.epoch())
    # margins of a minute around the 300 s window: the test must not depend on how fast it runs
    for ts in (now - 360, now + 360):
        params, body = envelope(_add_xml(), ts=ts)
        r = client.post(CB, params=params, content=body)
        assert r.status_code == 403 and "stale_timestamp" in r.text
    params, body = envelope(_add_xml(), ts=now - 240)
    assert client.post(CB, params=params, content=body).status_code == 200


def test_repeated_nonce_is_a_replay(client):
    params, body = envelope(_add_xml())
    assert client.post(CB, params=params, content=body).text == "success"
    r = client.post(CB, params=params, content=body)
    assert r.status_code == 403 and "replayed_nonce" in r.text
    with session_scope() as s:
        assert len(service.callbacks(s)) == 1


@pytest.mark.parametrize(
    ("body_or_plain", "code"),
    [
        ("outer:<xml><Encrypt>unclosed", "malformed_xml"),
        ("outer:<xml><ToUserName>x</ToUserName></xml>", "malformed_xml"),  # no <Encrypt>
        (
            'outer:<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            "<xml><Encrypt>&b;</Encrypt></xml>",
            "malformed_xml",
        ),  # entity expansion is refused by defusedxml
        ("inner:<xml><Event>change_external_contact", "malformed_xml"),
        (
            "inner:<xml><MsgType>text</MsgType><Content>hi</Content><CreateTime>1</CreateTime></xml>",
            "malformed_event",
        ),
        (
            "inner:" + event_xml("add_external_contact", UserID="zhangsan"),
            "malformed_event",
        ),  # no ExternalUserID
    ],
)
def test_malformed_xml_and_events_are_rejected(client, body_or_plain: str, code: str):
    where, text = body_or_plain.split(":", 1)
    if where == "outer":
        params, _ = envelope("<xml/>")
        # sign whatever <Encrypt> holds, so that only the XML is at fault
        params["msg_signature"] = signature(SAMPLE_TOKEN, params["timestamp"], params["nonce"], "")
        body = text
    else:
        params, body = envelope(text)
    r = client.post(CB, params=params, content=body)
    assert r.status_code in (400, 403), r.text
    assert code in r.text or "bad_signature" in r.text
    _nothing_stored()


def test_missing_parameters_and_missing_configuration(client, monkeypatch):
    r = client.post(CB, content="<xml/>")
    assert r.status_code == 400 and "msg_signature" in r.text
    monkeypatch.delenv("LIEBIAN_WECOM_TOKEN")
    reset_settings_cache()
    params, body = envelope(_add_xml())
    r = client.post(CB, params=params, content=body)
    assert r.status_code == 503 and "LIEBIAN_WECOM_TOKEN" in r.text

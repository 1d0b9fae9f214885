"""Notifications against a local HTTP receiver and a local SMTP server: formats, signatures, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.monitor import notifications, notify, service
from shared_helpers import free_port

NOW = datetime(2026, 11, 20, 9, 0)


class Receiver:
    """A local HTTP server that records requests and answers with a scripted list of statuses."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[int] = []
        self.body_on_ok = b'{"errcode": 0, "errmsg": "ok"}'
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(receiver.body_on_ok if status == 200 else b'{"error": "busy"}')

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(allow_private_urls: None) -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications, "SEND_OPTIONS", {"attempts": 3, "backoff": 0.01})


def _alert(session) -> dict:
    alert, _ = service.raise_alert(
        session, kind="threshold", metric="participation_rate", scope={"campaign_id": "c_invite"}, level="重要",
        title="参与率低于15%", observed=0.09, threshold=0.15, period="2026-11-19",
        suggested_action="raise_reward_tier", now=NOW,
    )  # fmt: skip
    return alert


def test_wecom_robot_payload(sqlite_store: str, receiver: Receiver, fast_retries: None) -> None:
    with session_scope() as s:
        notifications.add_channel(
            s, "ops群", "wecom", f"{receiver.url}/cgi-bin/webhook/send?key=abc", actor="t"
        )
        alert = _alert(s)
        (d,) = notifications.notify_alert(s, alert, "opened")
    assert d["status"] == "delivered" and d["attempts"] == 1
    (req,) = receiver.requests
    assert req["path"] == "/cgi-bin/webhook/send?key=abc"
    body = json.loads(req["body"])
    assert body["msgtype"] == "markdown" and set(body) == {"msgtype", "markdown"}
    content = body["markdown"]["content"]
    assert "【重要】" in content and "参与率低于15%" in content
    assert "9.00%" in content and "15.00%" in content  # observed against threshold
    assert "raise_reward_tier" in content


def test_dingtalk_signature_verifies(sqlite_store: str, receiver: Receiver, fast_retries: None) -> None:
    secret = "SECabcdef0123456789"
    with session_scope() as s:
        notifications.add_channel(
            s, "钉钉", "dingtalk", f"{receiver.url}/robot/send?access_token=t0k", secret, actor="t"
        )
        notifications.notify_alert(s, _alert(s), "opened")
    (req,) = receiver.requests
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(req["path"]).query)
    ts = q["timestamp"][0]
    assert abs(int(ts) / 1000 - time.time()) < 3600
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    )
    assert q["sign"][0] == expected.decode()  # parse_qs already url-decoded it
    assert q["access_token"] == ["t0k"]
    body = json.loads(req["body"])
    assert body["msgtype"] == "markdown" and body["markdown"]["title"].startswith("【重要】")


def test_signed_webhook_and_retries_on_5xx(sqlite_store: str, receiver: Receiver, fast_retries: None) -> None:
    receiver.script = [503, 500, 200]
    with session_scope() as s:
        notifications.add_channel(s, "hook", "webhook", f"{receiver.url}/hook", "whsec", actor="t")
        alert = _alert(s)
        (d,) = notifications.notify_alert(s, alert, "opened")
        log = notifications.list_deliveries(s, alert["id"])
    assert d["status"] == "delivered" and d["attempts"] == 3 and d["http_status"] == 200
    assert [x["attempts"] for x in log] == [3]
    assert len(receiver.requests) == 3
    req = receiver.requests[-1]
    ts, sig = req["headers"]["X-Liebian-Timestamp"], req["headers"]["X-Liebian-Signature"]
    good = "sha256=" + hmac.new(b"whsec", f"{ts}.".encode() + req["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sig, good)
    bad = "sha256=" + hmac.new(b"other", f"{ts}.".encode() + req["body"], hashlib.sha256).hexdigest()
    assert sig != bad
    payload = json.loads(req["body"])
    assert payload["observed"] == 0.09 and payload["threshold"] == 0.15 and payload["event"] == "opened"


def test_gives_up_after_retries_and_logs_the_failure(
    sqlite_store: str, receiver: Receiver, fast_retries: None
) -> None:
    receiver.script = [502, 502, 502, 502]
    with session_scope() as s:
        notifications.add_channel(s, "hook", "webhook", f"{receiver.url}/hook", actor="t")
        (d,) = notifications.notify_alert(s, _alert(s), "opened")
    assert d["status"] == "failed" and d["attempts"] == 3 and d["http_status"] == 502
    assert "HTTP 502" in d["error"]
    assert len(receiver.requests) == 3


def test_4xx_is_not_retried(receiver: Receiver) -> None:
    receiver.script = [400]
    r = notify.send(
        "webhook", f"{receiver.url}/h", "", notify.public_view({"level": "一般"}, "test"), backoff=0
    )
    assert r.status == "failed" and r.attempts == 1


def test_no_personal_data_in_payloads(sqlite_store: str, receiver: Receiver, fast_retries: None) -> None:
    with session_scope() as s:
        notifications.add_channel(s, "hook", "webhook", f"{receiver.url}/hook", actor="t")
        alert = _alert(s)
        alert["scope"]["person_id"] = 123456789  # whatever a caller puts there,
        alert["phone"] = "13800138000"  # only whitelisted fields leave
        notifications.notify_alert(s, alert, "opened")
    body = receiver.requests[0]["body"].decode()
    assert "123456789" not in body and "13800138000" not in body and "person" not in body


def test_channel_urls_and_secrets_are_stored_encrypted(sqlite_store: str) -> None:
    from sqlalchemy import text

    with session_scope() as s:
        view = notifications.add_channel(s, "钉钉", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=SECRET1",
                                   "SECxyz", actor="t")  # fmt: skip
        raw = s.execute(text("SELECT target_encrypted, secret_encrypted FROM monitor_channels")).one()
    assert "SECRET1" not in raw[0] and "SECxyz" not in raw[1]
    assert view["target"] == "https://oapi.dingtalk.com/robot/send?…" and view["signed"]


def test_bad_channel_input_is_named(sqlite_store: str) -> None:
    with session_scope() as s:
        with pytest.raises(service.MonitorError, match="target"):
            notifications.add_channel(s, "x", "wecom", "not-a-url", actor="t")
        with pytest.raises(service.MonitorError, match="kind"):
            notifications.add_channel(s, "x", "sms", "https://x", actor="t")
        with pytest.raises(service.MonitorError, match="secret"):
            notifications.add_channel(s, "x", "dingtalk", "https://x", "nope", actor="t")


class _Sink:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


def test_email_over_local_smtp(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("LIEBIAN_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("LIEBIAN_SMTP_PORT", str(port))
        monkeypatch.setenv("LIEBIAN_SMTP_FROM", "alerts@teawords.example")
        reset_settings_cache()
        with session_scope() as s:
            notifications.add_channel(
                s, "值班邮箱", "email", "ops@teawords.example, lead@teawords.example", actor="t"
            )
            (d,) = notifications.notify_alert(s, _alert(s), "opened")
    finally:
        controller.stop()
        reset_settings_cache()
    assert d["status"] == "delivered"
    (env,) = sink.messages
    assert sorted(env.rcpt_tos) == ["lead@teawords.example", "ops@teawords.example"]
    assert env.mail_from == "alerts@teawords.example"
    from email import message_from_bytes
    from email.header import decode_header, make_header

    msg = message_from_bytes(env.content)
    assert "参与率低于15%" in str(make_header(decode_header(msg["Subject"])))
    assert "9.00%" in msg.get_payload(decode=True).decode()


def test_email_to_a_closed_port_fails_and_is_logged(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    monkeypatch.setenv("LIEBIAN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LIEBIAN_SMTP_PORT", str(free_port()))
    reset_settings_cache()
    try:
        with session_scope() as s:
            notifications.add_channel(s, "mail", "email", "ops@x.example", actor="t")
            (d,) = notifications.notify_alert(s, _alert(s), "opened")
    finally:
        reset_settings_cache()
    assert d["status"] == "failed" and d["attempts"] == 3 and d["error"]


def test_min_level_and_escalation_notice(sqlite_store: str, receiver: Receiver, fast_retries: None) -> None:
    from datetime import timedelta

    with session_scope() as s:
        notifications.add_channel(s, "值班", "webhook", f"{receiver.url}/oncall", min_level="紧急", actor="t")
        alert = _alert(s)  # 重要: below this channel's level
        assert notifications.notify_alert(s, alert, "opened") == []
        notifications.escalate_due(s, NOW + timedelta(hours=4))  # 重要 → 紧急 after its 4 h
        (d,) = notifications.list_deliveries(s, alert["id"])
    assert d["event"] == "escalated" and d["status"] == "delivered"
    payload = json.loads(receiver.requests[0]["body"])
    assert payload["level"] == "紧急" and payload["event"] == "escalated" and payload["escalations"] == 1

"""Shared by the WeCom tests: a local stand-in for WeCom's server API, and callback builders.

The real WeCom service (qyapi.weixin.qq.com) cannot be reached from the test machines, so
`FakeWecom` implements the documented request and response shapes of the calls liebian makes —
`gettoken`, `externalcontact/add_contact_way|update_contact_way|del_contact_way|get` — on a
loopback port, including token expiry (42001), invalid tokens (40014) and the frequency limit
(45009).
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

from liebian.wecom.crypto import MsgCrypt, signature

# The sample app of WeCom's official callback sample code (weworkapi WXBizMsgCrypt samples).
SAMPLE_TOKEN = "QDG6eK"
SAMPLE_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SAMPLE_CORP_ID = "wx5823bf96d3bd56c7"
SECRET = "test-secret-Zq9-never-logged"


class FakeWecom:
    """WeCom's API on 127.0.0.1: tokens, 联系我 codes and external contacts, with fault injection."""

    def __init__(self, corp_id: str = SAMPLE_CORP_ID, secret: str = SECRET):
        self.corp_id, self.secret = corp_id, secret
        self.valid_tokens: set[str] = set()
        self.token_calls = 0
        self.calls: list[tuple[str, dict, dict | None]] = []  # (path, query, body)
        self.contact_ways: dict[str, dict] = {}
        self.contacts: dict[str, dict] = {}  # external_userid → external_contact
        self.rate_limited = 0  # answer this many upcoming API calls with 45009
        self._seq = itertools.count(1)
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)  # WeCom answers errors with HTTP 200 and an errcode
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self._answer(fake.handle("GET", self.path, None))

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(fake.handle("POST", self.path, json.loads(raw or b"{}")))

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeWecom:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def expire_tokens(self) -> None:
        """Every token handed out so far expires (the next call with one answers 42001)."""
        self.valid_tokens.clear()

    def api_calls(self, path: str) -> list[tuple[dict, dict | None]]:
        return [(q, b) for p, q, b in self.calls if p == path]

    def handle(self, method: str, raw_path: str, body: dict | None) -> dict:
        url = urlparse(raw_path)
        path = url.path.removeprefix("/cgi-bin/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.calls.append((path, query, body))
        if path == "gettoken":
            self.token_calls += 1
            if query.get("corpid") != self.corp_id:
                return {"errcode": 40013, "errmsg": "invalid corpid"}
            if query.get("corpsecret") != self.secret:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            token = f"tok-{uuid.uuid4().hex}"
            self.valid_tokens.add(token)
            return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
        token = query.get("access_token")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        if token not in self.valid_tokens:
            # a token of this server's format that is no longer valid has expired; others are invalid
            return (
                {"errcode": 42001, "errmsg": "access_token expired"}
                if token.startswith("tok-")
                else {"errcode": 40014, "errmsg": "invalid access_token"}
            )
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        if path == "externalcontact/add_contact_way":
            return self._add(body or {})
        if path == "externalcontact/update_contact_way":
            cw = self.contact_ways.get((body or {}).get("config_id"))
            if cw is None:
                return {"errcode": 40058, "errmsg": "invalid config_id"}
            if "state" in body and len(body["state"]) > 30:
                return {"errcode": 40058, "errmsg": "state exceed max length"}
            cw.update({k: v for k, v in body.items() if k != "config_id"})
            return {"errcode": 0, "errmsg": "ok"}
        if path == "externalcontact/del_contact_way":
            if self.contact_ways.pop((body or {}).get("config_id"), None) is None:
                return {"errcode": 40058, "errmsg": "invalid config_id"}
            return {"errcode": 0, "errmsg": "ok"}
        if path == "externalcontact/get":
            contact = self.contacts.get(query.get("external_userid", ""))
            if contact is None:
                return {"errcode": 84061, "errmsg": "not external contact"}
            return {"errcode": 0, "errmsg": "ok", "external_contact": contact, "follow_user": []}
        return {"errcode": 48002, "errmsg": "api forbidden"}

    def _add(self, body: dict) -> dict:
        problems = []
        if body.get("type") not in (1, 2):
            problems.append("type")
        if body.get("scene") not in (1, 2):
            problems.append("scene")
        if not body.get("user"):
            problems.append("user")
        if body.get("type") == 1 and len(body.get("user") or []) != 1:
            problems.append("type 1 takes one user")
        if len(body.get("state", "")) > 30:
            problems.append("state exceed max length")
        if problems:
            return {"errcode": 40058, "errmsg": "invalid parameter: " + ", ".join(problems)}
        config_id = f"cfg{next(self._seq):04d}"
        self.contact_ways[config_id] = dict(body)
        qr = f"https://wework.qpic.cn/wwpic/{config_id}/0" if body["scene"] == 2 else None
        return {"errcode": 0, "errmsg": "ok", "config_id": config_id, "qr_code": qr}


# ---------------------------------------------------------------- callbacks


_nonces = itertools.count(int(time.time()) % 100000 * 1000)


def event_xml(
    change_type: str, *, event: str = "change_external_contact", ts: int | None = None, **fields
) -> str:
    created = ts or int(datetime.now(UTC).timestamp())
    parts = [
        f"<ToUserName><![CDATA[{SAMPLE_CORP_ID}]]></ToUserName>",
        "<FromUserName><![CDATA[sys]]></FromUserName>",
        f"<CreateTime>{created}</CreateTime>",
        "<MsgType><![CDATA[event]]></MsgType>",
        f"<Event><![CDATA[{event}]]></Event>",
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType>",
    ]
    for key, value in fields.items():
        if key == "MemChangeList":
            parts.append(
                "<MemChangeList>"
                + "".join(f"<Item><![CDATA[{m}]]></Item>" for m in value)
                + "</MemChangeList>"
            )
        else:
            parts.append(f"<{key}><![CDATA[{value}]]></{key}>")
    return "<xml>" + "".join(parts) + "</xml>"


def envelope(plain: str, crypt: MsgCrypt | None = None, *, ts: int | None = None, nonce: str | None = None):
    """(query params, body) of a POST as WeCom sends it, encrypted and signed with the sample app."""
    crypt = crypt or MsgCrypt(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID)
    timestamp = str(ts or int(datetime.now(UTC).timestamp()))
    nonce = nonce or str(next(_nonces))
    encrypt = crypt.encrypt(plain)
    sig = signature(crypt.token, timestamp, nonce, encrypt)
    body = (
        f"<xml><ToUserName><![CDATA[{SAMPLE_CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        "<AgentID><![CDATA[1000002]]></AgentID></xml>"
    )
    return {"msg_signature": sig, "timestamp": timestamp, "nonce": nonce}, body

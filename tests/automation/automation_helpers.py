"""A real HTTP receiver for journey webhooks, persons with consent, and warehouse events."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from liebian.automation.service import sign
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.identity import service as identity
from liebian.privacy import service as privacy

SECRET = "journey-secret-0123456789"


class Receiver:
    """Records every POST whose signature verifies; answers 400 to a bad signature."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.bad_signatures = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Liebian-Timestamp"]
                ok = self.headers["X-Liebian-Signature"] == "sha256=" + sign(SECRET, ts, raw)
                if ok:
                    outer.received.append({"path": self.path, **json.loads(raw)})
                else:
                    outer.bad_signatures += 1
                self.send_response(200 if ok else 400)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def persons(self, path: str | None = None) -> list[int]:
        return sorted(r["person_id"] for r in self.received if path is None or r["path"] == path)


def make_persons(n: int, consent: bool = True, prefix: str = "o") -> list[int]:
    with session_scope() as s:
        if consent and privacy.current_notice(s) is None:
            privacy.publish_notice(
                s, title="隐私政策", body="营销触达说明", purposes=["collection", "marketing"],
                reconsent_purposes=[], actor="test",
            )  # fmt: skip
        ids = []
        for i in range(n):
            oid = f"{prefix}-{i:06d}-journey"
            pid = identity.resolve(s, [identity.RawIdentifier("openid", oid)], source="test")[("openid", oid)]
            if consent:
                privacy.record_consent(s, pid, "marketing", True, actor="test")
            ids.append(pid)
    return ids


def set_consent(person_id: int, granted: bool) -> None:
    with session_scope() as s:
        privacy.record_consent(s, person_id, "marketing", granted, actor="test")


def add_events(rows: list[tuple[int, str, datetime]]) -> None:
    """(person_id, event, ts) rows into the warehouse events table."""
    with warehouse.connect() as con:
        for i, (pid, event, ts) in enumerate(rows):
            con.execute(
                "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, batch_id, "
                "ingested_at) VALUES (?, ?, ?, 'openid', ?, ?, 'wecom', 'test', ?)",
                [f"t-{pid}-{event}-{ts.isoformat()}-{i}", ts, pid, f"u{pid}", event, ts],
            )


def webhook(url: str, channel: str) -> dict:
    return {"action": {"type": "webhook", "channel": channel, "url": f"{url}/{channel}", "secret": SECRET}}


def role_headers(role: str) -> dict[str, str]:
    from liebian.auth.service import create_api_key

    with session_scope() as s:
        key, _ = create_api_key(s, name=f"test {role}", actor="test", kind="service", role=role)
    return {"Authorization": f"Bearer {key}"}

"""Helpers shared by the reward-ledger tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from liebian.db.session import get_engine
from liebian.rewards import service


def grant(
    session,
    key: str,
    *,
    person_id: int = 1,
    value_fen: int = 500,
    campaign_id: str = "c1",
    source_ref: str | None = None,
    hold_until: datetime | None = None,
    held: bool = False,
):
    return service.grant(
        session,
        campaign_id=campaign_id,
        person_id=person_id,
        reward_code="coupon-5",
        value_fen=value_fen,
        reason="invited a friend who bought",
        source_ref=source_ref or f"order-{key}",
        idempotency_key=key,
        hold_until=hold_until,
        held_for_review=held,
    )


def raw(sql: str, **params) -> list:
    """Raw SQL outside the ledger code (what an attacker with database access does)."""
    with get_engine().begin() as conn:
        result = conn.execute(text(sql), params)
        return result.fetchall() if result.returns_rows else []


class Receiver:
    """A real HTTP server on a loopback port that records webhook requests.

    `script` is a list of status codes (or "sleep") for the first requests; afterwards it answers 200.
    """

    def __init__(self, script: list | None = None, sleep_s: float = 2.0):
        import http.server
        import threading

        self.requests: list[dict] = []
        self.script = list(script or [])
        self.sleep_s = sleep_s
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                action = receiver.script.pop(0) if receiver.script else 200
                if action == "sleep":
                    import time

                    time.sleep(receiver.sleep_s)
                    action = 200
                try:
                    self.send_response(action)
                    self.end_headers()
                    self.wfile.write(b"ok" if action == 200 else b"try later")
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

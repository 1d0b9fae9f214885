"""Shared by the campaign tests: a valid rules document per campaign type and a thin API client."""

from __future__ import annotations

import copy
from typing import Any

import httpx

BASE_RULES: dict[str, Any] = {
    "title": "春季邀友有礼",
    "rules_text": "每邀请一位新朋友完成首单，即可获得奖励；每人最多邀请3位，奖励在退款期结束后发放。",
    "per_inviter_cap": 3,
    "per_device_cap": 2,
    "budget_fen": 1_000_000,
    "hold_days": 7,
    "claim_window_days": 7,
    "collects": ["phone"],
    "consent_step": True,
    "regions": ["east"],
}

TYPE_RULES: dict[str, dict[str, Any]] = {
    "invite_task": {
        "type": "invite_task",
        "tiers": [
            {"threshold": 1, "reward": {"code": "T1", "value_fen": 500}},
            {"threshold": 3, "reward": {"code": "T3", "value_fen": 3000}},
        ],
    },
    "double_sided": {
        "type": "double_sided",
        "inviter_reward": {"code": "INV", "value_fen": 1000},
        "friend_reward": {"code": "NEW", "value_fen": 500},
    },
    "group_buy": {
        "type": "group_buy",
        "per_inviter_cap": 5,
        "group": {
            "size": 3,
            "window_hours": 24,
            "initiator_reward": {"code": "G-INIT", "value_fen": 2000},
            "joiner_reward": {"code": "G-JOIN", "value_fen": 300},
            "bringer_reward": {"code": "G-BRING", "value_fen": 200},
        },
    },
    "assist": {
        "type": "assist",
        "platforms": ["app"],  # 助力 pays for forwarding: banned in WeChat (诱导分享), a risk elsewhere
        "require_new_friend": False,
        "qualifying_event": {"kind": "signup"},
        "assist": {"required": 2, "reward": {"code": "CUT", "value_fen": 800}},
    },
    "share_coupon": {
        "type": "share_coupon",
        "platforms": ["app"],  # a reward for shares: banned in WeChat (诱导分享), a risk elsewhere
        "qualifying_event": {"kind": "signup"},
        "inviter_reward": {"code": "SHARE", "value_fen": 100},
        "friend_reward": {"code": "WELCOME", "value_fen": 100},
    },
    "leaderboard": {
        "type": "leaderboard",
        "per_inviter_cap": 10,
        "leaderboard": {
            "top_n": 2,
            "rewards": [{"code": "GOLD", "value_fen": 5000}, {"code": "SILVER", "value_fen": 2000}],
        },
    },
}

# The referral loop's common case (the statement budgets, the batched grants): a new friend's first
# order rewards both sides (INV 1,000 fen to the inviter, NEW 500 to the friend).
FIRST_ORDER_DOUBLE_SIDED: dict[str, Any] = {
    **TYPE_RULES["double_sided"],
    "title": "邀友有礼",
    "rules_text": "每邀请一位新朋友完成首单，双方各得奖励。",
    "per_inviter_cap": 100,
    "hold_days": 7,
    "qualifying_event": {"kind": "first_order"},
}


def rules(kind: str, **overrides: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE_RULES)
    out.update(copy.deepcopy(TYPE_RULES[kind]))
    out.update(overrides)
    return out


class Api:
    """The campaign HTTP API as a front end and an operator use it (TestClient or httpx.Client)."""

    def __init__(self, client: httpx.Client):
        self.c = client

    def create(self, rules_doc: dict, cid: str | None = None, launch: bool = True) -> dict:
        r = self.c.post("/api/v1/campaigns", json={"id": cid, "rules": rules_doc})
        assert r.status_code == 201, r.text
        if launch:
            r = self.c.post(f"/api/v1/campaigns/{r.json()['id']}/launch")
            assert r.status_code == 200, r.text
        return r.json()

    def invite(self, cid: str, uid: str, channel: str = "share", nickname: str = "小红") -> dict:
        r = self.c.post(
            f"/api/v1/campaigns/{cid}/invites",
            json={"id_type": "unionid", "id": uid, "channel": channel, "nickname": nickname},
        )
        assert r.status_code == 200, r.text
        return r.json()

    def click(self, code: str, visitor: str | None = None, **params: str) -> httpx.Response:
        """Open the short link; `visitor` clicks from their own phone (device id and user agent),
        otherwise from this client's address, user agent and visitor cookie."""
        headers = {}
        if visitor:
            params.setdefault("device_id", f"phone-of-{visitor}")
            headers["user-agent"] = f"Mozilla/5.0 (iPhone; {visitor}) MicroMessenger/8.0"
        return self.c.get(f"/i/{code}", params=params, headers=headers, follow_redirects=False)

    def accept(self, code: str, uid: str, **extra: Any) -> httpx.Response:
        return self.c.post(
            "/api/v1/invites/accept", json={"code": code, "id_type": "unionid", "id": uid, **extra}
        )

    def order(
        self, cid: str, uid: str, order_id: str, amount_fen: int = 9900, **extra: Any
    ) -> httpx.Response:
        body = {
            "id_type": "unionid",
            "id": uid,
            "order_id": order_id,
            "amount_fen": amount_fen,
            "region": "east",
        }
        body.update(extra)
        return self.c.post(f"/api/v1/campaigns/{cid}/conversions", json=body)

    def refund(self, cid: str, order_id: str) -> httpx.Response:
        return self.c.post(f"/api/v1/campaigns/{cid}/refunds", json={"order_id": order_id})

    def progress(self, cid: str, uid: str) -> dict:
        r = self.c.get(f"/api/v1/campaigns/{cid}/progress", params={"id_type": "unionid", "id": uid})
        assert r.status_code == 200, r.text
        return r.json()


class Receiver:
    """A local HTTP server standing in for the brand's reward system (webhook target)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
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

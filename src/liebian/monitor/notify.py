"""Alert notifications: WeCom group robot, DingTalk robot, a generic signed webhook, e-mail (SMTP).

Payloads carry the alert only — metric, scope (campaign / channel / group id), level, expected and
observed values, the suggested action — never a person id, phone or name (`public_view` is the
whitelist). HTTP sends retry on 5xx, 429 and connection errors with exponential backoff; every
attempted delivery is written to the delivery log (`monitor_deliveries`).

Formats:
- WeCom 群机器人: POST `{"msgtype": "markdown", "markdown": {"content": …}}` to the robot URL; a
  reply `{"errcode": 0}` means delivered.
- DingTalk 自定义机器人 with 加签: `timestamp` (ms) and `sign` =
  urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))) as query parameters; body
  `{"msgtype": "markdown", "markdown": {"title": …, "text": …}}`.
- Generic webhook: the JSON alert, with `X-Liebian-Timestamp` (unix s) and `X-Liebian-Signature:
  sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` — the receiver recomputes it and
  rejects stale timestamps.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import smtplib
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING

from liebian import urlguard
from liebian.config import get_settings
from liebian.errors import BadGateway
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import httpx
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    httpx = lazy_import("httpx")

RETRY_STATUS = {429, 500, 502, 503, 504}
PUBLIC_FIELDS = (
    "id",
    "kind",
    "metric",
    "scope",
    "level",
    "status",
    "title",
    "observed",
    "expected",
    "threshold",
    "period",
    "suggested_action",
    "auto_action",
    "occurrences",
    "first_seen",
    "due_at",
    "escalations",
    "root_cause",
)
SCOPE_FIELDS = ("campaign_id", "channel", "group_id")


class NotifyError(BadGateway):
    """A notification channel refused or could not be reached."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)


@dataclass
class Result:
    status: str  # delivered | failed
    attempts: int
    http_status: int | None = None
    error: str = ""


def public_view(alert: dict, event: str) -> dict:
    """The whitelisted, person-free content of an alert notification."""
    out = {k: alert.get(k) for k in PUBLIC_FIELDS}
    out["scope"] = {k: v for k, v in (alert.get("scope") or {}).items() if k in SCOPE_FIELDS}
    out["event"] = event
    return out


def _num(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.2%}" if abs(v) < 1 and v != 0 else f"{v:,.2f}".rstrip("0").rstrip(".")


EVENT_ZH = {
    "opened": "新告警",
    "escalated": "告警升级",
    "resolved": "告警已解决",
    "test": "测试消息",
    "reminder": "即将超时提醒",
}


def markdown(view: dict) -> str:
    scope = "，".join(f"{k}={v}" for k, v in view["scope"].items()) or "全部"
    lines = [
        f"### 【{view['level']}】{EVENT_ZH.get(view['event'], view['event'])}：{view['title']}",
        f"> 指标：{view['metric']}（{scope}）",
        f"> 时段：{view['period']}",
        f"> 实际值：{_num(view['observed'])}，预期/阈值：{_num(view['expected'] if view['expected'] is not None else view['threshold'])}",
        f"> 建议动作：{view['suggested_action']}",
        f"> 响应截止：{view['due_at']} (UTC)",
    ]
    if view.get("auto_action"):
        lines.append(f"> 自动调整：{view['auto_action']}")
    if view.get("root_cause"):
        lines.append(f"> 根因：{view['root_cause']}")
    return "\n".join(lines)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    attempts: int,
    backoff: float,
    sleep: Callable[[float], None],
    check_errcode: bool,
    timeout: float,
) -> Result:
    try:
        urlguard.check_before_send(url, "target")  # again: the name may point elsewhere now
    except urlguard.UnsafeURL as exc:
        return Result("failed", 0, None, exc.message)
    last = Result("failed", 0)
    for attempt in range(1, attempts + 1):
        last.attempts = attempt
        try:
            resp = httpx.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=timeout
            )
        except httpx.HTTPError as exc:
            last.error, last.http_status = f"{type(exc).__name__}: {exc}", None
        else:
            last.http_status = resp.status_code
            if resp.status_code < 300:
                if check_errcode:  # the robots answer 200 with an errcode
                    try:
                        code = resp.json().get("errcode", 0)
                    except ValueError:
                        code = 0
                    if code != 0:
                        last.error = f"robot errcode {code}: {resp.text[:200]}"
                        return last  # a refused message (bad key, bad sign) does not get better by retrying
                return Result("delivered", attempt, resp.status_code)
            last.error = f"HTTP {resp.status_code}: {resp.text[:200]}"
            if resp.status_code not in RETRY_STATUS:
                return last
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    return last


def send(
    kind: str,
    target: str,
    secret: str,
    view: dict,
    *,
    attempts: int = 3,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
    timeout: float = 10.0,
) -> Result:
    """Deliver one notification `view` (from `public_view`) through a channel of `kind`."""
    post = functools.partial(_post, attempts=attempts, backoff=backoff, sleep=sleep, timeout=timeout)
    text = markdown(view)
    if kind == "wecom":
        body = json.dumps({"msgtype": "markdown", "markdown": {"content": text}}, ensure_ascii=False).encode()
        return post(target, body, {}, check_errcode=True)
    if kind == "dingtalk":
        url = target
        if secret:
            ts = int(now() * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(secret, ts)}"
        title = f"【{view['level']}】{view['title']}"
        content = json.dumps(
            {"msgtype": "markdown", "markdown": {"title": title, "text": text}}, ensure_ascii=False
        )
        return post(url, content.encode(), {}, check_errcode=True)
    if kind == "webhook":
        body = json.dumps(view, ensure_ascii=False, sort_keys=True, default=str).encode()
        ts = int(now())
        headers = {"X-Liebian-Timestamp": str(ts), "X-Liebian-Event": view["event"]}
        if secret:
            headers["X-Liebian-Signature"] = webhook_signature(secret, ts, body)
        return post(target, body, headers, check_errcode=False)
    if kind == "email":
        return _send_email(
            target, view, text, attempts=attempts, backoff=backoff, sleep=sleep, timeout=timeout
        )
    raise NotifyError(f"kind: {kind!r} is not wecom, dingtalk, webhook or email")


def _send_email(
    recipients: str, view: dict, text: str, *, attempts: int, backoff: float, sleep: Callable, timeout: float
) -> Result:
    s = get_settings()
    msg = EmailMessage()
    msg["Subject"] = (
        f"[liebian] 【{view['level']}】{EVENT_ZH.get(view['event'], view['event'])}：{view['title']}"
    )
    msg["From"] = s.smtp_from
    msg["To"] = recipients
    msg.set_content(text)
    last = Result("failed", 0)
    for attempt in range(1, attempts + 1):
        last.attempts = attempt
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_user and s.smtp_password:
                    smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
                smtp.send_message(msg)
            return Result("delivered", attempt)
        except smtplib.SMTPResponseException as exc:
            last.error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if exc.smtp_code < 500 and attempt < attempts:  # 4xx is temporary
                sleep(backoff * 2 ** (attempt - 1))
                continue
            return last
        except (OSError, smtplib.SMTPException) as exc:
            last.error = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
    return last

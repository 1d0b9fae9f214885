"""A small client of the WeCom server API (qyapi.weixin.qq.com/cgi-bin) for 客户联系.

- `gettoken` is called once and the access token cached until shortly before `expires_in`; a call
  answered with 40014 (invalid token), 41001 (missing) or 42001 (expired) refreshes it and retries once.
- 45009 (frequency limit) and -1 (system busy) are retried with exponential backoff, then raised.
- Every other errcode raises `WecomApiError` with a clear message naming the API and the fix.
- The secret and the access token are never logged: URLs are logged without their query string.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import httpx
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    httpx = lazy_import("httpx")


from liebian.errors import BadGateway, DomainError

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO; WeCom puts the secret and the token in the query string.
_SECRET_QUERY = re.compile(r"((?:access_token|corpsecret)=)[^&\s\"']+")


class RedactWecomSecrets(logging.Filter):
    """Masks `corpsecret=` and `access_token=` in records of the httpx logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if "access_token=" in message or "corpsecret=" in message:
            record.msg, record.args = _SECRET_QUERY.sub(r"\1***", message), None
        return True


_httpx_log = logging.getLogger("httpx")
if not any(isinstance(f, RedactWecomSecrets) for f in _httpx_log.filters):
    _httpx_log.addFilter(RedactWecomSecrets())

TOKEN_ERRORS = {40014, 41001, 42001}
RETRY_ERRORS = {45009, -1}

# errcode → what it means for an operator (WeCom's global error codes, 全局错误码).
ERROR_MESSAGES = {
    -1: "WeCom is busy (系统繁忙); retried and still failing, try again later",
    40001: "the secret is wrong (不合法的secret参数): check LIEBIAN_WECOM_SECRET (use the 客户联系 secret)",
    40013: "the corp id is wrong (不合法的CorpID): check LIEBIAN_WECOM_CORP_ID",
    40014: "the access token is invalid (不合法的access_token)",
    40058: "a parameter is invalid (不合法的参数), e.g. state longer than 30 characters or an empty user list",
    40096: "the external_userid is invalid (不合法的外部联系人userid)",
    41001: "the access token is missing",
    42001: "the access token expired",
    45009: "WeCom's API frequency limit was reached (接口调用超过限制); retried with backoff and still limited",
    48002: "the API is not authorised for this app (API禁止调用): enable 客户联系 API access for the secret",
    60011: "the app may not see this member or department (无权限操作指定的应用/成员): widen the app's visible range",
    60020: "this server's IP is not on the app's trusted IP list (企业可信IP)",
    60111: "a staff userid does not exist (UserID不存在)",
    84061: "this person is not an external contact of the staff member (不存在外部联系人的关系)",
    41054: "the staff member is not activated in WeCom (该用户尚未激活)",
}


class WecomApiError(BadGateway):
    def __init__(self, api: str, errcode: int, errmsg: str):
        self.api, self.errcode, self.errmsg = api, errcode, errmsg
        reason = ERROR_MESSAGES.get(errcode, "see WeCom's global error codes (全局错误码)")
        message = f"WeCom {api} failed with errcode {errcode}: {reason} (errmsg: {errmsg})"
        # the code names WeCom's errcode; the Chinese message is the catalogue's "wecom_api" one
        zh = DomainError("wecom_api", message).message_zh
        super().__init__(f"wecom_{errcode}", message, message_zh=zh, errors=[])


class WecomClient:
    def __init__(
        self,
        corp_id: str,
        secret: str,
        base_url: str = "https://qyapi.weixin.qq.com",
        *,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ):
        if not corp_id or not secret:
            raise ValueError(
                "WeCom corp id and secret are required (LIEBIAN_WECOM_CORP_ID, LIEBIAN_WECOM_SECRET)"
            )
        self.corp_id = corp_id
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.max_retries, self.backoff, self._sleep = max_retries, backoff, sleep
        self._http = http or httpx.Client(timeout=timeout)
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = threading.Lock()
        self.token_fetches = 0  # how often gettoken was called (observability)

    def __repr__(self) -> str:
        return f"WecomClient(corp_id={self.corp_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    # -------------------------------------------------------------- transport

    def _get_json(self, method: str, path: str, *, params: dict, json: Any = None) -> dict:
        url = f"{self.base_url}/cgi-bin/{path}"
        try:
            response = self._http.request(method, url, params=params, json=json)
        except httpx.HTTPError as exc:
            # str(exc) may contain the URL with the token or secret: name the API only.
            raise WecomApiError(path, -2, f"network error ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise WecomApiError(path, -3, f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise WecomApiError(path, -4, "the answer is not JSON") from None

    def _with_backoff(self, path: str, fn: Callable[[], dict]) -> dict:
        attempt = 0
        while True:
            body = fn()
            code = int(body.get("errcode", 0) or 0)
            if code in RETRY_ERRORS and attempt < self.max_retries:
                delay = self.backoff * (2**attempt)
                log.warning("WeCom %s answered %s; retrying in %.2f s", path, code, delay)
                self._sleep(delay)
                attempt += 1
                continue
            return body

    def access_token(self, *, force: bool = False) -> str:
        with self._lock:
            if not force and self._token and time.monotonic() < self._token_expires:
                return self._token
            body = self._with_backoff(
                "gettoken",
                lambda: self._get_json(
                    "GET", "gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret}
                ),
            )
            code = int(body.get("errcode", 0) or 0)
            if code or not body.get("access_token"):
                raise WecomApiError("gettoken", code or -4, str(body.get("errmsg", "no access_token")))
            self.token_fetches += 1
            self._token = body["access_token"]
            # refresh 5 minutes early (WeCom's tokens live 7200 s; other callers may refresh too)
            self._token_expires = time.monotonic() + max(60, int(body.get("expires_in", 7200)) - 300)
            return self._token

    def call(self, path: str, payload: dict | None = None, *, method: str = "POST", params=None) -> dict:
        """Call an API with the cached token; refresh it on 40014/41001/42001, back off on 45009."""
        refreshed = False
        while True:
            token = self.access_token()
            body = self._with_backoff(
                path,
                functools.partial(
                    self._get_json,
                    method,
                    path,
                    params={"access_token": token, **(params or {})},
                    json=payload,
                ),
            )
            code = int(body.get("errcode", 0) or 0)
            if code in TOKEN_ERRORS and not refreshed:
                log.info("WeCom %s: access token rejected (%s), refreshing", path, code)
                with self._lock:
                    if self._token == token:
                        self._token = None
                refreshed = True
                continue
            if code:
                raise WecomApiError(path, code, str(body.get("errmsg", "")))
            return body

    # -------------------------------------------------------------- 联系我 (contact ways)

    def add_contact_way(
        self,
        *,
        state: str,
        users: list[str],
        type_: int | None = None,
        scene: int = 2,
        remark: str = "",
        skip_verify: bool = True,
        style: int | None = None,
    ) -> dict:
        """Create a 联系我 code; returns {config_id, qr_code}. scene 2 = QR code, 1 = mini-program button."""
        check_state(state)
        if not users:
            raise ValueError("at least one staff userid is needed for a contact way")
        payload: dict[str, Any] = {
            "type": type_ or (1 if len(users) == 1 else 2),  # 1 single member, 2 several
            "scene": scene,
            "remark": remark[:30],
            "skip_verify": skip_verify,
            "state": state,
            "user": users,
        }
        if style is not None:
            payload["style"] = style
        body = self.call("externalcontact/add_contact_way", payload)
        return {"config_id": body.get("config_id"), "qr_code": body.get("qr_code")}

    def update_contact_way(
        self,
        config_id: str,
        *,
        state: str | None = None,
        users: list[str] | None = None,
        remark: str | None = None,
        skip_verify: bool | None = None,
    ) -> None:
        payload: dict[str, Any] = {"config_id": config_id}
        if state is not None:
            check_state(state)
            payload["state"] = state
        if users is not None:
            payload["user"] = users
        if remark is not None:
            payload["remark"] = remark[:30]
        if skip_verify is not None:
            payload["skip_verify"] = skip_verify
        self.call("externalcontact/update_contact_way", payload)

    def del_contact_way(self, config_id: str) -> None:
        self.call("externalcontact/del_contact_way", {"config_id": config_id})

    def get_external_contact(self, external_userid: str) -> dict:
        """The customer's details: `external_contact` (with `unionid` when the corp bound an open
        platform account) and `follow_user`."""
        return self.call("externalcontact/get", method="GET", params={"external_userid": external_userid})


STATE_MAX = 30


def check_state(state: str) -> str:
    if not state or len(state) > STATE_MAX:
        raise ValueError(f"state must be 1–{STATE_MAX} characters (WeCom's limit), got {len(state or '')}")
    return state

"""Participant tokens: what a front end holds to read one person's own data with the public key.

The public front-end key is shared by every visitor of a brand's page, so it cannot tell people
apart. The invite and accept answers therefore carry a `participant_token`, bound to the person
they resolved and expiring after `Settings.participant_token_ttl_seconds`; `GET /api/v1/my/…` and
`GET /api/v1/campaigns/{id}/progress` called with the public key need it (header
`X-Participant-Token`) and answer for that person only. Operators' keys and console sessions are
not asked for one: they may read any person under their role.

Form: `v1.<person_id>.<expires, unix seconds>.<signature>`, the signature an HMAC-SHA256 (first
128 bits, base64url) under a key derived from the installation's identifier-HMAC key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from fastapi import Request

from liebian.auth.deps import principal_of
from liebian.config import get_settings
from liebian.privacy.crypto import keys
from liebian.privacy.service import PrivacyError

HEADER = "X-Participant-Token"
_PURPOSE = b"liebian/participant-token/v1"


def _signature(body: str) -> str:
    key = hmac.new(keys().hmac_key, _PURPOSE, hashlib.sha256).digest()
    mac = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def issue(person_id: int, now: float | None = None) -> str:
    """A token for `person_id`, valid for the configured TTL from `now`."""
    expires = int((now if now is not None else time.time()) + get_settings().participant_token_ttl_seconds)
    body = f"v1.{int(person_id)}.{expires}"
    return f"{body}.{_signature(body)}"


def verify(token: str | None, now: float | None = None) -> int:
    """The person the token was issued to; PrivacyError 401 `participant_token` when it is missing,
    malformed, forged or expired (one answer for all four: it tells a prober nothing)."""
    refused = PrivacyError(
        "participant_token",
        f"send the participant token from the invite or accept answer in the {HEADER} header",
        401,
    )
    parts = (token or "").split(".")
    if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit() or not parts[2].isdigit():
        raise refused
    body = ".".join(parts[:3])
    if not hmac.compare_digest(parts[3], _signature(body)):
        raise refused
    if int(parts[2]) < (now if now is not None else time.time()):
        raise refused
    return int(parts[1])


def issue_for(request: Request, id_type: str, person_id: int) -> str | None:
    """The token an invite or accept answer carries. With the public key only for the identifier
    types of `Settings.participant_token_id_types` (opaque channel ids a visitor cannot guess, such
    as a unionid): anyone can type someone else's phone number, so a phone alone earns no token
    from the public key. Operators' and service keys (the brand's server, which verified the
    identifier) get one for any type."""
    guessable = id_type.strip().lower() not in get_settings().participant_token_id_types
    if guessable and principal_of(request).kind == "public":
        return None
    return issue(person_id)


def caller_person(request: Request) -> int | None:
    """The person a public-key request acts for (from its token); None for operators, who name
    the person themselves."""
    if principal_of(request).kind != "public":
        return None
    return verify(request.headers.get(HEADER))

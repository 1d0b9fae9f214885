"""Keys and primitives for personal data: HMAC for joining, AES-256-GCM for reveal, masks for display.

Keys come from LIEBIAN_HMAC_KEY / LIEBIAN_ENCRYPTION_KEY (hex) or, by default, from a key file
created on first use in the data directory with owner-only permissions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from liebian.config import get_settings


@dataclass(frozen=True)
class Keys:
    hmac_key: bytes
    encryption_key: bytes


@lru_cache(maxsize=4)
def _keys_for(data_dir: str, hmac_hex: str | None, enc_hex: str | None) -> Keys:
    if hmac_hex and enc_hex:
        return Keys(bytes.fromhex(hmac_hex), bytes.fromhex(enc_hex))
    path = os.path.join(data_dir, "keys.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            stored = json.load(fh)
    else:
        os.makedirs(data_dir, exist_ok=True)
        stored = {"hmac_key": os.urandom(32).hex(), "encryption_key": os.urandom(32).hex()}
        # Write a private temp file, then link it into place: the key file appears complete or not
        # at all, and when two threads/processes race the loser reads the winner's keys.
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(stored, fh)
        try:
            os.link(tmp, path)
        except FileExistsError:
            with open(path, encoding="utf-8") as fh:
                stored = json.load(fh)
        finally:
            os.unlink(tmp)
    return Keys(
        bytes.fromhex(hmac_hex or stored["hmac_key"]),
        bytes.fromhex(enc_hex or stored["encryption_key"]),
    )


def keys() -> Keys:
    s = get_settings()
    # abspath, not resolve(): this runs for every HMAC and resolve() walks the file system each time
    return _keys_for(os.path.abspath(s.data_dir), s.hmac_key, s.encryption_key)


PHONE_DIGITS = re.compile(r"\D")


def normalize_phone(raw: str) -> str:
    """Mainland numbers as 11 digits: strip spaces, dashes and a +86/0086 prefix."""
    digits = PHONE_DIGITS.sub("", raw)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    return digits


def identifier_hmac(value: str) -> str:
    """Keyed hash used wherever a direct identifier must be joined but never read."""
    return hmac.new(keys().hmac_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def encrypt(plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(keys().encryption_key).encrypt(nonce, plaintext.encode("utf-8"), None)
    return base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(token: str) -> str:
    raw = base64.b64decode(token)
    return AESGCM(keys().encryption_key).decrypt(raw[:12], raw[12:], None).decode("utf-8")


def mask_phone(phone: str) -> str:
    """138****1234 — the form shown everywhere outside an authorised reveal."""
    if len(phone) >= 7:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * len(phone)


def mask_identifier(value: str) -> str:
    if len(value) <= 6:
        return value[:1] + "*" * (len(value) - 1)
    return value[:3] + "…" + value[-3:]

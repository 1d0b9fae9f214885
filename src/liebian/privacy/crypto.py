"""Keys and primitives for personal data: HMAC for joining, AES-256-GCM for reveal, masks for display.

Keys come from LIEBIAN_HMAC_KEY / LIEBIAN_ENCRYPTION_KEY (hex) or, by default, from a key file
created on first use in the data directory with owner-only permissions.

Encryption keys are versioned so they can be rotated: every ciphertext starts with the id of the
key that sealed it (`k2:<base64>`); ciphertexts without a prefix are from before versioning and
belong to key "1". `LIEBIAN_ENCRYPTION_KEY` takes one hex key (key "1") or a list `2:<hex>,1:<hex>`
whose first entry is the active key. With the key file, `rotate_encryption_key()` adds a key and
makes it active; `reencrypt_all()` (privacy.retention) re-seals old ciphertexts under it. Old keys stay
readable until no ciphertext needs them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from liebian.config import get_settings
from liebian.errors import Unavailable
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import cryptography.hazmat.primitives.ciphers.aead as aead
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    aead = lazy_import("cryptography.hazmat.primitives.ciphers.aead")

LEGACY_KID = "1"
_KID_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")


@dataclass(frozen=True)
class Keys:
    hmac_key: bytes
    encryption_key: bytes  # the active AES-256 key
    active_kid: str = LEGACY_KID
    encryption_keys: dict[str, bytes] = field(default_factory=dict)  # every readable key by id


class KeyError_(Unavailable, ValueError):
    """A key is missing or malformed (the message says which): the server cannot serve this now."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)


def _key_file(data_dir: str) -> str:
    return os.path.join(data_dir, "keys.json")


def _write_private(path: str, stored: dict, replace: bool) -> dict:
    """Write the key file with owner-only permissions, atomically. Without `replace`, the first
    writer wins and a racing loser reads the winner's keys."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(stored, fh)
    if replace:
        os.replace(tmp, path)
        return stored
    try:
        os.link(tmp, path)
    except FileExistsError:
        with open(path, encoding="utf-8") as fh:
            stored = json.load(fh)
    finally:
        os.unlink(tmp)
    return stored


def _read_key_file(data_dir: str) -> dict:
    path = _key_file(data_dir)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    os.makedirs(data_dir, exist_ok=True)
    fresh = {"hmac_key": os.urandom(32).hex(), "encryption_key": os.urandom(32).hex()}
    return _write_private(path, fresh, replace=False)


def _aes_key(hex_value: str, name: str) -> bytes:
    try:
        raw = bytes.fromhex(hex_value.strip())
    except ValueError as exc:
        raise KeyError_(f"{name}: not hexadecimal") from exc
    if len(raw) != 32:
        raise KeyError_(f"{name}: an AES-256 key has 32 bytes (64 hex digits), got {len(raw)}")
    return raw


def parse_encryption_env(value: str) -> tuple[str, dict[str, bytes]]:
    """`<hex>` (key "1") or `kid:<hex>,kid:<hex>,…` (the first one is active)."""
    if ":" not in value:
        return LEGACY_KID, {LEGACY_KID: _aes_key(value, "LIEBIAN_ENCRYPTION_KEY")}
    found: dict[str, bytes] = {}
    for part in value.split(","):
        kid, _, hex_value = part.strip().partition(":")
        if not _KID_RE.match(kid):
            raise KeyError_(f"LIEBIAN_ENCRYPTION_KEY: bad key id {kid!r} (letters and digits, ≤16)")
        found[kid] = _aes_key(hex_value, f"LIEBIAN_ENCRYPTION_KEY key {kid}")
    return next(iter(found)), found  # the first key id given (dicts keep insertion order)


def _listed(stored: dict) -> dict[str, str]:
    # "encryption_keys" appears with the first rotation; before it the one key is key "1"
    return dict(stored.get("encryption_keys") or {LEGACY_KID: stored["encryption_key"]})


@lru_cache(maxsize=4)
def _keys_for(data_dir: str, hmac_hex: str | None, enc_hex: str | None) -> Keys:
    stored = {} if (hmac_hex and enc_hex) else _read_key_file(data_dir)
    if enc_hex:
        active, enc_keys = parse_encryption_env(enc_hex)
    else:
        enc_keys = {kid: _aes_key(h, f"keys.json key {kid}") for kid, h in _listed(stored).items()}
        active = stored.get("active_encryption_key", LEGACY_KID)
    return Keys(
        hmac_key=bytes.fromhex(hmac_hex or stored["hmac_key"]),
        encryption_key=enc_keys[active],
        active_kid=active,
        encryption_keys=enc_keys,
    )


def keys() -> Keys:
    s = get_settings()
    # abspath, not resolve(): this runs for every HMAC and resolve() walks the file system each time
    return _keys_for(os.path.abspath(s.data_dir), s.hmac_key, s.encryption_key)


def rotate_encryption_key() -> str:
    """Add a new AES-256 key to the key file and make it the active one; returns its id.

    New ciphertexts use it at once; run `reencrypt_all` (privacy.retention) to re-seal the old ones.
    With keys given by LIEBIAN_ENCRYPTION_KEY, rotate by listing the new key first instead.
    """
    s = get_settings()
    if s.encryption_key:
        raise KeyError_(
            "the encryption key comes from LIEBIAN_ENCRYPTION_KEY: rotate by setting it to "
            "'<new id>:<new hex>,<old id>:<old hex>' and restarting, then run the re-encryption job"
        )
    data_dir = os.path.abspath(s.data_dir)
    stored = _read_key_file(data_dir)
    enc = _listed(stored)
    new_kid = str(max(int(k) for k in enc if k.isdigit()) + 1)
    enc[new_kid] = os.urandom(32).hex()
    stored["encryption_keys"] = enc
    stored["active_encryption_key"] = new_kid
    _write_private(_key_file(data_dir), stored, replace=True)
    _keys_for.cache_clear()
    return new_kid


def retire_encryption_key(kid: str) -> None:
    """Remove an old key from the key file (after re-encryption left no ciphertext under it)."""
    s = get_settings()
    data_dir = os.path.abspath(s.data_dir)
    stored = _read_key_file(data_dir)
    if kid == stored.get("active_encryption_key", LEGACY_KID):
        raise KeyError_(f"key {kid} is the active key and cannot be retired")
    enc = _listed(stored)
    enc.pop(kid, None)
    stored["encryption_keys"] = enc
    _write_private(_key_file(data_dir), stored, replace=True)
    _keys_for.cache_clear()


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
    """AES-256-GCM under the active key: `k<id>:` + base64(nonce ‖ ciphertext ‖ tag)."""
    k = keys()
    nonce = os.urandom(12)
    sealed = aead.AESGCM(k.encryption_key).encrypt(nonce, plaintext.encode("utf-8"), None)
    return f"k{k.active_kid}:" + base64.b64encode(nonce + sealed).decode("ascii")


def key_id_of(token: str) -> str:
    """The id of the key that sealed a ciphertext ("1" for ciphertexts from before versioning)."""
    # base64 has no ':', so a legacy ciphertext never looks like a prefixed one
    if token.startswith("k") and ":" in token:
        return token[1 : token.index(":")]
    return LEGACY_KID


def decrypt(token: str) -> str:
    kid = key_id_of(token)
    body = token[token.index(":") + 1 :] if ":" in token else token
    key = keys().encryption_keys.get(kid)
    if key is None:
        raise KeyError_(f"ciphertext sealed with key {kid}, which is not configured")
    raw = base64.b64decode(body)
    return aead.AESGCM(key).decrypt(raw[:12], raw[12:], None).decode("utf-8")


def mask_phone(phone: str) -> str:
    """138****1234 — the form shown everywhere outside an authorised reveal."""
    if len(phone) >= 7:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * len(phone)


def mask_identifier(value: str) -> str:
    if len(value) <= 6:
        return value[:1] + "*" * (len(value) - 1)
    return value[:3] + "…" + value[-3:]


def mask_email(value: str) -> str:
    """a***@example.com"""
    local, _, domain = value.partition("@")
    return (local[:1] + "***@" + domain) if domain else mask_identifier(value)


def mask_id_card(value: str) -> str:
    """110***********1234 — Chinese resident ID numbers keep the region prefix and last four."""
    return value[:3] + "*" * max(len(value) - 7, 0) + value[-4:]

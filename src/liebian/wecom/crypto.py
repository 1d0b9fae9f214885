"""WeCom's callback message crypto (企业微信回调加解密), as documented with its sample code.

msg_signature = SHA1 of the lexically sorted [token, timestamp, nonce, encrypt], hex.
AES-256-CBC, key = base64decode(EncodingAESKey + "="), IV = key[:16], PKCS#7 padding to a block of
32 bytes (not AES's 16 — WeCom's choice, kept for compatibility), plaintext = 16 random bytes +
4-byte big-endian length + msg + receiveid (the corp id for a self-built app's callbacks).

Every failure raises `CryptoError` with a stable `code`; nothing here logs a key or a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import cryptography.hazmat.primitives.ciphers as ciphers
    import cryptography.hazmat.primitives.ciphers.algorithms as algorithms
    import cryptography.hazmat.primitives.ciphers.modes as modes
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ciphers = lazy_import("cryptography.hazmat.primitives.ciphers")
    algorithms = lazy_import("cryptography.hazmat.primitives.ciphers.algorithms")
    modes = lazy_import("cryptography.hazmat.primitives.ciphers.modes")


from liebian.errors import DomainError

BLOCK = 32


class CryptoError(DomainError, ValueError):
    """A callback that fails a check: `code` is stable (for logs and metrics), the message says why."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message)


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    if len(encoding_aes_key or "") != 43:
        raise CryptoError("bad_aes_key", "EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise CryptoError("bad_aes_key", "EncodingAESKey is not base64") from None
    if len(key) != 32:
        raise CryptoError("bad_aes_key", "EncodingAESKey does not decode to 32 bytes")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    parts = sorted([token, str(timestamp), str(nonce), encrypt])
    return hashlib.sha1("".join(parts).encode()).hexdigest()


class MsgCrypt:
    """One app's token, key and receive id (corp id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str):
        if not token:
            raise CryptoError("bad_token", "the callback token is empty")
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def __repr__(self) -> str:  # never show secrets in tracebacks or logs
        return f"MsgCrypt(receive_id={self.receive_id!r})"

    # -------------------------------------------------------------- signatures

    def verify_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, (msg_signature or "").lower()):
            raise CryptoError(
                "bad_signature", "msg_signature does not match token, timestamp, nonce and ciphertext"
            )

    # -------------------------------------------------------------- AES

    def _cipher(self) -> ciphers.Cipher:
        return ciphers.Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, msg: str, *, random_prefix: bytes | None = None) -> str:
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        body = msg.encode()
        plain = prefix + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        enc = self._cipher().encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def decrypt(self, encrypt: str) -> str:
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("bad_ciphertext", "the ciphertext is not base64") from None
        if not raw or len(raw) % 16:
            raise CryptoError("bad_ciphertext", "the ciphertext is not a whole number of AES blocks")
        dec = self._cipher().decryptor()
        plain = dec.update(raw) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad_padding", "the decrypted message has invalid PKCS#7 padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CryptoError("bad_ciphertext", "the decrypted message is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise CryptoError("bad_length", "the message length field exceeds the decrypted data")
        msg, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if receive_id.decode("utf-8", "replace") != self.receive_id:
            raise CryptoError("bad_receive_id", "the message was encrypted for another corp id (receiveid)")
        try:
            return msg.decode()
        except UnicodeDecodeError:
            raise CryptoError("bad_ciphertext", "the decrypted message is not UTF-8") from None

    # -------------------------------------------------------------- the two callback shapes

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The URL-verification GET: check the signature and return the decrypted echostr."""
        self.verify_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_msg(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """A POSTed event: check the signature over the <Encrypt> text and return the plaintext XML."""
        self.verify_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt_msg(self, msg: str, timestamp: str, nonce: str) -> str:
        """The encrypted XML envelope (what WeCom sends, and what a passive reply looks like)."""
        encrypt = self.encrypt(msg)
        sig = signature(self.token, timestamp, nonce, encrypt)
        return (
            f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )

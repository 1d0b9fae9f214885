"""The one registry of sealed fields: every place in the operational store that holds an AES-GCM
ciphertext of privacy.crypto. Key rotation (`retention.reencrypt_all`) and the key-usage count
(`retention.key_usage`) walk it, so a key is reported unused only when nothing needs it.

A field is either a whole column (the value is one ciphertext, "" or NULL for none) or a JSON
column in which every string starting with `json_prefix` is a ciphertext after that prefix (journey
definitions keep their webhook secrets so). Tables are named, not imported: privacy imports no
domain for this. tests/privacy/test_privacy_defaults_sealed.py fails when a model column holds a
ciphertext that is not declared here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SealedField:
    table: str
    pk: str
    column: str
    json_prefix: str | None = None  # a JSON column: ciphertexts are the strings with this prefix
    what: str = ""


SEALED_FIELDS: tuple[SealedField, ...] = (
    SealedField("identifiers", "id", "encrypted_value", what="phone numbers, payment accounts (reveal)"),
    SealedField("webhook_endpoints", "id", "secret_encrypted", what="reward webhook signing secrets"),
    SealedField("report_subscriptions", "id", "secret_encrypted", what="report webhook signing secrets"),
    SealedField("monitor_channels", "id", "target_encrypted", what="alert channel URLs (robot keys)"),
    SealedField("monitor_channels", "id", "secret_encrypted", what="alert channel signing secrets"),
    SealedField("campaign_order_shops", "shop_id", "secret_sealed", what="shops' order-callback secrets"),
    SealedField(
        "campaign_orders", "id", "pending_detail", what="a pending conversion's context, until judged"
    ),
    SealedField(
        "journeys", "id", "definition", json_prefix="sealed:", what="journey webhook signing secrets"
    ),
)


def _walk(node: Any, fn: Callable[[str], str | None], prefix: str) -> Any:
    """A copy of a JSON value with every prefixed string replaced by prefix + fn(rest), where fn
    returns a new ciphertext (None keeps the string)."""
    if isinstance(node, dict):
        return {k: _walk(v, fn, prefix) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, fn, prefix) for v in node]
    if isinstance(node, str) and node.startswith(prefix):
        new = fn(node[len(prefix) :])
        return node if new is None else prefix + new
    return node


def ciphertexts(field: SealedField, value: str | None) -> Iterator[str]:
    """The ciphertexts a stored value of `field` holds."""
    if not value:  # NULL or "" marks "none"
        return
    if field.json_prefix is None:
        yield value
        return
    found: list[str] = []

    def collect(token: str) -> None:  # replaces nothing
        found.append(token)

    _walk(json.loads(value), collect, field.json_prefix)
    yield from found


def reseal(field: SealedField, value: str, fn: Callable[[str], str | None]) -> str:
    """The stored value with each ciphertext replaced by fn(ciphertext) (None keeps it)."""
    if field.json_prefix is None:
        new = fn(value)
        return value if new is None else new
    return json.dumps(_walk(json.loads(value), fn, field.json_prefix))

"""The reward ledger's hash chain: the canonical form of an entry, its HMAC and the reward seal.

entry.hash = HMAC-SHA256(chain key, canonical JSON of the entry including prev_hash). The chain key
is derived from the data directory's HMAC key (LIEBIAN_HMAC_KEY or keys.json), which does not live
in the database. Versions of the canonical form (the entry's `v`):

- v1: the entry's own fields (seq, reward, kind, states, amount, campaign, person, actor, note, ts,
  idempotency key, prev_hash).
- v2: v1 and `reward_after`, the reward row as it stands after the entry (`seal`: every column of
  `rewards` but the id). An edit of any column of the rewards table is then named by verify.

An entry keeps the version it was written in: old chains verify unchanged and are never re-sealed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import RowMapping

from liebian.privacy.crypto import keys

# The canonical form new entries are written in (see `canonical`).
ENTRY_VERSION = 2
# The columns of `rewards` a v2 entry seals (all but the id, which the entry names): whatever
# decides a reward's money or its path. tests/rewards check that no column is left out.
SEALED_FIELDS = (
    "campaign_id",
    "person_id",
    "reward_code",
    "value_fen",
    "state",
    "reason",
    "source_ref",
    "hold_until",
    "held_for_review",
    "idempotency_key",
    "created_at",
    "updated_at",
)
KNOWN_VERSIONS = frozenset({1, 2})


@lru_cache(maxsize=4)
def _derive_chain_key(hmac_key: bytes) -> bytes:
    # Domain separation: the identifier-HMAC key is never used directly for the chain.
    return hmac.new(hmac_key, b"liebian/ledger-chain/v1", hashlib.sha256).digest()


def chain_key() -> bytes:
    return _derive_chain_key(keys().hmac_key)


def _plain(value: Any) -> Any:
    """A column value as the seal and verify compare it (JSON-ready, the same on SQLite and PostgreSQL)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return value


def seal(reward: Mapping[str, Any] | RowMapping) -> str:
    """The reward row as canonical JSON: what a v2 entry stores in `reward_after` and its hash covers."""
    body = {name: _plain(reward[name]) for name in SEALED_FIELDS}
    body["held_for_review"] = bool(body["held_for_review"])
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(entry: Mapping[str, Any] | RowMapping) -> bytes:
    """The bytes the hash covers: every field of the entry but the hash, as sorted compact JSON.

    v1 (entries written before the reward seal): the entry's own fields. v2 adds `v` and
    `reward_after` (the sealed reward row); an edit of either changes the bytes."""
    ts = entry["ts"]
    version = entry.get("v", 1)
    body = {
        "seq": int(entry["seq"]),
        "reward_id": int(entry["reward_id"]),
        "kind": entry["kind"],
        "from_state": entry["from_state"],
        "to_state": entry["to_state"],
        "amount_fen": int(entry["amount_fen"]),
        "campaign_id": entry["campaign_id"],
        "person_id": int(entry["person_id"]),
        "actor": entry["actor"],
        "note": entry["note"],
        "ts": ts.isoformat(timespec="microseconds") if isinstance(ts, datetime) else str(ts),
        "idempotency_key": entry["idempotency_key"],
        "prev_hash": entry["prev_hash"],
    }
    if version >= 2:
        body["v"] = version
        body["reward_after"] = entry["reward_after"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: Mapping[str, Any] | RowMapping, key: bytes | None = None) -> str:
    return hmac.new(key or chain_key(), canonical(entry), hashlib.sha256).hexdigest()

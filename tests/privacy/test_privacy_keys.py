"""AES-256-GCM key rotation: versioned ciphertexts, re-encryption job, retiring the old key."""

from __future__ import annotations

import base64
import json
import os

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.identity.models import Identifier
from liebian.privacy import crypto, retention


def test_rotation_reencrypts_everything_and_old_key_can_be_retired(sqlite_store, data_dir):
    phones = [f"1380013{i:04d}" for i in range(30)]
    with session_scope() as s:
        identity.resolve(s, [identity.RawIdentifier("phone", p) for p in phones], source="test")
    # a ciphertext from before versioning (no prefix) still reads as key 1
    legacy = base64.b64encode(os.urandom(12)).decode()
    assert crypto.key_id_of(legacy) == "1"
    with session_scope() as s:
        tokens = s.scalars(select(Identifier.encrypted_value)).all()
        assert {crypto.key_id_of(t) for t in tokens} == {"1"} and all(t.startswith("k1:") for t in tokens)
        assert retention.key_usage(s) == {"1": 30}

    new_kid = crypto.rotate_encryption_key()
    assert new_kid == "2"
    stored = json.loads((data_dir / "keys.json").read_text())
    assert stored["active_encryption_key"] == "2" and set(stored["encryption_keys"]) == {"1", "2"}
    assert oct((data_dir / "keys.json").stat().st_mode)[-3:] == "600"
    assert crypto.encrypt("x").startswith("k2:")
    # old ciphertexts stay readable until re-encrypted
    with session_scope() as s:
        assert sorted(crypto.decrypt(t) for t in s.scalars(select(Identifier.encrypted_value))) == phones

    with session_scope() as s:
        assert retention.reencrypt_all(s)["identifiers"] == 30
    with session_scope() as s:
        assert retention.key_usage(s) == {"2": 30}
        assert retention.reencrypt_all(s)["identifiers"] == 0  # idempotent
    crypto.retire_encryption_key("1")
    with session_scope() as s:
        assert sorted(crypto.decrypt(t) for t in s.scalars(select(Identifier.encrypted_value))) == phones
    with pytest.raises(crypto.KeyError_, match="not configured"):
        crypto.decrypt("k1:" + legacy)
    with pytest.raises(crypto.KeyError_, match="active key"):
        crypto.retire_encryption_key("2")
    # HMACs (the join keys) did not change: the phones still find their persons
    with session_scope() as s:
        assert identity.find_person(s, "phone", phones[0]) is not None


def test_env_keys_with_ids(data_dir, monkeypatch):
    old, new = os.urandom(32).hex(), os.urandom(32).hex()
    monkeypatch.setenv("LIEBIAN_HMAC_KEY", os.urandom(32).hex())
    monkeypatch.setenv("LIEBIAN_ENCRYPTION_KEY", old)
    from liebian.config import reset_settings_cache

    reset_settings_cache()
    token = crypto.encrypt("13800138000")
    assert token.startswith("k1:")
    monkeypatch.setenv("LIEBIAN_ENCRYPTION_KEY", f"7:{new},1:{old}")
    reset_settings_cache()
    assert crypto.decrypt(token) == "13800138000"
    assert crypto.encrypt("y").startswith("k7:")
    with pytest.raises(crypto.KeyError_, match="LIEBIAN_ENCRYPTION_KEY"):
        crypto.rotate_encryption_key()
    monkeypatch.setenv("LIEBIAN_ENCRYPTION_KEY", "abcd")
    reset_settings_cache()
    with pytest.raises(crypto.KeyError_, match="32 bytes"):
        crypto.encrypt("z")
    assert not (data_dir / "keys.json").exists()  # keys from the environment never touch the disk


def test_rotation_from_the_cli(sqlite_store):
    from liebian.cli import app

    with session_scope() as s:
        identity.resolve(s, [identity.RawIdentifier("phone", "13900139000")], source="t")
    runner = CliRunner()
    r = runner.invoke(app, ["privacy", "rotate-key"])
    assert r.exit_code == 0 and "key 2 is active" in r.output
    r = runner.invoke(app, ["privacy", "reencrypt"])
    assert r.exit_code == 0 and "{'2': 1}" in r.output


def test_rotation_also_reseals_notification_secrets(sqlite_store, data_dir):
    """Alert channels keep working after the old key is retired (their URL and secret are sealed)."""
    from liebian.monitor import notifications as monitor_notifications
    from liebian.monitor.models import NotifyChannel

    with session_scope() as s:
        monitor_notifications.add_channel(
            s, "ops", "webhook", "https://hooks.example.com/hook", "s3cret", actor="admin"
        )
        monitor_notifications.add_channel(
            s, "robot", "wecom", "https://hooks.example.com/robot", actor="admin"
        )  # no secret
    crypto.rotate_encryption_key()
    with session_scope() as s:
        counts = retention.reencrypt_all(s)
    assert counts["monitor_channels"] == 2 + 1  # two targets and one secret; "" means none
    crypto.retire_encryption_key("1")
    with session_scope() as s:
        channels = {c.name: c for c in s.scalars(select(NotifyChannel))}
        assert crypto.decrypt(channels["ops"].target_encrypted) == "https://hooks.example.com/hook"
        assert crypto.decrypt(channels["ops"].secret_encrypted) == "s3cret"
        assert channels["robot"].secret_encrypted == ""

"""Fixtures of the WeCom tests: the sample app's settings and a local WeCom API (see wecom_helpers)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from wecom_helpers import SAMPLE_AES_KEY, SAMPLE_CORP_ID, SAMPLE_TOKEN, SECRET, FakeWecom

from liebian.config import reset_settings_cache
from liebian.web.app import create_app


@pytest.fixture
def fake_wecom(data_dir, monkeypatch):
    with FakeWecom() as fake:
        monkeypatch.setenv("LIEBIAN_WECOM_CORP_ID", SAMPLE_CORP_ID)
        monkeypatch.setenv("LIEBIAN_WECOM_TOKEN", SAMPLE_TOKEN)
        monkeypatch.setenv("LIEBIAN_WECOM_ENCODING_AES_KEY", SAMPLE_AES_KEY)
        monkeypatch.setenv("LIEBIAN_WECOM_SECRET", SECRET)
        monkeypatch.setenv("LIEBIAN_WECOM_API_BASE", fake.url)
        reset_settings_cache()
        yield fake
    reset_settings_cache()


def _operator_key() -> str:
    from liebian.auth import service as auth
    from liebian.db.session import session_scope

    with session_scope() as s:
        auth.create_user(s, "wecom-operator", "a-long-test-passphrase-42", "operator", actor="test")
        key, _record = auth.create_api_key(
            s, name="wecom tests", actor="test", kind="user", username="wecom-operator"
        )
    return key


@pytest.fixture
def client(store, fake_wecom):
    """The app; operator calls carry an operator's API key, WeCom's callbacks carry none."""
    # raise_server_exceptions=False: a failing callback must answer 500 like the real server does
    with TestClient(create_app(run_migrations=False), raise_server_exceptions=False) as c:
        c.operator = {"Authorization": f"Bearer {_operator_key()}"}
        yield c

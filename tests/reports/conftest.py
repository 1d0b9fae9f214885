"""Fixtures for the report tests: a local SMTP server and a webhook receiver."""

from __future__ import annotations

import pytest
from reports_helpers import Mailbox, Receiver

from liebian.config import reset_settings_cache


@pytest.fixture
def mailbox(monkeypatch):
    box = Mailbox()
    monkeypatch.setenv("LIEBIAN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LIEBIAN_SMTP_PORT", str(box.port))
    reset_settings_cache()
    yield box
    box.close()
    reset_settings_cache()


@pytest.fixture
def report_receiver(allow_private_urls):
    r = Receiver()
    yield r
    r.close()

"""Fixtures for the journey tests: a live webhook receiver."""

from __future__ import annotations

import pytest
from automation_helpers import Receiver


@pytest.fixture
def receiver(allow_private_urls):
    r = Receiver()
    yield r
    r.close()

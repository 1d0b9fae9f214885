"""What the app module needs of the console without importing it (web/console.py imports the
analytics, campaign and tag services: the app's import leaves them to the routers that use them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC_DIR = Path(__file__).with_name("static")  # the console's CSS/JS and the vendored libraries

# How often the console's default views were computed ahead of visitors (web/console.py warm_once
# updates it; /api/v1/health shows it).
WARM_STATUS: dict[str, Any] = {"runs": 0, "seconds": None}

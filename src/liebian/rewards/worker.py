"""The server's background thread: release rewards whose hold is over, deliver due webhooks.

Start it from the app lifespan (`start_background_worker()` after migrations, `stop_background_worker()`
on shutdown). Cron setups run `liebian ledger release` and `liebian ledger deliver` instead; both
paths are safe to run side by side (releases are idempotent, deliveries are leased).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.lazy import lazy_import
from liebian.rewards import service, webhooks

if TYPE_CHECKING:
    import httpx
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    httpx = lazy_import("httpx")

log = logging.getLogger(__name__)

_thread: threading.Thread | None = None
_stop = threading.Event()
_lock = threading.Lock()


def run_once(client: httpx.Client, release: bool = True) -> dict:
    released = 0
    if release:
        with session_scope() as session:
            released = service.release_due(session, utcnow())
    with session_scope() as session:
        attempted = webhooks.deliver_due(session, utcnow(), client)
    return {"released": released, "attempted": attempted}


def _loop(interval: float, release: bool) -> None:
    with httpx.Client(timeout=webhooks.TIMEOUT_S) as client:
        while not _stop.is_set():
            try:
                run_once(client, release)
            except Exception:  # keep the thread alive; the next round retries
                log.exception("reward worker round failed")
            _stop.wait(interval)


def start_background_worker(interval: float = 5.0, release: bool = True) -> bool:
    """Start the thread once per process; returns False if it was already running."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return False
        _stop.clear()
        _thread = threading.Thread(
            target=_loop, args=(interval, release), name="liebian-rewards", daemon=True
        )
        _thread.start()
        return True


def stop_background_worker(timeout: float = 15.0) -> None:
    global _thread
    with _lock:
        _stop.set()
        if _thread is not None:
            _thread.join(timeout)
        _thread = None


def background_worker_running() -> bool:
    return _thread is not None and _thread.is_alive()

"""The background thread that drains an outbox (one per outbox and server process).

Domains queue rows in an outbox table of the operational store inside the request's transaction
(the campaign engine its warehouse events and referral edges, WeCom the events it hands to the
ingest collector); this thread moves them on every `interval` seconds, off the request path, and
once more when the server stops. A failed round is logged and the rows stay queued for the next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class OutboxFlusher:
    """Calls `drain` every `interval` seconds; `drain` moves everything queued, in as many
    transactions as it likes."""

    def __init__(
        self,
        name: str,
        drain: Callable[[], object],
        *,
        interval: float = 1.0,
        on_stop: Callable[[], object] | None = None,
    ):
        self.name = name
        self._on_stop = on_stop
        self.interval = interval
        self._drain = drain
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush_once()

    def flush_once(self) -> None:
        try:
            self._drain()
        except Exception:  # keep serving: what failed stays queued for the next round
            log.exception("%s: draining the outbox failed; the rows stay queued", self.name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush_once()
        if self._on_stop is not None:
            self._on_stop()  # what the drain kept open (the warehouse anchor)

"""The background thread that drains an outbox (one per outbox and server process).

Domains queue rows in an outbox table of the operational store inside the request's transaction
(the campaign engine its warehouse events and referral edges, WeCom the events it hands to the
ingest collector); this thread moves them on every `interval` seconds, off the request path, and
once more when the server stops. A failed round is logged and the rows stay queued for the next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


class OutboxFlusher:
    """Calls `drain` every `interval` seconds; each `(every, chore)` runs after every `every` rounds.

    `drain` moves everything queued (in as many transactions as it likes); chores are small
    periodic duties of the same domain that need no thread of their own."""

    def __init__(
        self,
        name: str,
        drain: Callable[[], object],
        *,
        interval: float = 1.0,
        chores: Sequence[tuple[int, Callable[[], object]]] = (),
    ):
        self.name = name
        self.interval = interval
        self._drain = drain
        self._chores = tuple(chores)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(self.interval):
            self.flush_once()
            rounds += 1
            for every, chore in self._chores:
                if rounds % every == 0:
                    self._safely(chore, "a periodic chore (%s) failed")

    def flush_once(self) -> None:
        # keep serving: what failed stays queued for the next round
        self._safely(self._drain, "draining the outbox (%s) failed; the rows stay queued")

    def _safely(self, fn: Callable[[], object], message: str) -> None:
        try:
            fn()
        except Exception:
            log.exception(message, f"{self.name}: {getattr(fn, '__name__', fn)}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush_once()

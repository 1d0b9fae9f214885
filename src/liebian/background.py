"""Background workers that live as long as the app (routers pass this as their lifespan)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Protocol


class Worker(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def worker_lifespan(make_worker: Callable[[], Worker]):
    """A router lifespan that starts a worker (a flusher thread) at start-up and stops it at shutdown."""

    @asynccontextmanager
    async def lifespan(_app):
        worker = make_worker()
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    return lifespan

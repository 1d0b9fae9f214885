"""Scheduled jobs: plain functions, run by the server's scheduler and by `liebian job NAME` (cron).

A domain declares its jobs as data (`JOBS` in its `jobs.py`); liebian/bootstrap.py wires them, and
this module runs what is wired (`ports.current().jobs`; the scheduler's thread builds the real wiring
when it first runs, so no domain's jobs module is imported before then).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from liebian import ports
from liebian.db.locks import ProcessLock
from liebian.ports import Job

log = logging.getLogger("liebian.jobs")

__all__ = ["Job", "Scheduler", "registry", "run_job"]


def registry() -> dict[str, Job]:
    """The wired jobs by name."""
    return {job.name: job for job in ports.current().jobs}


def run_job(name: str) -> Any:
    """Run one wired job now; KeyError names the known jobs when `name` is not one."""
    return ports.current().job(name).func()


class Scheduler:
    """Runs every registered job at its interval in one daemon thread (the embedded setup).

    Every server process may start one, but only the process holding the `scheduler` lock
    (db/locks.py: an advisory lock on PostgreSQL, a file lock beside SQLite) runs the jobs; the
    others try again every LEAD_RETRY_SECONDS, so when the leader stops another one takes over."""

    LEAD_RETRY_SECONDS = 5.0

    def __init__(self) -> None:
        # the jobs it runs are the wired ones, built when its thread first reads them (start-up time)
        ports.wire_on_first_use()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = ProcessLock("scheduler")
        self.last_run: dict[str, float] = {}
        self.last_error: dict[str, str] = {}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="liebian-scheduler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._lock.release()

    def wait(self, seconds: float | None = None) -> None:
        """Block until `stop` is called (or `seconds` passed)."""
        self._stop.wait(seconds)

    def try_lead(self) -> bool:
        """Whether this process runs the jobs: keeps the lock it has, or takes a free one."""
        if self._lock.held:
            if self._lock.alive():
                return True
            log.warning("process %d lost the scheduler lock (its database connection closed)", os.getpid())
        try:
            taken = self._lock.acquire(blocking=False)
        except Exception:  # noqa: BLE001 - the store is unreachable: try again later
            log.exception("could not try the scheduler lock")
            return False
        if taken:
            log.info("process %d runs the scheduled jobs", os.getpid())
        return taken

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.try_lead():
                self._stop.wait(self.LEAD_RETRY_SECONDS)
                continue
            now = time.monotonic()
            for current in ports.current().jobs:
                if now - self.last_run.get(current.name, float("-inf")) < current.every_seconds:
                    continue
                self.last_run[current.name] = now
                try:
                    current.func()
                    self.last_error.pop(current.name, None)
                except Exception as exc:  # a failing job must not stop the others
                    self.last_error[current.name] = repr(exc)
                    log.exception("job %s failed", current.name)
                if self._stop.is_set():
                    return
            self._stop.wait(1.0)

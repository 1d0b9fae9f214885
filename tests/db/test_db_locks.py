"""One process at a time: the scheduler's election and the start-up lock, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from liebian.db.locks import LockTimeout, ProcessLock
from liebian.jobs import Scheduler

pytestmark = pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)


def test_one_scheduler_leads_and_the_next_takes_over_when_it_stops(store: str) -> None:
    # two schedulers stand for two worker processes: the lock is a file lock or an advisory lock
    # on a connection of its own, so it excludes a second holder in the same process as well
    first, second = Scheduler(), Scheduler()
    try:
        assert first.try_lead()
        assert first.try_lead()  # keeps it
        assert not second.try_lead()
        first.stop()
        assert second.try_lead()
        assert not Scheduler().try_lead()
    finally:
        first.stop()
        second.stop()


def test_a_held_lock_makes_others_wait_and_then_time_out(store: str) -> None:
    with ProcessLock("startup"):
        other = ProcessLock("startup")
        assert not other.acquire(blocking=False)
        with pytest.raises(LockTimeout, match="startup"):
            other.acquire(timeout=0.3)
    assert other.acquire(blocking=False)  # free once the first gave it back
    other.release()


def test_the_scheduler_command_runs_the_jobs_and_gives_the_lock_back(store: str) -> None:
    from typer.testing import CliRunner

    from liebian.cli import app

    out = CliRunner().invoke(app, ["job", "scheduler", "--seconds", "3"])
    assert out.exit_code == 0, out.output
    assert "jobs run:" in out.output and "none" not in out.output.split("jobs run:")[1]
    assert Scheduler().try_lead()  # released at the end

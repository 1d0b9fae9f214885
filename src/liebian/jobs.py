"""Scheduled jobs: plain functions, run by the server's scheduler and by `liebian job NAME` (cron).

A domain registers its jobs with `@job("name", every_seconds=…)` in its `jobs.py`; modules listed
in JOB_MODULES are imported on first use.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

from liebian.output import Format, console, emit

log = logging.getLogger("liebian.jobs")

JOB_MODULES = [
    "liebian.identity.jobs",
    "liebian.rewards.jobs",
    "liebian.campaigns.jobs",
    "liebian.fraud.jobs",
    "liebian.tags.jobs",
    "liebian.monitor.jobs",
    "liebian.reports.jobs",
    "liebian.automation.jobs",
    "liebian.privacy.jobs",
]


@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[[], Any]
    every_seconds: float
    description: str


_REGISTRY: dict[str, Job] = {}
_loaded = False


def job(
    name: str, every_seconds: float, description: str = ""
) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def register(func: Callable[[], Any]) -> Callable[[], Any]:
        _REGISTRY[name] = Job(
            name, func, every_seconds, description or (func.__doc__ or "").strip().split("\n")[0]
        )
        return func

    return register


def registry() -> dict[str, Job]:
    global _loaded
    if not _loaded:
        for module_name in JOB_MODULES:
            try:
                importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
        _loaded = True
    return _REGISTRY


def run_job(name: str) -> Any:
    jobs = registry()
    if name not in jobs:
        raise KeyError(f"unknown job {name!r}; known jobs: {', '.join(sorted(jobs)) or 'none'}")
    return jobs[name].func()


class Scheduler:
    """Runs every registered job at its interval in one daemon thread (the embedded setup)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
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

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for current in list(registry().values()):
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


app = typer.Typer(no_args_is_help=True)


@app.command("run")
def run_command(name: str = typer.Argument(..., help="Job name (see `liebian job list`).")) -> None:
    """Run one job now and print what it did."""
    try:
        result = run_job(name)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"[green]{name}[/green] done: {result}")


@app.command("list")
def list_command(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """List the jobs the scheduler runs, with their intervals."""
    emit(
        [
            {"job": j.name, "every_seconds": j.every_seconds, "description": j.description}
            for j in registry().values()
        ],
        fmt,
    )

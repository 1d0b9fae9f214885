"""Background fits of the MODELS pages: one at a time per server process, their progress polled by htmx."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from liebian.predict.common import PredictError, listen_steps
from liebian.tags.service import TagError
from liebian.web.console import FilterError

log = logging.getLogger("liebian.web.models")


@dataclass
class Task:
    """One background fit: its stages, progress, and how it ended (per server process)."""

    key: str
    stages: list[str]
    total: int
    started: float = field(default_factory=time.time)
    stage: str = ""
    step: str = ""
    done: int = 0
    finished: float | None = None
    errors: list[str] = field(default_factory=list)
    snapshot_hash: str | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def elapsed(self) -> int:
        return round((self.finished or time.time()) - self.started)


# (label, steps, work): work(report) runs inside listen_steps, so a fit reports its steps by itself;
# other work calls report(step_label, steps_done)
Stage = tuple[str, int, Callable[[Callable[[str, int], None]], Any]]


_TASKS: dict[str, Task] = {}
_TASKS_LOCK = threading.Lock()
_SLOTS = threading.Semaphore(1)


def start_task(key: str, stages: list[Stage], snapshot_hash: str | None = None) -> tuple[Task, bool]:
    """Start `stages` in a background thread unless a task with this key is running; (task, started)."""
    with _TASKS_LOCK:
        task = _TASKS.get(key)
        if task is not None and task.running:
            return task, False
        task = Task(key, [s[0] for s in stages], sum(s[1] for s in stages), snapshot_hash=snapshot_hash)
        _TASKS[key] = task
        _prune()
    threading.Thread(target=_work, args=(task, stages), daemon=True, name=f"console-{key[:40]}").start()
    return task, True


def current_task(key: str) -> Task | None:
    """The task started under this key in this server process, running or finished (None if forgotten)."""
    return _TASKS.get(key)


def _prune() -> None:
    """Forget finished tasks after an hour (the attribution keys vary with the filters)."""
    old = time.time() - 3600
    for key in [k for k, t in _TASKS.items() if t.finished and t.finished < old]:
        del _TASKS[key]


def _work(task: Task, stages: list[Stage]) -> None:
    task.stage = "waiting"
    try:
        with _SLOTS:  # one fit at a time: they are CPU-bound and the server has other work
            _run_stages(task, stages)
    finally:
        task.finished = time.time()


def _run_stages(task: Task, stages: list[Stage]) -> None:

    base = 0
    for label, steps, work in stages:
        task.stage, task.step = label, ""

        def on_step(step: str, done: int, _total: int, base: int = base) -> None:
            task.step, task.done = step, base + done

        def report(step: str, done: int, total: int = steps) -> None:
            on_step(step, done, total)

        try:
            with listen_steps(on_step):
                work(report)
        except (PredictError, TagError, FilterError) as exc:
            task.errors.append(f"{label}: {exc}")
        except Exception as exc:  # noqa: BLE001 - shown on the page and logged, never lost
            log.exception("console task %s, stage %s", task.key, label)
            task.errors.append(f"{label}: {type(exc).__name__}: {exc}")
        base += steps
        task.done = base


def task_context(task: Task | None, t) -> dict[str, Any] | None:
    if task is None:
        return None
    return {
        "running": task.running,
        "stage": t(f"models.stage.{task.stage}") if task.stage else "",
        "step": task.step,
        "done": task.done,
        "total": max(task.total, 1),
        "elapsed": task.elapsed,
        "errors": task.errors,
    }

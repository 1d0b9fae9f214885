"""The progress of one import: a Rich bar over the pipeline's steps (filled inside a step from
DuckDB's query progress), the same progress told to a hook, and how long each step took."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import
from liebian.output import err_console

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

# on_progress(step name, fraction of the whole import done): the console's import page hears it
ProgressHook = Callable[[str, float], None]


class Steps:
    """A Rich progress bar over the pipeline's steps, filled inside a step from DuckDB's progress;
    `on_progress` hears the same progress (the console shows it while the import runs)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        enabled: bool,
        total: int,
        label: str,
        on_progress: ProgressHook | None = None,
    ):
        self.con, self.enabled, self.total, self.label = con, enabled, total, label
        self.on_progress = on_progress
        self.done = 0
        self.timings: dict[str, float] = {}
        self.progress = None
        if enabled:
            # deferred: only a terminal shows progress bars
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=err_console,
                transient=False,
            )
            con.execute("SET enable_progress_bar = true")
            con.execute("SET enable_progress_bar_print = false")
            self.progress.start()
            self.task = self.progress.add_task(label, total=total)
        elif on_progress is not None:
            con.execute("SET enable_progress_bar = true")
            con.execute("SET enable_progress_bar_print = false")

    def close(self, ok: bool = True) -> None:
        if self.progress is not None:
            if ok:
                self.progress.update(self.task, completed=self.total, description=f"{self.label}: done")
            else:
                self.progress.update(self.task, description=f"{self.label}: failed")
            self.progress.stop()
        if ok and self.on_progress is not None:
            self.on_progress("done", 1.0)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            if self.progress is None and self.on_progress is None:
                yield
            else:
                with self._shown(name):
                    yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - started, 3)

    def _show(self, name: str, completed: float, describe: bool = False) -> None:
        if self.progress is not None:
            if describe:
                self.progress.update(self.task, description=f"{self.label}: {name}", completed=completed)
            else:
                self.progress.update(self.task, completed=completed)
        if self.on_progress is not None and self.total:
            self.on_progress(name, min(completed / self.total, 1.0))

    @contextlib.contextmanager
    def _shown(self, name: str) -> Iterator[None]:
        self._show(name, self.done, describe=True)
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.2):
                with contextlib.suppress(Exception):
                    pct = self.con.query_progress()
                    if pct is not None and pct >= 0:
                        self._show(name, self.done + min(pct, 100) / 100)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.done += 1
            self._show(name, self.done)

"""`liebian job`: run a scheduled job once (for cron), run the scheduler on its own, list the jobs.

Kept apart from the scheduler (liebian/jobs.py) so the server, which runs the scheduler, does not
import the command-line libraries.
"""

from __future__ import annotations

import os

import typer

from liebian.jobs import Scheduler, registry, run_job
from liebian.output import Format, console, emit

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


@app.command("scheduler")
def scheduler_command(
    seconds: float = typer.Option(0, help="Stop after this many seconds (0: run until interrupted)."),
) -> None:
    """Run the scheduled jobs in this process (a dedicated scheduler beside API workers that have
    LIEBIAN_SCHEDULER_ENABLED=0). Several may run: one holds the lock and runs the jobs, the others
    wait to take over."""
    scheduler = Scheduler()
    scheduler.start()
    console.print(f"scheduler started (process {os.getpid()}); Ctrl-C stops it")
    try:
        scheduler.wait(seconds or None)
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.stop()
    console.print(f"scheduler stopped; jobs run: {', '.join(sorted(scheduler.last_run)) or 'none'}")


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

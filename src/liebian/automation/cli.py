"""`liebian journey …`: define journeys from a JSON file, run passes, statistics."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError

from liebian.automation import service
from liebian.automation.schemas import JourneyDefinition
from liebian.automation.service import AutomationError
from liebian.db.session import session_scope
from liebian.output import Format, emit, err_console

app = typer.Typer(no_args_is_help=True)
FMT = typer.Option(Format.table, "--format")


def _fail(message: str) -> None:
    err_console.print(f"[red]{message}[/red]")
    raise typer.Exit(2)


@app.command("create")
def create_cmd(
    name: str = typer.Argument(...),
    definition: Path = typer.Option(..., "--definition", help="JSON file: trigger, steps, goal, holdout_pct"),
    fmt: Format = FMT,
) -> None:
    """Define a journey."""
    try:
        parsed = JourneyDefinition.model_validate(json.loads(definition.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"{definition}: {exc}")
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(f"{definition}: {errs}")
    try:
        with session_scope() as s:
            emit(dict(service.create_journey(s, name, parsed)), fmt)
    except AutomationError as exc:
        _fail(exc.message)


@app.command("list")
def list_cmd(fmt: Format = FMT) -> None:
    """List journeys."""
    with session_scope() as s:
        emit([j.model_dump(exclude={"definition"}) for j in service.list_journeys(s)], fmt)


@app.command("run")
def run_cmd(journey_id: int = typer.Argument(...), fmt: Format = FMT) -> None:
    """Enter new persons and run every due step of one journey now."""
    try:
        emit(service.run(journey_id), fmt)
    except AutomationError as exc:
        _fail(exc.message)


@app.command("pause")
def pause_cmd(journey_id: int = typer.Argument(...), fmt: Format = FMT) -> None:
    """Pause a journey (no entries, no actions)."""
    try:
        with session_scope() as s:
            emit(service.set_status(s, journey_id, "paused").model_dump(exclude={"definition"}), fmt)
    except AutomationError as exc:
        _fail(exc.message)


@app.command("resume")
def resume_cmd(journey_id: int = typer.Argument(...), fmt: Format = FMT) -> None:
    """Resume a paused journey."""
    try:
        with session_scope() as s:
            emit(service.set_status(s, journey_id, "active").model_dump(exclude={"definition"}), fmt)
    except AutomationError as exc:
        _fail(exc.message)


@app.command("stats")
def stats_cmd(journey_id: int = typer.Argument(...), fmt: Format = FMT) -> None:
    """Entered, actioned, converted per arm and the lift over the control group."""
    try:
        with session_scope() as s:
            result = service.stats(s, journey_id)
    except AutomationError as exc:
        _fail(exc.message)
    if fmt is Format.json:
        emit(result, fmt)
        return
    emit(
        [{"arm": arm, **v} for arm, v in result["arms"].items()]
        + [{"arm": "lift", "conversion_rate": result["lift"]}],
        fmt,
    )

"""`liebian campaign stage …`: the staged roll-out (pilot → rollout → optimise) from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from liebian.auth.cli_guard import acting
from liebian.campaigns import stages
from liebian.campaigns.common import CampaignError
from liebian.campaigns.stage_schemas import StagePlanDoc
from liebian.db.session import session_scope
from liebian.output import Format, console, emit, err_console

app = typer.Typer(no_args_is_help=True, help="Stages: pilot → rollout → optimise, gates, the exit rule.")

FMT = typer.Option(Format.table, "--format", "-f", help="table, json or csv")


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        with session_scope() as s:
            return fn(s, *args, **kwargs)
    except CampaignError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(2) from None


def _emit_gate(gate: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.json:
        emit(gate, fmt)
        return
    emit(gate["checks"], fmt, title=f"{gate['stage']} gate")
    verdict = "[green]met[/green]" if gate["passed"] else "[red]not met[/red]"
    console.print(f"gate {verdict}")


@app.command()
def show(campaign_id: str, fmt: Format = FMT) -> None:
    """The stage, the gate against its metrics, the exit rule and the history."""
    view = _call(stages.view, campaign_id)
    if fmt is Format.json:
        emit(view, fmt)
        return
    console.print(
        f"{campaign_id}: stage [bold]{view['stage']}[/bold] since {view['entered_at']:%Y-%m-%d %H:%M} UTC"
    )
    _emit_gate(view["gate"], fmt)
    console.print(f"exit rule: {view['exit_rule']['action']} — {view['exit_rule']['reason']}")
    emit(view["history"], fmt, title="history")


@app.command()
def plan(campaign_id: str, plan_file: Path = typer.Argument(..., help="the stage plan as JSON")) -> None:
    """Set the stage plan (a campaign without one starts in the pilot)."""
    try:
        doc = StagePlanDoc.model_validate_json(plan_file.read_text(encoding="utf-8-sig"))
    except (OSError, ValidationError) as exc:
        err_console.print(f"[red]error[/red]: {plan_file}: {exc}")
        raise typer.Exit(2) from None
    view = _call(stages.set_plan, campaign_id, doc, actor=acting().name)
    console.print(f"{campaign_id}: stage {view['stage']}")


@app.command()
def evaluate(campaign_id: str, fmt: Format = FMT) -> None:
    """Evaluate the current stage's gate (recorded); exit code 1 when it is not met."""
    gate = _call(stages.evaluate, campaign_id, actor=acting().name)
    _emit_gate(gate, fmt)
    if not gate["passed"]:
        raise typer.Exit(1)


@app.command()
def advance(
    campaign_id: str,
    force: bool = typer.Option(False, help="move on although the gate is not met (audited)"),
    note: str = typer.Option("", help="why"),
) -> None:
    """Move to the next stage once the gate is met."""
    view = _call(stages.advance, campaign_id, force=force, note=note, actor=acting().name)
    console.print(f"{campaign_id}: stage {view['stage']}")


@app.command("exit-rule")
def exit_rule(campaign_id: str, fmt: Format = FMT) -> None:
    """Apply the current stage's exit rule now."""
    out = _call(stages.apply_exit_rule, campaign_id, actor=acting().name)
    if fmt is Format.json:
        emit(json.loads(json.dumps(out, default=str)), fmt)
        return
    console.print(f"{campaign_id}: {out['action']} — {out['reason']}")
    for change in out["changes"]:
        console.print(f"  {change}")

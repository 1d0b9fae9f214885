"""`liebian decisions`: options for an alert, proposals and their review."""

from __future__ import annotations

from typing import NoReturn

import typer

from liebian.auth.cli_guard import acting
from liebian.db.session import session_scope
from liebian.decisions import options, service
from liebian.errors import DomainError
from liebian.output import Format, console, emit, err_console

app = typer.Typer(no_args_is_help=True)
FMT = typer.Option(Format.table, "--format")


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]{message}[/red]")
    raise typer.Exit(2)


def _range(r: list[float | None]) -> str:
    return "–" if r[0] is None or r[1] is None else f"{r[0]:+,.0f} … {r[1]:+,.0f}"


def _signed(v: float | None, digits: int) -> str:
    return "–" if v is None else f"{v:+,.{digits}f}"


@app.command("options")
def options_cmd(alert: int = typer.Option(..., "--alert", help="alert id"), fmt: Format = FMT) -> None:
    """Options for an alert with their expected effect (simulated users over the horizon) and range."""
    try:
        with session_scope() as s:
            out = options.for_alert(s, alert)
    except DomainError as exc:
        _fail(exc.message)
    if fmt is Format.json:
        console.print_json(data=out)
        return
    rows = [
        {"option": o["option"], "what": f"{o['title_zh']} {o['title_en']}",
         "users": _signed(o["expected"]["users"], 1), "users 10–90%": _range(o["expected"]["users_range"]),
         "cost (fen)": _signed(o["expected"]["cost_fen"], 0), "proposable": o["proposable"]}
        for o in out["options"]
    ]  # fmt: skip
    emit(rows, fmt, title=f"alert {alert}: {out['finding']}")


@app.command("propose")
def propose_cmd(
    alert: int = typer.Option(..., "--alert", help="alert id"),
    option: str = typer.Option(
        ..., "--option", help="raise_invitee_reward | shorten_window | cap_per_inviter"
    ),
    fmt: Format = FMT,
) -> None:
    """Turn one option into a draft rules version awaiting approval."""
    try:
        with session_scope() as s:
            p = service.propose(s, alert, option, actor=acting().name)
    except DomainError as exc:
        _fail(exc.message)
    emit({k: p[k] for k in ("id", "campaign_id", "base_version", "option", "status")}, fmt)


@app.command("proposals")
def proposals_cmd(
    status: str | None = typer.Option(None, help="draft | approved | rejected"), fmt: Format = FMT
) -> None:
    """List proposals, newest first."""
    with session_scope() as s:
        rows = service.list_proposals(s, status)
    cols = ("id", "campaign_id", "option", "status", "base_version", "applied_version", "created_by")
    emit([{k: p[k] for k in cols} for p in rows], fmt)


@app.command("approve")
def approve_cmd(proposal: int = typer.Argument(..., help="proposal id"), fmt: Format = FMT) -> None:
    """Apply a draft proposal: its rules become the campaign's new live version."""
    try:
        with session_scope() as s:
            p = service.approve(s, proposal, actor=acting().name)
    except DomainError as exc:
        _fail(exc.message)
    emit({k: p[k] for k in ("id", "campaign_id", "status", "applied_version")}, fmt)


@app.command("reject")
def reject_cmd(
    proposal: int = typer.Argument(..., help="proposal id"),
    reason: str = typer.Option(..., "--reason", help="why"),
    fmt: Format = FMT,
) -> None:
    """Reject a draft proposal (the campaign is unchanged)."""
    try:
        with session_scope() as s:
            p = service.reject(s, proposal, reason, actor=acting().name)
    except DomainError as exc:
        _fail(exc.message)
    emit({k: p[k] for k in ("id", "campaign_id", "status")}, fmt)

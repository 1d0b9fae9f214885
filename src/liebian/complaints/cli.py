"""`liebian complaints …`: record, list, show, assign and resolve complaints and data-subject
requests (the same checks as the API: schemas.ComplaintIn validates what is typed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from pydantic import ValidationError

from liebian.auth.cli_guard import acting
from liebian.complaints import service
from liebian.complaints.schemas import ComplaintIn, ResolveIn
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.output import Format, edge_time, emit, err_console

app = typer.Typer(no_args_is_help=True)
FMT = typer.Option(Format.table, "--format")
LISTED = ("id", "kind", "category", "channel", "owner", "state", "due_at", "escalations", "person_id")


def _fail(message: str) -> None:
    err_console.print(f"[red]{message}[/red]")
    raise typer.Exit(2)


def _validated(model: type[ComplaintIn] | type[ResolveIn], **fields: Any) -> Any:
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()))


@app.command("add")
def add_cmd(
    text: str = typer.Option(..., "--text", help="What the person said (phones, IDs, e-mails are masked)."),
    category: str = typer.Option(
        ..., "--category", help="reward, product, food_safety, …; requests: access, deletion, …"
    ),
    channel: str = typer.Option(..., "--channel", help="wecom, miniprogram, app, phone, store, …"),
    kind: str = typer.Option("complaint", "--kind", help="complaint or subject_request"),
    person_id: int | None = typer.Option(None, "--person-id"),
    id_type: str | None = typer.Option(None, "--id-type", help="Name the person by an identifier instead."),
    id_value: str | None = typer.Option(None, "--id-value"),
    owner: str | None = typer.Option(None, "--owner", help="The console user who handles it."),
    received_at: datetime | None = typer.Option(
        None,
        "--received-at",
        parser=edge_time,
        help="When it came in (default: now; display zone, …Z or …+08:00).",
    ),
    fmt: Format = FMT,
) -> None:
    """Record a complaint or a data-subject request; its deadline clock starts."""
    body = _validated(
        ComplaintIn, kind=kind, channel=channel, category=category, text=text, person_id=person_id,
        id_type=id_type, id_value=id_value, owner=owner, received_at=received_at.replace(tzinfo=UTC) if received_at else None,
    )  # fmt: skip
    intake = service.Intake(**body.model_dump())
    try:
        with session_scope() as s:
            emit(service.create(s, intake, actor=acting().name, ip="cli"), fmt)
    except DomainError as exc:
        _fail(exc.message)


@app.command("list")
def list_cmd(
    status: str | None = typer.Option(None, "--status", help="open or resolved"),
    kind: str | None = typer.Option(None, "--kind", help="complaint or subject_request"),
    owner: str | None = typer.Option(None, "--owner"),
    due_only: bool = typer.Option(False, "--due", help="What is due: open cases, overdue first."),
    fmt: Format = FMT,
) -> None:
    """List cases, the soonest deadline first."""
    try:
        with session_scope() as s:
            rows = (
                service.due(s) if due_only else service.list_cases(s, status=status, kind=kind, owner=owner)
            )
    except DomainError as exc:
        _fail(exc.message)
    emit(rows if fmt is Format.json else [{k: r[k] for k in LISTED} for r in rows], fmt)


@app.command("show")
def show_cmd(case_id: int = typer.Argument(...), fmt: Format = FMT) -> None:
    """One case with its clock and resolution."""
    try:
        with session_scope() as s:
            emit(service.get(s, case_id), fmt)
    except DomainError as exc:
        _fail(exc.message)


@app.command("assign")
def assign_cmd(
    case_id: int = typer.Argument(...), owner: str = typer.Argument(...), fmt: Format = FMT
) -> None:
    """Give a case to a console user."""
    try:
        with session_scope() as s:
            emit(service.assign(s, case_id, owner, actor=acting().name, ip="cli"), fmt)
    except DomainError as exc:
        _fail(exc.message)


@app.command("resolve")
def resolve_cmd(
    case_id: int = typer.Argument(...),
    resolution: str = typer.Option(
        ...,
        "--resolution",
        help="complaint: upheld, rejected, withdrawn; request: fulfilled, rejected, withdrawn",
    ),
    reason: str = typer.Option(..., "--reason", help="Why, as told to the person (audited)."),
    fmt: Format = FMT,
) -> None:
    """Close a case with its outcome and reason."""
    body = _validated(ResolveIn, resolution=resolution, reason=reason)
    try:
        with session_scope() as s:
            emit(
                service.resolve(s, case_id, body.resolution, body.reason, actor=acting().name, ip="cli"), fmt
            )
    except DomainError as exc:
        _fail(exc.message)

"""`liebian tags …`: define and check tag rules, recompute, members, history, health."""

from __future__ import annotations

import typer

from liebian.db.session import session_scope
from liebian.output import Format, emit, err_console
from liebian.predict.common import PredictError
from liebian.tags import service
from liebian.tags.rules import RuleError
from liebian.tags.service import TagError

app = typer.Typer(no_args_is_help=True)
FMT = typer.Option(Format.table, "--format")


def _fail(exc: Exception) -> None:
    err_console.print(f"[red]{exc}[/red]")
    raise typer.Exit(2)


@app.command("features")
def features_cmd(fmt: Format = FMT) -> None:
    """The features a rule may use."""
    emit([{"name": k, "type": t, "description": d} for k, (t, d) in service.FEATURES.items()], fmt)


@app.command("check")
def check_cmd(rule: str = typer.Argument(...), fmt: Format = FMT) -> None:
    """Check a rule without saving it."""
    try:
        parsed = service.check_rule(rule)
    except RuleError as exc:
        if fmt is Format.json:
            emit({"valid": False, **exc.as_dict()}, fmt)
            raise typer.Exit(2) from exc
        _fail(exc)
    emit({"valid": True, "features": ", ".join(sorted(parsed.features))}, fmt)


@app.command("define")
def define_cmd(
    name: str = typer.Argument(...),
    rule: str = typer.Option(..., help="e.g. 'orders_90d >= 3 and channel in [\"wecom\"]'"),
    level: str = typer.Option(..., help="attribute | behaviour | value"),
    description: str = typer.Option(""),
    fmt: Format = FMT,
) -> None:
    """Create a tag, or a new version of it when the rule changes."""
    try:
        with session_scope() as session:
            emit(
                dict(service.tag_view(service.define_tag(session, name, rule, level, description, "cli"))),
                fmt,
            )
    except TagError as exc:
        _fail(exc)


@app.command("retire")
def retire_cmd(name: str = typer.Argument(...), fmt: Format = FMT) -> None:
    """Stop computing a tag (its history stays)."""
    try:
        with session_scope() as session:
            emit(dict(service.tag_view(service.retire_tag(session, name))), fmt)
    except TagError as exc:
        _fail(exc)


@app.command("list")
def list_cmd(all_versions: bool = typer.Option(False, "--all-versions"), fmt: Format = FMT) -> None:
    """Tag definitions (latest versions) and their member counts."""
    with session_scope() as session:
        emit([dict(tag) for tag in service.list_tags(session, all_versions)], fmt, "tags")


@app.command("init")
def init_cmd(fmt: Format = FMT) -> None:
    """Install the default three-level tags (those not defined yet)."""
    with session_scope() as session:
        emit([dict(service.tag_view(t)) for t in service.install_defaults(session)], fmt)


@app.command("recompute")
def recompute_cmd(fmt: Format = FMT) -> None:
    """Recompute every tag now (the `tags-recompute` job does this on schedule)."""
    try:
        with session_scope() as session:
            result = service.recompute(session)
    except PredictError as exc:
        _fail(exc)
    if fmt is Format.json:
        emit(result, fmt)
    else:
        emit(
            [{"tag": k, **v} for k, v in result["tags"].items()],
            fmt,
            f"run {result['run_id']}: {result['persons']} persons",
        )


@app.command("members")
def members_cmd(name: str = typer.Argument(...), limit: int = typer.Option(100), fmt: Format = FMT) -> None:
    """Persons currently carrying a tag."""
    try:
        with session_scope() as session:
            emit([{"person_id": p} for p in service.members(session, name, limit)], fmt)
    except TagError as exc:
        _fail(exc)


@app.command("history")
def history_cmd(
    tag: str | None = typer.Option(None), person: int | None = typer.Option(None), limit: int = typer.Option(100),
    fmt: Format = FMT,
) -> None:  # fmt: skip
    """When persons gained and lost tags."""
    try:
        with session_scope() as session:
            emit([dict(row) for row in service.history(session, tag, person, limit)], fmt, "tag history")
    except TagError as exc:
        _fail(exc)


@app.command("person")
def person_cmd(person_id: int = typer.Argument(...), fmt: Format = FMT) -> None:
    """A person's current tags and health score."""
    try:
        with session_scope() as session:
            tags = service.person_tags(session, person_id)
        health = service.person_health(person_id)
    except TagError as exc:
        _fail(exc)
    if fmt is Format.json:
        emit({"person_id": person_id, "tags": [dict(t) for t in tags], "health": health}, fmt)
    else:
        emit({**health, "tags": ", ".join(f"{t.tag}({t.level})" for t in tags)}, fmt)

"""`liebian identity …`: look up a person, link two identifiers, sync the warehouse."""

from __future__ import annotations

import os
import sys

import typer

from liebian.db.session import session_scope
from liebian.engine import eventstore, warehouse
from liebian.identity import service
from liebian.identity.keys import IdentifierError, display_value
from liebian.output import Format, emit, err_console

app = typer.Typer(no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@app.command()
def show(
    id_type: str | None = typer.Option(None, "--id-type", help="unionid, openid, phone, external_userid, …"),
    id_: str | None = typer.Option(None, "--id", help="The identifier as the channel gives it."),
    person_id: int | None = typer.Option(None, "--person-id", help="Show a person by id instead."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
) -> None:
    """Show a person and every identifier linked to them (phones masked)."""
    if person_id is None and not (id_type and id_):
        raise _fail("give --id-type and --id, or --person-id")
    with session_scope() as session:
        if person_id is None:
            assert id_type and id_  # given when there is no person id: checked above
            try:
                person_id = service.find_person(session, id_type, id_)
            except IdentifierError as exc:
                raise _fail(f"--id-type/--id: {exc}") from None
            if person_id is None:
                kind = id_type.strip().lower()
                raise _fail(f"no person has {kind} {display_value(kind, id_)}", code=1)
        view = service.person_view(session, person_id)
    if view is None:
        raise _fail(f"no person {person_id}", code=1)
    if fmt is Format.json:
        emit(view.__dict__, fmt)
        return
    rows = [{"person_id": view.person_id, **ident} for ident in view.identifiers]
    merged = f" (merged from {', '.join(map(str, view.merged_from))})" if view.merged_from else ""
    emit(rows, fmt, title=f"person {view.person_id}{merged}")


@app.command("link")
def link_cmd(
    a_type: str = typer.Argument(..., help="Identifier type of A (e.g. unionid)."),
    a: str = typer.Argument(..., help="Identifier A."),
    b_type: str = typer.Argument(..., help="Identifier type of B (e.g. phone)."),
    b: str = typer.Argument(..., help="Identifier B."),
    source: str = typer.Option("cli", help="Where the evidence comes from."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
) -> None:
    """Record that identifiers A and B belong to one human: merge, already same, or conflict."""
    sides = []
    for name, (kind, value) in (("A", (a_type, a)), ("B", (b_type, b))):
        try:
            ident = service.RawIdentifier(kind, value)
            ident.key  # noqa: B018 — hashing validates the value
        except IdentifierError as exc:
            raise _fail(f"{name}: {exc}") from None
        sides.append(ident)
    with session_scope() as session:
        result = service.link_pair(session, sides[0], sides[1], source=source)
    # a conflict is a normal outcome (the evidence is kept, nothing merged), not a failure
    emit(
        {k: v for k, v in result.__dict__.items() if k != "merges"} | {"persons_merged": len(result.merges)},
        fmt,
    )


@app.command()
def sync(fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv.")) -> None:
    """Copy new identifiers to the warehouse and replay person merges onto its tables."""
    with session_scope() as session, warehouse.connect() as con:
        result = service.sync_warehouse(session, con)
        eventstore.commit(con)  # merges replayed: the Parquet store rewrites the affected days
    emit(result, fmt)


@app.command()
def backfill(
    history: str = typer.Argument(..., help="CSV or Parquet (file, directory or URL) of identity evidence."),
    engine: str = typer.Option("spark", "--engine", help="spark (the only engine for a backfill)."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
) -> None:
    """Resolve a large history of identity evidence into persons on Spark (OneID backfill).

    The history has the identities import's columns (id_type_a, id_a, id_type_b, id_b, ts, source)
    or one column per identifier type (an observation per row). Person ids are those the embedded
    path (`liebian import identities`) gives; the store, warehouse and event store are updated.
    """
    if engine != "spark":
        raise _fail(
            "--engine: a backfill runs on spark; use `liebian import identities` for the embedded path"
        )
    # deferred: the Spark backfill imports PySpark (an optional extra) when it runs
    from liebian.identity import backfill_spark

    # A local Spark's Python workers run OneID's own functions: this interpreter, as the driver's.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        report = backfill_spark.backfill(history)
    except backfill_spark.BackfillError as exc:
        raise _fail(str(exc)) from None
    emit(backfill_spark.report_dict(report), fmt)

"""`liebian points …`: a person's balance and history, and the chain's verification (thin over
rewards/points.py). Points are granted and spent through the API or the campaign rules."""

from __future__ import annotations

import typer

from liebian.db.session import session_scope
from liebian.output import Format, emit
from liebian.rewards import points
from liebian.rewards.cli import report_verify

app = typer.Typer(no_args_is_help=True)


@app.command()
def balance(
    person_id: int = typer.Argument(..., help="the person (merged OneID persons included)"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv"),
) -> None:
    """A person's points and when they expire."""
    with session_scope() as s:
        result = points.balance(s, person_id)
    if fmt is Format.json:
        emit(result, fmt)
        return
    emit(result["expiring"], fmt, title=f"person {person_id}: {result['balance']} points")


@app.command()
def history(
    person_id: int = typer.Argument(..., help="the person (merged OneID persons included)"),
    limit: int = typer.Option(100, min=1, max=10000, help="newest entries first"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv"),
) -> None:
    """A person's points entries: earn, spend, expire, revoke, adjust."""
    with session_scope() as s:
        rows = [r.as_dict() for r in points.history(s, person_id, limit=limit)]
    emit(rows, fmt, title=f"points of person {person_id}")


@app.command()
def verify(fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv")) -> None:
    """Check the points chain and the balance projection; exit 1 naming the first bad entry."""
    with session_scope() as s:
        result = points.verify(s)
    report_verify(
        result,
        fmt,
        "points",
        lambda m: f"lot {m['earn_seq']}: {m['field']} is {m['found']!r}, entries say {m['expected']!r}",
    )

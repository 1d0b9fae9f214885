"""`liebian ledger …`: verify, balances, payouts export/issue, release, webhooks (thin over services)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import typer

from liebian.auth.cli_guard import acting
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.output import Format, console, edge_time, emit, err_console
from liebian.rewards import payouts, service, webhooks
from liebian.rewards.chain import VerifyResult
from liebian.rewards.service import LedgerError

app = typer.Typer(no_args_is_help=True)
webhooks_app = typer.Typer(no_args_is_help=True, help="Signed webhook endpoints and deliveries.")
app.add_typer(webhooks_app, name="webhooks")


def _fail(exc: LedgerError) -> None:
    err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
    raise typer.Exit(2)


def report_verify(
    result: VerifyResult, fmt: Format, label: str, mismatch_line: Callable[[dict[str, Any]], str]
) -> None:
    """Print a chain's verification (`ledger verify`, `points verify`); exit 1 when it is not OK."""
    if fmt is not Format.table:
        emit(result.as_dict(), fmt)
    elif result.ok:
        console.print(
            f"[green]{label} OK[/green]: {result.entries_checked} entries, head at {result.head_seq}"
        )
    else:
        where = f"first bad entry: seq {result.first_bad_seq}" if result.first_bad_seq else "entries OK"
        console.print(f"[red]{label} NOT OK[/red] — {where}\n{result.reason}")
        for m in result.projection_mismatches[:20]:
            console.print(f"  {mismatch_line(m)}")
    if not result.ok:
        raise typer.Exit(1)


def _reward_mismatch(m: dict[str, Any]) -> str:
    said_by = f"entry {m['seq']}" if m.get("seq") is not None else "the entries"
    return f"reward {m['reward_id']}: {m['field']} is {m['found']!r}, {said_by} says {m['expected']!r}"


@app.command()
def verify(fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv")) -> None:
    """Check the hash chain and the rewards table; exit 1 naming the first bad entry."""
    with session_scope() as s:
        result = service.verify_chain(s)
    report_verify(result, fmt, "ledger", _reward_mismatch)


@app.command()
def balances(
    by: str = typer.Option("campaign", help="person or campaign"),
    key: str | None = typer.Option(None, help="only this person id / campaign id"),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Value and number of rewards per state, computed from the ledger entries."""
    try:
        with session_scope() as s:
            rows = service.balances(s, by, key)
    except LedgerError as exc:
        _fail(exc)
    emit(rows, fmt, title=f"balances by {by}")


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="file to write"),
    state: str = typer.Option("approved", help="reward state to export"),
    fmt: str = typer.Option("csv", "--format", help="csv or xlsx"),
    campaign: str | None = typer.Option(None, help="only this campaign"),
) -> None:
    """Export rewards ready to pay (not held for review) as CSV or XLSX."""
    try:
        with session_scope() as s:
            n = payouts.export(s, out, fmt, state, campaign, actor=acting().name)
    except LedgerError as exc:
        _fail(exc)
    console.print(f"{n} rewards written to {out}")


@app.command()
def issue(
    key: str = typer.Option(..., "--key", help="batch idempotency key (re-running with it changes nothing)"),
    ids_file: Path | None = typer.Option(
        None, "--ids-file", help="an export file: issue exactly these rewards"
    ),
    all_approved: bool = typer.Option(False, "--all-approved", help="issue every payable approved reward"),
    campaign: str | None = typer.Option(None, help="with --all-approved: only this campaign"),
    note: str = typer.Option("", help="a note kept in the ledger entries"),
) -> None:
    """Mark rewards issued in one idempotent batch (the ledger records who runs the command)."""
    if (ids_file is None) == (not all_approved):
        err_console.print("[red]error[/red]: give exactly one of --ids-file or --all-approved")
        raise typer.Exit(2)
    try:
        ids = payouts.read_ids(ids_file) if ids_file else None
        with session_scope() as s:
            batch = payouts.issue_batch(
                s,
                idempotency_key=key,
                actor=acting().name,
                reward_ids=ids,
                all_approved=all_approved,
                campaign_id=campaign,
                note=note,
            )
    except LedgerError as exc:
        _fail(exc)
    console.print(
        f"batch {batch.id} ({batch.idempotency_key}): {batch.reward_count} rewards, "
        f"{batch.total_fen} fen ({batch.total_fen / 100:.2f} 元) issued"
    )


@app.command()
def release(
    as_of: datetime | None = typer.Option(
        None,
        "--as-of",
        parser=edge_time,
        help="run as of this time (Z, +08:00 or the display zone; default now)",
    ),
) -> None:
    """Approve pending rewards whose hold period is over (for cron)."""
    with session_scope() as s:
        n = service.release_due(s, as_of or utcnow())
    console.print(f"{n} rewards approved")


@app.command()
def deliver(limit: int = typer.Option(100, help="at most this many deliveries per run")) -> None:
    """Post due webhook deliveries once, with retries scheduled on failure (for cron)."""
    with session_scope() as s, httpx.Client(timeout=webhooks.TIMEOUT_S) as client:
        n = webhooks.deliver_due(s, utcnow(), client, limit=limit)
    with session_scope() as s:
        pending = len(webhooks.list_deliveries(s, status="pending", limit=10000))
    console.print(f"{n} delivery attempts; {pending} deliveries pending")


@app.command()
def replay(delivery_id: int) -> None:
    """Queue a delivery again (same id and body); the next `deliver` sends it."""
    try:
        with session_scope() as s:
            d = webhooks.replay(s, delivery_id)
    except LedgerError as exc:
        _fail(exc)
    console.print(f"delivery {d.id} ({d.delivery_uid}) queued again")


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    events: str = typer.Option("*", help="comma-separated event types, or *"),
    secret: str | None = typer.Option(None, help="signing secret (default: generated)"),
    description: str = typer.Option("", help="a note for operators"),
) -> None:
    """Register an endpoint; prints the signing secret once."""
    try:
        with session_scope() as s:
            view, secret = webhooks.create_endpoint(
                s,
                url,
                [e.strip() for e in events.split(",") if e.strip()],
                secret=secret,
                description=description,
            )
    except LedgerError as exc:
        _fail(exc)
    console.print(f"endpoint {view.id}: {view.url} ({', '.join(view.event_types)})")
    typer.echo(f"signing secret (shown once): {secret}")


@webhooks_app.command("list")
def webhooks_list(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """The configured endpoints (secrets are never shown again)."""
    with session_scope() as s:
        rows = [{**e.as_dict(), "event_types": ",".join(e.event_types)} for e in webhooks.list_endpoints(s)]
    emit(rows, fmt, title="webhook endpoints")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    status: str | None = typer.Option(None, help="pending, delivered, dead or cancelled"),
    limit: int = typer.Option(50),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """The delivery log, newest first."""
    with session_scope() as s:
        rows = webhooks.list_deliveries(s, status=status, limit=limit)
    emit([dict(row) for row in rows], fmt, title="webhook deliveries")

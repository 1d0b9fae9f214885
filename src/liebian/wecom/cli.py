"""`liebian wecom …`: WeCom contact ways, recent callbacks, and the event hand-over to the warehouse."""

from __future__ import annotations

import typer

from liebian.db.session import session_scope
from liebian.output import Format, console, emit
from liebian.wecom import service

app = typer.Typer(no_args_is_help=True)

FMT = typer.Option(Format.table, "--format", "-f", help="table, json or csv")


@app.command()
def flush() -> None:
    """Hand queued WeCom events to the warehouse (normally done right after each callback)."""
    n = service.flush_outbox()
    console.print(f"{n} WeCom events handed to the collector")


@app.command("contact-ways")
def contact_ways(campaign_id: str | None = typer.Option(None, "--campaign"), fmt: Format = FMT) -> None:
    """联系我 states and what they map to (an inviter's invite or a channel)."""
    with session_scope() as s:
        rows = service.list_states(s, campaign_id)
    emit(
        [
            {
                k: getattr(r, k)
                for k in (
                    "state",
                    "kind",
                    "campaign_id",
                    "inviter_person_id",
                    "channel",
                    "config_id",
                    "deleted_at",
                )
            }
            for r in rows
        ],
        fmt,
    )


@app.command()
def callbacks(limit: int = typer.Option(50, "--limit"), fmt: Format = FMT) -> None:
    """Recently processed callback events and their outcome."""
    with session_scope() as s:
        rows = service.callbacks(s, limit)
    emit([{k: v for k, v in dict(r).items() if k != "detail"} for r in rows], fmt)

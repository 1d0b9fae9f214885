from __future__ import annotations

import typer

from liebian.db import migrate
from liebian.engine import warehouse
from liebian.output import console

app = typer.Typer(no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations to the operational store (SQLite or PostgreSQL)."""
    migrate.upgrade(revision=revision)
    console.print(f"operational store at revision [bold]{migrate.current_revision()}[/bold]")


@app.command()
def current() -> None:
    """Show the store's revision and the newest one this version knows."""
    console.print(f"current: {migrate.current_revision()}  head: {migrate.head_revision()}")


@app.command("warehouse")
def warehouse_version() -> None:
    """Show the warehouse's schema version and the newest one this version knows (it upgrades on open)."""
    current, latest = warehouse.schema_versions()
    shown = "none (no warehouse file yet)" if current is None else current
    console.print(f"warehouse {warehouse.warehouse_path()}  current: {shown}  latest: {latest}")

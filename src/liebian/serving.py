"""Serving the HTTP API and the console with uvicorn, for `liebian serve` (web/cli.py) and
`liebian demo --serve` (demo/cli.py).

The app is named by its import string: uvicorn imports it in each worker, so this module does not
import the web layer (no domain does; tests/test_architecture.py).
"""

from __future__ import annotations

import os
from typing import NoReturn

import typer
import uvicorn

from liebian.config import Settings, get_settings, reset_settings_cache
from liebian.db import pool
from liebian.output import console, err_console

ASGI_APP = "liebian.web.asgi:app"

# uvicorn's supervisor replaces a worker that does not answer its ping within this time. A worker
# answers only once multiprocessing's spawn has re-imported the parent's main module (here the
# `liebian` script, hence liebian.cli) and unpickled its config: on a machine kept busy by other
# work that can take longer than uvicorn's default of 5 s, and the replacement is as slow.
HEALTHCHECK_TIMEOUT_S = 30


def serve(
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    healthcheck_timeout: int = HEALTHCHECK_TIMEOUT_S,
) -> None:
    """Serve until stopped; host and port default to the settings.

    The workers learn their number from LIEBIAN_WORKERS (each sizes its PostgreSQL pool by it); on
    PostgreSQL the pools are checked against the server's max_connections before any worker starts.
    """
    os.environ["LIEBIAN_WORKERS"] = str(workers)
    reset_settings_cache()
    settings = get_settings()
    check_pool(settings)
    host = host or settings.host
    port = port or settings.port
    console.print(f"liebian console: [bold]http://{host}:{port}/[/bold]  API docs: http://{host}:{port}/docs")
    uvicorn.run(
        ASGI_APP,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        timeout_worker_healthcheck=healthcheck_timeout,
        ws="none",  # no route speaks WebSocket: each worker skips importing its library (start-up time)
    )


def check_pool(settings: Settings) -> None:
    """On PostgreSQL: say how the connections are shared, or stop with what to change."""
    url = settings.sqlalchemy_url
    if not url.startswith("postgresql"):
        return
    limits = pool.server_limits(url)
    try:
        plan = pool.plan_pool(settings, limits)
    except pool.PoolConfigError as exc:
        refuse_to_start(exc)
    console.print(plan.describe(limits, settings.db_reserved_connections))


def refuse_to_start(exc: pool.PoolConfigError) -> NoReturn:
    """Stop a command whose store connections cannot fit the server, saying what to change."""
    err_console.print(f"[red]cannot start: {exc.message}[/red]")
    raise typer.Exit(2) from exc

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from liebian.config import get_settings
from liebian.output import console

app = typer.Typer()

# uvicorn's supervisor replaces a worker that does not answer its ping within this time. A worker
# answers only once multiprocessing's spawn has re-imported the parent's main module (here the
# `liebian` script, hence liebian.cli) and unpickled its config: on a machine kept busy by other
# work that can take longer than uvicorn's default of 5 s, and the replacement is as slow.
HEALTHCHECK_TIMEOUT_S = 30


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default 8000)."),
    workers: int = typer.Option(1, help="Worker processes (use PostgreSQL for more than one)."),
    healthcheck_timeout: Annotated[
        int, typer.Option(help="Seconds a worker may take to answer the supervisor before it is replaced.")
    ] = HEALTHCHECK_TIMEOUT_S,
) -> None:
    """Serve the HTTP API and the console."""
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    console.print(f"liebian console: [bold]http://{host}:{port}/[/bold]  API docs: http://{host}:{port}/docs")
    uvicorn.run(
        "liebian.web.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        timeout_worker_healthcheck=healthcheck_timeout,
    )

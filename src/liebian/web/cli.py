from __future__ import annotations

from typing import Annotated

import typer

from liebian import serving

app = typer.Typer()


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default 8000)."),
    workers: int = typer.Option(1, help="Worker processes (use PostgreSQL for more than one)."),
    healthcheck_timeout: Annotated[
        int, typer.Option(help="Seconds a worker may take to answer the supervisor before it is replaced.")
    ] = serving.HEALTHCHECK_TIMEOUT_S,
) -> None:
    """Serve the HTTP API and the console."""
    serving.serve(host=host, port=port, workers=workers, healthcheck_timeout=healthcheck_timeout)

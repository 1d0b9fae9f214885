from __future__ import annotations

import typer
import uvicorn

from liebian.config import get_settings
from liebian.output import console

app = typer.Typer()


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default 8000)."),
    workers: int = typer.Option(1, help="Worker processes (use PostgreSQL for more than one)."),
) -> None:
    """Serve the HTTP API and the console."""
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    console.print(f"liebian console: [bold]http://{host}:{port}/[/bold]  API docs: http://{host}:{port}/docs")
    uvicorn.run("liebian.web.asgi:app", host=host, port=port, workers=workers, log_level="info")

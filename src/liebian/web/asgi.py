"""ASGI entry point for uvicorn workers: `uvicorn liebian.web.asgi:app`."""

from liebian.web.app import create_app

app = create_app()

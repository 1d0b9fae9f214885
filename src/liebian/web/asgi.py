"""ASGI entry point for uvicorn workers: `uvicorn liebian.web.asgi:app`."""

import logging

from liebian.web.app import create_app

# liebian's own INFO lines (which worker runs the scheduled jobs, …) beside uvicorn's, on stderr
_log = logging.getLogger("liebian")
if not _log.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)
    _log.propagate = False

app = create_app()

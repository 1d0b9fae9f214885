"""ASGI entry point for uvicorn workers: `uvicorn liebian.web.asgi:app`."""

import gc
import logging

# liebian's own INFO lines (which worker runs the scheduled jobs, …) beside uvicorn's, on stderr
_log = logging.getLogger("liebian")
if not _log.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)
    _log.propagate = False

# Building the app makes ~300 pydantic schemas, 54 mapped tables and 238 routes: some 250,000
# objects that live as long as the worker. The cyclic garbage collector would traverse them again
# and again while they are made (a quarter of the import's CPU time, measured: docs/benchmarks.md)
# and find nothing to free. It is paused meanwhile; once the app is built they are moved to the
# permanent generation (gc.freeze, never traversed again) and the collector resumes; the routers
# loaded just after the start are frozen in turn (web/app.py).
YOUNG_THRESHOLD = 5_000  # net allocations between young collections (CPython's default: 700)
gc.disable()
try:
    from liebian.web.app import create_app  # imported with the collector paused

    app = create_app(freeze_after_start=True)
finally:
    gc.freeze()
    # A request leaves a few thousand short-lived objects: at CPython's default (a young collection
    # every 700 allocations net) each request paid several, and a full collection (20-25 ms once the
    # routers are frozen) came every few seconds: the referral loop's open-loop p99 was 21-52 ms,
    # 10-26 ms at 5,000 (python -m benchmarks referral, issue #23). 20,000 made the young
    # collections themselves long (30 ms).
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.enable()

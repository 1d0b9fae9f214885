"""FastAPI application: the HTTP API under /api/v1 and the console, assembled from the domains."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa_exc

from liebian import __version__, ports
from liebian.auth.bootstrap import ensure_first_admin
from liebian.auth.deps import AuditMiddleware, SecurityHeadersMiddleware, authorize
from liebian.config import get_settings
from liebian.db import migrate, pool
from liebian.db.locks import ProcessLock
from liebian.errors import DomainError, request_lang
from liebian.jobs import Scheduler
from liebian.privacy import logfilter
from liebian.shapes import Open
from liebian.web.apidocs import add_docs_routes
from liebian.web.lazy_routers import LazyRouter, load_all
from liebian.web.limits import InputLimitsMiddleware
from liebian.web.warmstatus import STATIC_DIR, WARM_STATUS

log = logging.getLogger(__name__)

# Each domain's api.py exposes `router`; the order is the order of the OpenAPI document. Each is
# imported when the route table is first read past it (web/lazy_routers.py: start-up time).
ROUTERS = [
    "liebian.ingest.api",
    "liebian.identity.api",
    "liebian.quality.api",
    "liebian.campaigns.api",
    "liebian.campaigns.stage_api",
    "liebian.rewards.api",
    "liebian.rewards.points_api",
    "liebian.fraud.api",
    "liebian.analytics.api",
    "liebian.predict.api",
    "liebian.tags.api",
    "liebian.monitor.api",
    "liebian.community.api",
    "liebian.automation.api",
    "liebian.reports.api",
    "liebian.privacy.api",
    "liebian.auth.api",
    "liebian.web.pages.login",  # the console's login form, beside the JSON login
    "liebian.wecom.api",
    "liebian.costs.api",
    "liebian.decisions.api",
    # console pages (web/pages); a module not written yet is skipped
    "liebian.web.pages.overview",
    "liebian.web.pages.decisions",
    "liebian.web.pages.analytics.funnel",
    "liebian.web.pages.analytics.retention",
    "liebian.web.pages.analytics.referrals",
    "liebian.web.pages.analytics.channels",
    "liebian.web.pages.analytics.scorecard",
    "liebian.web.pages.models.ltv",
    "liebian.web.pages.models.attribution",
    "liebian.web.pages.models.experiments",
    "liebian.web.pages.campaigns",
    "liebian.web.pages.campaign_stages",
    "liebian.web.pages.participants",
    "liebian.web.pages.fraud",
    "liebian.web.pages.alerts",
    "liebian.web.pages.community",
    "liebian.web.pages.reports",
    "liebian.web.pages.journeys",
    "liebian.web.pages.data",
    "liebian.web.pages.settings",
    "liebian.complaints.api",
    "liebian.web.pages.complaints",
    "liebian.web.pages.costs",
    "liebian.analytics.insights_api",
    "liebian.web.pages.insights",
    "liebian.web.pages.rewards",
    "liebian.web.pages.people",
]

# The routers that declare a lifespan (a background flusher): the app starts them at start-up, as it
# would had it included them there (tests/web/test_lazy_routers.py checks the list against ROUTERS).
ROUTER_LIFESPANS = ("liebian.campaigns.api", "liebian.wecom.api")


class Health(Open):
    status: str
    version: str
    pid: int  # the worker process that answered (several serve one port)
    console_warmup: dict


def _include_routers(app: FastAPI) -> dict[str, LazyRouter]:
    routers = {name: LazyRouter(name) for name in ROUTERS}
    for router in routers.values():
        with router.unread():  # included now, imported on first read (web/lazy_routers.py)
            app.include_router(router)
    return routers


class _BackgroundStart:
    """What the server starts once it answers (start-up time: a worker is ready ~0.5 s sooner and
    its first visitors do not share the processor with it): the routers that declare a lifespan
    loaded and their lifespans (the campaign and WeCom outbox flushers) entered on the event loop,
    the scheduler started, every other router loaded (the first visitor does not wait for them), and,
    when asked, the console's default views computed ahead of visitors. Until then a request that
    needs a router waits for it (web/lazy_routers.py) and queued outbox events wait in the store."""

    def __init__(
        self,
        app: FastAPI,
        lifespans: AsyncExitStack,
        scheduler: Scheduler | None,
        warm_console: bool,
    ) -> None:
        self.app = app
        self.routers: dict[str, LazyRouter] = app.state.routers
        self.lifespans = lifespans
        self.scheduler = scheduler
        self.warm_console = warm_console
        self.loop = asyncio.get_running_loop()
        self.stop = threading.Event()
        self.done = threading.Event()  # set once all of it has started (tests wait for it)
        self._stopping = False  # read and set on the event loop only
        self._scheduler_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="app-background-start", daemon=True)

    def _run(self) -> None:
        try:
            for name in ROUTER_LIFESPANS:
                self.routers[name].load()
                self._on_loop(self._enter_lifespan(name))
                if self.stop.is_set():
                    return
            with self._scheduler_lock:
                if self.scheduler is not None and not self.stop.is_set():
                    self.scheduler.start()
            load_all(list(self.routers.values()))
            if self.app.state.freeze_after_start:
                # What the routers built lives as long as the worker: out of the collector's reach,
                # as the app's own objects are (web/asgi.py). Left in, each full collection traversed
                # it again: 80-115 ms pauses, the referral loop's open-loop p99 (issue #23).
                gc.freeze()
            if self.warm_console and not self.stop.is_set():
                # deferred: the console and its pages import the analytics, campaign and tag
                # services (start-up time: the worker answers before they are loaded)
                from liebian.web.console import start_warming
                from liebian.web.pages.warmup import WARMERS

                start_warming(self.stop, WARMERS)
        except Exception:  # a router that cannot be imported: its requests say so when they read it
            log.exception("the server's background start failed")
        finally:
            self.done.set()

    def _on_loop(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run `coroutine` on the app's event loop and wait for it (until the app stops)."""
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:  # the loop is closed: the app stopped meanwhile
            coroutine.close()
            return
        while True:
            try:
                return future.result(timeout=0.5)
            except TimeoutError:
                if self.stop.is_set():
                    future.cancel()
                    return

    async def _enter_lifespan(self, name: str) -> None:
        if not self._stopping:  # on the loop, as is `close`: none is entered once it has run
            await self.lifespans.enter_async_context(self.routers[name].lifespan_context(self.app))

    async def close(self) -> None:
        """At shutdown: nothing more is started (the caller then exits the lifespans entered and
        stops the scheduler)."""
        self._stopping = True
        with self._scheduler_lock:  # a scheduler being started is started before this returns
            self.stop.set()


# One thread for start-up work done beside the main thread's (the first admin).
_BESIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="app-start")


def _ensure_first_admin() -> None:
    # several workers start at once: one creates the first admin at a time
    with ProcessLock("startup"):
        ensure_first_admin()


def _lifespan(run_migrations: bool):
    """The app's start-up and shutdown: wiring, migrations and the first admin before it answers;
    the routers, their lifespans, the scheduler and the warm-up just after (_BackgroundStart)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        first_admin: Future[None] | None = None
        if run_migrations:
            # several workers start at once: one migrates at a time
            with ProcessLock("startup"):
                migrate.ensure_current()  # Alembic only when the store is behind (start-up time)
            if get_settings().bootstrap_admin:
                # beside the wiring's build: the first admin's password hash (Argon2, ~0.25 s) runs
                # in C outside the GIL, on the other core (start-up time of a first start)
                first_admin = _BESIDE.submit(_ensure_first_admin)
        try:
            # the links between the domains: built here, before the worker serves, so that a job or
            # hook that does not exist stops the server at start (the import of the app stays light)
            ports.wire_on_first_use()
            ports.current()
        finally:
            if first_admin is not None:
                first_admin.result()  # its error, if any, stops the start as it did before
        settings = get_settings()
        scheduler = Scheduler()
        app.state.scheduler = scheduler
        warmup = (
            settings.console_warmup if settings.console_warmup is not None else settings.scheduler_enabled
        )
        async with AsyncExitStack() as router_lifespans:
            start = _BackgroundStart(
                app, router_lifespans, scheduler if settings.scheduler_enabled else None, warmup
            )
            app.state.background_start = start
            start.thread.start()
            try:
                yield
            finally:
                await start.close()
        scheduler.stop()  # one never started holds no lock: stopping it is harmless

    return lifespan


def create_app(run_migrations: bool = True, freeze_after_start: bool = False) -> FastAPI:
    """The app. `freeze_after_start`: a server worker's (web/asgi.py), whose objects of the start
    live as long as it does; the routers loaded after the start are frozen too (gc.freeze). Not for
    a process that builds many apps (tests): each freeze would keep its garbage for good."""
    logfilter.install()  # no phone, e-mail or ID-card number in any log line
    # One gate for every route (auth.policy); a body cap for every request.
    app = FastAPI(
        title="liebian 裂变",
        version=__version__,
        lifespan=_lifespan(run_migrations),
        dependencies=[Depends(authorize)],
        max_body_size=get_settings().max_request_bytes,
        docs_url=None,  # FastAPI's own pages load Swagger UI from a CDN: ours (web/apidocs.py) do not
        redoc_url=None,
    )
    app.state.freeze_after_start = freeze_after_start
    app.add_middleware(AuditMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(InputLimitsMiddleware)  # inside the body cap: reads at most max_request_bytes

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the field and the reason, in the shape every liebian error has.
        problems = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "reason": err["msg"]}
            for err in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": "invalid request", "errors": problems})

    async def _store_busy(request: Request, exc: Exception) -> JSONResponse:
        # every pooled connection in use (or the server out of them): 503 and when to retry, never a 500
        busy = pool.unavailable_error(exc)
        if busy is None:
            raise exc
        return await _domain_error(request, busy)

    app.add_exception_handler(sa_exc.TimeoutError, _store_busy)
    app.add_exception_handler(sa_exc.OperationalError, _store_busy)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
        # The one translation of a refused request: status, stable code, field, both languages.
        lang = request_lang(request.headers.get("accept-language"), request.query_params.get("lang"))
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse(status_code=exc.status, content=exc.response_body(lang), headers=headers)

    @app.get("/api/v1/health", tags=["system"], response_model=Health)
    def health() -> dict:

        # pid: which worker process answered (several serve one port);
        # console_warmup: how often the console's default views were computed ahead of visitors
        return {"status": "ok", "version": __version__, "pid": os.getpid(), "console_warmup": WARM_STATUS}

    add_docs_routes(app)  # Swagger UI and ReDoc from static/vendor: /docs works offline
    # The console's own CSS/JS and the vendored htmx and ECharts (no CDN: intranets have no internet).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # After the app's own routes (no router has a path under /docs, /redoc or /static, so the order
    # changes no match): those answer without waiting for the routers to load.
    routers = _include_routers(app)
    app.state.routers = routers  # by module name: which are loaded (tests, the background start)
    _document_validation_errors(app)
    return app


# The refusals any operation may answer with, whatever its own responses: the gate (401 no or bad
# credentials, 403 not allowed, 429 throttled), the input limits (413 body too large, 422 invalid)
# and the domains' errors (400 bad request, 404 unknown id, 409 conflicting state, 503 a feature not
# configured on this server or a store busy).
SHARED_ERRORS = {
    "400": "bad request",
    "401": "not authenticated",
    "403": "not allowed for this principal",
    "404": "not found",
    "409": "conflicts with the current state",
    "413": "request or file too large",
    "422": "invalid input, naming the field and the reason",
    "429": "too many requests",
    "503": "not configured here, or busy: retry later",
}
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {},  # a sentence, or FastAPI's own list of problems
        "code": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "message_en": {"type": "string"},
        "message_zh": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def _document_shared_errors(schema: dict) -> None:
    """Declare SHARED_ERRORS on every operation that does not declare the status itself."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            for status, description in SHARED_ERRORS.items():
                responses.setdefault(status, {"description": description, **ref})


def _hoist_local_definitions(schema: dict) -> None:
    """Move pydantic's local `$defs` (a schema given whole in `openapi_extra`) into
    components/schemas and point their references there: ReDoc resolves only the latter."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for name, definition in node.pop("$defs", {}).items():
                components.setdefault(name, definition)
                walk(definition)
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema.get("paths", {}))


def _document_validation_errors(app: FastAPI) -> None:
    """Make the OpenAPI document describe the 422 body the handler above really sends, and the
    refusals every operation may give (SHARED_ERRORS)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            _document_shared_errors(schema)
            _hoist_local_definitions(schema)
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = {
                    "title": "HTTPValidationError",
                    "type": "object",
                    "required": ["detail"],  # domain errors may name no field
                    "properties": {
                        "detail": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["field", "reason"],
                                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                            },
                        },
                    },
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace the schema

"""Domain routers included in the app by module name and imported when the route table is first
read past them (start-up time).

A domain's api.py declares ~10–40 routes; FastAPI builds each route's pydantic validators when the
module runs, and the module imports its domain's services, schemas and models. Together that is
most of the app's import. A `LazyRouter` takes the router's place in the app's route table at once
and imports the module the first time something reads its routes: a request that the routes before
it did not match, the OpenAPI document (which reads them all), `url_path_for`, a test listing the
route table. So a worker answers /api/v1/health as soon as the app object exists, and the app
behaves as if the routers had been included in order at start: the same routes in the same order,
the same prefixes, dependencies (the auth gate) and OpenAPI document. The server loads them all in a
background thread as soon as it has started (web/app.py's lifespan), so that visitors do not wait
for them either: a request that needs a router not loaded yet waits for that thread.

A module that does not exist (a console page not written yet) leaves its place empty, as the app
always did. A router's lifespan (a background flusher) does not reach the app through a lazy
inclusion: web/app.py starts those routers' lifespans itself (ROUTER_LIFESPANS, checked by a test).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter
from starlette.routing import BaseRoute, Match, Route, get_route_path
from starlette.types import Scope

from liebian.lazy import collector_paused

# One lock for every lazy router: one thread imports at a time, the others wait for it.
_LOCK = threading.RLock()


class LazyRouter(APIRouter):
    """Stands for `module_name`'s `router` in a route table; includes it on first read."""

    def __init__(self, module_name: str) -> None:
        self._table: list[BaseRoute] = []
        self._loaded = False
        self._loader: int | None = threading.get_ident()  # APIRouter's own set-up reads no module
        super().__init__()
        self._loader = None
        self.module_name = module_name
        self.router: APIRouter | None = None  # the module's router, once loaded (None: no module)
        self._prefixes: tuple[str, ...] | None = None  # see `matches`

    @property  # a list attribute in Starlette's Router
    def routes(self) -> list[BaseRoute]:
        if not self._loaded and self._loader != threading.get_ident():
            self.load()
        return self._table

    @routes.setter
    def routes(self, value: list[BaseRoute]) -> None:
        self._table = value

    @property
    def loaded(self) -> bool:
        return self._loaded

    @contextmanager
    def unread(self) -> Iterator[None]:
        """Reading the routes in this thread does not load them meanwhile: FastAPI's include_router
        looks through an included router's routes (for cycles, for empty paths), and the module's
        router is checked the same way when it is included here."""
        with _LOCK:
            self._loader = threading.get_ident()
            try:
                yield
            finally:
                self._loader = None

    def load(self) -> APIRouter | None:
        """Import the module and include its router (once; other threads wait); its router."""
        if self._loaded:
            return self.router
        with _LOCK:
            if self._loaded:
                return self.router
            self._loader = threading.get_ident()  # include_router below reads and appends routes
            try:
                module: Any = None
                try:
                    with collector_paused():  # a domain's modules (liebian/lazy.py; start-up time)
                        module = importlib.import_module(self.module_name)
                except ModuleNotFoundError as exc:
                    if exc.name != self.module_name:
                        raise
                if module is not None:
                    self.include_router(module.router)
                    self.router = module.router
                self._loaded = True
            finally:
                self._loader = None
        return self.router

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FastAPI asks every router in turn, and each tries its routes one by one (twice for the
        one that matches): ~60 route matches for a campaign request (issue #23). A path that starts
        with no route's literal part (before its first parameter) matches none of them."""
        if self._loaded and self._prefixes is None:
            self._prefixes = _literal_prefixes(self.router)
        if self._prefixes and not get_route_path(scope).startswith(self._prefixes):
            return Match.NONE, {}
        return super().matches(scope)

    def __repr__(self) -> str:
        state = "loaded" if self._loaded else "not loaded"
        return f"<LazyRouter {self.module_name} ({state})>"


def _literal_prefixes(router: APIRouter | None) -> tuple[str, ...]:
    """The literal start of each route's path; empty (no filter) unless every route is a plain
    route (no mount, no included router, no low-priority route), whose path its pattern anchors."""
    if router is None or router._low_priority_routes:
        return ()
    prefixes = []
    for route in router.routes:
        if not isinstance(route, Route):  # FastAPI's APIRoute is one
            return ()
        prefixes.append(route.path.split("{", 1)[0])
    return tuple(prefixes)


def load_all(routers: list[LazyRouter]) -> None:
    """Include every router now, in order."""
    for router in routers:
        router.load()

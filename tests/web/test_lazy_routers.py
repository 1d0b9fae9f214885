"""The app includes its domain routers lazily (web/lazy_routers.py, start-up time) and behaves as if
they had been included at start: the same route table and OpenAPI document, the routers' lifespans
(background flushers) run, health answers before any router is imported, and threads that read the
table at once all see all of it."""

from __future__ import annotations

import gc
import importlib
import re
import threading

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from liebian.auth.deps import authorize
from liebian.web import lazy_routers
from liebian.web.app import ROUTER_LIFESPANS, ROUTERS, create_app
from liebian.web.lazy_routers import load_all


def _eager_app() -> FastAPI:
    """The app's routers included the way the app did before they were lazy."""
    eager = FastAPI(title="liebian 裂变", version="x", dependencies=[Depends(authorize)])
    for name in ROUTERS:
        eager.include_router(importlib.import_module(name).router)
    return eager


def _table(app: FastAPI) -> list[tuple]:
    """(methods, path, name, dependency count: the auth gate included) of every route, in order."""
    rows = []
    for rc in iter_route_contexts(app.routes):
        dependant = getattr(rc, "dependant", None)
        count = len(dependant.dependencies) if dependant is not None else None
        rows.append((sorted(rc.methods or ()), rc.path, rc.name, count))
    return rows


def test_the_route_table_and_openapi_are_those_of_routers_included_at_start(data_dir) -> None:
    lazy, eager = create_app(run_migrations=False), _eager_app()
    own = {"/openapi.json", "/api/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/static"}
    lazy_table = [row for row in _table(lazy) if row[1] not in own]
    assert len(lazy_table) > 300
    assert lazy_table == [row for row in _table(eager) if row[1] not in own]
    lazy_paths = get_openapi(title="t", version="1", routes=lazy.routes)["paths"]
    eager_paths = get_openapi(title="t", version="1", routes=eager.routes)["paths"]
    lazy_paths.pop("/api/v1/health")
    assert lazy_paths == eager_paths
    assert set(lazy.openapi()["paths"]) == set(eager_paths) | {"/api/v1/health"}


def test_router_lifespans_lists_every_router_with_a_lifespan() -> None:
    with_lifespan = [
        name
        for name in ROUTERS
        if type(importlib.import_module(name).router.lifespan_context).__name__ != "_DefaultLifespan"
    ]
    assert with_lifespan == list(ROUTER_LIFESPANS)


def test_the_routers_load_after_the_app_is_built_and_their_lifespans_run(data_dir, monkeypatch) -> None:
    started: list[str] = []
    app = create_app(run_migrations=False)
    routers = app.state.routers
    assert list(routers) == ROUTERS and not any(router.loaded for router in routers.values())
    for name in ROUTER_LIFESPANS:  # the flushers those lifespans start, seen starting
        routers[name].load()
        inner = routers[name].lifespan_context

        def spy(a, _inner=inner, _name=name):
            started.append(_name)
            return _inner(a)

        monkeypatch.setattr(routers[name], "lifespan_context", spy)
    with TestClient(app) as client:
        assert client.get("/api/v1/health").json()["status"] == "ok"
        # entered just after the app's start, in the background (web/app.py, start-up time)
        assert app.state.background_start.done.wait(120)
        assert started == list(ROUTER_LIFESPANS)
        # the lifespan loads the others in the background; an unknown path reads the whole table
        # (waiting for that thread), so every router is loaded once it is answered
        assert client.get("/api/v1/no-such-thing").status_code in (401, 404)
        assert all(router.loaded for router in routers.values())


def test_threads_reading_the_table_at_once_all_see_all_of_it(data_dir) -> None:
    app = create_app(run_migrations=False)
    start = threading.Barrier(6)
    counts: list[int] = []

    def read() -> None:
        start.wait()
        counts.append(len(list(iter_route_contexts(app.routes))))

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(counts)) == 1 and counts[0] > 300


def _route_matches(app: FastAPI, path: str, method: str) -> list:
    """How each entry of the app's route table matches a request (FULL, PARTIAL: another method, NONE)."""
    scope = {
        "type": "http",
        "path": path,
        "root_path": "",
        "method": method,
        "headers": [],
        "query_string": b"",
    }
    return [route.matches(dict(scope))[0] for route in app.router.routes]


def test_the_path_prefilter_changes_no_match(data_dir, monkeypatch) -> None:
    # a router skips a path that starts with none of its routes' literal parts (issue #23): every
    # route's path (parameters filled in, with and without a trailing slash, with its own method and
    # another) matches the app's table exactly as it does without the filter
    filtered, unfiltered = create_app(run_migrations=False), create_app(run_migrations=False)
    load_all(list(filtered.state.routers.values()))
    load_all(list(unfiltered.state.routers.values()))
    _route_matches(filtered, "/", "GET")  # each router computes its prefixes on its first match
    monkeypatch.setattr(lazy_routers, "_literal_prefixes", lambda router: ())
    paths = {"/api/v1/no-such-thing", "/", "/api/v1/campaigns/x/conversions", "/api/v1/invites/accept"}
    for rc in iter_route_contexts(filtered.routes):
        path = re.sub(r"\{[^}:]+:path\}", "a/b", rc.path)
        paths.add(re.sub(r"\{[^}]+\}", "x", path))
    assert len(paths) > 250
    for path in sorted(paths):
        for variant in (path, path.rstrip("/") + "/" if path != "/" else path):
            for method in ("GET", "POST"):
                expected = _route_matches(unfiltered, variant, method)
                assert _route_matches(filtered, variant, method) == expected, (variant, method)
    assert any(router._prefixes for router in filtered.state.routers.values())  # the filter was on


def test_a_server_workers_objects_are_out_of_the_collectors_reach_once_its_routers_are_loaded(
    data_dir,
) -> None:
    """A worker's full collections traversed every object its routers built just after the start
    (80-115 ms pauses under load, the referral loop's p99: issue #23); they are frozen once loaded.
    An app built elsewhere (tests build hundreds) freezes nothing: its garbage would stay for good."""
    for freeze in (False, True):
        app = create_app(run_migrations=False, freeze_after_start=freeze)
        try:
            with TestClient(app) as client:
                assert client.get("/api/v1/health").status_code == 200
                assert app.state.background_start.done.wait(120)
                route = app.state.routers[ROUTERS[-1]].routes[0]  # loaded by the background start
                assert any(o is route for o in gc.get_objects()) is not freeze
        finally:
            gc.unfreeze()

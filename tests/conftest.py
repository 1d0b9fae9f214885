"""Shared fixtures: an isolated data directory and operational store per test.

PostgreSQL tests run when LIEBIAN_TEST_POSTGRES_URL is set (CI sets it); each such test gets a
database of its own, copied from one migrated once per session. Without it they skip, saying so.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from liebian import ports
from liebian.bootstrap import bootstrap
from liebian.config import get_settings, reset_settings_cache
from liebian.db import migrate
from liebian.db.session import dispose_engines, session_scope
from shared_helpers import make_api_key, uvicorn_server

PG_URL = os.environ.get("LIEBIAN_TEST_POSTGRES_URL")
ENV_KEYS = (
    "LIEBIAN_DATA_DIR",
    "LIEBIAN_DATABASE_URL",
    "LIEBIAN_WAREHOUSE_PATH",
    "LIEBIAN_ENGINE",
    "LIEBIAN_CONFIG",
)


def _on_postgres(*statements: str) -> None:
    """Run statements on the server's maintenance connection (CREATE/DROP DATABASE run outside a
    transaction)."""
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


def _postgres_url(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the Spark standalone cluster (tests/engine/conftest.py) run last, the rest in
    their order: they stop the process's local Spark session (one SparkContext per JVM), which every
    later Spark test would then start again (a JVM and its warm-up, 10–20 s)."""
    items.sort(key=lambda item: "spark_cluster" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session", autouse=True)
def wiring() -> ports.Wiring:
    """The real links between the domains, installed once for the session (as the app factory, the
    CLI root and the scheduler do), so tests calling services directly run the real system. A test
    swaps in fakes with `ports.use(wiring.with_(...))`."""
    return bootstrap()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data directory (SQLite store + DuckDB warehouse) for one test."""
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LIEBIAN_DATA_DIR", str(tmp_path / "data"))
    # Jobs are run explicitly by the tests that need them, not by a background thread.
    monkeypatch.setenv("LIEBIAN_SCHEDULER_ENABLED", "0")
    # No first admin on server start: tests create the principals they need (admin_headers below).
    monkeypatch.setenv("LIEBIAN_BOOTSTRAP_ADMIN", "0")
    reset_settings_cache()
    dispose_engines()
    yield tmp_path / "data"
    dispose_engines()
    reset_settings_cache()


@pytest.fixture
def allow_private_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local receivers listen on the loopback, which webhooks and notifications refuse by default
    (liebian.urlguard): tests that post to one allow it, as an internal deployment would."""
    monkeypatch.setenv("LIEBIAN_ALLOW_PRIVATE_URLS", "1")
    reset_settings_cache()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated once per session by Alembic; each test starts from a copy of it
    (running every migration for every test cost more than most tests)."""
    path = tmp_path_factory.mktemp("store-template") / "liebian.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    dispose_engines()  # closing the connections checkpoints the WAL into the file
    assert migrate.current_revision(url) == migrate.head_revision()
    dispose_engines()
    return path


def _migrated_sqlite(template: Path) -> None:
    target = Path(get_settings().sqlalchemy_url.removeprefix("sqlite:///"))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per session by Alembic; each test gets a copy of it
    (CREATE DATABASE … TEMPLATE copies files: ~0.3 s, where running the migrations took 2–6 s, for
    each of some 380 PostgreSQL tests)."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need LIEBIAN_TEST_POSTGRES_URL (CI sets it)")
    name = f"lbtemplate_{uuid.uuid4().hex[:12]}"
    _on_postgres(f'CREATE DATABASE "{name}"')
    migrate.upgrade(_postgres_url(name))
    assert migrate.current_revision(_postgres_url(name)) == migrate.head_revision()
    dispose_engines()  # a template database must have no open connection when it is copied
    yield name
    _on_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The operational store, migrated: once on SQLite and once on PostgreSQL."""
    database = None
    if request.param == "postgres":
        template = request.getfixturevalue("postgres_template")
        database = f"t_{uuid.uuid4().hex[:12]}"
        _on_postgres(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        monkeypatch.setenv("LIEBIAN_DATABASE_URL", _postgres_url(database))
        reset_settings_cache()
    else:
        _migrated_sqlite(request.getfixturevalue("sqlite_template"))
    yield request.param
    dispose_engines()
    if database:
        _on_postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def sqlite_store(data_dir: Path, sqlite_template: Path) -> str:
    """The operational store on SQLite only, migrated (for tests that do not touch SQL dialects)."""
    _migrated_sqlite(sqlite_template)
    return "sqlite"


@pytest.fixture
def session(store: str):
    with session_scope() as s:
        yield s


def _migrated_store(request: pytest.FixtureRequest) -> None:
    # Use the store the test already asked for (SQLite or PostgreSQL), else SQLite.
    for name in ("store", "sqlite_store"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            return
    request.getfixturevalue("sqlite_store")


@pytest.fixture
def admin_headers(request: pytest.FixtureRequest, data_dir: Path) -> dict[str, str]:
    """Headers of an admin API key in this test's store (every domain's HTTP tests use them)."""
    _migrated_store(request)
    return {"Authorization": f"Bearer {make_api_key('service', 'admin')}"}


@pytest.fixture
def public_headers(request: pytest.FixtureRequest, data_dir: Path) -> dict[str, str]:
    """Headers of the public write-only front-end key."""
    _migrated_store(request)
    return {"X-API-Key": make_api_key("public", None)}


@pytest.fixture
def live_server(store: str) -> Iterator[str]:
    """The real server (uvicorn in a child process) on a loopback port, against this test's stores."""
    settings = get_settings()
    env = dict(os.environ)
    env["LIEBIAN_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["LIEBIAN_DATABASE_URL"] = settings.database_url
    with uvicorn_server(env) as (_proc, url):
        yield url


DEMO_SPEC_SEED, DEMO_SPEC_PERSONS = 11, 5000


@pytest.fixture(scope="session")
def demo_brand_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5,000-person demo brand built once per test session (about 10–20 s); read-mostly."""
    from liebian.demo.generator import DemoSpec
    from liebian.demo.service import build

    data = tmp_path_factory.mktemp("demo_brand") / "data"
    saved = {key: os.environ.get(key) for key in (*ENV_KEYS, "LIEBIAN_SCHEDULER_ENABLED")}
    for key in saved:
        os.environ.pop(key, None)
    os.environ["LIEBIAN_DATA_DIR"] = str(data)
    os.environ["LIEBIAN_SCHEDULER_ENABLED"] = "0"
    reset_settings_cache()
    dispose_engines()
    try:
        build(DemoSpec(seed=DEMO_SPEC_SEED, persons=DEMO_SPEC_PERSONS))
    finally:
        dispose_engines()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings_cache()
    return data


@pytest.fixture
def demo_brand(demo_brand_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point this test at the session's demo brand (its SQLite store and warehouse)."""
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LIEBIAN_DATA_DIR", str(demo_brand_dir))
    monkeypatch.setenv("LIEBIAN_SCHEDULER_ENABLED", "0")
    reset_settings_cache()
    dispose_engines()
    yield demo_brand_dir
    dispose_engines()
    reset_settings_cache()

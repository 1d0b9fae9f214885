"""A CLI analysis is a new process each time (issue #23): the funnel's compiled SQL is kept on disk
(analytics/compiled.py), so a repeated `liebian analyze funnel` runs it without Ibis or pandas. What
it prints is what the analysis gives in process through Ibis's own execution, on the first call and
on the kept one; a kept SQL serves only its own schema and code, and a broken one is compiled again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmarks.bench_analytics import generate

import liebian
from liebian.analytics import compiled, service
from liebian.analytics.common import Frame
from liebian.engine import warehouse
from shared_helpers import fresh_python

# Libraries a kept analysis must not import (~0.8 s of a command's start-up).
ANALYSIS_LIBRARIES = ("ibis", "pandas", "pyarrow", "numpy")
CASES = {
    "defaults": [],
    "period, channel": ["--start", "2026-01-10", "--end", "2026-02-20", "--channel", "wecom"],
    "breakdown": ["--breakdown", "channel", "--start", "2026-02-01"],
    "steps, window": ["--steps", "exposure,join_campaign,order_paid", "--window-days", "2.5"],
}


@pytest.fixture
def events(data_dir: Path, sqlite_store: str) -> Path:
    """The analytics benchmark's synthetic warehouse, 20,000 events (the product's schema)."""
    with warehouse.connect() as con:
        generate(con, 20_000)
    return data_dir


def _cli(data_dir: Path, args: list[str]) -> tuple[dict[str, Any], list[str]]:
    """`liebian analyze funnel --format json ARGS` in a new interpreter: what it printed, and the
    analysis libraries it imported."""
    script = (
        "import json, sys\nfrom liebian.cli import app\n"
        f"try:\n    app(['analyze', 'funnel', '--format', 'json', *{args!r}])\nexcept SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {ANALYSIS_LIBRARIES!r})))"
    )
    *printed, libraries = fresh_python(script, data_dir)
    return json.loads("\n".join(printed)), json.loads(libraries)


def _in_process(args: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The same funnel in this process, every query built and run by Ibis's own `execute` (no kept
    SQL, here or on disk), as JSON prints it."""
    options = dict(zip(args[::2], args[1::2], strict=True))
    with monkeypatch.context() as m:
        m.setattr(
            Frame, "execute_cached_rows", lambda fr, _key, build: compiled._frame_rows(fr.execute(build()))
        )
        result = service.run_funnel(
            service.make_filters(
                options.get("--start"), options.get("--end"), [options.get("--channel", "")]
            ),
            options.get("--steps"),
            float(options.get("--window-days", 14)),
            options.get("--breakdown"),
        )
    return json.loads(json.dumps(result, ensure_ascii=False))


def _kept_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / compiled.CACHE_DIR).glob("*.json"))


def test_the_cli_prints_what_the_analysis_gives_first_and_when_kept(
    events: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n, (case, args) in enumerate(CASES.items(), 1):
        want = _in_process(args, monkeypatch)
        assert want["steps"] and want["steps"][0]["persons"] > 0, case  # a funnel with people in it
        first, _ = _cli(events, args)
        assert first == want, case
        assert len(_kept_files(events)) == n, case  # one kept SQL per shape
        kept, libraries = _cli(events, args)
        assert kept == want, case
        assert libraries == [], f"{case}: a kept analysis imported {libraries}"
        assert len(_kept_files(events)) == n, case


def _poison(path: Path) -> None:
    """Make the kept SQL in `path` count 1000 more persons at every step (to see whether it runs)."""
    kept = json.loads(path.read_text(encoding="utf-8"))
    kept["sql"] = f"SELECT * REPLACE (persons + 1000 AS persons) FROM ({kept['sql']})"
    path.write_text(json.dumps(kept), encoding="utf-8")


def _persons(result: dict[str, Any]) -> list[int]:
    return [step["persons"] for step in result["steps"]]


def test_a_kept_sql_serves_only_its_schema_and_code(events: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    want = _persons(_in_process([], monkeypatch))
    assert _persons(_cli(events, [])[0]) == want
    [path] = _kept_files(events)
    _poison(path)
    # the kept SQL is what a new process runs (so the checks below see whether it is used)
    assert _persons(_cli(events, [])[0]) == [p + 1000 for p in want]

    # another liebian version: not read, compiled again into a file of its own
    compiled._kept.clear()
    compiled._code.cache_clear()
    try:
        with monkeypatch.context() as m:
            m.setattr(liebian, "__version__", liebian.__version__ + ".post1")
            assert _persons(service.run_funnel(service.make_filters())) == want
    finally:
        compiled._code.cache_clear()
        compiled._kept.clear()
    assert len(_kept_files(events)) == 2

    # another warehouse schema: not read either
    with warehouse.connect() as con:
        con.execute("ALTER TABLE events ADD COLUMN note VARCHAR")
    assert _persons(_cli(events, [])[0]) == want
    assert len(_kept_files(events)) == 3
    assert path.exists()  # left for the schema it was written for (pruned with the oldest)


@pytest.mark.parametrize(
    "broken",
    ["{ not json", json.dumps({"material": "another key", "sql": "SELECT 1"}), "SQL that fails"],
)
def test_a_broken_kept_file_is_compiled_again(
    events: Path, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    want = _in_process([], monkeypatch)
    compiled._kept.clear()
    assert service.run_funnel(service.make_filters()) == want
    [path] = _kept_files(events)
    good = json.loads(path.read_text(encoding="utf-8"))
    if broken == "SQL that fails":
        broken = json.dumps(good | {"sql": "SELECT no_such_column FROM events"})
    path.write_text(broken, encoding="utf-8")
    compiled._kept.clear()  # as in a new process
    assert service.run_funnel(service.make_filters()) == want
    assert json.loads(path.read_text(encoding="utf-8")) == good  # written again


def test_a_key_with_no_stable_text_is_kept_in_the_process_only() -> None:
    assert compiled._disk(("funnel", object())) is None
    a = compiled._disk(("funnel", frozenset(range(50)), frozenset({"b", "a"})))
    b = compiled._disk(("funnel", frozenset(reversed(range(50))), frozenset({"a", "b"})))
    assert a is not None and a == b  # a set's text does not depend on its order

"""Build the demo: generate the brand's files, load them through the real importer, summarise.

The demo lives in `data_dir/demo/`: `files/` (what was imported), `ground_truth.json` and `truth/`
(what was injected), and `loaded.json` (the spec and the import results of the load). Running it
again with the same spec reuses the load; a different spec, or a data directory that already holds
other data, needs `force`, which resets the data directory's warehouse and SQLite store first.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liebian.config import get_settings
from liebian.db import migrate
from liebian.db.session import dispose_engines
from liebian.demo.generator import DemoResult, DemoSpec, generate, load_ground_truth
from liebian.engine import warehouse
from liebian.errors import Conflict

if TYPE_CHECKING:  # the importer itself is imported when the demo loads (see _importer)
    from liebian.ingest.service import ImportResult

# identities first, so OneID merges apply before the events arrive; then events, orders, messages
IMPORTS = (
    ("identities", "identities.csv"),
    ("events", "events.csv"),
    ("events", "events_store_gbk.csv"),
    ("events", "events_wecom_bom.csv"),
    ("orders", "orders.csv"),
    ("messages", "messages.jsonl"),
)
MARKER = "loaded.json"


class DemoError(Conflict, RuntimeError):
    """The demo cannot be built here as asked (the message says what to do)."""

    def __init__(self, message: str):
        super().__init__("conflict", message)


@dataclass
class DemoBuild:
    spec: DemoSpec
    out_dir: Path
    reused: bool
    ground_truth: dict[str, Any]
    imports: list[dict[str, Any]] = field(default_factory=list)
    generation_seconds: float | None = None
    import_seconds: float | None = None


def demo_dir() -> Path:
    return get_settings().data_dir / "demo"


def _importer() -> Callable[..., ImportResult]:
    try:
        from liebian.ingest.service import import_file
    except ModuleNotFoundError as exc:  # pragma: no cover - the importer ships with liebian
        raise DemoError("the importer (liebian.ingest.service) is not available") from exc
    return import_file


def reset() -> None:
    """Remove the demo files, the warehouse and (when it is the default SQLite file) the store."""
    settings = get_settings()
    dispose_engines()
    shutil.rmtree(demo_dir(), ignore_errors=True)
    for path in (settings.warehouse_file, Path(f"{settings.warehouse_file}.wal")):
        path.unlink(missing_ok=True)
    if settings.database_url is None:
        for suffix in ("", "-wal", "-shm"):  # the default store (config.py) and its WAL files
            (settings.data_dir / f"liebian.db{suffix}").unlink(missing_ok=True)


def _warehouse_has_data() -> bool:
    if not warehouse.warehouse_path().exists():
        return False
    with warehouse.connect(read_only=True) as con:
        return any(n for n in warehouse.table_counts(con).values())


def build(
    spec: DemoSpec,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    import_progress: bool = False,
) -> DemoBuild:
    """Generate and load the demo brand into the configured data directory (or reuse it)."""
    out = demo_dir()
    marker = out / MARKER
    if marker.exists() and not force:
        loaded = json.loads(marker.read_text(encoding="utf-8"))
        if loaded["spec"] == spec.as_dict():
            return DemoBuild(spec, out, True, load_ground_truth(out), loaded["imports"])
        raise DemoError(
            f"a demo with a different spec is already loaded in {get_settings().data_dir} "
            f"({loaded['spec']}); pass --force to replace it (this resets that data directory)"
        )
    if force:
        reset()
    elif _warehouse_has_data():
        raise DemoError(
            f"{get_settings().data_dir} already holds data that is not a demo; use another --data-dir "
            "or pass --force to reset it"
        )
    migrate.upgrade()
    result: DemoResult = generate(spec, out, progress)
    import_file = _importer()
    imports = []
    seconds = 0.0
    for kind, name in IMPORTS:
        if progress:
            progress(f"导入 importing {name}")
        res = import_file(out / "files" / name, kind, preset="generic", progress=import_progress)
        row = {
            "file": name,
            "kind": kind,
            **{
                k: getattr(res, k)
                for k in (
                    "batch_id",
                    "rows_read",
                    "rows_loaded",
                    "rows_duplicate",
                    "rows_rejected",
                    "rejects_path",
                    "seconds",
                    "rows_per_second",
                )
            },
        }
        row["reasons"] = dict(getattr(res, "reasons", {}) or {})
        imports.append(row)
        seconds += res.seconds
    marker.write_text(
        json.dumps(
            {"spec": spec.as_dict(), "imports": imports, "generation_seconds": round(result.seconds, 2)},
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    return DemoBuild(
        spec, out, False, result.ground_truth, imports, round(result.seconds, 2), round(seconds, 2)
    )

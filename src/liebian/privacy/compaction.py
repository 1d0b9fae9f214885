"""Erasure beyond the tables: the files liebian writes (Parquet exports, rejects files) and the bytes
the stores keep after a DELETE or UPDATE.

A row deleted or updated in DuckDB or SQLite stays in the file's freed blocks until they are reused;
an erasure therefore ends by compacting both stores:

- DuckDB: `CHECKPOINT` (even `FORCE CHECKPOINT` and `VACUUM`) leaves the old values in freed blocks
  (tests/security/test_erasure_bytes.py shows it), so the warehouse is rewritten: `COPY FROM
  DATABASE` into a fresh file, which then replaces the old one (`compact_warehouse`).
- SQLite: `VACUUM` rewrites the file; the write-ahead log, which holds page images, is checkpointed
  and truncated before and after.
- PostgreSQL: `VACUUM FULL` of the tables the erasure changed rewrites them without the dead
  tuples (it locks each table while it is rewritten). WAL segments and base backups still hold
  the old rows until they age out: that is the operator's retention of backups.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from liebian.config import get_settings
from liebian.db.session import get_engine
from liebian.engine import warehouse
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

ERASED = "[erased]"
# Folders of the data directory that are not liebian's output: the demo's generated inputs and
# answer key, fitted models (person ids only). Files at the top are the stores, keys and locks.
SKIPPED_DIRS = ("demo", "models")


def data_files(root: Path | None = None, include_demo: bool = False) -> Iterator[Path]:
    """The files liebian wrote into the data directory that may hold rows: Parquet exports,
    rejects and other CSV files, spreadsheets, temporary import files."""
    root = Path(root or get_settings().data_dir)
    if not root.exists():
        return
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root)
        if rel.parts[0] in SKIPPED_DIRS and not (include_demo and rel.parts[0] == "demo"):
            continue
        if len(rel.parts) == 1:  # the stores, the key file, locks: output goes into folders
            continue
        yield path


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _varchar_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [
        name
        for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        if kind == "VARCHAR"
    ]


def _erase_parquet(con: duckdb.DuckDBPyConnection, path: Path, values: list[str]) -> int:
    """Rewrite a Parquet file without the values; rows changed. A file named after a warehouse
    table of the export directory is exported again from the (already erased) table."""
    source = f"read_parquet({_q(str(path))})"
    cols = _varchar_columns(con, source)
    if not cols:
        return 0
    hit = " OR ".join(f'contains("{c}", ?)' for c in cols for _ in values)
    params = [v for _ in cols for v in values]
    changed = int(con.execute(f"SELECT count(*) FROM {source} WHERE {hit}", params).fetchall()[0][0])
    if not changed:
        return 0
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    tmp = path.with_name(path.name + ".erasing")
    if path.parent == get_settings().data_dir / "parquet" and path.stem in tables:
        con.execute(f'COPY "{path.stem}" TO {_q(str(tmp))} (FORMAT parquet)')
    else:
        replaced = []
        for c in cols:
            expr = f'"{c}"'
            for v in values:
                expr = f"replace({expr}, {_q(v)}, {_q(ERASED)})"
            replaced.append(f'{expr} AS "{c}"')
        con.execute(
            f"COPY (SELECT * REPLACE ({', '.join(replaced)}) FROM {source}) TO {_q(str(tmp))} (FORMAT parquet)"
        )
    os.replace(tmp, path)
    return changed


def _erase_csv(path: Path, values: list[str]) -> int:
    """Drop the rows of a CSV file (rejects: one raw input row each) that carry a value."""
    raw = path.read_bytes()
    if not any(v.encode() in raw for v in values):
        return 0
    encoding = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8"
    with path.open(encoding=encoding, newline="", errors="replace") as fh:
        rows = list(csv.reader(fh))
    kept = [r for r in rows if not any(v in cell for cell in r for v in values)]
    tmp = path.with_name(path.name + ".erasing")
    with tmp.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(kept)
    os.replace(tmp, path)
    return len(rows) - len(kept)


def erase_in_files(con: duckdb.DuckDBPyConnection, values: list[str]) -> dict[str, int]:
    """Remove the values from every data file (`data_files`): Parquet rewritten, CSV rows dropped;
    another file that still holds one is deleted. Rows (or files) changed per path."""
    root = get_settings().data_dir
    out: dict[str, int] = {}
    values = [v for v in values if v]
    if not values:
        return out
    for path in data_files(root):
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            n = _erase_parquet(con, path, values)
        elif suffix == ".csv":
            n = _erase_csv(path, values)
        elif any(v.encode() in path.read_bytes() for v in values):
            path.unlink()
            n = 1
        else:
            n = 0
        if n:
            out[str(path.relative_to(root))] = n
    return out


def file_traces(values: Iterable[str]) -> dict[str, int]:
    """Data files whose bytes (Parquet: decoded columns) still contain one of the values."""
    values = [v for v in values if v]
    found: dict[str, int] = {}
    root = get_settings().data_dir
    con = duckdb.connect()
    try:
        for path in data_files(root):
            if path.suffix.lower() == ".parquet":
                source = f"read_parquet({_q(str(path))})"
                cols = _varchar_columns(con, source)
                if not cols or not values:
                    continue
                hit = " OR ".join(f'contains("{c}", ?)' for c in cols for _ in values)
                n = int(
                    con.execute(
                        f"SELECT count(*) FROM {source} WHERE {hit}", [v for _ in cols for v in values]
                    ).fetchall()[0][0]
                )
            else:
                raw = path.read_bytes()
                n = sum(raw.count(v.encode()) for v in values)
            if n:
                found[str(path.relative_to(root))] = n
    finally:
        con.close()
    return found


# ---------------------------------------------------------------- compaction


def compact_warehouse(path: Path | None = None) -> int:
    """Rewrite the warehouse into a fresh file (no freed block keeps an erased value); its size."""
    path = Path(path or warehouse.warehouse_path())
    fresh = path.with_name(path.name + ".compacting")
    fresh.unlink(missing_ok=True)
    with warehouse.WRITE_LOCK:
        with warehouse.connect(path=path) as con:
            name = con.execute("SELECT current_database()").fetchall()[0][0]
            con.execute(f"ATTACH {_q(str(fresh))} AS liebian_compacted")
            try:
                con.execute(f'COPY FROM DATABASE "{name}" TO liebian_compacted')
            finally:
                con.execute("DETACH liebian_compacted")
        path.with_name(path.name + ".wal").unlink(missing_ok=True)  # checkpointed on close
        os.replace(fresh, path)
    return path.stat().st_size


_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def compact_store(tables: Iterable[str] = ()) -> str:
    """Give the store's freed pages back: SQLite `VACUUM` (and its WAL truncated), PostgreSQL
    `VACUUM FULL` of `tables`. Run after the erasure's transaction committed."""
    engine = get_engine()
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "sqlite":
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return "sqlite: VACUUM"
        names = sorted({t for t in tables if _TABLE_NAME.match(t)})
        for name in names:
            conn.execute(text(f'VACUUM FULL "{name}"'))
        return f"{engine.dialect.name}: VACUUM FULL {', '.join(names)}"

"""The event store: one partitioned Parquet dataset that DuckDB and Spark both read.

Layout under the root (`LIEBIAN_EVENT_STORE`, a path or a file://, s3a:// or hdfs:// URL):
`<table>/day=YYYY-MM-DD/<uuid>-<n>.parquet` for events, orders, messages and referral_edges (by
the day of `ts`, UTC), `<table>/<uuid>-<n>.parquet` for identity_map and members, and
`_manifest/000123.json`, the versioned manifest listing the committed batches and every live
file. Readers take the highest manifest that parses and read exactly its files, so files written
by a writer that died before publishing are never seen.

The warehouse (DuckDB) stays the writers' database and the embedded engine's cache; `commit`,
called once at each warehouse commit point, makes the store equal to it. Per table and day it
compares a fingerprint (row count, sum of row hashes) of the warehouse with the manifest's: a day
that differs by exactly the batch's rows gets a new file of those rows (the normal append); any
other difference (an identity merge, an erasure, an order's new status, a batch committed to the
warehouse by a writer killed before it published) rewrites the day's files from the warehouse.
A commit writes its files first, then publishes a new manifest by an atomic rename, then removes
the files the new manifest dropped. One writer at a time: `commit` runs inside a warehouse
connection, whose file lock serialises writers across processes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liebian.config import get_settings
from liebian.engine import warehouse
from liebian.errors import Invalid
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import pyarrow.fs as pafs
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    pafs = lazy_import("pyarrow.fs")

log = logging.getLogger(__name__)

DAY_TABLES = ("events", "orders", "messages", "referral_edges")  # partitioned by the day of ts
LOADED_TABLES = ("events", "orders", "messages")  # carry ingested_at: rows loaded since can be appended
# The big tables: a batch's commit fingerprints only the days its rows went to, since their other
# days change only by merges (a new applied_merges id makes the commit full), erasure and retention
# (which commit with no batch id: in full).
SCOPED_TABLES = ("events", "messages")
MANIFEST_DIR = "_manifest"
STAGING_DIR = "_staging"
MANIFEST_NAME = re.compile(r"^(\d{6,})\.json$")
KEEP_MANIFESTS = 10  # older manifests go; readers of an older one are long done
MAX_GROUPS_PER_DAY = 32  # more small appends than this to one day: rewrite the day as one file
KEEP_BATCH_IDS = 1000  # the manifest lists the latest committed batches (the rest are in the warehouse)
SCHEMES = ("file", "s3a", "s3", "hdfs")
HASH_MOD = 2**64
NO_DAY = "none"  # the partition of a row without ts, and of the schema file of an empty table
# A writer stops here (sleeps) when LIEBIAN_EVENT_STORE_STOP_AT names the point: the killed-import
# tests SIGKILL it there.
STOP_POINTS = ("files_written", "manifest_written", "published")


@dataclass(frozen=True)
class Location:
    """Where the store lives: the URL readers are given, the filesystem and path writers use."""

    url: str
    fs: Any  # pyarrow.fs.FileSystem
    base: str
    local: Path | None

    def reader_url(self, rel: str) -> str:
        return f"{self.url.rstrip('/')}/{rel}"

    def path(self, rel: str) -> str:
        return f"{self.base.rstrip('/')}/{rel}"


def configured() -> str | None:
    return get_settings().event_store or None


def location(url: str | None = None) -> Location:
    """Parse the store's path or URL (raises Invalid naming LIEBIAN_EVENT_STORE for anything else)."""
    url = url or configured()
    if not url:
        raise Invalid(
            "event_store", "LIEBIAN_EVENT_STORE is not set: the event store is off", field="event_store"
        )
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme and scheme not in SCHEMES:
        raise Invalid(
            "event_store",
            f"LIEBIAN_EVENT_STORE: unsupported scheme {scheme!r}; use a path or {', '.join(SCHEMES)}",
            field="event_store",
        )
    if scheme in ("", "file"):
        local = Path(url[len("file://") :] if scheme else url).expanduser().resolve()
        reader = f"file://{local}" if scheme else str(local)
        return Location(reader, pafs.LocalFileSystem(), str(local), local)
    # pyarrow knows s3:// (Spark's s3a:// is the same store); readers keep the URL as given.
    fs, base = pafs.FileSystem.from_uri("s3://" + url.split("://", 1)[1] if scheme == "s3a" else url)
    return Location(url, fs, base, None)


# ---------------------------------------------------------------------------------------- reading


def read_manifest(loc: Location) -> dict:
    """The highest complete manifest (an empty one before the first commit)."""
    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path(MANIFEST_DIR), allow_not_found=True))
    except FileNotFoundError:
        infos = []
    versions = sorted(
        (int(m.group(1)) for info in infos if (m := MANIFEST_NAME.match(info.base_name))), reverse=True
    )
    for version in versions:
        try:
            with loc.fs.open_input_stream(loc.path(f"{MANIFEST_DIR}/{version:06d}.json")) as f:
                manifest = json.loads(f.read())
        except (OSError, ValueError):  # unreadable: fall back to the one before
            continue
        if manifest.get("version") == version:
            return manifest
    return {"version": 0, "batches": [], "tables": {}}


def table_files(manifest: dict, table: str) -> list[str]:
    return [rel for group in manifest["tables"].get(table, []) for rel in group["files"]]


def snapshot(url: str | None = None) -> dict[str, list[str]]:
    """The reader URLs of every table's files in the latest manifest (tables without files left out)."""
    loc = location(url)
    manifest = read_manifest(loc)
    out = {}
    for table in warehouse.TABLES:
        files = table_files(manifest, table)
        if files:
            out[table] = [loc.reader_url(rel) for rel in files]
    return out


def duckdb_source(table: str, files: list[str]) -> str:
    """The SQL that reads a table of the store in DuckDB (without the partition column `day`)."""
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    if table in DAY_TABLES:
        return f"SELECT * EXCLUDE (day) FROM read_parquet([{listed}], hive_partitioning = true)"
    return f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false)"


def attach_views(con: duckdb.DuckDBPyConnection, url: str | None = None) -> dict[str, list[str]]:
    """Create a view per store table in `con` (in-memory DuckDB reading the store)."""
    files = snapshot(url)
    for table, urls in files.items():
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {duckdb_source(table, urls)}")
    return files


@contextmanager
def duckdb_reader(url: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        attach_views(con, url)
        yield con
    finally:
        con.close()


# ---------------------------------------------------------------------------------------- writing


def _part_sql(table: str) -> str:
    if table in DAY_TABLES:
        return f"coalesce(strftime(CAST(t.ts AS DATE), '%Y-%m-%d'), '{NO_DAY}')"
    return "''"


def _since(watermark: str | None) -> tuple[str, list]:
    """The rows loaded after `watermark` (every row when there is none yet)."""
    return ("t.ingested_at > CAST(? AS TIMESTAMP)", [watermark]) if watermark else ("TRUE", [])


def _day_range(day: str) -> str:
    if day == NO_DAY:
        return "t.ts IS NULL"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day), day  # written by _part_sql: never user input
    return f"(t.ts >= TIMESTAMP '{day}' AND t.ts < TIMESTAMP '{day}' + INTERVAL 1 DAY)"


def _days_where(days: list[str]) -> str:
    """The rows of those days, as ranges of ts, which DuckDB prunes by its row groups' min/max."""
    return " OR ".join(["FALSE"] + [_day_range(d) for d in days])


def _fingerprints(
    con: duckdb.DuckDBPyConnection, table: str, new_since: str | None = None, days: list[str] | None = None
) -> tuple[dict[str, tuple[int, int]], str | None]:
    """{day: (rows, sum of row hashes mod 2^64)} of the warehouse table, or of its rows loaded
    after `new_since`, or of `days` only, when given; and the latest ingested_at among them."""
    loaded = table in LOADED_TABLES
    where, params = _since(new_since) if new_since is not None else ("TRUE", [])
    if days is not None:
        where, params = _days_where(days), []
    rows = con.execute(
        f"SELECT {_part_sql(table)} AS part, count(*), CAST(sum(hash(t)) % {HASH_MOD} AS UBIGINT), "
        f"{'max(t.ingested_at)' if loaded else 'NULL'} FROM {table} t WHERE {where} GROUP BY part",
        params,
    ).fetchall()
    latest = max((r[3] for r in rows if r[3] is not None), default=None)
    return {part: (n, int(fp)) for part, n, fp, _ in rows}, latest.isoformat() if latest else None


def _stored(groups: list[dict]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for g in groups:
        n, fp = out.get(g["part"], (0, 0))
        out[g["part"]] = (n + g["rows"], (fp + g["fp"]) % HASH_MOD)
    return out


def _stop_at(point: str) -> None:
    """Test hook: stop the writer at a named point (the test SIGKILLs it there)."""
    if os.environ.get("LIEBIAN_EVENT_STORE_STOP_AT") == point:
        marker = os.environ.get("LIEBIAN_EVENT_STORE_STOP_MARKER")
        if marker:
            Path(marker).write_text(point)
        while True:
            time.sleep(60)


class _Writer:
    """One commit: stage files with DuckDB, move them into place, publish the manifest."""

    def __init__(self, con: duckdb.DuckDBPyConnection, loc: Location):
        self.con = con
        self.loc = loc
        self.token = uuid.uuid4().hex[:12]
        if loc.local is not None:  # same filesystem as the store: moving into place is a rename
            self.staging = loc.local / STAGING_DIR / self.token
        else:
            self.staging = get_settings().data_dir / "tmp" / f"eventstore-{self.token}"
        self.written: list[str] = []

    def _copy(self, select: str, params: list, out: Path, by_day: bool) -> list[tuple[str, Path]]:
        """COPY the rows to staging; (day, file) per file written."""
        out.parent.mkdir(parents=True, exist_ok=True)
        if by_day:
            self.con.execute(
                f"COPY ({select}) TO '{out}' (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE)",
                params,
            )
            return sorted((p.parent.name.split("=", 1)[1], p) for p in out.rglob("*.parquet"))
        self.con.execute(f"COPY ({select}) TO '{out}.parquet' (FORMAT parquet)", params)
        return [("", Path(f"{out}.parquet"))]

    def write(
        self,
        table: str,
        days: list[str],
        wanted: dict[str, tuple[int, int]],
        batch_id: str | None = None,
        new_since: str | None = None,
    ) -> list[dict]:
        """Write the rows of `days` (only those loaded after `new_since`, when given) as a new
        group of files per day; a table without days is written whole, as one file."""
        by_day = table in DAY_TABLES
        if by_day and not days:
            return []
        if by_day:
            where, params = _since(new_since) if new_since is not None else ("TRUE", [])
            select = f"SELECT t.*, {_part_sql(table)} AS day FROM {table} t WHERE ({_days_where(days)}) AND {where}"
        else:
            select, params = f"SELECT * FROM {table}", []
        name = f"{table}-{'rewrite' if new_since is None else 'append'}"
        staged = self._copy(select, params, self.staging / name, by_day)
        return self.place_groups(table, staged, wanted, batch_id, by_day)

    def place_groups(
        self,
        table: str,
        staged: Iterable[tuple[str, Path]],
        wanted: dict[str, tuple[int, int]],
        batch_id: str | None,
        by_day: bool,
    ) -> list[dict]:
        """Place staged files (day, path) under the table's folder, grouped per day with the day's
        row count and fingerprint from `wanted`: the manifest's groups."""
        groups: dict[str, dict] = {}
        for day, path in staged:
            n = len(self.written)
            rel = (
                f"{table}/day={day}/{self.token}-{n}.parquet"
                if by_day
                else f"{table}/{self.token}-{n}.parquet"
            )
            self._place(path, rel)
            rows, fp = wanted.get(day, (0, 0))
            groups.setdefault(day, {"part": day, "files": [], "rows": rows, "fp": fp, "batch": batch_id})
            groups[day]["files"].append(rel)
        return list(groups.values())

    def schema_file(self, table: str) -> dict:
        """A file of no rows, so that readers know the columns of an empty table."""
        out = self.staging / f"{table}-schema.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.con.execute(f"COPY (SELECT * FROM {table} LIMIT 0) TO '{out}' (FORMAT parquet)")
        rel = f"{table}/day={NO_DAY}/{self.token}-schema.parquet"
        self._place(out, rel)
        return {"part": NO_DAY, "files": [rel], "rows": 0, "fp": 0, "batch": None}

    def _place(self, staged: Path, rel: str) -> None:
        target = self.loc.path(rel)
        self.loc.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        if self.loc.local is not None:
            os.replace(staged, target)
        else:
            pafs.copy_files(
                str(staged),
                target,
                source_filesystem=pafs.LocalFileSystem(),
                destination_filesystem=self.loc.fs,
            )
        self.written.append(rel)

    def publish(self, manifest: dict) -> None:
        """Write the manifest under a temporary name, then rename it to its version's name."""
        version = manifest["version"]
        self.loc.fs.create_dir(self.loc.path(MANIFEST_DIR), recursive=True)
        tmp = self.loc.path(f"{MANIFEST_DIR}/.{version:06d}-{self.token}.tmp")
        with self.loc.fs.open_output_stream(tmp) as f:
            f.write(json.dumps(manifest, separators=(",", ":")).encode())
        _stop_at("manifest_written")
        self.loc.fs.move(tmp, self.loc.path(f"{MANIFEST_DIR}/{version:06d}.json"))

    def cleanup(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _delete(loc: Location, rels: list[str]) -> None:
    for rel in rels:
        with suppress(FileNotFoundError):
            loc.fs.delete_file(loc.path(rel))


def _prune_manifests(loc: Location, current: int) -> None:
    infos = loc.fs.get_file_info(pafs.FileSelector(loc.path(MANIFEST_DIR)))
    for info in infos:
        m = MANIFEST_NAME.match(info.base_name)
        # a .tmp one is a dead writer's: the one writer has published its own already
        if (m and int(m.group(1)) <= current - KEEP_MANIFESTS) or info.base_name.endswith(".tmp"):
            loc.fs.delete_file(info.path)


def _sweep_orphans(loc: Location, manifest: dict) -> None:
    """After a writer died mid-commit: remove data files no manifest lists (local stores)."""
    assert loc.local is not None
    live = {rel for table in manifest["tables"] for rel in table_files(manifest, table)}
    for table in warehouse.TABLES:
        for path in (loc.local / table).rglob("*.parquet"):
            if str(path.relative_to(loc.local)) not in live:
                path.unlink(missing_ok=True)


def commit(con: duckdb.DuckDBPyConnection, batch_id: str | None = None) -> dict | None:
    """Make the store equal to the warehouse after a commit to it; None when the store is off.

    Called with the warehouse connection that committed (so within its file lock); `batch_id` is
    the batch just committed (its rows are appended), or None after merges, erasure and other
    rewrites. A batch the manifest already lists is not written again. Never raises: the
    warehouse has committed already, and the next commit catches the store up.
    """
    if not configured():
        return None
    try:
        return publish(con, batch_id)
    except Exception:
        log.exception("event store: committing batch %s failed; the next commit catches up", batch_id)
        return None


def publish(con: duckdb.DuckDBPyConnection, batch_id: str | None = None) -> dict:
    """`commit` that raises (`liebian analyze sync-store`): {version, appended, rewritten} days."""
    loc = location()
    manifest = read_manifest(loc)
    if batch_id is not None and batch_id in manifest["batches"]:
        return {"version": manifest["version"], "appended": 0, "rewritten": 0}
    if loc.local is not None and any((loc.local / STAGING_DIR).glob("*")):
        _sweep_orphans(loc, manifest)  # a writer died mid-commit: its files are garbage
        shutil.rmtree(loc.local / STAGING_DIR, ignore_errors=True)
    merges = con.execute("SELECT coalesce(max(merge_id), 0) FROM applied_merges").fetchall()[0][0]
    full = batch_id is None or merges != manifest.get("merges", 0) or not manifest["version"]
    writer = _Writer(con, loc)
    tables: dict[str, list[dict]] = {}
    dropped: list[str] = []
    watermarks: dict[str, str | None] = {}
    appended = rewritten = 0
    try:
        writer.staging.mkdir(parents=True)
        for table in warehouse.TABLES:
            groups = list(manifest["tables"].get(table, []))
            have = _stored(groups)
            # rows loaded since the last commit (this batch, and any a killed writer left unpublished)
            since = manifest.get("watermarks", {}).get(table) or ""
            batch, latest = _fingerprints(con, table, since) if table in LOADED_TABLES else ({}, None)
            if full or table not in SCOPED_TABLES:
                want, watermarks[table] = _fingerprints(con, table)
            else:  # only the days the new rows went to can differ (see SCOPED_TABLES)
                want = {**have, **_fingerprints(con, table, days=sorted(batch))[0]}
                watermarks[table] = latest or since or None
            appends, rewrites = [], []
            for part in sorted(set(have) | set(want)):
                now, then = want.get(part, (0, 0)), have.get(part, (0, 0))
                if now == then:
                    continue
                added = batch.get(part)
                crowded = sum(g["part"] == part for g in groups) >= MAX_GROUPS_PER_DAY
                if added and not crowded and (then[0] + added[0], (then[1] + added[1]) % HASH_MOD) == now:
                    appends.append(part)
                else:
                    rewrites.append(part)
            if rewrites:
                dropped += [rel for g in groups if g["part"] in rewrites for rel in g["files"]]
                groups = [g for g in groups if g["part"] not in rewrites]
            if table not in DAY_TABLES:
                if rewrites or not groups:
                    groups = writer.write(table, [], want, batch_id)
            else:
                groups += writer.write(table, appends, batch, batch_id, since)
                groups += writer.write(table, [p for p in rewrites if p in want], want, batch_id)
            if any(g["rows"] for g in groups):  # the schema file of an empty table is no longer needed
                dropped += [rel for g in groups if not g["rows"] for rel in g["files"]]
                groups = [g for g in groups if g["rows"]]
            elif not groups:
                groups = [writer.schema_file(table)]
            appended += len(appends)
            rewritten += len(rewrites)
            tables[table] = groups
        _stop_at("files_written")
        if not writer.written and not dropped and manifest["version"]:
            writer.cleanup()
            return {"version": manifest["version"], "appended": 0, "rewritten": 0}
        batches = manifest["batches"] + ([batch_id] if batch_id is not None else [])
        new = {
            "version": manifest["version"] + 1,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "batches": batches[-KEEP_BATCH_IDS:],
            "watermarks": watermarks,
            "merges": merges,
            "tables": tables,
        }
        writer.publish(new)
    except BaseException:
        writer.cleanup()
        raise
    _stop_at("published")
    _delete(loc, dropped)  # after publishing: the new manifest no longer lists them
    _prune_manifests(loc, new["version"])
    writer.cleanup()  # last: a staging folder left behind marks a writer that died mid-commit
    return {"version": new["version"], "appended": appended, "rewritten": rewritten}

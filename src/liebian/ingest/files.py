"""Read an export file into a DuckDB table of text columns plus `_line`, whatever its format.

CSV goes straight through DuckDB's parallel reader (GBK/GB18030 files are first transcoded to a
temporary UTF-8 file: DuckDB reads only UTF-8 offline). XLSX is read with python-calamine, JSONL
line by line (so a broken line is reported by number), Parquet by DuckDB.

A CSV file can be normalised in the same pass (`read_into(transform=...)`): DuckDB then keeps only
the normalised rows, never a table of the file's raw text (at 10M rows that copy alone outgrew the
import's memory bound and spilled to disk).

Line numbers are what a user sees in an editor: for CSV and XLSX the header is line 1 and the
first data row line 2; for JSONL the physical line; for Parquet the 1-based row number.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import mmap
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from liebian.config import get_settings
from liebian.errors import Invalid
from liebian.ingest.normalize import ident, q
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    pa = lazy_import("pyarrow")

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
CHUNK = 16 * 1024 * 1024
RAW_LIMIT = 2000  # characters of a broken line kept in the rejects


class FileImportError(Invalid):
    """The file cannot be read at all (missing, unknown format or encoding, no header…)."""

    def __init__(self, message: str):
        super().__init__("invalid", message, field="file")


class FileTooLarge(FileImportError):
    """The file exceeds an import limit (uncompressed size, rows): 413, naming the limit."""

    def __init__(self, message: str):
        Invalid.__init__(self, "file_too_large", message, 413, field="file")


def check_archive(path: Path, limit: int | None = None) -> None:
    """Refuse an XLSX workbook (a zip archive) whose content would expand beyond `limit` bytes
    (setting `max_import_uncompressed_bytes`) before anything parses it: first the sizes its
    directory declares, then the bytes really inflated (a directory may lie; the CRC then fails)."""
    limit = limit or get_settings().max_import_uncompressed_bytes
    if not zipfile.is_zipfile(path):
        return  # a legacy .xls is no archive: its size is its content
    too_large = f"{path.name}: the workbook expands to more than {limit // (1024 * 1024)} MB"
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > limit:
                raise FileTooLarge(too_large + " (its directory says so)")
            inflated = 0
            for member in members:
                with archive.open(member) as fh:
                    while chunk := fh.read(1024 * 1024):
                        inflated += len(chunk)
                        if inflated > limit:
                            raise FileTooLarge(too_large)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as exc:
        # ValueError/NotImplementedError: encrypted members or unknown compression methods
        raise FileImportError(f"{path.name}: not a readable Excel workbook: {exc}") from exc


def check_rows(path: Path, rows: int) -> None:
    limit = get_settings().max_import_rows
    if rows > limit:
        raise FileTooLarge(f"{path.name}: more than {limit} rows (max_import_rows); split the file")


@dataclass
class RawFile:
    """What a reader produced: the temp table `raw`, its headers and the rows it could not parse."""

    format: str
    encoding: str | None
    headers: list[str]
    rows_read: int
    # (line, field, reason, raw text) of records the reader itself could not parse
    parse_rejects: list[tuple[int, str, str, str]] = field(default_factory=list)
    # True when `raw` already holds the rows the `transform` of read_into() made of the file
    normalised: bool = False
    # records whose key the warehouse already stores (`KnownKeys`): counted, never normalised;
    # None when the reader did not look (then the pipeline's own anti-join with the warehouse does)
    known: int | None = None


@dataclass
class KnownKeys:
    """Re-imports: recognise the records whose key is already stored before anything normalises
    or validates them (they were validated when first stored).

    `key(headers)` is a SELECT over the view `raw` (the file's columns as text) giving one column
    `k`, each record's key exactly as it is stored, in file order; `stored` is a relation with a
    column `k` of the stored keys. A first pass reads only the keys and anti-joins them with the
    stored ones; the records found are counted in `RawFile.known` and the transform never sees
    them. The transform's `_line` then carries each record's number from the first pass (a
    positional join of the file with the first pass's flags), so the lines stay the file's.
    """

    key: Callable[[list[str]], str]
    stored: str
    column: str  # the transform's output column holding the key (checked against the first pass)


# headers -> a SELECT over the view `raw` (the file's columns as text, `_line` still NULL), whose
# result must start with `_line`, which the reader then fills in; and a one-row SELECT of columns
# with one value in every row (or None), which `raw` adds as literals instead of storing them
Transform = Callable[[list[str]], tuple[str, str | None]]


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FileImportError(
            f"{path.name}: unknown file type {path.suffix!r}; expected one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def detect_encoding(path: Path) -> str:
    """utf-8, utf-8-sig or gb18030 (a superset of GBK); anything else is an error."""
    with path.open("rb") as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise FileImportError(f"{path.name}: UTF-16 text is not supported; save the file as UTF-8 or GBK")
        else:
            encoding = "utf-8"
        if _decodes(path, encoding):
            return encoding
    if _decodes(path, "gb18030"):
        return "gb18030"
    raise FileImportError(
        f"{path.name}: the file is neither UTF-8 (with or without BOM) nor GBK/GB18030 text; "
        "re-export it in one of those encodings"
    )


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(CHUNK):
                if b"\x00" in chunk:
                    return False  # binary data or UTF-16 without BOM
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _transcode(path: Path, encoding: str, target: Path) -> None:
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(CHUNK):
            dst.write(decoder.decode(chunk))
        dst.write(decoder.decode(b"", final=True))


@contextlib.contextmanager
def read_into(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    workdir: Path,
    transform: Transform | None = None,
    known: KnownKeys | None = None,
) -> Iterator[RawFile]:
    """Create the temp relation `raw` on `con` from `path`; temporary files live in `workdir`.

    With `transform`, a CSV file's rows go through it while they are read (one pass, and only its
    result is kept): `raw` then holds the transformed rows with their `_line`, and
    `RawFile.normalised` is true. With `known` as well, a CSV file's records already stored are
    left out before the transform (`KnownKeys`). Other formats ignore `transform` and `known`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileImportError(f"{path}: no such file")
    fmt = detect_format(path)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="import-") as tmp:
        if fmt == "csv":
            raw_file = _read_csv(con, path, Path(tmp), transform, known if transform else None)
        elif fmt == "xlsx":
            raw_file = _read_xlsx(con, path)
        elif fmt == "jsonl":
            raw_file = _read_jsonl(con, path)
        else:
            raw_file = _read_parquet(con, path)
        check_rows(path, raw_file.rows_read)
        yield raw_file


def _read_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    tmp: Path,
    transform: Transform | None = None,
    known: KnownKeys | None = None,
) -> RawFile:
    # Decoding a large file in Python just to learn that it is UTF-8 costs seconds: when it looks
    # like UTF-8 (BOM or none, no NUL byte), DuckDB reads it and validates every value itself; only
    # when it finds invalid text is the whole file checked (and a GBK/GB18030 export transcoded).
    encoding = _looks_utf8(path) or detect_encoding(path)
    try:
        parsed = _csv_into(
            con,
            path if encoding != "gb18030" else _utf8_copy(path, tmp),
            path,
            transform=transform,
            known=known,
        )
    except UnicodeDecodeError:  # the header line is no UTF-8
        parsed = None
    if encoding != "gb18030" and (parsed is None or parsed[3]):  # parsed[3]: rows of invalid UTF-8
        full = detect_encoding(path)  # raises when the file is neither UTF-8 nor GB18030
        if full == "gb18030":
            encoding = full
            parsed = _csv_into(con, _utf8_copy(path, tmp), path, transform=transform, known=known)
        else:  # UTF-8 after all: its rows with text DuckDB refused are rejects like any other
            parsed = _csv_into(con, path, path, keep_invalid=True, transform=transform, known=known)
    if parsed is None:  # transcoded from GB18030, and still its header line is no UTF-8
        raise FileImportError(f"{path}: the header line is neither UTF-8 nor GB18030")
    headers, parse_rejects, good, _invalid, n_known, constants = parsed
    # raw0 holds the file's records in order (rowid); a transform's result keeps its _line only
    # when known records were left out: each record's number (0-based among good records)
    star = ("* EXCLUDE (_line)" if transform is not None and n_known else "*") + constants
    record = "raw0._line" if n_known else "raw0.rowid"
    if parse_rejects:
        # Good record r (0-based) sits after every rejected record whose "good rows before it" is
        # at most r: shift its line by that many.
        lines = sorted({line for line, *_ in parse_rejects})
        shifts = pa.table({"q": [line - 2 - j for j, line in enumerate(lines)]})
        con.register("line_shifts_arrow", shifts)
        con.execute("CREATE OR REPLACE TEMP TABLE line_shifts AS SELECT * FROM line_shifts_arrow")
        con.unregister("line_shifts_arrow")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {record} + 2 + "
            f"(SELECT count(*) FROM line_shifts WHERE line_shifts.q <= {record}) AS _line, {star} FROM raw0"
        )
    else:
        # A view, not a copy: rowid follows the file's order (insertion order is preserved).
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {record} + 2 AS _line, {star} FROM raw0")
    return RawFile(
        "csv",
        encoding,
        headers,
        good + len(parse_rejects),
        parse_rejects,
        normalised=transform is not None,
        known=n_known,
    )


def _looks_utf8(path: Path) -> str | None:
    """utf-8 or utf-8-sig when the file may be UTF-8 text, None when only a full check can tell."""

    with path.open("rb") as fh:
        head = fh.read(4)
        if not head or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm.find(b"\x00") != -1:  # binary data or UTF-16 without BOM
                return None
    return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"


def _utf8_copy(path: Path, tmp: Path) -> Path:
    target = tmp / "utf8.csv"
    if not target.exists():
        _transcode(path, "gb18030", target)
    return target


def _csv_into(
    con: duckdb.DuckDBPyConnection,
    source: Path,
    path: Path,
    keep_invalid: bool = False,
    transform: Transform | None = None,
    known: KnownKeys | None = None,
) -> tuple[list[str], list[tuple[int, str, str, str]], int, int, int | None, str]:
    """Read `source` (UTF-8) into raw0 (through `transform` if given): headers, the records DuckDB
    could not parse, the good record count, how many records held invalid UTF-8 (without
    `keep_invalid`, their rejects are not collected: the caller reads the file again in the right
    encoding), how many good records `known` recognised as stored (left out of raw0), and the
    transform's constant columns as a select-list suffix (", <literal> AS col, …", or "")."""
    headers, delim = _csv_header(source, path)
    # The header is read here, not sniffed: DuckDB's sniffer gives up on small files with a broken row.
    columns = "{" + ", ".join(f"{q(h)}: 'VARCHAR'" for h in headers) + "}"
    options = (
        f"columns = {columns}, header = true, auto_detect = false, delim = {q(delim)}, quote = '\"', "
        "escape = '\"', store_rejects = true, encoding = 'utf-8'"
    )
    read = f"read_csv({q(str(source))}, {options})"
    select = f"SELECT * FROM {read}"
    # rowid must follow the file's order: line numbers are derived from it
    con.execute("SET preserve_insertion_order = true")
    n_known: int | None = None
    good = -1
    constants = ""
    try:
        if transform is not None and known is not None:
            n_known, good = _known_first(con, read, headers, known)
        some_new = n_known is not None and 0 < n_known < good
        if some_new:
            # Only the records not stored yet reach the transform, each with its record number.
            con.execute(
                "CREATE OR REPLACE TEMP VIEW raw AS SELECT f.rec AS _line, x.* "
                f"FROM {read} x POSITIONAL JOIN read_flags f WHERE NOT f.known"
            )
        elif transform is not None:
            con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT NULL::BIGINT AS _line, * FROM {read}")
        if transform is not None:
            select, one_row = transform(headers)
            constants = _literals(con, one_row) if one_row else ""
        if n_known and n_known == good:  # every record is stored already: nothing to read again
            select = f"SELECT * FROM ({select}) LIMIT 0"
        else:
            _drop_reject_tables(con)  # the first pass's: this pass finds the very same records
        if transform is not None and not n_known:  # the placeholder _line: rowid numbers the records
            select = f"SELECT * EXCLUDE (_line) FROM ({select})"
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw0 AS {select}")
        if some_new and known is not None and n_known is not None:
            _check_aligned(con, known, good - n_known)
    except duckdb.Error as exc:
        raise FileImportError(f"{path.name}: not a readable CSV file: {exc}") from exc
    finally:
        if transform is not None:
            con.execute("DROP VIEW IF EXISTS raw")
        con.execute("DROP TABLE IF EXISTS read_flags")
        con.execute("DROP TABLE IF EXISTS read_keys")
    invalid, parse_rejects = _parse_rejects(con, keep_invalid)
    _drop_reject_tables(con)
    if good < 0:
        good = con.execute("SELECT count(*) FROM raw0").fetchall()[0][0]
    return headers, parse_rejects, good, invalid, n_known, constants


def _literals(con: duckdb.DuckDBPyConnection, one_row: str) -> str:
    """The columns of the one-row SELECT `one_row` as typed literals: ", <literal> AS col, …"."""
    types = [(name, kind) for name, kind, *_ in con.execute(f"DESCRIBE {one_row}").fetchall()]
    values = con.execute(one_row).fetchall()[0]
    return "".join(
        f", {'NULL' if v is None else q(str(v))}::{kind} AS {ident(name)}"
        for (name, kind), v in zip(types, values, strict=True)
    )


def _parse_rejects(
    con: duckdb.DuckDBPyConnection, keep_invalid: bool
) -> tuple[int, list[tuple[int, str, str, str]]]:
    """From the reader's reject tables: how many records held invalid UTF-8, and the records it
    could not parse as (line, "row", reason, raw text) (none when `invalid` and not `keep_invalid`)."""
    invalid = con.execute(
        "SELECT count(DISTINCT line) FROM reject_errors WHERE error_type IN "
        f"({', '.join(q(e) for e in INVALID_TEXT_ERRORS)})"
    ).fetchall()[0][0]
    broken = (
        []
        if invalid and not keep_invalid
        else con.execute(
            "SELECT line, coalesce(column_name, ''), error_type, error_message, csv_line "
            "FROM reject_errors ORDER BY line"
        ).fetchall()
    )
    parse_rejects = []
    seen_lines: set[int] = set()
    for line, _column, error_type, message, raw in broken:
        if line in seen_lines:  # DuckDB reports a short row once per missing column
            continue
        seen_lines.add(line)
        reason = {
            "MISSING COLUMNS": "too few columns",
            "TOO MANY COLUMNS": "too many columns",
            "UNQUOTED VALUE": "malformed quoting",
            "INVALID UNICODE": "invalid characters",
            "INVALID ENCODING": "invalid characters",
        }.get(error_type, error_type.lower())
        parse_rejects.append(
            (int(line), "row", f"{reason}: {message}", (raw or "").strip("\r\n")[:RAW_LIMIT])
        )
    return invalid, parse_rejects


def _drop_reject_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS reject_errors")
    con.execute("DROP TABLE IF EXISTS reject_scans")


def _known_first(
    con: duckdb.DuckDBPyConnection, read: str, headers: list[str], known: KnownKeys
) -> tuple[int, int]:
    """The first pass of `KnownKeys`: read only the keys (temp table read_keys; record number =
    rowid), find those stored, and, when some are but not all, the temp table read_flags (rec,
    known) in file order. Returns the number of known records and of good records."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT NULL::BIGINT AS _line, * FROM {read}")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE read_keys AS {known.key(headers)}")
    finally:
        con.execute("DROP VIEW raw")
    # An equality semi-join: a NULL key (a row without id) is never known, it is validated.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE read_known AS "
        f"SELECT r.rowid AS rec FROM read_keys r SEMI JOIN ({known.stored}) s ON s.k = r.k"
    )
    good, n_known = con.execute(
        "SELECT (SELECT count(*) FROM read_keys), (SELECT count(*) FROM read_known)"
    ).fetchall()[0]
    if n_known and n_known < good:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE read_flags AS SELECT r.rowid AS rec, s.rec IS NOT NULL AS known "
            "FROM read_keys r LEFT JOIN read_known s ON s.rec = r.rowid ORDER BY rec"
        )
    con.execute("DROP TABLE read_known")
    return n_known, good


def _check_aligned(con: duckdb.DuckDBPyConnection, known: KnownKeys, expected: int) -> None:
    """The second pass kept exactly the records the first found new, each under its own number
    (the positional join of file and flags): never drop or mislabel a row silently."""
    rows, wrong = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE r.{known.column} IS DISTINCT FROM k.k) "
        "FROM raw0 r LEFT JOIN read_keys k ON k.rowid = r._line"
    ).fetchall()[0]
    if rows != expected or wrong:
        raise RuntimeError(f"re-import: {rows} of {expected} new records read, {wrong} misaligned")


# DuckDB's reject type for bytes that are not UTF-8: "INVALID UNICODE" in older releases, "INVALID
# ENCODING" in DuckDB 2.0 (installed here). Missing the new name made a GBK file whose first Chinese character came after
# the first rows pass as UTF-8, and its Chinese rows were rejected instead of the file transcoded.
INVALID_TEXT_ERRORS = ("INVALID UNICODE", "INVALID ENCODING")


def _csv_header(source: Path, path: Path) -> tuple[list[str], str]:
    """The header row and the delimiter (the most frequent of , tab ; | in the header line)."""

    with source.open(encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
    if not first.strip():
        raise FileImportError(f"{path.name}: the first line is empty; expected a header row")
    delim = "\t" if path.suffix.lower() == ".tsv" else max(",\t;|", key=first.count)
    header = next(csv.reader([first], delimiter=delim))
    return _unique_headers(header, path), delim


def cell_text(value: object) -> str | None:
    """A spreadsheet or JSON value as the text the normaliser reads."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Excel stores every number as a float: 13800138000.0 is the id 13800138000.
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _register_rows(
    con: duckdb.DuckDBPyConnection,
    headers: list[str],
    lines: list[int],
    columns: list[list],
    append: bool = False,
) -> None:
    """Rows as the temp table raw0 (or appended to it) and the view raw over it."""
    arrays = {"_line": pa.array(lines, pa.int64())}
    for header, values in zip(headers, columns, strict=True):
        arrays[header] = pa.array(values, pa.string())
    table = pa.table(arrays) if lines else pa.table({k: pa.array([], v.type) for k, v in arrays.items()})
    con.register("raw_arrow", table)
    if append:
        con.execute("INSERT INTO raw0 SELECT * FROM raw_arrow")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE raw0 AS SELECT * FROM raw_arrow")
    con.execute("CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw0")
    con.unregister("raw_arrow")


def _unique_headers(raw_headers: Sequence[object], path: Path) -> list[str]:
    headers: list[str] = []
    for i, h in enumerate(raw_headers):
        name = (cell_text(h) or "").strip() or f"column{i + 1}"
        base, n = name, 1
        while name in headers:
            n += 1
            name = f"{base}_{n}"
        headers.append(name)
    if not headers:
        raise FileImportError(f"{path.name}: no header row")
    return headers


XLSX_CHUNK = 100_000  # rows turned into Python values at a time


def _read_xlsx(con: duckdb.DuckDBPyConnection, path: Path) -> RawFile:
    """The first sheet, after `check_archive`; rows go to DuckDB in chunks (Python holds one chunk
    at a time, never the whole sheet as Python values)."""
    # deferred: only XLSX imports need the Calamine reader
    from python_calamine import CalamineWorkbook

    check_archive(path)
    limit = get_settings().max_import_rows
    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).iter_rows()
        header = next(rows, None)
    except Exception as exc:  # calamine raises its own error types for every broken workbook
        raise FileImportError(f"{path.name}: not a readable Excel workbook: {exc}") from exc
    if header is None:
        raise FileImportError(f"{path.name}: the first sheet is empty")
    headers = _unique_headers(header, path)
    columns: list[list] = [[] for _ in headers]
    lines: list[int] = []
    count, first = 0, True
    for number, row in enumerate(rows, start=2):
        if all(v is None or v == "" for v in row):
            continue
        count += 1
        if count > limit:
            check_rows(path, count)  # raises, naming the limit
        lines.append(number)
        for i in range(len(headers)):
            columns[i].append(cell_text(row[i]) if i < len(row) else None)
        if len(lines) >= XLSX_CHUNK:
            _register_rows(con, headers, lines, columns, append=not first)
            columns, lines, first = [[] for _ in headers], [], False
    if first or lines:
        _register_rows(con, headers, lines, columns, append=not first)
    return RawFile("xlsx", None, headers, count)


def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> RawFile:
    encoding = detect_encoding(path)
    records: list[tuple[int, dict]] = []
    rejects: list[tuple[int, str, str, str]] = []
    with path.open(encoding=encoding) as fh:
        text = fh.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        # A JSON array file: "line" is the 1-based position of the item.
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise FileImportError(f"{path.name}: broken JSON array: {exc}") from exc
        numbered = list(enumerate(items, start=1))
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((number, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                rejects.append((number, "json", f"broken JSON: {exc}", line[:RAW_LIMIT]))
    for number, item in numbered:
        if isinstance(item, dict):
            records.append((number, item))
        else:
            rejects.append((number, "json", "not a JSON object", orjson.dumps(item).decode()[:RAW_LIMIT]))
    headers: list[str] = []
    seen: set[str] = set()
    for _, item in records:
        for key in item:
            if key not in seen:
                seen.add(key)
                headers.append(key)
    columns = [[cell_text(item.get(h)) for _, item in records] for h in headers]
    _register_rows(con, headers, [n for n, _ in records], columns)
    return RawFile("jsonl", encoding, headers, len(records) + len(rejects), rejects)


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> RawFile:
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw0 AS SELECT * FROM read_parquet({q(str(path))})")
    except duckdb.Error as exc:
        raise FileImportError(f"{path.name}: not a readable Parquet file: {exc}") from exc
    headers = [row[0] for row in con.execute("DESCRIBE raw0").fetchall()]
    con.execute("CREATE OR REPLACE TEMP VIEW raw AS SELECT rowid + 1 AS _line, * FROM raw0")
    rows = con.execute("SELECT count(*) FROM raw").fetchall()[0][0]
    return RawFile("parquet", None, headers, rows)


def records_into(con: duckdb.DuckDBPyConnection, items: list) -> RawFile:
    """The HTTP collector's batch as the same `raw` table (line = 0-based item index)."""
    headers: list[str] = []
    seen: set[str] = set()
    rejects: list[tuple[int, str, str, str]] = []
    records: list[tuple[int, dict]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rejects.append((index, "item", "not a JSON object", _raw_text(item)))
            continue
        if any(not str(key).strip() for key in item):
            rejects.append((index, "item", "a property name must not be empty", _raw_text(item)))
            continue
        texts, problem = _item_texts(item)
        if problem is not None:
            rejects.append((index, problem[0], problem[1], _raw_text(item)))
            continue
        records.append((index, texts))
        for key in item:
            if key not in seen:
                seen.add(key)
                headers.append(key)
    columns = [[texts.get(h) for _, texts in records] for h in headers]
    _register_rows(con, headers, [n for n, _ in records], columns)
    return RawFile("api", None, headers, len(items), rejects)


def _raw_text(item: object) -> str:
    """An item as JSON text for the rejects (cut), whatever it holds."""
    try:
        text = orjson.dumps(item, default=str).decode()
    except orjson.JSONEncodeError:  # nested deeper than orjson goes
        text = str(item)
    return text[:RAW_LIMIT].replace("\x00", "\\u0000")


def _item_texts(item: dict) -> tuple[dict[str, str | None], tuple[str, str] | None]:
    """The item's values as text, or the (field, reason) that refuses the item: a NUL character
    (PostgreSQL stores none) or a value nested too deep to store."""
    texts: dict[str, str | None] = {}
    for key, value in item.items():
        if "\x00" in key:
            return texts, ("item", "a property name contains a NUL character")
        try:
            text = cell_text(value)
        except orjson.JSONEncodeError:
            return texts, (key, f"{key} is nested too deep")
        if text is not None and ("\x00" in text or (isinstance(value, dict | list) and "\\u0000" in text)):
            return texts, (key, f"{key} contains a NUL character")
        texts[key] = text
    return texts, None

"""The data inventory, generated from what the stores and files actually hold.

`scan()` reads every text column of every table of the operational store and of the warehouse,
and every data file liebian wrote (Parquet exports, rejects files, temporary import files, the
demo's inputs), and counts per location:

- `clear`: personal identifiers in clear text (`privacy.pii.find`: phones, resident ID numbers,
  e-mails, bank cards) — what must be zero outside the demo's own input files;
- `hashed`: identifiers kept as an HMAC (a 64-hex value, or the `[phone:138****1234:<hmac>]` form
  the ingest policy writes);
- `sealed`: AES-256-GCM ciphertexts (the columns key rotation re-seals);
- `ids`: values of identifier columns (user ids, identity values, device ids, IPs, nicknames) —
  channel identifiers such as unionids are pseudonymous but personal.

`data_inventory()` turns the locations that hold any of these into the inventory rows that
`liebian privacy inventory` and `GET /api/v1/privacy/inventory` show, with the purpose and the
retention the table serves (the one part that is declared, not measured).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Session

from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.lazy import lazy_import
from liebian.privacy import compaction, pii
from liebian.privacy.service import store_tables

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

HMAC_RE = re.compile(r"^[0-9a-f]{64}$")
TOKEN_RE = re.compile(r"\[(phone|id_card|email|bank_card):[^\]:]*:[0-9a-f]{64}\]")
SEALED_RE = re.compile(r"^k\d+:[A-Za-z0-9+/=]{24,}$")
IDENTIFIER_COLUMNS = frozenset(
    {"user_id", "id_value", "id_value_a", "id_value_b", "referrer_id", "device_id", "ip", "nickname",
     "external_userid", "unionid", "openid", "display"}
)  # fmt: skip

# table (or folder) -> (purpose, retention key in settings.retention_days or a fixed text)
PURPOSES: dict[str, tuple[str, str]] = {
    "events": ("analytics", "events"),
    "messages": ("analytics", "messages"),
    "rejects": ("collection (data quality)", "rejects"),
    "orders": ("collection", "accounting: until erased"),
    "identity_map": ("collection", "until erased"),
    "identifiers": ("collection", "until erased"),
    "identity_links": ("collection", "until erased"),
    "referral_edges": ("marketing", "until erased"),
    "consent_records": ("proof of consent", "until erased"),
    "audit_log": ("security", "kept (hash-chained)"),
    "ledger_entries": ("marketing", "kept (hash-chained)"),
    "parquet": ("analytics (Spark exports)", "rewritten by erasure; re-exported"),
    "demo": ("demo: the synthetic brand's input files and answer key", "until the demo is removed"),
    "tmp": ("import scratch files", "deleted after the import"),
}
PREFIX_PURPOSES = (
    ("campaign", "marketing"),
    ("reward", "marketing"),
    ("ledger", "marketing"),
    ("webhook", "marketing"),
    ("automation", "marketing"),
    ("fraud", "collection (fraud prevention)"),
    ("auth", "security"),
    ("audit", "security"),
    ("wecom", "collection"),
    ("community", "analytics"),
)


@dataclass
class Location:
    store: str  # operational | warehouse | file
    where: str  # table.column or the file's path in the data directory
    rows: int = 0
    clear: dict[str, int] = field(default_factory=dict)
    hashed: int = 0
    sealed: int = 0
    ids: int = 0

    def add(self, value: object, identifier_column: bool) -> None:
        if value is None:
            return
        text = value if isinstance(value, str) else str(value)
        if not text:
            return
        self.rows += 1
        if HMAC_RE.match(text):
            self.hashed += 1
            return
        if SEALED_RE.match(text):
            self.sealed += 1
            return
        tokens = len(TOKEN_RE.findall(text))
        self.hashed += tokens
        if identifier_column and not tokens:
            self.ids += 1
        for f in pii.find(TOKEN_RE.sub("", text) if tokens else text):
            self.clear[f.kind] = self.clear.get(f.kind, 0) + 1

    @property
    def personal(self) -> bool:
        return bool(self.clear or self.hashed or self.sealed or self.ids)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _store_locations(session: Session) -> Iterator[Location]:
    for table in store_tables(session):
        for col in table.columns:
            if not isinstance(col.type, String | Text):
                continue
            loc = Location("operational", f"{table.name}.{col.name}")
            for (value,) in session.execute(select(col).where(col.is_not(None))).yield_per(5000):
                loc.add(value, col.name in IDENTIFIER_COLUMNS)
            yield loc


def _relation_locations(
    con: duckdb.DuckDBPyConnection, relation: str, store: str, label: str
) -> Iterator[Location]:
    """Every VARCHAR column of a DuckDB relation (a warehouse table or a Parquet file)."""
    for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall():
        if kind != "VARCHAR":
            continue
        loc = Location(store, f"{label}.{name}")
        col = '"' + name.replace('"', '""') + '"'
        cursor = con.execute(f"SELECT {col} FROM {relation} WHERE {col} IS NOT NULL")
        while batch := cursor.fetchmany(10000):
            for (value,) in batch:
                loc.add(value, name in IDENTIFIER_COLUMNS)
        yield loc


def _warehouse_locations(con: duckdb.DuckDBPyConnection) -> Iterator[Location]:
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()
    ]
    for table in tables:
        yield from _relation_locations(con, f'"{table}"', "warehouse", table)


def _text_of(path: Path) -> str:
    if path.suffix.lower() in (".xlsx", ".zip"):
        try:
            with zipfile.ZipFile(path) as z:
                return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
        except zipfile.BadZipFile:
            pass
    return path.read_bytes().decode("utf-8", "replace")


def _file_locations(root: Path) -> Iterator[Location]:
    con = duckdb.connect()
    try:
        for path in compaction.data_files(root, include_demo=True):
            rel = str(path.relative_to(root))
            if path.suffix.lower() == ".parquet":
                source = "read_parquet('" + str(path).replace("'", "''") + "')"
                yield from _relation_locations(con, source, "file", rel)
                continue
            loc = Location("file", rel)
            for line in _text_of(path).splitlines():
                loc.add(line, False)
            yield loc
    finally:
        con.close()


def scan(session: Session | None = None) -> list[Location]:
    """Every location of both stores and the data files, with what it holds."""
    out: list[Location] = []
    if session is None:
        with session_scope() as s:
            out.extend(_store_locations(s))
    else:
        out.extend(_store_locations(session))
    with warehouse.connect(read_only=True) as con:
        out.extend(_warehouse_locations(con))
    out.extend(_file_locations(get_settings().data_dir))
    return out


def clear_identifiers(locations: Iterable[Location], include_demo: bool = False) -> dict[str, dict[str, int]]:
    """Locations holding identifiers in clear text (the demo's input files left out unless asked)."""
    return {
        f"{loc.store}:{loc.where}": loc.clear
        for loc in locations
        if loc.clear and (include_demo or not loc.where.startswith("demo/"))
    }


def _purpose(loc: Location) -> tuple[str, str]:
    days = get_settings().retention_days
    head = loc.where.split("/")[0] if loc.store == "file" else loc.where.split(".")[0]
    purpose, keep = PURPOSES.get(head, ("", ""))
    if not purpose:
        purpose = next((p for prefix, p in PREFIX_PURPOSES if head.startswith(prefix)), "operations")
        keep = "until erased"
    if keep in days:
        n = int(days.get(keep, 0) or 0)
        keep = f"{n} days" if n else "until erased"
    return purpose, keep


def _describe(loc: Location) -> tuple[str, str]:
    data, protection = [], []
    if loc.clear:
        data += [f"{kind} ×{n}" for kind, n in sorted(loc.clear.items())]
        protection.append("CLEAR TEXT")
    if loc.hashed:
        data.append(f"hashed identifiers ×{loc.hashed}")
        protection.append("HMAC-SHA256 (+ masked form)")
    if loc.sealed:
        data.append(f"sealed values ×{loc.sealed}")
        protection.append("AES-256-GCM")
    if loc.ids:
        data.append(f"identifiers ×{loc.ids}")
        protection.append("pseudonymous; masked on display; role-gated")
    return ", ".join(data), "; ".join(protection)


def data_inventory(locations: list[Location] | None = None) -> list[dict[str, Any]]:
    """One row per location that holds personal data, measured (see the module docstring)."""
    rows = []
    for loc in locations if locations is not None else scan():
        if not loc.personal:
            continue
        data, protection = _describe(loc)
        purpose, keep = _purpose(loc)
        rows.append(
            {
                "data": data,
                "where": f"{loc.store}: {loc.where}",
                "purpose": purpose,
                "protection": protection,
                "retention": keep,
                "rows": loc.rows,
                "clear": sum(loc.clear.values()),
            }
        )
    return rows

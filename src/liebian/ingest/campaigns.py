"""Titles of imported campaigns: campaigns known only from imported data (their campaign_id on
events, orders, referral edges) get a title from a campaigns file (`liebian import campaigns FILE`,
CSV `campaign_id,title`) or from the events' `campaign_title` column. The warehouse keeps one title
per campaign (`campaign_titles`); a later import replaces it. Breakdowns by campaign and the
console's campaign filter show the title (an engine campaign's own title comes first)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from liebian.db.base import utcnow
from liebian.engine import warehouse
from liebian.ingest.normalize import MAX_ID_LENGTH, MAX_TITLE_LENGTH
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

COLUMNS = ("campaign_id", "title")
MAX_ROWS = 100_000  # a campaigns file lists campaigns, not events

# The latest title per campaign of a batch of events (`to_load`), replacing what was known.
EVENT_TITLES = """
CREATE OR REPLACE TEMP TABLE batch_titles AS
SELECT campaign_id, arg_max(campaign_title, ts) AS title FROM to_load
WHERE campaign_id IS NOT NULL AND campaign_title IS NOT NULL GROUP BY campaign_id
"""


@dataclass
class TitlesResult:
    rows_read: int = 0
    rows_loaded: int = 0
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # line, field, reason


def _problem(cid: str, title: str) -> tuple[str, str] | None:
    """(field, reason) of a bad row, None when it is good."""
    for name, value, limit in (("campaign_id", cid, MAX_ID_LENGTH), ("title", title, MAX_TITLE_LENGTH)):
        if not value:
            return (name, f"missing {name}")
        if len(value) > limit:
            return (name, f"{name} longer than {limit} characters")
        if any(ord(ch) < 32 for ch in value):
            return (name, f"{name} contains a control character")
    return None


def import_campaigns(path: Path) -> TitlesResult:
    """Store the titles of a CSV file `campaign_id,title` (UTF-8); a bad row is rejected naming its
    line and field, the others are stored. ValueError when the file cannot be read as such."""
    result = TitlesResult()
    titles: dict[str, str] = {}
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = tuple(h.strip() for h in reader.fieldnames or ())
            if not set(COLUMNS) <= set(header):
                raise ValueError(f"{path}: the header must name {','.join(COLUMNS)} (got {','.join(header)})")
            reader.fieldnames = list(header)
            for line, row in enumerate(reader, start=2):
                result.rows_read += 1
                if result.rows_read > MAX_ROWS:
                    raise ValueError(f"{path}: more than {MAX_ROWS} campaigns")
                cid, title = (row.get("campaign_id") or "").strip(), (row.get("title") or "").strip()
                problem = _problem(cid, title)
                if problem is None:
                    titles[cid] = title
                else:
                    result.rejects.append((line, *problem))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None
    with warehouse.connect() as con:
        store_titles(con, titles)
    result.rows_loaded = len(titles)
    return result


def store_titles(con: duckdb.DuckDBPyConnection, titles: dict[str, str]) -> None:
    """Replace the titles of these campaigns."""
    if not titles:
        return
    con.execute("CREATE OR REPLACE TEMP TABLE batch_titles (campaign_id VARCHAR, title VARCHAR)")
    con.executemany("INSERT INTO batch_titles VALUES (?, ?)", list(titles.items()))
    replace_from_batch(con)


def replace_from_batch(con: duckdb.DuckDBPyConnection) -> None:
    """Move the temp table `batch_titles` (campaign_id, title) into `campaign_titles`."""
    con.execute("DELETE FROM campaign_titles WHERE campaign_id IN (SELECT campaign_id FROM batch_titles)")
    con.execute("INSERT INTO campaign_titles SELECT campaign_id, title, ? FROM batch_titles", [utcnow()])
    con.execute("DROP TABLE batch_titles")


def record_event_titles(con: duckdb.DuckDBPyConnection) -> None:
    """The titles a batch of events carries (`campaign_title`), inside the load's transaction."""
    con.execute(EVENT_TITLES)
    replace_from_batch(con)


def imported_titles(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """campaign_id → title of every imported campaign with a title."""
    return dict(con.execute("SELECT campaign_id, title FROM campaign_titles").fetchall())


# Every campaign id the imported data carries, with its imported title (NULL: none).
WAREHOUSE_CAMPAIGNS = """
SELECT c.campaign_id, t.title FROM (
    SELECT campaign_id FROM events WHERE campaign_id IS NOT NULL UNION
    SELECT campaign_id FROM orders WHERE campaign_id IS NOT NULL UNION
    SELECT campaign_id FROM referral_edges WHERE campaign_id IS NOT NULL
) c LEFT JOIN campaign_titles t ON t.campaign_id = c.campaign_id
ORDER BY 1 LIMIT ?
"""


def warehouse_campaigns(con: duckdb.DuckDBPyConnection, limit: int = 500) -> list[tuple[str, str]]:
    """(campaign_id, title) of the campaigns imported data carries, by id; the id stands in for a
    missing title."""
    return [(cid, title or cid) for cid, title in con.execute(WAREHOUSE_CAMPAIGNS, [limit]).fetchall()]

"""Helpers shared by the ingestion tests (imported by file name: tests dirs are not packages)."""

from __future__ import annotations

import csv
from pathlib import Path

from liebian.engine import warehouse

FIXTURES = Path(__file__).parent / "fixtures"

EVENT_HEADER = ["event_id", "ts", "user_id", "id_type", "event", "channel"]


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def rows(sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.connect() as con:
        return con.execute(sql, params or []).fetchall()


def scalar(sql: str, params: list | None = None):
    return rows(sql, params)[0][0]


def read_rejects(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))

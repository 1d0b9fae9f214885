"""Upload limits (issue #21): a zip bomb disguised as an XLSX workbook is refused from its zip
directory before anything parses it; a directory that lies about the sizes is caught while
inflating; too many rows and too many imports at once are refused with clear answers."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from liebian.config import reset_settings_cache
from liebian.ingest import service
from liebian.ingest.files import FileImportError, FileTooLarge, check_archive
from liebian.web.app import create_app

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GIB = 1024**3


def _workbook(rows: int = 3) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["event_id", "ts", "user_id", "id_type", "event", "channel"])
    for n in range(rows):
        ws.append([f"e{n}", "2026-11-01 10:00:00", f"u{n}", "unionid", "signup", "app"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _declare(data: bytes, member: str, size: int) -> bytes:
    """The archive with `member`'s uncompressed size rewritten in its local and central headers
    (a zip bomb's directory: a few kilobytes that claim gigabytes, or the other way round)."""
    out = bytearray(data)
    name = member.encode()
    local = out.find(b"PK\x03\x04")
    while local != -1:
        name_len = struct.unpack_from("<H", out, local + 26)[0]
        if out[local + 30 : local + 30 + name_len] == name:
            struct.pack_into("<I", out, local + 22, size)
        local = out.find(b"PK\x03\x04", local + 4)
    central = out.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", out, central + 28)[0]
        if out[central + 46 : central + 46 + name_len] == name:
            struct.pack_into("<I", out, central + 24, size)
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def _bomb() -> bytes:
    """A real workbook whose sheet claims 3.9 GiB once inflated (the archive stays kilobytes)."""
    return _declare(_workbook(), "xl/worksheets/sheet1.xml", int(3.9 * GIB))


def _upload(client: TestClient, content: bytes, name: str = "bomb.xlsx"):
    return client.post("/import", data={"kind": "events"}, files={"file": (name, content, XLSX)})


def test_zip_bomb_upload_is_refused_from_its_directory_before_parsing(public_headers, data_dir):
    bomb = _bomb()
    assert len(bomb) < 64 * 1024
    with TestClient(create_app(run_migrations=False), headers=public_headers) as client:
        r = _upload(client, bomb)
    assert r.status_code == 413, r.text
    # the reason: the directory's declared size, i.e. nothing was inflated or parsed
    assert "expands to more than 256 MB (its directory says so)" in r.text
    assert service.IMPORT_SLOTS.taken == 0
    assert not list((data_dir / "tmp" / "uploads").glob("*/*")), "the refused upload was kept"


def test_a_directory_that_lies_is_caught_while_inflating(tmp_path: Path, data_dir):
    # The sheet claims 100 bytes but inflates to far more: zipfile stops at the claim, the CRC fails.
    lying = tmp_path / "lying.xlsx"
    lying.write_bytes(_declare(_workbook(200), "xl/worksheets/sheet1.xml", 100))
    with pytest.raises(FileImportError) as caught:
        check_archive(lying)
    assert not isinstance(caught.value, FileTooLarge)
    assert "not a readable Excel workbook" in str(caught.value)
    # An honest directory over the limit is refused from the directory alone.
    honest = tmp_path / "honest.xlsx"
    honest.write_bytes(_workbook(2000))
    with pytest.raises(FileTooLarge) as too_large:
        check_archive(honest, limit=50_000)
    assert "(its directory says so)" in str(too_large.value)


def test_rows_beyond_the_cap_are_refused(tmp_path: Path, data_dir, monkeypatch, sqlite_store):
    monkeypatch.setenv("LIEBIAN_MAX_IMPORT_ROWS", "10")
    reset_settings_cache()
    for name, body in (
        ("many.xlsx", _workbook(11)),
        ("many.csv", b"event_id,ts,user_id,id_type,event,channel\n" + b"".join(
            f"e{n},2026-11-01 10:00:00,u{n},unionid,signup,app\n".encode() for n in range(11))),
    ):  # fmt: skip
        path = tmp_path / name
        path.write_bytes(body)
        with pytest.raises(FileTooLarge, match="more than 10 rows"):
            service.import_file(path, "events")
    path = tmp_path / "ten.xlsx"
    path.write_bytes(_workbook(10))
    assert service.import_file(path, "events").rows_loaded == 10


def test_concurrent_imports_are_bounded(public_headers, data_dir, monkeypatch):
    monkeypatch.setenv("LIEBIAN_MAX_CONCURRENT_IMPORTS", "1")
    reset_settings_cache()
    service.IMPORT_SLOTS.take()  # an import is running
    try:
        with TestClient(create_app(run_migrations=False), headers=public_headers) as client:
            r = _upload(client, _workbook(), "small.xlsx")
        assert r.status_code == 429, r.text
        assert "retry" in r.text
    finally:
        service.IMPORT_SLOTS.give_back()
    with TestClient(create_app(run_migrations=False), headers=public_headers) as client:
        r = _upload(client, _workbook(), "small.xlsx")
    assert r.status_code == 200, r.text
    for _ in range(600):  # let the accepted import end before the test's data directory goes
        if service.IMPORT_SLOTS.taken == 0:
            break
        time.sleep(0.1)
    assert service.IMPORT_SLOTS.taken == 0

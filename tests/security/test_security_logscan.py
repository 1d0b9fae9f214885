"""No clear phone number, e-mail address or ID-card number in any log line, over a demo scenario:
the demo brand built and imported, API calls (ingestion with phones, look-ups by phone, bad input),
CLI commands, jobs, a deliberately careless log call, and a real uvicorn server's access log."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.demo.generator import DemoSpec
from liebian.demo.service import build, demo_dir

# Independent of the filter's own patterns: any 11-digit mobile number, e-mail, 18-character ID.
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
EMAIL = re.compile(r"[\w.+-]+(@|%40)[\w-]+\.[\w.]+")
ID_CARD = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
SECRET_EMAIL, SECRET_ID = "zhang.san@example.com", "11010519491231002X"


def _demo_phones() -> list[str]:
    phones = []
    with open(demo_dir() / "files" / "identities.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for t, v in (("id_type_a", "id_a"), ("id_type_b", "id_b")):
                if row[t] == "phone":
                    phones.append(row[v])
    return sorted(set(phones))


@pytest.fixture
def captured():
    """Every log record of the process, at DEBUG (SQL statement logging aside: it would only repeat
    parameters, which are HMACs by then), formatted as a handler would write it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = [
        logging.getLogger(n)
        for n in ("sqlalchemy.engine", "sqlalchemy.pool", "httpcore", "hpack", "PIL", "asyncio")
    ]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.WARNING)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)
    for q, lvl in zip(quiet, levels, strict=True):
        q.setLevel(lvl)


def _leaks(text: str, phones: list[str]) -> list[str]:
    found = [m.group(0) for rx in (PHONE, EMAIL, ID_CARD) for m in rx.finditer(text)]
    found += [p for p in phones if p in text]
    return found


def test_no_personal_data_in_any_log_line(sqlite_store, admin_headers, captured, tmp_path):
    from liebian.cli import app as cli
    from liebian.jobs import run_job
    from liebian.web.app import create_app

    client = TestClient(
        create_app(run_migrations=False), raise_server_exceptions=False
    )  # installs the filter
    build(DemoSpec(persons=600))
    phones = _demo_phones()
    assert len(phones) > 50

    log = logging.getLogger("liebian.scenario")
    # careless code: the filter must still mask what it logs
    log.warning("user %s registered with %s, id card %s", phones[0], SECRET_EMAIL, SECRET_ID)
    log.info(f"f-string with +86 {phones[1][:3]} {phones[1][3:7]} {phones[1][7:]}")
    try:
        raise ValueError(f"bad phone {phones[2]}")
    except ValueError:
        log.exception("import failed for %s", phones[2])

    # front-end traffic with phones as user ids, including bad rows the API rejects
    items = [
        {
            "event_id": f"scan-{i}",
            "ts": "2026-11-10T10:00:00+08:00",
            "user_id": p,
            "id_type": "phone",
            "event": "page_view",
            "channel": "miniprogram",
        }
        for i, p in enumerate(phones[:20])
    ] + [
        {
            "event_id": "scan-bad",
            "ts": "nope",
            "user_id": phones[3],
            "id_type": "phone",
            "event": "x",
            "channel": "?",
        }
    ]
    r = client.post("/api/v1/events/batch", json={"items": items}, headers=admin_headers)
    assert r.status_code == 200, r.text
    for p in phones[:5] + ["13000000000"]:
        client.get("/api/v1/persons/lookup", params={"id_type": "phone", "id": p}, headers=admin_headers)
        client.get("/api/v1/persons/lookup", params={"id_type": "phone", "id": p})  # refused: no key
    runner = CliRunner()
    for args in (
        ["identity", "show", "--id-type", "phone", "--id", phones[4]],
        ["quality", "report"],
        ["job", "list"],
    ):
        runner.invoke(cli, args)
    for name in ("privacy-retention", "privacy-reencrypt"):
        run_job(name)

    text = captured.getvalue()
    assert "registered with" in text and "import failed" in text  # the scenario did log
    assert "Traceback" in text and "ValueError: bad phone" in text
    leaks = _leaks(text, phones)
    assert not leaks, f"personal data in the logs: {sorted(set(leaks))[:10]}"
    # masked, not dropped: an operator can still read what happened
    assert f"{phones[0][:3]}****{phones[0][-4:]}" in text and "z***@example.com" in text


def test_server_access_log_is_masked(sqlite_store, admin_headers, tmp_path):
    """uvicorn's own access log (query strings included) goes through the same filter."""
    from shared_helpers import free_port

    port = free_port()
    err = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, "LIEBIAN_SCHEDULER_ENABLED": "0"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "liebian.web.asgi:app",
            "--port",
            str(port),
            "--log-level",
            "debug",
        ],
        env=env,
        stdout=err,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        phone = "13912345678"
        httpx.get(
            f"{url}/api/v1/persons/lookup", params={"id_type": "phone", "id": phone}, headers=admin_headers
        )
        httpx.get(f"{url}/api/v1/persons/lookup?id_type=phone&id={SECRET_EMAIL}")
        httpx.get(f"{url}/api/v1/persons/lookup?id_type=phone&id={SECRET_EMAIL.replace('@', '%40')}")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        err.close()
    text = (tmp_path / "server.log").read_text(encoding="utf-8", errors="replace")
    assert "Logging error" not in text, text[-3000:]
    access = [line for line in text.splitlines() if "/api/v1/persons/lookup" in line]
    assert len(access) == 3 and all(" HTTP/1.1" in line for line in access), access  # uvicorn's format
    assert not _leaks(text, [phone]), text[-2000:]
    assert "139****5678" in access[0] and "z***@example.com" in access[1] and "z***@example.com" in access[2]

"""Export watermarks end to end (real store, real HTTP through TestClient, real files): console
CSV/XLSX exports, the payout file, report HTML, the data-subject export each carry a visible footer
and an invisible mark tied to their audit entry; `liebian privacy trace` names the export a 10-row
excerpt came from, and never another export's."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from liebian.auth.service import audit_entries, create_user
from liebian.cli import app as cli_app
from liebian.complaints import service as complaints
from liebian.db.session import session_scope
from liebian.privacy import watermark
from liebian.rewards import payouts
from liebian.rewards import service as rewards
from liebian.web.app import create_app
from shared_helpers import make_api_key

PHONE = "13812345678"


@pytest.fixture
def client(store: str, admin_headers: dict[str, str]):
    with session_scope() as s:
        create_user(s, "auditor1", "a-long-password-1", "auditor", actor="test")
        for i in range(30):
            intake = complaints.Intake("complaint", "wecom", "reward", f"第 {i} 位用户的奖励没到账")
            complaints.create(s, intake, actor="ops")
    with TestClient(create_app(), headers=admin_headers) as c:
        yield c


def _trace(path: Path) -> dict:
    result = CliRunner().invoke(
        cli_app, ["--user", "auditor1", "privacy", "trace", str(path), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _export_audit(token: str) -> dict:
    with session_scope() as s:
        (entry,) = [e for e in audit_entries(s, action="export") if e["detail"]["watermark"] == token]
    return entry


def _only_export(traced: dict) -> dict:
    assert traced["verdict"] == "identified", traced
    (found,) = [e for e in traced["exports"] if e["audit_seq"] is not None]
    return found


def test_trace_names_the_export_of_a_ten_row_csv_excerpt(client: TestClient, tmp_path: Path) -> None:
    operator = {"Authorization": f"Bearer {make_api_key('service', 'operator')}"}
    first = client.get("/complaints", params={"export": "due", "format": "csv", "lang": "en"})
    second = client.get("/complaints", params={"export": "due", "format": "csv"}, headers=operator)
    assert first.status_code == second.status_code == 200
    lines = {name: r.content.decode("utf-8-sig").splitlines() for name, r in (("a", first), ("b", second))}

    # the visible footer: who, when, what, the filter, the reference; the data cells are unchanged
    footer = lines["b"][-1]
    assert footer.startswith(watermark.FOOTER_START) and "console /complaints table due (csv)" in footer
    rows = list(csv.reader(io.StringIO("\n".join(lines["a"]))))
    assert rows[0][0] == "No." and rows[1][0].isdigit() and len(rows) == 32  # header, 30 rows, footer

    traced = {}
    for name in ("a", "b"):
        excerpt = tmp_path / f"{name}.csv"
        excerpt.write_text("\n".join(lines[name][7:17]), encoding="utf-8")  # 10 rows, no header or footer
        traced[name] = _only_export(_trace(excerpt))
    assert traced["a"]["audit_seq"] < traced["b"]["audit_seq"]
    assert traced["a"]["exported_by"] != traced["b"]["exported_by"]  # the admin key, then the operator key
    token_b = traced["b"]["ref"].removeprefix(watermark.REF_PREFIX)
    entry = _export_audit(token_b)
    assert entry["seq"] == traced["b"]["audit_seq"] and entry["detail"]["rows"] == 30
    assert token_b in lines["b"][-1] and token_b not in "".join(lines["a"])


def test_trace_names_the_export_of_a_ten_row_xlsx_excerpt(client: TestClient, tmp_path: Path) -> None:
    exported = [
        client.get("/complaints", params={"export": "due", "format": "xlsx"}).content for _ in range(2)
    ]
    sheets = [load_workbook(io.BytesIO(data)).active for data in exported]
    # the mark column is hidden; the document property and the footer name the export
    assert all(ws.column_dimensions["K"].hidden for ws in sheets)
    footers = [list(ws.iter_rows(values_only=True))[-1][0] for ws in sheets]
    assert all(f.startswith(watermark.FOOTER_START) for f in footers)

    for i, ws in enumerate(sheets):
        rows = list(ws.iter_rows(min_row=5, max_row=14, values_only=True))  # ten whole rows, copied
        copy = Workbook()
        for row in rows:
            copy.active.append(list(row))
        out = io.BytesIO()
        copy.save(out)  # a new workbook: no document property, no footer, no header
        path = tmp_path / f"excerpt{i}.xlsx"
        path.write_bytes(out.getvalue())
        found = _only_export(_trace(path))
        assert found["ref"] in footers[i] and found["ref"] not in footers[1 - i]
        assert found["places"] >= 10

    # pasted as text (tab-separated, as a spreadsheet copies a selection)
    pasted = "\n".join(
        "\t".join("" if v is None else str(v) for v in row)
        for row in list(sheets[1].iter_rows(min_row=3, max_row=12, values_only=True))
    )
    (tmp_path / "pasted.txt").write_text(pasted, encoding="utf-8")
    assert _only_export(_trace(tmp_path / "pasted.txt"))["ref"] in footers[1]


def test_a_file_without_a_mark_or_with_a_forged_one_names_no_export(
    client: TestClient, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("No.,Kind\n1,Complaint\n", encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["--user", "auditor1", "privacy", "trace", str(plain)])
    assert result.exit_code == 1 and "no export mark" in result.output

    real = client.get("/complaints", params={"export": "due", "format": "csv"}).content.decode("utf-8-sig")
    token = real.splitlines()[-1].rsplit(watermark.REF_PREFIX, 1)[1][:16]
    forged_token = token[:12] + format(int(token[12:], 16) ^ 1, "04x")  # the check no longer fits
    stripped = "".join(ch for ch in real if ch not in watermark.ALPHABET).replace(token, forged_token)
    (tmp_path / "forged.csv").write_text(stripped, encoding="utf-8")
    assert _trace(tmp_path / "forged.csv") == {"verdict": "no_mark", "exports": []}


def test_payout_files_are_marked_and_still_read_back(client: TestClient, tmp_path: Path) -> None:
    with session_scope() as s:
        for i in range(12):
            reward = rewards.grant(
                s, campaign_id="c1", person_id=100 + i, reward_code="INV", value_fen=100, reason="r",
                source_ref=f"o{i}", idempotency_key=f"k{i}", hold_until=None,
            )  # fmt: skip
            rewards.transition(s, reward.id, "approved", idempotency_key=f"ap{i}", actor="op")
    for fmt in ("csv", "xlsx"):
        answer = client.get("/api/v1/payouts/export", params={"format": fmt, "campaign_id": "c1"})
        assert answer.status_code == 200
        path = tmp_path / f"payouts.{fmt}"
        path.write_bytes(answer.content)
        assert len(payouts.read_ids(path)) == 12  # the footer is not a reward
        found = _only_export(_trace(path))
        assert (
            found["what"] == f"payouts ({fmt})" and "campaign_id=c1" in json.loads(found["detail"])["filter"]
        )


def test_report_html_carries_footer_comment_and_hidden_mark(client: TestClient, tmp_path: Path) -> None:
    html = client.get("/api/v1/reports/report.html", params={"kind": "weekly"}).text
    assert '<footer class="liebian-export"' in html and "<!-- lbwm:" in html and "data-lbwm=" in html
    assert html.index("liebian-export") < html.lower().rindex("</body>")
    (tmp_path / "report.html").write_text(html, encoding="utf-8")
    assert _only_export(_trace(tmp_path / "report.html"))["what"] == "report weekly (html)"


def test_the_data_subject_export_names_its_request_and_no_filter_carries_pii(
    client: TestClient, tmp_path: Path
) -> None:
    made = client.post("/api/v1/complaints", json={"channel": "app", "category": "reward", "text": "x",
                                                   "id_type": "phone", "id_value": PHONE})  # fmt: skip
    exported = client.post("/api/v1/privacy/requests/export", json={"person_id": made.json()["person_id"]})
    assert exported.status_code == 200, exported.text
    stamp = exported.json()["export_watermark"]
    assert "data-subject export" in stamp["footer"] and PHONE not in stamp["footer"]
    (tmp_path / "subject.json").write_text(exported.text, encoding="utf-8")
    assert _only_export(_trace(tmp_path / "subject.json"))["ref"] == stamp["ref"]

    # a filter naming a phone is shown without it, in the footer and in the audit entry
    with session_scope() as s:
        mark = watermark.issue(s, actor="ops", what="test", filter_text=f"phone={PHONE}")
    assert PHONE not in mark.footer() and "[phone]" in mark.footer()
    assert PHONE not in json.dumps(_export_audit(mark.token), default=str)

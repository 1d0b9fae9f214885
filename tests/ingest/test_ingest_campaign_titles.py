"""Imported campaigns (known only from imported data) carry titles — from a campaigns file
(`liebian import campaigns`, CSV campaign_id,title) or the events' campaign_title column — and
every campaign breakdown shows them: the fraud rate per campaign (which covers imported campaigns,
counting referral edges whose invitee anti-fraud flags) and the console's campaign filter."""

from __future__ import annotations

import json
import re

import pandas as pd
from fastapi.testclient import TestClient
from ingest_helpers import EVENT_HEADER, rows, write_csv
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.fraud import service as fraud
from liebian.ingest.service import import_file
from liebian.web.app import create_app

# c_invite: alice invites bob, carol, dave and erin (referrer column); c_group: frank joins alone.
EVENTS = [
    ["e0", "2026-11-03 09:00", "alice", "openid", "join_campaign", "app", "c_invite", "", "", ""],
    *[
        ["e" + str(n), f"2026-11-03 1{n}:00", friend, "openid", "accept_invite", "app", "c_invite", "alice", "openid", ""]
        for n, friend in enumerate(("bob", "carol", "dave", "erin"), start=1)
    ],
    ["e9", "2026-11-04 09:00", "frank", "openid", "join_campaign", "app", "c_group", "", "", "双11拼团"],
    ["e10", "2026-11-05 09:00", "gina", "openid", "join_campaign", "app", "c_group", "", "", "双11拼团·返场"],
]  # fmt: skip


def _import(tmp_path) -> None:
    header = [*EVENT_HEADER, "campaign_id", "referrer_id", "referrer_id_type", "campaign_title"]
    result = import_file(write_csv(tmp_path / "events.csv", header, EVENTS), "events")
    assert (result.rows_loaded, result.rows_rejected) == (len(EVENTS), 0)


def _person(user: str) -> int:
    return rows("SELECT person_id FROM identity_map WHERE id_value = ?", [user])[0][0]


def _flag(invitee: str) -> None:
    """A referral case against `invitee` of c_invite, as a graph scan opens one."""
    risky = pd.DataFrame([{
        "campaign_id": "c_invite", "channel": "app", "inviter_person_id": _person("alice"),
        "invitee_person_id": _person(invitee), "score": 90.0, "reasons": ["device_farm"], "details": ["test"],
        "pattern": "device_farm",
    }])  # fmt: skip
    with session_scope() as s:
        fraud.upsert_cases(s, risky, source="graph", actor="test")


def test_the_latest_title_of_the_events_is_kept_and_a_campaigns_file_replaces_it(store, tmp_path) -> None:
    _import(tmp_path)
    assert rows("SELECT campaign_id, title FROM campaign_titles") == [("c_group", "双11拼团·返场")]
    titles = write_csv(tmp_path / "campaigns.csv", ["campaign_id", "title"],
                       [["c_invite", "邀友有礼（导入）"], ["c_group", "双11拼团"], ["", "无编号"], ["c_x", "x" * 201]])  # fmt: skip
    out = CliRunner().invoke(cli_app, ["import", "campaigns", str(titles), "--format", "json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert (got["rows_read"], got["rows_loaded"], got["rows_rejected"]) == (4, 2, 2)
    assert [(r["line"], r["field"]) for r in got["rejects"]] == [(4, "campaign_id"), (5, "title")]
    assert sorted(rows("SELECT campaign_id, title FROM campaign_titles")) == [
        ("c_group", "双11拼团"),
        ("c_invite", "邀友有礼（导入）"),
    ]
    bad_header = write_csv(tmp_path / "bad.csv", ["id", "name"], [["c1", "t"]])
    out = CliRunner().invoke(cli_app, ["import", "campaigns", str(bad_header)])
    assert out.exit_code == 2 and "campaign_id,title" in out.output


def test_the_fraud_rate_covers_imported_campaigns_by_title(store, tmp_path) -> None:
    _import(tmp_path)
    _flag("bob")
    _flag("carol")
    with session_scope() as s:
        rate = {r["campaign_id"]: r for r in fraud.fraud_rate(s)}
        by_channel = fraud.fraud_rate(s, "channel")
    # by hand: c_invite has 4 edges (alice → bob, carol, dave, erin); bob and carol are flagged
    assert rate["c_invite"] == {"campaign_id": "c_invite", "title": "c_invite", "referrals": 4,
                                     "rejected": 2, "fraud_rate": 0.5, "source": "imported"}  # fmt: skip
    assert rate["c_group"]["title"] == "双11拼团·返场" and rate["c_group"]["referrals"] == 0
    assert rate["c_group"]["fraud_rate"] == 0.0
    assert [
        (r["campaign_id"], r["channel"], r["referrals"]) for r in by_channel if r["campaign_id"] == "c_invite"
    ] == [("c_invite", "app", 4)]


def test_the_console_lists_imported_campaigns_by_title_and_keeps_the_choice(
    store, tmp_path, admin_headers
) -> None:
    _import(tmp_path)
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        page = client.get("/", params={"campaign": "c_group"})
        fraud_page = client.get("/fraud")
    assert page.status_code == 200
    selected = re.search(r'<option translate="no" value="([^"]*)" selected>([^<]*)</option>', page.text)
    assert selected is not None and selected.groups() == ("c_group", "双11拼团·返场")
    assert '<option translate="no" value="c_invite">c_invite</option>' in page.text  # no title: its id
    assert fraud_page.status_code == 200 and "双11拼团·返场" in fraud_page.text


def test_breakdowns_by_campaign_show_titles_in_the_funnel_and_the_report(store, tmp_path) -> None:
    from datetime import date

    from liebian.reports import service as reports
    from liebian.web.i18n import translator
    from liebian.web.pages.analytics.funnel import _named_groups

    _import(tmp_path)
    titles = write_csv(
        tmp_path / "campaigns.csv", ["campaign_id", "title"], [["c_invite", "邀友有礼（导入）"]]
    )
    assert CliRunner().invoke(cli_app, ["import", "campaigns", str(titles)]).exit_code == 0
    _flag("bob")
    _flag("carol")
    # the funnel's groups by campaign: the title, the id of a campaign without one
    named = _named_groups(
        translator("zh-CN"), "campaign", [{"breakdown": "c_invite"}, {"breakdown": "c_none"}]
    )
    assert [r["breakdown"] for r in named] == ["邀友有礼（导入）", "c_none"]
    # the report: its fraud sheet and its recommendation name the campaign by title
    report = reports.build_report("weekly", date(2026, 11, 2), date(2026, 11, 8))
    fraud_row = next(r for r in report["fraud"] if r["campaign_id"] == "c_invite")
    assert fraud_row["title"] == "邀友有礼（导入）" and fraud_row["fraud_rate"] == 0.5
    advice = next(r for r in report["recommendations"] if r["rule"] == "fraud_rate")
    assert (
        "邀友有礼（导入）" in advice["recommendation"] and advice["params"]["campaign"] == "邀友有礼（导入）"
    )
    assert "邀友有礼（导入）" in reports.render_html(report, "en")

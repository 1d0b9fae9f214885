"""Localisation acceptance: every console page and main state crawled in real Chromium, in zh-CN
and in English. The Chinese console shows no English word outside the allow-list (brand and unit
names; code samples and data values excepted) and no raw message key; the English console shows
no Chinese outside data values. The states are arranged through the real services: a live
campaign with held referrals (a fraud case each), an alert, a generated report, an import batch,
filters applied, a refused form."""

from __future__ import annotations

from datetime import date

import pytest
from console_helpers import login, open_page
from fastapi.testclient import TestClient
from l10n_crawl import PAGES, problems_of
from test_console_alerts import _raise
from test_console_fraud import cases_of, held_referrals

from liebian.auth import service as auth
from liebian.automation import service as automation
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.ingest import service as ingest
from liebian.monitor import notifications
from liebian.monitor import rules as monitor_rules
from liebian.predict import results as predict_results
from liebian.predict import service as predict
from liebian.reports import service as reports
from liebian.tags import service as tags
from liebian.web.app import create_app
from liebian.web.messages import CATALOGUE


def _arrange_states() -> list[str]:
    """Pages of the main states, arranged through the services (the test points at the server's stores).
    Names operators give (rules, users, keys, channels) are data: the crawl expects them marked so."""
    cid, _ = held_referrals(2)
    case = cases_of(cid)[0]
    alert = _raise(cid)
    with session_scope() as s:
        # data the operator names (rules, users, keys, channels) in the other language than the page
        monitor_rules.install_default_rules(s)
        monitor_rules.create_rule(
            s, {"name": "拼团参与率", "metric": "participation_rate", "op": "<", "threshold": 0.1, "level": "一般",
                "action": "raise_reward_tier", "campaign_id": cid}, actor="l10n test",
        )  # fmt: skip
        auth.create_user(s, "cross-surface", "a long enough password 1", "analyst", actor="l10n test")
        auth.create_api_key(s, name="duckdb", actor="l10n test", kind="user", username="cross-surface")
        notifications.add_channel(s, "值班群", "webhook", "https://hooks.example.com/x", actor="l10n test")
        # a saved list of persons (a tag without a rule) and a journey triggered by an event
        tags.save_list_segment(s, f"流失名单-{cid}", [1, 2], created_by="l10n test")
        automation.create_journey(
            s, f"注册旅程-{cid}",
            {"trigger": {"type": "event", "event": "signup"},
             "steps": [{"action": {"type": "tag", "name": f"流失名单-{cid}"}}]},
        )  # fmt: skip
        # a target named in Chinese on a metric, so the kept report measures it (status and chart)
        reports.create_target(
            s, f"次日留存 32%→41% {cid}", "retention_d1", 0.32, 0.41, date(2026, 9, 1), date(2027, 1, 31)
        )
    # A new transaction: a request reads the warehouse, which the console server's flusher may hold
    # while it waits for this process's store writes to commit.
    with session_scope() as s:
        document = reports.request_document(s, "weekly", requested_by="l10n test")
        # a week before the data: the target is not measured (status "no data")
        empty = reports.request_document(
            s, "weekly", date(2020, 1, 6), date(2020, 1, 12), requested_by="l10n test"
        )
    reports.produce_document(document["id"])
    reports.produce_document(empty["id"])
    model_pages = _arrange_models()
    with warehouse.connect() as con:
        batch = ingest.list_batches(con, limit=1)[0]
    return [
        f"/campaigns/{cid}", f"/campaigns/{cid}/edit", f"/fraud/cases/{case['id']}",
        f"/campaigns/{cid}/participants",
        f"/alerts?alert={alert['id']}", f"/reports?report={document['id']}",
        f"/reports/{document['id']}/report.html", f"/import/batches/{batch['batch_id']}",
        f"/people/{case['inviter_person_id']}", *model_pages,
        f"/reports?report={empty['id']}", f"/reports/{empty['id']}/report.html",
    ]  # fmt: skip


def _arrange_models() -> list[str]:
    """A fitted LTV model and segmentation, and experiment readouts in each state: the pages show
    segment names, a readout's status and decision, whatever ran before in this store."""
    if predict_results.latest("ltv") is None:
        predict.fit_ltv()
    if predict_results.latest("segments") is None:
        predict.fit_segments()
    control, treatment = (
        {"name": "抽奖", "units": 1200, "conversions": 96},
        {"name": "限时优惠", "units": 1180},
    )
    readouts = [
        predict_results.record_readout(
            name, control, treatment | {"conversions": converted}, planned_n=planned_n
        )
        for name, converted, planned_n in (
            ("海报 A/B", 131, 3000),
            ("分享文案 B", 131, None),
            ("分享文案 C", 97, None),
        )
    ]
    # a sample-ratio mismatch (planned 50/50, observed 2:1)
    readouts.append(
        predict_results.record_readout(
            "分享文案 D", control, {"name": "限时优惠", "units": 600, "conversions": 50}
        )
    )
    return ["/ltv?by=segment", *(f"/experiments?id={r['id']}" for r in readouts)]


def _crawl(browser, console_url: str, locale: str, paths: list[str]) -> dict[str, dict]:
    # logged in on the (Chinese) login page; ?lang= then sets the console's language. A crawl of
    # every page on a shared machine: pages computed cold may take long.
    context, tab, _errors = login(browser, console_url, "admin", timeout=120_000)
    lang = "zh-CN" if locale == "zh-CN" else "en"
    found = {}
    for path in paths:
        open_page(tab, path + ("&" if "?" in path else "?") + f"lang={lang}")
        problems = problems_of(tab, lang)
        if problems:
            found[path] = problems
    context.close()
    return found


@pytest.mark.browser
def test_every_page_speaks_one_language(browser, console_url, console_store):
    paths = PAGES + _arrange_states()
    found = {locale: _crawl(browser, console_url, locale, paths) for locale in ("zh-CN", "en")}
    report = [
        f"{locale} {path}: {problems}" for locale, pages in found.items() for path, problems in pages.items()
    ]
    assert not report, "\n".join(report)


def test_validation_messages_are_translated_by_their_type(sqlite_store, admin_headers):
    """pydantic's English reasons ("String should have at least 1 character") become the console's."""
    from test_console_campaigns import _errors, _form

    with TestClient(create_app(), headers=admin_headers) as client:
        zh = _errors(client.post("/campaigns/new", data=_form(title="")).text)
        en = _errors(client.post("/campaigns/new?lang=en", data=_form(title="")).text)
        bad_id = _errors(client.post("/campaigns/new?lang=en", data=_form(id="Bad Id")).text)
    assert zh["title"] == "至少需要 1 个字符"
    assert en["title"] == "needs at least 1 character(s)" and bad_id["id"] == "wrong format"


def test_every_permission_and_quality_check_has_a_name_in_both_languages():
    from liebian.auth.policy import PERMISSIONS
    from liebian.quality.service import REASON_PREFIXES

    for permission in PERMISSIONS:
        zh, en = CATALOGUE[f"perm.{permission}"]
        assert zh and en and en == PERMISSIONS[permission]
    for prefix in REASON_PREFIXES:
        assert f"quality.reason.{prefix}" in CATALOGUE
    # a segment's traits and an experiment's conclusion are shown by code
    from liebian.predict import experiments, segment

    assert all(all(CATALOGUE[f"seg.trait.{code}"]) for code in segment.TRAITS)
    assert all(all(CATALOGUE[f"exp.verdict.{code}"]) for code in experiments.DECISIONS)

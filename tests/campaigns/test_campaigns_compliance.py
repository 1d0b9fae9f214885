"""Compliance from the mechanics: rewards for sharing are induced sharing (诱导分享) under WeChat's
external-link rules, with the rule cited and a safer alternative; an invite cap above the plan's 3
is a warning citing the plan; the check runs on any rules document (one per region variant); the
CLI fails with a non-zero exit code in every format. Over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.campaigns.compliance import TEXTS, check_rules
from liebian.cli import app as cli
from liebian.web.app import create_app


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


def in_wechat(kind: str, **overrides) -> dict:
    return rules(kind, platforms=["wechat"], **overrides)


def test_share_for_coupon_with_five_shares_is_induced_sharing(api: Api) -> None:
    api.create(in_wechat("share_coupon", shares_required=5), "share5", launch=False)
    report = api.c.get("/api/v1/campaigns/share5/compliance").json()
    assert report["passed"] is False
    (found,) = [h for h in report["hard"] if h["rule"] == "induced_sharing"]
    assert (
        found["field"] == "shares_required" and "5" in found["message"] and "诱导分享" in found["message_zh"]
    )
    assert (
        "《微信外部链接内容管理规范》" in found["citation"]
        and "《微信外部链接内容管理规范》" in found["citation_zh"]
    )
    assert found["suggestion"] and found["suggestion_zh"]
    r = api.c.post("/api/v1/campaigns/share5/launch")
    assert r.status_code == 422 and r.json()["code"] == "compliance_failed"
    assert any(e["field"] == "shares_required" for e in r.json()["errors"])


def test_assist_links_that_pay_for_forwarding_are_induced_sharing(api: Api) -> None:
    api.create(in_wechat("assist"), "kanjia", launch=False)
    report = api.c.get("/api/v1/campaigns/kanjia/compliance").json()
    assert [h["field"] for h in report["hard"] if h["rule"] == "induced_sharing"] == ["assist.required"]
    assert api.c.post("/api/v1/campaigns/kanjia/launch").status_code == 422


def test_rewards_for_a_friends_own_order_are_not_induced_sharing(api: Api) -> None:
    for kind in ("invite_task", "double_sided", "group_buy", "leaderboard"):
        report = check_rules(in_wechat(kind))
        assert all(f["rule"] != "induced_sharing" for f in report["hard"] + report["soft"]), kind


def test_outside_wechat_a_reward_for_sharing_is_a_scored_risk() -> None:
    report = check_rules(rules("share_coupon", platforms=["app"], shares_required=5))
    assert report["passed"]
    (found,) = [f for f in report["soft"] if f["rule"] == "induced_sharing"]
    assert found["score"] == 30 and report["risk_score"] >= 30


def test_an_invite_cap_above_three_is_a_warning_citing_the_plan(api: Api) -> None:
    api.create(rules("double_sided", per_inviter_cap=5), "cap5", launch=False)
    report = api.c.get("/api/v1/campaigns/cap5/compliance").json()
    (cap,) = [f for f in report["soft"] if f["rule"] == "invite_cap_high"]
    assert "5" in cap["message"] and "3" in cap["message"]
    assert "001" in cap["citation"] and "5 人调整为 3 人" in cap["citation_zh"]
    assert report["passed"]  # a warning: it may launch, with the score
    at_three = check_rules(rules("double_sided", per_inviter_cap=3))
    assert all(f["rule"] != "invite_cap_high" for f in at_three["soft"])


def test_the_check_takes_any_rules_document_such_as_a_region_variant() -> None:
    base = rules("double_sided")
    variant = {**base, "regions": ["south"], "per_inviter_cap": 8}
    assert check_rules(base)["passed"]
    assert [f["rule"] for f in check_rules(variant)["soft"]][0] == "invite_cap_high"


def test_every_text_in_both_languages() -> None:
    for rule, texts in TEXTS.items():
        for part in ("message", "citation", "suggestion"):
            zh, en = texts[part]
            assert zh.strip() and en.strip(), (rule, part)
            assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), (rule, part)


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_cli_compliance_exits_non_zero_on_failure_in_every_format(store: str, tmp_path, fmt: str) -> None:
    runner = CliRunner()
    doc = tmp_path / "share.json"
    doc.write_text(json.dumps(in_wechat("share_coupon", shares_required=5), ensure_ascii=False), "utf-8")
    assert runner.invoke(cli, ["campaign", "create", str(doc), "--id", f"cli-share-{fmt}"]).exit_code == 0
    r = runner.invoke(cli, ["campaign", "compliance", f"cli-share-{fmt}", "-f", fmt])
    assert r.exit_code == 1, r.output
    if fmt == "json":
        assert json.loads(r.stdout)["passed"] is False
    elif fmt == "csv":
        assert "induced_sharing" in r.stdout
    else:
        assert "fails: launch is blocked" in r.stdout

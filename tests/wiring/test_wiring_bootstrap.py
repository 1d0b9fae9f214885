"""The wiring: bootstrap connects every link by name; an unwired process says so; the entry points
(app factory, CLI root, scheduler) wire themselves; jobs are the wired ones."""

from __future__ import annotations

import json
import threading
import types

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian import bootstrap as bootstrap_mod
from liebian import ports
from liebian.analytics import service as analytics
from liebian.analytics.common import Filters
from liebian.bootstrap import bootstrap, default_wiring
from liebian.campaigns import jobs as campaign_jobs
from liebian.cli import app as cli
from liebian.db.session import session_scope
from liebian.fraud import inline
from liebian.identity import service as identity
from liebian.jobs import Scheduler, registry, run_job
from liebian.privacy import service as privacy
from liebian.rewards import costs, webhooks
from liebian.rewards import service as rewards
from liebian.web.app import create_app


def _named(func) -> str:
    """module.name of a wired function: a plain, importable function, not a lambda or a partial."""
    assert isinstance(func, types.FunctionType), func
    assert func.__name__ != "<lambda>" and func.__module__.startswith("liebian."), func
    return f"{func.__module__}.{func.__name__}"


def test_bootstrap_wires_every_link_with_named_functions() -> None:
    w = default_wiring()
    assert w.risk_checks and w.merge_followers and w.ledger_subscribers and w.jobs
    assert w.reward_cost is costs.reward_cost_fen
    risk = [_named(f) for f in w.risk_checks]
    # the campaign's own caps and circular check are fraud rules inside inline_check
    assert risk == ["liebian.fraud.inline.inline_check"]
    assert inline.inline_check in w.risk_checks
    assert privacy.follow_merges in w.merge_followers
    assert "liebian.campaigns.merges.follow_merges" in [_named(f) for f in w.merge_followers]
    assert webhooks.enqueue_for_entry in w.ledger_subscribers
    assert "liebian.campaigns.budget.release_on_entry" in [_named(f) for f in w.ledger_subscribers]
    assert "liebian.campaigns.outbox.reward_on_entry" in [_named(f) for f in w.ledger_subscribers]
    assert [_named(f) for f in w.conversion_followers] == ["liebian.rewards.points.follow_conversion"]
    assert (
        w.flagged_persons is not None and _named(w.flagged_persons) == "liebian.fraud.service.flagged_persons"
    )
    # anti-fraud follows merges after the campaign engine (it reads the referrals that engine moved)
    followers = [_named(f) for f in w.merge_followers]
    assert followers.index("liebian.fraud.merges.follow_merges") > followers.index(
        "liebian.campaigns.merges.follow_merges"
    )
    assert [_named(f) for f in w.import_followers] == ["liebian.fraud.known.follow_import"]
    names = [job.name for job in w.jobs]
    assert len(names) == len(set(names))
    for job in w.jobs:
        _named(job.func)
        assert job.every_seconds > 0 and job.description, job
    expected = {
        "identity-sync", "ledger-release", "webhooks-deliver", "points-expire", "campaigns-close-due",
        "campaigns-reconcile-reservations", "campaigns-stages", "campaigns-verify-orders", "fraud-scan",
        "tags-recompute", "monitor-rules",
        "monitor-escalate", "monitor-anomalies", "monitor-live", "reports", "journeys",
        "privacy-retention", "privacy-reencrypt", "fraud-known-uses",
        "complaints-escalate", "community-weekly-active",
    }  # fmt: skip
    assert set(names) == expected


def test_bootstrap_installs_once_and_keeps_what_is_installed() -> None:
    with ports.use(None):
        assert not ports.is_wired()
        first = bootstrap()
        assert ports.current() is first and bootstrap() is first  # idempotent
        fake = ports.Wiring()
        assert bootstrap(fake) is fake and ports.current() is fake  # an explicit wiring replaces
        assert bootstrap() is fake  # a second caller does not override a test's fakes
    assert ports.current() is not fake  # put back after the block


def test_a_job_source_without_jobs_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        bootstrap_mod, "JOB_SOURCES", (*bootstrap_mod.JOB_SOURCES, types.ModuleType("nojobs"))
    )
    with pytest.raises(AttributeError, match="JOBS"):
        default_wiring()
    monkeypatch.setattr(bootstrap_mod, "JOB_SOURCES", (campaign_jobs, campaign_jobs))
    with pytest.raises(ValueError, match="campaigns-close-due"):
        default_wiring()


def test_unwired_process_raises_not_wired_on_the_first_cross_domain_call(sqlite_store: str) -> None:
    with session_scope() as s:
        a = identity.resolve(s, [identity.RawIdentifier("unionid", "u-a")])
        b = identity.resolve(s, [identity.RawIdentifier("unionid", "u-b")])
        pa, pb = next(iter(a.values())), next(iter(b.values()))
    with ports.use(None):
        with session_scope() as s:
            assert identity.find_person(s, "unionid", "u-a") == pa  # no link crossed: works unwired
        with pytest.raises(ports.NotWired, match=r"bootstrap\(\)"), session_scope() as s:
            identity.merge(s, pa, pb)
        with pytest.raises(ports.NotWired, match=r"bootstrap\(\)"), session_scope() as s:
            rewards.grant(s, campaign_id="c1", person_id=pa, reward_code="R", value_fen=100, reason="",
                          source_ref="o1", idempotency_key="k1", hold_until=None)  # fmt: skip
        with pytest.raises(ports.NotWired, match=r"bootstrap\(\)"):
            analytics.costs_for(Filters())
        with pytest.raises(ports.NotWired):
            run_job("campaigns-close-due")
    with session_scope() as s:  # nothing of the refused calls was kept
        assert identity.current_person(s, pb) == pb
        assert rewards.list_rewards(s) == []
    with ports.use(ports.Wiring()), pytest.raises(ports.NotWired, match="reward-cost provider"):
        analytics.costs_for(Filters())  # a wiring without a reward-cost provider says so too


def test_cli_root_wires_the_process_and_lists_and_runs_the_campaign_jobs(data_dir) -> None:
    runner = CliRunner()
    with ports.use(None):
        r = runner.invoke(cli, ["job", "list", "--format", "json"])
        assert r.exit_code == 0, r.output
        assert ports.is_wired()
    listed = {row["job"]: row for row in json.loads(r.stdout)}
    assert listed["campaigns-close-due"]["every_seconds"] == 60
    assert listed["campaigns-reconcile-reservations"]["every_seconds"] == 3600
    assert listed["campaigns-close-due"]["description"].startswith("End launched campaigns")
    with ports.use(None):
        r = runner.invoke(cli, ["job", "run", "campaigns-close-due"])
    assert r.exit_code == 0 and "campaigns-close-due done: {'closed': []}" in r.stdout, r.output
    r = runner.invoke(cli, ["job", "run", "campaigns-reconcile-reservations"])
    assert r.exit_code == 0 and "{'released': 0}" in r.stdout, r.output
    r = runner.invoke(cli, ["job", "run", "no-such-job"])
    assert r.exit_code == 2 and "campaigns-close-due" in r.stdout


def test_app_factory_wires_the_process(sqlite_store: str) -> None:
    with ports.use(None), TestClient(create_app(run_migrations=False)) as client:
        assert client.get("/api/v1/health").status_code == 200
        assert ports.is_wired()
        assert ports.current().reward_cost is costs.reward_cost_fen


def test_a_server_whose_wiring_cannot_be_built_stops_at_start(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's import leaves the wiring for later (start-up time); its start builds it, so a job
    source without jobs stops the server before it answers a request."""
    monkeypatch.setattr(
        bootstrap_mod, "JOB_SOURCES", (*bootstrap_mod.JOB_SOURCES, types.ModuleType("nojobs"))
    )
    with (
        ports.use(None),
        pytest.raises(AttributeError, match="JOBS"),
        TestClient(create_app(run_migrations=False)),
    ):
        pass


def test_scheduler_runs_the_wired_jobs(sqlite_store: str) -> None:
    ran = threading.Event()

    def fake_job() -> dict:
        """A job of the test."""
        ran.set()
        return {}

    fake = ports.Wiring(jobs=(ports.Job("fake", fake_job, every_seconds=3600),))
    with ports.use(fake):
        assert list(registry()) == ["fake"] and registry()["fake"].description == "A job of the test."
        scheduler = Scheduler()
        scheduler.start()
        try:
            assert ran.wait(30), "the scheduler ran the wired job"
        finally:
            scheduler.stop()
        assert scheduler.last_run.keys() == {"fake"}
    with ports.use(None):
        Scheduler().stop()  # a scheduler in an unwired process wires it first
        assert ports.current().job("campaigns-close-due").func is campaign_jobs.close_due_campaigns

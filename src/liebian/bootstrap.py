"""Every link between the domains, declared in one place (cosmicpython's bootstrap.py is the model).

`default_wiring()` builds the `ports.Wiring` from the domains; `bootstrap()` installs it now. The app's
lifespan (web/app.py), the CLI root (cli.py) and the scheduler (jobs.py) call
`ports.wire_on_first_use()`, which builds it here when a link is first used (start-up time); tests
install fakes with `ports.use(...)`. The domains are imported here directly, so a job or hook that
does not exist fails with an ImportError or AttributeError when the wiring is built (the scheduler's
first run in a server, the first cross-domain call of a command), never by being skipped.

Reading guide — who calls whom through the wiring:
- risk_checks: the campaign flows (accept, conversion) run them; fraud implements them (the caps and
  the circular-referral check included, each rule once).
- merge_followers: identity.merge/link call them in the merge's transaction; every domain that keeps
  person ids in the operational store.
- ledger_subscribers: the reward ledger calls them for every entry, in the entry's transaction.
- reward_cost: analytics asks it for the KPI sheet's reward cost (CAC, ROI, LTV/CAC).
- jobs: the scheduler and `liebian job` run them.
- import_followers: the importer calls them after a batch is committed to the warehouse; anti-fraud
  learns the devices and IP addresses of imported events (`fraud.known`).
- conversion_followers: the campaign flows call them when a referred purchase qualifies and when it
  is refunded, in that transaction; the points ledger (积分) earns and revokes points.
- other_cost: analytics asks it for the operator-entered other costs (media, staff, tools), pro-rated.
- reward_ledger: the community KOC programme grants its task rewards through the reward ledger.
"""

from __future__ import annotations

from liebian import ports
from liebian.automation import jobs as automation_jobs
from liebian.campaigns import budget as campaign_budget
from liebian.campaigns import jobs as campaign_jobs
from liebian.campaigns import merges as campaign_merges
from liebian.campaigns import outbox as campaign_outbox
from liebian.community import jobs as community_jobs
from liebian.complaints import jobs as complaint_jobs
from liebian.costs import service as other_costs
from liebian.fraud import inline as fraud_inline
from liebian.fraud import jobs as fraud_jobs
from liebian.fraud import known as fraud_known
from liebian.fraud import merges as fraud_merges
from liebian.fraud import service as fraud_service
from liebian.identity import jobs as identity_jobs
from liebian.monitor import jobs as monitor_jobs
from liebian.privacy import jobs as privacy_jobs
from liebian.privacy import service as privacy
from liebian.reports import jobs as report_jobs
from liebian.rewards import costs as reward_costs
from liebian.rewards import jobs as reward_jobs
from liebian.rewards import points, webhooks
from liebian.rewards import service as reward_ledger
from liebian.tags import jobs as tag_jobs

# Each domain's scheduled jobs, in the order the scheduler runs them.
JOB_SOURCES = (
    identity_jobs,
    reward_jobs,
    campaign_jobs,
    fraud_jobs,
    tag_jobs,
    monitor_jobs,
    report_jobs,
    automation_jobs,
    privacy_jobs,
    complaint_jobs,
    community_jobs,
)


def default_wiring() -> ports.Wiring:
    """The links of the real system."""
    jobs = tuple(job for module in JOB_SOURCES for job in module.JOBS)
    names = [job.name for job in jobs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"two jobs share a name: {', '.join(duplicates)}")
    return ports.Wiring(
        risk_checks=fraud_inline.RISK_CHECKS,
        merge_followers=(campaign_merges.follow_merges, privacy.follow_merges, fraud_merges.follow_merges),
        ledger_subscribers=(
            webhooks.enqueue_for_entry,
            campaign_budget.release_on_entry,
            campaign_outbox.reward_on_entry,
        ),
        reward_cost=reward_costs.reward_cost_fen,
        jobs=jobs,
        conversion_followers=(points.follow_conversion,),
        flagged_persons=fraud_service.flagged_persons,
        import_followers=(fraud_known.follow_import,),
        other_cost=other_costs.other_cost_fen,
        reward_ledger=reward_ledger,
    )


def bootstrap(wiring: ports.Wiring | None = None) -> ports.Wiring:
    """Install `wiring` (default: the real one) and return what is installed.

    Idempotent: without an argument, a process that is wired already keeps its wiring (a second
    caller — the scheduler inside the server, a test's fakes — is not overridden)."""
    if wiring is not None:
        return ports.install(wiring)
    if ports.is_wired():
        return ports.current()
    return ports.install(default_wiring())

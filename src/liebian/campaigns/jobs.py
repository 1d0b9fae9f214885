"""Scheduled campaign jobs (`liebian job run NAME` for cron; `liebian campaign close-due` does the first)."""

from __future__ import annotations

from liebian.campaigns import budget, service, stages, verification
from liebian.db.session import session_scope
from liebian.ports import Job


def close_due_campaigns() -> dict:
    """End launched campaigns past their end date; leaderboards grant their ranks."""
    with session_scope() as session:
        return {"closed": service.close_due(session)}


def reconcile_reservations() -> dict[str, int]:
    """Repair: give back the budget of rewards rejected or revoked whose reservation is still held."""
    with session_scope() as session:
        return {"released": budget.reconcile_reservations(session)}


def check_stages() -> dict[str, list[str]]:
    """Staged campaigns: record gate outcomes, move on where auto_advance is set, fire exit rules."""
    with session_scope() as session:
        return stages.run_due(session)


def verify_orders() -> dict[str, int]:
    """Pending public-key conversions: confirm those whose order reached the warehouse (import,
    collector), then reject those unconfirmed for `conversion_confirm_hours` (audited)."""
    with session_scope() as session:
        found = verification.confirm_from_warehouse(session)
    with session_scope() as session:
        verification.confirm_known(session)
    with session_scope() as session:
        return {"confirmed_from_imports": found, "rejected": verification.expire_pending(session)}


JOBS = (
    Job("campaigns-close-due", close_due_campaigns, every_seconds=60),
    # A repair, slower: budget goes back where a reward is refused; this catches what was missed.
    Job("campaigns-reconcile-reservations", reconcile_reservations, every_seconds=3600),
    # 001 §4.1: stage gates and the exit rule (fission rate < 10 % → raise rewards or pause)
    Job("campaigns-stages", check_stages, every_seconds=600),
    # Public-key conversions wait for a trusted order; imports confirm them, the clock rejects them.
    Job("campaigns-verify-orders", verify_orders, every_seconds=300),
)

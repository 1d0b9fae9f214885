"""The seams between domains and the one object that connects them at run time.

Some links cross domains in the direction the import graph must not: the campaign flows run the
fraud rules, every domain that keeps person ids follows OneID merges, the ledger tells its
subscribers (webhooks, campaign budgets) about each entry, analytics asks the ledger what rewards
cost, the scheduler runs every domain's jobs, the points ledger follows qualified conversions and
their refunds. Each link is a field of `Wiring`.

`liebian.bootstrap.bootstrap()` builds the real `Wiring` from the domains and installs it. The app's
lifespan, the CLI root and the scheduler call `wire_on_first_use()` instead: the real wiring is built
(every domain's jobs and hooks imported) when a link is first used, not at start-up, so a worker
answers sooner and a command imports only what it runs. Tests install fakes with `use(...)`.
Nothing here is filled by importing a module, and a process that was never wired says so
(`NotWired`) instead of silently running without fraud rules or merge followers.

This module imports no domain: every domain may import it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from liebian.lazy import collector_paused

if TYPE_CHECKING:  # types only: importing them at run time would pull domains into this module
    import duckdb
    from sqlalchemy.orm import Session

    from liebian.risk import RiskCheck


@dataclass(frozen=True)
class Job:
    """A scheduled job: a plain function run by the server's scheduler and by `liebian job NAME`."""

    name: str
    func: Callable[[], Any]
    every_seconds: float
    description: str = ""  # default: the first line of the function's docstring

    def __post_init__(self) -> None:
        if not self.description:
            summary = (self.func.__doc__ or "").strip().split("\n")[0]
            object.__setattr__(self, "description", summary)


# (session, {old person id: surviving person id}) — called in the merge's transaction; what it
# returns is ignored (`object`, so a follower that counts what it moved fits).
MergeFollower = Callable[["Session", dict[int, int]], object]
# (session, ledger entry, reward view as a dict) — called in the entry's transaction; what it
# returns is ignored.
LedgerSubscriber = Callable[["Session", dict[str, Any], dict[str, Any]], object]
# (analytics filters) -> reward cost in fen for the rewards those filters select.
RewardCostProvider = Callable[[Any], int]
# () -> the person ids anti-fraud flags (a case open or rejected, as the friend or its inviter):
# analytics leaves them out of the KOC ranking and its qualified invitees.
FlaggedPersons = Callable[[], frozenset[int]]
# (analytics filters) -> the operator-entered other costs in fen (media, staff, tools) for them.
OtherCostProvider = Callable[[Any], int]


@dataclass(frozen=True)
class Conversion:
    """A campaign order of a referred friend that qualified the referral, or its refund; the
    campaign flows hand it to every conversion follower (the points ledger) in their transaction."""

    event: str  # "qualified" | "refunded"
    campaign_id: str
    order_id: str
    source_ref: str  # the ledger's reference of the order (rewards and points earned by it)
    friend_person_id: int
    inviter_person_id: int
    amount_fen: int
    ordered_at: datetime  # naive UTC
    held: bool = False  # the referral is held for fraud review
    # the campaign version's points rule: per_yuan, multiplier, window_start, window_end, earner
    points: Mapping[str, Any] | None = None
    actor: str = "system"


# (session, conversion) — called in the conversion's (or refund's) transaction; what it returns is
# ignored.
ConversionFollower = Callable[["Session", Conversion], object]


# (warehouse connection, kind, batch id) — called after an import batch is committed to the
# warehouse, inside the import's write lock (anti-fraud learns the devices and IPs of imported
# events); what it returns is ignored.
ImportFollower = Callable[["duckdb.DuckDBPyConnection", str, str], object]


class RewardLedger(Protocol):
    """The reward ledger as another domain uses it (`rewards.service`; the KOC programme grants its
    task rewards through it): an idempotent grant, a reward by id, the chain's verification."""

    def grant(
        self,
        session: Session,
        *,
        campaign_id: str,
        person_id: int,
        reward_code: str,
        value_fen: int,
        reason: str,
        source_ref: str,
        idempotency_key: str,
        hold_until: datetime | None,
        held_for_review: bool = False,
    ) -> Any: ...

    def get_reward(self, session: Session, reward_id: int) -> Any: ...

    def verify_chain(self, session: Session) -> Any: ...


@dataclass(frozen=True)
class Wiring:
    risk_checks: tuple[RiskCheck, ...] = ()
    merge_followers: tuple[MergeFollower, ...] = ()
    ledger_subscribers: tuple[LedgerSubscriber, ...] = ()
    reward_cost: RewardCostProvider | None = None
    jobs: tuple[Job, ...] = ()
    conversion_followers: tuple[ConversionFollower, ...] = ()
    flagged_persons: FlaggedPersons | None = None
    import_followers: tuple[ImportFollower, ...] = ()
    other_cost: OtherCostProvider | None = None
    reward_ledger: RewardLedger | None = None

    def with_(self, **changes: Any) -> Wiring:
        """A copy with some links replaced (tests: the real wiring with one fake)."""
        return replace(self, **changes)

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        known = ", ".join(sorted(j.name for j in self.jobs)) or "none"
        raise KeyError(f"unknown job {name!r}; known jobs: {known}")


class NotWired(RuntimeError):
    """A cross-domain link was used before `liebian.bootstrap.bootstrap()` ran in this process."""


_current: Wiring | None = None
# What builds the wiring on first use (wire_on_first_use); None when nothing is pending.
_pending: Callable[[], Wiring] | None = None
_build_lock = threading.RLock()

# The real wiring's builder, named rather than imported: bootstrap imports every domain and every
# domain imports this module (an import would be a cycle, and would cost every process the domains).
DEFAULT_WIRING = "liebian.bootstrap"


def default_wiring() -> Wiring:
    """The real wiring, `liebian.bootstrap.default_wiring()` (imported now)."""
    builder: Callable[[], Wiring] = importlib.import_module(DEFAULT_WIRING).default_wiring
    return builder()


def install(wiring: Wiring) -> Wiring:
    global _current, _pending
    _current, _pending = wiring, None
    return wiring


def wire_on_first_use(builder: Callable[[], Wiring] = default_wiring) -> None:
    """Wire the process with `builder()` (default: the real wiring) when a link is first used.

    Nothing happens in a process that is wired, or will be, already (a test's fakes stay). A builder
    that fails (a job or hook that does not exist) raises at that first use, and again at the next."""
    global _pending
    with _build_lock:
        if _current is None and _pending is None:
            _pending = builder


def current() -> Wiring:
    if _current is None:
        with _build_lock:  # several threads at once (scheduler, request threads): one builds
            if _current is None and _pending is not None:
                with collector_paused():  # the real wiring imports every domain (start-up time)
                    install(_pending())
    if _current is None:
        raise NotWired(
            "liebian is not wired in this process: call liebian.bootstrap.bootstrap() first "
            "(the app factory, the CLI root and the scheduler do)"
        )
    return _current


def is_wired() -> bool:
    """Whether the process is wired, or will be on first use (`wire_on_first_use`)."""
    return _current is not None or _pending is not None


@contextmanager
def use(wiring: Wiring | None) -> Iterator[Wiring | None]:
    """Install `wiring` for the duration of a block (tests), then put back what was there.

    `use(None)` runs the block unwired: the first cross-domain call raises `NotWired`."""
    global _current, _pending
    previous = _current, _pending
    _current, _pending = wiring, None
    try:
        yield wiring
    finally:
        _current, _pending = previous

"""Group commit for the reward ledger: appends that would queue on the ledger-head lock, one
transaction each, are written together in one transaction instead.

Every append takes the head lock (`chain.lock_head`) until its transaction ends, so concurrent
appenders run one after another and each pays a whole transaction (BEGIN, the head lock, COMMIT
with its WAL write or network round trip). Here a caller queues its operation; the first caller to
find no group being written becomes the leader: it takes the queue (up to `max_group`
operations), runs them in one transaction — the head locked once, the entries chained in queue
order exactly as one-by-one appends would chain them — and commits once; then it hands the
leadership to the first caller still queued and returns. The chain is the same chain: `verify_chain`
checks it as before, and idempotency keys work as before (a repeated key in the same group returns
the first call's reward).

Failures (chosen: one refused operation does not take the others with it):
- the group runs without savepoints; when an operation raises (a `LedgerError` such as
  `idempotency_conflict` or `illegal_transition`, a database error), the group's transaction is
  rolled back and the group written again with each operation in a SAVEPOINT of its own: the
  failing one's writes are rolled back, its caller gets the exception, the others are committed
  (operations are idempotent ledger calls, so running one again is safe);
- when the group's COMMIT itself fails, nothing of the group was written and every caller of the
  group gets that exception (a clear failure, never a silent loss).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from liebian.db.session import session_scope
from liebian.rewards import service

MAX_GROUP = 256  # operations per transaction: bounds the leader's extra latency


@dataclass
class _Pending:
    run: Callable[[Session], Any]
    woken: threading.Event = field(default_factory=threading.Event)  # done, or to lead the next group
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommitter:
    """Queues ledger operations of many threads and writes them in groups (see the module doc).
    One per operational store and process (`committer`)."""

    def __init__(self, url: str | None = None, *, max_group: int = MAX_GROUP) -> None:
        self.url = url
        self.max_group = max_group
        self._mutex = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False
        self.groups = 0  # transactions written (for the benchmark and the tests)

    def submit(self, run: Callable[[Session], Any]) -> Any:
        """Run `run(session)` in a group's transaction once it committed; its result, or its error."""
        mine = _Pending(run)
        with self._mutex:
            self._queue.append(mine)
            lead = not self._leading
            self._leading = True
        if not lead:
            mine.woken.wait()
        if not mine.done:  # the leader: write a group (which holds this operation: it is first)
            self._write_group()
        if mine.error is not None:
            raise mine.error
        return mine.result

    def grant(self, **fields: Any) -> service.RewardView:
        """`service.grant` through the group (the same keyword arguments, the same answers)."""
        view: service.RewardView = self.submit(lambda s: service.grant(s, **fields))
        return view

    def transition(self, reward_id: int, to_state: str, **fields: Any) -> service.RewardView:
        """`service.transition` through the group (idempotency_key, actor, note)."""
        view: service.RewardView = self.submit(lambda s: service.transition(s, reward_id, to_state, **fields))
        return view

    def _write_group(self) -> None:
        with self._mutex:
            group = self._queue[: self.max_group]
            del self._queue[: len(group)]
        try:
            self._commit(group)
        finally:
            with self._mutex:
                following = self._queue[0] if self._queue else None
                if following is None:
                    self._leading = False
            for p in group:
                p.done = True
                p.woken.set()
            if following is not None:  # the next group is written by a caller waiting in it
                following.woken.set()

    def _commit(self, group: list[_Pending]) -> None:
        try:
            try:
                self._run(group, isolated=False)
            except _Refused:  # one operation failed: write the group again, each in a savepoint
                self._run(group, isolated=True)
            self.groups += 1
        except BaseException as exc:  # the commit failed: nothing of the group was written
            for p in group:
                p.error, p.result = exc, None
            if not isinstance(exc, Exception):
                raise

    def _run(self, group: list[_Pending], *, isolated: bool) -> None:
        """One transaction for the group. Not `isolated` (the usual case, nothing fails): the
        operations one after another, and the first failure rolls the whole group back (`_Refused`);
        `isolated`: each in a SAVEPOINT, a failure rolled back alone and kept for its caller."""
        with session_scope(self.url) as s:
            for p in group:
                p.error, p.result = None, None
                if not isolated:
                    try:
                        p.result = p.run(s)
                    except Exception as exc:
                        raise _Refused from exc
                    continue
                try:
                    with s.begin_nested():
                        p.result = p.run(s)
                except Exception as exc:  # this operation's writes are rolled back, not the others'
                    p.error = exc


class _Refused(Exception):
    """An operation of a group failed: the group's transaction is rolled back and written again."""


_committers: dict[str | None, GroupCommitter] = {}
_committers_lock = threading.Lock()


def committer(url: str | None = None) -> GroupCommitter:
    """The process's group committer of a store (`url` None: the configured one)."""
    with _committers_lock:
        found = _committers.get(url)
        if found is None:
            found = _committers[url] = GroupCommitter(url)
        return found

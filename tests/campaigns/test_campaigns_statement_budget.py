"""The referral loop's statements per request, pinned (issue #23).

Each statement is a round trip to the store and most of a request's server CPU: an accept or a
conversion that starts reading a row again, or writes row by row, fails here instead of showing up
as a slower benchmark weeks later. The counts are the SQL statements the store receives during
one request's transaction, on SQLite and on PostgreSQL, for the common case the benchmark measures:
a new friend accepting a double-sided campaign's invite, then the friend's first order reported
by an operator (two rewards granted through the ledger, together: `budget.grant_all`). A driver's
executemany (the ledger entries, the audit rows) is one statement here: one round trip. Lower them
when a change saves one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from campaign_helpers import FIRST_ORDER_DOUBLE_SIDED
from sqlalchemy import event

from liebian.campaigns import flows, invites, service, verification
from liebian.campaigns.schemas import AcceptRequest, ConversionRequest, Participant
from liebian.db.session import get_engine, session_scope

# The budgets (see the module docstring for what each request does).
ACCEPT_STATEMENTS = 10
CONVERSION_STATEMENTS = 22  # 29 while each reward took its own 7

RULES = FIRST_ORDER_DOUBLE_SIDED


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The statements this thread sends to the store meanwhile (background threads not counted)."""
    seen: list[str] = []
    me = threading.get_ident()

    def count(_conn, _cursor, statement, _params, _context, _many) -> None:
        if threading.get_ident() == me:
            seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _accept(code: str, friend: str) -> dict:
    with session_scope() as s:
        s.info["actor"] = "test"
        result = flows.accept_invite(s, AcceptRequest(code=code, id_type="unionid", id=friend))
    return result.__dict__


def _convert(friend: str, order_id: str) -> dict:
    req = ConversionRequest(id_type="unionid", id=friend, order_id=order_id, amount_fen=9900)
    with session_scope() as s:
        s.info["actor"] = "test"
        return verification.report(s, "budget", req, trusted=True)


def test_accept_and_conversion_stay_within_their_statement_budgets(store) -> None:
    with session_scope() as s:
        service.create_campaign(s, RULES, campaign_id="budget")
        service.launch(s, "budget")
    with session_scope() as s:
        code = invites.get_invite(s, "budget", Participant(id_type="unionid", id="inviter"))["code"]
    # a first accept and conversion warm the per-process caches (rules, versions)
    assert _accept(code, "warm")["state"] == "accepted"
    assert _convert("warm", "warm-order")["status"] == "qualified"

    with _statements() as accept:
        accepted = _accept(code, "friend")
    assert accepted["state"] == "accepted" and accepted["generation"] == 1
    with _statements() as conversion:
        converted = _convert("friend", "order-1")
    assert converted["status"] == "qualified"
    assert sorted(g["role"] for g in converted["grants"]) == ["friend", "inviter"]
    assert all(g["state"] == "granted" for g in converted["grants"])

    assert len(accept) <= ACCEPT_STATEMENTS, "\n".join(accept)
    assert len(conversion) <= CONVERSION_STATEMENTS, "\n".join(conversion)
    # the same order again changes nothing and costs little
    with _statements() as again:
        repeated = _convert("friend", "order-1")
    assert repeated["duplicate"] is True and repeated["grants"] == []
    assert len(again) < len(conversion)


def test_the_loops_statements_fit_psycopgs_statement_cache(store) -> None:
    """On PostgreSQL psycopg keeps a statement's parsed form only up to a length and a number of
    parameters; a longer one is parsed again on every request (~0.1 ms for the 4.5 KiB the inline
    risk checks' counts once took)."""
    if store != "postgres":
        return
    from psycopg import _queries  # its limits are not public

    with session_scope() as s:
        service.create_campaign(s, RULES, campaign_id="budget")
        service.launch(s, "budget")
    with session_scope() as s:
        code = invites.get_invite(s, "budget", Participant(id_type="unionid", id="inviter"))["code"]
    with _statements() as seen:
        assert _accept(code, "friend")["state"] == "accepted"
        assert _convert("friend", "order-1")["status"] == "qualified"
    too_long = [sql for sql in seen if len(sql.encode()) > _queries.MAX_CACHED_STATEMENT_LENGTH]
    assert not too_long, "\n\n".join(f"{len(sql.encode())} bytes: {sql[:200]}" for sql in too_long)

"""People shown by name in the console: the nickname they sent with their invites and a masked
identifier (138****1234, oAb…xyz), linking to their profile (/people/{id}) — never a bare 16-digit id.

Only a principal who may look persons up (`identity:read`) sees names, masked identifiers and the
link; anyone else sees the pseudonymous id as before. Tables get their labels in one pass
(`label_tables`, called by console.render): a column whose key ends in `person_id` holds persons,
a column `actor` holds who acted (an API key is shown with its name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from markupsafe import Markup
from sqlalchemy.orm import Session

from liebian.auth import service as auth_service
from liebian.auth.deps import principal_of
from liebian.campaigns import people as campaign_people
from liebian.db.session import session_scope
from liebian.identity import service as identity

# At most this many persons of one table get a name (250: about 30 ms under heavy load, see
# docs/benchmarks.md "Person labels"); rows after them show their id. No page shows more rows than this (a campaign's
# referrals: 200, the funnel's drop-off: 100); exports keep the ids.
MAX_LABELLED = 250
PERMISSION = "identity:read"


@dataclass(frozen=True)
class PersonLabel:
    person_id: int
    nickname: str = ""
    masked: str = ""
    named: bool = True  # False: the viewer may not look persons up — the id, unlinked

    @property
    def text(self) -> str:
        shown = " · ".join(part for part in (self.nickname, self.masked) if part)
        return shown if shown and self.named else str(self.person_id)

    def html(self) -> Markup:
        if not self.named:
            return Markup('<span translate="no">{}</span>').format(self.person_id)
        return Markup('<a class="person" href="/people/{0}" title="{0}" translate="no">{1}</a>').format(
            self.person_id, self.text
        )

    def __html__(self) -> Markup:  # Jinja renders a label as its link
        return self.html()


def may_name(request: Request) -> bool:
    return principal_of(request).can(PERMISSION)


def person_ids(values: Iterable[Any]) -> list[int]:
    """The person ids among cell values (ints or digit strings), each once."""
    out: dict[int, None] = {}
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int) or (isinstance(v, str) and v.isdigit() and len(v) <= 19):
            out[int(v)] = None
    return list(out)


def person_labels(session: Session, ids: Iterable[int], named: bool = True) -> dict[int, PersonLabel]:
    """Labels of these persons (nickname and masked identifier where known)."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not named:
        return {pid: PersonLabel(pid, named=False) for pid in wanted}
    nick = campaign_people.nicknames(session, wanted)
    masked = identity.display_identifiers(session, wanted)
    return {pid: PersonLabel(pid, nick.get(pid, ""), masked.get(pid, "")) for pid in wanted}


def person_label(session: Session, person_id: int, named: bool = True) -> PersonLabel:
    return person_labels(session, [person_id], named)[int(person_id)]


def actor_labels(session: Session, actors: Iterable[str]) -> dict[str, str]:
    """Who acted, readable: an API key (`key:<id>`, `user:<name>/key:<id>`) with the key's name."""
    keyed = [a for a in set(actors) if isinstance(a, str) and "key:" in a]
    if not keyed:
        return {}
    names = {k.key_id: k.name for k in auth_service.list_api_keys(session)}
    out = {}
    for actor in keyed:
        key_id = actor.rsplit("key:", 1)[1]
        if names.get(key_id):
            out[actor] = f"{actor} ({names[key_id]})"
    return out


def label_tables(request: Request, tables: Sequence[Any]) -> None:
    """Fill each `console.Table`'s `labels` for its person and actor columns (one store session for
    all; typed loosely: the console imports this module)."""
    wanted = [(t, c) for t in tables for c in t.columns if c.who and t.rows]
    if not wanted:
        return
    named = may_name(request)
    with session_scope() as s:
        for table, column in wanted:
            values = [row.get(column.key) for row in table.rows]
            if column.who == "person":
                ids = person_ids(values)[:MAX_LABELLED]
                table.labels.update(
                    {str(pid): lab.html() for pid, lab in person_labels(s, ids, named).items()}
                )
            else:
                table.labels.update(actor_labels(s, (v for v in values if isinstance(v, str))))

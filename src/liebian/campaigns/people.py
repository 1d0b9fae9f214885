"""A person as the campaign engine knows them: the nickname they sent with their invites, and who
they brought or were brought by. Read by the console's person labels and profile (web/people.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.campaigns.models import Invite, Referral

CHUNK = 900  # ids per IN (…): below SQLite's bound-parameter limit


def nicknames(session: Session, person_ids: Iterable[int]) -> dict[int, str]:
    """The latest non-empty nickname each inviter sent with an invite (any campaign or channel)."""
    wanted = sorted({int(p) for p in person_ids})
    out: dict[int, str] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = session.execute(
            select(Invite.inviter_person_id, Invite.nickname)
            .where(Invite.inviter_person_id.in_(wanted[start : start + CHUNK]), Invite.nickname != "")
            .order_by(Invite.id)
        )
        out.update({pid: nick for pid, nick in rows})  # the newest invite wins
    return out


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def persons_by_nickname(session: Session, text: str, limit: int = 50) -> list[int]:
    """Inviters whose nickname contains `text`."""
    rows = session.scalars(
        select(Invite.inviter_person_id)
        .where(Invite.nickname.like(_like(text.strip()), escape="\\"))
        .distinct()
        .limit(limit)
    )
    return sorted(rows)


def referrals_of(
    session: Session, person_ids: list[int], limit: int = 500
) -> dict[str, list[dict[str, Any]]]:
    """The person's referrals in the campaign engine: who invited them (`inviters`) and whom they
    invited (`invitees`), newest first, with each referral's state."""

    def rows(column, other) -> list[dict[str, Any]]:  # noqa: ANN001 - two columns of Referral
        found = session.execute(
            select(Referral, other)
            .where(column.in_(person_ids))
            .order_by(Referral.accepted_at.desc())
            .limit(limit)
        )
        return [
            {"person_id": pid, "campaign_id": r.campaign_id, "channel": r.channel, "state": r.state,
             "ts": r.accepted_at, "qualified_at": r.qualified_at, "referral_id": r.id}
            for r, pid in found
        ]  # fmt: skip

    return {
        "inviters": rows(Referral.friend_person_id, Referral.inviter_person_id),
        "invitees": rows(Referral.inviter_person_id, Referral.friend_person_id),
    }

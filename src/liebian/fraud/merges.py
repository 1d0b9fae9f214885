"""Anti-fraud follows OneID merges (`follow_merges`, a `ports.MergeFollower` wired in
`liebian.bootstrap` after the campaign engine's).

- Person ids in the inline rules' memory (`fraud_sightings`) and in the known uses of imported
  devices and addresses (`fraud_known_uses`) move to the surviving person.
- Re-score on merge: when a merge makes an inviter and their friend one person (a self-referral
  learned after the referral), the campaign engine holds the referral; here it gets a review case
  (`SELF_REFERRAL_MERGED`, naming the merged persons) and every reward it earned that is not final
  is held for review. Nothing is dropped: a reviewer's decision rejects (or releases) them through
  the ledger, as for any case.
"""

from __future__ import annotations

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from liebian.campaigns.models import Referral
from liebian.db.base import table_of
from liebian.fraud import known, service
from liebian.fraud.models import FraudSighting

CODE = "SELF_REFERRAL_MERGED"
ACTOR = "system:oneid-merge"
CHUNK = 500
_S = table_of(FraudSighting)


def follow_merges(session: Session, final: dict[int, int]) -> None:
    """Fraud tables follow a merge; referrals it turns into self-referrals get a case and held rewards."""
    merged = list(final)
    for start in range(0, len(merged), CHUNK):
        mapping = {m: final[m] for m in merged[start : start + CHUNK]}
        for column in (_S.c.person_id, _S.c.inviter_person_id):
            session.execute(
                update(_S).where(column.in_(mapping)).values({column.name: case(mapping, value=column)})
            )
    known.follow_merges(session, final)
    survivors = sorted(set(final.values()))
    for start in range(0, len(survivors), CHUNK):
        chunk = survivors[start : start + CHUNK]
        refs = session.scalars(
            select(Referral).where(
                Referral.friend_person_id.in_(chunk),
                Referral.friend_person_id == Referral.inviter_person_id,
                Referral.state == "held",
            )
        ).all()
        for ref in refs:
            merged_from = ", ".join(str(m) for m, s in sorted(final.items()) if s == ref.friend_person_id)
            detail = (
                f"persons {merged_from} merged into {ref.friend_person_id} by OneID after the referral: "
                "inviter and friend are one person"
            )
            service.flag_referral(session, ref, CODE, detail, actor=ACTOR)
    session.flush()

"""Who a participant is: the OneID person behind the identifiers a front end presents."""

from __future__ import annotations

from sqlalchemy.orm import Session

from liebian.campaigns.common import CampaignError
from liebian.campaigns.schemas import Participant
from liebian.identity import service as identity
from liebian.identity.keys import IdentifierError


def keys_of(p: Participant, device_id: str | None = None) -> list[identity.Key]:
    try:
        found = [identity.key_of(p.id_type, p.id)]
        for id_type, raw in p.other_ids.items():
            found.append(identity.key_of(id_type, raw))
        if device_id:
            found.append(identity.key_of("device_id", device_id))
    except IdentifierError as exc:
        raise CampaignError(422, "bad_identifier", str(exc), field=exc.field) from None
    return list(dict.fromkeys(found))


def _raw_ids(p: Participant, device_id: str | None = None) -> list[identity.RawIdentifier]:
    raws = [identity.RawIdentifier(p.id_type.strip().lower(), p.id)]
    raws += [identity.RawIdentifier(t.strip().lower(), v) for t, v in p.other_ids.items()]
    if device_id:
        raws.append(identity.RawIdentifier("device_id", device_id))
    return raws


def resolve_person(
    session: Session, p: Participant, source: str, device_id: str | None = None, known: dict | None = None
) -> int:
    """The participant's person, registering new identifiers and linking all they presented
    (`known`: the caller's look-up of the same identifiers in this transaction)."""
    keys_ = keys_of(p, device_id)
    raws = _raw_ids(p, device_id)
    persons = identity.resolve(session, raws, source=source, known=known)
    if len(keys_) > 1 and len({persons[k] for k in keys_}) > 1:
        evidence = [identity.LinkEvidence(raws[0], r, source=source) for r in raws[1:]]
        identity.link(session, evidence)
        persons = identity.lookup(session, keys_)
    return persons[keys_[0]]


def own_known(p: Participant, known: dict[identity.Key, int], require_new: bool) -> dict[identity.Key, int]:
    """What OneID knows of the friend's own identifiers, out of `known` (theirs and their device's).

    A device that only another account registered does not make the friend that account (the
    answer would be a misleading `already_accepted`, or worse, that account's referral moving): a
    campaign for new friends refuses it by its real reason, `device_not_new`; other campaigns go on
    with the friend as themself, and the risk checks judge the shared device."""
    own = set(keys_of(p))
    mine = {k: pid for k, pid in known.items() if k in own}
    if known and not mine and require_new:
        raise CampaignError(
            409, "device_not_new", "the device was already used by another account; this campaign "
            "needs a new friend on a new device", field="device_id",
        )  # fmt: skip
    return mine


def find_person(session: Session, p: Participant) -> int:
    key = keys_of(p)[0]
    pid = identity.lookup(session, [key]).get(key)
    if pid is None:
        raise CampaignError(404, "unknown_participant", f"no participant with this {key[0]}", field="id")
    return pid

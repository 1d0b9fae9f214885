"""The evidence graph of a review case: who is involved and what ties them together.

Starting from the case's friend and inviter (and the persons OneID merged into them), it gathers
the referral links between them and their neighbours in the campaign, the devices and IP addresses
they used (sighted by the inline rules, or seen in imported events), the other accounts on those
same devices and addresses, and the identifiers OneID holds for the two. Nodes carry no clear
personal data: identifiers are OneID's masked display, devices and addresses are masked or shown
by a short prefix of their keyed hash. Bounded: at most `MAX_NODES` nodes, so a star with
thousands of invitees still draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from liebian.campaigns.models import Referral
from liebian.fraud.known import value_hash
from liebian.fraud.models import FraudCase, FraudKnownUse, FraudSighting
from liebian.identity import service as identity
from liebian.identity.models import Identifier
from liebian.privacy.crypto import mask_identifier

MAX_NODES = 60
NEIGHBOURS = 12  # other accounts shown per device or address


@dataclass
class Evidence:
    """Nodes (id, kind, label, role) and edges (source, target, relation, origin)."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, Any]] = field(default_factory=list)

    def node(self, key: str, kind: str, label: str, role: str = "") -> bool:
        if key not in self.nodes:
            if len(self.nodes) >= MAX_NODES:
                return False
            self.nodes[key] = {"id": key, "kind": kind, "label": label, "role": role}
        elif role and not self.nodes[key]["role"]:
            self.nodes[key]["role"] = role
        return True

    def edge(self, source: str, target: str, relation: str, origin: str) -> None:
        if source in self.nodes and target in self.nodes:
            item = {"source": source, "target": target, "relation": relation, "origin": origin}
            if item not in self.edges:
                self.edges.append(item)

    def person(self, pid: int, role: str = "") -> str:
        key = f"p:{pid}"
        self.node(key, "person", str(pid), role)
        return key

    def as_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes.values()), "edges": self.edges}


def _ip_label(ip: str) -> str:
    parts = ip.split(".")
    return ".".join(parts[:2] + ["*", "*"]) if len(parts) == 4 else mask_identifier(ip)


def case_evidence(session: Session, case: FraudCase) -> dict[str, Any]:
    """The case's evidence graph as plain data (`nodes`, `edges`), for the console and exports."""
    ev = Evidence()
    core = {
        identity.current_person(session, case.person_id) or case.person_id: "friend",
    }
    if case.inviter_person_id is not None:
        inviter = identity.current_person(session, case.inviter_person_id) or case.inviter_person_id
        core[inviter] = "same" if inviter in core else "inviter"
    for pid, role in core.items():
        ev.person(pid, role)
        for merged in identity.merged_from(session, pid):
            ev.edge(ev.person(merged, "merged"), f"p:{pid}", "merged", "oneid")
    persons = [int(n["label"]) for n in ev.nodes.values() if n["kind"] == "person"]
    _referrals(session, ev, case.campaign_id, persons)
    _devices_and_addresses(session, ev, list(core))
    _identifiers(session, ev, list(core))
    return ev.as_dict()


def _referrals(session: Session, ev: Evidence, campaign_id: str | None, persons: list[int]) -> None:
    """Who invited whom among the case's persons and their direct neighbours in the campaign."""
    q = select(Referral).where(
        or_(Referral.friend_person_id.in_(persons), Referral.inviter_person_id.in_(persons))
    )
    if campaign_id:
        q = q.where(Referral.campaign_id == campaign_id)
    for ref in session.scalars(q.order_by(Referral.accepted_at).limit(MAX_NODES)):
        inviter, friend = ev.person(ref.inviter_person_id), ev.person(ref.friend_person_id)
        ev.edge(inviter, friend, "invited", ref.state)


def _devices_and_addresses(session: Session, ev: Evidence, persons: list[int]) -> None:
    """Devices and addresses the persons used, and the other accounts seen on the same ones."""
    used: dict[tuple[str, str], tuple[str, set[tuple[int, str]]]] = {}  # (kind, hash) → (label, users)
    sightings = session.execute(
        select(
            FraudSighting.person_id,
            FraudSighting.inviter_person_id,
            FraudSighting.device_id,
            FraudSighting.ip,
        )
        .where(or_(FraudSighting.person_id.in_(persons), FraudSighting.inviter_person_id.in_(persons)))
        .limit(500)
    ).all()
    for person, _inviter, device, ip in sightings:
        if person is None or person not in persons:
            continue
        for kind, raw, mask in (("device", device, mask_identifier), ("ip", ip, _ip_label)):
            h = value_hash(kind, raw)
            if h is not None and raw is not None:
                used.setdefault((kind, h), (mask(raw), set()))[1].add((person, "sighting"))
    known = session.scalars(select(FraudKnownUse).where(FraudKnownUse.person_id.in_(persons)).limit(500))
    for use in known:
        used.setdefault((use.kind, use.value_hash), (f"#{use.value_hash[:8]}", set()))[1].add(
            (use.person_id, "import")
        )
    for (kind, h), (label, users) in used.items():
        key = f"{kind}:{h[:16]}"
        if not ev.node(key, kind, label):
            break
        for person, origin in sorted(users):
            ev.edge(ev.person(person), key, "used", origin)
        for person, origin in _others_on(session, kind, h, persons):
            ev.edge(ev.person(person, "other"), key, "used", origin)


def _others_on(session: Session, kind: str, h: str, persons: list[int]) -> list[tuple[int, str]]:
    """Other accounts on one device or address: from sightings (clear value known) and imports."""
    out: list[tuple[int, str]] = []
    known = select(FraudKnownUse.person_id).where(
        FraudKnownUse.kind == kind, FraudKnownUse.value_hash == h, FraudKnownUse.person_id.not_in(persons)
    )
    out += [(int(p), "import") for p in session.scalars(known.limit(NEIGHBOURS))]
    column = FraudSighting.device_id if kind == "device" else FraudSighting.ip
    raws = {
        r for r in session.scalars(select(column).where(FraudSighting.person_id.in_(persons)).distinct()) if r
    }
    for raw in raws:
        if value_hash(kind, raw) == h:
            sighted = select(FraudSighting.person_id).where(
                column == raw, FraudSighting.person_id.is_not(None), FraudSighting.person_id.not_in(persons)
            )
            found = session.scalars(sighted.distinct().limit(NEIGHBOURS))
            out += [(int(p), "sighting") for p in found if p is not None]
    return out


def _identifiers(session: Session, ev: Evidence, persons: list[int]) -> None:
    """The identifiers OneID holds for the friend and the inviter (masked display)."""
    rows = session.execute(
        select(Identifier.person_id, Identifier.id_type, Identifier.display, Identifier.id)
        .where(Identifier.person_id.in_(persons))
        .order_by(Identifier.id)
        .limit(24)
    )
    for person, id_type, display, ident_id in rows:
        key = f"id:{ident_id}"
        if ev.node(key, "identifier", f"{id_type} {display}"):
            ev.edge(ev.person(person), key, "holds", "oneid")

"""Persons in the console: a search box (/people: a person id, a masked or full phone, an openid or
another identifier, a nickname) and a person's profile (/people/{id}): masked identifiers, nickname,
channels, the timeline of their events and orders (warehouse), referrals both ways, rewards, tags
and consent — times in the display zone. Identifiers are never shown in clear (a reveal is the
privacy API's audited operation); every profile read is audited (identity:read, auth.deps)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.campaigns import people as campaign_people
from liebian.db.session import session_scope
from liebian.engine.warehouse import WarehouseLocked
from liebian.identity import profile
from liebian.identity import service as identity
from liebian.privacy import service as privacy
from liebian.rewards import service as ledger
from liebian.schemas import Int64
from liebian.tags import service as tags
from liebian.web.console import Column, Table, render
from liebian.web.i18n import locale_of, translator
from liebian.web.people import may_name, person_labels

router = APIRouter(include_in_schema=False)

MAX_QUERY = 128
RESULTS = 50


def _search(text: str) -> tuple[list[int], str]:
    """Persons matching what was typed, and the problem with it (empty when fine)."""
    text = text.strip()
    if not text:
        return [], ""
    if len(text) > MAX_QUERY or "\x00" in text:
        return [], "people.q_invalid"
    found: dict[int, None] = {}
    with session_scope() as s:
        if text.isdigit() and len(text) <= 19 and int(text) < 2**63:
            current = identity.current_person(s, int(text))
            if current is not None:
                found[current] = None
        for pid in identity.persons_by_identifier(s, text, RESULTS):
            found[identity.current_person(s, pid) or pid] = None
        for pid in campaign_people.persons_by_nickname(s, text, RESULTS):
            found[identity.current_person(s, pid) or pid] = None
    return list(found)[:RESULTS], ""


@router.get("/people")
def people_search(request: Request) -> Response:
    q = request.query_params.get("q", "")
    ids, problem = _search(q)
    with session_scope() as s:
        labels = person_labels(s, ids, may_name(request))
        views = [(pid, view) for pid in ids if (view := identity.person_view(s, pid)) is not None]
    rows = [
        {"person": labels[pid], "person_id": str(pid), "created_at": view.created_at,
         "identifiers": " · ".join(i["value"] for i in view.identifiers)}
        for pid, view in views
    ]  # fmt: skip
    context = {"q": q[:MAX_QUERY], "rows": rows, "problem": problem, "searched": bool(q.strip())}
    return render(request, "people/search.html", context, status_code=422 if problem else 200)


def _tables(pid_facts: dict[str, Any]) -> list[Table]:
    """The profile's tables (each exportable from the page)."""
    f = pid_facts
    return [
        Table("identifiers", [Column("id_type", "people.id_type", codes="people.idtype"),
                              Column("value", "people.value", data=True), Column("source", "people.source", data=True),
                              Column("first_seen_at", "people.first_seen", "utc")],
              f["identifiers"], title="people.identifiers"),
        Table("channels", [Column("channel", "people.channel", codes="channel"), Column("events", "people.events", "int"),
                           Column("first_seen", "people.first_seen", "utc"), Column("last_seen", "people.last_seen", "utc")],
              f["channels"], title="people.channels"),
        Table("timeline", [Column("ts", "people.time", "utc"), Column("kind", "people.kind", codes="people.kind"),
                           Column("name", "people.what", codes="people.event", data=True),
                           Column("channel", "people.channel", codes="channel"),
                           Column("campaign_id", "people.campaign", data=True), Column("amount_fen", "people.amount", "fen")],
              f["timeline"], title="people.timeline"),
        Table("orders", [Column("order_id", "people.order", data=True), Column("ts", "people.time", "utc"),
                         Column("amount_fen", "people.amount", "fen"), Column("status", "people.status", codes="people.event", data=True),
                         Column("channel", "people.channel", codes="channel"), Column("campaign_id", "people.campaign", data=True)],
              f["orders"], title="people.orders"),
        _referral_table("inviters", f["inviters"]),
        _referral_table("invitees", f["invitees"]),
        Table("rewards", [Column("id", "rewards_page.id", "int"), Column("campaign_id", "people.campaign", data=True),
                          Column("reward_code", "rewards_page.code", data=True), Column("value_fen", "rewards_page.value", "fen"),
                          Column("state", "rewards_page.state", codes="campaigns.rstate"),
                          Column("created_at", "rewards_page.created", "utc")],
              f["rewards"], title="people.rewards"),
        Table("tags", [Column("tag", "people.tag", data=True), Column("level", "people.level", codes="tags.level"),
                       Column("since", "people.since", "utc")],
              f["tags"], title="people.tags"),
        Table("consent", [Column("purpose", "people.purpose", codes="people.purpose"),
                          Column("state", "people.consent_state", codes="people.consent"),
                          Column("notice_version", "people.notice_version", "int"),
                          Column("recorded_at", "people.recorded_at", "utc"), Column("source", "people.source", data=True)],
              f["consent"], title="people.consent"),
    ]  # fmt: skip


def _referral_table(which: str, rows: list[dict[str, Any]]) -> Table:
    return Table(
        which,
        [Column("person_id", f"people.{which}_person", data=True), Column("campaign_id", "people.campaign", data=True),
         Column("channel", "people.channel", codes="channel"), Column("state", "people.referral_state", codes="campaigns.state"),
         Column("ts", "people.time", "utc")],
        rows,
        title=f"people.{which}",
    )  # fmt: skip


def _merge_referrals(engine: list[dict[str, Any]], warehouse: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The campaign engine's referrals (with their state), then the warehouse's edges it lacks
    (imported data), newest first."""
    seen = {(r["person_id"], r["campaign_id"]) for r in engine}
    extra = [{**e, "state": None} for e in warehouse if (e["person_id"], e["campaign_id"]) not in seen]
    return sorted(engine + extra, key=lambda r: str(r["ts"] or ""), reverse=True)


@router.get("/people/{person_id}")
def person_profile(request: Request, person_id: Int64) -> Response:
    t = translator(locale_of(request))
    with session_scope() as s:
        view = identity.person_view(s, person_id)
        if view is None:
            return render(
                request, "people/profile.html", {"person": None, "person_id": person_id}, status_code=404
            )
        ids = [view.person_id, *view.merged_from]
        label = person_labels(s, [view.person_id], may_name(request))[view.person_id]
        engine_referrals = campaign_people.referrals_of(s, ids)
        rewards = [r.as_dict() for r in ledger.rewards_for(s, view.person_id)]
        person_tags = [tag.model_dump() for tag in tags.person_tags(s, view.person_id)]
        consent = privacy.consent_state(s, view.person_id)
        nickname = campaign_people.nicknames(s, ids)
    warehouse_note = ""
    try:
        facts = profile.warehouse_facts(ids)
    except WarehouseLocked:
        facts, warehouse_note = profile.WarehouseFacts(), "people.warehouse_busy"
    for c in consent:
        c["state"] = "effective" if c["effective"] else "granted" if c["granted"] else "none"
    found = {
        "identifiers": view.identifiers,
        "channels": facts.channels,
        "timeline": profile.timeline(facts),
        "orders": facts.orders,
        "inviters": _merge_referrals(engine_referrals["inviters"], facts.inviters),
        "invitees": _merge_referrals(engine_referrals["invitees"], facts.invitees),
        "rewards": rewards,
        "tags": person_tags,
        "consent": consent,
    }
    tables = _tables(found)
    context = {
        "person": view,
        "person_id": view.person_id,
        "label": label,
        "nickname": next((nickname[i] for i in ids if i in nickname), ""),
        "asked_for": person_id,
        "tables": tables,
        "warehouse_note": t(warehouse_note) if warehouse_note else "",
        "reward_total": sum(
            r["value_fen"] for r in rewards if r["state"] in ("approved", "issued", "redeemed")
        ),
    }
    return render(request, "people/profile.html", context, tables=tables)

"""A campaign's participants in the console (/campaigns/{id}/participants): each by the nickname
they sent with their invite and a masked identifier (never a bare person id), their invite link and
poster, progress toward each tier, the friends they brought (accepted / verified) and their rewards.
Paged; the export (CSV/XLSX, the console's Table machinery) has every participant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.campaigns import roster, service
from liebian.campaigns.common import CampaignError
from liebian.db.session import session_scope
from liebian.web.console import Column, Table, _principal, render
from liebian.web.format import zone_label
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.campaign_form import local_time

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
EXPORT_BATCH = 1000


def tier_goals(rules: dict[str, Any]) -> list[int]:
    """What a participant's progress is measured against: the tiers' thresholds, else the one goal
    of the type (assists needed, group size, shares); none for a leaderboard or a double-sided reward."""
    if rules.get("tiers"):
        return [int(tier["threshold"]) for tier in rules["tiers"]]
    for section, key in (("assist", "required"), ("group", "size")):
        if (rules.get(section) or {}).get(key):
            return [int(rules[section][key])]
    return []


def progress_text(t, verified: int, goals: list[int]) -> str:
    """`第 1 档 1/3 · 第 2 档 1/5`: verified friends toward each goal (capped at the goal)."""
    return " · ".join(
        f"{t('ccamp.tier_n').replace('{n}', str(i + 1))} {min(verified, goal)}/{goal}"
        for i, goal in enumerate(goals)
    )


def _row(t, p: roster.Roster, goals: list[int]) -> dict[str, Any]:
    rewards = " · ".join(f"{t('campaigns.rstate.' + state)} {n}" for state, n in p.rewards.items())
    return {
        "nickname": p.nickname or t("ccamp.no_nickname"),
        "masked": p.masked,
        "link": p.link,
        "poster": p.poster,
        "progress": progress_text(t, p.verified, goals) or "—",
        "accepted": p.accepted,
        "verified": p.verified,
        "rewards": rewards or t("ccamp.no_rewards"),
        "clicks": p.clicks,
        "joined": local_time(p.first_at),
    }


COLUMNS = [
    Column("nickname", "ccamp.col.nickname", data=True),
    Column("masked", "ccamp.col.masked", data=True),
    Column("link", "ccamp.col.link", data=True),
    Column("poster", "ccamp.col.poster", data=True),
    Column("progress", "ccamp.col.progress"),
    Column("accepted", "ccamp.col.accepted", "int"),
    Column("verified", "ccamp.col.verified", "int"),
    Column("rewards", "ccamp.col.rewards"),
    Column("clicks", "ccamp.col.clicks", "int"),
    Column("joined", "ccamp.col.joined", "datetime"),
]


def _page_number(text: str | None) -> int:
    text = text or "1"
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else 1


@router.get("/campaigns/{campaign_id}/participants")
def participants(request: Request, campaign_id: str) -> Response:

    t = translator(locale_of(request))
    exporting = request.query_params.get("export") == "participants"
    masked = _principal(request).can("identity:read")  # masked identifiers are a person look-up
    with session_scope() as s:
        try:
            campaign = service.get_campaign(s, campaign_id)
        except CampaignError:
            return render(request, "campaigns/missing.html", {"message": campaign_id}, status_code=404)
        total = roster.count(s, campaign_id)
        pages = max(1, -(-total // PAGE_SIZE))
        number = min(_page_number(request.query_params.get("page")), pages)
        if exporting:  # every participant, not just this page
            people: list[roster.Roster] = []
            while len(people) < total:
                batch = roster.page(s, campaign_id, limit=EXPORT_BATCH, offset=len(people), masked=masked)
                if not batch:
                    break
                people += batch
        else:
            people = roster.page(
                s, campaign_id, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, masked=masked
            )
    goals = tier_goals(campaign["rules"])
    rows = [_row(t, p, goals) for p in people]
    if exporting:  # the poster as a full URL, as the participant's link is
        base = str(request.base_url).rstrip("/")
        rows = [{**r, "poster": base + r["poster"] if r["poster"] else ""} for r in rows]
    table = Table("participants", COLUMNS if masked else [c for c in COLUMNS if c.key != "masked"], rows,
                  title="ccamp.participants")  # fmt: skip
    context = {
        "campaign": campaign,
        "table": table,
        "rows": rows,
        "masked": masked,
        "total": total,
        "page": number,
        "pages": pages,
        "zone": zone_label(),
    }
    return render(request, "campaigns/participants.html", context, tables=[table])

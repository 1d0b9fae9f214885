"""What is due: open complaints and data-subject requests, overdue first, with their owner, deadline
(in the display zone) and escalations. Everything comes from liebian.complaints.service
(docs/complaints.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.complaints import service
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.web.console import Column, Table, render
from liebian.web.i18n import locale_of, translator
from liebian.web.messages import CATALOGUE

router = APIRouter(include_in_schema=False)
STATES = ("overdue", "due_soon", "open")
TEXT_SHOWN = 80  # characters of the (masked) text in the list


def _local(value: datetime | None) -> str:
    if value is None:
        return ""
    zone = ZoneInfo(get_settings().timezone)
    return value.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _row(case: dict[str, Any], t: Any) -> dict[str, Any]:
    text = case["text"]
    return case | {
        "kind_label": t(f"complaints.kind.{case['kind']}"),
        "category_label": _category_label(case["category"], t),
        "state_label": t(f"complaints.state.{case['state']}"),
        "owner_label": case["owner"] or t("complaints.unassigned"),
        "text_short": text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN] + "…",
        "received_local": _local(case["received_at"]),
        "due_local": _local(case["due_at"]),
    }


def _category_label(category: str, t: Any) -> str:
    """A category by its name in the page's language; one only the settings know, as stored."""
    key = f"complaints.category.{category}"
    return t(key) if key in CATALOGUE else category


@router.get("/complaints")
def due_page(request: Request) -> Response:
    t = translator(locale_of(request))
    with session_scope() as s:
        cases = service.due(s)
    rows = [_row(c, t) for c in cases]
    counts = {st: sum(1 for c in cases if c["state"] == st) for st in STATES}
    table = Table(
        "due",
        [
            Column("id", "complaints.id", "int"),
            Column("kind_label", "complaints.kind"),
            Column("category_label", "complaints.category"),
            Column("channel", "complaints.channel"),
            Column("text_short", "complaints.text"),
            Column("owner_label", "complaints.owner"),
            Column("state_label", "complaints.state"),
            Column("received_local", "complaints.received"),
            Column("due_local", "complaints.due"),
            Column("escalations", "complaints.escalations", "int"),
        ],
        rows,
        title="complaints.list",
    )
    return render(
        request, "complaints/due.html", {"counts": counts, "states": STATES, "table": table}, tables=[table]
    )

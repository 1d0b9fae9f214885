"""The /community page: each group's members (from join/leave events, or posters only), speaking
share, weekly-active share, UGC share and check-in rate; the weekly series against each group's
target; the content calendar with each item's results; check-in streaks per person and the KOC
programme (person-level: shown to roles with segments:read), with forms to nominate KOCs, give them
tasks, change their status and grant the rewards of completed tasks. Everything comes from
liebian.community (docs/monitoring.md, community section)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from decimal import InvalidOperation
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from liebian.auth.deps import principal_of
from liebian.community import content_calendar, days, koc, programme, schemas, service
from liebian.community.service import CommunityError
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.errors import DomainError
from liebian.web.console import Column, ConsoleFilters, Table, flash_fragment, htmx_redirect, render
from liebian.web.i18n import format_percent, locale_of, translator
from liebian.web.pages.campaign_form import fen_from_yuan

router = APIRouter(include_in_schema=False)

TEMPLATE = "community/community.html"
WEEKS = 8  # the default window: the last eight weeks


def _window(filters: ConsoleFilters) -> tuple[date, date]:
    """The page's [start, end]; raises CommunityError on a date that does not parse."""
    try:
        end = date.fromisoformat(filters.end) if filters.end else days.today()
        start = (
            date.fromisoformat(filters.start)
            if filters.start
            else end - timedelta(weeks=WEEKS) + timedelta(1)
        )
    except ValueError as exc:
        raise CommunityError(f"start/end: {exc}") from None
    return start, end


def _group_rows(t: Any, start: date, end: date) -> list[dict[str, Any]]:
    with warehouse.connect() as con:
        health = service.group_health(con, start, end)
        ugc = {g.group_id: g for g in programme.ugc_share(con, start, end)}
        rates = {g.group_id: g.rate for g in programme.checkins(con, start, end).groups}
    return [
        h | {"basis": t(f"community.basis.{h['membership_basis']}"),
             "ugc_share": ugc[h["group_id"]].ugc_share if h["group_id"] in ugc else None,
             "staff_messages": ugc[h["group_id"]].staff_messages if h["group_id"] in ugc else 0,
             "checkin_rate": rates.get(h["group_id"])}
        for h in health
    ]  # fmt: skip


def _week_rows(t: Any, start: date, end: date) -> list[dict[str, Any]]:
    with warehouse.connect() as con, session_scope() as s:
        weeks = programme.weekly_active(con, s, start, end)
    status = {True: "community.status.below", False: "community.status.met"}
    return [
        asdict(w) | {"basis": t(f"community.basis.{w.basis}"),
                     "status": t(status[w.below_target] if w.share is not None else "community.status.none")}
        for w in weeks
    ]  # fmt: skip


def _tables(request: Request, t: Any, start: date, end: date) -> list[Table]:
    c = "community.col."
    tables = [
        Table("community_groups", [
            Column("group_id", c + "group", data=True), Column("basis", c + "basis"), Column("members", c + "members", "int"),
            Column("speakers", c + "speakers", "int"), Column("speaking_share", c + "speaking_share", "pct"),
            Column("weekly_active_share", c + "weekly_active_share", "pct"),
            Column("ugc_share", c + "ugc_share", "pct"), Column("staff_messages", c + "staff_messages", "int"),
            Column("checkin_rate", c + "checkin_rate", "pct"),
        ], _group_rows(t, start, end), title="community.groups"),
        Table("community_weekly", [
            Column("group_id", c + "group", data=True), Column("week", c + "week", "date"), Column("basis", c + "basis"),
            Column("members", c + "members", "int"), Column("active", c + "active", "int"),
            Column("share", c + "share", "pct"), Column("target", c + "target", "pct"),
            Column("status", c + "status"),
        ], _week_rows(t, start, end), title="community.weekly"),
    ]  # fmt: skip
    with warehouse.connect() as con, session_scope() as s:
        items = content_calendar.calendar(con, s, start, end)
    tables.append(Table("community_calendar", [
        Column("day", c + "day", "date"), Column("group_id", c + "group", data=True), Column("kind", c + "kind"),
        Column("title", c + "title", data=True), Column("theme", c + "theme", data=True), Column("messages", c + "messages", "int"),
        Column("posters", c + "posters", "int"), Column("checkins", c + "checkins", "int"),
        Column("theme_messages", c + "theme_messages", "int"),
        Column("baseline_messages", c + "baseline_messages", "float"),
    ], [i.model_dump() | {"kind": t(f"community.kind.{i.kind}")} for i in items], title="community.calendar"))  # fmt: skip
    if principal_of(request).can("segments:read"):  # person ids: as GET /api/v1/community/checkins
        with warehouse.connect() as con:
            persons = programme.checkins(con, start, end, limit=50).persons
        tables.append(Table("community_checkins", [
            Column("person_id", c + "person", data=True), Column("days", c + "days", "int"),
            Column("current_streak", c + "current_streak", "int"),
            Column("longest_streak", c + "longest_streak", "int"), Column("last_day", c + "last_day", "date"),
        ], [asdict(p) for p in persons], title="community.checkins"))  # fmt: skip
        tables += _koc_tables(start, end)
    return tables


def _koc_tables(start: date, end: date) -> list[Table]:
    """The KOC programme: results per KOC over the window, and every task with its progress."""
    c = "plans.koc.col."
    with warehouse.connect() as con, session_scope() as s:
        results = [r.model_dump() for r in koc.results(s, con, start, end)]
        tasks = koc.list_tasks(s, con)
    return [
        Table("community_koc", [
            Column("koc_id", c + "koc", data=True), Column("person_id", "community.col.person", data=True),
            Column("group_id", "community.col.group", data=True), Column("status", c + "status", codes="plans.koc.status"),
            Column("tasks", c + "tasks", "int"), Column("tasks_done", c + "tasks_done", "int"),
            Column("ugc_messages", c + "ugc_messages", "int"), Column("ugc_share", c + "ugc_share", "pct"),
            Column("invitees", c + "invitees", "int"), Column("reward_fen", c + "reward", "fen"),
            Column("reward_cost_fen", c + "reward_cost", "fen"),
        ], results, title="plans.koc.results"),
        Table("community_koc_tasks", [
            Column("id", c + "task", data=True), Column("koc_id", c + "koc", data=True),
            Column("person_id", "community.col.person", data=True), Column("kind", c + "kind", codes="plans.koc.kind"),
            Column("start", c + "start", "date"), Column("end", c + "end", "date"), Column("target", c + "target", "int"),
            Column("progress", c + "progress", "int"), Column("reward_fen", c + "reward", "fen"),
            Column("reward_id", c + "reward_id", data=True),
        ], tasks, title="plans.koc.tasks"),
    ]  # fmt: skip


@router.get("/community")
def community_page(request: Request) -> Response:
    t = translator(locale_of(request))
    filters = ConsoleFilters.from_request(request)
    settings = get_settings()
    context: dict[str, Any] = {
        "filters": filters, "options": {}, "error": None,
        "targets_line": t("community.targets").format(
            default=format_percent(settings.community_weekly_active_target),
            goal=format_percent(settings.community_weekly_active_goal)),
    }  # fmt: skip
    try:
        start, end = _window(filters)
        tables = _tables(request, t, start, end)
    except CommunityError as exc:
        return render(
            request, TEMPLATE, context | {"error": f"{t('community.bad_date')}: {exc}"}, status_code=422
        )
    principal = principal_of(request)
    if principal.can("segments:read"):
        with session_scope() as s:
            context["kocs"] = [k for k in koc.list_kocs(s) if k["status"] != "retired"]
    context |= {"can_write": principal.can("campaign:write"), "can_settle": principal.can("rewards:write"),
                "koc_kinds": koc.KINDS, "koc_statuses": koc.STATUSES}  # fmt: skip
    return render(request, TEMPLATE, context | {"tables": tables}, tables=tables)


# ------------------------------------------------------------------ the KOC programme's forms

KOC_FIELDS = ("person_id", "group_id", "koc_id", "kind", "target", "start", "end", "reward", "status")


def _refused(request: Request, field: str | None) -> Response:
    """The catalogued reason of a refused KOC form, naming the field."""
    t = translator(locale_of(request))
    key = f"plans.koc.invalid.{field}" if field in KOC_FIELDS else "plans.koc.invalid.other"
    return flash_fragment(t(key), ok=False, retarget="#koc-result")


def _first_field(exc: ValidationError) -> str | None:
    loc = exc.errors()[0]["loc"]
    return str(loc[0]) if loc else None


@router.post("/community/koc")
def koc_nominate(request: Request, person_id: str = Form(""), group_id: str = Form("")) -> Response:
    try:
        body = schemas.KocIn.model_validate({"person_id": person_id.strip(), "group_id": group_id.strip()})
        with warehouse.connect() as con, session_scope() as s:
            koc.nominate(s, con, body.person_id, body.group_id, principal_of(request).name)
    except ValidationError as exc:
        return _refused(request, _first_field(exc))
    except DomainError as exc:
        return _refused(request, exc.field or "person_id")
    return htmx_redirect("/community")


@router.post("/community/koc/task")
def koc_task(
    request: Request, koc_id: str = Form(""), kind: str = Form(""), target: str = Form(""),
    start: str = Form(""), end: str = Form(""), reward_yuan: str = Form("0"),
) -> Response:  # fmt: skip
    try:
        fen = fen_from_yuan(reward_yuan or "0")
    except (InvalidOperation, ValueError):
        return _refused(request, "reward")
    try:
        body = schemas.KocTaskIn.model_validate(
            {
                "koc_id": koc_id,
                "kind": kind,
                "target": target.strip(),
                "start": start,
                "end": end,
                "reward_fen": fen,
            }
        )
        with session_scope() as s:
            koc.add_task(s, body.koc_id, body.kind, body.target, body.start, body.end, body.reward_fen,
                         principal_of(request).name)  # fmt: skip
    except ValidationError as exc:
        field = _first_field(exc)
        return _refused(request, "reward" if field == "reward_fen" else field)
    except DomainError as exc:
        field = exc.field or exc.message.partition(":")[0]
        return _refused(request, "reward" if field == "reward_fen" else field)
    return htmx_redirect("/community")


@router.post("/community/koc/status")
def koc_status(request: Request, koc_id: str = Form(""), status: str = Form("")) -> Response:
    try:
        body = schemas.KocStatusIn.model_validate({"status": status})
        with session_scope() as s:
            koc.set_status(s, int(koc_id), body.status, principal_of(request).name)
    except ValidationError:
        return _refused(request, "status")
    except ValueError:
        return _refused(request, "koc_id")
    except DomainError as exc:
        return _refused(request, exc.field or exc.message.partition(":")[0])
    return htmx_redirect("/community")


@router.post("/community/koc/settle")
def koc_settle(request: Request) -> Response:
    t = translator(locale_of(request))
    with warehouse.connect() as con, session_scope() as s:
        rewarded = koc.settle(s, con, principal_of(request).name)
    return flash_fragment(t("plans.koc.settled").format(n=len(rewarded)), retarget="#koc-result")

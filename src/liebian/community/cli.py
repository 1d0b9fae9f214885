"""`liebian community …`: group health, negative share per group and day, KOC candidates, sentiment,
and the programme: weekly-active share against targets, check-ins with streaks, UGC share."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta

import typer

from liebian.community import content_calendar, days, koc, programme, sentiment, service
from liebian.community.service import CommunityError
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.errors import DomainError
from liebian.output import Format, emit, err_console

app = typer.Typer(no_args_is_help=True)
FMT = typer.Option(Format.table, "--format")


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err_console.print(f"[red]{field}: {value!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None


def _with_con(fn, *args):
    try:
        with warehouse.connect() as con:
            return fn(con, *args)
    except CommunityError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command("health")
def health(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), fmt: Format = FMT,
) -> None:  # fmt: skip
    """Members, speaking share, messages per member, weekly active share, interactions, themes."""
    rows = _with_con(service.group_health, _day(start, "start"), _day(end, "end"), group_id)
    if fmt != Format.json:
        rows = [
            {**r, "themes": ", ".join(f"{k} {v}" for k, v in list(r["themes"].items())[:3])} for r in rows
        ]
    emit(rows, fmt)


@app.command("negative")
def negative(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), only_alerts: bool = typer.Option(False, "--only-alerts"),
    fmt: Format = FMT,
) -> None:  # fmt: skip
    """Negative-sentiment share per group and day (alert: ≥ 10 messages and > 5%)."""
    rows = _with_con(service.negative_share, _day(start, "start"), _day(end, "end"), group_id)
    emit([r for r in rows if r["alert"]] if only_alerts else rows, fmt)


@app.command("contributors")
def contributors(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), limit: int = typer.Option(20, min=1, max=1000), fmt: Format = FMT,
) -> None:  # fmt: skip
    """Top contributors (KOC candidates) by messages: pseudonymous person ids."""
    emit(_with_con(service.top_contributors, _day(start, "start"), _day(end, "end"), group_id, limit), fmt)


@app.command("sentiment")
def sentiment_(texts: list[str], fmt: Format = FMT) -> None:
    """Classify Chinese messages (offline lexicon): positive / negative / neutral."""
    emit(
        [
            {"text": t, **{k: v for k, v in vars(sentiment.classify(t)).items() if k != "terms"}}
            for t in texts
        ],
        fmt,
    )


@app.command("weekly-active")
def weekly_active(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), below_only: bool = typer.Option(False, "--below-only"),
    fmt: Format = FMT,
) -> None:  # fmt: skip
    """Weekly-active share per group and week against its target (default: the last 8 weeks)."""
    last = _day(end, "end") or days.today()
    first = _day(start, "start") or last - timedelta(weeks=7)
    with session_scope() as s:
        rows = [asdict(w) for w in _with_con(programme.weekly_active, s, first, last, group_id)]
    emit([r for r in rows if r["below_target"]] if below_only else rows, fmt)


@app.command("targets")
def targets(fmt: Format = FMT) -> None:
    """The weekly-active targets: the default, the plans' goal and each group's own."""
    settings = get_settings()
    with session_scope() as s:
        own = programme.targets(s)
    rows = [{"group_id": "*", "target": settings.community_weekly_active_target}]
    emit([*rows, *({"group_id": g, "target": t} for g, t in own.items())], fmt)


@app.command("target-set")
def target_set(group_id: str, target: float, actor: str = typer.Option("cli", "--actor")) -> None:
    """Set a group's weekly-active target (a share, e.g. 0.2)."""
    try:
        with session_scope() as s:
            programme.set_target(s, group_id, target, actor)
    except CommunityError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    emit([{"group_id": group_id, "target": target}], Format.table)


@app.command("target-clear")
def target_clear(group_id: str, actor: str = typer.Option("cli", "--actor")) -> None:
    """Remove a group's own target: it falls back to the default."""
    with session_scope() as s:
        if not programme.clear_target(s, group_id, actor):
            err_console.print(f"[red]group_id: {group_id!r} has no target of its own[/red]")
            raise typer.Exit(1)


@app.command("checkins")
def checkins(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), limit: int = typer.Option(20, min=1, max=10_000),
    groups: bool = typer.Option(False, "--groups", help="the check-in rate per group instead of persons"),
    fmt: Format = FMT,
) -> None:  # fmt: skip
    """Check-ins: streaks per person (pseudonymous ids), or the check-in rate per group."""
    result = _with_con(programme.checkins, _day(start, "start"), _day(end, "end"), group_id, limit)
    emit([asdict(r) for r in (result.groups if groups else result.persons)], fmt)


@app.command("ugc")
def ugc(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), fmt: Format = FMT,
) -> None:  # fmt: skip
    """UGC share: member vs staff messages per group (staff: community_staff_ids, WeCom staff)."""
    emit(
        [asdict(g) for g in _with_con(programme.ugc_share, _day(start, "start"), _day(end, "end"), group_id)],
        fmt,
    )


@app.command("calendar")
def calendar(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), fmt: Format = FMT,
) -> None:  # fmt: skip
    """The content calendar (planned posts, theme days) with each item's results on its day."""
    with session_scope() as s:
        items = _with_con(content_calendar.calendar, s, _day(start, "start"), _day(end, "end"), group_id)
    emit([i.model_dump() for i in items], fmt)


@app.command("calendar-add")
def calendar_add(
    group_id: str, day: str, title: str,
    kind: str = typer.Option("post", help="post | theme_day"), theme: str | None = typer.Option(None),
    actor: str = typer.Option("cli", "--actor"),
) -> None:  # fmt: skip
    """Plan a post or a theme day for a group."""
    when = _day(day, "day")
    assert when is not None  # a required argument
    try:
        with session_scope() as s:
            item_id = content_calendar.add_item(s, group_id, when, kind, title, theme, actor)
    except CommunityError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    emit([{"id": item_id}], Format.table)


# ------------------------------------------------------------------ the KOC programme


def _koc_call(fn, *args, con: bool = False):
    """Run a KOC operation in a session (and a warehouse connection); a refusal exits 2 with its reason."""
    try:
        with session_scope() as s:
            if con:
                with warehouse.connect() as c:
                    return fn(s, c, *args)
            return fn(s, *args)
    except DomainError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command("koc-list")
def koc_list(
    group_id: str | None = typer.Option(None), status: str | None = typer.Option(None), fmt: Format = FMT
) -> None:
    """The KOCs (nominated, active, retired) and who nominated them."""
    emit(_koc_call(koc.list_kocs, group_id, status), fmt)


@app.command("koc-nominate")
def koc_nominate(
    person_id: int, group_id: str, actor: str = typer.Option("cli", "--actor"), fmt: Format = FMT
) -> None:
    """Nominate a contributor of a group (see `community contributors`) as a KOC."""
    emit([_koc_call(koc.nominate, person_id, group_id, actor, con=True)], fmt)


@app.command("koc-status")
def koc_status(
    koc_id: int, status: str, actor: str = typer.Option("cli", "--actor"), fmt: Format = FMT
) -> None:
    """Activate, retire or reactivate a KOC (nominated | active | retired)."""
    emit([_koc_call(koc.set_status, koc_id, status, actor)], fmt)


@app.command("koc-task")
def koc_task(
    koc_id: int, kind: str = typer.Option(..., help="ugc_messages | invitees | checkin_hosted"),
    target: int = typer.Option(...), start: str = typer.Option(...), end: str = typer.Option(...),
    reward_fen: int = typer.Option(0, help="the reward in fen, granted through the ledger when done"),
    actor: str = typer.Option("cli", "--actor"), fmt: Format = FMT,
) -> None:  # fmt: skip
    """Give a KOC a task with a target over a period (display-zone days)."""
    first, last = _day(start, "start"), _day(end, "end")
    assert first is not None and last is not None  # required options
    emit([_koc_call(koc.add_task, koc_id, kind, target, first, last, reward_fen, actor)], fmt)


@app.command("koc-tasks")
def koc_tasks(koc_id: int | None = typer.Option(None), fmt: Format = FMT) -> None:
    """The KOC tasks with their progress from the warehouse."""
    emit(_koc_call(koc.list_tasks, koc_id, con=True), fmt)


@app.command("koc-settle")
def koc_settle(actor: str = typer.Option("cli", "--actor"), fmt: Format = FMT) -> None:
    """Grant the rewards of completed tasks through the reward ledger (once per KOC and task)."""
    emit(_koc_call(koc.settle, actor, con=True), fmt)


@app.command("koc-results")
def koc_results(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), fmt: Format = FMT,
) -> None:  # fmt: skip
    """Per KOC: tasks done, UGC messages and share, invitees who joined, reward value and cost
    (default: the last 30 days)."""
    last = _day(end, "end") or days.today()
    first = _day(start, "start") or last - timedelta(days=29)
    emit([r.model_dump() for r in _koc_call(koc.results, first, last, group_id, con=True)], fmt)

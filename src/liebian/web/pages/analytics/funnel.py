"""The /funnel page (the fission funnel, by step, with a breakdown) and its drop-off drill-down /funnel/dropped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from liebian.analytics import funnel as funnel_mod
from liebian.analytics import insights_funnel as funnel_modes
from liebian.analytics.common import AnalyticsError, MetricConfig, zone_offset_seconds
from liebian.auth.deps import principal_of
from liebian.automation import service as automation
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.tags import service as tags
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    cached_analytics,
    filter_options,
    flash_fragment,
    render,
)
from liebian.web.format import code_name
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.analytics.common import PALETTE, PageError, choice, failed_page, page_start, selects

router = APIRouter(include_in_schema=False)

DROPPED_SHOWN = 100  # dropped persons listed on the page; the export has them all


BREAKDOWNS = ("channel", "campaign")


def _to_local():
    """A function turning a warehouse time (naive UTC) into local time of the display zone (the
    zone of the analytics' days); the zone's offset is looked up once."""

    shift = timedelta(seconds=zone_offset_seconds(MetricConfig().zone))
    return lambda ts: ts + shift if isinstance(ts, datetime) else ts


def _step_label(t, step: dict) -> str:
    key = f"funnel.step.{step['event']}"
    translated = t(key)
    return translated if translated != key else step["name"]


def _dropped_link(request: Request, filters: ConsoleFilters, step: int) -> str | None:
    """The drill-down to the persons who dropped at `step`: it lists persons, so (like its API) it
    needs identity:read; without it the funnel shows the counts only."""

    if step < 2 or not principal_of(request).can("identity:read"):
        return None
    return f"/funnel/dropped{filters.query(step=str(step))}"


def _funnel_chart(t, steps: list[dict], links: list[str | None]) -> Chart:
    data = [{"name": _step_label(t, s), "value": s["persons"]} for s in steps]
    option = {
        "animation": False,
        "tooltip": {"trigger": "item", "formatter": "{b}: {c}"},
        "color": PALETTE,
        "series": [
            {
                "name": t("funnel.heading"),
                "type": "funnel",
                "sort": "none",  # the steps' order, not by size
                "left": "15%",
                "width": "70%",
                "top": 20,
                "bottom": 20,
                "minSize": "12%",
                "gap": 3,
                "label": {"show": True, "position": "inside", "formatter": "{b}\n{c}", "color": "#fff"},
                "data": data,
            }
        ],
        "liebianLinks": [links],
    }
    return Chart("funnel", option, "funnel.chart" if any(links) else "funnel.heading", height=300)


def _named_groups(t, breakdown: str, rows: list[dict]) -> list[dict]:
    """Rows with their group by name: a channel by the catalogue's name, a campaign by its title
    (engine or imported), the id when it has none."""
    if breakdown == "campaign":
        titles = dict(filter_options()["campaigns"])
        return [r | {"breakdown": titles.get(r["breakdown"]) or r["breakdown"]} for r in rows]
    if breakdown == "channel":
        return [r | {"breakdown": code_name(t, "channel", r["breakdown"])} for r in rows]
    return rows


def _breakdown_chart(t, rows: list[dict]) -> Chart:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r["breakdown"]), []).append(r)
    names = [_step_label(t, r) for r in next(iter(groups.values()))] if groups else []
    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "color": PALETTE,
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": names},
        "yAxis": {"type": "value", "name": "%"},
        "series": [
            {
                "name": g,
                "type": "bar",
                "data": [round(100 * (r["conversion_from_start"] or 0), 2) for r in sub],
            }
            for g, sub in groups.items()
        ],
    }
    return Chart("funnel_breakdown", option, "funnel.breakdown_chart", height=320)


def _funnel_columns(breakdown: bool) -> list[Column]:
    # a group is a channel's name, a campaign's title or a segment's name: shown as it is
    return ([Column("breakdown", "funnel.group", data=True)] if breakdown else []) + [
        Column("step", "funnel.step", "int"),
        Column("label", "funnel.name"),
        Column("event", "funnel.event", data=True),  # the event name as tracked
        Column("persons", "funnel.persons", "int"),
        Column("conversion_from_prev", "funnel.conversion_from_prev", "pct"),
        Column("conversion_from_start", "funnel.conversion_from_start", "pct"),
        Column("dropped", "funnel.dropped", "int"),
        Column("drop_off_rate", "funnel.drop_off_rate", "pct"),
        Column("median_hours_from_prev", "funnel.median_hours", "float"),
    ]


def _funnel_rows(t, steps: list[dict]) -> list[dict]:
    return [
        s | {"label": _step_label(t, s),
             "median_hours_from_prev": None if s["median_seconds_from_prev"] is None
             else s["median_seconds_from_prev"] / 3600}
        for s in steps
    ]  # fmt: skip


def warm_default_view() -> None:
    """The funnel and its drop-off as first opened (no filters, default choices)."""
    af = ConsoleFilters().to_analytics()
    cached_analytics("run_funnel", af)
    cached_analytics("run_dropped", af, 2)


@router.get("/funnel")
def funnel_page(request: Request) -> Response:

    t, filters, context = page_start(request)
    template = "analytics/funnel.html"
    try:
        breakdown = choice(request, "breakdown", ("", *BREAKDOWNS), "")
        context["selects"] = selects(
            t,
            {"breakdown": breakdown},
            ("breakdown", "funnel.breakdown",
             [("", "funnel.breakdown_none")] + [(b, f"funnel.breakdown.{b}") for b in BREAKDOWNS]),
        )  # fmt: skip
        context["keep"] = {"breakdown": breakdown} if breakdown else {}
        af = filters.to_analytics()
        result = cached_analytics("run_funnel", af)
        by_group = cached_analytics("run_funnel", af, breakdown=breakdown) if breakdown else None
    except (FilterError, PageError, AnalyticsError) as exc:
        return failed_page(request, template, context, exc)
    steps = result["steps"]
    if not steps or not steps[0]["persons"]:
        return render(request, template, context)
    links = [_dropped_link(request, filters, s["step"]) for s in steps]
    overall = Table(
        "funnel_steps",
        _funnel_columns(False),
        _funnel_rows(t, steps),
        title="funnel.steps" if any(links) else "funnel.steps_plain",
        link=lambda row: links[row["step"] - 1],
        link_column="dropped",
    )
    tables, charts = [overall], [_funnel_chart(t, steps, links)]
    if by_group is not None:
        named = _named_groups(t, breakdown, by_group["steps"])
        tables.append(
            Table(
                "funnel_by_group",
                _funnel_columns(True),
                _funnel_rows(t, named),
                "funnel.breakdown_table",
            )
        )
        charts.append(_breakdown_chart(t, named))
    context |= {
        "has_data": True,
        "charts": charts,
        "tables": tables,
        "entered": steps[0]["persons"],
        "converted": steps[-1]["persons"],
        "conversion": steps[-1]["conversion_from_start"],
    }
    return render(request, template, context, tables=tables)


@dataclass(frozen=True)
class DroppedSpec:
    """Which funnel the drop-off list is of: the page's default funnel, or one built in the insight
    builder (steps, window, order mode, exclusions in the query string)."""

    steps: tuple[funnel_mod.Step, ...]
    window_days: float
    mode: str
    exclusions: tuple[funnel_modes.Exclusion, ...]
    step: int

    def run(self, af) -> list[dict]:
        if (
            self.steps == funnel_mod.DEFAULT_STEPS
            and self.window_days == 14
            and self.mode == "ordered"
            and not self.exclusions
        ):
            return cached_analytics("run_dropped", af, self.step)  # the default view, as warmed
        return cached_analytics(
            "run_dropped", af, self.step, ",".join(s.event for s in self.steps), self.window_days,
            mode=self.mode, exclusions=self.exclusions,
        )  # fmt: skip

    def keep(self) -> dict[str, str]:
        """The spec as query parameters (beside the filters) for links and forms."""
        if (
            self.steps == funnel_mod.DEFAULT_STEPS
            and self.window_days == 14
            and self.mode == "ordered"
            and not self.exclusions
        ):
            return {}
        out = {
            "steps": ",".join(s.event for s in self.steps),
            "window_days": f"{self.window_days:g}",
            "mode": self.mode,
        }
        return out | {
            f"exclusion{i}": f"{x.event}:{x.from_step}:{x.to_step}" for i, x in enumerate(self.exclusions)
        }


def dropped_spec(q) -> DroppedSpec:
    """The spec of a drop-off list from query parameters; PageError/AnalyticsError name the field."""
    steps = funnel_mod.parse_steps(q.get("steps") or None)
    if len(steps) > 20:
        raise PageError(f"steps: at most 20; got {len(steps)}")
    raw = q.get("window_days") or "14"
    try:
        window = float(raw)
    except ValueError:
        raise PageError(f"window_days: {raw[:40]!r} is not a number") from None
    if not 0 < window <= 365:
        raise PageError(f"window_days: must be more than 0 and at most 365; got {raw[:40]}")
    mode = q.get("mode") or "ordered"
    exclusions = funnel_modes.parse_exclusions([v for k, v in q.multi_items() if k.startswith("exclusion")])
    funnel_modes.check(steps, mode, exclusions)
    raw = q.get("step", "2")
    try:
        step = int(raw)
    except ValueError:
        raise PageError(f"step: {raw[:40]!r} is not a whole number") from None
    if not 2 <= step <= len(steps):
        raise PageError(f"step: must be between 2 and {len(steps)}; got {step}")
    return DroppedSpec(steps, window, mode, exclusions, step)


@router.get("/funnel/dropped")
def dropped_page(request: Request) -> Response:

    t, filters, context = page_start(request)
    template = "analytics/dropped.html"
    context["steps"] = []
    try:
        spec = dropped_spec(request.query_params)
        steps = [{"step": i, "name": s.name, "event": s.event} for i, s in enumerate(spec.steps, 1)]
        step = spec.step
        context |= {
            "step": step,
            "steps": [
                (s["step"], f"{_step_label(t, p)} → {_step_label(t, s)}")
                for p, s in zip(steps, steps[1:], strict=False)
            ],
            "from_label": _step_label(t, steps[step - 2]),
            "to_label": _step_label(t, steps[step - 1]),
            "spec": spec.keep(),
            "keep": spec.keep() | {"step": str(step)},
        }
        rows = spec.run(filters.to_analytics())
    except (FilterError, PageError, AnalyticsError) as exc:
        return failed_page(request, template, context, exc)
    last, local = context["from_label"], _to_local()
    table = Table(
        "dropped",
        [
            Column("person_id", "dropped.person_id"),
            Column("entered_at", "dropped.entered_at", "datetime"),
            Column("last_step", "dropped.last_step"),
            Column("last_step_at", "dropped.last_step_at", "datetime"),
        ],
        [
            {
                "person_id": str(r["person_id"]),
                "entered_at": local(r["entered_at"]),
                "last_step": last,
                "last_step_at": local(r["last_step_ts"]),
            }
            for r in rows
        ],  # fmt: skip
        title="dropped.table",
    )
    principal = principal_of(request)
    journeys = []
    if rows and principal.can("campaign:write"):
        with session_scope() as s:
            journeys = [(j.id, j.name) for j in automation.list_journeys(s) if j.status == "active"]
    context |= {
        "has_data": True,
        "count": len(rows),
        "table": table,
        "shown": DROPPED_SHOWN,
        "query": request.url.query,
        "can_segment": bool(rows) and principal.can("models:write"),
        "journeys": journeys,
    }
    return render(request, template, context, tables=[table])


def _dropped_persons(request: Request, query: str) -> list[int]:
    """The persons of the drop-off list the form was on (its query string), computed again."""
    q = QueryParams(query)
    filters = ConsoleFilters(**{k: (q.get(k) or "").strip() for k in ConsoleFilters.KEYS})
    return [int(r["person_id"]) for r in dropped_spec(q).run(filters.to_analytics())]


def _refused(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DomainError):
        return flash_fragment(
            exc.message_zh if locale_of(request).startswith("zh") else exc.message, ok=False
        )
    return flash_fragment(str(exc), ok=False)


@router.post("/funnel/dropped/segment")
def dropped_to_segment(request: Request, name: str = Form(""), query: str = Form("")) -> Response:
    """Save the drop-off list as a segment (a tag of these persons) that filters and journeys use."""
    t = translator(locale_of(request))
    try:
        people = _dropped_persons(request, query)
        with session_scope() as s:
            tags.save_list_segment(s, name, people, created_by=principal_of(request).name)
    except DomainError as exc:
        if exc.status == 409:  # the name is taken: say which, in the console's language
            return flash_fragment(t("dropped.segment_exists").replace("{name}", name.strip()), ok=False)
        return _refused(request, exc)
    except (FilterError, PageError) as exc:
        return _refused(request, exc)
    return flash_fragment(
        t("dropped.segment_saved").replace("{name}", name.strip()).replace("{n}", str(len(people)))
    )


@router.post("/funnel/dropped/journey")
def dropped_to_journey(request: Request, journey_id: str = Form(""), query: str = Form("")) -> Response:
    """Enrol the drop-off list into an active journey (its hold-out applies; nobody enters twice)."""
    t = translator(locale_of(request))
    try:
        try:
            jid = int(journey_id)
        except ValueError:
            raise PageError(f"journey_id: {journey_id[:40]!r} is not a journey") from None
        people = _dropped_persons(request, query)
        with session_scope() as s:
            done = automation.enrol(s, jid, people)
    except (FilterError, PageError, DomainError) as exc:
        return _refused(request, exc)
    message = (
        t("dropped.journey_sent").replace("{entered}", str(done["entered"])).replace("{n}", str(len(people)))
    )
    return flash_fragment(message)

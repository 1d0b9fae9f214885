"""The /ltv page: predicted LTV, segments, tags and health, and their background refits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.auth.deps import principal_of
from liebian.db.session import session_scope
from liebian.predict import results, segment
from liebian.predict import service as predict
from liebian.predict.common import PredictError
from liebian.tags import service as tags
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    filter_options,
    flash_fragment,
    is_htmx,
    render,
)
from liebian.web.i18n import locale_of, translator
from liebian.web.messages import CATALOGUE
from liebian.web.pages.models.common import bar_option, channel_label, fitted, selection
from liebian.web.pages.models.tasks import Stage, current_task, start_task, task_context

router = APIRouter(include_in_schema=False)

BAND_KEYS = {"健康": "health.good", "一般": "health.fair", "预警": "health.warn"}


TIER_KEYS = {"新手": "tier.new", "活跃": "tier.active", "高价值": "tier.high", "沉默": "tier.silent"}


def segment_label(t, name: str) -> str:
    """A K-Means segment's name in the page's language, trait by trait (a name of another origin as it is)."""
    if name == results.UNSEGMENTED:
        return t("seg.trait.unsegmented")
    codes = segment.trait_codes(name)
    return name if codes is None else " · ".join(t(f"seg.trait.{code}") for code in codes)


def _refit_stages(what: str) -> list[Stage]:

    def tags_and_health(report) -> None:

        feats = tags.tag_features()
        tags.record_health(feats)
        report("health", 1)
        with session_scope() as session:  # as the daily tags-recompute job: defaults, then recompute
            tags.install_defaults(session)
            tags.recompute(session, features=feats)
        report("tags", 2)

    stages: dict[str, Stage] = {
        "ltv": ("ltv", 4, lambda _report: predict.fit_ltv()),
        "segments": ("segments", 3, lambda _report: predict.fit_segments()),
        "tags": ("tags", 2, tags_and_health),
    }
    return list(stages.values()) if what == "all" else [stages[what]]


def _ltv_tables(t, ltv: dict | None, seg: dict | None, health: dict | None, tag_rows: list[dict],
                by: str, filters: ConsoleFilters, can_persons: bool) -> tuple[list[Table], list[Chart]]:  # fmt: skip
    """The page's tables and charts, section by section: LTV, segments, tags, health."""
    tables: list[Table] = []
    charts: list[Chart] = []
    if ltv is not None:
        _add_ltv(tables, charts, t, ltv, by, filters, can_persons)
    if seg is not None:
        _add_segments(tables, charts, t, seg)
    if tag_rows:
        tables.append(_tags_table(t, tag_rows, by, filters))
    if health is not None:
        _add_health(tables, charts, t, health)
    return tables, charts


def _add_ltv(tables: list[Table], charts: list[Chart], t, ltv: dict, by: str, filters: ConsoleFilters,
             can_persons: bool) -> None:  # fmt: skip
    groups = [
        g | {"label": channel_label(t, g["group"]) if by == "channel" else segment_label(t, g["group"])}
        for g in ltv["groups"]
    ]
    tables.append(
        Table(
            "ltv_groups",
            [
                Column("label", "ltv.group"),
                Column("customers", "ltv.customers", "int"),
                Column("mean_clv_fen", "ltv.mean_clv", "fen"),
                Column("median_clv_fen", "ltv.median_clv", "fen"),
                Column("p90_clv_fen", "ltv.p90_clv", "fen"),
                Column("total_clv_fen", "ltv.total_clv", "fen"),
                Column("mean_historical_fen", "ltv.mean_historical", "fen"),
                Column("expected_purchases", "ltv.expected_purchases", "float"),
            ],
            groups,
            title="ltv.by_group",
            link=(lambda row: "/ltv" + filters.query(channel=row["group"], by=by))
            if by == "channel"
            else None,
            link_column="label",
        )
    )
    labels = [g["label"] for g in groups]
    option = bar_option(
        labels,
        [
            {"name": t("ltv.mean_clv"), "type": "bar",
             "data": [round((g["mean_clv_fen"] or 0) / 100, 2) for g in groups]},
            {"name": t("ltv.customers"), "type": "line", "yAxisIndex": 1, "data": [g["customers"] for g in groups]},
        ],
        "¥",
    )  # fmt: skip
    option["yAxis"].append({"type": "value", "name": t("ltv.customers"), "splitLine": {"show": False}})
    if by == "channel":
        option["liebianLinks"] = [[f"/ltv{filters.query(channel=g['group'], by=by)}" for g in groups]] * 2
    charts.append(Chart("ltv_by_group", option, "ltv.chart_by_group"))
    hist = ltv["histogram"]
    charts.append(
        Chart(
            "ltv_histogram",
            bar_option(
                [f"¥{h['low_yuan']:g}–{h['high_yuan']:g}" for h in hist],
                [{"name": t("ltv.customers"), "type": "bar", "data": [h["customers"] for h in hist]}],
                legend=False,
            ),
            "ltv.histogram",
        )
    )
    if can_persons:
        top_columns = [
            Column("person_id", "ltv.person"),
            Column("channel_label", "filters.channel"),
            Column("clv_fen", "ltv.clv", "fen"),
            Column("historical_fen", "ltv.historical", "fen"),
            Column("expected_purchases", "ltv.expected_purchases_person", "float"),
            Column("expected_spend_fen", "ltv.expected_spend", "fen"),
        ]
        if by == "segment":
            top_columns.append(Column("segment", "ltv.segment"))
        tables.append(
            Table(
                "ltv_top",
                top_columns,
                [
                    r
                    | {"channel_label": channel_label(t, r["channel"])}
                    | ({"segment": segment_label(t, r["segment"])} if by == "segment" else {})
                    for r in ltv["top"]
                ],
                title="ltv.top",
            )
        )


def _add_segments(tables: list[Table], charts: list[Chart], t, seg: dict) -> None:
    profiles = [p | {"name": segment_label(t, p["name"])} for p in seg["profiles"]]
    names = [p["name"] for p in profiles]
    charts.append(
        Chart(
            "segment_sizes",
            bar_option(
                names,
                [
                    {
                        "name": t("seg.selected"),
                        "type": "bar",
                        "data": [p["selected"] for p in profiles],
                    }
                ],
                legend=False,
            ),
            "seg.sizes",
        )
    )
    grid = [[g["f_score"] - 1, g["r_score"] - 1, g["persons"]] for g in seg["rfm_grid"]]
    charts.append(
        Chart(
            "rfm_grid",
            {
                "animation": False,
                "tooltip": {},
                "grid": {"left": 60, "right": 30, "top": 20, "bottom": 90},
                "xAxis": {"type": "category", "name": t("seg.f"), "data": ["1", "2", "3", "4", "5"]},
                "yAxis": {"type": "category", "name": t("seg.r"), "data": ["1", "2", "3", "4", "5"]},
                "visualMap": {
                    "min": 0,
                    "max": max([g[2] for g in grid] or [1]),
                    "orient": "horizontal",
                    "left": "center",
                    "bottom": 0,
                    "calculable": True,
                    "inRange": {"color": ["#eef3fb", "#0a4fa8"]},
                },
                "series": [
                    {"name": t("seg.rfm_grid"), "type": "heatmap", "data": grid, "label": {"show": True}}
                ],
            },
            "seg.rfm_grid",
        )
    )
    columns = [
        Column("cluster", "seg.cluster", "int"),
        Column("name", "seg.name"),
        Column("size", "seg.size", "int"),
        Column("share", "seg.share", "pct"),
        Column("selected", "seg.selected", "int"),
        Column("selected_share", "seg.selected_share", "pct"),
    ]
    for key in seg["model"]["params"]["columns"]:
        kind = "fen" if key.endswith("_fen") else "float"
        label = f"seg.mean_{key}" if f"seg.mean_{key}" in CATALOGUE else f"mean {key}"  # --columns
        columns.append(Column(f"mean_{key}", label, kind))
    tables.append(Table("segments", columns, profiles, title="seg.profiles"))


def _tags_table(t, tag_rows: list[dict], by: str, filters: ConsoleFilters) -> Table:
    return Table(
        "tags",
        [
            Column("name", "tags.name", data=True),
            Column("level_label", "tags.level"),
            Column("version", "tags.version", "int"),
            Column("rule", "tags.rule", data=True),
            Column("members", "tags.members", "int"),
        ],
        [
            r
            | {"level_label": t(f"tags.level.{r['level']}")}
            # a saved list of persons has no rule: its members are the list
            | ({"rule": t("tags.rule_list")} if r["level"] == "list" else {})
            for r in tag_rows
        ],
        title="tags.table",
        link=lambda row: "/ltv" + filters.query(segment=row["name"], by=by),
        link_column="name",
    )


def _add_health(tables: list[Table], charts: list[Chart], t, health: dict) -> None:
    charts.append(
        Chart(
            "health_histogram",
            bar_option(
                [f"{h['low']}–{h['high']}" for h in health["histogram"]],
                [{"name": t("health.persons"), "type": "bar", "data": [h["persons"] for h in health["histogram"]],
                  "itemStyle": {"color": "#116329"}}],
                legend=False,
            ),
            "health.histogram",
        )
    )  # fmt: skip
    rows = [{"label": t(BAND_KEYS[b["band"]]), "persons": b["persons"]} for b in health["bands"]]
    rows += [{"label": t(TIER_KEYS[x["tier"]]), "persons": x["persons"]} for x in health["tiers"]]
    for row in rows:
        row["share"] = row["persons"] / health["persons"] if health["persons"] else None
    tables.append(
        Table(
            "health",
            [Column("label", "health.band"), Column("persons", "health.persons", "int"),
             Column("share", "seg.selected_share", "pct")],
            rows,
            title="health.bands",
        )
    )  # fmt: skip


@router.get("/ltv")
def ltv_page(request: Request) -> Response:

    t = translator(locale_of(request))
    filters = ConsoleFilters.from_request(request)
    by = request.query_params.get("by") or "channel"
    principal = principal_of(request)
    context: dict[str, Any] = {
        "filters": filters,
        "options": filter_options(),
        "by": by,
        "error": None,
        "task": task_context(current_task("refit"), t),
        "can_refit": principal.can("models:write"),
        "ltv": None,
        "seg": None,
        "health": None,
        "fits": {},
        "charts": {},
        "tables": {},
    }
    try:
        if by not in results.BY:
            raise FilterError(f"by: must be channel or segment (got {by!r})")
        person_ids = selection(filters)
    except FilterError as exc:
        return render(
            request, "models/ltv.html", context | {"error": str(exc), "by": "channel"}, status_code=422
        )
    snapshot = results.current_snapshot()
    channel = filters.channel or None
    errors = []
    try:
        ltv = results.ltv_breakdown(by, channel, person_ids, top=200)
    except PredictError as exc:  # by segment without a segmentation
        errors.append(str(exc))
        ltv = results.ltv_breakdown("channel", channel, person_ids, top=200)
        by = "channel"
    seg = results.segment_summary(channel, person_ids)
    health = tags.health_distribution(channel, person_ids)
    with session_scope() as session:
        tag_rows = [dict(r) for r in tags.list_tags(session) if not r.retired_at]
    tables, charts = _ltv_tables(t, ltv, seg, health, tag_rows, by, filters, principal.can("segments:read"))
    ltv_entry = ltv["model"] if ltv else None
    context |= {
        "by": by,
        "error": "; ".join(errors) or None,
        "ltv": ltv,
        "seg": seg,
        "health": health,
        "tag_rows": tag_rows,
        "fits": {
            "ltv": fitted(ltv_entry, snapshot),
            "segments": fitted(seg["model"] if seg else None, snapshot),
            "health": fitted(health["model"] if health else None, snapshot),
        },
        "multiplier": (ltv_entry["metrics"].get("ltv_multiplier") if ltv_entry else None),
        "horizon_days": (
            round(ltv_entry["params"]["horizon_units"] * ltv_entry["params"]["unit_days"])
            if ltv_entry
            else None
        ),
        "charts": {c.id: c for c in charts},
        "tables": {tb.id: tb for tb in tables},
    }
    return render(request, "models/ltv.html", context, tables=tables)


@router.post("/ltv/refit")
async def ltv_refit(request: Request) -> Response:
    t = translator(locale_of(request))
    form = await request.form()
    what = str(form.get("what") or "all")
    if what not in ("all", "ltv", "segments", "tags"):
        return flash_fragment(f"what: must be all, ltv, segments or tags (got {what!r})", ok=False)
    task, started = start_task("refit", _refit_stages(what))
    context = {"task": task_context(task, t), "note": None if started else t("models.already_running")}
    return render(
        request, "models/_task.html", context | {"poll_url": "/ltv/refit", "box_id": "refit-status"}
    )


@router.get("/ltv/refit")
def ltv_refit_status(request: Request) -> Response:
    t = translator(locale_of(request))
    task = current_task("refit")
    response = render(
        request,
        "models/_task.html",
        {"task": task_context(task, t), "poll_url": "/ltv/refit", "box_id": "refit-status"},
    )
    if task is not None and not task.running and is_htmx(request):
        response.headers["HX-Refresh"] = "true"  # show the new fits
    return response

"""The /experiments pages: A/B readouts, reading out a new experiment, and the sample-size calculator."""

from __future__ import annotations

import csv
import io
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from liebian.auth.deps import principal_of
from liebian.predict import experiments, results
from liebian.predict.common import PredictError
from liebian.web.console import Chart, Column, ConsoleFilters, Table, flash_fragment, htmx_redirect, render
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.models.common import bar_option

router = APIRouter(include_in_schema=False)


def _p_text(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.0001" if p < 0.0001 else f"{p:.4f}"


def _decision(r: dict, t) -> Markup:
    """The readout's conclusion in the page's language; a variant's name is data (translate="no")."""
    code = experiments.verdict(r)
    winner = r["treatment"] if code == "treatment_wins" else r["control"]
    name = Markup('<span translate="no">{}</span>').format(winner)
    return Markup(escape(t(f"exp.verdict.{code}"))).format(name=name, n=r.get("planned_n_per_variant"))


def _readout_row(entry: dict, t) -> dict:
    r = entry["metrics"]
    planned = r.get("planned_n_per_variant")
    return {
        "id": entry["id"],
        "name": entry["params"]["name"],
        "created_at": entry["created_at"],
        "control": r["control"],
        "treatment": r["treatment"],
        "units_control": r["units"]["control"],
        "units_treatment": r["units"]["treatment"],
        "rate_control": r["conversion_rate"]["control"],
        "rate_treatment": r["conversion_rate"]["treatment"],
        "diff": r["diff"],
        "ci_low": r["diff_ci"][0],
        "ci_high": r["diff_ci"][1],
        "relative_lift": r["relative_lift"],
        "p_value": _p_text(r["p_value_z"]),
        "planned_n": planned,
        "progress": min(r["units"]["control"], r["units"]["treatment"]) / planned if planned else None,
        "status": t(f"exp.status.{r['status']}"),
        "decision": _decision(r, t),
    }


def _readouts_table(rows: list[dict]) -> Table:
    return Table(
        "experiments",
        [
            Column("name", "exp.name", data=True),
            Column("created_at", "exp.created_at", "datetime"),
            Column("control", "exp.control", data=True),
            Column("treatment", "exp.treatment", data=True),
            Column("units_control", "exp.units_c", "int"),
            Column("units_treatment", "exp.units_t", "int"),
            Column("rate_control", "exp.rate_c", "pct"),
            Column("rate_treatment", "exp.rate_t", "pct"),
            Column("diff", "exp.diff", "pct"),
            Column("ci_low", "exp.ci_low", "pct"),
            Column("ci_high", "exp.ci_high", "pct"),
            Column("relative_lift", "exp.relative", "pct"),
            Column("p_value", "exp.p_value"),
            Column("planned_n", "exp.planned_n", "int"),
            Column("progress", "exp.progress", "pct"),
            Column("status", "exp.status"),
            Column("decision", "exp.decision"),
        ],
        rows,
        title="exp.list",
        link=lambda row: f"/experiments?id={row['id']}#readout",
        link_column="name",
    )


def _forest_chart(t, rows: list[dict]) -> Chart:
    """Each readout's difference with its interval, newest on top."""
    shown = list(reversed(rows[:20]))  # oldest at the bottom of the forest plot
    return Chart(
        "exp_forest",
        {
            "animation": False,
            "tooltip": {"trigger": "item"},
            "grid": {"left": 160, "right": 40, "top": 20, "bottom": 40},
            "yAxis": {"type": "category", "data": [r["name"] for r in shown]},
            "xAxis": {"type": "value", "name": "pp", "scale": True},
            "series": [
                {
                    "name": t("exp.diff"),
                    "type": "boxplot",
                    "itemStyle": {"color": "#eef3fb", "borderColor": "#0a4fa8"},
                    "data": [[round(100 * v, 3) for v in (r["ci_low"], r["ci_low"], r["diff"], r["ci_high"], r["ci_high"])]
                             for r in shown],
                },
                {"name": "0", "type": "line", "markLine": {"symbol": "none", "data": [{"xAxis": 0}],
                                                         "lineStyle": {"color": "#b3102a"}}, "data": []},
            ],
            "liebianLinks": [[f"/experiments?id={r['id']}#readout" for r in shown]],
        },
        "exp.forest",
        height=max(160, 40 * len(shown) + 60),
    )  # fmt: skip


@router.get("/experiments")
def experiments_page(request: Request) -> Response:

    t = translator(locale_of(request))
    entries = results.experiment_readouts()
    rows = [_readout_row(e, t) for e in entries]
    table = _readouts_table(rows)
    wanted = request.query_params.get("id")
    selected = next((e for e in entries if e["id"] == wanted), entries[0] if entries else None)
    charts = []
    if rows:
        charts.append(_forest_chart(t, rows))
    if selected is not None:
        r = selected["metrics"]
        charts.append(
            Chart(
                "exp_rates",
                bar_option(
                    [r["control"], r["treatment"]],
                    [{"name": t("attr.conversions"), "type": "bar",
                      "data": [round(100 * r["conversion_rate"]["control"], 3), round(100 * r["conversion_rate"]["treatment"], 3)]}],
                    "%",
                    legend=False,
                ),
                "exp.rates",
                height=260,
            )
        )  # fmt: skip
    principal = principal_of(request)
    context = {
        "filters": ConsoleFilters.from_request(request),
        "rows": rows,
        "selected": selected,
        "selected_row": _readout_row(selected, t) if selected else None,
        "p_text": _p_text,
        "table": table,
        "charts": charts,
        "can_write": principal.can("models:write"),
    }
    return render(request, "models/experiments.html", context, tables=[table])


def _int_field(form, key: str, required: bool = True) -> int | None:
    raw = str(form.get(key) or "").strip()
    if not raw:
        if required:
            raise ValueError(f"{key}: required")
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{key}: not a whole number ({raw!r})") from exc


@router.post("/experiments")
async def experiments_readout(request: Request) -> Response:

    t = translator(locale_of(request))
    form = await request.form()
    try:
        name = str(form.get("name") or "")
        control_name = str(form.get("control_name") or "").strip() or "control"
        treatment_name = str(form.get("treatment_name") or "").strip() or "treatment"
        if control_name == treatment_name:
            raise ValueError("treatment_name: must differ from control_name")
        try:
            alpha = float(str(form.get("alpha") or "0.05"))
        except ValueError as exc:
            raise ValueError(f"alpha: not a number ({form.get('alpha')!r})") from exc
        if not 0 < alpha < 1:
            raise ValueError(f"alpha: must be between 0 and 1 (got {alpha:g})")
        planned_n = _int_field(form, "planned_n", required=False)
        if planned_n is not None and planned_n <= 0:
            raise ValueError(f"planned_n: must be positive (got {planned_n})")
        upload = form.get("file")
        content = await upload.read() if upload is not None and hasattr(upload, "read") else b""
        if content:
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ValueError("file: not UTF-8 text") from exc
            reader = csv.DictReader(io.StringIO(text))
            missing = {"unit_id", "variant", "converted"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"file: missing column(s) {sorted(missing)}")
            sides = experiments.summarise_units(list(reader), [control_name, treatment_name], "line", 2)
            control, treatment, source = sides[control_name], sides[treatment_name], "csv"
        else:
            control = {
                "name": control_name,
                "units": _int_field(form, "control_units"),
                "conversions": _int_field(form, "control_conversions"),
            }
            treatment = {"name": treatment_name, "units": _int_field(form, "treatment_units"),
                         "conversions": _int_field(form, "treatment_conversions")}  # fmt: skip
            source = "form"
        entry = results.record_readout(
            name, control, treatment, alpha, planned_n, source=source, created_by=principal_of(request).name
        )
    except (ValueError, PredictError) as exc:  # PredictError is a ValueError too
        return flash_fragment(t("exp.failed") + str(exc), ok=False)
    return htmx_redirect(f"/experiments?id={entry['id']}#readout")


@router.get("/experiments/plan")
def experiments_plan(request: Request) -> Response:

    t = translator(locale_of(request))
    q = request.query_params
    try:
        values = {}
        for key, default in (("baseline", None), ("mde", None), ("alpha", "0.05"), ("power", "0.8")):
            raw = (q.get(key) or default or "").strip()
            try:
                values[key] = float(raw)
            except ValueError as exc:
                raise ValueError(f"{key}: not a number ({raw!r})") from exc
        for key in ("alpha", "power"):
            if not 0 < values[key] < 1:
                raise ValueError(f"{key}: must be between 0 and 1 (got {values[key]:g})")
        n = experiments.sample_size_proportions(
            values["baseline"], values["mde"], values["alpha"], values["power"]
        )
    except (ValueError, PredictError) as exc:
        return flash_fragment(str(exc), ok=False)
    label = escape(t("exp.n_per_variant"))
    return HTMLResponse(f'<p class="flash ok" role="status">{label}: <strong id="plan-n">{n:,}</strong></p>')

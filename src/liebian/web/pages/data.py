"""Data pages: the data-quality report (liebian.quality) and file import with progress (liebian.ingest).

/quality shows the quality service's report of the chosen period: scores, the error rate against
its target, daily volume per channel with the volume anomalies marked, the quarantine by category
and reason, late data per channel, null rates and every finding.

/import uploads a file (CSV, XLSX, JSONL or Parquet; encoding detected), runs `import_file` in a
background thread of the server process and shows its progress: the page polls a small fragment
(htmx, every 0.5 s) that reads the job's state, which the import's progress hook updates — the
poll never touches the warehouse, which the import holds. When the import ends, the fragment shows
the batch's record (rows read, loaded, duplicate, rejected with their reasons) and links to the
batch's rejected lines and the quarantine. Jobs live in this process's memory: with several server
workers, run imports on one (or use `liebian import`).
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from liebian.auth.deps import principal_of, write_refused
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.ingest import service as ingest
from liebian.ingest.files import FORMATS
from liebian.ingest.normalize import KINDS
from liebian.ingest.presets import NAMED, PRESET_NAMES
from liebian.quality import service as quality
from liebian.web.console import Chart, Column, ConsoleFilters, FilterError, Table, flash_fragment, render
from liebian.web.format import code_name, local_time, message
from liebian.web.i18n import locale_of, translator
from liebian.web.messages import CATALOGUE

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------- quality


def _channel_name(t, channel: str) -> str:
    return t(f"channel.{channel}") if f"channel.{channel}" in CATALOGUE else channel


def _utc_midnight(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight of `day` as naive UTC (the quality report's windows are UTC)."""
    return datetime.combine(day, dtime(), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _volume_chart(t, chart_id: str, title: str, daily, table: str, anomalies: list) -> Chart:
    rows = daily[daily["tbl"] == table]
    days = sorted({d.isoformat() for d in rows["day"]})
    marks: dict[str, list] = {}
    for a in anomalies:
        if a.table == table:
            marks.setdefault(a.channel, []).append({"coord": [a.date.isoformat(), a.observed], "value": "!"})
    series = []
    for channel, group in rows.groupby("channel", sort=True):
        by_day = {d.isoformat(): int(n) for d, n in zip(group["day"], group["n"], strict=True)}
        series.append(
            {
                "name": _channel_name(t, channel),
                "type": "line",
                "showSymbol": False,
                "data": [by_day.get(d, 0) for d in days],
                "markPoint": {
                    "symbol": "pin",
                    "itemStyle": {"color": "#b3102a"},
                    "data": marks.get(channel, []),
                },
            }
        )
    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "grid": {"left": 60, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": days},
        "yAxis": {"type": "value"},
        "series": series,
    }
    return Chart(chart_id, option, title, height=300)


def warm_quality_report() -> None:
    """The report over all data, as /quality first shows it (kept by quality.current_report)."""

    with warehouse.connect() as con, session_scope() as s:
        quality.current_report(con, session=s)


def _quarantine_chart(t, held) -> Chart:
    """Quarantined rows per category, largest first."""
    categories = sorted(held.by_category.items(), key=lambda kv: -kv[1])
    return Chart(
        "quarantine",
        {
            "animation": False,
            "tooltip": {},
            "grid": {"left": 120, "right": 30, "top": 10, "bottom": 30},
            "xAxis": {"type": "value", "minInterval": 1},
            "yAxis": {
                "type": "category",
                "data": [t(f"quality.category.{c}") for c, _ in categories] or ["—"],
            },
            "series": [
                {"type": "bar", "itemStyle": {"color": "#b3102a"}, "data": [n for _, n in categories] or [0]}
            ],
        },
        "quality.quarantine_chart",
        height=max(160, 40 * len(categories) + 50),
    )


def _finding_row(finding, locale: str) -> dict:
    """A finding in the console's language: its check by name, its detail from the catalogue."""
    t = translator(locale)
    check, _, category = finding.check.partition(":")
    name = code_name(t, "quality.check", check)
    if category:
        name = f"{name} · {code_name(t, 'quality.category', category)}"
    params = dict(finding.params) | {"count": finding.count}
    if "category" in params:
        params["category"] = code_name(t, "quality.category", params["category"])
    if "field" in params:
        params["field"] = code_name(t, "quality.field", params["field"])
    detail = message(locale, f"quality.finding.{check}", params, {"z": "decimal", "expected": "decimal"})
    return finding.model_dump() | {"check": name, "detail": detail}


def _reason_row(group, locale: str) -> dict:
    """A quarantine group with its reason by name (the category's when the catalogue has none)."""
    reason = _reject_reason(group.reason, locale)["reason"]
    if reason == group.reason:
        reason = code_name(translator(locale), "quality.category", group.category)
    return group.model_dump() | {"reason": reason}


def _quality_tables(report, locale: str) -> list[Table]:
    """The report's tables: findings, quarantine reasons, volume anomalies, timeliness, null rates."""
    held = report.quarantine
    findings = Table(
        "findings",
        [
            Column("check", "quality.check"),
            Column("table", "quality.table", codes="quality.tablename"),
            Column("channel", "filters.channel", codes="channel"),
            Column("count", "quality.count", "int"),
            Column("detail", "quality.detail"),
        ],
        [_finding_row(f, locale) for f in report.findings],
        title="quality.findings",
    )
    anomalies = Table(
        "volume_anomalies",
        [
            Column("date", "quality.date", "date"),
            Column("table", "quality.table", codes="quality.tablename"),
            Column("channel", "filters.channel", codes="channel"),
            Column("observed", "quality.observed", "int"),
            Column("expected", "quality.expected", "decimal"),
            Column("z", "quality.z", "decimal"),
            Column("explained_by", "calendar.explained_by", data=True),  # holiday names are proper names
        ],
        [a.model_dump() for a in report.volume_anomalies],
        title="quality.volume_table",
    )
    reasons = Table(
        "quarantine",
        [
            Column("kind", "quality.kind", codes="quality.tablename"),
            Column("field", "quality.field", codes="quality.field"),
            Column("reason", "quality.reason"),
            Column("category", "quality.category", codes="quality.category"),
            Column("rows", "quality.count", "int"),
        ],
        [_reason_row(g, locale) for g in held.by_reason],
        title="quality.quarantine",
    )
    late = Table(
        "timeliness",
        [
            Column("table", "quality.table", codes="quality.tablename"),
            Column("channel", "filters.channel", codes="channel"),
            Column("rows", "quality.count", "int"),
            Column("late_rows", "quality.late_rows", "int"),
            Column("late_rate", "quality.late_rate", "pct"),
            Column("median_delay_hours", "quality.median_delay", "decimal"),
            Column("p95_delay_hours", "quality.p95_delay", "decimal"),
        ],
        [c.model_dump() for c in report.timeliness.channels],
        title="quality.late",
    )
    fields = Table(
        "null_rates",
        [
            Column("table", "quality.table", codes="quality.tablename"),
            Column("field", "quality.field", codes="quality.field"),
            Column("required_text", "quality.required"),
            Column("rows", "quality.count", "int"),
            Column("missing", "quality.missing", "int"),
            Column("null_rate", "quality.null_rate", "pct"),
        ],
        [f.model_dump() | {"required_text": "✓" if f.required else ""} for f in report.completeness.fields],
        title="quality.fields",
    )
    return [findings, reasons, anomalies, late, fields]


@router.get("/quality")
def quality_page(request: Request) -> Response:

    t = translator(locale_of(request))
    q = request.query_params
    filters = ConsoleFilters(start=(q.get("start") or "").strip(), end=(q.get("end") or "").strip())
    context: dict = {"filters": filters, "error": None, "has_data": False}
    try:
        af = filters.to_analytics()  # the shared date parsing: "start: …" / "… is after end …"
    except FilterError as exc:
        return render(request, "data/quality.html", context | {"error": str(exc)}, status_code=422)
    zone = ZoneInfo(get_settings().timezone)
    start = _utc_midnight(af.start, zone) if af.start else None
    end = _utc_midnight(date.fromordinal(af.end.toordinal() + 1), zone) if af.end else None
    with warehouse.connect() as con, session_scope() as s:
        report, daily = quality.current_report(con, start=start, end=end, session=s)
    if report.error_rate.rows_received == 0:
        return render(request, "data/quality.html", context)
    charts = [
        _volume_chart(t, "volume-events", "quality.volume_events", daily, "events", report.volume_anomalies),
        _volume_chart(t, "volume-orders", "quality.volume_orders", daily, "orders", report.volume_anomalies),
        _quarantine_chart(t, report.quarantine),
    ]
    tables = _quality_tables(report, locale_of(request))
    context |= {
        "has_data": True,
        "report": report,
        "charts": charts,
        "tables": tables,
        "generated": local_time(report.generated_at),
        "period": (af.start.isoformat() if af.start else "", af.end.isoformat() if af.end else ""),
    }
    return render(request, "data/quality.html", context, tables=tables)


# ------------------------------------------------------------------------------------------ import


@dataclass
class ImportJob:
    """One upload being imported in the background; the progress hook writes `step` and `fraction`."""

    id: str
    kind: str
    preset: str
    filename: str
    user: str
    status: str = "queued"  # queued | running | done | failed
    step: str = ""
    fraction: float = 0.0
    error: str = ""
    result: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def progress(self, step: str, fraction: float) -> None:
        self.status = "running" if step != "done" else self.status
        self.step, self.fraction = step, max(self.fraction, fraction)


JOBS: dict[str, ImportJob] = {}
JOBS_LOCK = threading.Lock()
KEEP_JOBS = 50
SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def _remember(job: ImportJob) -> None:
    with JOBS_LOCK:
        JOBS[job.id] = job
        while len(JOBS) > KEEP_JOBS:
            JOBS.pop(next(iter(JOBS)))


def _run_import(job: ImportJob, path: Path) -> None:
    from liebian.ingest.service import FileImportError, PresetError, import_file

    try:
        result = import_file(path, job.kind, job.preset, on_progress=job.progress)
        job.result = result.as_dict()
        job.status = "done"
    except (FileImportError, PresetError) as exc:  # the file cannot be read at all: say why
        job.error, job.status = str(exc), "failed"
    except Exception as exc:  # noqa: BLE001 - a background thread must report, not vanish
        log.exception("console import %s failed", job.id)
        job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"
    finally:
        job.seconds = round(time.monotonic() - job.started, 1)
        shutil.rmtree(path.parent, ignore_errors=True)
        ingest.IMPORT_SLOTS.give_back()


def _import_options() -> dict:

    presets = [(name, NAMED[name].kind if name in NAMED else "") for name in PRESET_NAMES]
    return {
        "kinds": list(KINDS),
        "presets": presets,
        "accept": ",".join(sorted(FORMATS)),
        "max_mb": get_settings().max_request_bytes // (1024 * 1024),
    }


def _reject_reason(reason: str, locale: str) -> dict[str, str]:
    """A reject's reason by name ("unknown channel tiktok" → 未知渠道 + the refused value "tiktok",
    "missing user_id" → 缺少用户 ID); a reason the catalogue does not know is shown as given."""
    t = translator(locale)
    for prefix in (*quality.REASON_PREFIXES, "negative amount"):
        if reason.startswith(prefix):
            return {"reason": t(f"quality.reason.{prefix}"), "value": reason[len(prefix) :].strip(" :")}
    if reason.startswith("missing "):
        field = code_name(t, "quality.field", reason.removeprefix("missing ").strip())
        return {"reason": t("quality.reason.missing").format(field=field), "value": ""}
    return {"reason": reason, "value": ""}


def _batches_table(batches: list[dict]) -> Table:
    return Table(
        "batches",
        [
            Column("batch_id", "import.batch", data=True),
            Column("kind", "import.kind", codes="import.kind"),
            Column("source", "import.source", data=True),
            Column("rows_read", "import.rows_read", "int"),
            Column("rows_loaded", "import.rows_loaded", "int"),
            Column("rows_duplicate", "import.rows_duplicate", "int"),
            Column("rows_rejected", "import.rows_rejected", "int"),
            Column("finished_at", "import.finished_at", "utc"),
        ],
        batches,
        title="import.recent",
        link=lambda row: f"/import/batches/{row['batch_id']}",
        link_column="batch_id",
    )


@router.get("/import")
def import_page(request: Request) -> Response:

    with warehouse.connect() as con:
        batches = ingest.list_batches(con, limit=20)
    with JOBS_LOCK:
        running = [j for j in JOBS.values() if j.status in ("queued", "running")]
    table = _batches_table(batches)
    context = _import_options() | {"batches": table, "running": running}
    return render(request, "data/import.html", context, tables=[table])


def _refused(request: Request, message: str, status: int = 200) -> Response:
    """The reason an upload was refused, where the progress would show (no http.* audit entry);
    limits answer with their status (413, 422, 429), which console.js swaps in like a 200."""

    write_refused(request)
    response = flash_fragment(message, ok=False)
    response.status_code = status
    return response


@router.post("/import")
def start_import(
    request: Request,
    kind: str = Form(...),
    preset: str = Form("generic"),
    file: UploadFile | None = File(None),
) -> Response:
    from liebian.ingest.files import FileImportError, detect_format
    from liebian.ingest.presets import PresetError, get_preset

    t = translator(locale_of(request))
    if kind not in KINDS:
        return _refused(request, f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if file is None or not file.filename:
        return _refused(request, t("import.no_file"))
    name = SAFE_NAME.sub("_", Path(file.filename).name).strip("._") or "upload"
    try:
        get_preset(preset, kind)
        detect_format(Path(name))
    except (PresetError, FileImportError) as exc:
        return _refused(request, f"{'preset' if isinstance(exc, PresetError) else 'file'}: {exc}")
    job = ImportJob(uuid.uuid4().hex[:12], kind, preset, name, principal_of(request).name)
    try:
        ingest.IMPORT_SLOTS.take()  # a bound on imports at once, given back when the import ends
    except ingest.TooManyImports as exc:
        return _refused(request, exc.message, status=exc.status)
    folder = get_settings().data_dir / "tmp" / "uploads" / job.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    try:
        with path.open("wb") as fh:
            shutil.copyfileobj(file.file, fh)
        if detect_format(path) == "xlsx":
            ingest.check_archive(path)  # a zip bomb is refused here, before any parsing
    except FileImportError as exc:
        ingest.IMPORT_SLOTS.give_back()
        shutil.rmtree(folder, ignore_errors=True)
        return _refused(request, f"file: {exc}", status=exc.status)
    _remember(job)
    threading.Thread(target=_run_import, args=(job, path), name=f"import-{job.id}", daemon=True).start()
    return _job_fragment(request, job)


def _job_fragment(request: Request, job: ImportJob | None, job_id: str = "") -> Response:
    batch = None
    if job is not None and job.status == "done":
        with warehouse.connect() as con:  # the import is over: the warehouse is free again
            batch = ingest.get_batch(con, job.result["batch_id"], rejects_limit=50)
    context = {"job": job, "job_id": job_id, "batch": batch, "step_key": _step_key(job)}
    return render(request, "data/_job.html", context)


def _step_key(job: ImportJob | None) -> str:
    if job is None or not job.step:
        return "import.queued"
    key = f"import.step.{job.step}"
    return key if key in CATALOGUE else "import.running"


@router.get("/import/jobs/{job_id}")
def import_job(request: Request, job_id: str) -> Response:
    with JOBS_LOCK:
        job = JOBS.get(job_id)
    return _job_fragment(request, job, job_id)


@router.get("/import/batches/{batch_id}")
def batch_page(request: Request, batch_id: str) -> Response:

    with warehouse.connect() as con:
        batch = ingest.get_batch(con, batch_id, rejects_limit=10_000)
    if batch is None:
        return render(request, "data/batch.html", {"batch": None}, status_code=404)
    locale = locale_of(request)
    rejects = Table(
        "rejects",
        [
            Column("line", "import.line", "int"),
            Column("field", "quality.field", codes="quality.field"),
            Column("reason", "quality.reason"),
            Column("value", "import.reject_detail", data=True),
        ],
        [r | _reject_reason(r["reason"], locale) for r in batch["rejects"]],
        title="import.rejects",
    )
    context = {"batch": batch, "rejects": rejects}
    return render(request, "data/batch.html", context, tables=[rejects])

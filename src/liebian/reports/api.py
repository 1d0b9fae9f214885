"""HTTP endpoints under /api/v1/reports: on-demand reports (HTML, XLSX, JSON), targets, subscriptions."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from liebian.analytics.common import AnalyticsError
from liebian.auth.deps import client_ip, principal_of
from liebian.db.session import session_scope
from liebian.privacy import watermark
from liebian.reports import schemas, service
from liebian.reports.schemas import DocumentIn, SubscriptionIn, TargetIn
from liebian.reports.service import ReportError
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _report(kind: str, start: date | None, end: date | None):
    if (start is None) != (end is None):
        raise ReportError("start, end: give both or neither", field="start")
    try:
        return service.generate(kind, start, end)
    except AnalyticsError as exc:  # a report's body names the query, with the analysis' message
        raise ReportError(str(exc), field="query") from exc


KIND = Query("weekly", pattern="^(weekly|monthly)$")


@router.get("/report.json", response_model=schemas.Report)
def report_json(kind: str = KIND, start: date | None = None, end: date | None = None):
    """The report's data; without start/end the last complete week or month (display zone)."""
    return _report(kind, start, end)


@router.get("/report.html", response_class=HTMLResponse)
def report_html(request: Request, kind: str = KIND, start: date | None = None, end: date | None = None):
    report = _report(kind, start, end)
    return html_response(report, request)


@router.get(
    "/report.xlsx",
    response_class=Response,
    responses={
        200: {
            "description": "the report workbook",
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def report_xlsx(request: Request, kind: str = KIND, start: date | None = None, end: date | None = None):
    report = _report(kind, start, end)
    return xlsx_response(report, request)


def _mark(report: dict, fmt: str, request: Request) -> watermark.ExportMark:
    """The watermark (and audit entry) of one report download."""
    return watermark.issue_now(
        actor=principal_of(request).name,
        what=f"report {report['kind']} ({fmt})",
        filter_text=f"period {report['period_start']}..{report['period_end']}",
        ip=client_ip(request),
    )


def html_response(report: dict, request: Request, lang: str = "zh-CN") -> HTMLResponse:
    """A report's HTML in `lang`, watermarked (also the console's kept reports)."""
    html = service.render_html(report, lang)
    return HTMLResponse(watermark.mark_html(html, _mark(report, "html", request)))


def xlsx_response(report: dict, request: Request) -> Response:
    """A report's workbook as a download, watermarked (also the console's kept reports)."""
    name = f"liebian-{report['kind']}-{report['period_start']}.xlsx"
    return Response(
        watermark.mark_xlsx(service.render_xlsx(report), _mark(report, "xlsx", request)),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/targets", response_model=list[schemas.TargetOut])
def targets() -> list[dict]:
    with session_scope() as s:
        return service.list_targets(s)


@router.post("/targets", status_code=201, response_model=schemas.TargetOut)
def add_target(body: TargetIn):
    with session_scope() as s:
        return service.create_target(s, **body.model_dump())


@router.delete("/targets/{target_id}", status_code=204, response_class=Response)
def delete_target(target_id: Int64):
    with session_scope() as s:
        service.delete_target(s, target_id)
    return Response(status_code=204)


@router.get("/subscriptions", response_model=list[schemas.SubscriptionOut])
def subscriptions() -> list[dict]:
    with session_scope() as s:
        return service.list_subscriptions(s)


@router.post("/subscriptions", status_code=201, response_model=schemas.SubscriptionOut)
def subscribe(body: SubscriptionIn):
    with session_scope() as s:
        return service.subscribe(s, body.kind, body.channel, body.address, body.secret)


@router.delete("/subscriptions/{subscription_id}", response_model=schemas.SubscriptionOut)
def unsubscribe(subscription_id: Int64):
    with session_scope() as s:
        return service.unsubscribe(s, subscription_id)


@router.get("/runs", response_model=list[schemas.RunOut])
def runs(limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    with session_scope() as s:
        return service.list_runs(s, limit)


@router.post("/send-due", response_model=list[schemas.SentOut])
def send_due() -> list[dict]:
    """Run the schedule now: deliver every report due today that was not delivered yet."""
    return service.run_scheduled()


# ------------------------------------------------------------------ kept reports (documents)


@router.get("/documents", response_model=list[schemas.DocumentOut])
def documents(limit: int = Query(50, ge=1, le=500)) -> list[dict]:
    """Kept reports, newest first (without their data)."""
    with session_scope() as s:
        return service.list_documents(s, limit)


@router.post("/documents", status_code=202, response_model=schemas.DocumentOut)
def request_document(body: DocumentIn, request: Request):
    """Generate a report and keep it: answers at once (status pending); the server builds it in the
    background — poll GET /documents/{id}."""

    with session_scope() as s:
        doc = service.request_document(
            s, body.kind, body.start, body.end, requested_by=principal_of(request).name
        )
    service.produce_later(doc["id"])
    return doc


def _kept(document_id: int) -> dict:
    with session_scope() as s:
        return service.get_document(s, document_id)


@router.get("/documents/{document_id}", response_model=schemas.KeptDocument)
def document(document_id: Int64):
    """A kept report with its data (`report`); 409 while it is still being built."""
    return _kept(document_id)


@router.get("/documents/{document_id}/report.html", response_class=HTMLResponse)
def document_html(document_id: Int64, request: Request):
    kept = _kept(document_id)
    return html_response(kept["report"], request)


@router.get(
    "/documents/{document_id}/report.xlsx",
    response_class=Response,
    responses={
        200: {
            "description": "the kept report's workbook",
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def document_xlsx(document_id: Int64, request: Request):
    kept = _kept(document_id)
    return xlsx_response(kept["report"], request)

"""The data-quality report over HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.quality import service
from liebian.quality.schemas import QualityReport
from liebian.schemas import EdgeDateTime

router = APIRouter(prefix="/api/v1/quality", tags=["quality"])


@router.get("/report", response_model=QualityReport)
def quality_report(
    start: EdgeDateTime | None = Query(None, description="first time included (Z, offset or display zone)"),
    end: EdgeDateTime | None = Query(None, description="first time excluded (Z, offset or display zone)"),
    # finite numbers only: the thresholds go into the report's queries
    late_hours: float = Query(
        24.0, gt=0, le=366 * 24, allow_inf_nan=False, description="arrival later than this after ts is late"
    ),
    max_amount_yuan: float = Query(
        100_000.0, gt=0, le=1e13, allow_inf_nan=False, description="order amounts above this are out of range"
    ),
    outlier_factor: float = Query(
        100.0,
        ge=0,
        le=1e9,
        allow_inf_nan=False,
        description="amounts this many times off the median order (0: off)",
    ),
):
    """Scores 0–100, the error rate against the 0.3 % target, and every finding."""
    if start is not None and end is not None and start >= end:
        return JSONResponse(
            status_code=422,
            content={
                "detail": "invalid request",
                "errors": [{"field": "end", "reason": "end must be after start"}],
            },
        )
    config = service.QualityConfig(
        late_hours=late_hours,
        max_amount_fen=round(max_amount_yuan * 100),
        amount_outlier_factor=outlier_factor,
    )
    with warehouse.connect() as con, session_scope() as session:
        return service.quality_report(con, start=start, end=end, session=session, config=config)

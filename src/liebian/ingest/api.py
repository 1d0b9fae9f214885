"""The HTTP collector: batches of events and orders, idempotent by id, durable before the reply."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from liebian.ingest import service
from liebian.ingest.schemas import MAX_ITEMS, Batch, BatchResult, ItemResultOut

router = APIRouter(prefix="/api/v1", tags=["ingest"])


def _collect(kind: str, batch: Batch) -> BatchResult:
    if len(batch.items) > MAX_ITEMS:
        raise HTTPException(
            status_code=413,
            detail=f"a batch holds at most {MAX_ITEMS} items; this one has {len(batch.items)}: split it",
        )
    summary, outcomes = service.ingest_items(kind, batch.items, source="api")
    return BatchResult(
        batch_id=summary.batch_id,
        accepted=sum(o.status == "accepted" for o in outcomes),
        duplicate=sum(o.status == "duplicate" for o in outcomes),
        rejected=sum(o.status == "rejected" for o in outcomes),
        items=[ItemResultOut(index=o.index, status=o.status, errors=o.errors) for o in outcomes],
    )


@router.post("/events/batch", response_model=BatchResult)
def collect_events(batch: Batch) -> BatchResult:
    """Accept up to 1000 events; each item is accepted, a duplicate (same event_id) or rejected."""
    return _collect("events", batch)


@router.post("/orders/batch", response_model=BatchResult)
def collect_orders(batch: Batch) -> BatchResult:
    """Accept up to 1000 orders; a later refunded/cancelled state of a known order updates it."""
    return _collect("orders", batch)

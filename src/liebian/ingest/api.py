"""The HTTP collector: batches of events and orders, idempotent by id, durable before the reply."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from liebian.auth.deps import principal_of
from liebian.ingest import service
from liebian.ingest.schemas import MAX_ITEMS, Batch, BatchResult, ItemResultOut

router = APIRouter(prefix="/api/v1", tags=["ingest"])


# The batch's source says who sent it: orders from the public front-end key (a public key that can
# also report conversions) are not trusted to confirm campaign conversions; a collector's key
# (ingestion only) or an operator's is (liebian.campaigns.verification reads the source).
PUBLIC_SOURCE = "api:public"


def _source(request: Request) -> str:
    principal = principal_of(request)
    return PUBLIC_SOURCE if principal.kind == "public" and principal.can("frontend") else "api"


def _collect(kind: str, batch: Batch, request: Request) -> BatchResult:
    if len(batch.items) > MAX_ITEMS:
        raise HTTPException(
            status_code=413,
            detail=f"a batch holds at most {MAX_ITEMS} items; this one has {len(batch.items)}: split it",
        )
    summary, outcomes = service.ingest_items(kind, batch.items, source=_source(request))
    return BatchResult(
        batch_id=summary.batch_id,
        accepted=sum(o.status == "accepted" for o in outcomes),
        duplicate=sum(o.status == "duplicate" for o in outcomes),
        rejected=sum(o.status == "rejected" for o in outcomes),
        items=[ItemResultOut(index=o.index, status=o.status, errors=o.errors) for o in outcomes],
    )


@router.post("/events/batch", response_model=BatchResult)
def collect_events(batch: Batch, request: Request) -> BatchResult:
    """Accept up to 1000 events; each item is accepted, a duplicate (same event_id) or rejected."""
    return _collect("events", batch, request)


@router.post("/orders/batch", response_model=BatchResult)
def collect_orders(batch: Batch, request: Request) -> BatchResult:
    """Accept up to 1000 orders; a later refunded/cancelled state of a known order updates it.
    Orders sent with a non-public key confirm campaign conversions reported with their ids."""
    return _collect("orders", batch, request)

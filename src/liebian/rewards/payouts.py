"""Payouts: export the rewards ready to issue (CSV/XLSX) and issue them in one idempotent batch.

The intended flow: export approved rewards → pay them in the reward system → issue exactly the
exported ids with one batch key (`liebian ledger issue --ids-file export.csv --key …`). A repeated
batch key returns the first batch and writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.db.base import utcnow
from liebian.privacy import watermark
from liebian.rewards.models import PayoutBatch, Reward
from liebian.rewards.service import (
    APPROVED,
    ISSUED,
    STATES,
    LedgerError,
    RewardView,
    _check_key,
    _lock_head,
    _transition_locked,
    _view,
)

_R = Reward.__table__
COLUMNS = [
    "reward_id",
    "campaign_id",
    "person_id",
    "reward_code",
    "value_fen",
    "value_yuan",
    "state",
    "source_ref",
    "created_at",
]


@dataclass
class BatchView:
    id: int
    idempotency_key: str
    actor: str
    created_at: datetime
    reward_count: int
    total_fen: int
    reward_ids: list[int]

    def as_dict(self) -> dict:
        return asdict(self)


def payable(session: Session, state: str = APPROVED, campaign_id: str | None = None) -> list[RewardView]:
    """Rewards in `state` that are not held for review, oldest first."""
    if state not in STATES:
        raise LedgerError("invalid", f"state: {state!r} is not one of {', '.join(STATES)}", 422)
    query = select(_R).where(_R.c.state == state, _R.c.held_for_review.is_(False)).order_by(_R.c.id)
    if campaign_id:
        query = query.where(_R.c.campaign_id == campaign_id)
    return [_view(r) for r in session.execute(query).mappings()]


def _rows(rewards: list[RewardView]) -> list[list]:
    return [
        [
            r.id,
            r.campaign_id,
            r.person_id,
            r.reward_code,
            r.value_fen,
            f"{r.value_fen / 100:.2f}",
            r.state,
            r.source_ref,
            r.created_at.isoformat(timespec="seconds"),
        ]
        for r in rewards
    ]


def export_bytes(rewards: list[RewardView], fmt: str, mark: watermark.ExportMark) -> bytes:
    """CSV (UTF-8 with BOM so Excel shows Chinese right) or XLSX; money in fen and in yuan;
    watermarked with `mark` (privacy/watermark.py)."""
    if fmt == "csv":
        return watermark.csv_bytes(COLUMNS, _rows(rewards), mark)
    if fmt == "xlsx":
        rows = _rows(rewards)
        for row in rows:
            # person ids exceed Excel's 15 significant digits: keep them as text
            row[2] = str(row[2])
            row[5] = float(row[5])
        return watermark.xlsx_bytes("payouts", COLUMNS, rows, mark)
    raise LedgerError("invalid", f"format: {fmt!r} is not csv or xlsx", 422)


def check_format(fmt: str) -> str:
    if fmt not in ("csv", "xlsx"):
        raise LedgerError("invalid", f"format: {fmt!r} is not csv or xlsx", 422)
    return fmt


def mark_export(
    session: Session, count: int, fmt: str, state: str, campaign_id: str | None, *, actor: str, ip: str = ""
) -> watermark.ExportMark:
    """The watermark (and audit entry) of one payout export."""
    return watermark.issue(
        session, actor=actor, what=f"payouts ({fmt})", filter_text=f"state={state} campaign_id={campaign_id or ''}",
        rows=count, ip=ip,
    )  # fmt: skip


def export(
    session: Session,
    out: Path,
    fmt: str,
    state: str = APPROVED,
    campaign_id: str | None = None,
    *,
    actor: str = "system",
) -> int:
    rewards = payable(session, state, campaign_id)
    mark = mark_export(session, len(rewards), check_format(fmt), state, campaign_id, actor=actor, ip="cli")
    data = export_bytes(rewards, fmt, mark)
    Path(out).write_bytes(data)
    return len(rewards)


def read_ids(path: Path) -> list[int]:
    """Reward ids from an export file (CSV or XLSX, the reward_id column)."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        # deferred: openpyxl is heavy and only XLSX exports need it (start-up time)
        from openpyxl import load_workbook

        ws = load_workbook(path, read_only=True).active
        if ws is None:
            raise LedgerError("invalid", f"{path.name}: no worksheet", 422)
        rows: list[Any] = list(ws.iter_rows(values_only=True))  # cells: int() checks them below
        header, body = list(rows[0]), [r for r in rows[1:] if not watermark.is_footer(r)]
    else:
        lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
        header, body = lines[0], [r for r in lines[1:] if not watermark.is_footer(r)]
    if "reward_id" not in header:
        raise LedgerError("invalid", f"{path.name}: no reward_id column", 422)
    col = header.index("reward_id")
    ids = []
    for line_no, row in enumerate(body, start=2):
        try:
            ids.append(int(row[col]))
        except (TypeError, ValueError, IndexError):
            raise LedgerError(
                "invalid",
                f"{path.name} row {line_no}: reward_id {row[col] if len(row) > col else ''!r} "
                "is not an integer",
                422,
            ) from None
    return ids


def _batch_view(b: PayoutBatch) -> BatchView:
    return BatchView(
        b.id, b.idempotency_key, b.actor, b.created_at, b.reward_count, b.total_fen, json.loads(b.reward_ids)
    )


def _check_selection(reward_ids: list[int] | None, all_approved: bool) -> None:
    """Which rewards a batch issues must be said explicitly: the ids, or all_approved."""
    if reward_ids is not None and all_approved:
        raise LedgerError("invalid", "all_approved: give either reward_ids or all_approved, not both", 422)
    if reward_ids is None and not all_approved:
        raise LedgerError(
            "invalid",
            "reward_ids: required — the ids of the rewards to issue "
            "(or all_approved: true to issue every payable approved reward)",
            422,
        )
    if reward_ids is not None and not reward_ids:
        raise LedgerError("invalid", "reward_ids: must list at least one reward", 422)


def _check_payable(session: Session, ids: list[int], campaign_id: str | None) -> None:
    """Refuse the batch, naming each reward that cannot be issued."""
    found = {
        r.id: r
        for r in session.execute(
            select(_R.c.id, _R.c.state, _R.c.held_for_review, _R.c.campaign_id).where(_R.c.id.in_(ids))
        )
    }
    problems = []
    for rid in ids:
        r = found.get(rid)
        if r is None:
            problems.append(f"reward {rid} does not exist")
        elif r.state != APPROVED:
            problems.append(f"reward {rid} is {r.state}, not approved")
        elif r.held_for_review:
            problems.append(f"reward {rid} is held for review")
        elif campaign_id and r.campaign_id != campaign_id:
            problems.append(f"reward {rid} belongs to campaign {r.campaign_id}, not {campaign_id}")
    if problems:
        raise LedgerError("not_payable", "batch refused: " + "; ".join(problems))


def issue_batch(
    session: Session,
    *,
    idempotency_key: str,
    actor: str,
    reward_ids: list[int] | None = None,
    all_approved: bool = False,
    campaign_id: str | None = None,
    note: str = "",
) -> BatchView:
    """Mark rewards issued in one batch: exactly the given ids, or — only when asked for with
    `all_approved` — every payable approved reward (of `campaign_id`, if given). Nothing is
    issued by default: a request that names neither is refused.

    All or nothing: if any given reward is not approved (or is held for review, or belongs to
    another campaign than `campaign_id`) the batch is refused, naming each such reward, and
    nothing is written.
    """
    _check_key(idempotency_key)
    if not actor:
        raise LedgerError("invalid", "actor: must name who issues the batch", 422)
    _check_selection(reward_ids, all_approved)
    head = _lock_head(session)
    existing = session.execute(
        select(PayoutBatch).where(PayoutBatch.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
    if existing is not None:
        view = _batch_view(existing)
        if reward_ids is not None and sorted(set(reward_ids)) != sorted(view.reward_ids):
            raise LedgerError(
                "idempotency_conflict",
                f"batch key {idempotency_key!r} was used for other rewards (batch {view.id})",
            )
        return view
    if reward_ids is None:
        ids = [r.id for r in payable(session, APPROVED, campaign_id)]
    else:
        ids = sorted(set(reward_ids))
        _check_payable(session, ids, campaign_id)
    total = 0
    for rid in ids:
        issued, _ = _transition_locked(
            session,
            head,
            rid,
            ISSUED,
            idempotency_key=f"{idempotency_key}:{rid}",
            actor=actor,
            note=f"payout batch {idempotency_key}" + (f": {note}" if note else ""),
        )
        total += issued.value_fen
    batch = PayoutBatch(
        idempotency_key=idempotency_key,
        actor=actor,
        created_at=utcnow(),
        reward_count=len(ids),
        total_fen=total,
        reward_ids=json.dumps(ids),
    )
    session.add(batch)
    session.flush()
    return _batch_view(batch)

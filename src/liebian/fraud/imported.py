"""The fraud rate of imported campaigns: campaigns known only from the warehouse (their campaign_id
on imported events, orders, referral edges), which have no referrals in the campaign engine.

Their referrals are the warehouse's referral edges of the campaign; one counts as fraud when its
invitee is flagged by anti-fraud (`flagged_persons`: the friend or inviter of a case that is open
or rejected — graph scans open cases on imported persons too). A campaign without edges is listed
with 0 referrals and rate 0, like an engine campaign without referrals. Titles come from the
imported titles (`liebian import campaigns`), else the id.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from liebian.engine import warehouse
from liebian.ingest import campaigns as imported_campaigns
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import pyarrow as pa
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    pa = lazy_import("pyarrow")

MAX_CAMPAIGNS = 10_000


def imported_rates(by: str, engine_ids: Collection[str], flagged: frozenset[int]) -> list[dict[str, Any]]:
    """Rows like `fraud.service.fraud_rate`'s (campaign_id[, channel], title, referrals, rejected,
    fraud_rate) for the warehouse's campaigns that are not engine campaigns."""
    keys = "campaign_id" + (", channel" if by == "channel" else "")
    with warehouse.connect(read_only=True) as con:
        campaigns = [
            (cid, title)
            for cid, title in imported_campaigns.warehouse_campaigns(con, MAX_CAMPAIGNS)
            if cid not in engine_ids
        ]
        con.register("flagged_arrow", pa.table({"person_id": pa.array(sorted(flagged), pa.int64())}))
        try:
            counted = con.execute(
                f"SELECT {keys}, count(*), count(*) FILTER (WHERE f.person_id IS NOT NULL)"
                " FROM referral_edges e LEFT JOIN flagged_arrow f ON f.person_id = e.invitee_person_id"
                f" WHERE campaign_id IS NOT NULL GROUP BY {keys}"
            ).fetchall()
        finally:
            con.unregister("flagged_arrow")
    titles = dict(campaigns)
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in counted:
        group, total, flagged_edges = tuple(row[:-2]), int(row[-2]), int(row[-1])
        if group[0] not in titles:
            continue
        out[group] = _row(group, titles[group[0]], total, flagged_edges)
    for cid, title in campaigns:  # campaigns without edges: known, no referrals
        if not any(key[0] == cid for key in out):
            out[(cid, "") if by == "channel" else (cid,)] = _row(
                (cid, "") if by == "channel" else (cid,), title, 0, 0
            )
    return list(out.values())


def _row(group: tuple[str, ...], title: str, total: int, flagged_edges: int) -> dict[str, Any]:
    item: dict[str, Any] = {"campaign_id": group[0]}
    if len(group) > 1:
        item["channel"] = group[1]
    item.update(
        title=title,
        referrals=total,
        rejected=flagged_edges,
        fraud_rate=round(flagged_edges / total, 5) if total else 0.0,
        source="imported",
    )
    return item

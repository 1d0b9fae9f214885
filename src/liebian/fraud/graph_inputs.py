"""What the graph scan reads from the operational store besides the warehouse: the identity
store's evidence that OneID kept as a conflict (the warehouse's identity_map has only the merges)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from liebian.fraud.graph_patterns import DIRECT_KINDS, LINK_COLUMNS
from liebian.identity.models import IdentityLink
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    pd = lazy_import("pandas")


def conflict_links(session: Session) -> pd.DataFrame:
    """Links OneID refused to merge that name a direct identifier (phone, payment account, device)
    on either side: evidence that one person also used another person's identifier. Values are the
    stored ones (HMACs for phones and payment accounts), as in identity_map."""
    direct = list(DIRECT_KINDS)
    rows = session.execute(
        select(
            IdentityLink.id_type_a, IdentityLink.id_value_a, IdentityLink.id_type_b, IdentityLink.id_value_b
        )
        .where(IdentityLink.outcome == "conflict")
        .where(or_(IdentityLink.id_type_a.in_(direct), IdentityLink.id_type_b.in_(direct)))
    ).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=LINK_COLUMNS)

"""Channel efficacy radar (渠道效能雷达图): fission power against conversion power per channel.

Each channel's KPI sheet is computed with the channel as filter (same definitions as kpis.py); each
axis is normalised by the best channel (value / max, so the best channel scores 1 and a channel
without data 0). Fission power = mean of the normalised invites and K-factor; conversion power =
mean of the normalised conversion rate, AOV and D7 retention.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from liebian.analytics.common import Frame
from liebian.analytics.kpis import Costs, kpis

FISSION_AXES = ("invites_sent", "k_factor")
CONVERSION_AXES = ("conversion_rate", "aov_fen", "retention_d7")


def channel_names(fr: Frame) -> list[str]:
    e = fr.events()
    return sorted(str(c) for c in fr.execute(e.select("channel").distinct()).channel)


def channel_radar(
    fr: Frame, channels: list[str] | None = None, costs: Costs | None = None
) -> list[dict[str, Any]]:
    names = channels or list(fr.filters.channels) or channel_names(fr)
    rows = []
    for name in names:
        sub = Frame(fr.backend, replace(fr.filters, channels=(name,)), fr.config)
        k = kpis(sub, costs)
        rows.append({"channel": name, **{a: k[a] for a in FISSION_AXES + CONVERSION_AXES}})
    for axis in FISSION_AXES + CONVERSION_AXES:
        best = max((r[axis] or 0) for r in rows) if rows else 0
        for r in rows:
            r[f"{axis}_norm"] = (r[axis] or 0) / best if best else 0.0
    for r in rows:
        r["fission_power"] = sum(r[f"{a}_norm"] for a in FISSION_AXES) / len(FISSION_AXES)
        r["conversion_power"] = sum(r[f"{a}_norm"] for a in CONVERSION_AXES) / len(CONVERSION_AXES)
    return rows

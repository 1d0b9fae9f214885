"""The /channels page: the channel radar (invites, K-factor, conversion, order value, day-7 retention)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.analytics.catalogue import display_kind
from liebian.analytics.common import AnalyticsError
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    cached_analytics,
    render,
)
from liebian.web.pages.analytics.common import PALETTE, failed_page, page_start

router = APIRouter(include_in_schema=False)

RADAR_AXES = ("invites_sent", "k_factor", "conversion_rate", "aov_fen", "retention_d7")


def _channel_name(t, channel: str) -> str:
    key = f"channel.{channel}"
    return t(key) if t(key) != key else channel


def warm_default_view() -> None:
    """The channel radar as first opened (no filters)."""
    af = ConsoleFilters().to_analytics()
    cached_analytics("run_channels", af)


@router.get("/channels")
def channels_page(request: Request) -> Response:

    t, filters, context = page_start(request)
    template = "analytics/channels.html"
    try:
        rows = cached_analytics("run_channels", filters.to_analytics())
    except (FilterError, AnalyticsError) as exc:
        return failed_page(request, template, context, exc)
    if not rows:
        return render(request, template, context)
    names = [_channel_name(t, r["channel"]) for r in rows]
    radar = {
        "animation": False,
        "tooltip": {"trigger": "item"},
        "legend": {"top": 0, "type": "scroll", "data": names},
        "color": PALETTE,
        "radar": {
            "indicator": [{"name": t(f"kpi.{a}"), "max": 1} for a in RADAR_AXES],
            "center": ["50%", "56%"],
            "radius": "65%",
        },
        "series": [
            {
                "name": t("channels.radar"),
                "type": "radar",
                "data": [
                    {"name": n, "value": [round(r[f"{a}_norm"], 4) for a in RADAR_AXES]}
                    for n, r in zip(names, rows, strict=True)
                ],
            }
        ],
    }
    power = {
        "animation": False,
        "tooltip": {"trigger": "item", "formatter": "{a}: {c}"},
        "color": PALETTE,
        "grid": {"left": 60, "right": 30, "top": 20, "bottom": 50},
        "xAxis": {"type": "value", "name": t("channels.fission_power"), "nameLocation": "middle", "nameGap": 28,
                  "min": 0, "max": 1},
        "yAxis": {"type": "value", "name": t("channels.conversion_power"), "nameLocation": "middle", "nameGap": 40,
                  "min": 0, "max": 1},
        "series": [
            {
                "name": n,
                "type": "scatter",
                "symbolSize": 16,
                "label": {"show": True, "position": "right", "formatter": "{a}", "color": "#1f2328"},
                "data": [[round(r["fission_power"], 4), round(r["conversion_power"], 4)]],
            }
            for n, r in zip(names, rows, strict=True)
        ],
        "liebianLinks": [["/" + filters.query(channel=r["channel"])] for r in rows],
    }  # fmt: skip
    table = Table(
        "channels",
        [Column("channel", "filters.channel", codes="channel")]
        + [Column(a, f"kpi.{a}", display_kind(a))
           for a in RADAR_AXES]
        + [Column("fission_power", "channels.fission_power", "float"),
           Column("conversion_power", "channels.conversion_power", "float")],
        rows,
        title="channels.table",
        link=lambda row: "/" + filters.query(channel=row["channel"]),
        link_column="channel",
    )  # fmt: skip
    context |= {
        "has_data": True,
        "charts": [
            Chart("channel_radar", radar, "channels.radar", height=400),
            Chart("channel_power", power, "channels.power", height=400),
        ],
        "tables": [table],
    }
    return render(request, template, context, tables=[table])

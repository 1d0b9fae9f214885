"""What the MODELS pages share: their messages, the palette, how a stored fit is described, bar charts."""

from __future__ import annotations

from liebian.predict.results import is_current
from liebian.web.console import ConsoleFilters, segment_members

PALETTE = ["#0a4fa8", "#b3102a", "#116329", "#8a4b00", "#6639ba", "#1b7c83", "#4d5560", "#c2185b"]


def fitted(entry: dict | None, snapshot: dict) -> dict | None:
    """When a stored fit was made, on data up to when, and whether the data is still the same."""
    if entry is None:
        return None

    seen = (entry.get("snapshot") or {}).get("max_ts") or {}
    return {
        "id": entry["id"],
        "at": entry["created_at"][:16].replace("T", " "),
        "data_until": (seen.get("events") or "")[:16].replace("T", " "),
        "current": is_current(entry, snapshot),
    }


def selection(filters: ConsoleFilters) -> list[int] | None:
    return segment_members(filters.segment) if filters.segment else None


def channel_label(t, value: str) -> str:
    label = t(f"channel.{value}")
    return value if label == f"channel.{value}" else label


def bar_option(categories: list[str], series: list[dict], y_name: str = "", legend: bool = True) -> dict:
    return {
        "animation": False,
        "color": PALETTE,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0} if legend else {"show": False},
        "grid": {"left": 60, "right": 60, "top": 40, "bottom": 60},
        "xAxis": {"type": "category", "data": categories, "axisLabel": {"interval": 0, "rotate": 20}},
        "yAxis": [{"type": "value", "name": y_name}],
        "series": series,
    }

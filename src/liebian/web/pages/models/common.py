"""What the MODELS pages share: their messages, the palette, how a stored fit is described, bar charts."""

from __future__ import annotations

from liebian.web.console import ConsoleFilters, segment_members
from liebian.web.i18n import register

register(
    {
        # shared by the three pages
        "models.fitted_at": ("拟合时间", "Fitted at"),
        "models.data_until": ("数据截至", "data up to"),
        "models.current": ("与当前数据一致", "matches the current data"),
        "models.stale": ("数据已变化，建议重新拟合", "the data changed since; refit to update"),
        "models.refit": ("重新拟合", "Refit"),
        "models.refit_all": ("全部重新拟合", "Refit everything"),
        "models.refit_ltv": ("只拟合 LTV", "LTV only"),
        "models.refit_segments": ("只拟合分群", "Segments only"),
        "models.refit_tags": ("只重算标签与健康度", "Tags & health only"),
        "models.refit_help": (
            "拟合在后台运行（5 万人约 1 分钟），完成后页面自动刷新。",
            "Fits run in the background (about a minute for 50,000 persons); the page reloads when done.",
        ),
        "models.no_permission": (
            "重新拟合需要 models:write 权限（运营或分析师）。",
            "Refitting needs the models:write permission (operator or analyst).",
        ),
        "models.running": ("正在运行", "Running"),
        "models.elapsed": ("已用时（秒）", "seconds elapsed"),
        "models.finished": ("已完成，用时（秒）", "Finished; seconds taken:"),
        "models.failed": ("失败", "Failed"),
        "models.already_running": (
            "已有任务在运行，显示其进度。",
            "A refit is already running; showing its progress.",
        ),
        "models.stage.waiting": ("等待其他计算完成", "waiting for another computation to finish"),
        "models.stage.ltv": ("LTV（BG/NBD + Gamma-Gamma）", "LTV (BG/NBD + Gamma-Gamma)"),
        "models.stage.segments": ("分群（RFM + K-Means）", "Segments (RFM + K-Means)"),
        "models.stage.tags": ("标签与健康度", "Tags and health score"),
        "models.stage.attribution": ("多触点归因", "Multi-touch attribution"),
        "models.filter_note": (
            "筛选只作用于人（主要渠道、人群标签）；模型本身基于全部数据拟合。",
            "Filters select persons (main channel, segment tag); the models are fitted on all data.",
        ),
        "channel.(none)": ("（无事件）", "(no events)"),
    }
)


PALETTE = ["#0a4fa8", "#b3102a", "#116329", "#8a4b00", "#6639ba", "#1b7c83", "#4d5560", "#c2185b"]


def fitted(entry: dict | None, snapshot: dict) -> dict | None:
    """When a stored fit was made, on data up to when, and whether the data is still the same."""
    if entry is None:
        return None
    from liebian.predict.results import is_current

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

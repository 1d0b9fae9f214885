"""The console's MODELS pages: LTV and segments, multi-touch attribution, A/B experiments.

Fits are slow (the LTV fit takes about a minute on 50 000 persons), so the pages show the newest
stored fit or result (liebian.predict.results) and say whether it still matches the data. Refits run
in a background thread of the server process, one at a time, and the page polls their progress
through htmx; a finished refit reloads the page. Attribution is computed the same way when no
stored report matches the filters and the current data, and is then kept in the model store.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    filter_options,
    flash_fragment,
    htmx_redirect,
    is_htmx,
    render,
    segment_members,
)
from liebian.web.i18n import MESSAGES, locale_of, register, translator

log = logging.getLogger("liebian.web.models")
router = APIRouter(include_in_schema=False)

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
        # LTV and segments
        "ltv.heading": ("LTV 与用户分群", "LTV and segments"),
        "ltv.by": ("分组方式", "Group by"),
        "ltv.by.channel": ("按渠道", "By channel"),
        "ltv.by.segment": ("按分群", "By segment"),
        "ltv.section": ("预测 LTV（BG/NBD + Gamma-Gamma）", "Predicted LTV (BG/NBD + Gamma-Gamma)"),
        "ltv.none": (
            "还没有 LTV 模型。点击“重新拟合”，或运行 `liebian predict ltv`。",
            "No LTV fit yet. Click Refit, or run `liebian predict ltv`.",
        ),
        "ltv.customers": ("有购买的用户", "Customers (buyers)"),
        "ltv.mean_clv": ("平均预测 LTV", "Mean predicted LTV"),
        "ltv.median_clv": ("预测 LTV 中位数", "Median predicted LTV"),
        "ltv.p90_clv": ("预测 LTV P90", "Predicted LTV, 90th pct"),
        "ltv.total_clv": ("预测 LTV 合计", "Total predicted LTV"),
        "ltv.mean_historical": ("人均已支付", "Mean paid so far"),
        "ltv.expected_purchases": ("人均预期购买次数", "Expected purchases per customer"),
        "ltv.multiplier": ("裂变用户 LTV 倍数", "LTV multiplier of referred users"),
        "ltv.multiplier_note": ("95% 置信区间（全部数据）", "95% interval (all data)"),
        "ltv.horizon": ("预测期（天）", "Horizon (days)"),
        "ltv.group": ("分组", "Group"),
        "ltv.by_group": ("各组预测 LTV", "Predicted LTV by group"),
        "ltv.chart_by_group": (
            "各组平均预测 LTV（¥）与用户数",
            "Mean predicted LTV (¥) and customers by group",
        ),
        "ltv.histogram": (
            "预测 LTV 分布（¥ 区间的用户数）",
            "Distribution of predicted LTV (customers per ¥ bin)",
        ),
        "ltv.top": ("预测 LTV 最高的用户", "Customers with the highest predicted LTV"),
        "ltv.person": ("用户 ID", "Person id"),
        "ltv.clv": ("预测 LTV", "Predicted LTV"),
        "ltv.historical": ("已支付", "Paid so far"),
        "ltv.expected_purchases_person": ("预期购买次数", "Expected purchases"),
        "ltv.expected_spend": ("预期客单价", "Expected spend per purchase"),
        "ltv.segment": ("分群", "Segment"),
        "seg.section": ("用户分群（RFM + K-Means）", "Segments (RFM + K-Means)"),
        "seg.none": (
            "还没有分群模型。点击“重新拟合”，或运行 `liebian predict segments`。",
            "No segmentation yet. Click Refit, or run `liebian predict segments`.",
        ),
        "seg.k": ("分群数 k（按轮廓系数选择）", "k (chosen by silhouette)"),
        "seg.silhouette": ("轮廓系数", "Silhouette"),
        "seg.sizes": ("各分群人数（当前筛选）", "Persons per segment (current filters)"),
        "seg.rfm_grid": (
            "RFM 网格：最近购买 R × 购买频次 F 的人数",
            "RFM grid: persons per recency R × frequency F score",
        ),
        "seg.profiles": ("分群画像", "Segment profiles"),
        "seg.cluster": ("编号", "Cluster"),
        "seg.name": ("分群名称", "Segment"),
        "seg.size": ("人数（全部）", "Persons (all)"),
        "seg.share": ("占比（全部）", "Share (all)"),
        "seg.selected": ("人数（当前筛选）", "Persons (filtered)"),
        "seg.selected_share": ("占比（当前筛选）", "Share (filtered)"),
        "seg.mean_recency_days": ("平均最近活跃（天前）", "Mean days since active"),
        "seg.mean_orders_total": ("平均订单数", "Mean orders"),
        "seg.mean_spend_total_fen": ("平均消费", "Mean spend"),
        "seg.mean_events_30d": ("平均 30 天事件数", "Mean events (30 d)"),
        "seg.mean_invites_90d": ("平均 90 天邀请数", "Mean invites (90 d)"),
        "seg.r": ("R 分", "R score"),
        "seg.f": ("F 分", "F score"),
        "tags.section": ("标签与健康度", "Tags and health score"),
        "tags.none": (
            "还没有标签。点击“重新拟合”会安装 11 个默认标签并计算，或运行 `liebian tags init` 与 `liebian tags recompute`。",
            "No tags yet. Refit installs the 11 default tags and computes them; or run `liebian tags init` and `liebian tags recompute`.",
        ),
        "tags.table": ("标签（当前成员数，全部用户）", "Tags (current members, everyone)"),
        "tags.name": ("标签", "Tag"),
        "tags.level": ("层级", "Level"),
        "tags.version": ("版本", "Version"),
        "tags.rule": ("规则", "Rule"),
        "tags.members": ("成员数", "Members"),
        "tags.level.attribute": ("属性", "attribute"),
        "tags.level.behaviour": ("行为", "behaviour"),
        "tags.level.value": ("价值", "value"),
        "health.none": (
            "还没有健康度。点击“重新拟合”（标签与健康度）。",
            "No health scores yet. Click Refit (tags & health).",
        ),
        "health.histogram": (
            "健康度分布（0–100，每 10 分的人数）",
            "Health score distribution (persons per 10 points)",
        ),
        "health.bands": ("健康度分档与价值分层", "Health bands and value tiers"),
        "health.mean": ("平均健康度", "Mean health score"),
        "health.median": ("健康度中位数", "Median health score"),
        "health.persons": ("人数", "Persons"),
        "health.band": ("分档 / 分层", "Band / tier"),
        "health.good": ("健康（≥70）", "healthy (≥ 70)"),
        "health.fair": ("一般（40–70）", "fair (40–70)"),
        "health.warn": ("预警（<40）", "at risk (< 40)"),
        "tier.new": ("新手", "newcomer"),
        "tier.active": ("活跃", "active"),
        "tier.high": ("高价值", "high value"),
        "tier.silent": ("沉默", "silent"),
        # attribution
        "attr.heading": ("多触点归因", "Multi-touch attribution"),
        "attr.by.channel": ("按渠道", "By channel"),
        "attr.by.campaign": ("按活动", "By campaign"),
        "attr.options": ("模型参数", "Model settings"),
        "attr.lookback": ("回溯窗口（天）", "Lookback (days)"),
        "attr.half_life": ("时间衰减半衰期（小时）", "Time-decay half-life (hours)"),
        "attr.apply": ("重新计算", "Recompute"),
        "attr.computing": ("正在计算归因…", "Computing the attribution…"),
        "attr.updating": (
            "数据已变化，正在按当前数据重新计算；下面是上一次的结果。",
            "The data changed; recomputing on the current data. The previous result is shown below.",
        ),
        "attr.computed_at": ("计算时间", "Computed at"),
        "attr.paths": ("路径数", "Paths"),
        "attr.conversions": ("转化数", "Conversions"),
        "attr.revenue": ("转化金额", "Revenue"),
        "attr.touchpoint": ("触点", "Touchpoint"),
        "attr.chart_conversions": (
            "各模型分配到触点的转化数",
            "Conversions credited to each touchpoint, by model",
        ),
        "attr.chart_revenue": (
            "各模型分配到触点的转化金额（¥）",
            "Revenue (¥) credited to each touchpoint, by model",
        ),
        "attr.table_conversions": ("转化数分配（各模型并列）", "Conversions credited (models side by side)"),
        "attr.table_revenue": ("转化金额分配（各模型并列）", "Revenue credited (models side by side)"),
        "attr.removal": ("移除效应（马尔可夫）", "Removal effect (Markov)"),
        "attr.model.first": ("首次触点", "First touch"),
        "attr.model.last": ("末次触点", "Last touch"),
        "attr.model.linear": ("线性", "Linear"),
        "attr.model.time_decay": ("时间衰减", "Time decay"),
        "attr.model.position": ("位置（40/20/40）", "Position (40/20/40)"),
        "attr.model.markov": ("马尔可夫", "Markov"),
        "attr.bad_option": ("参数无效", "Invalid setting"),
        # experiments
        "exp.heading": ("A/B 实验", "A/B experiments"),
        "exp.list": ("实验读数", "Experiment readouts"),
        "exp.none": (
            "还没有实验读数。用下面的表单读出一个实验（也可用 `liebian predict ab-readout`）。",
            "No readouts yet. Read out an experiment with the form below (or `liebian predict ab-readout`).",
        ),
        "exp.forest": (
            "转化率差异及置信区间（百分点）",
            "Difference in conversion rate with its interval (points)",
        ),
        "exp.rates": ("所选实验：各组转化率", "Selected experiment: conversion rate per variant"),
        "exp.name": ("实验名称", "Experiment"),
        "exp.created_at": ("读出时间", "Read out at"),
        "exp.control": ("对照组", "Control"),
        "exp.treatment": ("实验组", "Treatment"),
        "exp.units_c": ("对照组样本", "Control units"),
        "exp.units_t": ("实验组样本", "Treatment units"),
        "exp.rate_c": ("对照组转化率", "Control conversion"),
        "exp.rate_t": ("实验组转化率", "Treatment conversion"),
        "exp.diff": ("提升（绝对）", "Lift (absolute)"),
        "exp.ci_low": ("置信区间下限", "CI low"),
        "exp.ci_high": ("置信区间上限", "CI high"),
        "exp.relative": ("提升（相对）", "Lift (relative)"),
        "exp.p_value": ("p 值（z 检验）", "p-value (z-test)"),
        "exp.planned_n": ("计划每组样本", "Planned units per variant"),
        "exp.progress": ("样本进度", "Sample progress"),
        "exp.status": ("状态", "Status"),
        "exp.decision": ("结论", "Decision"),
        "exp.status.final": ("已完成", "final"),
        "exp.status.running": ("进行中（未达样本量）", "running (sample not reached)"),
        "exp.status.invalid": ("无效（样本比例失衡）", "invalid (sample-ratio mismatch)"),
        "exp.detail": ("读数详情", "Readout"),
        "exp.srm": ("样本比例检验 p 值", "Sample-ratio check p-value"),
        "exp.chi2": ("卡方", "Chi-square"),
        "exp.z": ("z 值", "z"),
        "exp.revenue_diff": ("人均收入差异", "Revenue per unit difference"),
        "exp.revenue_p": ("收入 p 值（Welch t 检验）", "Revenue p-value (Welch t-test)"),
        "exp.new": ("读出新实验", "Read out an experiment"),
        "exp.new_help": (
            "填写每组样本数与转化数；或上传 CSV（unit_id, variant, converted, revenue_fen，每个单位一行）以同时检验收入。",
            "Enter each variant's units and conversions; or upload a CSV (unit_id, variant, converted, revenue_fen, one row per unit) to test revenue too.",
        ),
        "exp.control_name": ("对照组名称", "Control name"),
        "exp.treatment_name": ("实验组名称", "Treatment name"),
        "exp.units": ("样本数", "units"),
        "exp.conversions": ("转化数", "conversions"),
        "exp.alpha": ("显著性水平 α", "Significance level α"),
        "exp.csv": ("或上传 CSV", "Or upload a CSV"),
        "exp.submit": ("读出", "Read out"),
        "exp.failed": ("无法读出：", "Cannot read out: "),
        "exp.no_permission": (
            "读出并保存实验需要 models:write 权限。",
            "Reading out and keeping an experiment needs the models:write permission.",
        ),
        "exp.plan": ("样本量计算", "Sample size"),
        "exp.baseline": ("基线转化率（0–1）", "Baseline conversion (0–1)"),
        "exp.mde": ("最小可检测提升（绝对，如 0.02）", "Minimum detectable lift (absolute, e.g. 0.02)"),
        "exp.power": ("检验功效", "Power"),
        "exp.calculate": ("计算", "Calculate"),
        "exp.n_per_variant": ("每组所需样本数", "Units needed per variant"),
    }
)

BAND_KEYS = {"健康": "health.good", "一般": "health.fair", "预警": "health.warn"}
TIER_KEYS = {"新手": "tier.new", "活跃": "tier.active", "高价值": "tier.high", "沉默": "tier.silent"}
ATTR_MODELS = ("first", "last", "linear", "time_decay", "position", "markov")
PALETTE = ["#0a4fa8", "#b3102a", "#116329", "#8a4b00", "#6639ba", "#1b7c83", "#4d5560", "#c2185b"]


# --- background tasks -------------------------------------------------------------------------


@dataclass
class Task:
    """One background fit: its stages, progress, and how it ended (per server process)."""

    key: str
    stages: list[str]
    total: int
    started: float = field(default_factory=time.time)
    stage: str = ""
    step: str = ""
    done: int = 0
    finished: float | None = None
    errors: list[str] = field(default_factory=list)
    snapshot_hash: str | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def elapsed(self) -> int:
        return round((self.finished or time.time()) - self.started)


# (label, steps, work): work(report) runs inside listen_steps, so a fit reports its steps by itself;
# other work calls report(step_label, steps_done)
Stage = tuple[str, int, Callable[[Callable[[str, int], None]], Any]]
_TASKS: dict[str, Task] = {}
_TASKS_LOCK = threading.Lock()
_SLOTS = threading.Semaphore(1)


def start_task(key: str, stages: list[Stage], snapshot_hash: str | None = None) -> tuple[Task, bool]:
    """Start `stages` in a background thread unless a task with this key is running; (task, started)."""
    with _TASKS_LOCK:
        task = _TASKS.get(key)
        if task is not None and task.running:
            return task, False
        task = Task(key, [s[0] for s in stages], sum(s[1] for s in stages), snapshot_hash=snapshot_hash)
        _TASKS[key] = task
        _prune()
    threading.Thread(target=_work, args=(task, stages), daemon=True, name=f"console-{key[:40]}").start()
    return task, True


def _prune() -> None:
    """Forget finished tasks after an hour (the attribution keys vary with the filters)."""
    old = time.time() - 3600
    for key in [k for k, t in _TASKS.items() if t.finished and t.finished < old]:
        del _TASKS[key]


def _work(task: Task, stages: list[Stage]) -> None:
    task.stage = "waiting"
    try:
        with _SLOTS:  # one fit at a time: they are CPU-bound and the server has other work
            _run_stages(task, stages)
    finally:
        task.finished = time.time()


def _run_stages(task: Task, stages: list[Stage]) -> None:
    from liebian.predict.common import PredictError, listen_steps
    from liebian.tags.service import TagError

    base = 0
    for label, steps, work in stages:
        task.stage, task.step = label, ""

        def on_step(step: str, done: int, _total: int, base: int = base) -> None:
            task.step, task.done = step, base + done

        try:
            with listen_steps(on_step):
                work(lambda step, done, total=steps: on_step(step, done, total))
        except (PredictError, TagError, FilterError) as exc:
            task.errors.append(f"{label}: {exc}")
        except Exception as exc:  # noqa: BLE001 - shown on the page and logged, never lost
            log.exception("console task %s, stage %s", task.key, label)
            task.errors.append(f"{label}: {type(exc).__name__}: {exc}")
        base += steps
        task.done = base


def _task_context(task: Task | None, t) -> dict[str, Any] | None:
    if task is None:
        return None
    return {
        "running": task.running,
        "stage": t(f"models.stage.{task.stage}") if task.stage else "",
        "step": task.step,
        "done": task.done,
        "total": max(task.total, 1),
        "elapsed": task.elapsed,
        "errors": task.errors,
    }


# --- shared helpers ---------------------------------------------------------------------------


def _fitted(entry: dict | None, snapshot: dict) -> dict | None:
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


def _selection(filters: ConsoleFilters) -> list[int] | None:
    return segment_members(filters.segment) if filters.segment else None


def _channel_label(t, value: str) -> str:
    label = t(f"channel.{value}")
    return value if label == f"channel.{value}" else label


def _bar_option(categories: list[str], series: list[dict], y_name: str = "", legend: bool = True) -> dict:
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


# --- /ltv -------------------------------------------------------------------------------------


def _refit_stages(what: str) -> list[Stage]:
    from liebian.predict import service as predict

    def tags_and_health(report) -> None:
        from liebian.db.session import session_scope
        from liebian.tags import service as tags

        feats = tags.tag_features()
        tags.record_health(feats)
        report("health", 1)
        with session_scope() as session:  # as the daily tags-recompute job: defaults, then recompute
            tags.install_defaults(session)
            tags.recompute(session, features=feats)
        report("tags", 2)

    stages: dict[str, Stage] = {
        "ltv": ("ltv", 4, lambda _report: predict.fit_ltv()),
        "segments": ("segments", 3, lambda _report: predict.fit_segments()),
        "tags": ("tags", 2, tags_and_health),
    }
    return list(stages.values()) if what == "all" else [stages[what]]


def _ltv_tables(t, ltv: dict | None, seg: dict | None, health: dict | None, tag_rows: list[dict],
                by: str, filters: ConsoleFilters, can_persons: bool) -> tuple[list[Table], list[Chart]]:  # fmt: skip
    tables: list[Table] = []
    charts: list[Chart] = []
    if ltv is not None:
        groups = [
            g | {"label": _channel_label(t, g["group"]) if by == "channel" else g["group"]}
            for g in ltv["groups"]
        ]
        tables.append(
            Table(
                "ltv_groups",
                [
                    Column("label", "ltv.group"),
                    Column("customers", "ltv.customers", "int"),
                    Column("mean_clv_fen", "ltv.mean_clv", "fen"),
                    Column("median_clv_fen", "ltv.median_clv", "fen"),
                    Column("p90_clv_fen", "ltv.p90_clv", "fen"),
                    Column("total_clv_fen", "ltv.total_clv", "fen"),
                    Column("mean_historical_fen", "ltv.mean_historical", "fen"),
                    Column("expected_purchases", "ltv.expected_purchases", "float"),
                ],
                groups,
                title="ltv.by_group",
                link=(lambda row: "/ltv" + filters.query(channel=row["group"], by=by))
                if by == "channel"
                else None,
                link_column="label",
            )
        )
        labels = [g["label"] for g in groups]
        option = _bar_option(
            labels,
            [
                {"name": t("ltv.mean_clv"), "type": "bar",
                 "data": [round((g["mean_clv_fen"] or 0) / 100, 2) for g in groups]},
                {"name": t("ltv.customers"), "type": "line", "yAxisIndex": 1, "data": [g["customers"] for g in groups]},
            ],
            "¥",
        )  # fmt: skip
        option["yAxis"].append({"type": "value", "name": t("ltv.customers"), "splitLine": {"show": False}})
        if by == "channel":
            option["liebianLinks"] = [[f"/ltv{filters.query(channel=g['group'], by=by)}" for g in groups]] * 2
        charts.append(Chart("ltv_by_group", option, "ltv.chart_by_group"))
        hist = ltv["histogram"]
        charts.append(
            Chart(
                "ltv_histogram",
                _bar_option(
                    [f"¥{h['low_yuan']:g}–{h['high_yuan']:g}" for h in hist],
                    [{"name": t("ltv.customers"), "type": "bar", "data": [h["customers"] for h in hist]}],
                    legend=False,
                ),
                "ltv.histogram",
            )
        )
        if can_persons:
            top_columns = [
                Column("person_id", "ltv.person"),
                Column("channel_label", "filters.channel"),
                Column("clv_fen", "ltv.clv", "fen"),
                Column("historical_fen", "ltv.historical", "fen"),
                Column("expected_purchases", "ltv.expected_purchases_person", "float"),
                Column("expected_spend_fen", "ltv.expected_spend", "fen"),
            ]
            if by == "segment":
                top_columns.append(Column("segment", "ltv.segment"))
            tables.append(
                Table(
                    "ltv_top",
                    top_columns,
                    [r | {"channel_label": _channel_label(t, r["channel"])} for r in ltv["top"]],
                    title="ltv.top",
                )
            )
    if seg is not None:
        names = [p["name"] for p in seg["profiles"]]
        charts.append(
            Chart(
                "segment_sizes",
                _bar_option(
                    names,
                    [
                        {
                            "name": t("seg.selected"),
                            "type": "bar",
                            "data": [p["selected"] for p in seg["profiles"]],
                        }
                    ],
                    legend=False,
                ),
                "seg.sizes",
            )
        )
        grid = [[g["f_score"] - 1, g["r_score"] - 1, g["persons"]] for g in seg["rfm_grid"]]
        charts.append(
            Chart(
                "rfm_grid",
                {
                    "animation": False,
                    "tooltip": {},
                    "grid": {"left": 60, "right": 30, "top": 20, "bottom": 90},
                    "xAxis": {"type": "category", "name": t("seg.f"), "data": ["1", "2", "3", "4", "5"]},
                    "yAxis": {"type": "category", "name": t("seg.r"), "data": ["1", "2", "3", "4", "5"]},
                    "visualMap": {
                        "min": 0,
                        "max": max([g[2] for g in grid] or [1]),
                        "orient": "horizontal",
                        "left": "center",
                        "bottom": 0,
                        "calculable": True,
                        "inRange": {"color": ["#eef3fb", "#0a4fa8"]},
                    },
                    "series": [
                        {"name": t("seg.rfm_grid"), "type": "heatmap", "data": grid, "label": {"show": True}}
                    ],
                },
                "seg.rfm_grid",
            )
        )
        columns = [
            Column("cluster", "seg.cluster", "int"),
            Column("name", "seg.name"),
            Column("size", "seg.size", "int"),
            Column("share", "seg.share", "pct"),
            Column("selected", "seg.selected", "int"),
            Column("selected_share", "seg.selected_share", "pct"),
        ]
        for key in seg["model"]["params"]["columns"]:
            kind = "fen" if key.endswith("_fen") else "float"
            label = f"seg.mean_{key}" if f"seg.mean_{key}" in MESSAGES else f"mean {key}"  # --columns
            columns.append(Column(f"mean_{key}", label, kind))
        tables.append(Table("segments", columns, seg["profiles"], title="seg.profiles"))
    if tag_rows:
        tables.append(
            Table(
                "tags",
                [
                    Column("name", "tags.name"),
                    Column("level_label", "tags.level"),
                    Column("version", "tags.version", "int"),
                    Column("rule", "tags.rule"),
                    Column("members", "tags.members", "int"),
                ],
                [r | {"level_label": t(f"tags.level.{r['level']}")} for r in tag_rows],
                title="tags.table",
                link=lambda row: "/ltv" + filters.query(segment=row["name"], by=by),
                link_column="name",
            )
        )
    if health is not None:
        charts.append(
            Chart(
                "health_histogram",
                _bar_option(
                    [f"{h['low']}–{h['high']}" for h in health["histogram"]],
                    [{"name": t("health.persons"), "type": "bar", "data": [h["persons"] for h in health["histogram"]],
                      "itemStyle": {"color": "#116329"}}],
                    legend=False,
                ),
                "health.histogram",
            )
        )  # fmt: skip
        rows = [{"label": t(BAND_KEYS[b["band"]]), "persons": b["persons"]} for b in health["bands"]]
        rows += [{"label": t(TIER_KEYS[x["tier"]]), "persons": x["persons"]} for x in health["tiers"]]
        for row in rows:
            row["share"] = row["persons"] / health["persons"] if health["persons"] else None
        tables.append(
            Table(
                "health",
                [Column("label", "health.band"), Column("persons", "health.persons", "int"),
                 Column("share", "seg.selected_share", "pct")],
                rows,
                title="health.bands",
            )
        )  # fmt: skip
    return tables, charts


@router.get("/ltv")
def ltv_page(request: Request) -> Response:
    from liebian.auth.deps import principal_of
    from liebian.db.session import session_scope
    from liebian.predict import results
    from liebian.predict.common import PredictError
    from liebian.tags import service as tags

    t = translator(locale_of(request))
    filters = ConsoleFilters.from_request(request)
    by = request.query_params.get("by") or "channel"
    principal = principal_of(request)
    context: dict[str, Any] = {
        "filters": filters,
        "options": filter_options(),
        "by": by,
        "error": None,
        "task": _task_context(_TASKS.get("refit"), t),
        "can_refit": principal.can("models:write"),
        "ltv": None,
        "seg": None,
        "health": None,
        "fits": {},
        "charts": {},
        "tables": {},
    }
    try:
        if by not in results.BY:
            raise FilterError(f"by: must be channel or segment (got {by!r})")
        person_ids = _selection(filters)
    except FilterError as exc:
        return render(
            request, "models/ltv.html", context | {"error": str(exc), "by": "channel"}, status_code=422
        )
    snapshot = results.current_snapshot()
    channel = filters.channel or None
    errors = []
    try:
        ltv = results.ltv_breakdown(by, channel, person_ids, top=200)
    except PredictError as exc:  # by segment without a segmentation
        errors.append(str(exc))
        ltv = results.ltv_breakdown("channel", channel, person_ids, top=200)
        by = "channel"
    seg = results.segment_summary(channel, person_ids)
    health = tags.health_distribution(channel, person_ids)
    with session_scope() as session:
        tag_rows = [r for r in tags.list_tags(session) if not r["retired_at"]]
    tables, charts = _ltv_tables(t, ltv, seg, health, tag_rows, by, filters, principal.can("segments:read"))
    ltv_entry = ltv["model"] if ltv else None
    context |= {
        "by": by,
        "error": "; ".join(errors) or None,
        "ltv": ltv,
        "seg": seg,
        "health": health,
        "tag_rows": tag_rows,
        "fits": {
            "ltv": _fitted(ltv_entry, snapshot),
            "segments": _fitted(seg["model"] if seg else None, snapshot),
            "health": _fitted(health["model"] if health else None, snapshot),
        },
        "multiplier": (ltv_entry["metrics"].get("ltv_multiplier") if ltv_entry else None),
        "horizon_days": (
            round(ltv_entry["params"]["horizon_units"] * ltv_entry["params"]["unit_days"])
            if ltv_entry
            else None
        ),
        "charts": {c.id: c for c in charts},
        "tables": {tb.id: tb for tb in tables},
    }
    return render(request, "models/ltv.html", context, tables=tables)


@router.post("/ltv/refit")
async def ltv_refit(request: Request) -> Response:
    t = translator(locale_of(request))
    form = await request.form()
    what = str(form.get("what") or "all")
    if what not in ("all", "ltv", "segments", "tags"):
        return flash_fragment(f"what: must be all, ltv, segments or tags (got {what!r})", ok=False)
    task, started = start_task("refit", _refit_stages(what))
    context = {"task": _task_context(task, t), "note": None if started else t("models.already_running")}
    return render(
        request, "models/_task.html", context | {"poll_url": "/ltv/refit", "box_id": "refit-status"}
    )


@router.get("/ltv/refit")
def ltv_refit_status(request: Request) -> Response:
    t = translator(locale_of(request))
    task = _TASKS.get("refit")
    response = render(
        request,
        "models/_task.html",
        {"task": _task_context(task, t), "poll_url": "/ltv/refit", "box_id": "refit-status"},
    )
    if task is not None and not task.running and is_htmx(request):
        response.headers["HX-Refresh"] = "true"  # show the new fits
    return response


# --- /attribution -----------------------------------------------------------------------------


def _attr_settings(request: Request) -> tuple[str, int, float]:
    q = request.query_params
    by = q.get("by") or "channel"
    if by not in ("channel", "campaign"):
        raise FilterError(f"by: must be channel or campaign (got {by!r})")
    try:
        lookback = int(q.get("lookback_days") or 30)
    except ValueError as exc:
        raise FilterError(f"lookback_days: not a whole number ({q.get('lookback_days')!r})") from exc
    try:
        half_life = float(q.get("half_life_hours") or 72)
    except ValueError as exc:
        raise FilterError(f"half_life_hours: not a number ({q.get('half_life_hours')!r})") from exc
    if not 1 <= lookback <= 365:
        raise FilterError(f"lookback_days: must be between 1 and 365 (got {lookback})")
    if not 0 < half_life <= 24 * 365:
        raise FilterError(f"half_life_hours: must be above 0 and at most 8760 (got {half_life:g})")
    return by, lookback, half_life


def _attr_request(request: Request):
    """Everything that defines one attribution report: settings, period, segment (by its members)."""
    filters = ConsoleFilters.from_request(request)
    by, lookback, half_life = _attr_settings(request)
    af = filters.to_analytics()
    members = sorted(af.segment) if af.segment is not None else None
    key_params = {
        "by": by,
        "lookback_days": lookback,
        "half_life_hours": half_life,
        "start": af.start.isoformat() if af.start else None,
        "end": af.end.isoformat() if af.end else None,
        "segment": filters.segment or None,
        "members": hashlib.sha256(",".join(map(str, members)).encode()).hexdigest()[:16] if members is not None else None,
    }  # fmt: skip
    return filters, af, members, key_params


def _attr_stage(af, members, key_params) -> list[Stage]:
    from liebian.predict import service as predict

    def work(_report) -> None:
        predict.attribution_report(
            key_params["by"], key_params["lookback_days"], key_params["half_life_hours"], af.start, af.end,
            members, store_params={"segment": key_params["segment"], "members": key_params["members"]},
        )  # fmt: skip

    return [("attribution", 1, work)]


def _attr_key(key_params: dict) -> str:
    return "attribution:" + ",".join(f"{k}={v}" for k, v in sorted(key_params.items()))


def _attr_view(t, report: dict, by: str) -> tuple[list[Table], list[Chart]]:
    rows = report["rows"]
    label = (lambda v: _channel_label(t, v)) if by == "channel" else (lambda v: v)
    rows = [r | {"label": label(r["touchpoint"])} for r in rows]
    labels = [r["label"] for r in rows]
    charts, tables = [], []
    for metric, chart_title, scale in (
        ("conversions", "attr.chart_conversions", 1),
        ("revenue_fen", "attr.chart_revenue", 100),
    ):
        series = [
            {
                "name": t(f"attr.model.{m}"),
                "type": "bar",
                "data": [round(r[f"{m}_{metric}"] / scale, 2) for r in rows],
            }
            for m in ATTR_MODELS
        ]
        charts.append(
            Chart(
                f"attr_{metric}",
                _bar_option(labels, series, "¥" if scale == 100 else ""),
                chart_title,
                height=360,
            )
        )
    tables.append(
        Table(
            "attr_conversions",
            [Column("label", "attr.touchpoint")]
            + [Column(f"{m}_conversions", f"attr.model.{m}", "float") for m in ATTR_MODELS]
            + [Column("removal_effect", "attr.removal", "pct")],
            rows,
            title="attr.table_conversions",
        )
    )
    tables.append(
        Table(
            "attr_revenue",
            [Column("label", "attr.touchpoint")] + [Column(f"{m}_revenue_fen", f"attr.model.{m}", "fen") for m in ATTR_MODELS],
            rows,
            title="attr.table_revenue",
        )
    )  # fmt: skip
    return tables, charts


@router.get("/attribution")
def attribution_page(request: Request) -> Response:
    from liebian.predict import results

    t = translator(locale_of(request))
    q = request.query_params
    context: dict[str, Any] = {
        "filters": ConsoleFilters.from_request(request),
        "options": filter_options(),
        "error": None,
        "report": None,
        "by": q.get("by") or "channel",
        "lookback_days": q.get("lookback_days") or "30",
        "half_life_hours": q.get("half_life_hours") or "72",
    }
    try:
        filters, af, members, key_params = _attr_request(request)
    except FilterError as exc:
        return render(request, "models/attribution.html", context | {"error": str(exc)}, status_code=422)
    snapshot = results.current_snapshot()
    entry = results.latest("attribution", key_params)
    current = entry is not None and results.is_current(entry, snapshot)
    task = None
    if not current:
        key = _attr_key(key_params)
        task = _TASKS.get(key)
        failed_on_this_data = (
            task is not None and not task.running and task.errors and task.snapshot_hash == snapshot["hash"]
        )
        if not failed_on_this_data:
            task, _ = start_task(key, _attr_stage(af, members, key_params), snapshot["hash"])
    tables: list[Table] = []
    if entry is not None:
        report = entry["metrics"]
        tables, charts = _attr_view(t, report, key_params["by"])
        context |= {"report": report, "charts": charts, "fitted": _fitted(entry, snapshot)}
    context |= {
        "tables": tables,
        "task": _task_context(task, t),
        "poll_url": f"/attribution/status{request.url.query and '?' + request.url.query}",
        "by": key_params["by"],
        "updating": entry is not None and not current,
    }
    return render(request, "models/attribution.html", context, tables=tables)


@router.get("/attribution/status")
def attribution_status(request: Request) -> Response:
    t = translator(locale_of(request))
    try:
        _, _, _, key_params = _attr_request(request)
    except FilterError as exc:
        return flash_fragment(str(exc), ok=False)
    task = _TASKS.get(_attr_key(key_params))
    poll_url = f"/attribution/status{request.url.query and '?' + request.url.query}"
    response = render(
        request,
        "models/_task.html",
        {"task": _task_context(task, t), "poll_url": poll_url, "box_id": "attr-status"},
    )
    if task is not None and not task.running and not task.errors and is_htmx(request):
        response.headers["HX-Refresh"] = "true"
    return response


# --- /experiments -----------------------------------------------------------------------------


def _p_text(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.0001" if p < 0.0001 else f"{p:.4f}"


def _readout_row(entry: dict, t) -> dict:
    r = entry["metrics"]
    planned = r.get("planned_n_per_variant")
    return {
        "id": entry["id"],
        "name": entry["params"]["name"],
        "created_at": entry["created_at"],
        "control": r["control"],
        "treatment": r["treatment"],
        "units_control": r["units"]["control"],
        "units_treatment": r["units"]["treatment"],
        "rate_control": r["conversion_rate"]["control"],
        "rate_treatment": r["conversion_rate"]["treatment"],
        "diff": r["diff"],
        "ci_low": r["diff_ci"][0],
        "ci_high": r["diff_ci"][1],
        "relative_lift": r["relative_lift"],
        "p_value": _p_text(r["p_value_z"]),
        "planned_n": planned,
        "progress": min(r["units"]["control"], r["units"]["treatment"]) / planned if planned else None,
        "status": t(f"exp.status.{r['status']}"),
        "decision": r["decision"],
    }


@router.get("/experiments")
def experiments_page(request: Request) -> Response:
    from liebian.auth.deps import principal_of
    from liebian.predict import results

    t = translator(locale_of(request))
    entries = results.experiment_readouts()
    rows = [_readout_row(e, t) for e in entries]
    table = Table(
        "experiments",
        [
            Column("name", "exp.name"),
            Column("created_at", "exp.created_at", "datetime"),
            Column("control", "exp.control"),
            Column("treatment", "exp.treatment"),
            Column("units_control", "exp.units_c", "int"),
            Column("units_treatment", "exp.units_t", "int"),
            Column("rate_control", "exp.rate_c", "pct"),
            Column("rate_treatment", "exp.rate_t", "pct"),
            Column("diff", "exp.diff", "pct"),
            Column("ci_low", "exp.ci_low", "pct"),
            Column("ci_high", "exp.ci_high", "pct"),
            Column("relative_lift", "exp.relative", "pct"),
            Column("p_value", "exp.p_value"),
            Column("planned_n", "exp.planned_n", "int"),
            Column("progress", "exp.progress", "pct"),
            Column("status", "exp.status"),
            Column("decision", "exp.decision"),
        ],
        rows,
        title="exp.list",
        link=lambda row: f"/experiments?id={row['id']}#readout",
        link_column="name",
    )
    wanted = request.query_params.get("id")
    selected = next((e for e in entries if e["id"] == wanted), entries[0] if entries else None)
    charts = []
    if rows:
        shown = list(reversed(rows[:20]))  # oldest at the bottom of the forest plot
        charts.append(
            Chart(
                "exp_forest",
                {
                    "animation": False,
                    "tooltip": {"trigger": "item"},
                    "grid": {"left": 160, "right": 40, "top": 20, "bottom": 40},
                    "yAxis": {"type": "category", "data": [r["name"] for r in shown]},
                    "xAxis": {"type": "value", "name": "pp", "scale": True},
                    "series": [
                        {
                            "name": t("exp.diff"),
                            "type": "boxplot",
                            "itemStyle": {"color": "#eef3fb", "borderColor": "#0a4fa8"},
                            "data": [[round(100 * v, 3) for v in (r["ci_low"], r["ci_low"], r["diff"], r["ci_high"], r["ci_high"])]
                                     for r in shown],
                        },
                        {"name": "0", "type": "line", "markLine": {"symbol": "none", "data": [{"xAxis": 0}],
                                                                 "lineStyle": {"color": "#b3102a"}}, "data": []},
                    ],
                    "liebianLinks": [[f"/experiments?id={r['id']}#readout" for r in shown]],
                },
                "exp.forest",
                height=max(160, 40 * len(shown) + 60),
            )
        )  # fmt: skip
    if selected is not None:
        r = selected["metrics"]
        charts.append(
            Chart(
                "exp_rates",
                _bar_option(
                    [r["control"], r["treatment"]],
                    [{"name": t("attr.conversions"), "type": "bar",
                      "data": [round(100 * r["conversion_rate"]["control"], 3), round(100 * r["conversion_rate"]["treatment"], 3)]}],
                    "%",
                    legend=False,
                ),
                "exp.rates",
                height=260,
            )
        )  # fmt: skip
    principal = principal_of(request)
    context = {
        "filters": ConsoleFilters.from_request(request),
        "rows": rows,
        "selected": selected,
        "selected_row": _readout_row(selected, t) if selected else None,
        "p_text": _p_text,
        "table": table,
        "charts": charts,
        "can_write": principal.can("models:write"),
    }
    return render(request, "models/experiments.html", context, tables=[table])


def _int_field(form, key: str, required: bool = True) -> int | None:
    raw = str(form.get(key) or "").strip()
    if not raw:
        if required:
            raise ValueError(f"{key}: required")
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{key}: not a whole number ({raw!r})") from exc


@router.post("/experiments")
async def experiments_readout(request: Request) -> Response:
    from liebian.auth.deps import principal_of
    from liebian.predict import experiments, results
    from liebian.predict.common import PredictError

    t = translator(locale_of(request))
    form = await request.form()
    try:
        name = str(form.get("name") or "")
        control_name = str(form.get("control_name") or "").strip() or "control"
        treatment_name = str(form.get("treatment_name") or "").strip() or "treatment"
        if control_name == treatment_name:
            raise ValueError("treatment_name: must differ from control_name")
        try:
            alpha = float(str(form.get("alpha") or "0.05"))
        except ValueError as exc:
            raise ValueError(f"alpha: not a number ({form.get('alpha')!r})") from exc
        if not 0 < alpha < 1:
            raise ValueError(f"alpha: must be between 0 and 1 (got {alpha:g})")
        planned_n = _int_field(form, "planned_n", required=False)
        if planned_n is not None and planned_n <= 0:
            raise ValueError(f"planned_n: must be positive (got {planned_n})")
        upload = form.get("file")
        content = await upload.read() if upload is not None and hasattr(upload, "read") else b""
        if content:
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ValueError("file: not UTF-8 text") from exc
            reader = csv.DictReader(io.StringIO(text))
            missing = {"unit_id", "variant", "converted"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"file: missing column(s) {sorted(missing)}")
            sides = experiments.summarise_units(list(reader), [control_name, treatment_name], "line", 2)
            control, treatment, source = sides[control_name], sides[treatment_name], "csv"
        else:
            control = {
                "name": control_name,
                "units": _int_field(form, "control_units"),
                "conversions": _int_field(form, "control_conversions"),
            }
            treatment = {"name": treatment_name, "units": _int_field(form, "treatment_units"),
                         "conversions": _int_field(form, "treatment_conversions")}  # fmt: skip
            source = "form"
        entry = results.record_readout(
            name, control, treatment, alpha, planned_n, source=source, created_by=principal_of(request).name
        )
    except (ValueError, PredictError) as exc:  # PredictError is a ValueError too
        return flash_fragment(t("exp.failed") + str(exc), ok=False)
    return htmx_redirect(f"/experiments?id={entry['id']}#readout")


@router.get("/experiments/plan")
def experiments_plan(request: Request) -> Response:
    from liebian.predict import experiments
    from liebian.predict.common import PredictError

    t = translator(locale_of(request))
    q = request.query_params
    try:
        values = {}
        for key, default in (("baseline", None), ("mde", None), ("alpha", "0.05"), ("power", "0.8")):
            raw = (q.get(key) or default or "").strip()
            try:
                values[key] = float(raw)
            except ValueError as exc:
                raise ValueError(f"{key}: not a number ({raw!r})") from exc
        for key in ("alpha", "power"):
            if not 0 < values[key] < 1:
                raise ValueError(f"{key}: must be between 0 and 1 (got {values[key]:g})")
        n = experiments.sample_size_proportions(
            values["baseline"], values["mde"], values["alpha"], values["power"]
        )
    except (ValueError, PredictError) as exc:
        return flash_fragment(str(exc), ok=False)
    label = escape(t("exp.n_per_variant"))
    return HTMLResponse(f'<p class="flash ok" role="status">{label}: <strong id="plan-n">{n:,}</strong></p>')

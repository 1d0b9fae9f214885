"""Console pages of issue #11: operating reports (/reports) and marketing automation (/journeys).

/reports lists the kept reports (weekly, monthly; generated on demand in a background thread, or by
the schedule), opens one as HTML, downloads its XLSX, shows the SMART targets' progress measured by
one of those reports (set and edit targets there), and manages the report subscriptions.
/journeys lists the journeys with their statistics (entered, actioned, converted, hold-out control
and lift — the automation service's `stats_many`), shows one journey as a readable flow with the
contact rules checked before every action, and creates, activates and pauses journeys.

Every number and every rule comes from liebian.reports.service and liebian.automation.service.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from liebian.db.session import session_scope
from liebian.web.console import Chart, Column, Table, flash_fragment, htmx_redirect, render, warmer
from liebian.web.i18n import locale_of, register, translator

router = APIRouter(include_in_schema=False)

register(
    {
        # reports
        "reports.heading": ("运营报告", "Operating reports"),
        "reports.generate": ("生成报告", "Generate a report"),
        "reports.generate_hint": (
            "不填日期时生成上一个完整周期（周一至周日，或上个自然月）。生成在后台进行，完成后出现在下表。",
            "Without dates: the last complete period (Monday–Sunday, or the previous month). The report is "
            "built in the background and appears in the list below when ready.",
        ),
        "reports.kind": ("类型", "Kind"),
        "reports.kind.weekly": ("周报", "Weekly"),
        "reports.kind.monthly": ("月报", "Monthly"),
        "reports.start": ("开始日期（可选）", "From (optional)"),
        "reports.end": ("结束日期（可选）", "To (optional)"),
        "reports.submit_generate": ("生成", "Generate"),
        "reports.queued": (
            "报告 #{id} 已开始生成（{start} – {end}）。",
            "Report #{id} is being generated ({start} – {end}).",
        ),
        "reports.documents": ("已生成的报告", "Generated reports"),
        "reports.id": ("编号", "No."),
        "reports.period": ("统计区间", "Period"),
        "reports.period_start": ("开始", "From"),
        "reports.period_end": ("结束", "To"),
        "reports.status": ("状态", "Status"),
        "reports.status.pending": ("排队中", "queued"),
        "reports.status.running": ("生成中", "generating"),
        "reports.status.done": ("已完成", "ready"),
        "reports.status.failed": ("失败", "failed"),
        "reports.requested_by": ("发起人", "Requested by"),
        "reports.created_at": ("发起时间", "Requested at"),
        "reports.finished_at": ("完成时间", "Finished at"),
        "reports.open": ("报告", "Report"),
        "reports.view_html": ("查看 HTML", "View HTML"),
        "reports.download_xlsx": ("下载 XLSX", "Download XLSX"),
        "reports.no_documents": ("还没有生成过报告。", "No report generated yet."),
        "reports.working": ("正在生成，页面会自动刷新…", "Generating; this list refreshes by itself…"),
        "reports.targets": ("SMART 目标与进度", "SMART targets and progress"),
        "reports.measured_by": ("进度按报告计算：", "Progress measured by report:"),
        "reports.measured_none": (
            "还没有可用的报告来衡量进度：先生成一份报告。",
            "No report to measure progress with yet: generate one first.",
        ),
        "reports.show": ("显示", "Show"),
        "reports.target_name": ("目标", "Target"),
        "reports.metric": ("指标", "Metric"),
        "reports.baseline": ("基线", "Baseline"),
        "reports.target_value": ("目标值", "Target value"),
        "reports.current": ("当前值", "Current"),
        "reports.progress": ("完成度", "Progress"),
        "reports.time_elapsed": ("时间已过", "Time elapsed"),
        "reports.tstatus": ("进度状态", "Status"),
        "reports.tstatus.achieved": ("已达成", "achieved"),
        "reports.tstatus.on_track": ("按计划", "on track"),
        "reports.tstatus.behind": ("落后", "behind"),
        "reports.tstatus.no_data": ("无数据", "no data"),
        "reports.start_date": ("开始日期", "Start date"),
        "reports.due_date": ("截止日期", "Due date"),
        "reports.window": ("起止日期", "Start – due"),
        "reports.owner": ("负责人", "Owner"),
        "reports.actions": ("操作", "Actions"),
        "reports.edit": ("编辑", "Edit"),
        "reports.delete": ("删除", "Delete"),
        "reports.delete_confirm": ("确定删除这个目标吗？", "Delete this target?"),
        "reports.no_targets": ("还没有目标。", "No targets set."),
        "reports.progress_chart": ("目标完成度与时间进度", "Target progress against time elapsed"),
        "reports.target_form_new": ("设定目标", "Set a target"),
        "reports.target_form_edit": ("编辑目标", "Edit target"),
        "reports.target_hint": (
            "比率可填 32% 或 0.32；金额以分为单位。完成度 =（当前 − 基线）/（目标 − 基线）。",
            "Rates as 32% or 0.32; money in fen. Progress = (current − baseline) / (target − baseline).",
        ),
        "reports.save": ("保存", "Save"),
        "reports.cancel": ("取消编辑", "Cancel editing"),
        "reports.saved": ("已保存。", "Saved."),
        "reports.subscriptions": ("报告订阅", "Report subscriptions"),
        "reports.subscriptions_hint": (
            "周报每周一发送，月报每月 1–5 日发送；邮件附 XLSX，Webhook 带签名。",
            "Weekly reports go out on Mondays, monthly ones on the 1st–5th; e-mails carry the XLSX, "
            "webhooks are signed.",
        ),
        "reports.channel": ("方式", "Channel"),
        "reports.channel.email": ("邮件", "E-mail"),
        "reports.channel.webhook": ("Webhook", "Webhook"),
        "reports.address": ("地址（邮箱或 URL）", "Address (e-mail or URL)"),
        "reports.secret": ("签名密钥（Webhook，至少 16 位）", "Signing secret (webhook, 16+ characters)"),
        "reports.active": ("有效", "Active"),
        "reports.yes": ("是", "yes"),
        "reports.no": ("否", "no"),
        "reports.subscribe": ("添加订阅", "Subscribe"),
        "reports.unsubscribe": ("停用", "Deactivate"),
        "reports.no_subscriptions": ("还没有订阅。", "No subscriptions."),
        "reports.runs": ("最近的发送记录", "Recent deliveries"),
        "reports.subscription": ("订阅", "Subscription"),
        "reports.detail": ("说明", "Detail"),
        "reports.sent_at": ("发送时间", "Sent at"),
        "reports.bad_number": ("{field}：{value!r} 不是数字", "{field}: {value!r} is not a number"),
        "reports.bad_date": (
            "{field}：{value!r} 不是日期（YYYY-MM-DD）",
            "{field}: {value!r} is not a date (YYYY-MM-DD)",
        ),
        "reports.required": ("{field}：必填", "{field}: required"),
        # journeys
        "journeys.heading": ("自动化旅程", "Marketing journeys"),
        "journeys.new": ("新建旅程", "New journey"),
        "journeys.list": ("旅程与效果", "Journeys and results"),
        "journeys.name": ("名称", "Name"),
        "journeys.status": ("状态", "Status"),
        "journeys.status.active": ("运行中", "active"),
        "journeys.status.paused": ("已暂停", "paused"),
        "journeys.trigger": ("触发", "Trigger"),
        "journeys.entered": ("进入（实验组）", "Entered (treatment)"),
        "journeys.control_entered": ("对照组人数", "Control group"),
        "journeys.actioned": ("已触达", "Actioned"),
        "journeys.converted": ("已转化", "Converted"),
        "journeys.treatment_rate": ("实验组转化率", "Treatment conversion"),
        "journeys.control_rate": ("对照组转化率", "Control conversion"),
        "journeys.lift": ("提升（相对）", "Lift (relative)"),
        "journeys.uplift": ("提升（绝对）", "Uplift (absolute)"),
        "journeys.last_scan": ("上次扫描", "Last scan"),
        "journeys.none": ("还没有旅程。", "No journeys yet."),
        "journeys.rates_chart": ("实验组与对照组转化率", "Conversion: treatment against hold-out control"),
        "journeys.arm": ("分组", "Arm"),
        "journeys.arm.treatment": ("实验组", "treatment"),
        "journeys.arm.control": ("对照组（不触达）", "control (held out)"),
        "journeys.arms": ("分组统计", "Statistics per arm"),
        "journeys.arm_entered": ("进入人数", "Entered"),
        "journeys.conversion_rate": ("转化率", "Conversion rate"),
        "journeys.outcomes": ("动作结果", "Action outcomes"),
        "journeys.outcome": ("结果", "Outcome"),
        "journeys.count": ("次数", "Count"),
        "journeys.outcome.sent": ("已执行", "sent"),
        "journeys.outcome.capped": ("超频跳过", "skipped: frequency cap"),
        "journeys.outcome.quiet_hours": ("免打扰顺延", "postponed: quiet hours"),
        "journeys.outcome.no_consent": ("无营销授权退出", "stopped: no marketing consent"),
        "journeys.outcome.failed": ("失败", "failed"),
        "journeys.flow": ("旅程流程", "Flow"),
        "journeys.step": ("步骤", "Step"),
        "journeys.goal": ("转化目标", "Goal"),
        "journeys.goal_text": ("{days} 天内发生 {event}", "{event} within {days} days"),
        "journeys.trigger.segment": ("进入人群（标签）「{tag}」", "Enters the segment (tag) “{tag}”"),
        "journeys.trigger.event": (
            "发生事件 {event}（首次扫描回看 {hours} 小时）",
            "Does the event {event} (first scan looks back {hours} h)",
        ),
        "journeys.trigger.churn_risk": ("流失风险高于 {threshold}", "Churn risk above {threshold}"),
        "journeys.trigger.silence": ("沉默超过 {days} 天", "Silent for more than {days} days"),
        "journeys.wait": ("等待 {hours} 小时", "Wait {hours} hours"),
        "journeys.branch": ("判断：{cond}", "Branch: {cond}"),
        "journeys.cond_event": ("进入后发生过 {event}", "did {event} since entering"),
        "journeys.cond_tag": ("带有标签 {tag}", "carries the tag {tag}"),
        "journeys.then": ("是 → {target}", "yes → {target}"),
        "journeys.else": ("否 → {target}", "no → {target}"),
        "journeys.target.next": ("下一步", "next step"),
        "journeys.target.exit": ("退出旅程", "exit the journey"),
        "journeys.target.step": ("第 {n} 步", "step {n}"),
        "journeys.action.webhook": (
            "通过 {channel} 发送（Webhook {url}）",
            "Send via {channel} (webhook {url})",
        ),
        "journeys.action.tag": ("打标签 {name}", "Tag {name}"),
        "journeys.action.campaign": ("加入活动 {name} 的受众", "Add to the audience of campaign {name}"),
        "journeys.rules": ("每次动作前的检查", "Checked before every action"),
        "journeys.rule_consent": (
            "营销授权（marketing）：以最新记录为准，撤回后在下一次动作时退出。",
            "Marketing consent: the newest record decides; a withdrawal stops the journey at the next action.",
        ),
        "journeys.rule_quiet": (
            "免打扰时段：{hours}（{zone}）{source}",
            "Quiet hours: {hours} ({zone}) {source}",
        ),
        "journeys.rule_quiet_none": ("免打扰时段：无{source}", "Quiet hours: none{source}"),
        "journeys.rule_quiet_own": ("— 本旅程设置", "— set by this journey"),
        "journeys.rule_quiet_global": ("— 全局设置", "— global setting"),
        "journeys.rule_cap": (
            "频次上限：每人每 {days} 天最多 {cap} 次触达，跨所有渠道与旅程（打标签、加入活动不计）。",
            "Frequency cap: at most {cap} contacts per person per {days} days across all channels and "
            "journeys (tags and campaign audiences contact nobody).",
        ),
        "journeys.rule_holdout": (
            "对照组：{pct}% 的进入者被留出，从不触达，用于计算提升。",
            "Hold-out: {pct}% of entrants are held out and never actioned, to measure lift.",
        ),
        "journeys.pause": ("暂停", "Pause"),
        "journeys.activate": ("启用", "Activate"),
        "journeys.back": ("返回旅程列表", "Back to journeys"),
        "journeys.definition": ("旅程定义（JSON）", "Definition (JSON)"),
        "journeys.definition_hint": (
            "触发 → 步骤（wait / branch / action）→ 目标；格式见 docs/automation.md。从示例开始：",
            "Trigger → steps (wait / branch / action) → goal; see docs/automation.md. Start from an example:",
        ),
        "journeys.example.silence": ("沉默用户唤醒", "Wake up silent users"),
        "journeys.example.churn": ("流失干预", "Churn intervention"),
        "journeys.example.segment": ("人群欢迎", "Segment welcome"),
        "journeys.activate_now": ("创建后立即启用", "Activate at once"),
        "journeys.create": ("创建旅程", "Create journey"),
        "journeys.bad_json": (
            "definition：不是有效的 JSON（{error}）",
            "definition: not valid JSON ({error})",
        ),
    }
)


def _t(request: Request):
    return translator(locale_of(request))


def _user(request: Request) -> str:
    from liebian.auth.deps import principal_of

    return principal_of(request).name


# ============================================================================ reports


RATE_METRICS = {
    "participation_rate", "invite_conversion", "referral_rate", "conversion_rate", "repurchase_rate",
    "referred_share_of_new", "dau_mau", "reactivation_rate", "roi",
}  # fmt: skip


def metric_kind(metric: str) -> str:
    """How a KPI's value is shown: rates as %, money (…_fen) as ¥, counts as integers."""
    if metric in RATE_METRICS or re.fullmatch(r"retention_d\d+", metric):
        return "pct"
    if metric.endswith("_fen"):
        return "fen"
    if metric in ("k_factor", "invites_per_participant"):
        return "float"
    return "int"


def _metric_label(t, metric: str) -> str:
    label = t(f"kpi.{metric}")
    return metric if label == f"kpi.{metric}" else f"{label} ({metric})"


def _metric_choices(t) -> list[tuple[str, str]]:
    from liebian.reports.service import TARGET_METRICS

    metrics = ["retention_d1", "retention_d7", "retention_d30", *TARGET_METRICS]
    return [(m, _metric_label(t, m)) for m in metrics]


def _documents_table(documents: list[dict]) -> Table:
    return Table(
        "reports",
        [
            Column("id", "reports.id", "int"),
            Column("kind", "reports.kind"),
            Column("period_start", "reports.period_start", "date"),
            Column("period_end", "reports.period_end", "date"),
            Column("status", "reports.status"),
            Column("requested_by", "reports.requested_by"),
            Column("created_at", "reports.created_at", "datetime"),
            Column("finished_at", "reports.finished_at", "datetime"),
        ],
        documents,
        title="reports.documents",
    )


def _targets_table(targets: list[dict]) -> Table:
    return Table(
        "targets",
        [
            Column("name", "reports.target_name"),
            Column("metric", "reports.metric"),
            Column("baseline", "reports.baseline", "float"),
            Column("target", "reports.target_value", "float"),
            Column("current", "reports.current", "float"),
            Column("progress", "reports.progress", "pct"),
            Column("time_elapsed", "reports.time_elapsed", "pct"),
            Column("status", "reports.tstatus"),
            Column("start_date", "reports.start_date", "date"),
            Column("due_date", "reports.due_date", "date"),
            Column("owner", "reports.owner"),
        ],
        targets,
        title="reports.targets",
    )


def _progress_chart(t, targets: list[dict]) -> Chart:
    names = [x["name"] for x in targets]
    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 140, "right": 40, "top": 36, "bottom": 30},
        "xAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
        "yAxis": {"type": "category", "data": names, "inverse": True},
        "series": [
            {
                "name": t("reports.progress"),
                "type": "bar",
                "itemStyle": {"color": "#b3102a"},
                "data": [None if x["progress"] is None else round(x["progress"] * 100, 1) for x in targets],
                "label": {"show": True, "position": "right", "formatter": "{c}%"},
            },
            {
                "name": t("reports.time_elapsed"),
                "type": "bar",
                "itemStyle": {"color": "#8c959f"},
                "data": [round(x["time_elapsed"] * 100, 1) for x in targets],
            },
        ],
    }
    return Chart("target-progress", option, "reports.progress_chart", height=max(160, 60 + 50 * len(targets)))


def _documents_context(request: Request) -> dict[str, Any]:
    from liebian.reports import service

    with session_scope() as s:
        documents = service.list_documents(s)
    working = any(d["status"] in ("pending", "running") for d in documents)
    return {"documents": documents, "working": working}


@router.get("/reports")
def reports_page(request: Request) -> Response:
    from liebian.auth.deps import principal_of
    from liebian.reports import service
    from liebian.reports.service import ReportError

    t = _t(request)
    can_write = principal_of(request).can("reports:write")
    context = _documents_context(request)
    done = [d for d in context["documents"] if d["status"] == "done"]
    chosen = request.query_params.get("report", "")
    measured = next((d for d in done if str(d["id"]) == chosen), done[0] if done else None)
    error = None
    with session_scope() as s:
        targets = service.list_targets(s)
        if measured is not None:
            try:
                report = service.get_document(s, measured["id"])["report"]
            except ReportError as exc:
                error, report = exc.message, None
            if report is not None:
                as_of = date.fromisoformat(report["period_end"])
                targets = service.targets_progress(targets, report["kpis"], as_of)
        subscriptions = service.list_subscriptions(s) if can_write else []
        runs = service.list_runs(s, 20) if can_write else []
    edit_id = request.query_params.get("edit", "")
    editing = next((x for x in targets if str(x["id"]) == edit_id), None) if can_write else None
    measured_targets = bool(targets) and "progress" in targets[0]
    for x in targets:
        for key in ("current", "progress", "time_elapsed", "status"):
            x.setdefault(key, None)  # not measured yet: no report to measure by
        x["kind"] = metric_kind(x["metric"])
        x["metric_label"] = _metric_label(t, x["metric"])
    charts = [_progress_chart(t, targets)] if measured_targets else []
    documents = _documents_table(context["documents"])
    tables = [documents, _targets_table(targets)]
    context |= {
        "can_write": can_write,
        "measured": measured,
        "done": done,
        "targets": targets,
        "editing": editing,
        "metric_choices": _metric_choices(t),
        "charts": charts,
        "subscriptions": subscriptions,
        "runs": runs,
        "error": error,
        "today": date.today().isoformat(),
        "saved": request.query_params.get("saved", ""),
    }
    return render(request, "reports/index.html", context, tables=tables)


@router.get("/reports/documents")
def reports_documents(request: Request) -> Response:
    """The list of generated reports alone (htmx refreshes it while a report is being built)."""
    return render(request, "reports/_documents.html", _documents_context(request))


def _parse_date(t, field: str, value: str, required: bool = False) -> date | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise ValueError(t("reports.required").format(field=field))
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(t("reports.bad_date").format(field=field, value=value)) from None


def _parse_number(t, field: str, value: str) -> float:
    text = (value or "").strip().replace(",", "")
    if not text:
        raise ValueError(t("reports.required").format(field=field))
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(t("reports.bad_number").format(field=field, value=value)) from None


@router.post("/reports/generate")
def reports_generate(
    request: Request, kind: str = Form("weekly"), start: str = Form(""), end: str = Form("")
) -> Response:
    from liebian.reports import service
    from liebian.reports.service import ReportError

    t = _t(request)
    try:
        first, last = _parse_date(t, "start", start), _parse_date(t, "end", end)
        with session_scope() as s:
            doc = service.request_document(s, kind, first, last, requested_by=_user(request))
    except ValueError as exc:
        return flash_fragment(str(exc), ok=False)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    service.produce_later(doc["id"])
    response = flash_fragment(
        t("reports.queued").format(id=doc["id"], start=doc["period_start"], end=doc["period_end"])
    )
    response.headers["HX-Trigger"] = "reports-changed"
    return response


def _document_report(document_id: int) -> dict | Response:
    from liebian.reports import service
    from liebian.reports.service import ReportError

    try:
        with session_scope() as s:
            return service.get_document(s, document_id)["report"]
    except ReportError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain; charset=utf-8")


@router.get("/reports/{document_id}/report.html")
def report_html(document_id: int) -> Response:
    from liebian.reports import service

    report = _document_report(document_id)
    if isinstance(report, Response):
        return report
    return HTMLResponse(service.render_html(report))


@router.get("/reports/{document_id}/report.xlsx")
def report_xlsx(document_id: int) -> Response:
    from liebian.reports.api import xlsx_response

    report = _document_report(document_id)
    if isinstance(report, Response):
        return report
    return xlsx_response(report)


def _target_fields(t, form: dict[str, str]) -> dict[str, Any]:
    name = form["name"].strip()
    if not name:
        raise ValueError(t("reports.required").format(field="name"))
    return {
        "name": name,
        "metric": form["metric"].strip(),
        "baseline": _parse_number(t, "baseline", form["baseline"]),
        "target": _parse_number(t, "target", form["target"]),
        "start_date": _parse_date(t, "start_date", form["start_date"], required=True),
        "due_date": _parse_date(t, "due_date", form["due_date"], required=True),
        "owner": form["owner"].strip(),
    }


def _save_target(request: Request, form: dict[str, str], target_id: int | None) -> Response:
    from liebian.reports import service
    from liebian.reports.service import ReportError

    t = _t(request)
    try:
        fields = _target_fields(t, form)
        with session_scope() as s:
            if target_id is None:
                saved = service.create_target(s, **fields)
            else:
                saved = service.update_target(s, target_id, **fields)
    except ValueError as exc:
        return flash_fragment(str(exc), ok=False)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    # a query that names the saved target: a URL differing only by its #fragment would not reload
    return htmx_redirect(f"/reports?saved={saved['id']}#target-{saved['id']}")


def _reload() -> Response:
    """After an htmx write that changes the page the user is on: reload it."""
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.post("/reports/targets")
def target_create(
    request: Request, name: str = Form(""), metric: str = Form(""), baseline: str = Form(""),
    target: str = Form(""), start_date: str = Form(""), due_date: str = Form(""), owner: str = Form(""),
) -> Response:  # fmt: skip
    form = {"name": name, "metric": metric, "baseline": baseline, "target": target,
            "start_date": start_date, "due_date": due_date, "owner": owner}  # fmt: skip
    return _save_target(request, form, None)


@router.put("/reports/targets/{target_id}")
def target_update(
    request: Request, target_id: int, name: str = Form(""), metric: str = Form(""), baseline: str = Form(""),
    target: str = Form(""), start_date: str = Form(""), due_date: str = Form(""), owner: str = Form(""),
) -> Response:  # fmt: skip
    form = {"name": name, "metric": metric, "baseline": baseline, "target": target,
            "start_date": start_date, "due_date": due_date, "owner": owner}  # fmt: skip
    return _save_target(request, form, target_id)


@router.delete("/reports/targets/{target_id}")
def target_delete(target_id: int) -> Response:
    from liebian.reports import service
    from liebian.reports.service import ReportError

    try:
        with session_scope() as s:
            service.delete_target(s, target_id)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    return _reload()


@router.post("/reports/subscriptions")
def subscription_create(
    request: Request, kind: str = Form("weekly"), channel: str = Form("email"), address: str = Form(""),
    secret: str = Form(""),
) -> Response:  # fmt: skip
    from liebian.reports import service
    from liebian.reports.service import ReportError

    try:
        with session_scope() as s:
            service.subscribe(s, kind, channel, address.strip(), secret or None)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    return _reload()


@router.delete("/reports/subscriptions/{subscription_id}")
def subscription_delete(subscription_id: int) -> Response:
    from liebian.reports import service
    from liebian.reports.service import ReportError

    try:
        with session_scope() as s:
            service.unsubscribe(s, subscription_id)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    return _reload()


# ============================================================================ journeys

EXAMPLES: dict[str, dict] = {
    "silence": {
        "trigger": {"type": "silence", "days": 14},
        "steps": [
            {"action": {"type": "webhook", "channel": "sms", "url": "https://sms.example.com/send",
                        "secret": "replace-with-your-signing-secret", "payload": {"template": "wake_up_1"}}},
            {"wait": {"hours": 48}},
            {"branch": {"if": {"event": "order_paid"}, "then": "exit", "else": "next"}},
            {"action": {"type": "webhook", "channel": "wecom", "url": "https://wecom.example.com/hook",
                        "secret": "replace-with-your-signing-secret"}},
            {"action": {"type": "tag", "name": "woken"}},
        ],
        "goal": {"event": "order_paid", "within_days": 14},
        "holdout_pct": 10,
    },
    "churn": {
        "trigger": {"type": "churn_risk", "threshold": 0.7},
        "steps": [
            {"action": {"type": "webhook", "channel": "coupon", "url": "https://coupons.example.com/grant",
                        "secret": "replace-with-your-signing-secret", "payload": {"coupon": "COMEBACK20"}}},
            {"wait": {"hours": 72}},
            {"branch": {"if": {"event": "order_paid"}, "then": "exit", "else": "next"}},
            {"action": {"type": "tag", "name": "churn_risk_contacted"}},
        ],
        "goal": {"event": "order_paid", "within_days": 21},
        "holdout_pct": 10,
    },
    "segment": {
        "trigger": {"type": "segment", "tag": "high_value"},
        "steps": [
            {"action": {"type": "campaign", "name": "your-campaign-id"}},
            {"wait": {"hours": 24}},
            {"action": {"type": "webhook", "channel": "wecom", "url": "https://wecom.example.com/hook",
                        "secret": "replace-with-your-signing-secret"}},
        ],
        "goal": {"event": "join_campaign", "within_days": 7},
        "holdout_pct": 10,
        "quiet_hours": "22-8",
    },
}  # fmt: skip


def _target_text(t, target) -> str:
    if target == "next":
        return t("journeys.target.next")
    if target == "exit":
        return t("journeys.target.exit")
    return t("journeys.target.step").format(n=int(target) + 1)


def _num(value: float) -> str:
    return f"{value:g}"


def trigger_text(t, trigger: dict) -> str:
    kind = trigger["type"]
    if kind == "segment":
        return t("journeys.trigger.segment").format(tag=trigger["tag"])
    if kind == "event":
        return t("journeys.trigger.event").format(
            event=trigger["event"], hours=_num(trigger.get("lookback_hours", 24))
        )
    if kind == "churn_risk":
        return t("journeys.trigger.churn_risk").format(threshold=_num(trigger["threshold"]))
    return t("journeys.trigger.silence").format(days=trigger["days"])


def flow(t, definition: dict) -> list[dict]:
    """The journey's steps as readable nodes: kind, text, and for a branch where each answer goes."""
    nodes = []
    for i, step in enumerate(definition["steps"]):
        node: dict[str, Any] = {"n": i + 1, "anchor": f"step-{i + 1}"}
        if step.get("wait"):
            node |= {"kind": "wait", "text": t("journeys.wait").format(hours=_num(step["wait"]["hours"]))}
        elif step.get("branch"):
            b = step["branch"]
            cond = b["if"]
            cond_text = (
                t("journeys.cond_event").format(event=cond["event"])
                if cond.get("event")
                else t("journeys.cond_tag").format(tag=cond["tag"])
            )
            node |= {
                "kind": "branch",
                "text": t("journeys.branch").format(cond=cond_text),
                "answers": [
                    (
                        t("journeys.then").format(target=_target_text(t, b.get("then", "next"))),
                        b.get("then", "next"),
                    ),
                    (
                        t("journeys.else").format(target=_target_text(t, b.get("else", "next"))),
                        b.get("else", "next"),
                    ),
                ],
            }
        else:
            a = step["action"]
            if a["type"] == "webhook":
                text = t("journeys.action.webhook").format(channel=a.get("channel", ""), url=a.get("url", ""))
            else:
                text = t(f"journeys.action.{a['type']}").format(name=a.get("name", ""))
            node |= {"kind": "action", "action": a["type"], "text": text, "payload": a.get("payload") or None}
        nodes.append(node)
    return nodes


def contact_rules(t, definition: dict) -> list[str]:
    """The checks the automation service makes before every action, with this journey's settings."""
    from liebian.automation import service
    from liebian.config import get_settings

    settings = get_settings()
    own = definition.get("quiet_hours") is not None
    quiet = service.quiet_hours(definition.get("quiet_hours"))
    source = t("journeys.rule_quiet_own") if own else t("journeys.rule_quiet_global")
    quiet_text = (
        t("journeys.rule_quiet_none").format(source=source)
        if quiet is None
        else t("journeys.rule_quiet").format(hours=f"{quiet[0]:02d}:00–{quiet[1]:02d}:00", zone=settings.timezone,
                                             source=source)
    )  # fmt: skip
    return [
        t("journeys.rule_consent"),
        quiet_text,
        t("journeys.rule_cap").format(
            cap=settings.automation_cap_contacts, days=settings.automation_cap_window_days
        ),
        t("journeys.rule_holdout").format(pct=definition.get("holdout_pct", 10)),
    ]


def _journey_row(t, journey: dict, st: dict) -> dict:
    tr, co = st["arms"]["treatment"], st["arms"]["control"]
    return {
        "id": journey["id"],
        "name": journey["name"],
        "status": t(f"journeys.status.{journey['status']}"),
        "trigger": trigger_text(t, journey["definition"]["trigger"]),
        "entered": tr["entered"],
        "control_entered": co["entered"],
        "actioned": tr["actioned"],
        "converted": tr["converted"],
        "treatment_rate": tr["conversion_rate"],
        "control_rate": co["conversion_rate"],
        "lift": st["lift"],
        "uplift": st["uplift"],
        "last_scan_at": journey["last_scan_at"],
    }


def _rates_chart(t, rows: list[dict], chart_id: str = "journey-rates", links: bool = True) -> Chart:
    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 50, "right": 20, "top": 36, "bottom": 40},
        "xAxis": {"type": "category", "data": [r["name"] for r in rows]},
        "yAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
        "series": [
            {
                "name": t("journeys.arm.treatment"),
                "type": "bar",
                "itemStyle": {"color": "#b3102a"},
                "data": [
                    None if r["treatment_rate"] is None else round(r["treatment_rate"] * 100, 2) for r in rows
                ],
            },
            {
                "name": t("journeys.arm.control"),
                "type": "bar",
                "itemStyle": {"color": "#8c959f"},
                "data": [
                    None if r["control_rate"] is None else round(r["control_rate"] * 100, 2) for r in rows
                ],
            },
        ],
    }
    if links:  # a click on a journey's bars opens it
        option["liebianLinks"] = [[f"/journeys/{r['id']}" for r in rows]] * 2
    return Chart(chart_id, option, "journeys.rates_chart", height=300)


@warmer
def _warm_journey_stats() -> None:
    """The journeys' results change with the operational store, so they are not kept; computing them
    once loads what the page needs (modules, the warehouse columns of the goals) before a visitor."""
    from liebian.automation import service

    with session_scope() as s:
        service.stats_many(s, [j["id"] for j in service.list_journeys(s)])


@router.get("/journeys")
def journeys_page(request: Request) -> Response:
    from liebian.automation import service

    t = _t(request)
    with session_scope() as s:
        journeys = service.list_journeys(s)
        stats = service.stats_many(s, [j["id"] for j in journeys])
    rows = [_journey_row(t, j, stats[j["id"]]) for j in journeys]
    table = Table(
        "journeys",
        [
            Column("name", "journeys.name"),
            Column("status", "journeys.status"),
            Column("trigger", "journeys.trigger"),
            Column("entered", "journeys.entered", "int"),
            Column("control_entered", "journeys.control_entered", "int"),
            Column("actioned", "journeys.actioned", "int"),
            Column("converted", "journeys.converted", "int"),
            Column("treatment_rate", "journeys.treatment_rate", "pct"),
            Column("control_rate", "journeys.control_rate", "pct"),
            Column("lift", "journeys.lift", "pct"),
            Column("uplift", "journeys.uplift", "pct"),
            Column("last_scan_at", "journeys.last_scan", "datetime"),
        ],
        rows,
        title="journeys.list",
        link=lambda row: f"/journeys/{row['id']}",
        link_column="name",
    )
    charts = [_rates_chart(t, rows)] if rows else []
    return render(request, "reports/journeys.html", {"table": table, "charts": charts}, tables=[table])


@router.get("/journeys/new")
def journey_new(request: Request) -> Response:
    example = request.query_params.get("example", "silence")
    definition = json.dumps(EXAMPLES.get(example, EXAMPLES["silence"]), ensure_ascii=False, indent=2)
    return render(
        request,
        "reports/journey_new.html",
        {"definition": definition, "examples": list(EXAMPLES), "example": example},
    )


def _validation_text(exc) -> str:
    """A pydantic error as 'field.path: reason; …' (the definition's own field names)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"definition.{loc}: {err['msg']}" if loc else f"definition: {err['msg']}")
    return "; ".join(parts)


@router.post("/journeys")
def journey_create(
    request: Request, name: str = Form(""), definition: str = Form(""), activate: str = Form("")
) -> Response:
    from pydantic import ValidationError

    from liebian.automation import service
    from liebian.automation.service import AutomationError

    t = _t(request)
    if not name.strip():
        return flash_fragment(t("reports.required").format(field="name"), ok=False)
    try:
        data = json.loads(definition)
    except json.JSONDecodeError as exc:
        return flash_fragment(t("journeys.bad_json").format(error=exc), ok=False)
    if not isinstance(data, dict):
        return flash_fragment(t("journeys.bad_json").format(error="an object {…} is expected"), ok=False)
    try:
        with session_scope() as s:
            journey = service.create_journey(s, name.strip()[:128], data)
            if not activate:
                service.set_status(s, journey["id"], "paused")
    except ValidationError as exc:
        return flash_fragment(_validation_text(exc), ok=False)
    except AutomationError as exc:
        return flash_fragment(exc.message, ok=False)
    return htmx_redirect(f"/journeys/{journey['id']}")


@router.get("/journeys/{journey_id}")
def journey_page(request: Request, journey_id: int) -> Response:
    from liebian.automation import service
    from liebian.automation.service import AutomationError

    t = _t(request)
    try:
        with session_scope() as s:
            journey = service.get_journey(s, journey_id)
            st = service.stats(s, journey_id)
    except AutomationError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain; charset=utf-8")
    definition = journey["definition"]
    row = _journey_row(t, journey, st)
    arms = Table(
        "arms",
        [
            Column("arm", "journeys.arm"),
            Column("entered", "journeys.arm_entered", "int"),
            Column("actioned", "journeys.actioned", "int"),
            Column("converted", "journeys.converted", "int"),
            Column("conversion_rate", "journeys.conversion_rate", "pct"),
        ],
        [{"arm": t(f"journeys.arm.{arm}"), **st["arms"][arm]} for arm in ("treatment", "control")],
        title="journeys.arms",
    )
    outcomes = Table(
        "outcomes",
        [Column("outcome", "journeys.outcome"), Column("count", "journeys.count", "int")],
        [{"outcome": t(f"journeys.outcome.{k}"), "count": n} for k, n in sorted(st["outcomes"].items())],
        title="journeys.outcomes",
    )
    goal = definition.get("goal") or {"event": "order_paid", "within_days": 14}
    context = {
        "journey": journey,
        "stats": st,
        "row": row,
        "trigger": trigger_text(t, definition["trigger"]),
        "nodes": flow(t, definition),
        "goal": t("journeys.goal_text").format(event=goal["event"], days=_num(goal["within_days"])),
        "rules": contact_rules(t, definition),
        "charts": [_rates_chart(t, [row], "journey-arms", links=False)],
        "tables": [arms, outcomes],
    }
    return render(request, "reports/journey.html", context, tables=[arms, outcomes])


def _set_status(journey_id: int, status: str) -> Response:
    from liebian.automation import service
    from liebian.automation.service import AutomationError

    try:
        with session_scope() as s:
            service.set_status(s, journey_id, status)
    except AutomationError as exc:
        return flash_fragment(exc.message, ok=False)
    return htmx_redirect(f"/journeys/{journey_id}")


@router.post("/journeys/{journey_id}/pause")
def journey_pause(journey_id: int) -> Response:
    return _set_status(journey_id, "paused")


@router.post("/journeys/{journey_id}/activate")
def journey_activate(journey_id: int) -> Response:
    return _set_status(journey_id, "active")

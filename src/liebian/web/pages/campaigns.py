"""Campaigns in the console: the list, the editor (a draft is edited in place, a launched campaign
gets a new version of its rules), and the detail page with the compliance check, the lifecycle
actions (launch is refused while a hard compliance rule fails), the poster preview and the referrals.

Everything a campaign is and does is the campaign service's (liebian.campaigns.service): this page
turns its form into the service's rules document — field names are the rules' own paths, so the
problems the service reports land next to the field they name — and shows what the service returns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from liebian.campaigns import invites, service
from liebian.campaigns import views as campaign_views
from liebian.campaigns.common import CampaignError
from liebian.campaigns.schemas import CAMPAIGN_TYPES, CampaignCreate
from liebian.db.session import session_scope
from liebian.rewards import service as ledger
from liebian.web.console import Column, ConsoleFilters, Table, flash_fragment, htmx_redirect, render
from liebian.web.i18n import locale_of, register, translator
from liebian.web.pages.campaign_form import (
    all_fields,
    brand_zone,
    default_rules,
    editor_sections,
    local_time,
    place_errors,
    row_count,
    rules_from_form,
    values_from_rules,
)

router = APIRouter(include_in_schema=False)

STATUSES = ("draft", "scheduled", "live", "paused", "ended")
REFERRAL_STATES = ("accepted", "held", "blocked", "refunded", "duplicate")
SHOWN_REFERRALS = 200  # the detail page shows the first ones; the export has them all

register(
    {
        "campaigns.heading": ("裂变活动", "Fission campaigns"),
        "campaigns.new": ("新建活动", "New campaign"),
        "campaigns.list": ("活动列表", "Campaigns"),
        "campaigns.search": ("搜索（名称或编号）", "Search (title or id)"),
        "campaigns.status": ("状态", "Status"),
        "campaigns.type": ("类型", "Type"),
        "campaigns.id": ("编号", "Id"),
        "campaigns.title": ("活动名称", "Title"),
        "campaigns.start": ("开始", "Starts"),
        "campaigns.end": ("结束", "Ends"),
        "campaigns.budget": ("预算", "Budget"),
        "campaigns.budget_used": ("已用预算", "Budget used"),
        "campaigns.budget_used_share": ("预算使用率", "Budget used (share)"),
        "campaigns.stock": ("库存", "Stock"),
        "campaigns.stock_used": ("已用库存", "Stock used"),
        "campaigns.participants": ("参与人数", "Participants"),
        "campaigns.referrals": ("推荐数", "Referrals"),
        "campaigns.qualified": ("达标推荐", "Qualified"),
        "campaigns.held": ("待审核", "Held for review"),
        "campaigns.version": ("版本", "Version"),
        "campaigns.created": ("创建时间", "Created"),
        "campaigns.empty": (
            "还没有活动。点击“新建活动”创建第一个。",
            "No campaigns yet. Create the first one.",
        ),
        "campaigns.not_found": ("没有这个活动", "No such campaign"),
        "campaigns.times_note": ("时间为 {zone} 时间", "Times in {zone}"),
        "campaigns.status.draft": ("草稿", "Draft"),
        "campaigns.status.scheduled": ("待开始", "Scheduled"),
        "campaigns.status.live": ("进行中", "Live"),
        "campaigns.status.paused": ("已暂停", "Paused"),
        "campaigns.status.ended": ("已结束", "Ended"),
        "campaigns.type.invite_task": ("任务宝", "Invite task"),
        "campaigns.type.double_sided": ("双向奖励", "Double-sided reward"),
        "campaigns.type.group_buy": ("拼团", "Group buy"),
        "campaigns.type.assist": ("助力", "Assist"),
        "campaigns.type.share_coupon": ("分享领券", "Share for a coupon"),
        "campaigns.type.leaderboard": ("排行榜", "Leaderboard"),
        "campaigns.state.accepted": ("已接受", "accepted"),
        "campaigns.state.held": ("待审核", "held"),
        "campaigns.state.blocked": ("已拦截", "blocked"),
        "campaigns.state.refunded": ("已退款", "refunded"),
        "campaigns.state.duplicate": ("重复", "duplicate"),
        # editor
        "campaigns.edit": ("编辑活动", "Edit campaign"),
        "campaigns.edit_live_note": (
            "活动已发布：保存后生成新版本（第 {n} 版），已有推荐仍按其接受时的版本结算。",
            "The campaign is launched: saving creates version {n}; existing referrals keep the version "
            "they were accepted under.",
        ),
        "campaigns.ended_no_edit": (
            "活动已结束，不能再编辑。",
            "The campaign has ended and cannot be edited.",
        ),
        "campaigns.save": ("保存", "Save"),
        "campaigns.create": ("创建活动", "Create campaign"),
        "campaigns.cancel": ("取消", "Cancel"),
        "campaigns.fix_fields": ("请修正标出的字段：", "Please correct the marked fields:"),
        "campaigns.sec.basics": ("基本信息", "Basics"),
        "campaigns.sec.window": ("活动时间", "Window"),
        "campaigns.sec.qualifying": ("达标条件与归因", "Qualifying event and attribution"),
        "campaigns.sec.rewards": ("奖励", "Rewards"),
        "campaigns.sec.limits": ("上限、预算与冻结期", "Caps, budget and hold"),
        "campaigns.sec.risk": ("风控策略", "Risk policy"),
        "campaigns.sec.compliance": ("合规信息", "Compliance inputs"),
        "campaigns.f.id": (
            "活动编号（可选，小写字母、数字、-、_）",
            "Campaign id (optional: a-z, 0-9, -, _)",
        ),
        "campaigns.f.rules_text": ("活动规则（公示文本）", "Published rules text"),
        "campaigns.f.poster_template": ("海报模板", "Poster template"),
        "campaigns.f.landing_url": ("落地页地址", "Landing page URL"),
        "campaigns.f.start_at": ("开始时间", "Starts at"),
        "campaigns.f.end_at": ("结束时间", "Ends at"),
        "campaigns.f.invite_ttl_days": ("邀请码有效期（天）", "Invite code valid for (days)"),
        "campaigns.f.claim_window_days": (
            "归因窗口（天，邀请→达标）",
            "Claim window (days, invite → qualifying)",
        ),
        "campaigns.f.qualifying_kind": ("达标事件", "Qualifying event"),
        "campaigns.f.min_amount": ("最低订单金额（元）", "Minimum order amount (yuan)"),
        "campaigns.f.event_name": ("自定义事件名", "Custom event name"),
        "campaigns.f.attribution": ("归因方式", "Attribution"),
        "campaigns.f.require_new_friend": ("只奖励新用户", "Only new friends count"),
        "campaigns.f.referrer_min_spend": ("推荐人消费门槛（元）", "Inviter's minimum own spend (yuan)"),
        "campaigns.f.per_inviter_cap": ("每人邀请上限", "Per-inviter cap"),
        "campaigns.f.per_device_cap": ("每设备上限", "Per-device cap"),
        "campaigns.f.per_ip_cap": ("每 IP 上限", "Per-IP cap"),
        "campaigns.f.budget": ("预算（元）", "Budget (yuan)"),
        "campaigns.f.stock": ("奖励库存（份）", "Reward stock (units)"),
        "campaigns.f.hold_days": ("冻结期（天，建议等于退款期）", "Hold (days; set it to the refund window)"),
        "campaigns.f.regions": ("限定地区（逗号分隔）", "Regions (comma-separated)"),
        "campaigns.f.stores": ("限定门店（逗号分隔）", "Stores (comma-separated)"),
        "campaigns.f.hold_at": ("风险分达到此值时冻结待审", "Hold for review from risk score"),
        "campaigns.f.block_at": ("风险分达到此值时拦截", "Block from risk score"),
        "campaigns.f.collects": (
            "收集的个人信息（逗号分隔，如 phone, name）",
            "Personal data collected (comma-separated, e.g. phone, name)",
        ),
        "campaigns.f.consent_step": ("有用户授权步骤", "Has a consent step"),
        "campaigns.f.reward_value_disclosed": ("已公示奖励价值", "Reward value disclosed"),
        "campaigns.f.forced_sharing": ("要求强制分享（违规）", "Requires sharing (forbidden)"),
        "campaigns.f.note": ("版本说明", "Version note"),
        "campaigns.f.tier": ("第 {n} 档", "Tier {n}"),
        "campaigns.f.threshold": ("达标好友数", "Qualified friends"),
        "campaigns.f.reward_code": ("奖励编码", "Reward code"),
        "campaigns.f.reward_name": ("奖励名称", "Reward name"),
        "campaigns.f.reward_value": ("奖励价值（元）", "Reward value (yuan)"),
        "campaigns.f.inviter_reward": ("邀请人奖励", "Inviter's reward"),
        "campaigns.f.friend_reward": ("好友奖励", "Friend's reward"),
        "campaigns.f.shares_required": ("领券所需点击数", "Link opens needed to claim"),
        "campaigns.f.group_size": ("成团人数（含团长）", "Group size (with the initiator)"),
        "campaigns.f.window_hours": ("成团时限（小时）", "Time to complete (hours)"),
        "campaigns.f.initiator_reward": ("团长奖励", "Initiator's reward"),
        "campaigns.f.joiner_reward": ("参团奖励", "Joiner's reward"),
        "campaigns.f.bringer_reward": ("带人参团奖励", "Reward for bringing a joiner"),
        "campaigns.f.assist_required": ("所需助力人数", "Assists needed"),
        "campaigns.f.assist_reward": ("助力奖励", "Assist reward"),
        "campaigns.f.top_n": ("奖励前 N 名", "Reward the top N"),
        "campaigns.f.rank": ("第 {n} 名", "Rank {n}"),
        "campaigns.tiers_help": (
            "留空的档位不保存；门槛须逐档递增。",
            "Empty tiers are not saved; thresholds must increase.",
        ),
        "campaigns.ranks_help": (
            "最后一个奖励用于其后的名次。",
            "The last reward repeats for the ranks after it.",
        ),
        "campaigns.qe.signup": ("注册", "Sign-up"),
        "campaigns.qe.first_order": ("首单", "First order"),
        "campaigns.qe.order_min_amount": ("满额订单", "Order above an amount"),
        "campaigns.qe.custom": ("自定义事件", "Custom event"),
        "campaigns.attr.first_touch": ("首次触达", "First touch"),
        "campaigns.attr.last_touch": ("最近触达", "Last touch"),
        "campaigns.poster.classic": ("经典红", "Classic red"),
        "campaigns.poster.minimal": ("简约", "Minimal"),
        "campaigns.err.int": ("请输入整数", "must be a whole number"),
        "campaigns.err.number": ("请输入数字", "must be a number"),
        "campaigns.err.yuan": (
            "请输入金额（元，最多两位小数，不为负）",
            "must be an amount in yuan (≥ 0, 2 decimals)",
        ),
        "campaigns.err.datetime": ("请输入日期和时间", "must be a date and time"),
        "campaigns.err.reserved_id": (
            "“new” 是保留名称，请换一个编号",
            "“new” is reserved; choose another id",
        ),
        "campaigns.saved": ("已保存。", "Saved."),
        # detail
        "campaigns.compliance": ("合规检查", "Compliance check"),
        "campaigns.compliance_passed": ("通过", "passed"),
        "campaigns.compliance_failed": ("未通过", "failed"),
        "campaigns.risk_score": ("合规风险分", "Compliance risk score"),
        "campaigns.risk.low": ("低风险", "low risk"),
        "campaigns.risk.medium": ("中风险", "medium risk"),
        "campaigns.risk.high": ("高风险", "high risk"),
        "campaigns.hard_rules": ("必须满足（不满足不能发布）", "Must pass (launch is refused otherwise)"),
        "campaigns.soft_findings": ("风险项（计入风险分）", "Findings (add to the risk score)"),
        "campaigns.no_findings": ("没有风险项。", "No findings."),
        "campaigns.rule": ("规则", "Rule"),
        "campaigns.field": ("字段", "Field"),
        "campaigns.detail": ("说明", "Detail"),
        "campaigns.score": ("分值", "Score"),
        "campaigns.rule.invite_cap": ("设置每人邀请上限", "A per-inviter cap"),
        "campaigns.rule.rules_text": ("公示活动规则", "Published rules"),
        "campaigns.rule.consent": ("收集信息需用户授权", "Consent when collecting personal data"),
        "campaigns.rule.reward_disclosure": ("公示奖励价值", "Reward value disclosed"),
        "campaigns.rule.forced_sharing": ("禁止诱导分享", "No forced sharing"),
        "campaigns.rule.invite_cap_high": ("邀请上限高于 3", "Invite cap above 3"),
        "campaigns.rule.no_budget": ("没有预算或库存上限", "No budget or stock cap"),
        "campaigns.rule.short_hold": ("冻结期短于 7 天退款期", "Hold shorter than a 7-day refund window"),
        "campaigns.rule.open_ended": ("没有结束时间", "No end date"),
        "campaigns.rule.no_device_cap": ("没有设备或 IP 上限", "No per-device or per-IP cap"),
        "campaigns.rule.collects_phone": ("收集手机号", "Collects phone numbers"),
        "campaigns.rule.no_scope": ("没有限定地区或门店", "No region or store scoping"),
        "campaigns.actions": ("操作", "Actions"),
        "campaigns.launch": ("发布", "Launch"),
        "campaigns.pause": ("暂停", "Pause"),
        "campaigns.end_now": ("结束活动", "End campaign"),
        "campaigns.launch_blocked": (
            "合规检查未通过，不能发布。请先编辑活动修正：",
            "The compliance check fails, so the campaign cannot be launched. Edit it to fix:",
        ),
        "campaigns.poster": ("海报预览", "Poster preview"),
        "campaigns.poster_alt": ("活动分享海报预览：{title}", "Share poster preview: {title}"),
        "campaigns.poster_note": (
            "二维码为示例链接；参与者的海报带各自的邀请码。",
            "The QR code holds a sample link; each participant's poster carries their own code.",
        ),
        "campaigns.versions": ("规则版本", "Rule versions"),
        "campaigns.note": ("说明", "Note"),
        "campaigns.rewards_by_state": ("奖励（按状态，来自奖励账本）", "Rewards by state (from the ledger)"),
        "campaigns.reward_state": ("奖励状态", "Reward state"),
        "campaigns.rewards": ("奖励数", "Rewards"),
        "campaigns.value": ("金额", "Value"),
        "campaigns.referral_list": ("推荐列表", "Referrals"),
        "campaigns.referral_id": ("推荐编号", "Referral"),
        "campaigns.inviter": ("邀请人", "Inviter"),
        "campaigns.friend": ("好友", "Friend"),
        "campaigns.parent": ("上级推荐", "Parent referral"),
        "campaigns.generation": ("层级", "Generation"),
        "campaigns.referral_state": ("推荐状态", "State"),
        "campaigns.channel": ("渠道", "Channel"),
        "campaigns.qualified_at": ("达标时间", "Qualified at"),
        "campaigns.audit": ("最近操作记录", "Recent audit trail"),
        "campaigns.time": ("时间", "Time"),
        "campaigns.actor": ("操作人", "Actor"),
        "campaigns.action": ("动作", "Action"),
        "campaigns.window": ("活动时间", "Window"),
        # the campaign engine's share channels (渠道活码), beside the data channels of the shared block
        "channel.share": ("分享链接", "Share link"),
        "channel.poster": ("海报", "Poster"),
        "channel.wecom_group": ("企微群", "WeCom group"),
        "campaigns.rstate.pending": ("待发放（冻结期）", "pending (on hold)"),
        "campaigns.rstate.approved": ("已批准", "approved"),
        "campaigns.rstate.issued": ("已发放", "issued"),
        "campaigns.rstate.redeemed": ("已核销", "redeemed"),
        "campaigns.rstate.rejected": ("已驳回", "rejected"),
        "campaigns.rstate.revoked": ("已撤回", "revoked"),
        "campaigns.no_window": ("未设置", "not set"),
    }
)


def channel_namer(locale: str):
    """A channel's display name; a channel without a message shows as it is stored."""
    t = translator(locale)

    def name(channel: str) -> str:
        text = t(f"channel.{channel}")
        return channel if text == f"channel.{channel}" else text

    return name


# --- pages --------------------------------------------------------------------------------------


def _principal(request: Request):
    from liebian.web.console import _principal as principal

    return principal(request)


def _campaign_error_page(request: Request, message: str, status: int) -> Response:
    return render(request, "campaigns/missing.html", {"message": message}, status_code=status)


def _list_rows(t, views: list[dict], stats: dict[str, dict]) -> list[dict]:
    rows = []
    for v in views:
        s = stats.get(v["id"], {})
        rules = v.get("rules") or {}
        budget, used = v["budget_fen"], v["budget_used_fen"]
        rows.append(
            {
                "id": v["id"],
                "title": v["title"],
                "type": t(f"campaigns.type.{v['type']}"),
                "type_code": v["type"],
                "status": t(f"campaigns.status.{v['status']}"),
                "status_code": v["status"],
                "start": local_time(rules.get("start_at")),
                "end": local_time(rules.get("end_at")),
                "budget_fen": budget,
                "budget_used_fen": used,
                "budget_used_share": (used / budget) if budget else None,
                "participants": s.get("participants", 0),
                "referrals": s.get("referrals", 0),
                "qualified": s.get("qualified", 0),
                "held": s.get("states", {}).get("held", 0),
                "version": v["version"],
                "created_at": local_time(v["created_at"]),
            }
        )
    return rows


def _overlaps(row: dict, start: str, end: str) -> bool:
    """Does the campaign's window meet the period [start, end] (dates in the brand's zone)?"""
    if start and row["end"] is not None and row["end"].date().isoformat() < start:
        return False
    return not (end and row["start"] is not None and row["start"].date().isoformat() > end)


@router.get("/campaigns")
def campaign_list(request: Request) -> Response:

    t = translator(locale_of(request))
    filters = ConsoleFilters.from_request(request)
    q = request.query_params
    wanted = {
        "status": q.get("status", "") if q.get("status", "") in STATUSES else "",
        "type": q.get("type", "") if q.get("type", "") in CAMPAIGN_TYPES else "",
        "q": (q.get("q") or "").strip(),
    }
    with session_scope() as s:
        views = service.list_campaigns(s, wanted["status"] or None, with_rules=True)
        stats = campaign_views.campaign_stats(s)
    rows = _list_rows(t, views, stats)
    needle = wanted["q"].lower()
    rows = [
        r
        for r in rows
        if (not wanted["type"] or r["type_code"] == wanted["type"])
        and (not needle or needle in r["id"].lower() or needle in r["title"].lower())
        and (not filters.campaign or r["id"] == filters.campaign)
        and _overlaps(r, filters.start, filters.end)
    ]
    rows.sort(key=lambda r: r["created_at"] or datetime.min, reverse=True)
    table = Table(
        "campaigns",
        [
            Column("id", "campaigns.id"),
            Column("title", "campaigns.title"),
            Column("type", "campaigns.type"),
            Column("status", "campaigns.status"),
            Column("start", "campaigns.start", "datetime"),
            Column("end", "campaigns.end", "datetime"),
            Column("budget_used_fen", "campaigns.budget_used", "fen"),
            Column("budget_fen", "campaigns.budget", "fen"),
            Column("budget_used_share", "campaigns.budget_used_share", "pct"),
            Column("participants", "campaigns.participants", "int"),
            Column("referrals", "campaigns.referrals", "int"),
            Column("qualified", "campaigns.qualified", "int"),
            Column("held", "campaigns.held", "int"),
            Column("version", "campaigns.version", "int"),
        ],
        rows,
        title="campaigns.list",
        link=lambda row: f"/campaigns/{row['id']}",
        link_column="id",
    )
    context = {
        "filters": filters,
        "wanted": wanted,
        "statuses": STATUSES,
        "types": CAMPAIGN_TYPES,
        "table": table,
        "any_campaign": bool(views),
        "zone": brand_zone().key,
    }
    return render(request, "campaigns/list.html", context, tables=[table])


# editor -----------------------------------------------------------------------------------------


def _editor_context(
    request: Request,
    *,
    campaign: dict | None,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> dict:
    """The editor for a new campaign (campaign None) or an existing one, showing `values` (a
    submitted form) or else the campaign's current rules."""
    new = campaign is None
    launched = not new and campaign["status"] != "draft"
    source_rules = default_rules() if new else campaign["rules"]
    kind = (values or {}).get("type") or source_rules.get("type") or "invite_task"
    if kind not in CAMPAIGN_TYPES:
        kind = "invite_task"
    if values is None:
        probe = editor_sections(kind, 50, new=new, launched=launched)
        values = values_from_rules(source_rules, all_fields(probe))
        values["type"] = kind
    prefix = "tiers" if kind == "invite_task" else "leaderboard.rewards"
    sections = editor_sections(kind, row_count(values, prefix), new=new, launched=launched)
    fields = all_fields(sections)
    errors = errors or {}
    names = {f.name for f in fields} | {s.group for s in sections if s.group}
    unplaced = [f"{name}: {'; '.join(reasons)}" for name, reasons in errors.items() if name not in names]
    action = "/campaigns/new" if new else f"/campaigns/{campaign['id']}/edit"
    return {
        "campaign": campaign,
        "new": new,
        "launched": launched,
        "kind": kind,
        "sections": sections,
        "values": values,
        "errors": errors,
        "error_count": sum(len(v) for v in errors.values()),
        "unplaced": unplaced,
        "action": action,
        "next_version": (campaign["version"] + 1) if launched else 1,
    }


def _form_values(form) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key.startswith("_"):
            continue
        out[key] = value if isinstance(value, str) else ""
    return out


def _submitted(request: Request) -> dict[str, Any] | None:
    """On a type change the editor re-renders with what was typed so far (htmx GET with the form)."""
    if request.query_params.get("_submitted") != "1":
        return None
    return _form_values(request.query_params)


def _load_campaign(campaign_id: str) -> dict | None:

    with session_scope() as s:
        try:
            return service.get_campaign(s, campaign_id)
        except CampaignError:
            return None


def _editor_page(request: Request, campaign: dict | None) -> Response:
    context = _editor_context(request, campaign=campaign, values=_submitted(request))
    return render(request, "campaigns/editor.html", context)


@router.get("/campaigns/new")
def campaign_new(request: Request) -> Response:
    return _editor_page(request, None)


@router.get("/campaigns/{campaign_id}/edit")
def campaign_edit(request: Request, campaign_id: str) -> Response:
    campaign = _load_campaign(campaign_id)
    if campaign is None:
        return _campaign_error_page(request, campaign_id, 404)
    return _editor_page(request, campaign)


def _save(request: Request, campaign: dict | None, values: dict[str, Any]) -> Response:
    """Create or edit through the service; its refusals come back next to the fields they name."""

    t = translator(locale_of(request))
    new = campaign is None
    kind = values.get("type") if values.get("type") in CAMPAIGN_TYPES else "invite_task"
    if not new and campaign["status"] != "draft":
        kind = campaign["type"]  # a launched campaign keeps its type
        values["type"] = kind
    launched = not new and campaign["status"] != "draft"
    prefix = "tiers" if kind == "invite_task" else "leaderboard.rewards"
    sections = editor_sections(kind, row_count(values, prefix), new=new, launched=launched)
    doc, errors, renumbered = rules_from_form(values, all_fields(sections), t)
    campaign_id = (values.get("id") or "").strip() or None
    if new and campaign_id == "new":  # /campaigns/new is the editor: such a campaign had no page
        errors.setdefault("id", []).append(t("campaigns.err.reserved_id"))
    elif new and campaign_id:
        try:
            CampaignCreate(id=campaign_id, rules={})
        except Exception as exc:  # noqa: BLE001 - pydantic says what is wrong with the slug
            errors.setdefault("id", []).append(str(exc.errors()[0]["msg"]))  # type: ignore[attr-defined]
    if not errors:
        actor = _principal(request).name
        try:
            with session_scope() as s:
                if new:
                    saved = service.create_campaign(s, doc, campaign_id=campaign_id, actor=actor)
                else:
                    saved = service.edit_campaign(
                        s, campaign["id"], doc, note=(values.get("note") or "").strip(), actor=actor
                    )
            return htmx_redirect(f"/campaigns/{saved['id']}")
        except CampaignError as exc:
            errors = place_errors(exc.errors or [{"field": "rules", "reason": exc.message}], renumbered)
    context = _editor_context(request, campaign=campaign, values=values, errors=errors)
    # 200: htmx swaps only successful answers; the form comes back with the problems marked
    return render(request, "campaigns/editor.html", context)


@router.post("/campaigns/new")
async def campaign_create(request: Request) -> Response:
    values = _form_values(await request.form())
    return await run_in_threadpool(_save, request, None, values)


@router.post("/campaigns/{campaign_id}/edit")
async def campaign_update(request: Request, campaign_id: str) -> Response:
    values = _form_values(await request.form())
    campaign = await run_in_threadpool(_load_campaign, campaign_id)
    if campaign is None:
        return flash_fragment(
            f"{translator(locale_of(request))('campaigns.not_found')}: {campaign_id}", ok=False
        )
    return await run_in_threadpool(_save, request, campaign, values)


# detail -----------------------------------------------------------------------------------------


def _detail_tables(t, referrals: list[dict], versions: list[dict], balances: list[dict],
                   audit: list[dict]) -> list[Table]:  # fmt: skip
    """The detail page's tables: referrals, rewards by state, rule versions, audit."""
    referral_table = Table(
        "referrals",
        [
            Column("referral_id", "campaigns.referral_id", "int"),
            Column("inviter_person_id", "campaigns.inviter"),
            Column("friend_person_id", "campaigns.friend"),
            Column("parent_referral_id", "campaigns.parent"),
            Column("generation", "campaigns.generation", "int"),
            Column("state_text", "campaigns.referral_state"),
            Column("channel", "campaigns.channel"),
            Column("version", "campaigns.version", "int"),
            Column("qualified_at", "campaigns.qualified_at", "datetime"),
        ],
        referrals,
        title="campaigns.referral_list",
    )
    version_table = Table(
        "versions",
        [
            Column("version", "campaigns.version", "int"),
            Column("created_at", "campaigns.created", "datetime"),
            Column("note", "campaigns.note"),
        ],
        [{**v, "created_at": local_time(v["created_at"])} for v in reversed(versions)],
        title="campaigns.versions",
    )
    reward_table = Table(
        "rewards",
        [
            Column("state", "campaigns.reward_state"),
            Column("rewards", "campaigns.rewards", "int"),
            Column("value_fen", "campaigns.value", "fen"),
        ],
        [{**b, "state": t(f"campaigns.rstate.{b['state']}")} for b in balances],
        title="campaigns.rewards_by_state",
    )
    audit_table = Table(
        "audit",
        [
            Column("ts", "campaigns.time", "datetime"),
            Column("actor", "campaigns.actor"),
            Column("action", "campaigns.action"),
        ],
        [{**a, "ts": local_time(a["ts"])} for a in audit],
        title="campaigns.audit",
    )
    return [referral_table, reward_table, version_table, audit_table]


@router.get("/campaigns/{campaign_id}")
def campaign_detail(request: Request, campaign_id: str) -> Response:

    t = translator(locale_of(request))
    exporting = request.query_params.get("export") == "referrals"
    with session_scope() as s:
        try:
            campaign = service.get_campaign(s, campaign_id)
        except CampaignError:
            return _campaign_error_page(request, campaign_id, 404)
        report = service.compliance_report(s, campaign_id)
        stats = campaign_views.campaign_stats(s, campaign_id).get(campaign_id, {})
        referrals = campaign_views.referral_tree(s, campaign_id, limit=None if exporting else SHOWN_REFERRALS)
        versions = service.versions(s, campaign_id)
        balances = ledger.balances(s, by="campaign", key=campaign_id)
        audit = service.audit_log(s, campaign_id, limit=20)
    channel_name = channel_namer(locale_of(request))
    for r in referrals:
        r["state_text"] = t(f"campaigns.state.{r['state']}")
        r["channel"] = channel_name(r["channel"])
        r["qualified_at"] = local_time(r["qualified_at"])
    tables = _detail_tables(t, referrals, versions, balances, audit)
    rules = campaign["rules"]
    context = {
        "campaign": campaign,
        "rules": rules,
        "report": report,
        "stats": stats,
        "held": stats.get("states", {}).get("held", 0),
        "start": local_time(rules.get("start_at")),
        "end": local_time(rules.get("end_at")),
        "zone": brand_zone().key,
        "tables": tables,
        "referral_total": stats.get("referrals", 0),
        "shown_referrals": SHOWN_REFERRALS,
    }
    return render(request, "campaigns/detail.html", context, tables=tables)


@router.get("/campaigns/{campaign_id}/poster.png")
def campaign_poster(campaign_id: str) -> Response:

    try:
        with session_scope() as s:
            png = invites.poster_preview(s, campaign_id)
    except CampaignError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def _lifecycle(request: Request, campaign_id: str, action: str) -> Response:

    fn = {"launch": service.launch, "pause": service.pause, "end": service.end}[action]
    try:
        with session_scope() as s:
            fn(s, campaign_id, actor=_principal(request).name)
    except CampaignError as exc:
        reasons = [f"{e['field']}: {e['reason']}" for e in exc.errors] or [exc.message]
        return flash_fragment(" · ".join(reasons), ok=False)
    return htmx_redirect(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/launch")
def campaign_launch(request: Request, campaign_id: str) -> Response:
    """Launch after the compliance check; a failing check is refused and says why."""
    return _lifecycle(request, campaign_id, "launch")


@router.post("/campaigns/{campaign_id}/pause")
def campaign_pause(request: Request, campaign_id: str) -> Response:
    return _lifecycle(request, campaign_id, "pause")


@router.post("/campaigns/{campaign_id}/end")
def campaign_end(request: Request, campaign_id: str) -> Response:
    return _lifecycle(request, campaign_id, "end")

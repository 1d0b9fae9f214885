"""The compliance check of a campaign's rules, read from its mechanics rather than from boxes the
operator ticks.

`check_rules` takes one rules document (a dict or `CampaignRules`), so a campaign with region or
store-type variants is checked once per variant's effective rules. Hard findings block launch;
soft findings (warnings) add up to a compliance risk score (0–100). Every finding carries its text
in Simplified Chinese and English, the rule or plan it rests on, and a safer alternative: the
catalogue is `TEXTS` below.

Induced sharing (诱导分享): WeChat's external-link rules (《微信外部链接内容管理规范》, 诱导分享类)
forbid content that rewards users for sharing or forwarding it — "分享后可得奖励", 集赞, 助力 and
砍价 links that pay out when friends open or forward them. The check derives it from the campaign's
type and rewards: a share-for-coupon reward for opens of the sharer's link and an assist (助力 /
砍一刀) reward for friends' assists both pay for forwarding. Rewards for a friend's own signup or
purchase (invite tiers, double-sided, group-buy) are not rewards for sharing.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from liebian.campaigns.schemas import CampaignRules

WECHAT_LINK_RULES = "《微信外部链接内容管理规范》"
PLAN_CAP = 3  # the plan's per-inviter invite cap (方案 001 §3.4: 邀请人数上限从 5 人调整为 3 人)


class Text(TypedDict):
    zh: str
    en: str


# rule → (zh, en) of the finding, the rule it rests on and the safer alternative
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "induced_sharing": {
        "message": (
            "以分享换奖励属于诱导分享：{mechanic}",
            "a reward for sharing is induced sharing (诱导分享): {mechanic}",
        ),
        "citation": (
            f"{WECHAT_LINK_RULES}（诱导分享类）：以奖励诱导用户分享、转发（含集赞、助力、砍价）的内容将被限制传播",
            f"WeChat's external-link rules {WECHAT_LINK_RULES}, induced sharing (诱导分享): content that "
            "rewards users for sharing or forwarding it (likes, 助力 assists, 砍价 bargains) is restricted",
        ),
        "suggestion": (
            "改为奖励好友自己的注册或下单（邀请有礼、双向奖励），分享本身不设奖励；或让所有参与者直接领券",
            "reward the friend's own signup or order instead (invite tiers, double-sided rewards) and "
            "nothing for the share itself; or give the coupon to every participant without sharing",
        ),
    },
    "forced_sharing": {
        "message": ("活动要求强制分享（诱导分享）", "the campaign requires sharing (诱导分享)"),
        "citation": (
            f"{WECHAT_LINK_RULES}（诱导分享类）",
            f"WeChat's external-link rules {WECHAT_LINK_RULES}, induced sharing (诱导分享)",
        ),
        "suggestion": (
            "分享应为自愿，不作为参与条件",
            "make sharing optional, never a condition to take part",
        ),
    },
    "invite_cap": {
        "message": ("没有设置每人邀请上限", "no per-inviter invite cap (邀请上限)"),
        "citation": (
            f"方案 001 §3.4：邀请人数上限从 5 人调整为 {PLAN_CAP} 人",
            f"plan 001 §3.4: the invite cap cut from 5 to {PLAN_CAP} people for compliance",
        ),
        "suggestion": (f"设置 per_inviter_cap ≤ {PLAN_CAP}", f"set per_inviter_cap to {PLAN_CAP} or less"),
    },
    "invite_cap_high": {
        "message": (
            "每人邀请上限 {cap} 高于方案建议的 {plan}",
            "invite cap {cap} above the plan's {plan}",
        ),
        "citation": (
            f"方案 001 §3.4：为合规将邀请人数上限从 5 人调整为 {PLAN_CAP} 人",
            f"plan 001 §3.4: the invite cap cut from 5 to {PLAN_CAP} people for compliance",
        ),
        "suggestion": (f"把 per_inviter_cap 降到 {PLAN_CAP}", f"lower per_inviter_cap to {PLAN_CAP}"),
    },
    "rules_text": {
        "message": ("未公示活动规则，或规则少于 10 个字", "no published rules text of 10 characters or more"),
        "citation": ("方案 000 §6.3：奖励发放规则公开透明", "plan 000 §6.3: reward rules published"),
        "suggestion": ("填写活动规则（至少 10 个字）", "write the rules text (10 characters or more)"),
    },
    "consent": {
        "message": (
            "收集 {collects} 但没有用户授权步骤",
            "collects {collects} without a consent step (用户授权)",
        ),
        "citation": ("《个人信息保护法》第十三、十四条", "PIPL (个人信息保护法) articles 13–14"),
        "suggestion": ("增加授权步骤，或不收集该信息", "add a consent step, or do not collect it"),
    },
    "reward_disclosure": {
        "message": ("未公示奖励价值", "reward value not disclosed"),
        "citation": ("方案 000 §6.3：奖励发放规则公开透明", "plan 000 §6.3: reward rules published"),
        "suggestion": ("在活动规则中写明奖励价值", "state each reward's value in the rules"),
    },
    "no_budget": {
        "message": ("没有预算或库存上限", "no budget or stock cap"),
        "citation": ("需求：预算上限", "requirements: budget caps"),
        "suggestion": ("设置 budget_fen 或 stock", "set budget_fen or stock"),
    },
    "short_hold": {
        "message": ("冻结期 {days} 天短于 7 天退款期", "hold {days} d is shorter than a 7-day refund window"),
        "citation": ("七日无理由退货", "the 7-day no-reason return window"),
        "suggestion": ("hold_days 至少 7", "set hold_days to 7 or more"),
    },
    "open_ended": {
        "message": ("没有结束时间", "no end date"),
        "citation": ("需求：限时活动", "requirements: time-limited offers"),
        "suggestion": ("设置 end_at", "set end_at"),
    },
    "no_device_cap": {
        "message": ("没有每设备或每 IP 上限", "no per-device or per-IP cap"),
        "citation": (
            "方案 000 §6.1：消费验证 + 设备绑定",
            "plan 000 §6.1: purchase check and device binding",
        ),
        "suggestion": ("设置 per_device_cap 或 per_ip_cap", "set per_device_cap or per_ip_cap"),
    },
    "collects_phone": {
        "message": ("收集手机号", "collects phone numbers"),
        "citation": ("《个人信息保护法》第六条：最小必要", "PIPL article 6: collect the minimum necessary"),
        "suggestion": ("只在发奖必需时收集手机号", "collect phone numbers only where a reward needs them"),
    },
    "no_scope": {
        "message": (
            "没有限定地区或门店（各地规则可能不同）",
            "no region/store scoping (regional rules may differ)",
        ),
        "citation": ("需求：按地区/门店类型的规则", "requirements: a rule set per region/store type"),
        "suggestion": ("设置 regions 或 stores", "set regions or stores"),
    },
}


class Finding(TypedDict):
    """A compliance rule the campaign breaks, the field to change, the rule's source and a fix."""

    rule: str
    field: str
    message: str  # English
    message_zh: str
    citation: str
    citation_zh: str
    suggestion: str
    suggestion_zh: str


class ScoredFinding(Finding):
    score: int  # what the finding adds to the risk score


class Compliance(TypedDict):
    passed: bool  # no hard finding: the campaign may launch
    hard: list[Finding]
    soft: list[ScoredFinding]
    risk_score: int
    risk_level: Literal["high", "medium", "low"]


def finding(rule: str, fld: str, **values: Any) -> Finding:
    texts = TEXTS[rule]
    zh, en = texts["message"]
    return {
        "rule": rule,
        "field": fld,
        "message": en.format(**values),
        "message_zh": zh.format(**values),
        "citation": texts["citation"][1],
        "citation_zh": texts["citation"][0],
        "suggestion": texts["suggestion"][1],
        "suggestion_zh": texts["suggestion"][0],
    }


def induced_sharing(rules: CampaignRules) -> list[Finding]:
    """Rewards for sharing, from the mechanics: a share-for-coupon reward paid for opens of the
    sharer's link, an assist (助力 / 砍价) reward paid for friends' assists."""
    out = []
    if rules.type == "share_coupon" and rules.inviter_reward is not None:
        mechanic = (
            f"share_coupon pays the sharer's reward after {rules.shares_required} opens of their link "
            f"(分享 {rules.shares_required} 次领券)"
        )
        out.append(finding("induced_sharing", "shares_required", mechanic=mechanic))
    if rules.type == "assist" and rules.assist is not None:
        mechanic = (
            f"assist pays a reward when {rules.assist.required} friends open and assist the link "
            f"(助力/砍价 {rules.assist.required} 人)"
        )
        out.append(finding("induced_sharing", "assist.required", mechanic=mechanic))
    if rules.forced_sharing:
        out.append(finding("forced_sharing", "forced_sharing"))
    return out


def in_wechat(rules: CampaignRules) -> bool:
    """Whether the campaign's links are shared inside WeChat (WeChat's link rules apply)."""
    named = {p.strip().lower() for p in rules.platforms if p.strip()}
    return not named or bool(named & {"wechat", "wecom", "weixin"})  # unnamed: assume WeChat


def _hard(rules: CampaignRules) -> list[Finding]:
    shared = induced_sharing(rules)
    hard = shared if in_wechat(rules) else [f for f in shared if f["rule"] == "forced_sharing"]
    if rules.per_inviter_cap is None:
        hard.append(finding("invite_cap", "per_inviter_cap"))
    if len(rules.rules_text.strip()) < 10:
        hard.append(finding("rules_text", "rules_text"))
    if rules.collects and not rules.consent_step:
        hard.append(finding("consent", "consent_step", collects=", ".join(rules.collects)))
    if not rules.reward_value_disclosed:
        hard.append(finding("reward_disclosure", "reward_value_disclosed"))
    return hard


def _soft(rules: CampaignRules) -> list[ScoredFinding]:
    soft: list[ScoredFinding] = []

    def add(score: int, rule: str, fld: str, **values: Any) -> None:
        soft.append({**finding(rule, fld, **values), "score": score})

    if not in_wechat(rules):  # outside WeChat a reward for sharing is still a risk, not a ban
        for f in induced_sharing(rules):
            if f["rule"] == "induced_sharing":
                soft.append({**f, "score": 30})
    if rules.per_inviter_cap and rules.per_inviter_cap > PLAN_CAP:
        add(20, "invite_cap_high", "per_inviter_cap", cap=rules.per_inviter_cap, plan=PLAN_CAP)
    if rules.budget_fen is None and rules.stock is None:
        add(15, "no_budget", "budget_fen")
    if rules.hold_days < 7:
        add(10, "short_hold", "hold_days", days=f"{rules.hold_days:g}")
    if rules.end_at is None:
        add(10, "open_ended", "end_at")
    if rules.per_device_cap is None and rules.per_ip_cap is None:
        add(10, "no_device_cap", "per_device_cap")
    if "phone" in rules.collects:
        add(5, "collects_phone", "collects")
    if not rules.regions and not rules.stores:
        add(5, "no_scope", "regions")
    return soft


def check_rules(rules: CampaignRules | dict[str, Any]) -> Compliance:
    """The compliance of one rules document (a campaign's, or one region/store variant's effective
    rules): hard findings block launch, soft ones add up to the risk score (0–100)."""
    if not isinstance(rules, CampaignRules):
        rules = CampaignRules.model_validate(rules)
    hard, soft = _hard(rules), _soft(rules)
    score = min(100, sum(s["score"] for s in soft))
    return {
        "passed": not hard,
        "hard": hard,
        "soft": soft,
        "risk_score": score,
        "risk_level": "high" if score >= 40 else "medium" if score >= 20 else "low",
    }

"""Stable reason codes with their weight and human-readable texts (Simplified Chinese first, English).

Codes never change meaning once released: dashboards, review notes and the campaign policy refer to
them. A weight is the score (0–100) the reason gives on its own; several reasons combine as
independent evidence: score = 100 · (1 − Π(1 − wᵢ/100)).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reason:
    code: str
    weight: float
    zh: str
    en: str
    # the ground-truth pattern this reason is evidence of (evaluation per pattern)
    pattern: str = ""


REASONS: dict[str, Reason] = {
    r.code: r
    for r in (
        # inline checks (campaign seam)
        Reason(
            "SAME_PERSON",
            100,
            "邀请人与好友是同一人（OneID）",
            "inviter and friend are the same person (OneID)",
            "self",
        ),
        Reason("SHARED_DEVICE", 90, "好友与邀请人使用同一设备", "friend uses the inviter's device", "self"),
        Reason(
            "SHARED_PHONE", 95, "好友与邀请人使用同一手机号", "friend uses the inviter's phone number", "self"
        ),
        Reason(
            "SHARED_PAYMENT",
            95,
            "好友与邀请人使用同一支付账户",
            "friend uses the inviter's payment account",
            "self",
        ),
        Reason(
            "SHARED_IP_UA",
            30,
            "好友与邀请人的 IP 和浏览器标识（UA）都相同",
            "friend shares both IP address and user agent with the inviter",
            "device_farm",
        ),
        Reason(
            "VELOCITY",
            60,
            "同一邀请人短时间内好友接受过多",
            "too many accepted invites for one inviter in a short window",
            "device_farm",
        ),
        Reason(
            "DEVICE_BURST",
            70,
            "同一设备短时间内注册了多个新账户",
            "a burst of new accounts from one device",
            "device_farm",
        ),
        Reason(
            "IP_BURST",
            50,
            "同一 IP 和 UA 短时间内注册了多个新账户",
            "a burst of new accounts from one IP address and user agent",
            "device_farm",
        ),
        Reason(
            "VIRTUAL_PHONE",
            65,
            "手机号属于虚拟运营商号段",
            "phone number in a virtual-operator range",
            "virtual_phone",
        ),
        Reason(
            "DEVICE_NOT_NEW",
            80,
            "活动要求新设备，但该设备已注册过",
            "campaign requires a new device; device seen before",
            "device_farm",
        ),
        Reason("CAP_HIT", 100, "超出邀请上限", "invite cap reached", "cap"),
        Reason(
            "SELF_CLICKS",
            40,
            "邀请人反复点击自己的邀请链接（刷点击）",
            "the inviter repeatedly opened their own invite link (click padding)",
            "self",
        ),
        Reason(
            "CIRCULAR",
            90,
            "循环邀请（A 邀请 B，B 又邀请 A）",
            "circular referral (A invited B, B invited A)",
            "circular",
        ),
        # graph analysis
        Reason(
            "DEVICE_FARM",
            90,
            "设备农场：同一邀请人的大量好友共用少数设备或 IP+UA，集中注册",
            "device farm: many invitees of one inviter share a few devices or an IP+UA and signed up in a burst",
            "device_farm",
        ),
        Reason(
            "FARM_INVITER",
            90,
            "该邀请人的好友构成设备农场",
            "this inviter's invitees form a device farm",
            "device_farm",
        ),
        Reason(
            "STAR_CHURN",
            80,
            "星形邀请：该邀请人的好友几乎全部当天流失或领奖后不再下单",
            "star inviter: nearly all invitees churn the same day or never order again after the reward",
            "star_churn",
        ),
        Reason(
            "STAR_CHURN_INVITEE",
            75,
            "星形邀请人的好友，当天流失",
            "invitee of a star inviter, churned the same day",
            "star_churn",
        ),
        Reason("CYCLE", 90, "处于邀请环中（互相邀请）", "member of a referral cycle", "circular"),
        Reason(
            "CROWDED_DEVICE",
            40,
            "该设备被多个账户使用",
            "device used by many accounts",
            "device_farm",
        ),
        Reason(
            "ANOMALY",
            30,
            "邀请行为异常（孤立森林异常分高）",
            "unusual referral behaviour (high isolation-forest anomaly score)",
            "",
        ),
        # inline facts from everything known, and re-scoring on OneID merges (fraudinline)
        Reason(
            "IP_UA_CLUSTER",
            40,
            "多个新账户在短时间内使用同一 IP 和同一浏览器标识（UA）接受邀请",
            "several new accounts accepted from one IP address with one identical user agent in a short time",
            "device_farm",
        ),
        Reason(
            "SELF_REFERRAL_MERGED",
            100,
            "OneID 合并后邀请人与好友为同一人（邀请之后才得知）",
            "OneID merged the inviter and the friend into one person after the referral (self-referral)",
            "self",
        ),
    )
}


def combine(codes: Iterable[tuple[str, float]]) -> float:
    """Combine (code, strength 0..1) pairs into a 0–100 score."""
    keep = 1.0
    for code, strength in codes:
        keep *= 1.0 - REASONS[code].weight / 100.0 * max(0.0, min(1.0, strength))
    return round(100.0 * (1.0 - keep), 1)


def describe(code: str, lang: str = "zh-CN") -> str:
    reason = REASONS.get(code)
    if reason is None:
        return code
    return reason.en if lang == "en" else reason.zh


# ------------------------------------------------------------------ graph patterns (fraudgraph)
GRAPH_PATTERN_REASONS = (
    Reason(
        "CHAIN",
        90,
        "邀请链：一串新账户逐个快速邀请下一个，共用少数 IP，下一单后不再回来",
        "referral chain: new accounts each inviting the next within minutes, on a few IP addresses, "
        "gone after one order",
        "chain",
    ),
    Reason(
        "CROSS_CLUSTER",
        85,
        "跨邀请人聚集：不同邀请人的好友共用同一 IP+UA、设备或支付账户，集中注册后不再活跃",
        "cross-inviter cluster: invitees of different inviters share one IP+UA, device or payment "
        "account, signed up in a burst and went quiet",
        "cross_cluster",
    ),
)
REASONS.update({r.code: r for r in GRAPH_PATTERN_REASONS})

# Evidence of a graph reason: its detail is a JSON object of parameters, rendered per language.
# (fraudgraph block; a reason without a template shows its detail as written.)
EVIDENCE: dict[str, tuple[str, str]] = {
    "DEVICE_FARM": (
        "邀请人 {inviter} 的 {n} 位好友共用 {devices} 台设备{ip_zh}",
        "{n} invitees of {inviter} on {devices} devices{ip_en}",
    ),
    "FARM_INVITER": ("{n} 位好友共用 {devices} 台设备{ip_zh}", "{n} invitees on {devices} devices{ip_en}"),
    "STAR_CHURN": ("{n} 位好友，{churned}% 当天流失", "{n} invitees, {churned}% churned the same day"),
    "STAR_CHURN_INVITEE": ("邀请人 {inviter}", "inviter {inviter}"),
    "CYCLE": ("{size} 人的邀请环", "cycle of {size} persons"),
    "CIRCULAR": ("{size} 人的邀请环", "cycle of {size} persons"),
    "CROWDED_DEVICE": ("设备 {device} 被 {n} 个账户使用", "device {device} used by {n} persons"),
    "ANOMALY": ("异常强度 {strength}", "strength {strength}"),
    "CHAIN": (
        "{n} 个账户的邀请链，共用 {ips} 个 IP（主要是 {ip}）",
        "chain of {n} accounts on {ips} IP addresses (mostly {ip})",
    ),
    "CROSS_CLUSTER": (
        "{n} 位好友来自 {inviters} 个不同邀请人，共用{what_zh}",
        "{n} invitees of {inviters} different inviters share {what_en}",
    ),
    "SAME_PERSON": (
        "OneID 合并后是同一人；好友账户 {account}",
        "one person after OneID; friend's account {account}",
    ),
    "SHARED_DEVICE": ("共用{what_zh}", "shared {what_en}"),
    "SHARED_PHONE": ("共用{what_zh}", "shared {what_en}"),
    "SHARED_PAYMENT": ("共用{what_zh}", "shared {what_en}"),
    "SHARED_IP_UA": ("共用{what_zh}", "shared {what_en}"),
}
KIND_NAMES = {"phone": ("手机号", "phone"), "payment_account": ("支付账户", "payment account")}


def _evidence_words(params: dict[str, Any]) -> dict[str, Any]:
    """Derived words: which identifier ({what_*}) and at which address ({ip_*})."""
    out = dict.fromkeys(("n", "inviter", "devices", "churned", "size", "device", "strength", "ips", "inviters",
                         "account"), "?")  # fmt: skip
    out.update({k: v for k, v in params.items() if v is not None})
    ip = params.get("ip")
    out["ip"] = ip or "?"
    out["ip_zh"], out["ip_en"] = (f"，IP {ip}", f" at IP {ip}") if ip else ("", "")
    if params.get("device"):
        out["what_zh"], out["what_en"] = f"设备 {params['device']}", f"device {params['device']}"
    elif ip and params.get("ua"):
        out["what_zh"] = f" IP {ip} 与同一 UA（#{params['ua']}）"
        out["what_en"] = f"IP {ip} with one user agent (#{params['ua']})"
    else:
        zh, en = KIND_NAMES.get(str(params.get("kind")), ("标识", "identifier"))
        out["what_zh"], out["what_en"] = f"{zh} #{params.get('ref', '?')}", f"{en} #{params.get('ref', '?')}"
    return out


def explain(code: str, detail: str, lang: str = "zh-CN") -> str:
    """A reason's evidence in the reader's language (details that are not JSON are shown as written)."""
    template = EVIDENCE.get(code)
    if not template or not detail or not detail.startswith("{"):
        return detail
    try:
        params = json.loads(detail)
    except json.JSONDecodeError:
        return detail
    return template[1 if lang == "en" else 0].format_map(_evidence_words(params))


# Pattern names and the evaluation's labels (liebian fraud evaluate), zh-CN first.
PATTERN_NAMES: dict[str, tuple[str, str]] = {
    "device_farm": ("设备农场", "device farm"),
    "star_churn": ("星形邀请流失", "star inviter, churning friends"),
    "circular": ("循环邀请", "referral ring"),
    "virtual_phone": ("虚拟号段", "virtual-operator phone"),
    "chain": ("邀请链", "referral chain"),
    "cross_cluster": ("跨邀请人聚集", "cross-inviter cluster"),
    "self": ("自我邀请", "self-referral"),
    "overall": ("总体", "overall"),
}
EVALUATION_LABELS: dict[str, tuple[str, str]] = {
    "pattern": ("模式", "pattern"),
    "truth": ("真实数", "truth"),
    "claimed": ("判为该模式", "claimed"),
    "precision": ("精确率", "precision"),
    "recall": ("召回率", "recall"),
    "f1": ("F1", "F1"),
    "referrals": ("按邀请关系评估（阈值 {threshold}）", "by referral (threshold {threshold})"),
    "persons": ("按人评估（阈值 {threshold}）", "by person (threshold {threshold})"),
    "decoys": (
        "诱饵（诚实的相似者）被标记：{flagged}/{total}，其中邀请人 {inviters}",
        "decoys (honest look-alikes) flagged: {flagged}/{total}, inviters among them {inviters}",
    ),
    "unmapped": (
        "{n} 条真值的标识不在数仓中（计为漏检）",
        "{n} ground-truth identifiers are not in the warehouse (counted as missed)",
    ),
}


def label(key: str, lang: str = "zh-CN", **params: Any) -> str:
    """A pattern name or an evaluation label in the reader's language."""
    pair = PATTERN_NAMES.get(key) or EVALUATION_LABELS.get(key) or (key, key)
    return pair[1 if lang == "en" else 0].format(**params)

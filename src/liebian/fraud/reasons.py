"""Stable reason codes with their weight and human-readable texts (Simplified Chinese first, English).

Codes never change meaning once released: dashboards, review notes and the campaign policy refer to
them. A weight is the score (0–100) the reason gives on its own; several reasons combine as
independent evidence: score = 100 · (1 − Π(1 − wᵢ/100)).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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
        Reason(
            "SHARED_DEVICE", 90, "好友与邀请人使用同一设备", "friend uses the inviter's device", "device_farm"
        ),
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

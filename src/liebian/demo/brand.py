"""The fictional demo brand 茶语 TeaWords: channels, campaigns, identifier formats, message templates.

Plain data, kept apart from the generator so documentation and tests can read it.
"""

from __future__ import annotations

from typing import Any, TypedDict

BRAND = {"name": "茶语 TeaWords", "sector": "新式茶饮 + 烘焙 (tea drinks and bakery)", "currency": "CNY"}

CHANNELS = ("wecom", "miniprogram", "douyin", "xiaohongshu", "app", "store")
ID_TYPES = (
    "unionid",
    "openid",
    "external_userid",
    "phone",
    "douyin_openid",
    "xhs_id",
    "device_id",
    "app_user",
)
# The identifier a channel's own export carries for its users.
NATIVE_ID = {
    "wecom": "external_userid",
    "miniprogram": "openid",
    "douyin": "douyin_openid",
    "xiaohongshu": "xhs_id",
    "app": "app_user",
    "store": "phone",
}
# Where a person's orders are placed (WeCom members buy through the mini-program).
ORDER_CHANNEL = {
    "wecom": "miniprogram",
    "miniprogram": "miniprogram",
    "douyin": "douyin",
    "xiaohongshu": "xiaohongshu",
    "app": "app",
    "store": "store",
}
# Share of organic arrivals by channel, and how likely a person also uses another channel.
ORGANIC_CHANNEL_SHARE = (0.22, 0.28, 0.16, 0.10, 0.14, 0.10)
SECONDARY_CHANNEL_P = (0.25, 0.30, 0.10, 0.08, 0.12, 0.15)

# Campaign windows are fractions of the period, so any --days keeps all three inside it.


class DemoCampaign(TypedDict):
    campaign_id: str
    name: str
    mechanism: str
    rules: dict[str, Any]
    window: tuple[float, float]  # start and end as shares of the simulated period
    offspring_mean: float
    invitee_channels: tuple[float, ...]  # where invitees arrive, in the order of CHANNELS
    referral_share: float


CAMPAIGNS: tuple[DemoCampaign, ...] = (
    {
        "campaign_id": "c_invite",
        "name": "老带新·邀请有礼",
        "mechanism": "tiered_invite",
        "rules": {
            "tiers": [1, 3, 5],
            "reward": "邀请1人得5元券, 3人得礼盒, 5人得月卡",
            "min_order_yuan": 9.9,
        },
        "window": (0.15, 0.75),
        "offspring_mean": 0.85,
        "invitee_channels": (0.10, 0.62, 0.08, 0.03, 0.15, 0.02),
        "referral_share": 0.45,
    },
    {
        "campaign_id": "c_groupbuy",
        "name": "三人拼团",
        "mechanism": "group_buy",
        "rules": {"group_size": 3, "reward": "三人成团享6.6折", "min_order_yuan": 19.9},
        "window": (0.45, 0.97),
        "offspring_mean": 0.80,
        "invitee_channels": (0.05, 0.80, 0.05, 0.02, 0.08, 0.00),
        "referral_share": 0.35,
    },
    {
        "campaign_id": "c_assist",
        "name": "好友助力",
        "mechanism": "friend_assist",
        "rules": {"assists_needed": 5, "reward": "5位好友助力免费领招牌奶茶", "min_order_yuan": 0},
        "window": (0.30, 0.55),
        "offspring_mean": 0.70,
        "invitee_channels": (0.15, 0.55, 0.20, 0.05, 0.05, 0.00),
        "referral_share": 0.20,
    },
)

# Mainland mobile prefixes; the virtual-operator (虚拟运营商) ranges are used only by fraud.
PHONE_PREFIXES = (
    130,
    131,
    132,
    133,
    135,
    136,
    137,
    138,
    139,
    150,
    151,
    152,
    155,
    156,
    157,
    158,
    159,
    177,
    178,
    180,
    181,
    182,
    185,
    186,
    187,
    188,
    189,
    191,
    198,
    199,
)
VIRTUAL_PREFIXES = (162, 165, 167, 170, 171)

USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.49",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.53",
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC Build/UKQ1) AppleWebKit/537.36 MicroMessenger/8.0.50",
    "Mozilla/5.0 (Linux; Android 13; V2302A Build/TP1A) AppleWebKit/537.36 MicroMessenger/8.0.47",
    "Mozilla/5.0 (Linux; Android 14; PJZ110 Build/UKQ1) AppleWebKit/537.36 MiniProgramEnv/android",
    "Mozilla/5.0 (Linux; Android 12; NOH-AN00 Build/HUAWEINOH) AppleWebKit/537.36 aweme/31.2.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 aweme/31.1.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 discover/8.42 xhsapp",
    "TeaWords/3.4.1 (iPhone; iOS 17.5; Scale/3.00)",
    "TeaWords/3.4.0 (Android 14; Xiaomi 23127PN0CC)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 wxwork/4.1.22 MicroMessenger/7.0.1",
    "POS/2.8 (TeaWords store terminal)",
)
# Shared by every account of a device farm: an emulator build.
FARM_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 9; SM-G9650 Build/PPR1.180610.011) AppleWebKit/537.36 MicroMessenger/8.0.1"
)

STORES = (
    "茶语·徐汇店",
    "茶语·静安寺店",
    "茶语·五角场店",
    "茶语·西湖银泰店",
    "茶语·春熙路店",
    "茶语·解放碑店",
    "茶语·天河城店",
    "茶语·南京西路店",
)

PRODUCTS = (
    "招牌茉莉奶绿",
    "芝士葡萄",
    "杨枝甘露",
    "抹茶千层",
    "桂花乌龙",
    "黄油可颂",
    "生椰拿铁",
    "草莓波波",
    "伯爵红茶蛋糕",
    "栗子蒙布朗",
)

# Community messages by sentiment class; {p} is a product, {n} a small number.
MESSAGE_TEMPLATES = {
    "positive": (
        "{p}真的太好喝了！",
        "今天的{p}绝了👍",
        "{p}yyds，已经回购{n}次了",
        "店员小姐姐服务超好",
        "拼团成功啦，{p}好划算",
        "谢谢群主的券，{p}很赞",
        "新品{p}强烈推荐！",
        "包装很用心，好评",
        "邀请了{n}个朋友都说好喝",
        "会员日福利太香了",
    ),
    "question": (
        "请问{p}还有吗？",
        "优惠券怎么领呀？",
        "拼团还差{n}个人，有人一起吗？",
        "会员积分怎么兑换？",
        "{p}是常温还是冰的？",
        "周末门店几点关门？",
        "邀请有礼的奖励什么时候到账？",
        "助力活动怎么参加？",
    ),
    "neutral": (
        "早上好～",
        "打卡第{n}天",
        "收到",
        "今天下雨了",
        "大家周末愉快",
        "已下单",
        "哈哈哈",
        "我在{p}和奶茶之间纠结",
        "路过门店看到排队了",
        "好的谢谢",
    ),
    "complaint": (
        "配送太慢了，等了一个多小时",
        "优惠券用不了，一直提示失败",
        "{p}今天太甜了，不太满意",
        "退款怎么还没到账？",
        "客服一直不回复",
        "拼团失败了也不通知一下",
        "外卖洒了，很失望",
        "{p}分量比以前少了",
    ),
}

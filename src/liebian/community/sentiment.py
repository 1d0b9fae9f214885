"""Offline sentiment of Chinese community and marketing messages: a lexicon with negation.

Nothing is downloaded at run time. snownlp (the usual offline choice) is trained on product
reviews and gets about half of group messages right (docs/monitoring.md), so the classifier is a
lexicon built for private-domain chat: product praise and complaints, delivery, coupons, rewards,
campaign rules and 网络用语. Longest match first (不错 is one word, not 不 + 错); a negator
(不/没/别…) just before a term flips it (是不是 asks, it does not negate); a degree adverb
(太/很/特别…) weighs it more; food-safety and health words (肚子疼, 过期, 虫子…) weigh double, so a
complaint asked as a question stays negative. Three classes: positive, negative, neutral
(questions and notices are neutral unless they carry a complaint), plus a `marketing` flag:
promotion copy (an offer and a call to act) is neutral, its 超值 and 划算 being the seller's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

POSITIVE = [
    "好喝",
    "好吃",
    "好评",
    "好用",
    "好看",
    "划算",
    "实惠",
    "便宜",
    "优惠多",
    "超值",
    "值了",
    "值得",
    "物超所值",
    "性价比高",
    "性价比很高",
    "香",
    "真香",
    "太香",
    "满意",
    "喜欢",
    "爱了",
    "推荐",
    "强烈推荐",
    "点赞",
    "👍",
    "赞",
    "棒",
    "很棒",
    "绝了",
    "惊喜",
    "开心",
    "高兴",
    "感谢",
    "谢谢",
    "多谢",
    "给力",
    "不错",
    "挺好",
    "新鲜",
    "松软",
    "细腻",
    "清爽",
    "精致",
    "贴心",
    "耐心",
    "热情",
    "周到",
    "方便",
    "顺畅",
    "快",
    "很快",
    "及时",
    "稳定",
    "放心",
    "成功",
    "到账",
    "领到",
    "实用",
    "有意思",
    "丰富",
    "宝藏",
    "回购",
    "必备",
    "支持",
    "运气",
    "免单",
    "省了",
    "有面子",
    "期待",
    "完美",
    "专业",
    "靠谱",
    "舒服",
    "很好",
    "真好",
    "超好",
    "太好了",
    "挺好的",
    "好极了",
    # group chat of 2024-2026: praise in 网络用语 and emoji
    "yyds",
    "绝绝子",
    "温柔",
    "可爱",
    "惊艳",
    "😍",
    "安利",
    "都说好",
    "性价比",
    "暖心",
    "感动",
    "最好",
    "满分",
    "良心",
    "爱上",
    "好美",
    "杠杠的",
    "五星",
    "准时",
    "严实",
    "很暖",
    "细心",
    "上瘾",
    "出片",
    "种草",
    "用心",
    "还是热的",
    "手速",
    "超出预期",
    "没让我失望",
    "不踩雷",
]

NEGATIVE = [
    "太差",
    "很差",
    "质量差",
    "差评",
    "差劲",
    "糟糕",
    "失望",
    "难吃",
    "难喝",
    "不新鲜",
    "怪味",
    "变质",
    "坑",
    "太坑",
    "套路",
    "被骗",
    "骗人",
    "垃圾",
    "恶心",
    "生气",
    "气死",
    "很烦",
    "烦死",
    "慢",
    "太慢",
    "很慢",
    "贵",
    "太贵",
    "涨价",
    "分量少",
    "越来越少",
    "硬",
    "太硬",
    "酸",
    "甜",
    "太甜",
    "淡",
    "凉",
    "化了",
    "漏",
    "洒",
    "破",
    "坏",
    "脏",
    "乱",
    "吵",
    "挤",
    "闪退",
    "卡顿",
    "失败",
    "打不开",
    "用不了",
    "加载不出来",
    "下不了单",
    "没到账",
    "不到账",
    "没收到",
    "没有收到",
    "没给",
    "没人理",
    "没人解释",
    "不回复",
    "不理",
    "没处理",
    "还没",
    "迟迟",
    "不发",
    "不见了",
    "清零",
    "取消",
    "送错",
    "投诉",
    "退款",
    "不值",
    "不如",
    "没诚信",
    "冷冰冰",
    "效率太低",
    "白忙活",
    "踩雷",
    "刷屏",
    "广告太多",
    "莫名其妙",
    "等了",
    "不满意",
    "少了",
    "变少",
    "不好",
    "不好喝",
    "不好吃",
    "一点都不",
    "再也不",
    "不会再",
    "不敢",
    "排队的人太多",
    "复制粘贴",
    "不解决",
    "敷衍",
    "做错",
    "送错",
    "压扁",
    "恶劣",
    "骂人",
    "系统繁忙",
    "有问题",
    "不合理",
    "没有味道",
    "味道都没有",
    "给个说法",
    "劝退",
    "登录不了",
    "报错",
    "骗子",
    "不给发",
    "不给",
    "不减",
    "化成水",
    "被扣",
    "诚信都没有",
    "别发了",
    "太多了",
    "服了",
    "到现在都没有",
    "没法用",
    "换不了",
    "对不上",
    "少放",
    "没货",
    "无语",
    "一言难尽",
    "破防",
    "真的会谢",
    "栓Q",
    "蚌埠住了",
    "耍人",
    "吃相难看",
    "一般般",
    "虚高",
    "不耐烦",
    "什么都没有",
    "卖完了",
    "没人理",
    "打不通",
    "😡",
    "消毒水",
    "兑水",
    "怪",
    "稀烂",
    "离谱",
    "缺货",
    "失败",
    "取错",
    "别买",
    "只给了",
    "太少",
]

# Food safety and health: one of these outweighs any praise in the same message (a complaint asked as a
# question — 喝完肚子疼，你们的原料是不是有问题 — is still a complaint).
FOOD_SAFETY = [
    "肚子疼",
    "拉肚子",
    "上吐下泻",
    "吐了",
    "恶心",
    "过敏",
    "疹子",
    "不舒服",
    "难受",
    "头晕",
    "发霉",
    "霉点",
    "过期",
    "虫子",
    "头发",
    "异物",
    "塑料片",
    "馊",
    "变质",
    "胀袋",
    "卫生",
    "医院",
]

# Acknowledgements and set phrases that carry no opinion (收到，谢谢通知 is a notice read, not praise).
NEUTRAL = [
    "谢谢通知",
    "收到谢谢",
    "谢谢提醒",
    "好友",
    "好的",
    "说好的",
    "好了",
    "好几",
    "最好是",
    "快递",
    "好滴",
]
# Negators flip a term in the same clause; "没想到" is surprise and "特别" an adverb, not negation.
NEGATORS = ("不是", "不太", "不怎么", "并不", "没有", "没", "不", "别", "未", "不会", "毫不")
# "是不是" and "这不是…吗" ask (是不是变质了 suspects it went off), they do not negate.
NOT_NEGATION = (
    "没想到",
    "不得不",
    "不错",
    "不少",
    "特别",
    "分别",
    "区别",
    "不用担心",
    "是不是",
    "这不是",
    "不会太",
)
DEGREE = {"太": 1.5, "很": 1.3, "非常": 1.6, "特别": 1.5, "超": 1.5, "真": 1.3, "最": 1.6, "越来越": 1.3}


@dataclass(frozen=True)
class Sentiment:
    label: str  # positive | negative | neutral
    score: float  # > 0 positive, < 0 negative
    terms: tuple[str, ...]  # the terms that decided it (for explaining a label)
    marketing: bool = False  # promotion copy: its praise (超值, 划算) is the seller's, labelled neutral


# Promotion copy: offers, prices, deadlines and calls to act. Two kinds of marker make a message
# marketing (a member who writes 刚领的满减券已经用了，很实惠 names one offer and no call to act).
OFFER = re.compile(
    r"[0-9一二两三四五六七八九十]+折|满\d+减\d+|满\d+元?|立减|减\d+|买一送一|买.{1,4}送|第二[杯份].{0,3}(半价|\d+元|0元|仅需)|半价"
    r"|秒杀|特惠|特价|福利|优惠|下单满|免配送费|包邮|抵现|券包|礼包|免费|0元|\d+(\.\d+)?元|抽奖|免单|积分翻倍|奖励金|赠|送.{0,6}(券|杯套|贴纸|周边|试饮|小料|蛋糕|全年)"
    r"|预售|早鸟|限量|限定|上新|上市|上线|开售|返场|新人专享|新用户|首单|充值|年卡|套餐|大促|盛典|狂欢|周年庆|开业"
)
CALL = re.compile(
    r"快来|速来|立即|点击|扫码|开抢|手慢无|仅限|仅剩|最后\d*天|限时|送完即止|先到先得|数量有限|错过|记得|定好闹钟|冲鸭"
    r"|敬请期待|即可|即送|即赠|就送|参与|领取|转发|分享给|预约|【|👉|🎉|提醒：|招募|上不封顶|100%"
)
FIRST_PERSON = ("我", "刚领", "已经用", "用上了", "抢到了", "抽到")


def _terms() -> list[tuple[str, float]]:
    table: dict[str, float] = {}
    for word in POSITIVE:
        table[word] = 1.0
    for word in NEGATIVE:  # a phrase in both lists takes the negative reading
        table[word] = -1.0
    for word in FOOD_SAFETY:
        table[word] = -2.0
    for word in NEUTRAL:  # matched (longest first) so that their characters count for nothing
        table[word] = 0.0
    return sorted(table.items(), key=lambda kv: -len(kv[0]))


_LEXICON = _terms()


def _negated(text: str, start: int) -> bool:
    """A negator in the same clause, at most five characters before the term."""
    window = text[max(0, start - 5) : start]
    for mark in "，,。.！!？?；;～~ ":
        window = window.rsplit(mark, 1)[-1]
    for phrase in NOT_NEGATION:
        window = window.replace(phrase, "_" * len(phrase))
    return any(n in window for n in NEGATORS)


QUESTION_MARKS = ("？", "?", "吗", "什么时候", "怎么", "请问", "多久", "哪里", "几点")


def _is_question(text: str) -> bool:
    return any(q in text for q in QUESTION_MARKS)


def is_marketing(text: str) -> bool:
    """Promotion copy (an offer and a call to act, or several offers), not a member speaking of one."""
    offers, calls = len(OFFER.findall(text)), len(CALL.findall(text))
    if any(p in text for p in FIRST_PERSON):
        return False
    return (offers >= 1 and calls >= 1) or offers >= 2 or calls >= 3


def _score(text: str) -> tuple[float, list[str]]:
    """Sum of the lexicon terms found (longest match first), each flipped by a negator just before
    it and weighed by a degree adverb."""
    score = 0.0
    used: list[str] = []
    taken = [False] * len(text)
    for term, weight in _LEXICON:
        start = text.find(term)
        while start >= 0:
            end = start + len(term)
            if not any(taken[start:end]):
                for i in range(start, end):
                    taken[i] = True
                w = weight
                if _negated(text, start) and not term.startswith(("不", "没", "别")):
                    w = -w
                prefix = text[max(0, start - 2) : start]
                for adverb, factor in DEGREE.items():
                    if prefix.endswith(adverb):
                        w *= factor
                        break
                if w:
                    score += w
                    used.append(term)
            start = text.find(term, end)
    return score, used


def classify(text: str) -> Sentiment:
    """Label one message. Empty or sentiment-free text is neutral; promotion copy is neutral and
    flagged `marketing` (a complaint about an offer stays a complaint)."""
    text = (text or "").strip()
    score, used = _score(text.lower())
    if score > -2 and is_marketing(text):  # a strong complaint quoting an offer is not promotion copy
        return Sentiment("neutral", round(score, 3), tuple(used), marketing=True)
    # A question asks; it is neutral unless it complains (奖励什么时候到账？ is not praise).
    if score > 0 and _is_question(text):
        score = 0.0
    label = "positive" if score > 0.25 else "negative" if score < -0.25 else "neutral"
    return Sentiment(label, round(score, 3), tuple(used))


def accuracy(labelled: Iterable[tuple[str, str]]) -> dict:
    """Accuracy of `classify` on (text, label) pairs, with the misclassified examples."""
    rows = list(labelled)
    wrong = [
        {"text": t, "label": lab, "got": classify(t).label} for t, lab in rows if classify(t).label != lab
    ]
    return {
        "n": len(rows),
        "accuracy": (len(rows) - len(wrong)) / len(rows) if rows else None,
        "wrong": wrong,
    }

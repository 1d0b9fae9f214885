"""Offline sentiment of Chinese community and marketing messages: a lexicon with negation.

Nothing is downloaded at run time. snownlp (the usual offline choice) reads marketing phrasing as
neutral (邀请好友注册就送优惠券，太划算了 → 0.43) and puts questions anywhere, so the classifier is a
lexicon built for private-domain chat: product praise and complaints, delivery, coupons, rewards
and campaign rules. Longest match first (不错 is one word, not 不 + 错); a negator (不/没/别…)
just before a term flips it; a degree adverb (太/很/特别…) weighs it more. Three classes:
positive, negative, neutral (questions and notices are neutral unless they carry a complaint).
"""

from __future__ import annotations

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
]

# Acknowledgements and set phrases that carry no opinion (收到，谢谢通知 is a notice read, not praise).
NEUTRAL = ["谢谢通知", "收到谢谢", "好友", "好的", "说好的", "好了", "好几", "最好是"]
# Negators flip a term in the same clause; "没想到" is surprise and "特别" an adverb, not negation.
NEGATORS = ("不是", "不太", "不怎么", "并不", "没有", "没", "不", "别", "未", "不会", "毫不")
NOT_NEGATION = ("没想到", "不得不", "不错", "不少", "特别", "分别", "区别", "不用担心")
DEGREE = {"太": 1.5, "很": 1.3, "非常": 1.6, "特别": 1.5, "超": 1.5, "真": 1.3, "最": 1.6, "越来越": 1.3}


@dataclass(frozen=True)
class Sentiment:
    label: str  # positive | negative | neutral
    score: float  # > 0 positive, < 0 negative
    terms: tuple[str, ...]  # the terms that decided it (for explaining a label)


def _terms() -> list[tuple[str, float]]:
    table: dict[str, float] = {}
    for word in POSITIVE:
        table[word] = 1.0
    for word in NEGATIVE:  # a phrase in both lists takes the negative reading
        table[word] = -1.0
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


def classify(text: str) -> Sentiment:
    """Label one message. Empty or sentiment-free text is neutral."""
    text = (text or "").strip()
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
                if _negated(text, start) and not term.startswith(("不", "没")):
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

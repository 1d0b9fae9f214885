"""Texts the language crawl found shown in one language only: an experiment's conclusion (by its
code, predict/experiments.py `verdict`) and a segment's traits (predict/segment.py `TRAITS`)."""

from __future__ import annotations

MESSAGES = {
    "exp.verdict.srm": (
        "样本比例失衡：先修正分组再读数",
        "sample-ratio mismatch: fix assignment before reading",
    ),
    "exp.verdict.wait": ("未达样本量：每组达到 {n} 个样本后再读数", "wait until every variant has {n} units"),
    "exp.verdict.treatment_wins": ("{name} 胜出", "{name} wins"),
    "exp.verdict.control_wins": ("{name} 胜出", "{name} wins"),
    "exp.verdict.no_difference": ("无显著差异", "no significant difference"),
    "seg.trait.high_value": ("高价值", "high value"),
    "seg.trait.dormant": ("沉默", "dormant"),
    "seg.trait.active": ("活跃", "active"),
    "seg.trait.sharers": ("爱分享", "sharers"),
    "seg.trait.newcomers": ("新客", "newcomers"),
    "seg.trait.referred": ("裂变", "referred"),
    "seg.trait.typical": ("普通", "typical"),
    "seg.trait.unsegmented": ("（未分群）", "(unsegmented)"),
}

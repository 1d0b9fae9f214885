"""Sentiment accuracy on a labelled set of Chinese marketing and community sentences.

sentiment_labelled.tsv: 125 sentences (positive / negative / neutral) written as they appear in
private-domain groups — praise, complaints, campaign questions, notices, negations. `dev` (70) was
used while building the lexicon; `held` (55) is the held-out part. Questions and notices are
neutral unless they complain; promotion copy is neutral (flagged marketing). The larger set with
the marketing flag is data/sentiment_labelled.csv (test_community_sentiment_labelled.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from liebian.community.sentiment import accuracy, classify

LABELLED = Path(__file__).with_name("sentiment_labelled.tsv")


def _rows(split: str) -> list[tuple[str, str]]:
    with LABELLED.open(encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f, delimiter="\t") if r["split"] == split]


def test_labelled_set_is_balanced_and_realistic() -> None:
    for split in ("dev", "held"):
        labels = [label for _, label in _rows(split)]
        assert {labels.count(x) for x in ("positive", "negative", "neutral")} and min(
            labels.count(x) for x in ("positive", "negative", "neutral")
        ) >= 15
    assert not {t for t, _ in _rows("dev")} & {t for t, _ in _rows("held")}  # no leak


@pytest.mark.parametrize("split", ["dev", "held"])
def test_accuracy_reaches_the_target(split: str) -> None:
    result = accuracy(_rows(split))
    print(
        f"sentiment accuracy on {split}: {result['accuracy']:.3f} (n={result['n']}); wrong: {result['wrong']}"
    )
    assert result["accuracy"] >= 0.85


def test_negation_degree_and_questions() -> None:
    assert classify("好喝").label == "positive"
    assert classify("不太好喝").label == "negative"
    assert classify("一点都不新鲜").label == "negative"
    assert classify("没想到这么好喝").label == "positive"  # surprise, not negation
    assert classify("不会踩雷，放心买").label == "positive"  # a negated complaint
    promo = classify("邀请好友注册就送优惠券，太划算了")  # promotion copy: the seller's praise
    assert promo.label == "neutral" and promo.marketing
    assert classify("奖励什么时候到账？").label == "neutral"  # a question, not praise
    assert classify("奖励为什么还没到账？").label == "negative"  # a question that complains
    assert classify("").label == "neutral"
    r = classify("配送太慢了，等了一个多小时")
    assert r.label == "negative" and "太慢" in r.terms

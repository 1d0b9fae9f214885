"""Segment and churn-risk triggers on a small demo brand of this module's own (it fits a churn model
and recomputes tags, which the shared session demo must not be changed by)."""

from __future__ import annotations

import os

import pytest

from liebian.automation import service
from liebian.config import reset_settings_cache
from liebian.db.session import dispose_engines, session_scope
from liebian.demo.generator import DemoSpec
from liebian.demo.service import build
from liebian.predict import service as predict
from liebian.tags import service as tags

pytestmark = pytest.mark.slow
KEYS = ("LIEBIAN_DATA_DIR", "LIEBIAN_DATABASE_URL", "LIEBIAN_WAREHOUSE_PATH", "LIEBIAN_ENGINE",
        "LIEBIAN_SCHEDULER_ENABLED")  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("journey_demo") / "data"
    saved = {k: os.environ.get(k) for k in KEYS}
    for k in KEYS:
        os.environ.pop(k, None)
    os.environ["LIEBIAN_DATA_DIR"] = str(data)
    os.environ["LIEBIAN_SCHEDULER_ENABLED"] = "0"
    reset_settings_cache()
    dispose_engines()
    try:
        build(DemoSpec(seed=7, persons=1500))
        predict.fit_churn(window_days=30)
        with session_scope() as s:
            tags.install_defaults(s)
            tags.recompute(s)
        yield data
    finally:
        dispose_engines()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings_cache()


TAG_ACTION = {"action": {"type": "tag", "name": "journey-touched"}}


def test_segment_trigger_enrols_exactly_the_tag_members(demo):
    with session_scope() as s:
        name = next(t.name for t in tags.list_tags(s) if getattr(t, "members", 0))  # listings count members
        members = set(tags.members(s, name, limit=100000))
        jid = service.create_journey(s, f"seg-{name}", {"trigger": {"type": "segment", "tag": name},
                                                        "steps": [TAG_ACTION], "holdout_pct": 20}).id  # fmt: skip
        result = service.enter(s, jid)
    assert result["entered"] == len(members) > 0
    assert result["control"] == sum(service.in_control(jid, p, 20) for p in members)
    with session_scope() as s:
        assert service.enter(s, jid)["entered"] == 0  # nobody enters twice


def test_churn_risk_trigger_uses_the_stored_model(demo):
    feats = predict.person_features()
    scores = predict.churn_scores(feats)
    threshold = float(scores.quantile(0.8))
    expected = set(feats.loc[scores > threshold, "person_id"].astype(int))
    # independently: the risk endpoint's per-person scores above the same threshold
    risky = {r["person_id"] for r in predict.churn_risk() if r["risk"] > threshold}
    assert risky == expected and 0 < len(expected) < len(feats)
    with session_scope() as s:
        jid = service.create_journey(s, "churn", {"trigger": {"type": "churn_risk", "threshold": threshold},
                                                 "steps": [TAG_ACTION], "holdout_pct": 0}).id  # fmt: skip
        assert service.enter(s, jid)["entered"] == len(expected)
    # demo persons gave no marketing consent: the journey must not act on any of them
    result = service.advance(jid)
    assert result["actions"] == {"no_consent": len(expected)}

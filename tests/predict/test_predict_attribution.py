"""Attribution: the Markov removal effect against a hand calculation, and the rule-based models."""

from __future__ import annotations

import pytest

from liebian.predict import attribution
from liebian.predict.attribution import Path
from liebian.predict.common import PredictError

# start→A 2/4, start→B 2/4; A→B 1/3, A→null 2/3; B→conv 2/3, B→A 1/3.
PATHS = [
    Path(["A", "B"], True, 100.0, [48.0, 0.0]),
    Path(["A"], False),
    Path(["B"], True, 300.0, [0.0]),
    Path(["B", "A"], False),
]


def test_markov_removal_effects_match_the_hand_calculation():
    # With everything: x_B = 2/3 + x_A/3, x_A = x_B/3 → x_B = 3/4, x_A = 1/4; P(conv) = (1/4 + 3/4)/2 = 1/2.
    assert attribution._conversion_probability(PATHS) == pytest.approx(0.5)
    # Without A: B→A goes nowhere, x_B = 2/3; P = 1/2 · 2/3 = 1/3 → removal effect 1 − (1/3)/(1/2) = 1/3.
    assert attribution._conversion_probability(PATHS, removed="A") == pytest.approx(1 / 3)
    # Without B: no path reaches conversion → removal effect 1.
    assert attribution._conversion_probability(PATHS, removed="B") == pytest.approx(0.0)
    got = attribution.markov(PATHS)
    assert got["A"]["removal_effect"] == pytest.approx(1 / 3)
    assert got["B"]["removal_effect"] == pytest.approx(1.0)
    # shares 1/3 : 1 → 1/4 : 3/4 of 2 conversions and 400 revenue
    assert got["A"]["conversions"] == pytest.approx(0.5) and got["B"]["conversions"] == pytest.approx(1.5)
    assert got["A"]["revenue"] == pytest.approx(100) and got["B"]["revenue"] == pytest.approx(300)


def test_rule_based_models_by_hand():
    def conv(model, **kw):
        got = attribution.rule_based(PATHS, model, **kw)
        return {k: v["conversions"] for k, v in got.items() if v["conversions"]}

    assert conv("first") == {"A": 1, "B": 1}
    assert conv("last") == {"B": 2}
    assert conv("linear") == {"A": 0.5, "B": 1.5}
    assert conv("position") == {"A": 0.5, "B": 1.5}  # two touches: half each
    # half-life 24 h: A is 48 h old → weight 1/4 against 1 → 0.2 / 0.8 on the first path
    got = conv("time_decay", half_life_hours=24)
    assert got["A"] == pytest.approx(0.2) and got["B"] == pytest.approx(1.8)
    rev = attribution.rule_based(PATHS, "linear")
    assert rev["A"]["revenue"] == pytest.approx(50) and rev["B"]["revenue"] == pytest.approx(350)


def test_position_based_gives_forty_percent_to_each_end():
    got = attribution.rule_based([Path(["A", "B", "C", "D"], True, 100.0)], "position")
    assert [got[t]["conversions"] for t in "ABCD"] == pytest.approx([0.4, 0.1, 0.1, 0.4])


@pytest.mark.parametrize("model", ["first", "last", "linear", "position", "time_decay"])
def test_credits_sum_to_the_conversions(model):
    paths = [
        Path(list("ABCA"), True, 10.0, [9, 5, 2, 0]),
        Path(list("CB"), True, 30.0, [1, 0]),
        Path(["A"], False),
    ]
    got = attribution.rule_based(paths, model)
    assert sum(v["conversions"] for v in got.values()) == pytest.approx(2)
    assert sum(v["revenue"] for v in got.values()) == pytest.approx(40)


def test_attribute_table_and_errors():
    rows = {r["touchpoint"]: r for r in attribution.attribute(PATHS, half_life_hours=24)}
    assert rows["A"]["markov_conversions"] == pytest.approx(0.5)
    assert rows["B"]["last_conversions"] == 2
    with pytest.raises(PredictError, match="unknown 'lasts'"):
        attribution.rule_based(PATHS, "lasts")
    with pytest.raises(PredictError, match="half_life_hours"):
        attribution.rule_based(PATHS, "time_decay", half_life_hours=0)


def test_paths_are_built_from_the_warehouse():
    from datetime import datetime, timedelta

    import duckdb

    from liebian.engine.warehouse import ensure_schema
    from liebian.predict.service import touch_paths

    con = duckdb.connect()
    ensure_schema(con)
    t0 = datetime(2026, 3, 1, 12)

    def ev(eid, person, hours, event, channel, campaign=None):
        ts = t0 + timedelta(hours=hours)
        con.execute(
            "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, campaign_id, batch_id,"
            " ingested_at) VALUES (?, ?, ?, 'app', 'u', ?, ?, ?, 'b', ?)",
            [eid, ts, person, event, channel, campaign, ts],
        )

    ev("a", 1, -24 * 40, "page_view", "store")  # outside the 30-day lookback
    ev("b", 1, 0, "page_view", "wecom", "c1")
    ev("c", 1, 1, "page_view", "wecom", "c1")  # a repeat: one touch
    ev("d", 1, 2, "login", "app")  # not a touchpoint
    ev("e", 1, 3, "exposure", "douyin")
    ev("f", 1, 10, "app_open", "app")  # after the conversion
    ev("g", 2, 0, "exposure", "douyin")
    ev("h", 2, 5, "page_view", "wecom")
    conv = t0 + timedelta(hours=4)
    con.execute(
        "INSERT INTO orders VALUES ('o1', ?, 1, 'app', 'u', 5000, 'CNY', 'paid', 'app', NULL, ?, NULL, NULL, 'b', ?, NULL, NULL, NULL)",
        [conv, conv, conv],
    )
    paths = touch_paths(con, "channel", lookback_days=30)
    assert [(p.touches, p.converted, p.revenue) for p in paths] == [
        (["wecom", "douyin"], True, 5000.0),
        (["douyin", "wecom"], False, 0.0),
    ]
    assert paths[0].ages_hours == pytest.approx([4.0, 1.0])  # first touch of the wecom visit, 4 h before
    assert paths[1].ages_hours == pytest.approx([5.0, 0.0])  # non-converters: age from their last event
    by_campaign = touch_paths(con, "campaign", lookback_days=30)
    assert by_campaign[0].touches == ["c1", "(none)"]
    with pytest.raises(PredictError, match="by: must be"):
        touch_paths(con, "city")

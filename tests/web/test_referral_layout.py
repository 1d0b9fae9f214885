"""The referral graph's drawing: a radial tree laid out on the server (one ring per generation,
each person's invitees within the person's slice of the circle), so the browser runs no layout."""

from __future__ import annotations

import math

import pytest

from liebian.web.pages.analytics.referrals import radial_tree_layout


def _graph(edges: list[tuple[int, int]], generations: dict[int, int]) -> dict:
    return {
        "nodes": [{"id": p, "generation": g} for p, g in generations.items()],
        "edges": [{"source": a, "target": b} for a, b in edges],
    }


def _ring(place: tuple[float, float]) -> float:
    return math.hypot(*place)


def _angle(place: tuple[float, float]) -> float:
    return math.atan2(place[1], place[0]) % (2 * math.pi)


def test_each_generation_is_one_ring_farther_out_and_invitees_sit_in_their_inviters_slice():
    # tree 1: 1 → 2, 3; 2 → 4, 5, 6; tree 2: 7 → 8; tree 3: 9 alone
    edges = [(1, 2), (1, 3), (2, 4), (2, 5), (2, 6), (7, 8)]
    generations = {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 0, 8: 1, 9: 0}
    places = radial_tree_layout(_graph(edges, generations))
    assert set(places) == {str(p) for p in generations}
    for person, g in generations.items():
        assert _ring(places[str(person)]) == pytest.approx(1 + g, abs=1e-3)  # several trees: roots on ring 1
    # the slices: tree 1 holds 6 of the 9 people, so its people stay within its 6/9 of the circle,
    # and 2's three invitees within 2's slice (4 of tree 1's 6), apart from 3's
    tree1 = [_angle(places[str(p)]) for p in (1, 2, 3, 4, 5, 6)]
    assert max(tree1) - min(tree1) < 2 * math.pi * 6 / 9
    below_2 = [_angle(places[str(p)]) for p in (4, 5, 6)]
    assert max(below_2) < _angle(places["3"]) or min(below_2) > _angle(places["3"])
    assert len(set(places.values())) == len(places)  # nobody drawn on top of another


def test_a_single_tree_has_its_root_in_the_centre_and_a_cycle_does_not_lose_anyone():
    # 1 → 2 → 3 and 3 → 1 in another campaign: the analytics root the cycle at 1 (generation 0)
    places = radial_tree_layout(_graph([(1, 2), (2, 3), (3, 1)], {1: 0, 2: 1, 3: 2}))
    assert places["1"] == (0.0, 0.0)
    assert [_ring(places[p]) for p in ("2", "3")] == pytest.approx([1, 2], abs=1e-3)

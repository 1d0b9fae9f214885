"""The /referrals page: the referral graph (the largest whole trees that fit) and the top spreaders."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.analytics.common import AnalyticsError
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    cached_analytics,
    render,
)
from liebian.web.pages.analytics.common import PALETTE, failed_page, page_start

router = APIRouter(include_in_schema=False)

GRAPH_NODES = 300  # persons drawn in the referral graph (the largest whole trees that fit)


TOP_SPREADERS = 20


def radial_tree_layout(graph: dict) -> dict[str, tuple[float, float]]:
    """Each person's place in the drawing: one ring per generation below its tree's root, and
    each person's invitees side by side within the person's own slice of the circle, the slice
    sized by the number of people in the subtree (a radial tree layout, computed once here rather
    than animated in the browser). Several trees share the circle, their roots on the inner ring;
    places are keyed by person id as drawn (a string)."""
    generation = {str(n["id"]): n["generation"] for n in graph["nodes"]}
    size = dict.fromkeys(generation, 1)
    invitees: dict[str, list[str]] = {person: [] for person in generation}
    for edge in graph["edges"]:
        inviter, invitee = str(edge["source"]), str(edge["target"])
        # a tree edge; the way back round a cycle (A invited B, B invited A) ends at a root
        if generation[invitee] == generation[inviter] + 1:
            invitees[inviter].append(invitee)
    roots = [person for person, g in generation.items() if g == 0]
    order: list[str] = []  # parents before their invitees
    stack = list(reversed(roots))
    while stack:
        person = stack.pop()
        order.append(person)
        stack.extend(reversed(invitees[person]))
    for person in reversed(order):  # subtree sizes, leaves first
        size[person] += sum(size[i] for i in invitees[person])
    root_ring = 1.0 if len(roots) > 1 else 0.0
    slice_of = {}
    start = 0.0
    for root in roots:
        slice_of[root] = (start, start + 2 * math.pi * size[root] / len(order), root_ring)
        start = slice_of[root][1]
    places: dict[str, tuple[float, float]] = {}
    for person in order:
        begin, end, ring = slice_of[person]
        angle = (begin + end) / 2
        places[person] = (round(ring * math.cos(angle), 4), round(ring * math.sin(angle), 4))
        below = sum(size[i] for i in invitees[person])
        for invitee in invitees[person]:
            share = (end - begin) * size[invitee] / below
            slice_of[invitee] = (begin, begin + share, ring + 1)
            begin += share
    return places


def _graph_chart(t, graph: dict) -> Chart:
    gens = 4  # generation 0, 1, 2 and 3+ as legend categories
    categories = [t("referrals.gen0")] + [
        t("referrals.gen").replace("{n}", str(g)) for g in range(1, gens - 1)
    ]
    categories.append(t("referrals.gen_more").replace("{n}", str(gens - 1)))
    places = radial_tree_layout(graph)
    nodes = [
        {
            "id": str(n["id"]),
            "name": str(n["id"]),
            "category": min(n["generation"], gens - 1),
            "symbolSize": round(min(40.0, 5 + 2.5 * math.sqrt(n["descendants"])), 1),
            "value": n["descendants"],
            "x": places[str(n["id"])][0],
            "y": places[str(n["id"])][1],
        }
        for n in graph["nodes"]
    ]
    links = [{"source": str(e["source"]), "target": str(e["target"])} for e in graph["edges"]]
    option = {
        "animation": False,
        "tooltip": {"formatter": "{b}: {c}"},
        "legend": {"top": 0, "data": categories},
        "color": PALETTE,
        "series": [
            {
                "name": t("referrals.heading"),
                "type": "graph",
                # placed here, not by ECharts' force layout: that one keeps stepping on timers
                # after the page is drawn, and a step racing a redraw threw in the browser
                "layout": "none",
                "roam": True,
                "data": nodes,
                "links": links,
                "categories": [{"name": c} for c in categories],
                "top": 40,
                "lineStyle": {"color": "#8c959f", "width": 0.8},
                "emphasis": {"focus": "adjacency"},
            }
        ],
    }
    return Chart("referral_graph", option, "referrals.graph", height=520)


def warm_default_view() -> None:
    """The referral graph as first opened (no filters)."""
    af = ConsoleFilters().to_analytics()
    cached_analytics("run_referral_tree", af, TOP_SPREADERS, GRAPH_NODES)


@router.get("/referrals")
def referrals_page(request: Request) -> Response:

    t, filters, context = page_start(request)
    template = "analytics/referrals.html"
    context["cap_note"] = t("referrals.cap").replace("{n}", str(GRAPH_NODES))
    try:
        tree = cached_analytics("run_referral_tree", filters.to_analytics(), TOP_SPREADERS, GRAPH_NODES)
    except (FilterError, AnalyticsError) as exc:
        return failed_page(request, template, context, exc)
    if not tree["summary"].get("edges"):
        return render(request, template, context)
    spreaders = Table(
        "top_spreaders",
        [
            Column("person_id", "referrals.person_id"),
            Column("generation", "referrals.generation", "int"),
            Column("direct_invitees", "referrals.direct_invitees", "int"),
            Column("descendants", "referrals.descendants", "int"),
            Column("depth_below", "referrals.depth_below", "int"),
            Column("invitees_who_bought", "referrals.invitees_who_bought", "int"),
        ],
        [r | {"person_id": str(r["person_id"])} for r in tree["top_spreaders"]],
        title="referrals.spreaders",
    )
    generations = Table(
        "generations",
        [
            Column("generation", "referrals.generation", "int"),
            Column("persons", "referrals.persons", "int"),
            Column("share_of_referred", "referrals.share_of_referred", "pct"),
            Column("inviters", "referrals.inviters", "int"),
            Column("spread_rate", "referrals.spread_rate", "pct"),
            Column("invitees", "referrals.invitees", "int"),
        ],
        tree["generations"],
        title="referrals.generations",
    )
    context |= {
        "has_data": True,
        "summary": tree["summary"],
        "graph_persons": len(tree["graph"]["nodes"]),
        "charts": [_graph_chart(t, tree["graph"])],
        "tables": [spreaders, generations],
    }
    return render(request, template, context, tables=[spreaders, generations])

"""The referral tree (关系图谱): generations, depth and breadth, top spreaders, graph nodes and edges.

The edges are selected by an Ibis expression (filters applied in the engine); the tree walk runs in
pandas on the edge list (one row per acquired person), since neither engine does recursion through
Ibis. Each invitee keeps one parent: the earliest edge naming them (ties: the smallest inviter id),
so a person counted in two campaigns still sits once in the tree. Generation 0 are the roots
(inviters nobody in the edge set invited), generation g their g-th level descendants. A cycle
(A invites B, B invites A in another campaign) is broken by the earliest-edge rule plus a visited set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import pandas as pd

from liebian.analytics.common import Frame, clean, ratio


@dataclass
class TreeResult:
    generations: list[dict]
    depth_distribution: list[dict]
    breadth_distribution: list[dict]
    top_spreaders: list[dict]
    graph: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def tree_edges(fr: Frame) -> pd.DataFrame:
    """inviter, invitee, ts: one parent per invitee (earliest edge; ties → smallest inviter)."""
    e = fr.edges()
    first = e.group_by("invitee_person_id").aggregate(ts=e.ts.min())
    hit = e.join(first, [e.invitee_person_id == first.invitee_person_id, e.ts == first.ts])
    parent = hit.group_by(invitee=hit.invitee_person_id).aggregate(
        inviter=hit.inviter_person_id.min(), ts=hit.ts.min()
    )
    parent = parent.filter(parent.inviter != parent.invitee)
    return fr.execute(parent.order_by("invitee"))


def _buyers(fr: Frame, persons: list[int]) -> set[int]:
    if not persons:
        return set()
    o = fr.table("orders")
    o = o.filter(o.status == "paid")
    ids = ibis.memtable(pd.DataFrame({"pid": sorted(set(persons))}, dtype="int64"))
    hit = o.semi_join(ids, o.person_id == ids.pid).select("person_id").distinct()
    return set(int(p) for p in fr.execute(hit).person_id)


def referral_tree(fr: Frame, top: int = 20, max_graph_nodes: int = 500) -> TreeResult:
    edges = tree_edges(fr)
    if edges.empty:
        return TreeResult(
            [], [], [], [], {"nodes": [], "edges": []}, {"edges": 0, "roots": 0, "max_depth": 0}
        )
    parent = dict(zip(edges.invitee.astype("int64"), edges.inviter.astype("int64"), strict=True))
    children: dict[int, list[int]] = {}
    for child, par in parent.items():
        children.setdefault(par, []).append(child)
    roots = sorted(p for p in children if p not in parent)
    # Breadth-first from the roots; anything left unvisited sits on a cycle: its smallest member roots it.
    generation: dict[int, int] = {}
    root_of: dict[int, int] = {}

    def walk(root: int) -> None:
        generation[root], root_of[root] = 0, root
        frontier = [root]
        while frontier:
            nxt = []
            for node in frontier:
                for child in children.get(node, ()):
                    if child not in generation:
                        generation[child] = generation[node] + 1
                        root_of[child] = root
                        nxt.append(child)
            frontier = nxt

    for root in roots:
        walk(root)
    for node in sorted(set(parent) | set(children)):
        if node not in generation:
            walk(node)
            roots.append(node)

    # Subtree sizes and heights, deepest nodes first.
    descendants = dict.fromkeys(generation, 0)
    height = dict.fromkeys(generation, 0)
    for node in sorted(generation, key=lambda n: -generation[n]):
        for child in children.get(node, ()):
            if generation.get(child) == generation[node] + 1:
                descendants[node] += 1 + descendants[child]
                height[node] = max(height[node], 1 + height[child])

    nodes = pd.DataFrame(
        {
            "person_id": list(generation),
            "generation": [generation[n] for n in generation],
            "direct": [len(children.get(n, ())) for n in generation],
            "descendants": [descendants[n] for n in generation],
            "height": [height[n] for n in generation],
            "root": [root_of[n] for n in generation],
        }
    )
    referred_total = int((nodes.generation > 0).sum())
    gens = []
    for g, sub in nodes.groupby("generation", sort=True):
        inviters = int((sub.direct > 0).sum())
        gens.append(
            {
                "generation": int(g),
                "persons": len(sub),
                "share_of_referred": None if g == 0 else ratio(len(sub), referred_total),
                "inviters": inviters,
                "spread_rate": ratio(inviters, len(sub)),
                "invitees": int(sub.direct.sum()),
            }
        )
    tree_depth = nodes[nodes.generation == 0].height
    depth = [{"depth": int(d), "trees": int(c)} for d, c in tree_depth.value_counts().sort_index().items()]
    inv = nodes[nodes.direct > 0].direct
    breadth = [
        {"direct_invitees": int(b), "inviters": int(c)} for b, c in inv.value_counts().sort_index().items()
    ]

    spreaders = nodes[nodes.direct > 0].sort_values(
        ["descendants", "direct", "person_id"], ascending=[False, False, True]
    )
    spreaders = spreaders.head(top)
    kid_ids = [c for p in spreaders.person_id for c in children.get(int(p), ())]
    buyers = _buyers(fr, kid_ids)
    tops = []
    for r in spreaders.itertuples():
        kids = children.get(int(r.person_id), [])
        tops.append(
            {
                "person_id": int(r.person_id),
                "generation": int(r.generation),
                "direct_invitees": int(r.direct),
                "descendants": int(r.descendants),
                "depth_below": int(r.height),
                "invitees_who_bought": sum(1 for k in kids if k in buyers),
            }
        )

    # Graph view: the largest trees first, whole trees until the node budget is used.
    keep: set[int] = set()
    for root in (
        nodes[nodes.generation == 0]
        .sort_values(["descendants", "person_id"], ascending=[False, True])
        .person_id
    ):
        size = 1 + descendants[int(root)]
        if keep and len(keep) + size > max_graph_nodes:
            continue
        keep.update(int(n) for n in nodes.person_id[nodes.root == root])
        if len(keep) >= max_graph_nodes:
            break
    graph_nodes = [
        {
            "id": int(r.person_id),
            "generation": int(r.generation),
            "direct": int(r.direct),
            "descendants": int(r.descendants),
        }
        for r in nodes[nodes.person_id.isin(keep)].sort_values(["generation", "person_id"]).itertuples()
    ]
    graph_edges = [
        {"source": int(parent[c]), "target": int(c), "ts": clean(ts)}
        for c, ts in zip(edges.invitee, edges.ts, strict=True)
        if int(c) in keep and int(parent[int(c)]) in keep
    ]
    summary = {
        "edges": len(parent),
        "persons": len(nodes),
        "roots": len(roots),
        "referred": referred_total,
        "max_depth": int(nodes.generation.max()),
        "graph_truncated": len(keep) < len(nodes),
    }
    return TreeResult(gens, depth, breadth, tops, {"nodes": graph_nodes, "edges": graph_edges}, summary)

"""The referral tree (关系图谱): generations, depth and breadth, top spreaders, graph nodes and edges.

The edges are selected by an Ibis expression (filters applied in the engine); the tree walk runs in
numpy on the edge list (one row per acquired person, walked a generation at a time), since neither
engine does recursion through Ibis. Each invitee keeps one parent: the earliest edge naming them
(ties: the smallest inviter id), so a person counted in two campaigns still sits once in the tree.
Generation 0 are the roots (inviters nobody in the edge set invited), generation g their g-th level
descendants. A cycle (A invites B, B invites A in another campaign) is broken by the earliest-edge
rule plus a visited set: the smallest member of a cycle left unvisited roots it. KOC candidates are
ranked by direct qualified invitees (descendants second): a chain below someone is mostly other
people's doing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from liebian.analytics.common import Frame, clean, ratio
from liebian.lazy import lazy_import
from liebian.scalars import as_int

if TYPE_CHECKING:
    import ibis
    import numpy as np
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    np = lazy_import("numpy")
    pd = lazy_import("pandas")


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


def _walk(
    parent_idx: np.ndarray,
    starts: np.ndarray,
    kids: np.ndarray,
    gen: np.ndarray,
    root_of: np.ndarray,
    frontier: np.ndarray,
) -> None:
    """Breadth-first from `frontier` (generation 0, their own roots), level by level in numpy."""
    gen[frontier], root_of[frontier] = 0, frontier
    while frontier.size:
        lo, hi = starts[frontier], starts[frontier + 1]
        nxt = kids[_ranges(lo, hi)]
        nxt = nxt[gen[nxt] < 0]
        gen[nxt] = gen[parent_idx[nxt]] + 1
        root_of[nxt] = root_of[parent_idx[nxt]]
        frontier = nxt


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenation of range(lo[i], hi[i]) for every i, vectorised."""
    lengths = hi - lo
    if not lengths.sum():
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(lengths.sum(), dtype=np.int64) + offsets


@dataclass
class _Tree:
    """The walked tree: node i is ids[i]; its children are kids[starts[i]:starts[i + 1]]."""

    ids: np.ndarray
    kids: np.ndarray
    starts: np.ndarray
    root_of: np.ndarray
    descendants: np.ndarray
    roots: int
    nodes: pd.DataFrame  # person_id, generation, direct, descendants, height, root


def _walk_tree(edges: pd.DataFrame) -> _Tree:
    """Generations, direct invitees, subtree sizes and heights of every person in the edge list."""
    # Node i is ids[i]; each invitee has one parent. Walked level by level with numpy (a Python
    # loop per node took seconds at a few hundred thousand persons).
    child_ids = edges.invitee.to_numpy(dtype="int64")
    parent_ids = edges.inviter.to_numpy(dtype="int64")
    # One sort gives the ids and each end's index: a hash-based unique then binary searches cost
    # ~10x more at 2M edges (random probes into arrays beyond the CPU caches; issue #24).
    ids, at = np.unique(np.concatenate([child_ids, parent_ids]), return_inverse=True)
    ci, pi = at[: child_ids.size], at[child_ids.size :]
    n = ids.size
    parent_idx = np.full(n, -1, dtype=np.int64)
    parent_idx[ci] = pi
    by_parent = np.argsort(pi, kind="stable")
    kids = ci[by_parent]
    starts = np.concatenate(([0], np.cumsum(np.bincount(pi, minlength=n)))).astype(np.int64)
    direct = np.diff(starts)
    gen = np.full(n, -1, dtype=np.int64)
    root_of = np.full(n, -1, dtype=np.int64)
    roots = np.flatnonzero(parent_idx < 0)  # inviters nobody invited (ids are sorted)
    _walk(parent_idx, starts, kids, gen, root_of, roots)
    root_list = list(roots)
    # Anything left unvisited sits on a cycle: its smallest member roots it.
    for node in np.flatnonzero(gen < 0):
        if gen[node] < 0:
            _walk(parent_idx, starts, kids, gen, root_of, np.array([node]))
            root_list.append(node)

    # Subtree sizes and heights, deepest generation first (a cycle's way back to its root is no
    # tree edge: the child must be one generation below its parent).
    descendants = np.zeros(n, dtype=np.int64)
    height = np.zeros(n, dtype=np.int64)
    tree_edge = (parent_idx >= 0) & (gen == gen[np.maximum(parent_idx, 0)] + 1)
    for g in range(int(gen.max()), 0, -1):
        at = np.flatnonzero(tree_edge & (gen == g))
        np.add.at(descendants, parent_idx[at], 1 + descendants[at])
        np.maximum.at(height, parent_idx[at], 1 + height[at])

    nodes = pd.DataFrame(
        {
            "person_id": ids,
            "generation": gen,
            "direct": direct,
            "descendants": descendants,
            "height": height,
            "root": ids[root_of],
        }
    )
    return _Tree(ids, kids, starts, root_of, descendants, len(root_list), nodes)


def _generations(nodes: pd.DataFrame, referred_total: int) -> list[dict]:
    gens = []
    for generation, sub in nodes.groupby("generation", sort=True):
        inviters = int((sub.direct > 0).sum())
        gens.append(
            {
                "generation": as_int(generation),
                "persons": len(sub),
                "share_of_referred": None if generation == 0 else ratio(len(sub), referred_total),
                "inviters": inviters,
                "spread_rate": ratio(inviters, len(sub)),
                "invitees": int(sub.direct.sum()),
            }
        )
    return gens


def _top_spreaders(fr: Frame, tree: _Tree, top: int, flagged: frozenset[int] = frozenset()) -> list[dict]:
    """KOC candidates: inviters ranked by their direct qualified invitees (direct invitees anti-fraud
    has not flagged), then descendants; flagged inviters are left out. With how many of their direct
    invitees bought."""
    nodes, ids, kids, starts = tree.nodes, tree.ids, tree.kids, tree.starts

    def children(index: int) -> list[int]:
        return [int(ids[k]) for k in kids[starts[index] : starts[index + 1]]]

    spreaders = nodes[nodes.direct > 0]
    if flagged:
        spreaders = spreaders[~spreaders.person_id.isin(list(flagged))]
        qualified = [sum(1 for k in children(int(i)) if k not in flagged) for i in spreaders.index]
        spreaders = spreaders.assign(qualified=np.asarray(qualified, dtype=np.int64))
    else:
        spreaders = spreaders.assign(qualified=spreaders.direct)
    spreaders = spreaders[spreaders.qualified > 0].sort_values(
        ["qualified", "descendants", "person_id"], ascending=[False, False, True]
    )
    spreaders = spreaders.head(top)
    kid_ids = {int(r): children(int(i)) for i, r in zip(spreaders.index, spreaders.person_id, strict=True)}
    buyers = _buyers(fr, [c for cs in kid_ids.values() for c in cs])
    return [
        {
            "person_id": as_int(r.person_id),
            "generation": as_int(r.generation),
            "direct_qualified_invitees": as_int(r.qualified),
            "direct_invitees": as_int(r.direct),
            "descendants": as_int(r.descendants),
            "depth_below": as_int(r.height),
            "invitees_who_bought": sum(1 for k in kid_ids[as_int(r.person_id)] if k in buyers),
        }
        for r in spreaders.itertuples()
    ]


def _graph(tree: _Tree, edges: pd.DataFrame, max_graph_nodes: int) -> tuple[dict, set[int]]:
    """Graph view: the largest trees first, whole trees until the node budget is used; (graph, kept ids)."""
    nodes, ids, root_of, descendants = tree.nodes, tree.ids, tree.root_of, tree.descendants
    # The roots, largest tree first (ties: smallest id); each tree's node count. Whole arrays, not a
    # sort of every node by root nor a Python step per root: 1.4M roots at 100M events (issue #24).
    roots = np.flatnonzero(nodes.generation.to_numpy() == 0)
    roots = roots[np.lexsort((ids[roots], -descendants[roots]))]
    sizes = 1 + descendants[roots]  # never grows along `roots`
    members = np.bincount(root_of, minlength=ids.size)
    chosen, count, i = [], 0, 0
    while i < roots.size:
        chosen.append(roots[i])
        count += int(members[roots[i]])
        left = max_graph_nodes - count
        if left <= 0:
            break
        i = max(i + 1, int(np.searchsorted(-sizes, -left, side="left")))  # the next tree that fits
    keep = {int(x) for x in ids[np.isin(root_of, chosen)]}
    graph_nodes = [
        {
            "id": as_int(r.person_id),
            "generation": as_int(r.generation),
            "direct": as_int(r.direct),
            "descendants": as_int(r.descendants),
        }
        for r in nodes[nodes.person_id.isin(keep)].sort_values(["generation", "person_id"]).itertuples()
    ]
    kept = edges[edges.invitee.isin(keep) & edges.inviter.isin(keep)]
    graph_edges = [
        {"source": int(p), "target": int(c), "ts": clean(ts)}
        for c, p, ts in zip(kept.invitee, kept.inviter, kept.ts, strict=True)
    ]
    return {"nodes": graph_nodes, "edges": graph_edges}, keep


def referral_tree(
    fr: Frame, top: int = 20, max_graph_nodes: int = 500, flagged: frozenset[int] = frozenset()
) -> TreeResult:
    """The tree of the filters' edges; `flagged` persons (anti-fraud) are left out of the KOC ranking."""
    edges = tree_edges(fr)
    if edges.empty:
        return TreeResult(
            [], [], [], [], {"nodes": [], "edges": []}, {"edges": 0, "roots": 0, "max_depth": 0}
        )
    tree = _walk_tree(edges)
    nodes = tree.nodes
    referred_total = int((nodes.generation > 0).sum())
    gens = _generations(nodes, referred_total)
    tree_depth = nodes[nodes.generation == 0].height
    depth = [{"depth": as_int(d), "trees": int(c)} for d, c in tree_depth.value_counts().sort_index().items()]
    inv = nodes[nodes.direct > 0].direct
    breadth = [
        {"direct_invitees": as_int(b), "inviters": int(c)} for b, c in inv.value_counts().sort_index().items()
    ]
    tops = _top_spreaders(fr, tree, top, flagged)
    graph, keep = _graph(tree, edges, max_graph_nodes)
    summary = {
        "edges": len(edges),
        "persons": len(nodes),
        "roots": tree.roots,
        "referred": referred_total,
        "max_depth": int(nodes.generation.max()),
        "graph_truncated": len(keep) < len(nodes),
    }
    return TreeResult(gens, depth, breadth, tops, graph, summary)

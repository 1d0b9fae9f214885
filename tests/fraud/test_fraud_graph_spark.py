"""The fraud graph scan on Spark (fraud/graph_spark.py): its connected and strongly connected
components against networkx and an independent union-find, and the whole scan against the
embedded one on the same data — the labelled scenarios imported through `liebian import` into the
event store, and the synthetic generator's farms, stars, cycles, chains and clusters: the same
persons and referrals, scores, patterns and reasons, and the same review cases.

Spark runs under LIEBIAN_TEST_SPARK=1 with java on PATH (local mode, 4 shuffle partitions)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import networkx as nx
import pytest
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.engine import eventstore, warehouse
from liebian.fraud import graph, graph_spark, scenarios, service, synth

SPARK = os.environ.get("LIEBIAN_TEST_SPARK") == "1" and shutil.which("java") is not None
pytestmark = pytest.mark.skipif(
    not SPARK, reason="Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH (CI sets both)"
)
runner = CliRunner()


@pytest.fixture(scope="module")
def spark():
    from liebian.engine.spark import spark_session

    return spark_session()


@pytest.fixture
def store_url(sqlite_store, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"file://{data_dir.parent / 'store'}"
    monkeypatch.setenv("LIEBIAN_EVENT_STORE", url)
    reset_settings_cache()
    return url


def union_find(nodes: list[int], edges: list[tuple[int, int]]) -> set[frozenset[int]]:
    parent = {n: n for n in nodes}

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, set[int]] = {}
    for n in nodes:
        groups.setdefault(root(n), set()).add(n)
    return {frozenset(g) for g in groups.values()}


def random_edges(seed: int) -> list[tuple[int, int]]:
    """A sparse random graph with many small components, plus a 60-node path with shuffled ids (a
    long diameter) and a few self-loops."""
    rng = random.Random(seed)
    ids = rng.sample(range(10**12, 10**12 + 10**6), 460)
    edges = [(rng.choice(ids[:400]), rng.choice(ids[:400])) for _ in range(330)]
    path = ids[400:]
    edges += list(zip(path, path[1:], strict=False))
    edges += [(ids[0], ids[0]), (ids[401], ids[401])]
    return edges


def test_connected_components_equal_union_find_and_networkx(spark) -> None:
    edges = random_edges(3)
    frame = spark.createDataFrame(edges, "src BIGINT, dst BIGINT")
    rows = graph_spark.connected_components(frame, checkpoint_every=2).collect()
    labels = {int(r.node): int(r.comp) for r in rows}
    nodes = sorted({n for e in edges for n in e})
    assert sorted(labels) == nodes
    found: dict[int, set[int]] = {}
    for node, comp in labels.items():
        found.setdefault(comp, set()).add(node)
    components = {frozenset(g) for g in found.values()}
    assert components == union_find(nodes, edges)
    assert components == {frozenset(c) for c in nx.connected_components(nx.Graph(edges))}
    assert all(comp == min(found[comp]) for comp in found)  # labelled by the least id
    assert len(components) > 20 and max(len(c) for c in components) >= 60


def test_strongly_connected_components_equal_networkx(spark) -> None:
    rng = random.Random(5)
    edges = [(rng.randrange(300), rng.randrange(300)) for _ in range(330)]
    edges += [(1000, 1001), (1001, 1002), (1002, 1000), (1002, 1003), (1003, 1004), (1004, 1002)]  # 5 nodes
    edges += [(2000 + i, 2001 + i) for i in range(30)] + [(2030, 2000)]  # a 31-cycle
    rows = graph_spark.strongly_connected(spark.createDataFrame(edges, "src BIGINT, dst BIGINT")).collect()
    found: dict[int, set[int]] = {}
    for r in rows:
        found.setdefault(int(r.scc), set()).add(int(r.node))
        assert r.size == len([x for x in rows if x.scc == r.scc])
    g = nx.DiGraph([(a, b) for a, b in edges if a != b])
    expected = {frozenset(c) for c in nx.strongly_connected_components(g) if len(c) > 1}
    assert {frozenset(c) for c in found.values()} == expected
    assert frozenset(range(2000, 2031)) in expected and frozenset(range(1000, 1005)) in expected


def scores(con) -> tuple[dict, dict]:
    persons = {
        int(r.person_id): (float(r.score), r.pattern, sorted(r.reasons))
        for r in graph.person_risk(con).itertuples()
    }
    referrals = {
        (int(r.inviter_person_id), int(r.invitee_person_id), r.campaign_id): (
            float(r.score),
            r.pattern,
            sorted(r.reasons),
        )
        for r in graph.referral_risk(con).itertuples()
    }
    return persons, referrals


def assert_same(embedded: tuple[dict, dict], on_spark: tuple[dict, dict], threshold: float = 50.0) -> None:
    for a, b in zip(embedded, on_spark, strict=True):
        assert a.keys() == b.keys()
        differ = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
        assert not differ, list(differ.items())[:5]
        assert {k for k, v in a.items() if v[0] >= threshold} == {
            k for k, v in b.items() if v[0] >= threshold
        }


def test_spark_scan_scores_the_synthetic_graph_as_the_embedded_scan(store_url: str, spark) -> None:
    with warehouse.connect() as con:
        data = synth.generate(con, persons=1500, farms=3, stars=3, cycles=3, coworkers=2, families=3,
                              chains=2, clusters=2, seed=4)  # fmt: skip
        eventstore.publish(con)
        embedded_result = graph.scan(con)
        embedded = scores(con)
        spark_result = graph_spark.scan(con, session=spark)
        on_spark = scores(con)
    assert_same(embedded, on_spark)
    for key in ("persons", "referrals", "shared_links", "components", "flagged_persons", "flagged_referrals"):
        assert getattr(spark_result, key) == getattr(embedded_result, key), key
    flagged = {p for p, v in on_spark[0].items() if v[0] >= 50}
    patterns = {v[1] for p, v in on_spark[0].items() if v[0] >= 50}
    assert {"device_farm", "star_churn", "circular", "chain", "cross_cluster"} <= patterns
    for pattern in ("device_farm", "circular", "chain"):
        assert data.truth[pattern] and data.truth[pattern] <= flagged, pattern


def test_fraud_scan_engine_spark_on_the_labelled_scenarios_opens_the_same_cases(
    store_url: str, spark, tmp_path: Path
) -> None:
    paths = scenarios.write_scenario(tmp_path / "brand", 300, 2)
    for name, kind in (("identities", "identities"), ("events", "events"), ("orders", "orders"),
                       ("identities_late", "identities")):  # fmt: skip
        out = runner.invoke(cli_app, ["import", kind, str(paths[name]), "--format", "json", "--no-progress"])
        assert out.exit_code == 0, out.output
    results, tables, cases = {}, {}, {}
    for engine in ("duckdb", "spark"):
        out = runner.invoke(cli_app, ["fraud", "scan", "--engine", engine, "--format", "json"])
        assert out.exit_code == 0, out.output
        results[engine] = json.loads(out.stdout)
        with warehouse.connect(read_only=True) as con:
            tables[engine] = scores(con)
        with session_scope() as session:
            cases[engine] = {
                (c["inviter_person_id"], c["person_id"], c["campaign_id"]): (c["score"], c["pattern"])
                for c in service.list_cases(session, status=None, limit=10_000)
            }
    assert_same(tables["duckdb"], tables["spark"])
    assert cases["duckdb"] == cases["spark"] and len(cases["spark"]) > 20
    for key in ("persons", "referrals", "shared_links", "components", "flagged_persons", "flagged_referrals"):
        assert results["spark"][key] == results["duckdb"][key], key
    # the Spark scan found every case the embedded one opened, with the same score: none new, none changed
    assert results["duckdb"]["cases_opened"] == len(cases["duckdb"])
    assert results["spark"]["cases_opened"] == 0 and results["spark"]["cases_updated"] == 0
    patterns = {v[1] for v in tables["spark"][0].values() if v[0] >= 50}
    assert {"device_farm", "star_churn", "circular", "chain", "cross_cluster", "self"} <= patterns

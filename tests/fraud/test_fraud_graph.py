"""Graph scan on a real DuckDB warehouse: every detector, the score formula, look-alikes, the job."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import networkx as nx
import pytest

from liebian import jobs
from liebian.engine import warehouse
from liebian.fraud import graph, synth
from liebian.fraud.reasons import REASONS, combine

T0 = datetime(2026, 10, 1, 10, 0, 0)


def add_event(con, person: int, ts: datetime, *, device: str | None = None, ip: str | None = None,
              ua: str | None = None, event: str = "page_view") -> None:  # fmt: skip
    props = json.dumps({"user_agent": ua}) if ua else None
    con.execute(
        "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, device_id, ip, props, batch_id,"
        " ingested_at) VALUES (gen_random_uuid()::VARCHAR, ?, ?, 'unionid', ?, ?, 'miniprogram', ?, ?, ?, 't', now())",
        [ts, person, str(person), event, device, ip, props],
    )


def add_edge(con, inviter: int, invitee: int, ts: datetime, campaign: str = "c1") -> None:
    con.execute(
        "INSERT INTO referral_edges VALUES (?, ?, ?, 'miniprogram', ?, gen_random_uuid()::VARCHAR)",
        [inviter, invitee, campaign, ts],
    )


def add_order(con, person: int, ts: datetime, amount: int = 990) -> None:
    con.execute(
        "INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status, channel,"
        " status_ts, batch_id, ingested_at) VALUES (gen_random_uuid()::VARCHAR, ?, ?, 'unionid', ?, ?, 'CNY', 'paid',"
        " 'miniprogram', ?, 't', now())",
        [ts, person, str(person), amount, ts],
    )


def person_reasons(con) -> dict[int, list[str]]:
    frame = graph.person_risk(con)
    return {int(p): list(r) for p, r in zip(frame.person_id, frame.reasons, strict=True)}


def referral_rows(con) -> dict[tuple[int, int], dict]:
    frame = graph.referral_risk(con)
    return {
        (int(r.inviter_person_id), int(r.invitee_person_id)): {"score": r.score, "reasons": list(r.reasons)}
        for r in frame.itertuples()
    }


def test_empty_warehouse_scans_to_nothing(data_dir) -> None:
    with warehouse.connect() as con:
        result = graph.scan(con)
        assert (result.persons, result.referrals, result.flagged_persons, result.flagged_referrals) == (
            0,
            0,
            0,
            0,
        )
        assert graph.person_risk(con).empty and graph.referral_risk(con).empty


def test_cycles_are_strongly_connected_components(data_dir) -> None:
    with warehouse.connect() as con:
        # a 3-cycle, a 2-cycle, and a chain that is not a cycle
        for a, b in [(1, 2), (2, 3), (3, 1), (10, 11), (11, 10), (20, 21), (21, 22)]:
            add_edge(con, a, b, T0)
            for p in (a, b):
                add_event(con, p, T0 + timedelta(days=5))  # active later: no churn evidence
        graph.scan(con)
        reasons = person_reasons(con)
        edges = referral_rows(con)
    g = nx.DiGraph([(1, 2), (2, 3), (3, 1), (10, 11), (11, 10), (20, 21), (21, 22)])
    expected = {p for c in nx.strongly_connected_components(g) if len(c) > 1 for p in c}
    assert {p for p, r in reasons.items() if "CYCLE" in r} == expected == {1, 2, 3, 10, 11}
    for a, b in [(1, 2), (2, 3), (3, 1), (10, 11), (11, 10)]:
        assert "CIRCULAR" in edges[(a, b)]["reasons"] and edges[(a, b)]["score"] >= 90
    assert (20, 21) not in edges and (21, 22) not in edges


def test_self_referral_and_identifiers_shared_with_the_inviter(data_dir) -> None:
    with warehouse.connect() as con:
        add_edge(con, 5, 5, T0)
        con.execute(
            "INSERT INTO identity_map VALUES ('payment_account', 'hmac-pay-1', 30), ('payment_account', 'hmac-pay-1', 31)"
        )
        add_edge(con, 30, 31, T0)
        add_event(con, 40, T0, device="D-40")
        add_event(con, 41, T0 + timedelta(hours=1), device="D-40")
        add_edge(con, 40, 41, T0 + timedelta(hours=1))
        graph.scan(con)
        edges = referral_rows(con)
    assert edges[(5, 5)]["reasons"] == ["SAME_PERSON"] and edges[(5, 5)]["score"] == 100
    assert edges[(30, 31)]["reasons"] == ["SHARED_PAYMENT"]
    assert edges[(40, 41)]["reasons"] == ["SHARED_DEVICE"]
    assert edges[(40, 41)]["score"] == REASONS["SHARED_DEVICE"].weight


def test_ip_without_user_agent_or_seen_once_links_nobody(data_dir) -> None:
    """A carrier NAT: many persons pass one address once each; an office: many UAs on one IP."""
    with warehouse.connect() as con:
        for p in range(100, 110):
            add_event(con, p, T0 + timedelta(minutes=p), ip="10.0.0.1", ua="UA-same")  # one visit each
            add_event(con, p, T0 + timedelta(days=1, minutes=p), ip="101.1.1.1", ua=f"UA-{p}")
            add_event(con, p, T0 + timedelta(days=2, minutes=p), ip="101.1.1.1", ua=f"UA-{p}")
            if p > 100:
                add_edge(con, 100, p, T0 + timedelta(minutes=p))
        result = graph.scan(con)
        assert result.shared_links == 0
        assert graph.referral_risk(con, min_score=1).empty


def test_score_combines_reasons_as_independent_evidence(data_dir) -> None:
    with warehouse.connect() as con:
        add_edge(con, 1, 2, T0)
        add_edge(con, 2, 1, T0)
        graph.scan(con, virtual_phone_persons=[2])
        frame = graph.person_risk(con)
    row = frame[frame.person_id == 2].iloc[0]
    assert list(row.reasons) == ["CYCLE", "VIRTUAL_PHONE"]  # strongest first
    assert row.score == pytest.approx(100 * (1 - (1 - 0.90) * (1 - 0.65)), abs=0.05)
    assert row.score == combine([("CYCLE", 1.0), ("VIRTUAL_PHONE", 1.0)])
    assert row.pattern == "circular"


def test_device_farm_star_inviter_and_lookalikes(data_dir) -> None:
    with warehouse.connect() as con:
        truth = synth.generate(con, persons=3000, farms=3, stars=3, cycles=3, coworkers=2, families=4, seed=5)
        result = graph.scan(con)
        persons = person_reasons(con)
        refs = graph.referral_risk(con, min_score=50)
        farm_rows = con.execute(
            "SELECT invitee_person_id FROM fraud_referral_risk WHERE list_contains(reasons, 'DEVICE_FARM')"
        ).fetchall()
    flagged = {p for p, _ in persons.items()}
    flagged_50 = set(graph_person_ids_over(persons, data_dir, 50))
    for pattern, members in truth.truth.items():
        assert members <= flagged_50, (pattern, members - flagged_50)
    for name, members in truth.lookalikes.items():
        assert not members & flagged_50, (name, members & flagged_50)
    fraud = set().union(*truth.truth.values())
    assert flagged_50 <= fraud  # no legitimate person reaches the flag threshold
    assert set(refs.invitee_person_id) <= fraud
    # every farm invitee carries the farm reason; the farm's inviter carries FARM_INVITER
    assert {r[0] for r in farm_rows} == truth.truth["device_farm"] - {
        p for p in truth.truth["device_farm"] if "FARM_INVITER" in persons.get(p, [])
    }
    assert result.flagged_persons == len(flagged_50)
    assert flagged >= flagged_50


def graph_person_ids_over(persons: dict[int, list[str]], data_dir, threshold: float) -> list[int]:
    with warehouse.connect() as con:
        return [int(p) for p in graph.person_risk(con, min_score=threshold).person_id]


def test_star_inviter_needs_old_enough_referrals(data_dir) -> None:
    """Invitees who signed up yesterday cannot have churned yet: no star verdict."""
    with warehouse.connect() as con:
        for i in range(8):
            kid = 500 + i
            add_edge(con, 499, kid, T0 + timedelta(days=10, hours=i))
            add_event(con, kid, T0 + timedelta(days=10, hours=i))
        add_event(con, 1, T0 + timedelta(days=11))  # as-of: one day after the sign-ups
        graph.scan(con)
        assert "STAR_CHURN" not in person_reasons(con).get(499, [])
        add_event(con, 1, T0 + timedelta(days=20))  # ten days later they are still gone
        graph.scan(con)
        reasons = person_reasons(con)
    assert "STAR_CHURN" in reasons[499]
    assert all("STAR_CHURN_INVITEE" in reasons[500 + i] for i in range(8))


def test_star_inviter_with_active_invitees_is_not_flagged(data_dir) -> None:
    with warehouse.connect() as con:
        for i in range(8):
            kid = 600 + i
            add_edge(con, 599, kid, T0 + timedelta(hours=i))
            add_event(con, kid, T0 + timedelta(hours=i))
            add_event(con, kid, T0 + timedelta(days=3 + i))  # they come back
            add_order(con, kid, T0 + timedelta(days=4 + i), 4500)
        add_event(con, 1, T0 + timedelta(days=30))
        graph.scan(con)
        assert person_reasons(con).get(599) is None


def test_reason_catalogue_is_complete_and_bilingual() -> None:
    for code, reason in REASONS.items():
        assert reason.code == code and 0 < reason.weight <= 100
        assert reason.zh and reason.en and reason.zh != reason.en


def test_scan_is_registered_as_a_job(data_dir, sqlite_store) -> None:
    assert "fraud-scan" in jobs.registry()
    out = jobs.run_job("fraud-scan")
    assert out["referrals"] == 0 and out["cases_opened"] == 0


def test_farm_of_single_visit_accounts_split_over_devices_but_on_one_ip_and_ua(data_dir) -> None:
    """12 accounts on 3 handsets (4 each: under the per-component minimum of 5), each seen once,
    all from one address with one emulator UA within 20 minutes, one minimum order each."""
    with warehouse.connect() as con:
        add_event(con, 700, T0 - timedelta(days=3))
        for i in range(12):
            kid = 701 + i
            ts = T0 + timedelta(minutes=i)
            add_event(
                con, kid, ts, device=f"EMU-{i % 3}", ip="47.96.1.2", ua="Android 9 SM-G9650", event="signup"
            )
            add_edge(con, 700, kid, ts)
            add_order(con, kid, ts + timedelta(minutes=5))
        # an office: 8 colleagues on one IP, each their own phone and UA, joining over weeks, active
        for i in range(8):
            mate = 800 + i
            ts = T0 + timedelta(days=2 * i)
            for k in range(3):
                add_event(
                    con, mate, ts + timedelta(days=k), device=f"PHONE-{mate}", ip="101.230.1.1", ua=f"UA-{i}"
                )
            add_order(con, mate, ts + timedelta(days=1), 3500)
            if i:
                add_edge(con, 800, mate, ts)
        add_event(con, 1, T0 + timedelta(days=30))
        graph.scan(con)
        reasons = person_reasons(con)
        flagged = set(graph.person_risk(con, min_score=50).person_id.astype("int64"))
    assert all("DEVICE_FARM" in reasons[701 + i] for i in range(12))
    assert "FARM_INVITER" in reasons[700]
    assert flagged == {700, *range(701, 713)}


def test_crowded_device_alone_stays_below_the_flag(data_dir) -> None:
    with warehouse.connect() as con:
        for p in range(900, 906):  # six accounts on one shop tablet
            add_event(con, p, T0 + timedelta(hours=p - 900), device="SHOP-TABLET")
        for p in range(910, 913):  # a family of three on one phone
            add_event(con, p, T0 + timedelta(hours=p - 910), device="FAMILY-PHONE")
        graph.scan(con)
        reasons = person_reasons(con)
        frame = graph.person_risk(con)
    assert all(reasons[p] == ["CROWDED_DEVICE"] for p in range(900, 906))
    assert not any(p in reasons for p in range(910, 913))
    assert frame.score.max() == REASONS["CROWDED_DEVICE"].weight < 50


def test_isolation_forest_marks_the_odd_inviter_and_alone_cannot_flag(data_dir) -> None:
    with warehouse.connect() as con:
        kid = 10_000
        for inviter in range(1000, 1040):  # ordinary inviters: 4 friends over weeks, who stay
            for k in range(4):
                kid += 1
                ts = T0 + timedelta(days=5 * k, hours=inviter - 1000)
                add_edge(con, inviter, kid, ts)
                add_event(con, kid, ts, device=f"P-{kid}")
                add_event(con, kid, ts + timedelta(days=3), device=f"P-{kid}")
        for k in range(7):  # the odd one: 7 friends within minutes, each gone the same day
            kid += 1
            add_edge(con, 2000, kid, T0 + timedelta(minutes=k))
            add_event(con, kid, T0 + timedelta(minutes=k), device=f"P-{kid}")
        add_event(con, 1, T0 + timedelta(days=40))
        graph.scan(con)
        reasons = person_reasons(con)
        frame = graph.person_risk(con)
    assert "ANOMALY" in reasons[2000]
    assert sum("ANOMALY" in reasons.get(i, []) for i in range(1000, 1040)) <= 4  # a few ordinary ones at most
    only_anomaly = frame[frame.reasons.apply(list) == ["ANOMALY"]]
    assert (only_anomaly.score <= REASONS["ANOMALY"].weight).all()

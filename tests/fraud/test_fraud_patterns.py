"""The issue's graph reproductions, each through the real import path (a brand's CSV files through
`import_file`, identities through OneID) and then the scan: a chain of 8, self-referral through an
identities file (known before, and learned after the referral), 12 accounts on one IP with an
emulator UA each invited by a different inviter; and the evidence rendered in both languages."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.fraud import graph, service
from liebian.fraud.reasons import explain
from liebian.identity.keys import stored_value
from liebian.ingest.service import import_file

T0 = datetime(2026, 10, 1, 2, 0)
HEADER = ["event_id", "ts", "user_id", "id_type", "event", "channel", "campaign_id", "referrer_id", "device_id",
          "ip", "user_agent"]  # fmt: skip
EMULATOR = "Mozilla/5.0 (Linux; Android 7.1.2; SM-G955N Build/NRD90M) MicroMessenger/7.0 (emulator)"


def iso(ts: datetime) -> str:
    return ts.isoformat() + "Z"


def write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def customers(n: int) -> tuple[list[list], list[list]]:
    """Genuine customers (their own device and address, coming back and buying for days)."""
    events, orders = [], []
    for i in range(n):
        events.append([f"g{i}", iso(T0 + timedelta(hours=i)), f"g{i}", "openid", "signup", "miniprogram", "c1",
                       f"g{i - 1}" if i else "", f"dg{i}", f"10.0.{i}.1", f"UA-{i % 5}"])  # fmt: skip
        for k in range(3):
            ts = iso(T0 + timedelta(days=3 + k, hours=i))
            events.append([f"g{i}v{k}", ts, f"g{i}", "openid", "visit", "miniprogram", "", "", f"dg{i}",
                           f"10.0.{i}.1", f"UA-{i % 5}"])  # fmt: skip
            orders.append([f"og{i}{k}", ts, f"g{i}", "openid", 5000, "miniprogram"])
    return events, orders


def load(tmp: Path, events: list[list], orders: list[list], identities=(), late=()) -> None:
    if identities:
        import_file(write(tmp / "identities.csv", ["id_type_a", "id_a", "id_type_b", "id_b"], list(identities)),
                    "identities")  # fmt: skip
    import_file(write(tmp / "events.csv", HEADER, events), "events")
    import_file(write(tmp / "orders.csv", ["order_id", "ts", "user_id", "id_type", "amount", "channel"], orders),
                "orders")  # fmt: skip
    if late:
        import_file(
            write(tmp / "late.csv", ["id_type_a", "id_a", "id_type_b", "id_b"], list(late)), "identities"
        )


def person(con, id_type: str, raw: str) -> int:
    return int(con.execute("SELECT person_id FROM identity_map WHERE id_type = ? AND id_value = ?",
                           [id_type, stored_value(id_type, raw)]).fetchall()[0][0])  # fmt: skip


def scan_flags() -> tuple[dict[tuple[int, int], dict], dict[int, list[str]]]:
    with session_scope() as session, warehouse.connect() as con:
        service.run_scan(session, con)
        refs = graph.referral_risk(con, min_score=50)
        persons = graph.person_risk(con, min_score=50)
    edges = {
        (int(r.inviter_person_id), int(r.invitee_person_id)): {
            "reasons": list(r.reasons),
            "details": list(r.details),
        }
        for r in refs.itertuples()
    }
    return edges, {int(p): list(r) for p, r in zip(persons.person_id, persons.reasons, strict=True)}


def test_chain_of_eight_on_two_ips_is_flagged_and_customers_are_not(data_dir, store, tmp_path) -> None:
    events, orders = customers(30)
    ua = "Mozilla/5.0 (Linux; Android 10; V2001A) MicroMessenger/8.0.40"
    for i in range(8):  # ch0 invites ch1 … within ~1 h each, one small order, never back
        t = T0 + timedelta(days=1, minutes=50 * i)
        events.append([f"ch{i}", iso(t), f"ch{i}", "openid", "signup", "miniprogram", "c1", f"ch{i - 1}" if i else "",
                       f"dch{i}", f"1.2.3.{4 + i % 2}", ua])  # fmt: skip
        orders.append([f"och{i}", iso(t + timedelta(minutes=5)), f"ch{i}", "openid", 9.9, "miniprogram"])
    load(tmp_path, events, orders)
    edges, persons = scan_flags()
    with warehouse.connect(read_only=True) as con:
        chain = [person(con, "openid", f"ch{i}") for i in range(8)]
        genuine = {person(con, "openid", f"g{i}") for i in range(30)}
    assert {p for p, r in persons.items() if "CHAIN" in r} == set(chain)
    assert {k for k, v in edges.items() if "CHAIN" in v["reasons"]} == set(
        zip(chain, chain[1:], strict=False)
    )
    assert not genuine & persons.keys()
    detail = edges[(chain[0], chain[1])]["details"][0]
    assert json.loads(detail) == {"n": 8, "ips": 2, "ip": json.loads(detail)["ip"]}
    assert json.loads(detail)["ip"] in {"1.2.3.4", "1.2.3.5"}
    assert explain("CHAIN", detail, "en").startswith("chain of 8 accounts on 2 IP addresses")
    assert explain("CHAIN", detail).startswith("8 个账户的邀请链")


def test_self_referral_through_a_phone_known_before_or_learned_after(data_dir, store, tmp_path) -> None:
    events, orders = customers(20)
    for who, ref, hour in (("srA", "", 0), ("srB", "srA", 1), ("slA", "", 2), ("slB", "slA", 3)):
        events.append([f"e{who}", iso(T0 + timedelta(days=2, hours=hour)), who, "openid", "signup", "miniprogram",
                       "c1", ref, f"d{who}", f"5.5.5.{hour}", f"UA-{who}"])  # fmt: skip
    before = [["openid", "srA", "phone", "13912345678"], ["openid", "srB", "phone", "13912345678"]]
    after = [["openid", "slA", "phone", "13987654321"], ["openid", "slB", "phone", "13987654321"]]
    load(tmp_path, events, orders, identities=before, late=after)
    edges, persons = scan_flags()
    with warehouse.connect(read_only=True) as con:
        early, late = person(con, "openid", "srB"), person(con, "openid", "slB")
        assert early == person(con, "openid", "srA") and late == person(con, "openid", "slA")  # OneID merged
        genuine = {person(con, "openid", f"g{i}") for i in range(20)}
    # known first: the importer kept no edge (nobody is their own inviter), the scan still sees the invite
    assert edges[(early, early)]["reasons"] == ["SAME_PERSON"]
    assert edges[(late, late)]["reasons"] == ["SAME_PERSON"]
    assert json.loads(edges[(early, early)]["details"][0]) == {"account": "openid:srB"}
    assert "SAME_PERSON" in persons[early] and "SAME_PERSON" in persons[late]
    assert not genuine & persons.keys()
    assert explain("SAME_PERSON", edges[(late, late)]["details"][0], "en").endswith(
        "friend's account openid:slB"
    )


def test_phone_shared_by_two_unionids_is_a_self_referral(data_dir, store, tmp_path) -> None:
    """Two unionids never merge (a conflict), yet the identity store saw both with one phone."""
    events, orders = customers(10)
    for who, ref, hour in (("uA", "", 0), ("uB", "uA", 1)):
        events.append([f"e{who}", iso(T0 + timedelta(days=2, hours=hour)), who, "unionid", "signup", "miniprogram",
                       "c1", ref, f"d{who}", f"6.6.6.{hour}", f"UA-{who}"])  # fmt: skip
    late = [["unionid", "uA", "phone", "13711112222"], ["unionid", "uB", "phone", "13711112222"]]
    load(tmp_path, events, orders, late=late)
    edges, _persons = scan_flags()
    with warehouse.connect(read_only=True) as con:
        a, b = person(con, "unionid", "uA"), person(con, "unionid", "uB")
    assert a != b
    assert edges[(a, b)]["reasons"] == ["SHARED_PHONE"]
    detail = edges[(a, b)]["details"][0]
    assert "13711112222" not in detail  # the phone only by a prefix of its HMAC
    assert explain("SHARED_PHONE", detail, "en").startswith("shared phone #")


def test_twelve_accounts_on_one_ip_from_different_inviters(data_dir, store, tmp_path) -> None:
    events, orders = customers(40)
    for i in range(12):
        t = T0 + timedelta(days=4, minutes=10 * i)
        events.append([f"em{i}", iso(t), f"em{i}", "openid", "signup", "miniprogram", "c1", f"g{3 * i}", f"dem{i}",
                       "8.8.8.8", EMULATOR])  # fmt: skip
        orders.append([f"oem{i}", iso(t + timedelta(minutes=3)), f"em{i}", "openid", 0.01, "miniprogram"])
    load(tmp_path, events, orders)
    edges, persons = scan_flags()
    with warehouse.connect(read_only=True) as con:
        accounts = {person(con, "openid", f"em{i}") for i in range(12)}
        inviters = {person(con, "openid", f"g{3 * i}") for i in range(12)}
    assert {p for p, r in persons.items() if "CROSS_CLUSTER" in r} == accounts
    assert {b for (_a, b), v in edges.items() if "CROSS_CLUSTER" in v["reasons"]} == accounts
    assert not inviters & persons.keys()  # their links were abused; they are not the fraud
    detail = next(v["details"][0] for v in edges.values() if "CROSS_CLUSTER" in v["reasons"])
    assert json.loads(detail)["ip"] == "8.8.8.8" and json.loads(detail)["inviters"] == 12
    assert "IP 8.8.8.8" in explain("CROSS_CLUSTER", detail) and "12 个不同邀请人" in explain(
        "CROSS_CLUSTER", detail
    )


def test_office_coworkers_on_one_ip_from_different_inviters_are_not_flagged(
    data_dir, store, tmp_path
) -> None:
    """The same shape as the 12 emulator accounts, but colleagues who keep buying for weeks."""
    events, orders = customers(40)
    for i in range(12):
        t = T0 + timedelta(days=4, minutes=10 * i)
        events.append([f"of{i}", iso(t), f"of{i}", "openid", "signup", "miniprogram", "c1", f"g{3 * i}", f"dof{i}",
                       "8.8.8.8", "Mozilla/5.0 (Windows NT 10.0) WindowsWechat"])  # fmt: skip
        for week in range(4):
            ts = iso(t + timedelta(days=7 * week + 2))
            events.append([f"of{i}w{week}", ts, f"of{i}", "openid", "visit", "miniprogram", "", "", f"dof{i}",
                           "8.8.8.8", "Mozilla/5.0 (Windows NT 10.0) WindowsWechat"])  # fmt: skip
            orders.append([f"oof{i}{week}", ts, f"of{i}", "openid", 35, "miniprogram"])
    load(tmp_path, events, orders)
    edges, persons = scan_flags()
    assert edges == {} and persons == {}


def test_case_view_renders_the_evidence_in_the_readers_language(data_dir, store, tmp_path) -> None:
    events, orders = customers(10)
    for who, ref, hour in (("srA", "", 0), ("srB", "srA", 1)):
        events.append([f"e{who}", iso(T0 + timedelta(days=2, hours=hour)), who, "openid", "signup", "miniprogram",
                       "c1", ref, f"d{who}", "5.5.5.5", "UA-x"])  # fmt: skip
    load(tmp_path, events, orders, identities=[["openid", "srA", "phone", "13912345678"],
                                               ["openid", "srB", "phone", "13912345678"]])  # fmt: skip
    scan_flags()
    with session_scope() as session:
        case = service.list_cases(session, lang="en")[0]
        zh = service.get_case(session, case["id"], "zh-CN")
    assert case["reasons"][0]["code"] == "SAME_PERSON"
    assert case["reasons"][0]["detail"] == "one person after OneID; friend's account openid:srB"
    assert zh["reasons"][0]["detail"] == "OneID 合并后是同一人；好友账户 openid:srB"

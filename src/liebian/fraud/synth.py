"""Synthetic warehouse data with labelled fraud, for the benchmark and the graph tests.

Vectorised numpy: 1M persons take a few seconds. Legitimate persons form referral trees, use their
own device, order a few times over weeks; injected patterns follow the demo brand's description:
device farms (one inviter, 15–40 invitees on 2–3 devices and one IP+UA, burst sign-ups, one minimum
order then nothing), star inviters whose invitees churn the same day, circular referrals, and the
legitimate look-alikes (coworkers on one office IP with different devices, one inviting the
others; a family on one device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

START = datetime(2026, 9, 1)
UAS = np.array([f"Mozilla/5.0 (Phone {i}) MicroMessenger/8.0.{i}" for i in range(40)])
FARM_UA = "Mozilla/5.0 (Linux; Android 9; SM-G9650) MicroMessenger/8.0.1"


@dataclass
class Synthetic:
    truth: dict[str, set[int]] = field(default_factory=dict)  # pattern -> person ids
    lookalikes: dict[str, set[int]] = field(default_factory=dict)
    persons: int = 0
    referrals: int = 0
    events: int = 0


def generate(
    con: duckdb.DuckDBPyConnection,
    persons: int = 5000,
    edges_per_person: float = 0.9,
    farms: int = 4,
    stars: int = 4,
    cycles: int = 4,
    coworkers: int = 3,
    families: int = 6,
    days: int = 60,
    seed: int = 1,
    ip_pool: int | None = None,
    ua_count: int = len(UAS),
    min_visits: int = 0,
    chains: int = 0,
    clusters: int = 0,
) -> Synthetic:
    """Append synthetic events, orders and referral edges to the warehouse behind `con`."""
    rng = np.random.default_rng(seed)
    out = Synthetic()
    base = 10**12
    pid = base + np.arange(persons, dtype=np.int64)
    rows = _Rows(rng, base + persons)
    _legit(rows, pid, edges_per_person, days, ip_pool, ua_count, min_visits)
    truth: dict[str, set[int]] = {"device_farm": set(), "star_churn": set(), "circular": set()}
    if chains:
        truth["chain"] = set()
    if clusters:
        truth["cross_cluster"] = set()
    look: dict[str, set[int]] = {"coworkers": set(), "family": set()}
    _farms(rows, pid, farms, days, truth)
    _stars(rows, stars, days, truth)
    _cycles(rows, cycles, days, truth)
    _chains(rows, chains, days, truth)
    _clusters(rows, pid, clusters, days, truth)
    _coworkers(rows, coworkers, days, look)
    _families(rows, families, days, look)

    events = pd.concat(rows.events, ignore_index=True)
    orders = pd.concat(rows.orders, ignore_index=True)
    edges = pd.concat(rows.edges, ignore_index=True)
    _insert(con, events, orders, edges)
    out.truth, out.lookalikes = truth, look
    out.persons, out.referrals, out.events = int(rows.next_id - base), len(edges), len(events)
    return out


@dataclass
class _Rows:
    """The frames being generated (events, orders, referral edges) and the next free person id."""

    rng: np.random.Generator
    next_id: int
    events: list[pd.DataFrame] = field(default_factory=list)
    orders: list[pd.DataFrame] = field(default_factory=list)
    edges: list[pd.DataFrame] = field(default_factory=list)

    def new_ids(self, n: int) -> np.ndarray:
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        return ids


def _legit(rows: _Rows, pid: np.ndarray, edges_per_person: float, days: int, ip_pool: int | None,
           ua_count: int, min_visits: int) -> None:  # fmt: skip
    """Legitimate persons: referral trees, their own devices, visits and orders over the following weeks."""
    rng = rows.rng
    persons = len(pid)
    # Legit: sign-up times spread over the period; inviter = an earlier person (roots have none).
    signup = np.sort(rng.uniform(0, days * 86400 * 0.9, persons))
    device = np.array([f"d{i}" for i in range(persons)], dtype=object)
    # households share an address; a smaller pool gives more shared IP+UA links
    ip = rng.integers(0, ip_pool or max(persons // 3, 10), persons)
    ua = UAS[rng.integers(0, min(ua_count, len(UAS)), persons)]
    n_edges = int(persons * min(edges_per_person, 0.95))
    invitees = rng.choice(np.arange(1, persons), size=min(n_edges, persons - 1), replace=False)
    inviters = (rng.random(len(invitees)) * invitees).astype(np.int64)  # an earlier person
    rows.events.append(_frame(pid, signup, device, ip, ua, "signup"))
    # Active persons come back: 1–6 further events and 0–5 orders over the following weeks.
    visits = rng.integers(min_visits, 7, persons)
    rep = np.repeat(np.arange(persons), visits)
    later = signup[rep] + rng.uniform(86400 * 1.5, 86400 * 30, len(rep))
    rows.events.append(_frame(pid[rep], later, device[rep], ip[rep], ua[rep], "visit"))
    n_ord = rng.integers(0, 6, persons)
    orep = np.repeat(np.arange(persons), n_ord)
    ots = signup[orep] + rng.uniform(3600, 86400 * 30, len(orep))
    rows.orders.append(
        pd.DataFrame({"person_id": pid[orep], "ts": ots, "amount_fen": rng.integers(990, 8000, len(orep))})
    )
    rows.edges.append(
        pd.DataFrame({"inviter": pid[inviters], "invitee": pid[invitees], "ts": signup[invitees]})
    )


def _farms(rows: _Rows, pid: np.ndarray, farms: int, days: int, truth: dict[str, set[int]]) -> None:
    """Device farms: one (legitimate) inviter, 15–40 invitees on 2–3 devices, burst sign-ups, one minimum order."""
    rng = rows.rng
    persons = len(pid)
    for f in range(farms):
        inviter = pid[rng.integers(0, persons)]
        n = int(rng.integers(15, 41))
        members = rows.new_ids(n)
        t0 = rng.uniform(86400 * 5, days * 86400 * 0.7)
        ts = t0 + np.sort(rng.uniform(0, 3600, n))  # burst within an hour
        devs = np.array([f"farm{f}-{k}" for k in rng.integers(0, int(rng.integers(2, 4)), n)], dtype=object)
        fip = np.full(n, 9_000_000 + f)
        rows.events.append(_frame(members, ts, devs, fip, np.full(n, FARM_UA, dtype=object), "signup"))
        rows.orders.append(
            pd.DataFrame({"person_id": members, "ts": ts + 300, "amount_fen": np.full(n, 990)})
        )
        rows.edges.append(pd.DataFrame({"inviter": np.full(n, inviter), "invitee": members, "ts": ts}))
        truth["device_farm"].update(members.tolist())
        truth["device_farm"].add(int(inviter))


def _stars(rows: _Rows, stars: int, days: int, truth: dict[str, set[int]]) -> None:
    """Star inviters whose invitees order once and churn the same day."""
    rng = rows.rng
    for _s in range(stars):
        inviter = rows.new_ids(1)
        n = int(rng.integers(8, 21))
        members = rows.new_ids(n)
        t_inv = rng.uniform(0, days * 86400 * 0.3)
        ts = rng.uniform(t_inv + 86400, days * 86400 * 0.8, n)
        rows.events.append(
            _frame(
                inviter,
                np.array([t_inv]),
                np.array([f"sd{inviter[0]}"], dtype=object),
                np.array([int(rng.integers(0, 10**6))]),
                UAS[:1],
                "signup",
            )
        )
        rows.events.append(
            _frame(
                members,
                ts,
                np.array([f"sm{m}" for m in members], dtype=object),
                rng.integers(0, 10**6, n),
                UAS[rng.integers(0, len(UAS), n)],
                "signup",
            )
        )
        rows.orders.append(
            pd.DataFrame({"person_id": members, "ts": ts + 600, "amount_fen": np.full(n, 990)})
        )
        rows.edges.append(pd.DataFrame({"inviter": np.full(n, inviter[0]), "invitee": members, "ts": ts}))
        truth["star_churn"].update([int(inviter[0]), *members.tolist()])


def _cycles(rows: _Rows, cycles: int, days: int, truth: dict[str, set[int]]) -> None:
    """Circular referrals: A invites B, B invites A."""
    rng = rows.rng
    for _c in range(cycles):
        a, b = rows.new_ids(2)
        ta = rng.uniform(0, days * 86400 * 0.8)
        rows.events.append(
            _frame(
                np.array([a, b]),
                np.array([ta, ta + 600]),
                np.array([f"ca{a}", f"cb{b}"], dtype=object),
                rng.integers(0, 10**6, 2),
                UAS[:2],
                "signup",
            )
        )
        rows.edges.append(pd.DataFrame({"inviter": [a, b], "invitee": [b, a], "ts": [ta + 600, ta + 1200]}))
        truth["circular"].update([int(a), int(b)])


def _chains(rows: _Rows, chains: int, days: int, truth: dict[str, set[int]]) -> None:
    """Chains: 8–10 new accounts each inviting the next within an hour, on two addresses and one
    user agent, one minimal order each."""
    rng = rows.rng
    for c in range(chains):
        n = int(rng.integers(8, 11))
        members = rows.new_ids(n)
        ts = rng.uniform(86400 * 5, days * 86400 * 0.7) + np.cumsum(rng.uniform(300, 3600, n))
        ips = 9_500_000 + 2 * c + np.arange(n) % 2
        devs = np.array([f"chain{m}" for m in members], dtype=object)
        rows.events.append(_frame(members, ts, devs, ips, np.full(n, UAS[5], dtype=object), "signup"))
        rows.orders.append(
            pd.DataFrame({"person_id": members, "ts": ts + 300, "amount_fen": np.full(n, 990)})
        )
        rows.edges.append(pd.DataFrame({"inviter": members[:-1], "invitee": members[1:], "ts": ts[1:]}))
        truth["chain"].update(members.tolist())


def _clusters(rows: _Rows, pid: np.ndarray, clusters: int, days: int, truth: dict[str, set[int]]) -> None:
    """Cross-inviter clusters: 10–14 accounts on one address and emulator UA, each brought by a
    different (legitimate) inviter within a few hours, one minimal order each."""
    rng = rows.rng
    for c in range(clusters):
        n = int(rng.integers(10, 15))
        members = rows.new_ids(n)
        ts = rng.uniform(86400 * 5, days * 86400 * 0.7) + np.sort(rng.uniform(0, 4 * 3600, n))
        devs = np.array([f"clu{m}" for m in members], dtype=object)
        rows.events.append(_frame(members, ts, devs, np.full(n, 9_700_000 + c), np.full(n, FARM_UA, dtype=object),
                                  "signup"))  # fmt: skip
        rows.orders.append(
            pd.DataFrame({"person_id": members, "ts": ts + 300, "amount_fen": np.full(n, 990)})
        )
        inviters = pid[rng.choice(len(pid), n, replace=False)]
        rows.edges.append(pd.DataFrame({"inviter": inviters, "invitee": members, "ts": ts}))
        truth["cross_cluster"].update(members.tolist())


def _coworkers(rows: _Rows, coworkers: int, days: int, look: dict[str, set[int]]) -> None:
    """Look-alikes: coworkers on one office IP+UA with their own devices, one inviting the others."""
    rng = rows.rng
    for w in range(coworkers):
        staff = rows.new_ids(8)
        ts = np.sort(rng.uniform(86400, days * 86400 * 0.7, 8))
        office = np.full(8, 8_000_000 + w)
        rows.events.append(
            _frame(
                staff,
                ts,
                np.array([f"w{s}" for s in staff], dtype=object),
                office,
                np.full(8, UAS[3], dtype=object),
                "signup",
            )
        )
        rep2 = np.repeat(np.arange(8), 4)
        rows.events.append(
            _frame(
                staff[rep2],
                ts[rep2] + rng.uniform(2 * 86400, 20 * 86400, len(rep2)),
                np.array([f"w{s}" for s in staff[rep2]], dtype=object),
                office[rep2],
                np.full(len(rep2), UAS[3], dtype=object),
                "visit",
            )
        )
        rows.orders.append(
            pd.DataFrame(
                {"person_id": staff[rep2], "ts": ts[rep2] + 86400 * 3, "amount_fen": np.full(len(rep2), 2500)}
            )
        )
        rows.edges.append(pd.DataFrame({"inviter": np.full(7, staff[0]), "invitee": staff[1:], "ts": ts[1:]}))
        look["coworkers"].update(staff.tolist())


def _families(rows: _Rows, families: int, days: int, look: dict[str, set[int]]) -> None:
    """Look-alikes: families sharing one handset."""
    rng = rows.rng
    for _f in range(families):
        fam = rows.new_ids(3)
        ts = np.sort(rng.uniform(86400, days * 86400 * 0.7, 3))
        dev = np.full(3, f"fam{fam[0]}", dtype=object)
        rows.events.append(_frame(fam, ts, dev, np.full(3, int(rng.integers(0, 10**6))), UAS[:3], "signup"))
        rows.events.append(_frame(fam, ts + 5 * 86400, dev, np.full(3, 5), UAS[:3], "visit"))
        # like the demo's families they share a handset but do not invite each other
        look["family"].update(fam.tolist())


def _insert(
    con: duckdb.DuckDBPyConnection, events: pd.DataFrame, orders: pd.DataFrame, edges: pd.DataFrame
) -> None:
    """Append the generated frames to the warehouse's events, orders and referral_edges."""
    con.register("syn_events", events)
    con.register("syn_orders", orders)
    con.register("syn_edges", edges)
    start = f"TIMESTAMP '{START.isoformat(sep=' ')}'"
    con.execute(
        f"""
        INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, device_id, ip, props,
                            batch_id, ingested_at)
        SELECT 'e' || row_number() OVER (), {start} + to_seconds(ts::BIGINT), person_id, 'app_user',
               person_id::VARCHAR, event, 'miniprogram', device_id, '10.' || (ip // 65536 % 256) || '.'
               || (ip // 256 % 256) || '.' || (ip % 256), json_object('user_agent', ua), 'synthetic', now()
        FROM syn_events
        """
    )
    con.execute(
        f"""
        INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status, channel,
                            status_ts, batch_id, ingested_at)
        SELECT 'o' || row_number() OVER (), {start} + to_seconds(ts::BIGINT), person_id, 'app_user',
               person_id::VARCHAR, amount_fen, 'CNY', 'paid', 'miniprogram',
               {start} + to_seconds(ts::BIGINT), 'synthetic', now()
        FROM syn_orders
        """
    )
    con.execute(
        f"""
        INSERT INTO referral_edges
        SELECT inviter, invitee, 'c_syn', 'miniprogram', {start} + to_seconds(ts::BIGINT), 'r' || row_number() OVER ()
        FROM syn_edges
        """
    )
    for name in ("syn_events", "syn_orders", "syn_edges"):
        con.unregister(name)


def _frame(person, ts, device, ip, ua, event: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"person_id": person, "ts": ts, "device_id": device, "ip": ip, "ua": ua, "event": event}
    )

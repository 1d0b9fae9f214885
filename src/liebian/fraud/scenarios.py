"""Labelled fraud scenarios written as a brand's own files, for the evaluation harness.

`write_scenario(directory, size, seed)` writes what a brand would hand over — `events.csv`,
`orders.csv`, `identities.csv` (known before the events) and `identities_late.csv` (links learned
after the referrals) in the generic import format (docs/formats.md) — plus `ground_truth.json`
naming every fraudulent referral and person by identifiers, with its pattern, and the decoys that
must not be flagged. `liebian import` reads the files; `liebian fraud evaluate --ground-truth`
scores the scan against the truth.

Patterns: device farms, star inviters whose friends churn, referral rings, chains (accounts each
inviting the next within minutes on two addresses and one user agent, one small order each),
cross-inviter clusters (accounts on one address + emulator UA, or one device, each brought by a
different inviter) and self-referral (a second account tied to the inviter by a phone through
OneID — known before or learned after —, a phone two unionids share, or the inviter's device).
Decoys: office coworkers on one address and user agent who keep buying for weeks (some invited by
different colleagues, some in a burst by one), genuine KOCs with dozens of invitees on diverse
devices and networks, families sharing a handset, a campus network.

Plain Python with a seeded `random.Random`: the same size and seed give the same files.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 5, 1)  # the whole scenario lies in the past (future times are refused)
DAYS = 60
CAMPAIGN = "c_harness"
EMULATOR_UA = "Mozilla/5.0 (Linux; Android 7.1.2; SM-G955N Build/NRD90M; wv) MicroMessenger/7.0.22 (emulator)"
UAS = [
    f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_{i} like Mac OS X) MicroMessenger/8.0.{40 + i}" for i in range(12)
] + [f"Mozilla/5.0 (Linux; Android 1{i % 4}; V20{i}) MicroMessenger/8.0.{30 + i}" for i in range(18)]
SIZES = {"small": 300, "medium": 1200, "large": 20000}  # legitimate persons; patterns scale with it
EVENT_HEADER = ["event_id", "ts", "user_id", "id_type", "event", "channel", "campaign_id", "referrer_id",
                "referrer_id_type", "device_id", "ip", "user_agent"]  # fmt: skip
ORDER_HEADER = ["order_id", "ts", "user_id", "id_type", "amount_fen", "channel", "campaign_id"]
IDENTITY_HEADER = ["id_type_a", "id_a", "id_type_b", "id_b", "ts"]


@dataclass
class Account:
    id: str
    device: str
    ip: str
    ua: str
    id_type: str = "openid"

    def ref(self) -> dict[str, str]:
        return {"id_type": self.id_type, "id": self.id}


@dataclass
class Scenario:
    rng: random.Random
    seed: int
    events: list[list[Any]] = field(default_factory=list)
    orders: list[list[Any]] = field(default_factory=list)
    identities: list[list[Any]] = field(default_factory=list)
    identities_late: list[list[Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    persons: list[dict[str, Any]] = field(default_factory=list)
    decoys: list[dict[str, Any]] = field(default_factory=list)
    legit: list[Account] = field(default_factory=list)
    regulars: list[Account] = field(default_factory=list)  # genuine customers who came back
    count: int = 0

    def account(self, device: str | None = None, ip: str | None = None, ua: str | None = None,
                id_type: str = "openid") -> Account:  # fmt: skip
        self.count += 1
        n = self.count
        return Account(f"o{self.seed}x{n:06d}", device or f"dv{self.seed}x{n}", ip or self.home_ip(),
                       ua or self.rng.choice(UAS), id_type)  # fmt: skip

    def home_ip(self) -> str:
        r = self.rng
        return f"{r.choice((36, 58, 101, 112, 117, 183))}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def event(self, who: Account, ts: float, event: str = "visit", inviter: Account | None = None,
              ip: str | None = None, device: str | None = None) -> None:  # fmt: skip
        self.events.append([
            f"e{len(self.events)}", _ts(ts), who.id, who.id_type, event, "miniprogram",
            CAMPAIGN if inviter else "", inviter.id if inviter else "", inviter.id_type if inviter else "",
            device or who.device, ip or who.ip, who.ua,
        ])  # fmt: skip

    def order(self, who: Account, ts: float, amount_fen: int) -> None:
        self.orders.append(
            [f"od{len(self.orders)}", _ts(ts), who.id, who.id_type, amount_fen, "miniprogram", ""]
        )

    def signup(self, who: Account, ts: float, inviter: Account | None, pattern: str | None = None) -> None:
        self.event(who, ts, "signup", inviter)
        if inviter is not None and pattern:
            self.referrals.append(
                {"inviter": inviter.ref(), "invitee": who.ref(), "campaign_id": CAMPAIGN, "pattern": pattern}
            )

    def active(self, who: Account, ts: float, weeks: float = 4, orders: int | None = None) -> None:
        """A genuine customer: comes back and buys over the following weeks."""
        r = self.rng
        for _ in range(r.randint(2, 6)):
            self.event(
                who, ts + r.uniform(1.5, weeks * 7) * 86400, ip=who.ip if r.random() < 0.7 else self.home_ip()
            )
        for _ in range(r.randint(1, 5) if orders is None else orders):
            self.order(who, ts + r.uniform(0.2, weeks * 7) * 86400, r.randint(1990, 25000))

    def dud(self, who: Account, ts: float) -> None:
        """A reward account: one minimal order right after sign-up, then never again."""
        self.order(who, ts + self.rng.uniform(120, 1800), self.rng.choice((100, 990, 1)))

    def mark(self, who: Account, pattern: str) -> None:
        self.persons.append({**who.ref(), "pattern": pattern})

    def decoy(self, who: Account, kind: str, role: str = "member") -> None:
        self.decoys.append({**who.ref(), "kind": kind, "role": role})

    def pick_legit(self) -> Account:
        return self.rng.choice(self.legit)

    def pick_regular(self) -> Account:
        """A genuine customer who shares invites: one who came back (whose link fraud may abuse)."""
        return self.rng.choice(self.regulars)

    def when(self, lo: float = 0.05, hi: float = 0.7) -> float:
        return self.rng.uniform(lo, hi) * DAYS * 86400


def _ts(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ population and decoys


def _population(s: Scenario, persons: int) -> None:
    """Genuine customers in referral trees: own device, home address, coming back for weeks."""
    r = s.rng
    times = sorted(r.uniform(0, 0.9) * DAYS * 86400 for _ in range(persons))
    for i, ts in enumerate(times):
        who = s.account()
        inviter = s.legit[int(r.random() * i)] if i and r.random() < 0.7 else None
        s.signup(who, ts, inviter)
        if r.random() < 0.85:
            s.active(who, ts)
            s.regulars.append(who)
        s.legit.append(who)


def _offices(s: Scenario, n: int) -> None:
    """Coworkers on one office address with the company's standard browser, buying for weeks; half
    the offices joined in a burst from one colleague's post, the others through different friends."""
    r = s.rng
    for k in range(n):
        ip, ua = s.home_ip(), r.choice(UAS)
        staff = [s.account(ip=ip, ua=ua) for _ in range(r.randint(8, 16))]
        t0 = s.when()
        burst = k % 2 == 0
        for j, who in enumerate(staff):
            ts = t0 + (r.uniform(0, 3600) if burst else r.uniform(0, 20 * 86400))
            inviter = (staff[0] if j else None) if burst else s.pick_legit()
            s.signup(who, ts, inviter)
            s.active(who, ts, weeks=6, orders=r.randint(3, 8))
            s.decoy(who, "office", "inviter" if burst and j == 0 else "member")


def _kocs(s: Scenario, n: int) -> None:
    """Genuine key opinion customers: dozens of friends on their own devices and networks, spread
    over weeks; some friends buy once and leave, as real friends do."""
    r = s.rng
    for _ in range(n):
        koc = s.account()
        t0 = s.when(0.0, 0.3)
        s.signup(koc, t0, None)
        s.active(koc, t0, weeks=8)
        s.decoy(koc, "koc", "inviter")
        for _f in range(r.randint(24, 60)):
            friend = s.account()
            ts = t0 + r.uniform(0.5, 30) * 86400
            s.signup(friend, ts, koc)
            if r.random() < 0.7:
                s.active(friend, ts)
            s.decoy(friend, "koc")


def _families(s: Scenario, n: int) -> None:
    """Families sharing one handset at home, each member brought by a different friend."""
    r = s.rng
    for _ in range(n):
        device, ip = f"fam{s.seed}x{s.count}", s.home_ip()
        for _m in range(r.randint(2, 4)):
            who = s.account(device=device, ip=ip)
            ts = s.when()
            s.signup(who, ts, s.pick_legit())
            s.active(who, ts)
            s.decoy(who, "family")


def _campus(s: Scenario, n: int) -> None:
    """A campus network: many students behind one address, a few common phones, bringing each other
    in during the first weeks of term and staying."""
    r = s.rng
    for _ in range(n):
        ip, uas = s.home_ip(), r.sample(UAS, 5)
        t0 = s.when(0.05, 0.4)
        students: list[Account] = []
        for j in range(r.randint(40, 80)):
            who = s.account(ip=ip, ua=r.choice(uas))
            ts = t0 + r.uniform(0, 14) * 86400
            inviter = r.choice(students) if students and r.random() < 0.8 else None
            s.signup(who, ts, inviter)
            s.active(who, ts, weeks=6, orders=r.randint(1, 5))
            s.decoy(who, "campus", "member" if j else "inviter")
            students.append(who)


# ------------------------------------------------------------------ fraud patterns


def _farms(s: Scenario, n: int) -> None:
    r = s.rng
    for _ in range(n):
        inviter = s.account()  # the operator's own account brings the farm in
        s.signup(inviter, s.when(0.0, 0.05), None)
        s.mark(inviter, "device_farm")
        ip, devices = s.home_ip(), [f"farm{s.seed}x{s.count}d{k}" for k in range(r.randint(2, 3))]
        t0 = s.when()
        for _m in range(r.randint(15, 30)):
            who = s.account(device=r.choice(devices), ip=ip, ua=EMULATOR_UA)
            ts = t0 + r.uniform(0, 3600)
            s.signup(who, ts, inviter, "device_farm")
            s.dud(who, ts)
            s.mark(who, "device_farm")


def _stars(s: Scenario, n: int) -> None:
    r = s.rng
    for _ in range(n):
        star = s.account()
        t0 = s.when(0.0, 0.3)
        s.signup(star, t0, None)
        s.mark(star, "star_churn")
        for _m in range(r.randint(10, 20)):
            who = s.account()
            ts = t0 + r.uniform(1, 25) * 86400
            s.signup(who, ts, star, "star_churn")
            s.dud(who, ts)
            s.mark(who, "star_churn")


def _rings(s: Scenario, n: int) -> None:
    r = s.rng
    for _ in range(n):
        ring = [s.account() for _m in range(r.randint(2, 3))]
        t0 = s.when()
        for j, who in enumerate(ring):
            s.event(who, t0 + j * 600, "signup")
            s.signup(who, t0 + 3600 + j * 600, ring[j - 1], "circular")  # the last closes the ring
            s.active(who, t0)
            s.mark(who, "circular")


def _chains(s: Scenario, n: int) -> None:
    r = s.rng
    for _ in range(n):
        ips, ua = [s.home_ip(), s.home_ip()], r.choice(UAS)
        root = s.account(ip=ips[0], ua=ua)
        ts = s.when()
        # the head may itself be invited by a genuine customer: that invite brought a fake account in
        s.signup(root, ts, s.pick_regular() if r.random() < 0.5 else None, "chain")
        s.dud(root, ts)
        s.mark(root, "chain")
        prev = root
        for j in range(r.randint(7, 10)):
            who = s.account(ip=ips[(j + 1) % 2], ua=ua)
            ts += r.uniform(5, 60) * 60
            s.signup(who, ts, prev, "chain")
            s.dud(who, ts)
            s.mark(who, "chain")
            prev = who


def _clusters(s: Scenario, n: int) -> None:
    """Accounts brought by different (genuine) inviters: on one address with an emulator's UA, or
    on one device behind changing addresses."""
    r = s.rng
    for k in range(n):
        on_device = k % 3 == 2
        ip, device = s.home_ip(), f"clu{s.seed}x{s.count}"
        t0 = s.when()
        inviters = r.sample(s.regulars, r.randint(6, 8) if on_device else r.randint(10, 14))
        for inviter in inviters:
            who = s.account(device=device if on_device else None, ip=None if on_device else ip,
                            ua=r.choice(UAS) if on_device else EMULATOR_UA)  # fmt: skip
            ts = t0 + r.uniform(0, 4) * 3600
            s.signup(who, ts, inviter, "cross_cluster")
            if r.random() < 0.8:
                s.dud(who, ts)
            s.mark(who, "cross_cluster")


def _self_referrals(s: Scenario, n: int) -> None:
    """A second account of the inviter: tied by a phone (OneID merges, known before or learned
    after), by a phone two unionids share (OneID keeps them apart: a conflict), or on the
    inviter's own device."""
    r = s.rng
    for k in range(n):
        variant = k % 4
        id_type = "unionid" if variant == 2 else "openid"
        inviter = s.account(id_type=id_type)
        ts = s.when()
        s.signup(inviter, ts, None)
        s.active(inviter, ts)
        second = s.account(device=inviter.device if variant == 3 else None, id_type=id_type)
        s.signup(second, ts + r.uniform(1, 48) * 3600, inviter, "self")
        s.dud(second, ts + 3 * 86400)
        phone = f"13{r.randrange(10**8, 10**9)}"
        links = s.identities if variant == 0 else s.identities_late
        if variant in (0, 1, 2):
            for who in (inviter, second):
                links.append([who.id_type, who.id, "phone", phone, _ts(ts)])
        s.mark(second, "self")


# ------------------------------------------------------------------ writing


def write_scenario(directory: str | Path, size: str | int = "small", seed: int = 1) -> dict[str, Path]:
    """Write one labelled scenario; returns the paths by name (events, orders, identities,
    identities_late, ground_truth)."""
    persons = SIZES[size] if isinstance(size, str) else int(size)
    s = Scenario(random.Random(seed), seed)
    scale = max(1, persons // 300)
    _population(s, persons)
    for step, count in ((_offices, 2 * scale), (_kocs, scale), (_families, 3 * scale), (_campus, 1 + scale // 4),
                        (_farms, scale), (_stars, scale), (_rings, 2 * scale), (_chains, 2 * scale),
                        (_clusters, 3 * scale), (_self_referrals, 4 * scale)):  # fmt: skip
        step(s, count)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.csv" for name in ("identities", "events", "orders", "identities_late")}
    _write_csv(paths["events"], EVENT_HEADER, sorted(s.events, key=lambda row: row[1]))
    _write_csv(paths["orders"], ORDER_HEADER, s.orders)
    _write_csv(paths["identities"], IDENTITY_HEADER, s.identities)
    _write_csv(paths["identities_late"], IDENTITY_HEADER, s.identities_late)
    truth = {
        "format": "liebian-fraud-truth/1", "size": size, "seed": seed, "campaign_id": CAMPAIGN,
        "referrals": s.referrals, "persons": s.persons, "decoys": s.decoys,
    }  # fmt: skip
    paths["ground_truth"] = out / "ground_truth.json"
    paths["ground_truth"].write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return paths


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)

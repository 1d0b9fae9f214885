"""The demo brand generator: a realistic, seeded private-domain dataset with its ground truth.

Everything is drawn from one ``numpy.random.default_rng(seed)`` in a fixed order and built as
column arrays (no per-event Python loop), so the same seed writes byte-identical files and the
default size (50k persons, ~2M events) takes seconds. The files use the generic import format;
``ground_truth.json`` records what was injected (fraud, look-alikes, quality problems, metric
anomalies) so later checks can measure precision and recall honestly. See docs/demo.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from liebian.demo import brand

DAY = 86_400
LOCAL_OFFSET = 8 * 3600  # Asia/Shanghai, no daylight saving
DEFAULT_END_DATE = date(2026, 11, 15)
ISO_LOCAL = "iso"  # 2026-11-11T20:15:00+08:00
NAIVE_LOCAL = "naive"  # 2026-11-11 20:15:00, as store POS exports write it

EVENTS = (
    "exposure",
    "page_view",
    "join_campaign",
    "invite_share",
    "invite_click",
    "signup",
    "invite_accept",
    "app_open",
    "login",
    "checkin",
    "coupon_claim",
    "share",
)
EV = {name: i for i, name in enumerate(EVENTS)}
CH = {name: i for i, name in enumerate(brand.CHANNELS)}
IDT = {name: i for i, name in enumerate(brand.ID_TYPES)}
NATIVE = np.array([IDT[brand.NATIVE_ID[c]] for c in brand.CHANNELS])
ORDER_CH = np.array([CH[brand.ORDER_CHANNEL[c]] for c in brand.CHANNELS])
# sentinels in the channel column, resolved once every person's channels are known
PRIMARY, FUNNEL = -2, -1

# person kinds
EXISTING, ORGANIC, REFERRED, FRAUD_INVITEE, FRAUD_INVITER = 0, 1, 2, 3, 4
KIND_NAMES = ("existing_member", "organic_new", "referred", "fraud_invitee", "fraud_inviter")

# activity mix per channel over (page_view, app_open, login, checkin, coupon_claim, share)
ACTIVITY = np.array(
    [EV["page_view"], EV["app_open"], EV["login"], EV["checkin"], EV["coupon_claim"], EV["share"]]
)
ACTIVITY_MIX = np.array(
    [
        [0.40, 0.00, 0.10, 0.25, 0.12, 0.13],  # wecom: articles, group check-ins
        [0.30, 0.28, 0.10, 0.12, 0.12, 0.08],  # miniprogram
        [0.45, 0.25, 0.05, 0.05, 0.12, 0.08],  # douyin
        [0.50, 0.22, 0.05, 0.03, 0.10, 0.10],  # xiaohongshu
        [0.28, 0.30, 0.14, 0.12, 0.10, 0.06],  # app
        [0.05, 0.00, 0.25, 0.40, 0.30, 0.00],  # store: member login at the POS, check-in, coupon use
    ]
)
HOUR_WEIGHTS = np.array([3, 5, 6, 8, 10, 8, 6, 5, 5, 6, 8, 10, 11, 9, 6, 3], dtype=float)  # 08..23 local

EVENT_COLUMNS = (
    "event_id",
    "ts",
    "user_id",
    "id_type",
    "event",
    "channel",
    "campaign_id",
    "invite_code",
    "referrer_id",
    "referrer_id_type",
    "device_id",
    "ip",
    "received_at",
    "user_agent",
)
ORDER_COLUMNS = (
    "order_id",
    "ts",
    "user_id",
    "id_type",
    "amount",
    "currency",
    "status",
    "channel",
    "campaign_id",
    "received_at",
)
IDENTITY_COLUMNS = ("id_type_a", "id_a", "id_type_b", "id_b", "ts", "source")

# identity evidence a channel system really provides, and how often it is present in the export
LINKS = (
    ("openid", "unionid", 0.90, "wechat_open_platform"),
    ("external_userid", "unionid", 0.90, "wecom_contact_api"),
    ("unionid", "phone", 0.55, "miniprogram_phone_auth"),
    ("app_user", "phone", 0.85, "app_register"),
    ("app_user", "device_id", 0.95, "app_login"),
    ("douyin_openid", "phone", 0.50, "douyin_mobile_auth"),
    ("xhs_id", "phone", 0.30, "xhs_order"),
    ("external_userid", "phone", 0.20, "wecom_remark"),
)


@dataclass(frozen=True)
class DemoSpec:
    seed: int = 7
    persons: int = 50_000
    days: int = 120
    end_date: date = DEFAULT_END_DATE
    events_per_person: float = 40.0

    def __post_init__(self) -> None:
        if self.persons < 500:
            raise ValueError(
                f"persons must be at least 500 (got {self.persons}): every injected pattern needs room"
            )
        if self.days < 28:
            raise ValueError(f"days must be at least 28 (got {self.days}): campaigns and D30 need a window")

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["end_date"] = self.end_date.isoformat()
        d["start_date"] = self.start_date.isoformat()
        return d


@dataclass
class DemoResult:
    out_dir: Path
    files: dict[str, Path]
    ground_truth: dict
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def ground_truth_path(self) -> Path:
        return self.out_dir / "ground_truth.json"


Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# small vectorised helpers


def _rand_str(rng: np.random.Generator, n: int, length: int, alphabet: str) -> np.ndarray:
    chars = np.array(list(alphabet))
    return chars[rng.integers(0, len(chars), (n, length))].view(f"<U{length}").ravel()


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
HEX = "0123456789abcdef"


def _prefixed(prefix: str, body: np.ndarray) -> list[str]:
    return [prefix + b for b in body.tolist()]


def _group_ranks(sizes: np.ndarray) -> np.ndarray:
    """0..size-1 for each group laid out consecutively (rank of a row inside its group)."""
    total = int(sizes.sum())
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(total) - starts


def _dict_strings(indices: np.ndarray, values: Sequence[str] | np.ndarray) -> pa.Array:
    """A string column from indices into a table of values (-1 = empty), kept dictionary-encoded."""
    indices = np.asarray(indices, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, mask=indices < 0), pa.array(list(values), pa.string())
    )


_CLOCK: dict[str, list[str]] = {}


def _ts_strings(ts: np.ndarray, fmt: str) -> pa.Array:
    """Local (UTC+8) time strings from UTC epoch seconds: a date part and a clock part, each looked up
    in a small table (formatting two million timestamps one by one takes seconds)."""
    local = np.asarray(ts, dtype=np.int64) + LOCAL_OFFSET
    days, secs = np.divmod(local, DAY)
    uniq, inv = np.unique(days, return_inverse=True)
    sep, suffix = ("T", "+08:00") if fmt == ISO_LOCAL else (" ", "")
    dates = [(date(1970, 1, 1) + timedelta(days=int(d))).isoformat() + sep for d in uniq]
    if fmt not in _CLOCK:
        _CLOCK[fmt] = [
            f"{h:02d}:{m:02d}:{x:02d}{suffix}" for h in range(24) for m in range(60) for x in range(60)
        ]
    date_part = _dict_strings(inv, dates).cast(pa.string())
    clock_part = _dict_strings(secs, _CLOCK[fmt]).cast(pa.string())
    return pc.binary_join_element_wise(date_part, clock_part, "")


# --------------------------------------------------------------------------------------------


class FraudPlan(TypedDict):
    """The fraud rings to plant: sizes of each device farm, star inviter and referral circle."""

    device_farm: list[int]
    star_inviter: list[int]
    circular_referral: list[int]
    virtual_phone: int


class _Rows:
    """Event rows collected as column chunks."""

    COLS = ("person", "ts", "event", "channel", "campaign", "ref")

    def __init__(self) -> None:
        self.chunks: list[dict[str, np.ndarray]] = []

    def add(self, person, ts, event, channel, campaign=-1, ref=-1) -> None:
        person = np.asarray(person, dtype=np.int64)
        n = len(person)
        if n == 0:
            return

        def full(v, dtype):
            return np.broadcast_to(np.asarray(v, dtype=dtype), (n,)).copy()

        self.chunks.append(
            {
                "person": person,
                "ts": full(ts, np.int64),
                "event": full(event, np.int16),
                "channel": full(channel, np.int16),
                "campaign": full(campaign, np.int16),
                "ref": full(ref, np.int64),
            }
        )

    def concat(self) -> dict[str, np.ndarray]:
        return {c: np.concatenate([ch[c] for ch in self.chunks]) for c in self.COLS}


class _Generator:
    def __init__(self, spec: DemoSpec, progress: Progress | None):
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.progress = progress or (lambda _msg: None)
        self.D = spec.days
        self.n = spec.persons
        start = spec.start_date
        self.T0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) - LOCAL_OFFSET
        self.T_END = self.T0 + self.D * DAY
        self.dates = [start + timedelta(days=d) for d in range(self.D)]
        self.season = self._season()
        self.rows = _Rows()
        self.truth: dict = {}
        self.steps: dict[str, float] = {}

    # ---- calendar ----------------------------------------------------------------------------
    def _season(self) -> np.ndarray:
        w = np.ones(self.D)
        for i, d in enumerate(self.dates):
            if d.weekday() >= 5:
                w[i] = 1.30
            elif d.weekday() == 4:
                w[i] = 1.10
            if (d.month, d.day) == (11, 11):
                w[i] *= 2.6  # 双11
            elif (d.month, d.day) in ((11, 10), (11, 12)):
                w[i] *= 1.5
            elif d.month == 11 and d.day < 10:
                w[i] *= 1.15  # pre-sale weeks
        return w * np.linspace(0.9, 1.1, self.D)  # a growing brand

    def day_of(self, ts: np.ndarray) -> np.ndarray:
        return (np.asarray(ts) - self.T0) // DAY

    def tod(self, size: int) -> np.ndarray:
        hours = 8 + self.rng.choice(16, size=size, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
        return hours * 3600 + self.rng.integers(0, 3600, size)

    def at(self, days: np.ndarray) -> np.ndarray:
        days = np.asarray(days, dtype=np.int64)
        return self.T0 + days * DAY + self.tod(len(days))

    def date_str(self, day: int) -> str:
        return self.dates[day].isoformat()

    def _pick_days(self, lo: float, hi: float, k: int, avoid: set[int]) -> list[int]:
        """k distinct ordinary weekdays inside [lo, hi] of the period, away from 双11 and each other.

        A short period (28 days around 双11) may hold too few such days: the rules are then relaxed
        one at a time (any weekday, then the whole period, then only distinct from `avoid`), so a
        small demo still builds; a period long enough for the strict rules draws exactly as before."""
        strict = self._draw_days(lo, hi, k, avoid, weekday_limit=4, gap=2, skip_double11=True)
        if len(strict) == k:
            return strict
        # (lo, hi, weekday_limit, gap, skip_double11), each looser than the one before
        for rule in ((lo, hi, 7, 2, True), (0.0, 1.0, 7, 1, True), (0.0, 1.0, 7, 0, False)):
            days = self._draw_days(rule[0], rule[1], k, avoid, *rule[2:])
            if len(days) == k:
                return days
        raise ValueError(f"days: {self.D} days cannot hold {k} distinct event days")

    def _draw_days(
        self, lo: float, hi: float, k: int, avoid: set[int], weekday_limit: int, gap: int, skip_double11: bool
    ) -> list[int]:
        out: list[int] = []
        candidates = [
            d
            for d in range(int(lo * self.D), int(hi * self.D))
            if self.dates[d].weekday() < weekday_limit
            and not (skip_double11 and self.dates[d].month == 11 and 8 <= self.dates[d].day <= 14)
        ]
        order = self.rng.permutation(len(candidates))
        for i in order:
            d = candidates[i]
            if all(abs(d - a) > gap for a in avoid | set(out)):
                out.append(d)
            if len(out) == k:
                break
        return out

    # ---- persons ------------------------------------------------------------------------------
    def _alloc(self, count: int, kind: int) -> np.ndarray:
        start = self.next_person
        if start + count > self.n:
            raise RuntimeError("person budget exceeded")  # pragma: no cover - sizes are computed
        self.next_person += count
        idx = np.arange(start, start + count)
        self.kind[idx] = kind
        return idx

    def persons(self) -> None:
        n, rng = self.n, self.rng
        self.kind = np.full(n, -1, np.int8)
        self.arrival = np.full(n, -1, np.int64)  # epoch s; -1 = member from before the period
        self.arrival_day = np.full(n, -10_000, np.int64)
        self.primary = np.full(n, -1, np.int16)
        self.eng = rng.gamma(2.0, 0.5, n)  # engagement, mean 1
        self.inviter = np.full(n, -1, np.int64)
        self.camp = np.full(n, -1, np.int16)
        self.generation = np.full(n, -1, np.int16)
        self.next_person = 0

        scale = n / 50_000
        self.fraud_plan: FraudPlan = {
            "device_farm": [int(rng.integers(15, 41)) for _ in range(max(1, round(4 * scale)))],
            "star_inviter": [int(rng.integers(12, 26)) for _ in range(max(1, round(3 * scale)))],
            "circular_referral": [int(rng.integers(2, 4)) for _ in range(max(2, round(8 * scale)))],
            "virtual_phone": max(3, round(40 * scale)),
        }
        n_fraud = (
            sum(s + 1 for s in self.fraud_plan["device_farm"])
            + sum(s + 1 for s in self.fraud_plan["star_inviter"])
            + sum(self.fraud_plan["circular_referral"])
            + self.fraud_plan["virtual_phone"]
        )
        self.n_fraud = n_fraud
        self.referred_target = round(0.30 * n)
        n_org = n - n_fraud - self.referred_target
        n_existing = round(0.40 * n_org)
        ex = self._alloc(n_existing, EXISTING)
        self.primary[ex] = rng.choice(6, n_existing, p=brand.ORGANIC_CHANNEL_SHARE)
        org = self._alloc(n_org - n_existing, ORGANIC)
        self._arrive_organic(org)

    def _arrive_organic(self, idx: np.ndarray) -> None:
        w = self.season / self.season.sum()
        days = self.rng.choice(self.D, len(idx), p=w)
        self.arrival[idx] = self.at(days)
        self.arrival_day[idx] = days
        self.primary[idx] = self.rng.choice(6, len(idx), p=brand.ORGANIC_CHANNEL_SHARE)
        self.rows.add(idx, self.arrival[idx], EV["signup"], PRIMARY)

    # ---- campaigns and referral cascades ------------------------------------------------------
    def campaigns(self) -> None:
        self.campaign_windows = []
        for c in brand.CAMPAIGNS:
            s = int(c["window"][0] * self.D)
            e = min(self.D - 1, int(c["window"][1] * self.D))
            self.campaign_windows.append((s, e))
        # metric anomaly: participation in the group-buy collapses for a day (a broken share card)
        gs, ge = self.campaign_windows[1]
        self.collapse_day = self._pick_days(gs / self.D + 0.05, ge / self.D - 0.1, 1, set())[0]
        self.super_spreaders: list[tuple[int, int, int]] = []  # (person, campaign, children)
        self.cascade_stats: list[dict[str, Any]] = []
        self.participants: list[set] = [set() for _ in brand.CAMPAIGNS]
        self.reached: list[int] = [0 for _ in brand.CAMPAIGNS]
        for ci, c in enumerate(brand.CAMPAIGNS):
            seeds, t_join = self._funnel(ci, np.arange(self.next_person))
            self._cascade(ci, c, seeds, t_join)
        # cascades that died out early leave room: more organic arrivals fill it
        short = self.n - self.n_fraud - self.next_person
        if short > 0:
            extra = self._alloc(short, ORGANIC)
            self._arrive_organic(extra)
            for ci in range(len(brand.CAMPAIGNS)):
                self._funnel(ci, extra)

    def _funnel(self, ci: int, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exposure → page view → join for persons of `pool` alive during campaign ci."""
        rng = self.rng
        s, e = self.campaign_windows[ci]
        alive = pool[(self.arrival_day[pool] <= e)]
        reached = alive[rng.random(len(alive)) < 0.55]
        lo = np.maximum(self.arrival_day[reached], s)
        day = lo + (rng.random(len(reached)) * (e - lo + 1)).astype(np.int64)
        t_exp = np.maximum(self.at(day), self.arrival[reached] + 600)
        t_exp = np.minimum(t_exp, self.T0 + (day + 1) * DAY - 1800)
        cid = ci
        self.rows.add(reached, t_exp, EV["exposure"], PRIMARY, cid)
        self.reached[ci] += len(reached)
        pv = rng.random(len(reached)) < 0.5 * np.clip(self.eng[reached], 0.3, 1.6)
        who, t_pv = reached[pv], t_exp[pv] + rng.integers(5, 600, pv.sum())
        self.rows.add(who, t_pv, EV["page_view"], FUNNEL, cid)
        join = rng.random(len(who)) < 0.45
        who, t_join = who[join], t_pv[join] + rng.integers(10, 300, join.sum())
        if ci == 1:  # the collapse day
            broken = (self.day_of(t_join) == self.collapse_day) & (rng.random(len(who)) < 0.85)
            who, t_join = who[~broken], t_join[~broken]
        self.rows.add(who, t_join, EV["join_campaign"], FUNNEL, cid)
        self.participants[ci].update(who.tolist())
        return who, t_join

    def _cascade(self, ci: int, c: brand.DemoCampaign, seeds: np.ndarray, t_seed: np.ndarray) -> None:
        """A branching process per campaign, simulated whole, then complete trees kept up to the cap."""
        rng = self.rng
        cap = round(self.referred_target * c["referral_share"])
        _, e = self.campaign_windows[ci]
        t_end = min(self.T0 + (e + 1) * DAY, self.T_END) - 60
        m, k = c["offspring_mean"], 0.35  # negative binomial: mean m, dispersion k (heavy tail)
        s = len(seeds)
        parent_parts = [np.full(s, -1, np.int64)]
        t_node_parts = [t_seed.astype(np.int64)]
        gen_parts = [np.zeros(s, np.int64)]
        root_parts = [np.arange(s)]
        joined_t_parts = [t_seed.astype(np.int64)]  # seeds are participants already
        joined_parts = [np.ones(s, bool)]
        n_super = max(1, round(s * 0.0025)) if s else 0
        supers = rng.choice(s, n_super, replace=False) if s else np.zeros(0, np.int64)
        level = 0
        frontier = np.arange(s)
        while len(frontier):
            off = rng.negative_binomial(k, k / (k + m), len(frontier))
            if level == 0:
                off[supers] = rng.integers(15, 45, n_super)
            parent_of = np.repeat(frontier, off)
            delay = (rng.exponential(1.2 * DAY, len(parent_of)) + 300).astype(np.int64)
            t_par = np.concatenate(joined_t_parts)[parent_of]
            t_child = t_par + delay
            ok = t_child < t_end
            parent_of, t_child = parent_of[ok], t_child[ok]
            if len(parent_of) == 0:
                break
            total = sum(len(x) for x in parent_parts)
            n_new = len(parent_of)
            j = rng.random(n_new) < 0.65  # invitees who take part invite the next generation
            parent_parts.append(parent_of)
            t_node_parts.append(t_child)
            gen_parts.append(np.full(n_new, level + 1))
            root_parts.append(np.concatenate(root_parts)[parent_of])
            joined_parts.append(j)
            joined_t_parts.append(t_child + rng.integers(60, 3600, n_new))
            frontier = total + np.flatnonzero(j)
            level += 1
        parent, t_node, gen, root = (
            np.concatenate(x) for x in (parent_parts, t_node_parts, gen_parts, root_parts)
        )
        joined, joined_t = np.concatenate(joined_parts), np.concatenate(joined_t_parts)
        # keep whole trees (super-spreaders first, then in random order) while they fit the cap
        sizes = np.bincount(root[s:], minlength=s)
        order = np.concatenate([supers, rng.permutation(np.setdiff1d(np.arange(s), supers))]).astype(np.int64)
        keep_root = np.zeros(s, bool)
        keep_root[order[np.cumsum(sizes[order]) <= cap]] = True
        kids = np.flatnonzero(keep_root[root] & (np.arange(len(root)) >= s))
        person = np.full(len(root), -1, np.int64)
        person[:s] = seeds
        person[kids] = self._alloc(len(kids), REFERRED)
        # the sub-trees arrive generation by generation (kids are in generation order already)
        inviter = person[parent[kids]]
        self._referred(
            person[kids],
            inviter,
            t_node[kids],
            ci,
            gen[kids],
            rng.choice(6, len(kids), p=c["invitee_channels"]),
        )
        part = kids[joined[kids]]
        self.rows.add(
            person[part], joined_t[part] - rng.integers(10, 50, len(part)), EV["page_view"], FUNNEL, ci
        )
        self.rows.add(person[part], joined_t[part], EV["join_campaign"], FUNNEL, ci)
        self.participants[ci].update(person[part].tolist())
        offspring = np.bincount(parent[kids], minlength=len(root))[np.concatenate([np.arange(s), part])]
        for j in supers[keep_root[supers]]:
            self.super_spreaders.append((int(seeds[j]), ci, int(offspring[j])))
        self.cascade_stats.append(
            {
                "campaign_id": c["campaign_id"],
                "seeds": int(s),
                "referred": int(len(kids)),
                "generations": int(gen[kids].max()) if len(kids) else 0,
                "inviters": int((offspring > 0).sum()),
                "offspring_mean": round(float(offspring.mean()), 4) if len(offspring) else 0.0,
                "offspring_max": int(offspring.max()) if len(offspring) else 0,
                "offspring_var": round(float(offspring.var()), 4) if len(offspring) else 0.0,
            }
        )

    def _referred(self, kids, inviter, t_child, ci, generation, primary) -> None:
        """Arrival of invitees: the inviter's share, the click, sign-up and the accepted invite."""
        rng = self.rng
        self.arrival[kids] = t_child
        self.arrival_day[kids] = self.day_of(t_child)
        self.inviter[kids] = inviter
        self.camp[kids] = ci
        self.generation[kids] = generation
        self.primary[kids] = primary
        t_click = t_child - rng.integers(30, 1800, len(kids))
        t_share = t_click - rng.integers(60, 6 * 3600, len(kids))
        self.rows.add(inviter, t_share, EV["invite_share"], FUNNEL, ci, inviter)
        self.rows.add(kids, t_click, EV["invite_click"], PRIMARY, ci, inviter)
        self.rows.add(kids, t_child, EV["signup"], PRIMARY, ci)
        self.rows.add(
            kids, t_child + rng.integers(2, 60, len(kids)), EV["invite_accept"], PRIMARY, ci, inviter
        )
        # friends who click a share and do not sign up (existing members)
        n_more = rng.poisson(0.6 * len(kids))
        if n_more:
            src = rng.integers(0, len(kids), n_more)
            members = np.flatnonzero(self.kind[: self.next_person] == EXISTING)
            clicker = members[rng.integers(0, len(members), n_more)]
            self.rows.add(
                clicker,
                t_share[src] + rng.integers(60, 7200, n_more),
                EV["invite_click"],
                PRIMARY,
                ci,
                inviter[src],
            )

    # ---- fraud ------------------------------------------------------------------------------
    def fraud(self) -> None:
        rng = self.rng
        self.fraud_rows: list[dict] = []  # invitee, inviter, pattern, campaign, group
        self.farm_of = np.full(self.n, -1, np.int64)  # farm index for device/ip/ua override
        self.fraud_devices: list[list[int]] = []
        self.virtual_phone = np.zeros(self.n, bool)
        s_inv, e_inv = self.campaign_windows[0]
        s_as, e_as = self.campaign_windows[2]

        def window_time(ci: int, margin_days: int = 2) -> int:
            s, e = self.campaign_windows[ci]
            d = int(rng.integers(s, max(s + 1, e - margin_days)))
            return int(self.at(np.array([d]))[0])

        for g, size in enumerate(self.fraud_plan["device_farm"]):
            ci = 0 if g % 2 == 0 else 2
            boss = self._alloc(1, FRAUD_INVITER)
            t0 = window_time(ci)
            self._fraud_inviter(boss, t0, ci)
            kids = self._alloc(size, FRAUD_INVITEE)
            # a burst: all sign up within ~20 minutes
            t = t0 + 1800 + np.sort(rng.integers(0, 1200, size))
            self._referred(kids, np.repeat(boss, size), t, ci, 1, np.full(size, CH["miniprogram"]))
            self.farm_of[kids] = g
            self.fraud_devices.append([int(x) for x in rng.integers(2, 4, 1)])  # device count
            for kid in kids:
                self.fraud_rows.append(
                    {
                        "person": int(kid),
                        "inviter": int(boss[0]),
                        "pattern": "device_farm",
                        "campaign": ci,
                        "group": f"farm_{g + 1}",
                    }
                )
        for g, size in enumerate(self.fraud_plan["star_inviter"]):
            boss = self._alloc(1, FRAUD_INVITER)
            t0 = window_time(0, 6)
            self._fraud_inviter(boss, t0, 0)
            kids = self._alloc(size, FRAUD_INVITEE)
            t = t0 + 3600 + np.sort(rng.integers(0, 5 * DAY, size))
            self._referred(
                kids, np.repeat(boss, size), t, 0, 1, rng.choice([CH["miniprogram"], CH["app"]], size)
            )
            for kid in kids:
                self.fraud_rows.append(
                    {
                        "person": int(kid),
                        "inviter": int(boss[0]),
                        "pattern": "star_inviter",
                        "campaign": 0,
                        "group": f"star_{g + 1}",
                    }
                )
        for g, size in enumerate(self.fraud_plan["circular_referral"]):
            ring = self._alloc(size, FRAUD_INVITEE)
            t0 = window_time(2)
            t = t0 + np.sort(rng.integers(0, 6 * 3600, size))
            inviter = np.roll(ring, 1)  # A←C, B←A, C←B: every member is some other member's invitee
            self._referred(ring, inviter, t, 2, 1, np.full(size, CH["miniprogram"]))
            self.rows.add(ring, t + 600, EV["join_campaign"], FUNNEL, 2)
            for kid, inv in zip(ring, inviter, strict=True):
                self.fraud_rows.append(
                    {
                        "person": int(kid),
                        "inviter": int(inv),
                        "pattern": "circular_referral",
                        "campaign": 2,
                        "group": f"ring_{g + 1}",
                    }
                )
        k = self.fraud_plan["virtual_phone"]
        kids = self._alloc(k, FRAUD_INVITEE)
        legit = np.array(sorted(self.participants[0]))
        inviters = legit[rng.integers(0, len(legit), k)]
        t = np.maximum(self.arrival[inviters], self.T0 + s_inv * DAY) + rng.integers(3600, 5 * DAY, k)
        t = np.minimum(t, self.T0 + (e_inv + 1) * DAY - 3600)
        self._referred(kids, inviters, t, 0, 1, np.full(k, CH["app"]))
        self.virtual_phone[kids] = True
        for kid, inv in zip(kids, inviters, strict=True):
            self.fraud_rows.append(
                {
                    "person": int(kid),
                    "inviter": int(inv),
                    "pattern": "virtual_phone",
                    "campaign": 0,
                    "group": "",
                }
            )
        assert self.next_person == self.n

    def _fraud_inviter(self, boss: np.ndarray, t0: int, ci: int) -> None:
        self.arrival[boss] = t0 - 3 * DAY
        self.arrival_day[boss] = self.day_of(self.arrival[boss])
        self.primary[boss] = CH["miniprogram"]
        self.rows.add(boss, self.arrival[boss], EV["signup"], PRIMARY)
        self.rows.add(boss, t0, EV["join_campaign"], FUNNEL, ci)

    # ---- channels, identifiers, devices, addresses --------------------------------------------
    def identities(self) -> None:
        rng, n = self.rng, self.n
        chans = rng.random((n, 6)) < np.array(brand.SECONDARY_CHANNEL_P)
        fraud = self.kind >= FRAUD_INVITEE
        chans[fraud] = False
        chans[np.arange(n), self.primary] = True
        chans[chans[:, CH["wecom"]], CH["miniprogram"]] = True  # WeCom members buy in the mini-program
        self.koc = np.array(sorted({p for p, _, _ in self.super_spreaders}), dtype=np.int64)
        chans[self.koc, CH["wecom"]] = True
        chans[self.koc, CH["miniprogram"]] = True
        self.chans = chans
        # the channel a person uses for campaigns: the mini-program if they have it, else the app
        funnel = self.primary.astype(np.int64).copy()
        funnel[chans[:, CH["app"]]] = CH["app"]
        funnel[chans[:, CH["miniprogram"]]] = CH["miniprogram"]
        self.funnel_ch = funnel

        has = np.zeros((n, len(brand.ID_TYPES)), bool)
        for c, name in enumerate(brand.CHANNELS):
            has[chans[:, c], IDT[brand.NATIVE_ID[name]]] = True
        wx = chans[:, CH["wecom"]] | chans[:, CH["miniprogram"]]
        has[:, IDT["unionid"]] = wx & ((rng.random(n) < 0.9) | chans[:, CH["wecom"]])
        has[:, IDT["phone"]] |= (rng.random(n) < 0.7) & ~fraud
        has[self.virtual_phone, IDT["phone"]] = True
        has[:, IDT["device_id"]] = chans[:, CH["app"]]
        self.has = has

        values: dict[str, list[str]] = {}
        counts = has.sum(axis=0)
        values["unionid"] = _prefixed("o", _rand_str(rng, counts[IDT["unionid"]], 27, ALNUM + "-_"))
        values["openid"] = _prefixed("oTW", _rand_str(rng, counts[IDT["openid"]], 25, ALNUM + "-_"))
        values["external_userid"] = _prefixed("wm", _rand_str(rng, counts[IDT["external_userid"]], 30, ALNUM))
        values["douyin_openid"] = _prefixed(
            "_000", _rand_str(rng, counts[IDT["douyin_openid"]], 32, ALNUM + "-")
        )
        values["xhs_id"] = list(_rand_str(rng, counts[IDT["xhs_id"]], 24, HEX))
        app_ids = rng.choice(9 * 10**8, counts[IDT["app_user"]], replace=False) + 10**8
        values["app_user"] = [f"tw{x}" for x in app_ids.tolist()]
        # phones: unique 11-digit numbers; the virtual-operator ranges only for the fraud accounts
        phone_owners = np.flatnonzero(has[:, IDT["phone"]])
        nums = rng.choice(len(brand.PHONE_PREFIXES) * 10**8, len(phone_owners), replace=False)
        prefixes = np.array(brand.PHONE_PREFIXES)[nums // 10**8]
        vmask = self.virtual_phone[phone_owners]
        prefixes[vmask] = rng.choice(brand.VIRTUAL_PREFIXES, vmask.sum())
        values["phone"] = [
            f"{p}{r:08d}" for p, r in zip(prefixes.tolist(), (nums % 10**8).tolist(), strict=True)
        ]
        dev = _rand_str(rng, counts[IDT["device_id"]], 32, "0123456789ABCDEF")
        values["device_id"] = [f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}" for d in dev.tolist()]

        # one table of identifiers; ident[p, t] indexes it (-1: the person has none of type t)
        table_type: list[int] = []
        table_value: list[str] = []
        table_person: list[int] = []
        self.ident = np.full((n, len(brand.ID_TYPES)), -1, np.int64)
        for t, name in enumerate(brand.ID_TYPES):
            owners = np.flatnonzero(has[:, t])
            self.ident[owners, t] = len(table_value) + np.arange(len(owners))
            table_type.extend([t] * len(owners))
            table_value.extend(values[name])
            table_person.extend(owners.tolist())
        self.id_type_of = np.array(table_type, np.int16)
        self.id_value = table_value
        self.id_person = np.array(table_person, np.int64)

    def devices_and_addresses(self) -> None:
        rng, n = self.rng, self.n
        # every person browses from a handset; app users' device id is also an identifier
        self.device_values = list(
            self.id_value[i] for i in self.ident[self.has[:, IDT["device_id"]], IDT["device_id"]]
        )
        n_other = n - len(self.device_values)
        other = _rand_str(rng, n_other, 32, "0123456789ABCDEF")
        self.device_values += [f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}" for d in other.tolist()]
        self.device = np.empty(n, np.int64)
        app = self.has[:, IDT["device_id"]]
        self.device[app] = np.arange(app.sum())
        self.device[~app] = app.sum() + np.arange(n_other)
        blocks = np.array(
            [
                [117, 136],
                [223, 104],
                [112, 96],
                [120, 229],
                [183, 192],
                [36, 112],
                [39, 144],
                [111, 30],
                [124, 64],
                [58, 246],
                [221, 178],
                [114, 84],
            ]
        )
        pool = n // 3 + 50

        def ips(count: int) -> list[str]:
            b = blocks[rng.integers(0, len(blocks), count)]
            c = rng.integers(0, 256, (count, 2))
            return [f"{x}.{y}.{z}.{w}" for (x, y), (z, w) in zip(b.tolist(), c.tolist(), strict=True)]

        self.ip_values = ips(n) + ips(pool)  # home addresses, then carrier NAT pool
        self.home_ip = np.arange(n)
        self.pool_lo, self.pool_hi = n, n + pool
        self.ua = rng.integers(0, len(brand.USER_AGENTS) - 1, n)
        self.ua[self.primary == CH["store"]] = len(brand.USER_AGENTS) - 1
        self.ua_values = list(brand.USER_AGENTS) + [brand.FARM_USER_AGENT]
        self.fixed_ip = np.full(n, -1, np.int64)
        self.fixed_device = np.full(n, -1, np.int64)
        self.office_hours_ip = np.full(n, -1, np.int64)
        self.fraud_truth_ip: dict[str, str] = {}
        self.fraud_truth_devices: dict[str, list[str]] = {}
        # device farms: 2-3 handsets, one data-centre address, one emulator user agent
        for g, (count,) in enumerate(self.fraud_devices):
            members = np.flatnonzero(self.farm_of == g)
            devs = _rand_str(rng, count, 32, "0123456789ABCDEF")
            base = len(self.device_values)
            self.device_values += [f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}" for d in devs.tolist()]
            self.fixed_device[members] = base + rng.integers(0, count, len(members))
            ip = f"47.{96 + g}.{int(rng.integers(0, 256))}.{int(rng.integers(2, 255))}"
            self.ip_values.append(ip)
            self.fixed_ip[members] = len(self.ip_values) - 1
            self.ua[members] = len(self.ua_values) - 1
            self.fraud_truth_ip[f"farm_{g + 1}"] = ip
            self.fraud_truth_devices[f"farm_{g + 1}"] = self.device_values[base : base + count]
        self._lookalikes()

    def _lookalikes(self) -> None:
        """Honest behaviour that resembles fraud: offices sharing an IP, families sharing a handset."""
        rng = self.rng
        scale = self.n / 50_000
        self.lookalikes: dict[str, list[dict[str, Any]]] = {
            "office_shared_ip": [],
            "family_shared_device": [],
        }
        # offices: an inviter and the colleagues they invited, on one office IP during work hours
        referred = np.flatnonzero(self.kind == REFERRED)
        counts = np.bincount(self.inviter[referred], minlength=self.n)
        legit_inviters = np.flatnonzero((counts >= 3) & (self.kind <= REFERRED))
        chosen = rng.permutation(legit_inviters)[: max(1, round(3 * scale))]
        for g, boss in enumerate(chosen.tolist()):
            colleagues = referred[self.inviter[referred] == boss]
            members = np.concatenate([[boss], colleagues])
            ip = f"101.{230 + g % 20}.{int(rng.integers(0, 256))}.{int(rng.integers(2, 255))}"
            self.ip_values.append(ip)
            self.office_hours_ip[members] = len(self.ip_values) - 1
            self.lookalikes["office_shared_ip"].append(
                {"ip": ip, "inviter": int(boss), "members": members.tolist()}
            )
        # families: 2-4 app users on one handset who never invite each other
        app_people = np.flatnonzero(self.has[:, IDT["app_user"]] & (self.kind <= ORGANIC))
        n_fam = max(2, round(10 * scale))
        pick = rng.permutation(app_people)
        pos = 0
        for _ in range(n_fam):
            size = int(rng.integers(2, 5))
            members = pick[pos : pos + size]
            pos += size
            self.fixed_device[members] = self.device[members[0]]
            self.lookalikes["family_shared_device"].append(
                {"device_id": self.device_values[self.device[members[0]]], "members": members.tolist()}
            )

    # ---- activity -----------------------------------------------------------------------------
    def activity(self) -> None:
        rng, n, D = self.rng, self.n, self.D
        d = np.arange(D)[None, :]
        a = self.arrival_day[:, None]
        k = d - a
        p = np.zeros((n, D), np.float32)
        new = (self.kind == ORGANIC) | (self.kind == REFERRED) | (self.kind == FRAUD_INVITER)
        boost = np.where(self.kind == REFERRED, 1.25, 1.0)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            decay = 0.27 * np.power(np.maximum(k, 1), -0.5)
        p_new = np.clip(self.eng[:, None] * boost * decay * self.season[None, :], 0, 0.95)
        p = np.where(new[:, None] & (k >= 1), p_new, p)
        existing = self.kind == EXISTING
        p[existing] = np.clip(self.eng[existing, None] * 0.055 * self.season[None, :], 0, 0.95)
        active = rng.random((n, D), dtype=np.float32) < p
        # the sign-up day is always active (fraud invitees: only that day — they churn at once)
        has_arrival = self.arrival_day >= 0
        active[np.flatnonzero(has_arrival), self.arrival_day[has_arrival]] = True
        person, day = np.nonzero(active)
        is_arrival = day == self.arrival_day[person]
        start = self.T0 + day * DAY + self.tod(len(day))
        start = np.where(is_arrival, np.maximum(start, self.arrival[person] + 90), start)
        # each active day is one session on the primary channel (75%) or another channel of theirs
        ch = self.primary[person].astype(np.int64)
        other = rng.random(len(person)) < 0.25
        keys = rng.random((other.sum(), 6)) * self.chans[person[other]]
        ch[other] = np.argmax(keys, axis=1)
        # how many events per session: calibrated to the requested events per person
        funnel_rows = sum(len(c["person"]) for c in self.rows.chunks)
        target = max(0.0, self.spec.events_per_person * n - funnel_rows - 0.03 * n * 40)
        lam = max(0.2, target / max(1, len(person)) - 1)
        size = 1 + rng.poisson(
            lam * np.clip(self.eng[person], 0.4, 2.0) / np.clip(self.eng[person], 0.4, 2.0).mean(),
            len(person),
        )
        size[self.kind[person] == FRAUD_INVITEE] = rng.integers(
            1, 3, (self.kind[person] == FRAUD_INVITEE).sum()
        )
        rank = _group_ranks(size)
        rp = np.repeat(np.arange(len(person)), size)
        # a session that would run past midnight starts earlier instead (one calendar day each)
        start = np.minimum(start, self.T0 + (day + 1) * DAY - 1 - size * 50)
        ts = start[rp] + rank * 50 + rng.integers(0, 50, len(rp))
        rch = ch[rp]
        u = rng.random(len(rp))
        cum = np.cumsum(ACTIVITY_MIX, axis=1)[rch]
        ev = ACTIVITY[np.minimum((u[:, None] > cum).sum(axis=1), len(ACTIVITY) - 1)]
        self.rows.add(person[rp], ts, 0, rch)
        self.rows.chunks[-1]["event"] = ev.astype(np.int16)
        self.activity_lambda = lam

    # ---- orders -------------------------------------------------------------------------------
    def orders(self) -> None:
        rng, n = self.rng, self.n
        kind = self.kind
        p_first = np.select(
            [kind == EXISTING, kind == ORGANIC, kind == REFERRED, kind == FRAUD_INVITER],
            [0.55, 0.30, 0.40, 0.5],
            0.0,
        )
        p_first = np.where((kind == REFERRED) & (self.camp == 1), 0.55, p_first)  # a group buy is a purchase
        buys = rng.random(n) < p_first * np.clip(self.eng, 0.5, 1.5)
        first_t = np.where(
            kind == EXISTING,
            self.T0 + (rng.random(n) * self.D * DAY).astype(np.int64),
            self.arrival + (rng.exponential(1.5 * DAY, n)).astype(np.int64) + 600,
        )
        buys &= first_t < self.T_END - 3600
        buyer = np.flatnonzero(buys)
        rate = np.select([kind == EXISTING, kind == REFERRED], [1.6, 1.0], 0.7)[buyer]
        repeat = rng.poisson(rate * self.eng[buyer])
        person = np.concatenate([buyer, np.repeat(buyer, repeat)])
        ft = first_t[buyer]
        rep_t = np.repeat(ft, repeat) + (
            rng.random(repeat.sum()) * (self.T_END - 3600 - np.repeat(ft, repeat))
        )
        ts = np.concatenate([ft, rep_t.astype(np.int64)])
        is_first = np.concatenate([np.ones(len(buyer), bool), np.zeros(repeat.sum(), bool)])
        # log-normal baskets, AOV about ¥90; the 双11 basket is bigger
        amount = np.round(rng.lognormal(np.log(72), 0.6, len(person)) * 10) * 10  # fen, whole jiao
        camp = np.where(is_first & (kind[person] == REFERRED), self.camp[person], -1)
        # fraud accounts: one minimum order right after sign-up, then nothing
        fr = np.flatnonzero(np.isin(kind, [FRAUD_INVITEE]))
        farm_like = fr[(self.farm_of[fr] >= 0) | (rng.random(len(fr)) < 0.4)]
        farm_like = farm_like[
            ~np.isin(farm_like, [r["person"] for r in self.fraud_rows if r["pattern"] == "star_inviter"])
        ]
        mins = np.array([int(round(c["rules"]["min_order_yuan"] * 100)) or 990 for c in brand.CAMPAIGNS])
        person = np.concatenate([person, farm_like])
        ts = np.concatenate([ts, self.arrival[farm_like] + rng.integers(120, 3000, len(farm_like))])
        amount = np.concatenate([amount, mins[self.camp[farm_like]]])
        camp = np.concatenate([camp, self.camp[farm_like]])
        # metric anomaly: a conversion spike — app orders on one day at four times their level
        app_people = np.flatnonzero((self.primary == CH["app"]) & (kind <= REFERRED))
        day = self.day_of(ts)
        self.orders_spike_day = self._pick_days(0.2, 0.8, 1, {self.collapse_day})[0]
        base = int(((day == self.orders_spike_day) & (self.primary[person] == CH["app"])).sum())
        extra = max(3, 3 * base)
        alive = app_people[self.arrival[app_people] < self.T0 + self.orders_spike_day * DAY]
        spike_p = alive[rng.integers(0, len(alive), extra)]
        person = np.concatenate([person, spike_p])
        ts = np.concatenate([ts, self.at(np.full(extra, self.orders_spike_day))])
        amount = np.concatenate([amount, np.round(rng.lognormal(np.log(72), 0.6, extra) * 10) * 10])
        camp = np.concatenate([camp, np.full(extra, -1)])
        amount = amount.astype(np.int64)
        amount[self.day_of(ts) == self._day_of_date(11, 11)] = (
            amount[self.day_of(ts) == self._day_of_date(11, 11)] * 1.4
        ).astype(np.int64)
        order = np.argsort(ts, kind="stable")
        self.o_person, self.o_ts, self.o_amount, self.o_camp = (
            person[order],
            ts[order],
            amount[order],
            camp[order],
        )
        m = len(self.o_person)
        u = rng.random(m)
        self.o_status = np.where(
            u < 0.025, 2, np.where(u < 0.025 + 0.05, 1, 0)
        )  # 0 paid, 1 refunded, 2 cancelled
        self.o_status[self.kind[self.o_person] == FRAUD_INVITEE] = 0
        self.o_refund_ts = self.o_ts + rng.integers(3600, 7 * DAY, m)
        self.o_channel = ORDER_CH[self.primary[self.o_person]]
        # persons whose order channel id they lack (a store-primary person has a phone) are covered:
        need = NATIVE[self.o_channel]
        lacking = self.ident[self.o_person, need] < 0
        self.o_channel[lacking] = self.primary[self.o_person[lacking]]
        self.orders_spike = {
            "metric": "orders",
            "channel": "app",
            "date": self.date_str(self.orders_spike_day),
            "factor": round((base + extra) / max(1, base), 2),
        }

    def _day_of_date(self, month: int, day: int) -> int:
        for i, d in enumerate(self.dates):
            if (d.month, d.day) == (month, day):
                return i
        return -1

    # ---- community ----------------------------------------------------------------------------
    def messages(self) -> None:
        rng = self.rng
        members = np.flatnonzero(self.chans[:, CH["wecom"]] & (self.kind <= REFERRED))
        n_groups = int(np.clip(round(len(members) / 450), 4, 40))
        self.n_groups = n_groups
        group = rng.integers(0, n_groups, len(members))
        koc = np.isin(members, self.koc)
        per = rng.poisson(np.where(koc, 80, 2.5 * self.eng[members]))
        person = np.repeat(members, per)
        g = np.repeat(group, per)
        first = np.maximum(self.arrival_day[person], 0)
        day = first + (rng.random(len(person)) * (self.D - first)).astype(np.int64)
        cats = ("positive", "question", "neutral", "complaint")
        cat = rng.choice(4, len(person), p=[0.31, 0.22, 0.458, 0.012])
        # complaint storms: a few groups on one day each (a delivery failure, a broken coupon)
        storms = []
        storm_days = self._pick_days(0.3, 0.9, max(2, min(4, n_groups // 8)), set())
        for sd in storm_days:
            sg = int(rng.integers(0, n_groups))
            in_group = np.flatnonzero(group == sg)
            k = 25
            who = members[in_group[rng.integers(0, len(in_group), k)]]
            person = np.concatenate([person, who])
            g = np.concatenate([g, np.full(k, sg)])
            day = np.concatenate([day, np.full(k, sd)])
            cat = np.concatenate([cat, np.where(rng.random(k) < 0.6, 3, rng.choice(3, k))])
            storms.append((sg, sd))
        ts = self.at(day)
        order = np.argsort(ts, kind="stable")
        person, g, ts, cat = person[order], g[order], ts[order], cat[order]
        texts = []
        tpl_idx = rng.random(len(person))
        prod = rng.integers(0, len(brand.PRODUCTS), len(person))
        num = rng.integers(2, 30, len(person))
        tails = ("", "", "", "～", "！", "😂", "👍", "[捂脸]", "[呲牙]")
        tail = rng.integers(0, len(tails), len(person))
        for c, u, pr, nu, ta in zip(
            cat.tolist(), tpl_idx.tolist(), prod.tolist(), num.tolist(), tail.tolist(), strict=True
        ):
            tpls = brand.MESSAGE_TEMPLATES[cats[c]]
            texts.append(tpls[int(u * len(tpls))].format(p=brand.PRODUCTS[pr], n=nu) + tails[ta])
        self.m_person, self.m_group, self.m_ts, self.m_cat, self.m_text = person, g, ts, cat, texts
        # negative share per group-day, computed from what was written
        gd = g * self.D + self.day_of(ts)
        tot = np.bincount(gd, minlength=n_groups * self.D)
        neg = np.bincount(gd, weights=(cat == 3), minlength=n_groups * self.D)
        hot = np.flatnonzero((tot >= 10) & (neg / np.maximum(tot, 1) > 0.05))
        self.negative_days = [
            {
                "group_id": self.group_id(int(x // self.D)),
                "date": self.date_str(int(x % self.D)),
                "messages": int(tot[x]),
                "negative_share": round(float(neg[x] / tot[x]), 4),
                "injected": (int(x // self.D), int(x % self.D)) in storms,
            }
            for x in hot
        ]

    @staticmethod
    def group_id(g: int) -> str:
        return f"wrTW{g + 1:04d}"

    # ---- assembling events, quality injections ------------------------------------------------
    def assemble_events(self) -> dict[str, np.ndarray]:
        rng = self.rng
        ev = self.rows.concat()
        person = ev["person"]
        ch = ev["channel"].astype(np.int64)
        ch = np.where(ch == PRIMARY, self.primary[person], ch)
        ch = np.where(ch == FUNNEL, self.funnel_ch[person], ch)
        ev["channel"] = ch
        # volume anomalies: a douyin outage day, a xiaohongshu spike day
        outage, spike = self._pick_days(0.25, 0.85, 2, {self.collapse_day, self.orders_spike_day})
        day = self.day_of(ev["ts"])
        # the outage hits the channel's tracking (behaviour beacons); server-side referral records
        # (share, click, sign-up, accepted invite, join) survive, so the referral truth still holds
        beacon = np.isin(ev["event"], [EV["exposure"], EV["page_view"], *ACTIVITY.tolist()])
        drop = (ch == CH["douyin"]) & (day == outage) & beacon & (rng.random(len(ch)) >= 0.15)
        keep = ~drop
        ev = {c: v[keep] for c, v in ev.items()}
        day = day[keep]
        sp = np.flatnonzero(
            (ev["channel"] == CH["xiaohongshu"]) & (day == spike) & (ev["event"] >= EV["app_open"])
        )
        # activity ×6 on that day: enough to lift the whole channel-day well past its normal swing
        copies = np.tile(sp, 5)
        add = {c: v[copies] for c, v in ev.items()}
        add["ts"] = self.T0 + spike * DAY + self.tod(len(copies))
        ev = {c: np.concatenate([ev[c], add[c]]) for c in ev}
        self.volume_anomalies = [
            {"channel": "douyin", "date": self.date_str(outage), "factor": 0.15},
            {"channel": "xiaohongshu", "date": self.date_str(spike), "factor": 6.0},
        ]
        order = np.lexsort((ev["event"], ev["channel"], ev["person"], ev["ts"]))
        ev = {c: v[order] for c, v in ev.items()}
        # the only same-content duplicates must be the injected ones: accidental twins (same
        # person, event and channel within the quality report's 1 s window) are moved 2 s apart
        for _ in range(20):
            order = np.lexsort((ev["ts"], ev["channel"], ev["event"], ev["person"]))
            ev = {c: v[order] for c, v in ev.items()}
            twin = np.flatnonzero(
                (np.diff(ev["ts"]) <= 1)
                & (np.diff(ev["person"]) == 0)
                & (np.diff(ev["event"]) == 0)
                & (np.diff(ev["channel"]) == 0)
            )
            if len(twin) == 0:
                break
            ev["ts"][twin + 1] += 2
        order = np.lexsort((ev["event"], ev["channel"], ev["person"], ev["ts"]))
        ev = {c: v[order] for c, v in ev.items()}
        m = len(ev["ts"])
        # received_at: seconds to minutes after the event; a few arrive days late
        delay = rng.exponential(40, m).astype(np.int64) + 1
        late = rng.random(m) < 0.004
        delay[late] = rng.integers(2 * DAY, 6 * DAY, late.sum())
        ev["received"] = ev["ts"] + delay
        ev["late"] = late
        # device, address, user agent
        p = ev["person"]
        dev = np.where(self.fixed_device[p] >= 0, self.fixed_device[p], self.device[p])
        ip = np.where(rng.random(m) < 0.65, self.home_ip[p], rng.integers(self.pool_lo, self.pool_hi, m))
        local = (ev["ts"] - self.T0) % DAY
        weekday = np.array([d.weekday() < 5 for d in self.dates])[
            np.clip(self.day_of(ev["ts"]), 0, self.D - 1)
        ]
        office = (self.office_hours_ip[p] >= 0) & weekday & (local >= 9 * 3600) & (local < 18 * 3600)
        ip = np.where(office, self.office_hours_ip[p], ip)
        ip = np.where(self.fixed_ip[p] >= 0, self.fixed_ip[p], ip)
        ev["device"], ev["ip"] = dev, ip
        return ev

    # ---- writing ------------------------------------------------------------------------------
    def write(self, out_dir: Path) -> dict[str, Path]:
        rng = self.rng
        files_dir = out_dir / "files"
        files_dir.mkdir(parents=True, exist_ok=True)
        ev = self.assemble_events()
        m = len(ev["ts"])
        p = ev["person"]
        ch = ev["channel"]
        id_idx = self.ident[p, NATIVE[ch]]
        assert (id_idx >= 0).all(), "every event's channel id must exist"
        ref = ev["ref"]
        has_ref = (ref >= 0) & (ev["event"] == EV["invite_accept"])
        ref_ch = np.where(ref >= 0, self.funnel_ch[np.maximum(ref, 0)], 0)
        ref_idx = np.where(has_ref, self.ident[np.maximum(ref, 0), NATIVE[ref_ch]], -1)
        # invite codes: one per (inviter, campaign), shown on shares, clicks and accepted invites
        code_owner = np.where(ev["event"] == EV["invite_share"], p, ref)
        code_key = np.where(code_owner >= 0, code_owner * 4 + ev["campaign"], -1)
        uniq, inv = np.unique(code_key, return_inverse=True)
        codes = _rand_str(rng, len(uniq), 8, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789").tolist()
        code_idx = np.where(code_key >= 0, inv, -1)
        # duplicated content: the same action exported twice under two event ids
        dup = np.flatnonzero(rng.random(m) < 0.003)
        sel = np.concatenate([np.arange(m), dup])
        sel.sort(kind="stable")
        n_rows = len(sel)
        event_ids = pc.binary_join_element_wise(
            "ev", pc.cast(pa.array(np.arange(n_rows, dtype=np.int64) + 10_000_000), pa.string()), ""
        )
        ids_table = self.id_value
        camp_names = [c["campaign_id"] for c in brand.CAMPAIGNS]
        cols = {
            "event_id": event_ids,
            "ts": _ts_strings(ev["ts"][sel], ISO_LOCAL),
            "user_id": _dict_strings(id_idx[sel], ids_table),
            "id_type": _dict_strings(self.id_type_of[id_idx[sel]], brand.ID_TYPES),
            "event": _dict_strings(ev["event"][sel], EVENTS),
            "channel": _dict_strings(ch[sel], brand.CHANNELS),
            "campaign_id": _dict_strings(
                np.where(ev["campaign"][sel] >= 0, ev["campaign"][sel], -1), camp_names
            ),
            "invite_code": _dict_strings(code_idx[sel], codes),
            "referrer_id": _dict_strings(ref_idx[sel], ids_table),
            "referrer_id_type": _dict_strings(
                np.where(ref_idx[sel] >= 0, self.id_type_of[np.maximum(ref_idx[sel], 0)], -1), brand.ID_TYPES
            ),
            "device_id": _dict_strings(ev["device"][sel], self.device_values),
            "ip": _dict_strings(ev["ip"][sel], self.ip_values),
            "received_at": _ts_strings(ev["received"][sel], ISO_LOCAL),
            # the user agent is captured by the H5 pages of campaigns and sign-up, not by every event
            "user_agent": _dict_strings(
                np.where(ev["event"][sel] < EV["app_open"], self.ua[p[sel]], -1), self.ua_values
            ),
        }
        table = pa.table(cols)
        sel_ch = ch[sel]
        store = sel_ch == CH["store"]
        wecom = sel_ch == CH["wecom"]
        online = ~(store | wecom)
        files: dict[str, Path] = {}
        self.file_truth: dict[str, dict] = {}
        self.bad_rows = {"bad_timestamp": 0, "missing_id": 0, "negative_amount": 0, "unknown_channel": 0}
        # the store POS export: GBK, naive local times, a store name column
        st = table.filter(pa.array(store))
        st = st.set_column(1, "ts", _ts_strings(ev["ts"][sel][store], NAIVE_LOCAL))
        st = st.set_column(
            st.schema.get_field_index("received_at"),
            "received_at",
            _ts_strings(ev["received"][sel][store], NAIVE_LOCAL),
        )
        st = st.append_column("store_name", _dict_strings(p[sel][store] % len(brand.STORES), brand.STORES))
        files["events_store_gbk"] = self._write_csv(files_dir / "events_store_gbk.csv", st, "gbk", bad=True)
        # the WeCom export: UTF-8 with BOM, and an overlapping re-export (same event ids twice)
        wc = table.filter(pa.array(wecom))
        overlap = min(wc.num_rows, max(5, wc.num_rows // 200))
        wc = pa.concat_tables([wc, wc.slice(0, overlap)])
        files["events_wecom_bom"] = self._write_csv(
            files_dir / "events_wecom_bom.csv", wc, "utf-8-sig", bad=True, duplicate_ids=overlap
        )
        files["events"] = self._write_csv(
            files_dir / "events.csv", table.filter(pa.array(online)), "utf-8", bad=True
        )
        self.quality = {
            "bad_rows": self.bad_rows,
            "duplicate_content_events": int(len(dup)),
            "late_events": int(ev["late"][sel].sum()),
            "out_of_range_amounts": 0,
            "volume_anomalies": self.volume_anomalies,
        }
        self.events_clean = n_rows
        self._ev_for_truth = (ev, sel)
        files["orders"] = self._write_orders(files_dir / "orders.csv")
        files["identities"] = self._write_identities(files_dir / "identities.csv")
        files["messages"] = self._write_messages(files_dir / "messages.jsonl")
        return files

    def _inject_bad(self, table: pa.Table, kinds: tuple[str, ...]) -> tuple[pa.Table, int]:
        """Malformed rows (copies of real rows with one broken field and a new id), placed at random."""
        rng = self.rng
        n = table.num_rows
        k_each = max(1, n // 4000)
        parts = []
        bad_ts = ["2026-02-30T12:00:00+08:00", "2026-13-01T09:00:00+08:00", "昨天 14:05", "31/12/2026 25:00"]
        for kind in kinds:
            src = rng.integers(0, n, k_each)
            rows = table.take(pa.array(src)).to_pydict()
            if kind == "bad_timestamp":
                rows["ts"] = [bad_ts[i % len(bad_ts)] for i in range(k_each)]
            elif kind == "missing_id":
                rows["user_id"] = [""] * k_each
            elif kind == "unknown_channel":
                rows["channel"] = [("fax", "pager", "传真")[i % 3] for i in range(k_each)]
            elif kind == "negative_amount":
                rows["amount"] = [f"-{a}" for a in rows["amount"]]
            id_col = "event_id" if "event_id" in rows else "order_id"
            rows[id_col] = [f"{v}-x{kind[:3]}{i}" for i, v in enumerate(rows[id_col])]
            parts.append(pa.table(rows, schema=table.schema))
            self.bad_rows[kind] += k_each
        bad = pa.concat_tables(parts)
        at = np.sort(rng.integers(0, n + 1, bad.num_rows))
        pieces, prev = [], 0
        for i, pos in enumerate(at.tolist()):
            pieces += [table.slice(prev, pos - prev), bad.slice(i, 1)]
            prev = pos
        pieces.append(table.slice(prev))
        return pa.concat_tables(pieces), bad.num_rows

    def _write_csv(
        self,
        path: Path,
        table: pa.Table,
        encoding: str,
        bad: bool = False,
        duplicate_ids: int = 0,
        kinds=("bad_timestamp", "missing_id", "unknown_channel"),
    ) -> Path:
        clean = table.num_rows - duplicate_ids
        n_bad = 0
        if bad:
            table, n_bad = self._inject_bad(table, kinds)
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(quoting_header="none"))
        data = buf.getvalue()
        if encoding == "gbk":
            data = data.decode("utf-8").encode("gbk")
        elif encoding == "utf-8-sig":
            data = b"\xef\xbb\xbf" + data
        path.write_bytes(data)
        self.file_truth[path.name] = {
            "encoding": encoding,
            "rows": table.num_rows,
            "bad_rows": n_bad,
            "duplicate_ids": duplicate_ids,
            "valid_rows": clean,
        }
        return path

    def _write_orders(self, path: Path) -> Path:
        rng = self.rng
        m = len(self.o_person)
        amount = self.o_amount.copy()
        # absurd but well-formed amounts: a typo'd price, a test order of one fen
        # (on existing members' orders only, so they skew GMV a little but not the new-user LTV story)
        members = np.flatnonzero((self.kind[self.o_person] == EXISTING) & (self.o_status != 2))
        absurd = np.sort(rng.choice(members, max(2, m // 5000), replace=False))
        amount[absurd] = np.where(np.arange(len(absurd)) % 2 == 0, 8_888_800, 1)
        self.quality["out_of_range_amounts"] = int(len(absurd))
        refunded = np.flatnonzero(self.o_status == 1)
        person = np.concatenate([self.o_person, self.o_person[refunded]])
        ts = np.concatenate([self.o_ts, self.o_refund_ts[refunded]])
        status = np.concatenate([np.where(self.o_status == 2, 2, 0), np.ones(len(refunded), np.int64)])
        # a cancelled order is exported once, with status cancelled; a refund is a second row
        oid = np.concatenate([np.arange(m), refunded])
        amt = np.concatenate([amount, amount[refunded]])
        camp = np.concatenate([self.o_camp, self.o_camp[refunded]])
        chan = np.concatenate([self.o_channel, self.o_channel[refunded]])
        order = np.lexsort((status, ts))
        person, ts, status, oid, amt, camp, chan = (
            x[order] for x in (person, ts, status, oid, amt, camp, chan)
        )
        id_idx = self.ident[person, NATIVE[chan]]
        cents = _dict_strings(np.abs(amt) % 100, [f".{c:02d}" for c in range(100)]).cast(pa.string())
        amount_str = pc.binary_join_element_wise(pc.cast(pa.array(amt // 100), pa.string()), cents, "")
        received = ts + rng.integers(1, 120, len(ts))
        table = pa.table(
            {
                "order_id": pc.binary_join_element_wise(
                    "TW", pc.cast(pa.array(oid + 20_000_000), pa.string()), ""
                ),
                "ts": _ts_strings(ts, ISO_LOCAL),
                "user_id": _dict_strings(id_idx, self.id_value),
                "id_type": _dict_strings(self.id_type_of[id_idx], brand.ID_TYPES),
                "amount": amount_str,
                "currency": pa.array(["CNY"] * len(ts)),
                "status": _dict_strings(status, ("paid", "refunded", "cancelled")),
                "channel": _dict_strings(chan, brand.CHANNELS),
                "campaign_id": _dict_strings(camp, [c["campaign_id"] for c in brand.CAMPAIGNS]),
                "received_at": _ts_strings(received, ISO_LOCAL),
            }
        )
        self.orders_truth = {
            "orders": m,
            "rows": len(ts),
            "paid": int((self.o_status == 0).sum()),
            "refunded": int(len(refunded)),
            "cancelled": int((self.o_status == 2).sum()),
        }
        self._order_rows = (person, status, oid, amt)
        self._absurd = absurd
        return self._write_csv(path, table, "utf-8", bad=True, kinds=("negative_amount",))

    def _write_identities(self, path: Path) -> Path:
        rng = self.rng
        a_all: list[np.ndarray] = []
        b_all: list[np.ndarray] = []
        src_all: list[np.ndarray] = []
        for ta, tb, prob, _source in LINKS:
            both = np.flatnonzero((self.ident[:, IDT[ta]] >= 0) & (self.ident[:, IDT[tb]] >= 0))
            present = both[rng.random(len(both)) < prob]
            if ta == "app_user" and tb == "phone":
                present = np.union1d(present, both[self.virtual_phone[both]])
            a_all.append(self.ident[present, IDT[ta]])
            b_all.append(self.ident[present, IDT[tb]])
            src_all.append(np.full(len(present), len(src_all)))
        a, b, src = np.concatenate(a_all), np.concatenate(b_all), np.concatenate(src_all)
        # family members each link their own account to the shared handset: evidence OneID must
        # refuse to merge (two app accounts on one device)
        fam_a, fam_b = [], []
        for fam in self.lookalikes["family_shared_device"]:
            shared = self.ident[fam["members"][0], IDT["device_id"]]
            for person in fam["members"][1:]:
                fam_a.append(self.ident[person, IDT["app_user"]])
                fam_b.append(shared)
        a = np.concatenate([a, fam_a]).astype(np.int64)
        b = np.concatenate([b, fam_b]).astype(np.int64)
        src = np.concatenate([src, np.full(len(fam_a), 4)])  # app_login
        owner = self.id_person[a]
        seen = np.where(self.arrival[owner] > 0, self.arrival[owner], self.T0) + rng.integers(
            0, 3 * DAY, len(a)
        )
        seen = np.minimum(seen, self.T_END - 1)
        order = np.lexsort((b, a, seen))
        a, b, src, seen = a[order], b[order], src[order], seen[order]
        table = pa.table(
            {
                "id_type_a": _dict_strings(self.id_type_of[a], brand.ID_TYPES),
                "id_a": _dict_strings(a, self.id_value),
                "id_type_b": _dict_strings(self.id_type_of[b], brand.ID_TYPES),
                "id_b": _dict_strings(b, self.id_value),
                "ts": _ts_strings(seen, ISO_LOCAL),
                "source": _dict_strings(src, [x[3] for x in LINKS]),
            }
        )
        self.links = (a, b)
        return self._write_csv(path, table, "utf-8")

    def _write_messages(self, path: Path) -> Path:
        ext = self.ident[self.m_person, IDT["external_userid"]]
        ts = _ts_strings(self.m_ts, ISO_LOCAL).to_pylist()
        lines = []
        for i, (g, e, t, text) in enumerate(
            zip(self.m_group.tolist(), ext.tolist(), ts, self.m_text, strict=True)
        ):
            lines.append(
                json.dumps(
                    {
                        "message_id": f"msg{i + 1:08d}",
                        "ts": t,
                        "group_id": self.group_id(g),
                        "user_id": self.id_value[e],
                        "id_type": "external_userid",
                        "text": text,
                        "channel": "wecom",
                    },
                    ensure_ascii=False,
                )
            )
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.file_truth[path.name] = {
            "encoding": "utf-8",
            "rows": len(lines),
            "bad_rows": 0,
            "duplicate_ids": 0,
            "valid_rows": len(lines),
        }
        return path

    # ---- ground truth -------------------------------------------------------------------------
    def ident_of(self, person: int, id_type: str | None = None, primary: bool = False) -> dict:
        """An identifier that names a person in the files: the native id of the channel they invite
        and are invited through (as in referrer_id), or of their primary channel."""
        native = NATIVE[self.primary[person] if primary else self.funnel_ch[person]]
        t = IDT[id_type] if id_type else native
        i = self.ident[person, t]
        return {"id_type": brand.ID_TYPES[t], "id": self.id_value[i]}

    def ground_truth(self, out_dir: Path) -> dict:
        truth_dir = out_dir / "truth"
        truth_dir.mkdir(parents=True, exist_ok=True)
        camp_ids = [c["campaign_id"] for c in brand.CAMPAIGNS]
        fraud = []
        for r in self.fraud_rows:
            inv = self.ident_of(r["inviter"])
            me = self.ident_of(r["person"])
            row = {
                "pattern": r["pattern"],
                "group": r["group"],
                "campaign_id": camp_ids[r["campaign"]],
                "id_type": me["id_type"],
                "id": me["id"],
                "inviter_id_type": inv["id_type"],
                "inviter_id": inv["id"],
                "phone": "",
            }
            if self.virtual_phone[r["person"]]:
                row["phone"] = self.ident_of(r["person"], "phone")["id"]
            fraud.append(row)
        fraud_path = truth_dir / "fraud_invitees.csv"
        pacsv.write_csv(pa.Table.from_pylist(fraud), fraud_path, pacsv.WriteOptions(quoting_header="none"))
        patterns: dict[str, int] = {}
        for row in fraud:
            patterns.setdefault(row["pattern"], 0)
            patterns[row["pattern"]] += 1
        n_referrals = int((self.inviter >= 0).sum())
        # identifiers of every person, for OneID accuracy checks
        pq.write_table(
            pa.table(
                {
                    "person": pa.array(self.id_person),
                    "id_type": _dict_strings(self.id_type_of, brand.ID_TYPES),
                    "id": pa.array(self.id_value),
                }
            ),
            truth_dir / "identifiers.parquet",
        )
        referred = np.flatnonzero(self.inviter >= 0)
        pq.write_table(
            pa.table(
                {
                    "invitee": pa.array(referred),
                    "inviter": pa.array(self.inviter[referred]),
                    "campaign_id": _dict_strings(self.camp[referred], camp_ids),
                    "generation": pa.array(self.generation[referred].astype(np.int64)),
                    "fraud": pa.array(self.kind[referred] == FRAUD_INVITEE),
                }
            ),
            truth_dir / "referrals.parquet",
        )
        pq.write_table(
            pa.table(
                {
                    "message_id": [f"msg{i + 1:08d}" for i in range(len(self.m_cat))],
                    "sentiment": _dict_strings(self.m_cat, ("positive", "question", "neutral", "complaint")),
                }
            ),
            truth_dir / "message_labels.parquet",
        )
        kpis = self._true_kpis()
        return {
            "brand": brand.BRAND,
            "generator": "liebian.demo.generator",
            "spec": self.spec.as_dict(),
            "timezone": "Asia/Shanghai",
            "channels": list(brand.CHANNELS),
            "campaigns": [
                {
                    "campaign_id": c["campaign_id"],
                    "name": c["name"],
                    "mechanism": c["mechanism"],
                    "rules": c["rules"],
                    "start": self.date_str(s),
                    "end": self.date_str(e),
                }
                for c, (s, e) in zip(brand.CAMPAIGNS, self.campaign_windows, strict=True)
            ],
            "sizes": {
                "persons": self.n,
                "persons_by_kind": {
                    KIND_NAMES[k]: int((self.kind == k).sum()) for k in range(len(KIND_NAMES))
                },
                "identifiers": len(self.id_value),
                "identity_links": len(self.links[0]),
                "events": self.events_clean,
                "orders": self.orders_truth,
                "messages": len(self.m_text),
                "groups": self.n_groups,
                "referrals": n_referrals,
            },
            "files": self.file_truth,
            "cascades": self.cascade_stats,
            "super_spreaders": self._true_super_spreaders(len(self.super_spreaders)),
            "koc_candidates": [
                {**self.ident_of(p), "campaign_id": camp_ids[c], "invitees": k}
                for p, c, k in sorted(self.super_spreaders, key=lambda x: -x[2])
            ],
            "fraud": {
                "share_of_referrals": round(len(fraud) / max(1, n_referrals), 4),
                "patterns": patterns,
                "farm_ips": self.fraud_truth_ip,
                "farm_devices": self.fraud_truth_devices,
                "farm_user_agent": brand.FARM_USER_AGENT,
                "invitees_file": "truth/fraud_invitees.csv",
                "invitees": fraud,
            },
            "lookalikes": {
                "office_shared_ip": [
                    {
                        "ip": o["ip"],
                        "inviter": self.ident_of(o["inviter"]),
                        "members": [self.ident_of(m, primary=True) for m in o["members"]],
                    }
                    for o in self.lookalikes["office_shared_ip"]
                ],
                "family_shared_device": [
                    {
                        "device_id": f["device_id"],
                        "members": [self.ident_of(m, primary=True) for m in f["members"]],
                    }
                    for f in self.lookalikes["family_shared_device"]
                ],
            },
            "quality": self.quality,
            "metric_anomalies": [
                {
                    "metric": "participation",
                    "campaign_id": "c_groupbuy",
                    "date": self.date_str(self.collapse_day),
                    "factor": 0.15,
                },
                self.orders_spike,
            ],
            "seasonality": {"weekend_factor": 1.3, "peak": {"date": "11-11", "factor": 2.6}},
            "community": {"negative_group_days": self.negative_days},
            "kpis": kpis,
            "truth_files": [
                "truth/fraud_invitees.csv",
                "truth/identifiers.parquet",
                "truth/referrals.parquet",
                "truth/message_labels.parquet",
            ],
        }

    def _true_super_spreaders(self, k: int) -> dict:
        """The k persons who truly brought the most people themselves: direct invitees that are not
        injected fraud, fraud inviters left out (k = the super-spreader seeds the cascades kept)."""
        legit = np.flatnonzero((self.inviter >= 0) & (self.kind != FRAUD_INVITEE))
        direct = np.bincount(self.inviter[legit], minlength=self.n)
        direct[self.kind == FRAUD_INVITER] = 0
        order = np.lexsort((np.arange(self.n), -direct))[:k]
        return {
            "definition": "the persons with the most direct invitees (injected fraud left out)",
            "persons": [
                {**self.ident_of(int(p)), "direct_invitees": int(direct[p])} for p in order if direct[p] > 0
            ],
        }

    def _true_kpis(self) -> dict:
        """KPIs by true person (before OneID): what a perfect pipeline would report."""
        ev, sel = self._ev_for_truth
        p, ts = ev["person"], ev["ts"]
        day = self.day_of(ts)
        active = np.zeros((self.n, self.D + 7), bool)
        # coming back is a choice: an ad exposure does not make a person active (as in analytics)
        chose = ev["event"] != EV["exposure"]
        active[p[chose], np.clip(day[chose], 0, self.D + 6)] = True
        new = np.flatnonzero((self.arrival_day >= 0) & (self.arrival_day < self.D - 1))
        d1 = float(active[new, self.arrival_day[new] + 1].mean())
        d1_by = {}
        for name, k in (("organic_new", ORGANIC), ("referred", REFERRED)):
            sub = new[self.kind[new] == k]
            d1_by[name] = round(float(active[sub, self.arrival_day[sub] + 1].mean()), 4)
        person, status, oid, amt = self._order_rows
        placed = status != 2
        orders_placed = len(np.unique(oid[placed]))
        refunded = len(np.unique(oid[status == 1]))
        first = np.unique(oid[placed], return_index=True)[1]
        gmv = int(amt[placed][first].sum())
        revenue = np.bincount(person[placed][first], weights=amt[placed][first], minlength=self.n)
        org = self.kind == ORGANIC
        ref = self.kind == REFERRED
        participants = set().union(*self.participants)
        reached = len(np.unique(p[ev["campaign"] >= 0]))
        new_total = int((self.arrival_day >= 0).sum())
        return {
            "persons": self.n,
            "new_persons": new_total,
            "referred_persons": int((self.inviter >= 0).sum()),
            "referral_share": round(float((self.inviter >= 0).sum() / max(1, new_total)), 4),
            "participants": len(participants),
            "reached": reached,
            "participation": round(len(participants) / max(1, reached), 4),
            "k_factor": round(float((self.inviter >= 0).sum() / max(1, len(participants))), 4),
            "d1_retention": round(d1, 4),
            "d1_retention_by_kind": d1_by,
            "orders": orders_placed,
            "gmv_yuan": gmv / 100,
            "aov_yuan": round(gmv / 100 / max(1, orders_placed), 2),
            "refund_rate": round(refunded / max(1, orders_placed), 4),
            "ltv_multiplier": round(float(revenue[ref].mean() / max(1e-9, revenue[org].mean())), 3),
        }


def generate(spec: DemoSpec, out_dir: Path, progress: Progress | None = None) -> DemoResult:
    """Generate the demo brand into out_dir: files/ (import format), ground_truth.json, truth/."""
    started = time.perf_counter()
    gen = _Generator(spec, progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = [
        ("persons", "人群 persons and arrivals", gen.persons),
        ("campaigns", "活动 campaigns and referral cascades", gen.campaigns),
        ("fraud", "作弊 injected fraud", gen.fraud),
        ("identities", "身份 identifiers", gen.identities),
        ("devices", "设备 devices and addresses", gen.devices_and_addresses),
        ("activity", "活跃 activity and retention", gen.activity),
        ("orders", "订单 orders", gen.orders),
        ("messages", "社群 community messages", gen.messages),
    ]
    for key, label, fn in steps:
        gen.progress(label)
        t = time.perf_counter()
        fn()
        gen.steps[key] = round(time.perf_counter() - t, 3)
    gen.progress("写文件 writing files")
    t = time.perf_counter()
    files = gen.write(out_dir)
    gen.steps["write"] = round(time.perf_counter() - t, 3)
    truth = gen.ground_truth(out_dir)
    (out_dir / "ground_truth.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=1, sort_keys=False) + "\n", encoding="utf-8"
    )
    return DemoResult(out_dir, files, truth, time.perf_counter() - started, gen.steps)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_ground_truth(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / "ground_truth.json").read_text(encoding="utf-8"))

"""The demo generator: deterministic, sized by its options, and true to what its ground truth claims.

Every structural fact is checked against the written files (as the importer will read them), not
against the generator's own bookkeeping, except where the ground truth is the subject.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liebian.demo import brand
from liebian.demo.generator import DemoSpec, file_digest, generate

SMALL = DemoSpec(seed=7, persons=2000)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory):
    return generate(SMALL, tmp_path_factory.mktemp("demo") / "demo")


def read_events(files: Path) -> pd.DataFrame:
    """Every event row of the three event files, as text."""
    parts = []
    for name, encoding in (
        ("events.csv", "utf-8"),
        ("events_store_gbk.csv", "gbk"),
        ("events_wecom_bom.csv", "utf-8-sig"),
    ):
        frame = pd.read_csv(files / name, encoding=encoding, dtype=str, keep_default_na=False)
        frame["file"] = name
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def parse_ts(value: str) -> datetime | None:
    """The file's two time forms: ISO with offset, or the store's naive local time."""
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=datetime.fromisoformat("2026-01-01T00:00:00+08:00").tzinfo)


@pytest.fixture(scope="module")
def events(small_demo) -> pd.DataFrame:
    return read_events(small_demo.out_dir / "files")


@pytest.fixture(scope="module")
def valid_events(events) -> pd.DataFrame:
    ts = events.ts.map(parse_ts)
    ok = ts.notna() & (events.user_id != "") & events.channel.isin(brand.CHANNELS)
    frame = events[ok].copy()
    frame["when"] = pd.to_datetime(ts[ok].map(lambda t: t.timestamp()), unit="s", utc=True).dt.tz_convert(
        "Asia/Shanghai"
    )
    return frame.drop_duplicates("event_id")


@pytest.fixture(scope="module")
def person_of(small_demo) -> dict[tuple[str, str], int]:
    ids = pd.read_parquet(small_demo.out_dir / "truth" / "identifiers.parquet")
    return {(t, i): int(p) for t, i, p in zip(ids.id_type, ids.id, ids.person, strict=True)}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, small_demo) -> None:
    again = generate(SMALL, tmp_path / "again")
    other = generate(DemoSpec(seed=8, persons=2000), tmp_path / "other")
    names = sorted(p.name for p in (small_demo.out_dir / "files").iterdir())
    assert names == sorted(p.name for p in (again.out_dir / "files").iterdir())
    for name in names:
        assert file_digest(small_demo.out_dir / "files" / name) == file_digest(
            again.out_dir / "files" / name
        ), name
        assert file_digest(small_demo.out_dir / "files" / name) != file_digest(
            other.out_dir / "files" / name
        ), name
    assert file_digest(small_demo.ground_truth_path) == file_digest(again.ground_truth_path)
    assert small_demo.ground_truth["spec"]["seed"] == 7 and other.ground_truth["spec"]["seed"] == 8


def test_sizes_follow_the_options(tmp_path: Path, small_demo) -> None:
    half = generate(DemoSpec(seed=7, persons=1000), tmp_path / "half").ground_truth
    short = generate(DemoSpec(seed=7, persons=2000, days=60, end_date=date(2026, 10, 1)), tmp_path / "short")
    full = small_demo.ground_truth
    assert full["sizes"]["persons"] == 2000 and half["sizes"]["persons"] == 1000
    assert sum(full["sizes"]["persons_by_kind"].values()) == 2000
    assert 1.6 < full["sizes"]["events"] / half["sizes"]["events"] < 2.4
    assert 1.5 < full["sizes"]["orders"]["orders"] / half["sizes"]["orders"]["orders"] < 2.5
    # 40 events per person is the calibrated target
    assert 30 < full["sizes"]["events"] / 2000 < 50
    truth = short.ground_truth
    assert truth["spec"]["start_date"] == "2026-08-03" and truth["spec"]["end_date"] == "2026-10-01"
    ts = read_events(short.out_dir / "files").ts.map(parse_ts).dropna()
    days = {t.astimezone(parse_ts("2026-01-01 00:00:00").tzinfo).date() for t in ts}
    assert min(days) == date(2026, 8, 3) and max(days) == date(2026, 10, 1)
    for c in truth["campaigns"]:
        assert "2026-08-03" <= c["start"] < c["end"] <= "2026-10-01"


def test_rejects_sizes_too_small_to_hold_the_patterns() -> None:
    with pytest.raises(ValueError, match="persons must be at least 500"):
        DemoSpec(persons=100)
    with pytest.raises(ValueError, match="days must be at least 28"):
        DemoSpec(days=7)


def test_files_are_in_the_generic_format_and_encodings(small_demo) -> None:
    files = small_demo.out_dir / "files"
    gbk = (files / "events_store_gbk.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    text = gbk.decode("gbk")
    assert "茶语·" in text and text.startswith("event_id,ts,user_id,id_type,event,channel")
    bom = (files / "events_wecom_bom.csv").read_bytes()
    assert bom.startswith(b"\xef\xbb\xbf")
    header = next(csv.reader([bom.decode("utf-8-sig").splitlines()[0]]))
    assert header[:6] == ["event_id", "ts", "user_id", "id_type", "event", "channel"]
    with (files / "orders.csv").open(encoding="utf-8") as fh:
        assert next(csv.reader(fh))[:5] == ["order_id", "ts", "user_id", "id_type", "amount"]
    with (files / "identities.csv").open(encoding="utf-8") as fh:
        assert next(csv.reader(fh))[:4] == ["id_type_a", "id_a", "id_type_b", "id_b"]
    first = json.loads((files / "messages.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) >= {"message_id", "ts", "group_id", "user_id", "id_type", "text"}


def test_events_use_each_channels_native_identifier(valid_events) -> None:
    pairs = set(zip(valid_events.channel, valid_events.id_type, strict=True))
    assert pairs == {(c, brand.NATIVE_ID[c]) for c in brand.CHANNELS}
    phones = valid_events[valid_events.id_type == "phone"].user_id
    assert phones.str.fullmatch(r"1\d{10}").all()
    assert valid_events.device_id.ne("").all() and valid_events.ip.ne("").all()


def test_identity_links_are_partial_and_chain_across_types(small_demo, person_of) -> None:
    links = pd.read_csv(small_demo.out_dir / "files" / "identities.csv", dtype=str)
    # every link joins two identifiers of one true person, except the family handsets (look-alikes)
    same = [
        person_of[(a, x)] == person_of[(b, y)]
        for a, x, b, y in zip(links.id_type_a, links.id_a, links.id_type_b, links.id_b, strict=True)
    ]
    families = small_demo.ground_truth["lookalikes"]["family_shared_device"]
    assert len(same) - sum(same) == sum(len(f["members"]) - 1 for f in families)
    # some persons have identifiers no link connects (OneID cannot and must not merge them)
    ids = pd.read_parquet(small_demo.out_dir / "truth" / "identifiers.parquet")
    linked = set(zip(links.id_type_a, links.id_a, strict=True)) | set(
        zip(links.id_type_b, links.id_b, strict=True)
    )
    multi = ids.groupby("person").filter(lambda g: len(g) > 1)
    unlinked = [key for key in zip(multi.id_type, multi.id, strict=True) if key not in linked]
    assert 0 < len(unlinked) < 0.5 * len(multi)
    # chains over four or more identifier types exist (openid–unionid–phone–app_user–device_id …)
    types_per_component = defaultdict(set)
    for a, x, b, y in zip(links.id_type_a, links.id_a, links.id_type_b, links.id_b, strict=True):
        p = person_of[(a, x)]
        if p == person_of[(b, y)]:
            types_per_component[p].update((a, b))
    assert max(len(t) for t in types_per_component.values()) >= 4


def test_referral_cascades_are_deep_and_heavy_tailed(valid_events, person_of, small_demo) -> None:
    acc = valid_events[valid_events.event == "invite_accept"]
    assert (acc.referrer_id != "").all() and (acc.invite_code != "").all() and (acc.campaign_id != "").all()
    inviter = {}
    for t, u, rt, r, c in zip(
        acc.id_type, acc.user_id, acc.referrer_id_type, acc.referrer_id, acc.campaign_id, strict=True
    ):
        inviter[(person_of[(t, u)], c)] = person_of[(rt, r)]
    offspring = Counter((p, c) for (_, c), p in inviter.items())

    def depth(person: int, campaign: str) -> int:
        d = 0
        while (person, campaign) in inviter and d < 50:
            person = inviter[(person, campaign)]
            d += 1
        return d

    deepest = max(depth(p, c) for p, c in inviter)
    assert deepest > 2
    counts = np.array(list(offspring.values()))
    assert counts.max() >= 8 * counts.mean()  # a few super-spreaders
    assert counts.var() > 2 * counts.mean()  # over-dispersed: far from Poisson
    kocs = small_demo.ground_truth["koc_candidates"]
    assert kocs and all(
        offspring[(person_of[(k["id_type"], k["id"])], k["campaign_id"])] == k["invitees"] for k in kocs
    )
    for stats in small_demo.ground_truth["cascades"]:
        assert stats["generations"] >= 2


def test_funnel_and_activity_events_are_present(valid_events) -> None:
    seen = set(valid_events.event)
    assert {
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
    } <= seen
    # weekends busier than weekdays, and 双11 the peak of the period
    daily = valid_events.groupby(valid_events.when.dt.date).size()
    weekend = daily[[d.weekday() >= 5 for d in daily.index]].median()
    weekday = daily[[d.weekday() < 5 for d in daily.index]].median()
    assert weekend > 1.1 * weekday
    assert daily.idxmax() == date(2026, 11, 11)


def test_retention_orders_and_ltv_are_realistic(small_demo) -> None:
    kpis = small_demo.ground_truth["kpis"]
    assert 0.30 <= kpis["d1_retention"] <= 0.40
    assert kpis["d1_retention_by_kind"]["referred"] > kpis["d1_retention_by_kind"]["organic_new"]
    assert kpis["ltv_multiplier"] > 1
    orders = pd.read_csv(small_demo.out_dir / "files" / "orders.csv", dtype=str, keep_default_na=False)
    amounts = orders.amount.astype(float)
    orders = orders[amounts >= 0]
    status = orders.groupby("order_id").status.agg(set)
    placed = status[status.map(lambda s: "cancelled" not in s)]
    refunded = placed.map(lambda s: "refunded" in s).mean()
    assert 0.035 <= refunded <= 0.065
    assert status.map(lambda s: s == {"cancelled"}).sum() > 0
    # a refund is a second row, later than its order
    both = orders[orders.order_id.isin(placed[placed.map(lambda s: "refunded" in s)].index)]
    times = both.assign(t=both.ts.map(parse_ts)).pivot(index="order_id", columns="status", values="t")
    assert (times.refunded > times.paid).all()
    paid = orders[orders.status == "paid"].amount.astype(float)
    typical = paid[(paid > 1) & (paid < 5000)]
    assert 60 <= typical.mean() <= 150


def test_ground_truth_fraud_is_really_in_the_data(small_demo, valid_events, person_of) -> None:
    truth = small_demo.ground_truth["fraud"]
    assert set(truth["patterns"]) == {"device_farm", "star_inviter", "circular_referral", "virtual_phone"}
    acc = valid_events[valid_events.event == "invite_accept"].set_index(["id_type", "user_id", "campaign_id"])
    by_group = defaultdict(list)
    for row in truth["invitees"]:
        got = acc.loc[(row["id_type"], row["id"], row["campaign_id"])]
        got = got.iloc[0] if isinstance(got, pd.DataFrame) else got
        assert (got.referrer_id_type, got.referrer_id) == (row["inviter_id_type"], row["inviter_id"])
        by_group[row["group"]].append(row)
    evs = valid_events.set_index(["id_type", "user_id"])
    for group, rows in by_group.items():
        pattern = rows[0]["pattern"]
        if pattern == "device_farm":
            assert 15 <= len(rows) <= 40
            mine = pd.concat([evs.loc[[(r["id_type"], r["id"])]] for r in rows])
            assert set(mine.ip) == {truth["farm_ips"][group]}
            assert (
                set(mine.device_id) <= set(truth["farm_devices"][group])
                and 2 <= mine.device_id.nunique() <= 3
            )
            signups = mine[mine.event == "signup"].when
            assert signups.max() - signups.min() < pd.Timedelta(minutes=30)
            # then nothing: no activity after the sign-up day
            assert mine.when.dt.date.nunique() == 1
        elif pattern == "star_inviter":
            assert len({r["inviter_id"] for r in rows}) == 1 and len(rows) >= 12
            for r in rows:  # every invitee churns the day they arrive
                assert evs.loc[[(r["id_type"], r["id"])]].when.dt.date.nunique() == 1
        elif pattern == "circular_referral":
            members = {(r["id_type"], r["id"]) for r in rows}
            assert {(r["inviter_id_type"], r["inviter_id"]) for r in rows} == members  # a closed ring
        elif pattern == "virtual_phone":
            for r in rows:
                assert r["phone"][:3] in {str(p) for p in brand.VIRTUAL_PREFIXES}
    n_ref = small_demo.ground_truth["sizes"]["referrals"]
    assert truth["share_of_referrals"] == pytest.approx(len(truth["invitees"]) / n_ref, abs=1e-4)
    fraud_csv = pd.read_csv(
        small_demo.out_dir / "truth" / "fraud_invitees.csv", dtype=str, keep_default_na=False
    )
    assert len(fraud_csv) == len(truth["invitees"])


def test_lookalikes_resemble_fraud_but_are_not(small_demo, valid_events) -> None:
    look = small_demo.ground_truth["lookalikes"]
    evs = valid_events.set_index(["id_type", "user_id"])
    acc = valid_events[valid_events.event == "invite_accept"]
    edges = set(zip(acc.user_id, acc.referrer_id, strict=True))
    for office in look["office_shared_ip"]:
        mine = pd.concat([evs.loc[[(m["id_type"], m["id"])]] for m in office["members"]])
        on_ip = mine[mine.ip == office["ip"]]
        assert on_ip.index.nunique() >= 3  # several colleagues on the office address
        assert on_ip.device_id.nunique() == on_ip.index.nunique()  # each on their own handset
    for family in look["family_shared_device"]:
        ids = [m["id"] for m in family["members"]]
        for m in family["members"]:
            assert (evs.loc[[(m["id_type"], m["id"])]].device_id == family["device_id"]).all()
        assert not any((a, b) in edges for a in ids for b in ids)


def test_quality_problems_match_the_ground_truth(small_demo, events) -> None:
    q = small_demo.ground_truth["quality"]
    ts = events.ts.map(parse_ts)
    assert ts.isna().sum() == q["bad_rows"]["bad_timestamp"]
    assert (events.user_id == "").sum() == q["bad_rows"]["missing_id"]
    assert (~events.channel.isin(brand.CHANNELS)).sum() == q["bad_rows"]["unknown_channel"]
    orders = pd.read_csv(small_demo.out_dir / "files" / "orders.csv", dtype=str, keep_default_na=False)
    amount = orders.amount.astype(float)
    assert (amount < 0).sum() == q["bad_rows"]["negative_amount"]
    assert ((amount > 10_000) | ((amount >= 0) & (amount < 0.1))).sum() == q["out_of_range_amounts"]
    ok = events[ts.notna() & (events.user_id != "") & events.channel.isin(brand.CHANNELS)].drop_duplicates(
        "event_id"
    )
    content = ok.assign(t=ts[ok.index].map(lambda t: t.timestamp()))
    dup = content.duplicated(["user_id", "id_type", "event", "t", "channel"]).sum()
    assert dup == q["duplicate_content_events"] > 0
    lag = content.received_at.map(parse_ts).map(lambda t: t.timestamp()) - content.t
    assert (lag > 86_400).sum() == q["late_events"] > 0
    assert (lag > 0).all()
    # the exact re-export overlap: the same event ids twice in the WeCom file
    wecom = events[events.file == "events_wecom_bom.csv"]
    assert (
        wecom.event_id.duplicated().sum()
        == small_demo.ground_truth["files"]["events_wecom_bom.csv"]["duplicate_ids"]
    )
    # volume anomalies: the outage day is far below, the spike day far above that channel's normal
    local = content.t.map(lambda t: datetime.fromtimestamp(t, UTC) + timedelta(hours=8))
    daily = content.assign(d=local.map(lambda t: t.date().isoformat()), wd=local.map(lambda t: t.weekday()))
    for anomaly in q["volume_anomalies"]:
        # anomalies fall on Monday–Thursday: compare with that channel's usual Monday–Thursday
        per_day = daily[(daily.channel == anomaly["channel"]) & (daily.wd < 4)].groupby("d").size()
        ratio = per_day.get(anomaly["date"], 0) / per_day.median()
        if anomaly["factor"] < 1:
            assert ratio < 0.4
        else:
            assert ratio > 2


def test_metric_anomalies_show_in_the_data(small_demo, valid_events) -> None:
    anomalies = {a["metric"]: a for a in small_demo.ground_truth["metric_anomalies"]}
    part = anomalies["participation"]
    joins = valid_events[
        (valid_events.event == "join_campaign") & (valid_events.campaign_id == part["campaign_id"])
    ]
    per_day = joins.groupby(joins.when.dt.date.map(date.isoformat)).size()
    assert per_day.get(part["date"], 0) < 0.5 * per_day.median()
    spike = anomalies["orders"]
    orders = pd.read_csv(small_demo.out_dir / "files" / "orders.csv", dtype=str, keep_default_na=False)
    orders = orders[(orders.status == "paid") & (orders.channel == spike["channel"])]
    per_day = orders.groupby(orders.ts.str[:10]).size()
    assert per_day.get(spike["date"], 0) > 2.5 * per_day.median()


def test_community_messages_have_variety_and_negative_days(small_demo) -> None:
    lines = (small_demo.out_dir / "files" / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    msgs = pd.DataFrame([json.loads(line) for line in lines])
    labels = pd.read_parquet(small_demo.out_dir / "truth" / "message_labels.parquet")
    assert list(labels.message_id) == list(msgs.message_id)
    assert set(labels.sentiment) == {"positive", "question", "neutral", "complaint"}
    assert msgs.text.nunique() > 200
    assert msgs.text.str.contains("配送太慢了|优惠券用不了").any()
    merged = msgs.assign(neg=labels.sentiment.eq("complaint").to_numpy(), d=msgs.ts.str[:10])
    share = merged.groupby(["group_id", "d"]).agg(n=("neg", "size"), neg=("neg", "mean"))
    hot = share[(share.n >= 10) & (share.neg > 0.05)]
    truth = small_demo.ground_truth["community"]["negative_group_days"]
    assert {(r["group_id"], r["date"]) for r in truth} == set(hot.index)
    assert any(r["injected"] for r in truth)
    # KOCs post far more than an average member
    per_user = msgs.groupby("user_id").size()
    assert per_user.max() > 10 * per_user.median()


def test_the_smallest_demo_the_options_allow_builds_around_double11(tmp_path: Path) -> None:
    """500 persons over 28 days ending on the default date (双11 inside the period): too few ordinary
    weekdays for the strict anomaly-day rules, which are relaxed instead of crashing the build."""
    tiny = generate(DemoSpec(seed=7, persons=500, days=28), tmp_path / "tiny").ground_truth
    truth_days = [a["date"] for a in tiny["quality"]["volume_anomalies"]] + [
        a["date"] for a in tiny["metric_anomalies"]
    ]
    assert len(truth_days) == len(set(truth_days)) >= 4
    assert all(tiny["spec"]["start_date"] <= d <= tiny["spec"]["end_date"] for d in truth_days)
    events = read_events(tmp_path / "tiny" / "files")
    assert len(events) > 10 * 500 and tiny["sizes"]["persons"] == 500

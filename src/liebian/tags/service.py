"""Tags: the three-level tag system, versioned rule definitions, recomputation with history, health.

Levels (三级标签体系): `attribute` (who: channel, referred), `behaviour` (what they do: orders,
invites, activity) and `value` (the tier 新手-活跃-高价值, plus 沉默 for the wake-up plan).
Features come from `liebian.predict.service.person_features` (rows before the computation time
only) plus the health score and value tier computed here. A recomputation compares each tag's
members with its open assignments: newcomers get a row (assigned_at), leavers get removed_at — the
rows are the tag history.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from liebian.db.base import table_of, utcnow
from liebian.errors import DomainError, code_for
from liebian.lazy import lazy_import
from liebian.predict import service as predict_service
from liebian.predict import store as model_store
from liebian.predict.common import jsonable
from liebian.predict.results import current_snapshot, latest, select_persons
from liebian.tags.models import TagAssignment, TagDefinition, TagRun
from liebian.tags.rules import Rule, RuleError, parse_rule
from liebian.tags.schemas import HistoryRow, PersonTag, Run, Tag

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")
    pd = lazy_import("pandas")

LEVELS = ("attribute", "behaviour", "value")
# A segment saved from a list of persons (the console's drop-off list): its members are the list,
# never re-evaluated by `recompute` (its rule `false` is a placeholder for the rule column).
LIST_LEVEL = "list"
MAX_LIST_MEMBERS = 1_000_000
TIERS = ("新手", "活跃", "高价值", "沉默")
HEALTH_WEIGHTS = {"interaction": 0.4, "spending": 0.3, "active_time": 0.3}

# name → (type, description): the vocabulary of the rule language
FEATURES: dict[str, tuple[str, str]] = {
    "recency_days": ("number", "days since the last event or paid order"),
    "tenure_days": ("number", "days since first seen"),
    "events_7d": ("number", "events in the last 7 days"),
    "events_30d": ("number", "events in the last 30 days"),
    "events_90d": ("number", "events in the last 90 days"),
    "active_days_30d": ("number", "days with activity in the last 30 days"),
    "channels_90d": ("number", "channels used in the last 90 days"),
    "checkins_30d": ("number", "check-ins in the last 30 days"),
    "coupons_30d": ("number", "coupons claimed in the last 30 days"),
    "shares_30d": ("number", "shares in the last 30 days"),
    "invites_90d": ("number", "invites sent in the last 90 days"),
    "orders_90d": ("number", "paid orders in the last 90 days"),
    "spend_90d_fen": ("number", "paid amount in the last 90 days (fen)"),
    "orders_total": ("number", "paid orders"),
    "spend_total_fen": ("number", "paid amount (fen)"),
    "order_recency_days": ("number", "days since the last paid order (9999 if none)"),
    "refunds_total": ("number", "refunded orders"),
    "referred": ("number", "1 if acquired by referral"),
    "channel": ("string", "the channel with most of the person's events"),
    "health_score": ("number", "user health score 0–100"),
    "value_tier": ("string", "新手 / 活跃 / 高价值 / 沉默"),
    "churn_risk": (
        "number",
        "churn probability 0–1 from the newest stored churn model (no model: matches nothing)",
    ),
}
FEATURE_TYPES = {k: v[0] for k, v in FEATURES.items()}

# The default definitions installed on first use (the operator edits them into new versions).
DEFAULT_TAGS = (
    (
        "微信生态",
        "attribute",
        'channel in ["wecom", "miniprogram"]',
        "主要在企微/小程序 mostly WeCom or mini-program",
    ),
    ("裂变用户", "attribute", "referred == 1", "通过邀请加入 acquired by referral"),
    ("多渠道", "attribute", "channels_90d >= 3", "近90天用过3个以上渠道 three or more channels"),
    ("复购", "behaviour", "orders_90d >= 2", "近90天复购 repeat buyer in 90 days"),
    ("爱分享", "behaviour", "invites_90d >= 1 or shares_30d >= 3", "邀请或分享 invites or shares"),
    ("签到达人", "behaviour", "checkins_30d >= 8", "近30天签到8次以上 frequent check-ins"),
    ("新手", "value", 'value_tier == "新手"', "新用户 newcomer"),
    ("活跃", "value", 'value_tier == "活跃"', "活跃用户 active"),
    ("高价值", "value", 'value_tier == "高价值"', "高价值用户 high value: exclusive benefits"),
    ("沉默", "value", 'value_tier == "沉默"', "沉默用户 silent: wake-up plan"),
    ("流失预警", "behaviour", "churn_risk >= 0.6", "流失风险高 high churn risk: intervention"),
)


class TagError(DomainError, ValueError):
    """A tag request that cannot be done (status 404/409/422)."""

    summary = "invalid request"

    def __init__(
        self, message: str, status: int = 422, field: str = "tag", detail: dict[str, Any] | None = None
    ) -> None:
        self.detail = detail or {}
        errors = [{"field": field, "reason": message, **self.detail}]
        super().__init__(code_for(status), message, status, field=field, errors=errors)


def _pct(values: pd.Series) -> np.ndarray:
    """Percentile rank in [0, 1]; zero stays zero (no activity earns no points)."""
    ranks = values.rank(method="average", pct=True).to_numpy()
    return np.where(values.to_numpy() > 0, ranks, 0.0)


def health_scores(feats: pd.DataFrame, weights: dict[str, float] | None = None) -> pd.DataFrame:
    """The user health score (健康度, 0–100) from interaction, spending power and active time.

    interaction = percentile of events in 30 days; spending = percentile of spend in 90 days;
    active time = half active days in 30 days (15+ = full) and half recency (e^(−days/30)).
    """
    w = {**HEALTH_WEIGHTS, **(weights or {})}
    total = sum(w.values())
    if total <= 0 or any(v < 0 for v in w.values()):
        raise TagError(
            f"health weights: need non-negative weights with a positive sum (got {w})", field="weights"
        )
    interaction = _pct(feats["events_30d"])
    spending = _pct(feats["spend_90d_fen"])
    active_time = 0.5 * np.minimum(feats["active_days_30d"].to_numpy() / 15, 1) + 0.5 * np.exp(
        -feats["recency_days"].to_numpy() / 30
    )
    score = (
        100
        * (w["interaction"] * interaction + w["spending"] * spending + w["active_time"] * active_time)
        / total
    )
    score = np.round(score, 1)  # the band follows the score as shown (69.96 shows as 70.0: healthy)
    return pd.DataFrame(
        {
            "person_id": feats["person_id"].to_numpy(),
            "health_score": score,
            "interaction": np.round(interaction, 3),
            "spending": np.round(spending, 3),
            "active_time": np.round(active_time, 3),
            "health_band": np.select([score >= 70, score >= 40], ["健康", "一般"], "预警"),
        }
    )


def value_tiers(feats: pd.DataFrame) -> np.ndarray:
    """新手 (first seen < 30 days) / 高价值 (top 20 % of 90-day spend among buyers, or 3+ orders in
    90 days) / 活跃 (active in the last 30 days) / 沉默 (otherwise). 高价值 wins over 新手."""
    spend = feats["spend_90d_fen"]
    buyers = spend[spend > 0]
    cut = float(buyers.quantile(0.8)) if len(buyers) else float("inf")
    high = ((spend > 0) & (spend >= cut)) | (feats["orders_90d"] >= 3)
    return np.select(
        [high.to_numpy(), feats["tenure_days"].to_numpy() < 30, feats["recency_days"].to_numpy() <= 30],
        ["高价值", "新手", "活跃"],
        "沉默",
    )


def tag_features(at: datetime | None = None) -> pd.DataFrame:
    feats = predict_service.person_features(at)
    health = health_scores(feats)
    out = feats.merge(health[["person_id", "health_score", "health_band"]], on="person_id")
    out["value_tier"] = value_tiers(out)
    # the churn model feeds tags (and through them automation); NaN compares false in every rule
    risk = predict_service.churn_scores(out)
    out["churn_risk"] = risk if risk is not None else np.nan
    out.attrs["at"] = feats.attrs.get("at")
    return out


HEALTH_BANDS = ("健康", "一般", "预警")


def record_health(feats: pd.DataFrame | None = None) -> dict[str, Any]:
    """Store everyone's health score, band, value tier and channel (model store, kind "health").

    Computing the scores reads every person's features (about a second on 50 000 persons); the
    stored scores are summarised for any selection by `health_distribution`.
    """

    snapshot = current_snapshot()
    feats = feats if feats is not None else tag_features()
    table = feats[["person_id", "health_score", "health_band", "value_tier", "channel"]].reset_index(
        drop=True
    )
    metrics = {"persons": len(table), "mean": float(table["health_score"].mean()) if len(table) else None}
    at = feats.attrs.get("at")
    params = {
        "at": at.isoformat() if at else None,
        "weights": HEALTH_WEIGHTS,
    }
    return model_store.save_model("health", params, metrics, snapshot, artefact=table)


def health_distribution(
    channel: str | None = None, person_ids: Collection[int] | None = None
) -> dict[str, Any] | None:
    """The newest stored health scores for the selected persons: 10-point histogram, bands, value
    tiers, mean and median. None when none are stored."""

    entry = latest("health")
    if entry is None:
        return None
    table = select_persons(model_store.load_artefact(entry), channel, person_ids)
    scores = table["health_score"].to_numpy()
    counts, _ = np.histogram(scores, bins=np.arange(0, 101, 10))
    bands, tiers = table["health_band"].value_counts(), table["value_tier"].value_counts()
    return jsonable(
        {
            "model": entry,
            "persons": len(table),
            "mean": float(scores.mean()) if len(scores) else None,
            "median": float(np.median(scores)) if len(scores) else None,
            "histogram": [
                {"low": 10 * i, "high": 10 * i + 10, "persons": int(n)} for i, n in enumerate(counts)
            ],
            "bands": [{"band": b, "persons": int(bands.get(b, 0))} for b in HEALTH_BANDS],
            "tiers": [{"tier": t, "persons": int(tiers.get(t, 0))} for t in TIERS],
        }
    )


def check_rule(rule: str) -> Rule:
    return parse_rule(rule, FEATURE_TYPES)


def _latest(session: Session, name: str) -> TagDefinition | None:
    return session.scalars(
        select(TagDefinition)
        .where(TagDefinition.name == name)
        .order_by(TagDefinition.version.desc())
        .limit(1)
    ).first()


def define_tag(
    session: Session, name: str, rule: str, level: str, description: str = "", created_by: str = ""
) -> TagDefinition:
    """Create a tag or a new version of it. The same rule/level/description again changes nothing."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise TagError("name: 1–64 characters", field="name")
    if level not in LEVELS:
        raise TagError(f"level: must be one of {', '.join(LEVELS)} (got {level!r})", field="level")
    try:
        check_rule(rule)
    except RuleError as exc:
        raise TagError(str(exc), field="rule", detail=exc.as_dict()) from exc
    latest = _latest(session, name)
    if (
        latest
        and latest.retired_at is None
        and (latest.rule, latest.level, latest.description)
        == (
            rule.strip(),
            level,
            description,
        )
    ):
        return latest
    tag = TagDefinition(
        name=name,
        version=(latest.version + 1) if latest else 1,
        level=level,
        rule=rule.strip(),
        description=description,
        created_by=created_by,
    )
    session.add(tag)
    session.flush()
    return tag


def save_list_segment(
    session: Session, name: str, person_ids: Sequence[int], description: str = "", created_by: str = ""
) -> TagDefinition:
    """A segment (tag) whose members are exactly `person_ids`, e.g. the persons who dropped at a
    funnel step; filters and journeys use it by name like any tag. A name in use is refused."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise TagError("name: 1–64 characters", field="name")
    if _latest(session, name) is not None:
        raise TagError(f"name: a tag named {name!r} exists already", status=409, field="name")
    people = sorted({int(p) for p in person_ids})
    if not people or len(people) > MAX_LIST_MEMBERS:
        raise TagError(f"persons: 1–{MAX_LIST_MEMBERS} persons", field="persons")
    tag = TagDefinition(
        name=name, version=1, level=LIST_LEVEL, rule="false", description=description, created_by=created_by
    )
    session.add(tag)
    session.flush()
    now = utcnow()
    for chunk in _chunks(people, 5000):
        session.execute(
            table_of(TagAssignment).insert(),
            [
                {"tag_name": name, "version": 1, "person_id": p, "assigned_at": now, "run_id": 0}
                for p in chunk
            ],
        )
    return tag


def retire_tag(session: Session, name: str) -> TagDefinition:
    """Stop computing a tag; the next recomputation closes its open assignments."""
    latest = _latest(session, name)
    if latest is None:
        raise TagError(f"tag {name!r} not found", status=404)
    latest.retired_at = latest.retired_at or utcnow()
    return latest


def install_defaults(session: Session) -> list[TagDefinition]:
    return [
        define_tag(session, n, r, lvl, d, "liebian")
        for n, lvl, r, d in DEFAULT_TAGS
        if _latest(session, n) is None
    ]


def tag_names(session: Session) -> list[str]:
    """The defined tags' names, sorted (cheap: no assignment counts)."""
    return list(session.scalars(select(TagDefinition.name).distinct().order_by(TagDefinition.name)))


def list_tags(session: Session, all_versions: bool = False) -> list[Tag]:
    rows = session.scalars(select(TagDefinition).order_by(TagDefinition.name, TagDefinition.version)).all()
    if not all_versions:
        latest: dict[str, TagDefinition] = {}
        for r in rows:
            latest[r.name] = r
        rows = list(latest.values())
    counts = dict(
        session.execute(
            select(TagAssignment.tag_name, func.count())
            .where(TagAssignment.removed_at.is_(None))
            .group_by(TagAssignment.tag_name)
        ).all()
    )
    return [tag_view(r, counts.get(r.name, 0)) for r in rows]


def tag_view(t: TagDefinition, members: int | None = None) -> Tag:
    """A tag version as the API and the CLI show it; listings add `members` (its member count)."""
    counted = {} if members is None else {"members": members}
    return Tag(
        name=t.name,
        version=t.version,
        level=t.level,
        rule=t.rule,
        description=t.description,
        created_by=t.created_by,
        created_at=t.created_at.isoformat() if t.created_at else None,
        retired_at=t.retired_at.isoformat() if t.retired_at else None,
        **counted,
    )


def _chunks(items: list[int], size: int = 500) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def recompute(
    session: Session, at: datetime | None = None, features: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Evaluate every active tag's latest version; open and close assignments; record the run."""
    now = utcnow()
    feats = features if features is not None else tag_features(at)
    run = TagRun(started_at=now, data_at=feats.attrs.get("at"), persons=len(feats))
    session.add(run)
    session.flush()
    latest: dict[str, TagDefinition] = {}
    for t in session.scalars(select(TagDefinition).order_by(TagDefinition.name, TagDefinition.version)):
        latest[t.name] = t
    summary = {}
    persons = feats["person_id"].to_numpy()
    for name, tag in latest.items():
        if tag.level == LIST_LEVEL and tag.retired_at is None:
            continue  # a saved list keeps its members (until retired: then they leave as others do)
        open_rows = session.execute(
            select(TagAssignment.person_id, TagAssignment.version).where(
                TagAssignment.tag_name == name, TagAssignment.removed_at.is_(None)
            )
        ).all()
        current = {int(p): v for p, v in open_rows}
        members = set() if tag.retired_at else {int(p) for p in persons[check_rule(tag.rule).evaluate(feats)]}
        # a new version re-opens its members so the history shows which version tagged whom
        leave = [p for p, v in current.items() if p not in members or v != tag.version]
        join = [p for p in members if current.get(p) != tag.version]
        for chunk in _chunks(leave):
            session.execute(
                update(TagAssignment)
                .where(
                    TagAssignment.tag_name == name,
                    TagAssignment.removed_at.is_(None),
                    TagAssignment.person_id.in_(chunk),
                )
                .values(removed_at=now)
            )
        if join:
            session.execute(
                table_of(TagAssignment).insert(),
                [
                    {
                        "tag_name": name,
                        "version": tag.version,
                        "person_id": p,
                        "assigned_at": now,
                        "run_id": run.id,
                    }
                    for p in join
                ],
            )
        summary[name] = {
            "version": tag.version,
            "level": tag.level,
            "members": len(members),
            "added": len([p for p in join if p not in current]),
            "removed": len([p for p in leave if p not in members]),
            "retired": tag.retired_at is not None,
        }
    run.finished_at = utcnow()
    run.summary = json.dumps(summary, ensure_ascii=False)
    return {
        "run_id": run.id,
        "persons": len(feats),
        "data_at": run.data_at.isoformat() if run.data_at else None,
        "tags": summary,
    }


def members(session: Session, name: str, limit: int = 1000, offset: int = 0) -> list[int]:
    if _latest(session, name) is None:
        raise TagError(f"tag {name!r} not found", status=404)
    return list(
        session.scalars(
            select(TagAssignment.person_id)
            .where(TagAssignment.tag_name == name, TagAssignment.removed_at.is_(None))
            .order_by(TagAssignment.person_id)
            .limit(limit)
            .offset(offset)
        )
    )


def history(
    session: Session, name: str | None = None, person_id: int | None = None, limit: int = 1000
) -> list[HistoryRow]:
    """Assignment rows (newest first) for a tag, a person, or both."""
    if name is None and person_id is None:
        raise TagError("history needs a tag name or a person id", field="query")
    q = select(TagAssignment)
    if name is not None:
        q = q.where(TagAssignment.tag_name == name)
    if person_id is not None:
        q = q.where(TagAssignment.person_id == person_id)
    rows = session.scalars(q.order_by(TagAssignment.id.desc()).limit(limit)).all()
    return [
        HistoryRow(tag=r.tag_name, version=r.version, person_id=r.person_id, assigned_at=r.assigned_at.isoformat(),
                   removed_at=r.removed_at.isoformat() if r.removed_at else None, run_id=r.run_id)
        for r in rows
    ]  # fmt: skip


def person_tags(session: Session, person_id: int) -> list[PersonTag]:
    rows = session.execute(
        select(TagAssignment, TagDefinition.level)
        .join(
            TagDefinition,
            (TagDefinition.name == TagAssignment.tag_name) & (TagDefinition.version == TagAssignment.version),
        )
        .where(TagAssignment.person_id == person_id, TagAssignment.removed_at.is_(None))
        .order_by(TagDefinition.level, TagAssignment.tag_name)
    ).all()
    return [
        PersonTag(tag=a.tag_name, version=a.version, level=lvl, since=a.assigned_at.isoformat())
        for a, lvl in rows
    ]


def person_health(person_id: int, at: datetime | None = None) -> dict[str, Any]:
    feats = predict_service.person_features(at)
    health = health_scores(feats)
    row = health[health["person_id"] == person_id]
    if row.empty:
        raise TagError(f"person_id {person_id} not found in the warehouse", status=404, field="person_id")
    tier = value_tiers(feats)[np.flatnonzero(feats["person_id"].to_numpy() == person_id)[0]]
    return {
        **{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[0].to_dict().items()},
        "value_tier": tier,
    }


def runs(session: Session, limit: int = 20) -> list[Run]:
    rows = session.scalars(select(TagRun).order_by(TagRun.id.desc()).limit(limit)).all()
    return [
        Run(run_id=r.id, started_at=r.started_at.isoformat(), finished_at=r.finished_at.isoformat() if r.finished_at else None,
            data_at=r.data_at.isoformat() if r.data_at else None, persons=r.persons, tags=json.loads(r.summary))
        for r in rows
    ]  # fmt: skip

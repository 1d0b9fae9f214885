"""Rule variants per region and store type (001 §4.1: 推广阶段需考虑地域差异化, 根据商圈类型设置不同
裂变策略): one campaign whose rules are overridden where a participant joins.

A variant (`CampaignRules.variants`, versioned with the rules) names a region, a store type or
both, and a partial rules document (`overrides`). Where a friend joins is given on the accept
request (`region`, `store`, `store_type`; OneID keeps no places) and kept with the referral
(`ReferralPlace`), so the conversion that qualifies the referral later is judged under the same
variant. The first variant whose region and store type both match applies; none matching → the
base rules.

Merging: the override's fields replace the base's; objects (`qualifying_event`, `group`…) are
merged field by field, lists (`tiers`, `collects`) are replaced whole. Fields that belong to the
whole campaign (type, window, budget, stock, scope, attribution, the variants themselves) cannot
differ per variant. The strategy objects (`strategies.py`) get the merged rules; compliance is
checked for the base rules and for each variant's merged rules (`checked`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.campaigns.models import Referral, ReferralPlace
from liebian.campaigns.schemas import AcceptRequest, CampaignRules, RuleVariant

# Campaign-wide: one budget, one window, one scope, one attribution for every place.
FIXED_FIELDS = frozenset(
    {
        "type",
        "title",
        "start_at",
        "end_at",
        "attribution",
        "invite_ttl_days",
        "budget_fen",
        "stock",
        "regions",
        "stores",
        "variants",
    }
)


@dataclass(frozen=True)
class Place:
    """Where a participant joins; every part optional."""

    region: str | None = None
    store: str | None = None
    store_type: str | None = None

    @classmethod
    def of(cls, req: AcceptRequest) -> Place:
        return cls(_clean(req.region), _clean(req.store), _clean(req.store_type))

    def __bool__(self) -> bool:
        return any((self.region, self.store, self.store_type))


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def merge(rules: CampaignRules, variant: RuleVariant, *, keep_variants: bool = True) -> CampaignRules:
    """The base rules with the variant's overrides (validated like any rules document). The merged
    rules keep the variant list (so the variant can be told again) unless `keep_variants` is off."""
    doc = _deep_merge(rules.model_dump(), variant.overrides)
    doc["variants"] = [v.model_dump() for v in rules.variants] if keep_variants else []
    return CampaignRules.model_validate(doc)


def choose(rules: CampaignRules, region: str | None, store_type: str | None) -> RuleVariant | None:
    """The first variant whose region and store type (those it names) match."""
    for v in rules.variants:
        if (v.region is None or v.region == region) and (v.store_type is None or v.store_type == store_type):
            return v
    return None


def rules_for(rules: CampaignRules, place: Place) -> tuple[CampaignRules, str]:
    """The rules a participant joining at `place` is judged under, and the variant's name ("" = base)."""
    variant = choose(rules, place.region, place.store_type) if rules.variants else None
    if variant is None:
        return rules, ""
    return merge(rules, variant), variant.name


def remember(
    session: Session, campaign_id: str, referral_id: int, req: AcceptRequest, rules: CampaignRules
) -> None:
    """Keep where the friend of a new referral joined (nothing to keep when the request names no place)."""
    place = Place.of(req)
    if not place:
        return
    variant = choose(rules, place.region, place.store_type) if rules.variants else None
    session.add(
        ReferralPlace(
            referral_id=referral_id,
            campaign_id=campaign_id,
            region=place.region,
            store=place.store,
            store_type=place.store_type,
            variant=variant.name if variant else "",
        )
    )
    session.flush()


def for_referral(session: Session, ref: Referral, rules: CampaignRules) -> CampaignRules:
    """The rules of the referral's version merged with the variant of the place its friend joined
    at (no query for a campaign without variants)."""
    if not rules.variants:
        return rules
    name = session.scalar(select(ReferralPlace.variant).where(ReferralPlace.referral_id == ref.id))
    variant = next((v for v in rules.variants if name and v.name == name), None)
    return merge(rules, variant) if variant is not None else rules


# ---------------------------------------------------------------- checks


def problems(
    rules: CampaignRules, check: Callable[[CampaignRules], list[tuple[str, str]]]
) -> list[tuple[str, str]]:
    """Each variant's problems as (field, reason): naming no place, a name or place used twice, a
    campaign-wide field overridden, and whatever `check` (the rules' own checks) finds in its
    merged rules, under `variants.<i>.…`."""
    out: list[tuple[str, str]] = []
    names: set[str] = set()
    places: set[tuple[str | None, str | None]] = set()
    for i, v in enumerate(rules.variants):
        at = f"variants.{i}"
        if v.region is None and v.store_type is None:
            out.append((f"{at}.region", "a variant names a region, a store type or both"))
        if v.name in names:
            out.append((f"{at}.name", f"the variant name {v.name!r} is used twice"))
        if (v.region, v.store_type) in places:
            out.append((f"{at}.region", "another variant has the same region and store type"))
        names.add(v.name)
        places.add((v.region, v.store_type))
        fixed = sorted(FIXED_FIELDS & set(v.overrides))
        for key in fixed:
            out.append(
                (
                    f"{at}.overrides.{key}",
                    f"{key} belongs to the whole campaign and cannot differ per variant",
                )
            )
        if fixed:
            continue
        try:
            merged = merge(rules, v, keep_variants=False)
        except ValidationError as exc:
            for e in exc.errors():
                loc = ".".join(str(p) for p in e["loc"])
                out.append((f"{at}.overrides.{loc}", e["msg"]))
            continue
        out += [(f"{at}.overrides.{field}", reason) for field, reason in check(merged)]
    return out


def checked(rules: CampaignRules, compliance: Callable[[CampaignRules], Any]) -> Any:
    """The compliance report of the base rules, with every variant's merged rules checked by the
    same function: a variant's findings join the report (field `variants.<i>.<field>`, message
    prefixed with the variant's name); it passes only if every variant passes; the risk score is
    the highest of them. `variant_reports` lists each variant's own result."""
    report = dict(compliance(rules))
    if not rules.variants:
        return report
    seen = {(f.get("rule"), f.get("field")) for key in ("hard", "soft") for f in report.get(key, [])}
    own: list[dict[str, Any]] = []
    for i, v in enumerate(rules.variants):
        try:
            merged = merge(rules, v, keep_variants=False)
        except ValidationError:
            continue  # refused when the rules were saved (`problems`)
        sub = dict(compliance(merged))
        own.append({"name": v.name, "region": v.region, "store_type": v.store_type, **sub})
        for key in ("hard", "soft"):
            for f in sub.get(key, []):
                if (f.get("rule"), f.get("field")) in seen:
                    continue  # inherited from the base rules: reported there once
                found = {
                    **f,
                    "field": f"variants.{i}.{f.get('field', '')}",
                    "message": f"[{v.name}] {f.get('message', '')}",
                }
                report.setdefault(key, []).append(found)
        report["passed"] = bool(report.get("passed", True)) and bool(sub.get("passed", True))
        if sub.get("risk_score", 0) > report.get("risk_score", 0):
            report["risk_score"], report["risk_level"] = sub["risk_score"], sub.get("risk_level")
    report["variant_reports"] = own
    return report

"""The campaign editor's form: its fields and sections per campaign type, and the conversion between the
rules document and the submitted values (money in yuan, times in the brand's zone, list rows renumbered
so the service's errors land on the row the user sees)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from liebian.campaigns.poster import TEMPLATES
from liebian.campaigns.schemas import CAMPAIGN_TYPES, POSTER_PATTERNS, CampaignRules
from liebian.config import get_settings
from liebian.web.format import message, validation_reason

# --- time and money at the edge -------------------------------------------------------------------


def brand_zone() -> ZoneInfo:

    return ZoneInfo(get_settings().timezone)


def local_time(value: Any) -> datetime | None:
    """A naive-UTC time (or its ISO text) in the brand's zone, for display and datetime inputs."""
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(brand_zone()).replace(tzinfo=None)
    except OverflowError:  # year 1 or 9999 stored before the edge bounded times: shown as stored
        return moment.replace(tzinfo=None)


def _utc_from_local(text: str) -> str:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=brand_zone())
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def fen_from_yuan(text: str) -> int:
    """Yuan as typed (`1,234.5`, `¥12`) in whole fen; InvalidOperation when not an amount ≥ 0 with ≤ 2 decimals."""
    amount = Decimal(text.replace(",", "").replace("¥", "").strip())
    if amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidOperation(text)
    return int(amount * 100)


def _yuan_text(fen: Any) -> str:
    if fen in (None, ""):
        return ""
    return f"{Decimal(int(fen)) / 100:.2f}"


# --- the editor's fields --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One input; `name` is the path in the rules document that the service's errors name."""

    name: str
    label: str  # i18n key
    kind: str = "text"  # text textarea int float yuan datetime select checkbox list
    options: tuple[str, ...] = ()
    option_label: str = ""  # i18n prefix for the options' labels
    required: bool = False
    label_n: int | None = None  # fills {n} in the label

    @property
    def dom_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")


@dataclass
class Section:
    legend: str  # i18n key
    fields: list[Field]
    group: str = ""  # errors about the whole group (e.g. "tiers") are shown on the section
    help: str = ""
    rows: list[tuple[str, int, list[Field]]] = field(default_factory=list)  # (label key, n, fields)
    grow: str = ""  # the list the operator adds rows to ("tiers", "leaderboard.rewards")


def _reward(prefix: str) -> list[Field]:
    return [
        Field(f"{prefix}.code", "campaigns.f.reward_code"),
        Field(f"{prefix}.name", "campaigns.f.reward_name"),
        Field(f"{prefix}.value_fen", "campaigns.f.reward_value", "yuan"),
    ]


# Tier and rank rows: the editor shows the campaign's rows (or one empty row) and adds one at a time.
MAX_ROWS = 50
POSTER_TEMPLATES = tuple(TEMPLATES)
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
GROWING = {"invite_task": "tiers", "leaderboard": "leaderboard.rewards"}


def list_row(kind: str, i: int) -> tuple[str, int, list[Field]]:
    """Row i (from 0) of a campaign type's growing list: a tier or a leaderboard rank."""
    if kind == "invite_task":
        fields = [
            Field(f"tiers.{i}.threshold", "campaigns.f.threshold", "int"),
            *_reward(f"tiers.{i}.reward"),
        ]
        return ("campaigns.f.tier", i + 1, fields)
    return ("campaigns.f.rank", i + 1, _reward(f"leaderboard.rewards.{i}"))


def _reward_section(kind: str, rows: int) -> Section:
    """The rewards of a campaign type (rows: tiers or leaderboard ranks shown)."""
    sec = Section("campaigns.sec.rewards", [], grow=GROWING.get(kind, ""))
    if kind == "invite_task":
        sec.group, sec.help = "tiers", "campaigns.tiers_help"
        sec.rows += [list_row(kind, i) for i in range(rows)]
    elif kind in ("double_sided", "share_coupon"):
        sec.group = "inviter_reward"
        sec.rows.append(("campaigns.f.inviter_reward", 0, _reward("inviter_reward")))
        sec.rows.append(("campaigns.f.friend_reward", 0, _reward("friend_reward")))
        if kind == "share_coupon":
            sec.fields.append(Field("shares_required", "campaigns.f.shares_required", "int"))
    elif kind == "group_buy":
        sec.group = "group"
        sec.fields += [
            Field("group.size", "campaigns.f.group_size", "int", required=True),
            Field("group.window_hours", "campaigns.f.window_hours", "float"),
        ]
        for role in ("initiator", "joiner", "bringer"):
            sec.rows.append((f"campaigns.f.{role}_reward", 0, _reward(f"group.{role}_reward")))
    elif kind == "assist":
        sec.group = "assist"
        sec.fields.append(Field("assist.required", "campaigns.f.assist_required", "int", required=True))
        sec.rows.append(("campaigns.f.assist_reward", 0, _reward("assist.reward")))
    elif kind == "leaderboard":
        sec.group, sec.help = "leaderboard", "campaigns.ranks_help"
        sec.fields.append(Field("leaderboard.top_n", "campaigns.f.top_n", "int", required=True))
        sec.rows += [list_row(kind, i) for i in range(rows)]
    return sec


def _basics(new: bool) -> list[Field]:
    basics = [
        Field("type", "campaigns.type", "select", CAMPAIGN_TYPES, "campaigns.type."),
        Field("title", "campaigns.title", required=True),
        Field("rules_text", "campaigns.f.rules_text", "textarea"),
        Field("landing_url", "campaigns.f.landing_url"),
    ]
    if new:
        basics.insert(0, Field("id", "campaigns.f.id"))
    return basics


def poster_section() -> Section:
    """The share poster's design (previewed live next to the fields)."""
    return Section(
        "ccamp.sec.poster",
        [
            Field(
                "poster_template",
                "campaigns.f.poster_template",
                "select",
                POSTER_TEMPLATES,
                "campaigns.poster.",
            ),
            Field("poster.background", "ccamp.f.background", "color"),
            Field("poster.pattern", "ccamp.f.pattern", "select", POSTER_PATTERNS, "ccamp.pattern."),
            Field("poster.brand", "ccamp.f.brand"),
            Field("poster.reward_text", "ccamp.f.reward_text"),
            Field("poster.show_avatar", "ccamp.f.show_avatar", "checkbox"),
            Field("poster.show_deadline", "ccamp.f.show_deadline", "checkbox"),
        ],
        help="ccamp.poster_help",
    )


def editor_sections(kind: str, rows: int, *, new: bool, launched: bool) -> list[Section]:
    """The editor's sections: caps, budget and compliance come before the reward rows, so that they
    stay in view however many tiers a campaign has; the poster comes last, beside its preview."""
    sections = [
        Section("campaigns.sec.basics", _basics(new)),
        Section(
            "campaigns.sec.window",
            [
                Field("start_at", "campaigns.f.start_at", "datetime"),
                Field("end_at", "campaigns.f.end_at", "datetime"),
                Field("invite_ttl_days", "campaigns.f.invite_ttl_days", "float"),
                Field("claim_window_days", "campaigns.f.claim_window_days", "float"),
            ],
        ),
        Section(
            "campaigns.sec.limits",
            [
                Field("per_inviter_cap", "campaigns.f.per_inviter_cap", "int"),
                Field("per_device_cap", "campaigns.f.per_device_cap", "int"),
                Field("per_ip_cap", "campaigns.f.per_ip_cap", "int"),
                Field("budget_fen", "campaigns.f.budget", "yuan"),
                Field("stock", "campaigns.f.stock", "int"),
                Field("hold_days", "campaigns.f.hold_days", "float"),
                Field("regions", "campaigns.f.regions", "list"),
                Field("stores", "campaigns.f.stores", "list"),
            ],
        ),
        Section(
            "campaigns.sec.compliance",
            [
                Field("collects", "campaigns.f.collects", "list"),
                Field("consent_step", "campaigns.f.consent_step", "checkbox"),
                Field("reward_value_disclosed", "campaigns.f.reward_value_disclosed", "checkbox"),
                Field("forced_sharing", "campaigns.f.forced_sharing", "checkbox"),
                Field("platforms", "campaigns.f.platforms", "list"),
            ],
        ),
        _reward_section(kind, rows),
        Section(
            "campaigns.sec.qualifying",
            [
                Field(
                    "qualifying_event.kind",
                    "campaigns.f.qualifying_kind",
                    "select",
                    ("signup", "first_order", "order_min_amount", "custom"),
                    "campaigns.qe.",
                ),
                Field("qualifying_event.min_amount_fen", "campaigns.f.min_amount", "yuan"),
                Field("qualifying_event.event_name", "campaigns.f.event_name"),
                Field(
                    "attribution",
                    "campaigns.f.attribution",
                    "select",
                    ("first_touch", "last_touch"),
                    "campaigns.attr.",
                ),
                Field("referrer_min_spend_fen", "campaigns.f.referrer_min_spend", "yuan"),
                Field("require_new_friend", "campaigns.f.require_new_friend", "checkbox"),
            ],
        ),  # fmt: skip
        Section(
            "campaigns.sec.risk",
            [
                Field("risk_policy.hold_at", "campaigns.f.hold_at", "int"),
                Field("risk_policy.block_at", "campaigns.f.block_at", "int"),
            ],
        ),
        poster_section(),
    ]
    if launched:
        sections[0].fields.append(Field("note", "campaigns.f.note"))
    return sections


def all_fields(sections: list[Section]) -> list[Field]:
    out = []
    for sec in sections:
        out += sec.fields
        for _label, _n, fields in sec.rows:
            out += fields
    return out


# --- rules document ↔ form values -----------------------------------------------------------------


def _get_path(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, list):
            i = int(part)
            doc = doc[i] if i < len(doc) else None
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


def values_from_rules(rules: dict, fields: list[Field]) -> dict[str, Any]:
    """What each input shows for a rules document."""
    out: dict[str, Any] = {}
    for f in fields:
        value = _get_path(rules, f.name)
        if f.kind == "yuan":
            out[f.name] = _yuan_text(value)
        elif f.kind == "datetime":
            moment = local_time(value)
            out[f.name] = moment.strftime("%Y-%m-%dT%H:%M") if moment else ""
        elif f.kind == "list":
            out[f.name] = ", ".join(value or [])
        elif f.kind == "checkbox":
            out[f.name] = bool(value)
        elif f.kind == "color":
            out[f.name] = value or template_colour(rules.get("poster_template"))
        else:
            out[f.name] = "" if value is None else str(value)
    return out


def template_colour(template: Any) -> str:
    """The background colour of a poster template, as a colour input shows it (#rrggbb)."""
    design = TEMPLATES.get(str(template or "")) or TEMPLATES["classic"]
    return "#{:02x}{:02x}{:02x}".format(*design.background)


def default_rules() -> dict[str, Any]:
    """A new campaign's starting point: the rules schema's own defaults (the editor's first type)."""
    return CampaignRules.model_construct(type="invite_task", title="").model_dump(mode="json")


def _set_path(doc: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        doc = doc.setdefault(part, {})
    doc[parts[-1]] = value


def _indexed_lists(doc: dict, prefix: str) -> dict[str, str]:
    """{"0": {...}, "2": {...}} under `prefix` → a list without empty rows; returns the renumbering
    (new index → shown row) so the service's errors about tiers.1 point at the row the user sees."""
    parent_path, _, key = prefix.rpartition(".")
    parent = _get_path(doc, parent_path) if parent_path else doc
    if not isinstance(parent, dict) or key not in parent:
        return {}
    rows = parent[key]
    kept = sorted((int(i) for i, row in rows.items() if row), key=int)
    parent[key] = [rows[str(i)] for i in kept]
    return {str(new): str(old) for new, old in enumerate(kept)}


def rules_from_form(
    form: dict[str, str], fields: list[Field], t
) -> tuple[dict, dict[str, list[str]], dict[str, dict[str, str]]]:
    """The rules document from the submitted form; values that are not numbers, amounts or times are
    reported against their field (before the service sees them). Also returns how list rows were
    renumbered (see `_indexed_lists`)."""
    doc: dict = {}
    errors: dict[str, list[str]] = {}
    for f in fields:
        if f.name in ("id", "note"):
            continue
        raw = form.get(f.name)
        if f.kind == "checkbox":
            _set_path(doc, f.name, raw is not None)
            continue
        text = (raw or "").strip()
        if f.kind == "color" and text.lower() == template_colour(form.get("poster_template")):
            continue  # the template's own colour: kept unset, so a change of template changes it
        if text == "":
            if f.kind in ("text", "textarea") and f.name in ("title", "rules_text"):
                _set_path(doc, f.name, "")
            continue  # empty: the schema's default (None / not set)
        if f.kind == "color" and not COLOUR.fullmatch(text):
            errors.setdefault(f.name, []).append(t("ccamp.err.color"))
            continue
        try:
            if f.kind == "int":
                value: Any = int(text)
            elif f.kind == "float":
                value = float(text)
            elif f.kind == "yuan":
                value = fen_from_yuan(text)
            elif f.kind == "datetime":
                value = _utc_from_local(text)
            elif f.kind == "list":
                value = [v.strip() for v in text.replace("，", ",").split(",") if v.strip()]
            else:
                value = text
        except (ValueError, InvalidOperation):
            key = {"int": "campaigns.err.int", "float": "campaigns.err.number", "yuan": "campaigns.err.yuan",
                   "datetime": "campaigns.err.datetime"}[f.kind]  # fmt: skip
            errors.setdefault(f.name, []).append(t(key))
            continue
        _set_path(doc, f.name, value)
    renumbered = {prefix: _indexed_lists(doc, prefix) for prefix in ("tiers", "leaderboard.rewards")}
    return doc, errors, renumbered


# The service's reasons for contradictory rules (service.rule_problems, the strategies' `needs`),
# English sentences, in the console's catalogue: pattern → message key (named groups fill it).
REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), key)
    for pattern, key in (
        (r"the window ends before it starts", "ccamp.rp.window"),
        (r"tier thresholds must increase", "ccamp.rp.tiers_increase"),
        (r"a higher tier must not be worth less", "ccamp.rp.tier_value"),
        (r"a cap of 0 allows no reward.*", "ccamp.rp.cap_zero"),
        (r"the top tier needs (?P<need>\d+) friends but the cap is (?P<cap>\d+)", "ccamp.rp.top_tier_cap"),
        (r"the budget \d+ is smaller than one reward \((?P<smallest>\d+) fen\)", "ccamp.rp.budget_small"),
        (r"a stock of 0 allows no reward.*", "ccamp.rp.stock_zero"),
        (r"order_min_amount needs a positive amount", "ccamp.rp.min_amount"),
        (r"a custom qualifying event needs its name", "ccamp.rp.event_name"),
        (r"\w+ campaigns need .+", "ccamp.rp.needs"),
        (r"at least one reward is needed", "ccamp.rp.one_reward"),
        (r"block_at must not be below hold_at", "ccamp.rp.block_hold"),
    )
)


def reason_text(err: dict, locale: str) -> str:
    """A problem the service reported, in the console's language: a validation type by the
    catalogue's `valid.*`, a contradiction by REASONS; anything else as the service said it."""
    reason = str(err.get("reason") or "")
    if not err.get("type"):
        for pattern, key in REASONS:
            found = pattern.fullmatch(reason)
            if found:
                return message(locale, key, found.groupdict(), dict.fromkeys(found.groupdict(), "text"))
    return validation_reason(err, locale)


def place_errors(
    service_errors: list[dict], renumbered: dict[str, dict[str, str]], locale: str = "zh-CN"
) -> dict[str, list[str]]:
    """The service's [{field, reason}] keyed by the form's field names (list rows as shown), each
    reason in the console's language (`reason_text`)."""
    out: dict[str, list[str]] = {}
    for err in service_errors:
        name = str(err.get("field") or "rules")
        for prefix, mapping in renumbered.items():
            if name.startswith(prefix + "."):
                index, _, rest = name[len(prefix) + 1 :].partition(".")
                if index in mapping:
                    name = f"{prefix}.{mapping[index]}" + (f".{rest}" if rest else "")
        out.setdefault(name, []).append(reason_text(err, locale))
    return out


def _row_index(key: str, prefix: str) -> int | None:
    """The row a submitted key names (`tiers.2.threshold` → 2); None for anything else, or a row
    beyond MAX_ROWS (a hostile `tiers.99999999.x` must not make the editor draw that many)."""
    if not key.startswith(prefix + "."):
        return None
    index = key[len(prefix) + 1 :].split(".", 1)[0]
    if not (index.isascii() and index.isdigit() and len(index) <= 3) or int(index) >= MAX_ROWS:
        return None
    return int(index)


def row_count(values: dict[str, Any], prefix: str) -> int:
    """Rows of the growing list to show for submitted values: each row the form had, at least one."""
    rows = [i for k in values if (i := _row_index(k, prefix)) is not None]
    return max(rows, default=0) + 1


def rules_rows(rules: dict[str, Any], kind: str) -> int:
    """Rows of the growing list a rules document fills (at least one, at most MAX_ROWS)."""
    if kind == "invite_task":
        rows = rules.get("tiers") or []
    else:
        rows = (rules.get("leaderboard") or {}).get("rewards") or []
    return min(MAX_ROWS, max(1, len(rows) if isinstance(rows, list) else 1))


def preview_rules(doc: dict[str, Any], kind: str) -> CampaignRules:
    """Rules for the editor's poster preview from a form that may not validate yet: the whole
    document if it does, else its title, deadline and poster design, else the title alone."""
    base = {"type": kind, "title": str(doc.get("title") or "")[:200] or "—"}
    poster_parts = {k: doc[k] for k in ("poster", "poster_template") if k in doc}
    deadline = {"end_at": doc["end_at"]} if "end_at" in doc else {}
    for candidate in (doc | base, base | poster_parts | deadline, base | poster_parts, base):
        try:
            return CampaignRules.model_validate(candidate)
        except ValidationError:
            continue
    return CampaignRules.model_validate({"type": kind, "title": "—"})  # a title it cannot draw

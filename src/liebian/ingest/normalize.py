"""One set of normalisation rules for every way data comes in, written as DuckDB SQL.

The file importer runs these expressions over millions of rows at once; the HTTP collector runs
the very same SQL over its batch (an Arrow table), so the two paths cannot drift apart.

Inside liebian: time is naive UTC, money is integer fen, channels have one canonical name,
direct identifiers (phones) are HMACs. Every input column arrives as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime as _dt
from zoneinfo import ZoneInfo

from liebian.config import Settings, get_settings
from liebian.identity.keys import DIRECT_TYPES, ID_TYPES
from liebian.schemas import time_bounds

KINDS = ("events", "orders", "identities", "messages")

# Canonical channel -> the names channel exports and operators use for it (compared lower-cased).
CHANNELS: dict[str, tuple[str, ...]] = {
    "wecom": ("企业微信", "企微", "wecom", "wework", "work wechat", "企业微信客户"),
    "miniprogram": ("小程序", "微信小程序", "mini-program", "mini program", "miniprogram", "mp"),
    "official_account": ("公众号", "微信公众号", "服务号", "订阅号", "official account", "official_account"),
    "channels": ("视频号", "微信视频号", "channels", "wechat channels"),
    "wechat": ("微信", "wechat", "weixin"),
    "douyin": ("抖音", "抖店", "douyin", "tiktok"),
    "xiaohongshu": ("小红书", "red", "xhs", "xiaohongshu", "rednote"),
    "kuaishou": ("快手", "kuaishou"),
    "weibo": ("微博", "weibo"),
    "app": ("app", "应用", "客户端", "application"),
    "store": ("门店", "线下门店", "线下", "store", "offline", "offline store"),
    "tmall": ("天猫", "tmall"),
    "taobao": ("淘宝", "taobao"),
    "jd": ("京东", "jd", "jingdong"),
    "pinduoduo": ("拼多多", "pdd", "pinduoduo"),
    "sms": ("短信", "sms"),
    "web": ("官网", "网站", "h5", "web", "website"),
}

ORDER_STATUSES = ("paid", "refunded", "cancelled")
# Export wording of order states; terminal states (refunded/cancelled) outrank paid.
STATUS_ALIASES: dict[str, str] = {
    "paid": "paid",
    "已支付": "paid",
    "已付款": "paid",
    "支付成功": "paid",
    "待发货": "paid",
    "已发货": "paid",
    "待收货": "paid",
    "已签收": "paid",
    "已完成": "paid",
    "交易成功": "paid",
    "completed": "paid",
    "refunded": "refunded",
    "refund": "refunded",
    "已退款": "refunded",
    "退款成功": "refunded",
    "退款完成": "refunded",
    "已退货": "refunded",
    "全额退款": "refunded",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "已取消": "cancelled",
    "取消": "cancelled",
    "交易关闭": "cancelled",
    "订单关闭": "cancelled",
    "已关闭": "cancelled",
}

# Local-time forms seen in Chinese exports that a plain TIMESTAMP cast does not read.
LOCAL_FORMATS = (
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日%H:%M:%S",
    "%Y年%m月%d日%H:%M",
    "%Y年%m月%d日",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d%H%M%S",
)

# A time of day followed by a zone designator: the string carries its own offset.
OFFSET_RE = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|UTC|[+-]\d{2}(:?\d{2})?)$"

# The columns of the generic format, per kind: (required, optional).
GENERIC_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "events": (
        ("event_id", "ts", "user_id", "id_type", "event", "channel"),
        (
            "campaign_id",
            "invite_code",
            "referrer_id",
            "referrer_id_type",
            "device_id",
            "ip",
            "received_at",
            "member_since",
            "campaign_title",
        ),
    ),
    "orders": (
        ("order_id", "ts", "user_id", "id_type", "channel"),
        ("amount", "amount_fen", "currency", "status", "campaign_id", "received_at", "member_since"),
    ),
    "messages": (
        ("message_id", "ts", "group_id", "user_id", "id_type"),
        ("text", "channel"),
    ),
    "identities": (("id_type_a", "id_a", "id_type_b", "id_b"), ("ts", "source")),
}
ID_COLUMN = {"events": "event_id", "orders": "order_id", "messages": "message_id"}
MAX_ID_LENGTH = 128
MAX_TITLE_LENGTH = 200  # a campaign's title, as the engine's campaigns allow
# Bytes (UTF-8) of any other generic column; a message's text may be longer.
MAX_VALUE_BYTES = 1024
MAX_TEXT_BYTES = 64 * 1024


def generic_columns(kind: str) -> tuple[str, ...]:
    required, optional = GENERIC_COLUMNS[kind]
    return required + optional


def channel_map(settings: Settings | None = None) -> dict[str, str]:
    """Lower-cased alias -> canonical channel, including the settings' extra aliases/channels."""
    settings = settings or get_settings()
    mapping: dict[str, str] = {}
    for canonical, aliases in CHANNELS.items():
        mapping[canonical] = canonical
        for alias in aliases:
            mapping[alias.lower()] = canonical
    for extra in settings.extra_channels:
        mapping[extra.strip().lower()] = extra.strip().lower()
    known = set(mapping.values())
    for alias, canonical in settings.channel_aliases.items():
        canonical = canonical.strip().lower()
        if canonical in known or canonical in {c.lower() for c in settings.extra_channels}:
            mapping[alias.strip().lower()] = canonical
        else:
            # An alias pointing at a name nobody declared would accept anything silently.
            raise ValueError(
                f"channel alias {alias!r} -> {canonical!r}: {canonical!r} is not a known channel; "
                "add it to extra_channels"
            )
    return mapping


def canonical_channel(value: str | None, settings: Settings | None = None) -> str | None:
    """Row-wise twin of the SQL mapping (for callers holding one value)."""
    if value is None:
        return None
    return channel_map(settings).get(value.strip().lower())


# ---------------------------------------------------------------- SQL building blocks


def q(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def clean_sql(expr: str) -> str:
    """Trim surrounding whitespace (exports pad ids with tabs to keep Excel off them); '' -> NULL.

    Prefix/suffix LIKEs and contains() are cheap byte tests; trimming every value is not.
    """
    guards = f"{expr} LIKE ' %' OR {expr} LIKE '% ' OR contains({expr}, '\t') OR contains({expr}, '\u3000')"
    return f"(CASE WHEN {expr} = '' THEN NULL WHEN {guards} THEN nullif(trim({expr}, ' \t\r\n\u3000'), '') ELSE {expr} END)"


def _fixed_offset_since_1992(tz: str) -> int | None:
    """The zone's UTC offset in seconds when it has had no DST since 1992 (Asia/Shanghai: 28800)."""

    zone = ZoneInfo(tz)
    offsets = {
        _dt(year, month, 15, 12, tzinfo=zone).utcoffset()
        for year in range(1992, 2040)
        for month in (1, 4, 7, 10)
    }
    offset = offsets.pop() if len(offsets) == 1 else None
    return int(offset.total_seconds()) if offset is not None else None


def local_to_utc_sql(expr: str, tz: str) -> str:
    """A naive local TIMESTAMP in zone `tz` -> naive UTC."""
    offset = _fixed_offset_since_1992(tz)
    icu = f"timezone('UTC', timezone({q(tz)}, {expr}))"
    if offset is None:
        return icu
    # Fixed-offset zones skip the per-row ICU lookup (the slowest step at 10M rows).
    return (
        f"(CASE WHEN {expr} >= TIMESTAMP '1992-01-01' THEN {expr} - INTERVAL {offset} SECOND ELSE {icu} END)"
    )


def ts_sql(expr: str, tz: str, as_cast: str | None = None) -> str:
    """Text -> naive UTC TIMESTAMP, or NULL when the text is no time we know.

    `as_cast` may name a column already holding try_cast(expr AS TIMESTAMP).
    """
    formats = "[" + ", ".join(q(f) for f in LOCAL_FORMATS) + "]"
    cast = as_cast or f"try_cast({expr} AS TIMESTAMP)"
    # The cast reads ISO forms with or without offset (dropping the offset): find the offset.
    has_offset = (
        f"(contains({expr}, '+') OR ends_with({expr}, 'Z') OR ends_with({expr}, 'z')"
        # CASE, not AND: a projection's AND evaluates both sides on every row
        rf" OR CASE WHEN length({expr}) > 19 THEN regexp_matches({expr}, '[T ]\d{{1,2}}:\d{{2}}.*-\d{{2}}(:?\d{{2}})?$')"
        " ELSE false END)"
    )
    return (
        "(CASE"
        f" WHEN {cast} IS NOT NULL AND NOT {has_offset} THEN {local_to_utc_sql(cast, tz)}"
        f" WHEN {cast} IS NOT NULL THEN timezone('UTC', try_cast({expr} AS TIMESTAMPTZ))"
        rf" WHEN regexp_full_match({expr}, '\d{{9,10}}(\.\d+)?')"
        f" THEN make_timestamp((({expr})::DOUBLE * 1000000)::BIGINT)"
        rf" WHEN regexp_full_match({expr}, '\d{{12,13}}')"
        f" THEN make_timestamp(({expr})::BIGINT * 1000)"
        f" ELSE {local_to_utc_sql(f'try_strptime({expr}, {formats})', tz)}"
        " END)"
    )


def money_text_sql(expr: str) -> str:
    """Strip currency signs, thousands separators and 元 from a yuan amount."""
    return f"regexp_replace({expr}, '[¥￥,，\\s元]|^RMB|^CNY', '', 'g')"


def phone_digits_sql(expr: str) -> str:
    """SQL twin of privacy.crypto.normalize_phone: digits only, +86/0086 prefix removed."""
    digits = f"regexp_replace({expr}, '\\D', '', 'g')"
    return (
        f"(CASE WHEN length({digits}) = 13 AND starts_with({digits}, '86') THEN {digits}[3:]"
        f" WHEN length({digits}) = 15 AND starts_with({digits}, '0086') THEN {digits}[5:]"
        f" ELSE {digits} END)"
    )


ID_TYPES_SQL = "[" + ", ".join(q(t) for t in ID_TYPES) + "]"
DIRECT_TYPES_SQL = "[" + ", ".join(q(t) for t in sorted(DIRECT_TYPES)) + "]"


@dataclass
class NormalizedQuery:
    """SELECT producing the normalised columns, `_line`, `_props` and `_errors` (list of structs).

    With `absent` input columns, the outputs computed from those alone (the same value in every
    row, mostly NULL) are left out of `sql`: `constants` is a one-row SELECT of them, for the
    reader to add back as literals (a million rows of a NULL column held 16 MB in the batch's
    table, and the batch outgrew the import's memory bound)."""

    sql: str
    columns: tuple[str, ...]
    constants: str | None = None


class _Builder:
    """Three layers: cleaned text (c) -> normalised values (n_*) -> values and errors."""

    def __init__(self, kind: str, absent: frozenset[str] = frozenset()):
        self.kind = kind
        self.absent = absent  # input columns NULL in every row (the file lacks them)
        self.values: dict[str, str] = {}  # output column -> expression over the cleaned layer
        self.errors: list[str] = []  # error expressions over cleaned columns and n_* values
        self.conditions: list[str] = []
        self.lookups: dict[str, tuple[str, dict[str, str]]] = {}
        self.null_without: dict[str, str] = {}  # output -> the input column it is NULL without

    def lookup(self, name: str, key_expr: str, mapping: dict[str, str]) -> str:
        """Translate `key_expr` through `mapping` with a hash join (a MAP literal is a linear scan)."""
        self.lookups[name] = (key_expr, mapping)
        return ident(f"__lk_{name}")

    def value(self, name: str, expr: str, null_without: str | None = None) -> str:
        """The output `name` computed as `expr`; `null_without`: an input column without which
        the output is NULL (whatever the other inputs are)."""
        self.values[name] = expr
        if null_without is not None:
            self.null_without[name] = null_without
        return ident(f"n_{name}")

    def error(self, condition: str, field: str, reason_sql: str) -> None:
        self.errors.append(f"CASE WHEN {condition} THEN {{'field': {q(field)}, 'reason': {reason_sql}}} END")
        self.conditions.append(f"coalesce({condition}, false)")

    def _constant(self, name: str) -> bool:
        """Whether output `name` is the same in every row: it reads only absent input columns (no
        lookup, no helper column), or is NULL without an absent one."""
        expr = self.values[name]
        read = {c for c in generic_columns(self.kind) if ident(c) in expr}
        if self.null_without.get(name) in self.absent:
            return "__" not in expr
        return bool(read) and read <= self.absent and "__" not in expr

    def _constants(self, cols: Sequence[str], constant: list[str]) -> str | None:
        """One row of the constant outputs, computed as the batch would compute them."""
        selected = [f"{self.values[n]} AS {ident(n)}" for n in constant]
        if "_props" in self.absent:
            selected.append("NULL::VARCHAR AS _props")
        if not selected:
            return None
        # every input NULL: the absent ones are, and the constant outputs ignore the others
        inputs = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in cols)
        return f"SELECT {', '.join(selected)} FROM (SELECT {inputs})"

    def sql(self, source: str, raw_row: bool = False) -> NormalizedQuery:
        cols = generic_columns(self.kind)
        cleaned = ", ".join(f"{clean_sql(ident(c))} AS {ident(c)}" for c in cols)
        computed = ", ".join(f"{expr} AS {ident('n_' + name)}" for name, expr in self.values.items())
        constant = [name for name in self.values if self._constant(name)]
        outputs = ", ".join(
            f"{ident('n_' + name)} AS {ident(name)}" for name in self.values if name not in constant
        )
        # Building the list of problems costs more than the rest of the row: only bad rows pay it.
        bad = " OR ".join(self.conditions)
        errors = (
            f"CASE WHEN {bad} THEN list_filter([" + ", ".join(self.errors) + "], lambda x: x IS NOT NULL)"
            " ELSE []::STRUCT(field VARCHAR, reason VARCHAR)[] END"
        )
        extra = ", try_cast(ts AS TIMESTAMP) AS __ts_cast" if "ts" in cols else ""
        joins, lk_cols = "", ""
        for name, (key_expr, mapping) in self.lookups.items():
            extra += f", {key_expr} AS {ident('__key_' + name)}"
            values = ", ".join(f"({q(k)}, {q(v)})" for k, v in sorted(mapping.items()))
            joins += (
                f" LEFT JOIN (VALUES {values}) AS {ident('lk_' + name)}(k, v)"
                f" ON {ident('lk_' + name)}.k = i.{ident('__key_' + name)}"
            )
            lk_cols += f", {ident('lk_' + name)}.v AS {ident('__lk_' + name)}"
        passed = "_line, _props, _rawrow" if raw_row else "_line, _props"
        kept = passed.replace(", _props", "") if "_props" in self.absent else passed
        sql = (
            f"SELECT {kept}, {outputs}, {errors} AS _errors FROM (\n"
            f"  SELECT *, {computed} FROM (\n"
            f"    SELECT i.*{lk_cols} FROM (\n"
            f"      SELECT *{extra} FROM (SELECT {passed}, {cleaned} FROM {source})\n"
            f"    ) i{joins}\n"
            "  )\n)"
        )
        if raw_row:
            # The raw row as JSON text for the rejects: built for bad rows only.
            sql = (
                "SELECT * EXCLUDE (_rawrow), CASE WHEN len(_errors) > 0 THEN to_json(_rawrow)::VARCHAR END"
                f" AS _raw FROM (\n{sql}\n)"
            )
        return NormalizedQuery(sql=sql, columns=tuple(self.values), constants=self._constants(cols, constant))


def _identifier_checks(
    b: _Builder, type_col: str, value_col: str, field_type: str, field_value: str, digits: str
) -> None:
    """`digits` names the n_* column holding the phone digits (_raw_value_sql); the type is read
    lower-cased from its n_* column (lower() once a row, not once per check)."""
    t, v, lowered = ident(type_col), ident(value_col), ident(f"n_{type_col}")
    b.error(f"{v} IS NULL", field_value, q(f"missing {field_value}"))
    b.error(f"{t} IS NULL", field_type, q(f"missing {field_type}"))
    b.error(
        f"{t} IS NOT NULL AND NOT list_contains({ID_TYPES_SQL}, {lowered})",
        field_type,
        f"'unknown id_type ' || {t}",
    )
    # CASE, not AND: only CASE skips the regex for rows that are no phones (AND evaluates both sides).
    b.error(
        f"CASE WHEN {lowered} = 'phone' AND {v} IS NOT NULL"
        f" THEN NOT regexp_full_match({ident(digits)}, '\\d{{7,15}}') ELSE false END",
        field_value,
        q("not a phone number"),
    )
    b.error(
        f"{lowered} <> 'phone' AND length({v}) > {MAX_ID_LENGTH}",
        field_value,
        q(f"{field_value} longer than {MAX_ID_LENGTH} characters"),
    )


def _raw_value_sql(type_expr: str, value_col: str) -> str:
    """The identifier as it goes on: phone digits (hashed later) or the cleaned value."""
    v = ident(value_col)
    return f"CASE WHEN {type_expr} = 'phone' THEN {phone_digits_sql(v)} ELSE {v} END"


def _ts_checks(b: _Builder, name: str, required: bool, bounds: tuple[_dt, _dt]) -> None:
    col, n_col = ident(name), ident("n_" + name)
    if required:
        b.error(f"{col} IS NULL", name, q(f"missing {name}"))
    b.error(f"{col} IS NOT NULL AND {n_col} IS NULL", name, f"'unreadable timestamp ' || {col}")
    # A time outside the sane range (a year 1 from a broken clock) would break every analysis later.
    low, high = (f"{t:%Y-%m-%d %H:%M:%S}" for t in bounds)
    b.error(
        f"{n_col} < TIMESTAMP {q(low)} OR {n_col} > TIMESTAMP {q(high)}",
        name,
        q(f"timestamp outside {low} … {high} UTC: ") + f" || {col}",
    )


def _text_checks(b: _Builder, kind: str, nul_free: bool = False) -> None:
    """No generic column may hold a NUL character (PostgreSQL refuses them) or be absurdly long.
    `nul_free`: the source cannot hold one (skips a scan of every value)."""
    for name in generic_columns(kind):
        col = ident(name)
        limit = MAX_TEXT_BYTES if name == "text" else MAX_VALUE_BYTES
        if not nul_free:
            b.error(f"contains({col}, chr(0))", name, q(f"{name} contains a NUL character"))
        b.error(f"strlen({col}) > {limit}", name, q(f"{name} longer than {limit} bytes"))


def _identity_pair_columns(b: _Builder, tz: str, bounds: tuple[_dt, _dt]) -> None:
    """identities: two identifiers (type and value, a and b) that belong to one person, and when."""
    for side in ("a", "b"):
        t = ident(f"id_type_{side}")
        b.value(f"id_type_{side}", f"lower({t})")
        b.value(f"raw_{side}", _raw_value_sql(f"lower({t})", f"id_{side}"))
        _identifier_checks(
            b, f"id_type_{side}", f"id_{side}", f"id_type_{side}", f"id_{side}", f"n_raw_{side}"
        )
    b.value("ts", ts_sql('"ts"', tz, as_cast="__ts_cast"))
    _ts_checks(b, "ts", required=False, bounds=bounds)
    b.value("source", '"source"')


def _event_columns(b: _Builder) -> None:
    """events: the event, its campaign, invite, device and address, and the referrer's identifier."""
    b.value("event", '"event"')
    b.error('"event" IS NULL', "event", q("missing event"))
    for col in ("campaign_id", "invite_code", "device_id", "ip"):
        b.value(col, ident(col))
    ref_type = 'lower(coalesce("referrer_id_type", "id_type"))'
    # NULL without a referrer: the checks read it, never lower() every row again (a file without
    # referrers then checks none at all)
    n_ref_type = b.value(
        "referrer_id_type", f'CASE WHEN "referrer_id" IS NOT NULL THEN {ref_type} END', "referrer_id"
    )
    referrer_raw = _raw_value_sql(ref_type, "referrer_id")
    b.value("referrer_raw", f'CASE WHEN "referrer_id" IS NOT NULL THEN {referrer_raw} END', "referrer_id")
    b.error(
        f'"referrer_id" IS NOT NULL AND NOT list_contains({ID_TYPES_SQL}, {n_ref_type})',
        "referrer_id_type",
        f"'unknown id_type ' || coalesce({ref_type}, '')",
    )
    b.error(
        f"CASE WHEN {n_ref_type} = 'phone'"
        " THEN NOT regexp_full_match(\"n_referrer_raw\", '\\d{7,15}') ELSE false END",
        "referrer_id",
        q("not a phone number"),
    )


def _order_columns(b: _Builder) -> None:
    """orders: the amount (fen, or yuan with at most two decimals), currency, status and campaign."""
    yuan = money_text_sql('"amount"')
    n_fen = b.value(
        "amount_fen",
        'CASE WHEN "amount_fen" IS NOT NULL THEN try_cast("amount_fen" AS BIGINT)'
        f" WHEN regexp_full_match({yuan}, '-?\\d{{1,13}}(\\.\\d{{1,2}})?')"
        f" THEN (try_cast({yuan} AS DECIMAL(18, 2)) * 100)::BIGINT END",
    )
    b.error('"amount" IS NULL AND "amount_fen" IS NULL', "amount", q("missing amount"))
    b.error(
        '"amount_fen" IS NOT NULL AND NOT regexp_full_match("amount_fen", \'-?\\d{1,15}\')',
        "amount_fen",
        "'not an integer number of fen: ' || \"amount_fen\"",
    )
    b.error(
        f'"amount_fen" IS NULL AND "amount" IS NOT NULL AND NOT regexp_full_match({yuan}, \'-?\\d{{1,13}}(\\.\\d{{1,2}})?\')',
        "amount",
        "'not an amount in yuan with at most 2 decimals: ' || \"amount\"",
    )
    b.error(f'"amount_fen" IS NOT NULL AND {n_fen} < 0', "amount_fen", q("negative amount"))
    b.error(f'"amount_fen" IS NULL AND {n_fen} < 0', "amount", q("negative amount"))
    n_cur = b.value("currency", "upper(coalesce(\"currency\", 'CNY'))")
    b.error(
        f"NOT regexp_full_match({n_cur}, '[A-Z]{{3}}')",
        "currency",
        "'not an ISO currency code: ' || \"currency\"",
    )
    status = b.lookup("status", 'lower("status")', STATUS_ALIASES)
    n_status = b.value("status", f"CASE WHEN \"status\" IS NULL THEN 'paid' ELSE {status} END")
    b.error(f'"status" IS NOT NULL AND {n_status} IS NULL', "status", "'unknown order status ' || \"status\"")
    b.value("campaign_id", '"campaign_id"')


def normalize_query(
    kind: str,
    source: str,
    settings: Settings | None = None,
    raw_row: bool = False,
    absent: frozenset[str] = frozenset(),
    nul_free: bool = False,
) -> NormalizedQuery:
    """Build the normalising SELECT over `source`, a relation holding the generic columns as text.

    `source` must have `_line` (BIGINT), `_props` (JSON text or NULL) and every generic column of
    `kind` (NULL where the input lacked it). With `raw_row`, `source` also has `_rawrow` (the
    input row as a struct, `mapping_sql(keep_raw=True)`) and the query adds `_raw`: that row as
    JSON text where the row has errors, else NULL. `absent`: see NormalizedQuery. `nul_free`:
    `source` holds no NUL character (a CSV file: its reader refuses any file with a NUL byte), so
    no value is searched for one.
    """
    settings = settings or get_settings()
    tz = settings.timezone
    b = _Builder(kind, absent)
    bounds = time_bounds(settings)
    _text_checks(b, kind, nul_free)
    if kind == "identities":
        _identity_pair_columns(b, tz, bounds)
        return b.sql(source, raw_row)

    id_col = ID_COLUMN[kind]
    idc = ident(id_col)
    b.value(id_col, idc)
    b.error(f"{idc} IS NULL", id_col, q(f"missing {id_col}"))
    b.error(f"length({idc}) > {MAX_ID_LENGTH}", id_col, q(f"{id_col} longer than {MAX_ID_LENGTH} characters"))

    b.value("ts", ts_sql('"ts"', tz, as_cast="__ts_cast"))
    _ts_checks(b, "ts", required=True, bounds=bounds)

    # Identifiers: the type is checked; phones become digits here and an HMAC later (per distinct value).
    b.value("id_type", 'lower("id_type")')
    b.value("user_raw", _raw_value_sql('lower("id_type")', "user_id"))
    _identifier_checks(b, "id_type", "user_id", "id_type", "user_id", "n_user_raw")

    channel_text = "coalesce(\"channel\", 'wecom')" if kind == "messages" else '"channel"'
    if kind != "messages":
        b.error('"channel" IS NULL', "channel", q("missing channel"))
    n_channel = b.value("channel", b.lookup("channel", f"lower({channel_text})", channel_map(settings)))
    b.error(
        f"{channel_text} IS NOT NULL AND {n_channel} IS NULL",
        "channel",
        f"'unknown channel ' || {channel_text}",
    )

    if kind == "events":
        _event_columns(b)
        title = b.value("campaign_title", "nullif(trim(\"campaign_title\"), '')")
        b.error(
            f"length({title}) > {MAX_TITLE_LENGTH}",
            "campaign_title",
            q(f"campaign_title longer than {MAX_TITLE_LENGTH} characters"),
        )

    if kind in ("events", "orders"):
        b.value("received_at", ts_sql('"received_at"', tz))
        _ts_checks(b, "received_at", required=False, bounds=bounds)
        # since when the person is a member (a CRM's join date): kept per person in `members`
        b.value("member_since", ts_sql('"member_since"', tz))
        _ts_checks(b, "member_since", required=False, bounds=bounds)

    if kind == "orders":
        _order_columns(b)

    if kind == "messages":
        b.value("group_id", '"group_id"')
        b.error('"group_id" IS NULL', "group_id", q("missing group_id"))
        b.value("text", '"text"')
    return b.sql(source, raw_row)

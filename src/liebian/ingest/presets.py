"""Channel export presets: how the columns of a channel's own export map onto the generic format.

A preset names, for each generic column, a SQL template over *sources*; a source is a list of
header spellings seen in real exports (the first one present in the file wins, compared after
lower-casing and unifying full-width brackets). A template referencing only absent sources gives
NULL. Headers no template uses become JSON properties, except personal data a preset drops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from liebian.errors import Invalid
from liebian.ingest.normalize import GENERIC_COLUMNS, clean_sql, generic_columns, ident, q

PLACEHOLDER = re.compile(r"\{(\w+)\}")
# How exports name the day a customer became a member (会员): a preset with it maps `member_since`.
MEMBER_SINCE_HEADERS = ("入会时间", "成为会员时间", "会员注册时间", "开卡时间", "member_since")


class PresetError(Invalid, ValueError):
    """The file's columns cannot feed the chosen preset (a whole-file problem)."""

    def __init__(self, message: str):
        super().__init__("invalid", message, field="preset")


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str | None  # None: usable for every kind (the generic format)
    description: str
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)  # generic column -> SQL template
    drop: tuple[str, ...] = ()  # personal data that must not land in props


def header_key(name: str) -> str:
    """How headers are compared: case, spaces and full-width brackets do not matter."""
    name = name.replace("\ufeff", "").replace("（", "(").replace("）", ")")
    return re.sub(r"\s+", "", name).lower()


def _generic(kind: str) -> Preset:
    cols = generic_columns(kind)
    return Preset(
        name="generic",
        kind=kind,
        description="liebian's generic format (column names as documented)",
        sources={c: (c,) for c in cols},
        columns={c: "{" + c + "}" for c in cols},
    )


WECOM_CONTACTS = Preset(
    name="wecom_contacts",
    kind="events",
    description="企业微信客户导出 (WeCom external-contact export) -> add_external_contact events",
    sources={
        "member_since": MEMBER_SINCE_HEADERS,
        "external_userid": ("外部联系人ID", "外部联系人userid", "external_userid", "客户ID", "客户userid"),
        "add_time": ("添加时间", "添加好友时间", "添加客户时间", "createtime", "add_time"),
        "staff": ("添加人", "添加人账号", "所属员工", "跟进人", "userid"),
        "state": ("渠道码", "渠道活码", "state", "邀请码"),
        "campaign": ("活动ID", "campaign_id"),
        "referrer": ("推荐人外部联系人ID", "推荐人", "referrer_id"),
    },
    columns={
        # The export has no event id: derive one from who added whom when, so re-imports dedupe.
        "event_id": "'wecom-add-' || md5(coalesce({external_userid}, '') || '|' || coalesce({staff}, '') "
        "|| '|' || coalesce({add_time}, ''))",
        "ts": "{add_time}",
        "member_since": "{member_since}",
        "user_id": "{external_userid}",
        "id_type": "'external_userid'",
        "event": "'add_external_contact'",
        "channel": "'wecom'",
        "invite_code": "{state}",
        "campaign_id": "{campaign}",
        "referrer_id": "{referrer}",
        "referrer_id_type": "CASE WHEN {referrer} IS NOT NULL THEN 'external_userid' END",
        "staff": "{staff}",
    },
    drop=("客户名称", "客户昵称", "昵称", "备注", "备注名", "手机号", "电话", "描述", "头像"),
)

MINIPROGRAM_ORDERS = Preset(
    name="miniprogram_orders",
    kind="orders",
    description="微信小程序订单导出 (WeChat mini-program order export)",
    sources={
        "member_since": MEMBER_SINCE_HEADERS,
        "order_id": ("订单号", "订单编号", "商户订单号", "order_id"),
        "ts": ("下单时间", "创建时间", "支付时间", "order_time"),
        "unionid": ("用户unionid", "unionid", "用户UnionID"),
        "openid": ("用户openid", "openid", "用户OpenID"),
        "amount": ("实付金额(元)", "实付金额", "支付金额(元)", "订单金额(元)", "amount"),
        "status": ("订单状态", "status"),
        "campaign": ("活动ID", "活动编号", "campaign_id"),
    },
    columns={
        "member_since": "{member_since}",
        "order_id": "{order_id}",
        "ts": "{ts}",
        # unionid is the cross-app identifier: prefer it, fall back to the app's openid.
        "user_id": "coalesce(nullif(trim({unionid}), ''), {openid})",
        "id_type": "CASE WHEN nullif(trim({unionid}), '') IS NOT NULL THEN 'unionid' "
        "WHEN {openid} IS NOT NULL THEN 'openid' END",
        "amount": "{amount}",
        "status": "{status}",
        "currency": "'CNY'",
        "channel": "'miniprogram'",
        "campaign_id": "{campaign}",
    },
    drop=(
        "收货人",
        "收货人姓名",
        "收货人手机号",
        "联系电话",
        "手机号",
        "收货地址",
        "详细地址",
        "昵称",
        "用户昵称",
    ),
)

DOUYIN_ORDERS = Preset(
    name="douyin_orders",
    kind="orders",
    description="抖店订单导出 (Douyin shop order export)",
    sources={
        "member_since": MEMBER_SINCE_HEADERS,
        "order_id": ("订单编号", "主订单编号", "订单号", "子订单编号"),
        "ts": ("下单时间", "订单提交时间", "支付时间", "支付完成时间"),
        "buyer": ("抖音用户ID", "买家ID", "用户ID", "买家抖音ID"),
        "amount": ("实付金额", "订单实付金额", "订单应付金额", "应付金额"),
        "status": ("订单状态",),
    },
    columns={
        "member_since": "{member_since}",
        "order_id": "{order_id}",
        "ts": "{ts}",
        "user_id": "{buyer}",
        "id_type": "'douyin_openid'",
        "amount": "{amount}",
        "status": "{status}",
        "currency": "'CNY'",
        "channel": "'douyin'",
    },
    drop=(
        "收件人",
        "收件人姓名",
        "收件人手机号",
        "收货人",
        "收货人手机号",
        "手机号",
        "详细地址",
        "收货地址",
        "买家昵称",
    ),
)

NAMED = {p.name: p for p in (WECOM_CONTACTS, MINIPROGRAM_ORDERS, DOUYIN_ORDERS)}
PRESET_NAMES = ("generic", *NAMED)


def get_preset(name: str, kind: str) -> Preset:
    if name == "generic":
        return _generic(kind)
    preset = NAMED.get(name)
    if preset is None:
        raise PresetError(f"unknown preset {name!r}; available: {', '.join(PRESET_NAMES)}")
    if preset.kind != kind:
        raise PresetError(f"preset {name!r} imports {preset.kind}, not {kind}")
    return preset


@dataclass
class Mapping:
    """The SELECT turning the raw file table into generic columns plus `_props`."""

    sql: str
    used_headers: list[str]
    prop_headers: list[str]
    # generic columns (and `_props`) the SELECT fills with NULL: the file has nothing for them
    absent: frozenset[str] = frozenset()


def _missing_columns(preset: Preset, kind: str, headers: list[str], missing: list[str]) -> PresetError:
    """The error naming the columns a file lacks, with the spellings the preset accepts for them."""
    wanted = []
    for col in missing:
        template = preset.columns.get(col, "")
        spellings = [s for n in PLACEHOLDER.findall(template) for s in preset.sources.get(n, ())]
        wanted.append(f"{col} ({' / '.join(spellings)})" if spellings and preset.name != "generic" else col)
    return PresetError(
        f"the file lacks column(s) the {preset.name} preset needs for {kind}: {', '.join(wanted)}; "
        f"found columns: {', '.join(headers)}"
    )


def mapping_sql(
    preset: Preset, kind: str, headers: list[str], raw: str = "raw", keep_raw: bool = False
) -> Mapping:
    """Build the mapping SELECT; raise PresetError naming missing required columns.

    `keep_raw`: also pass the file's row on as a struct `_rawrow` (header -> value), which the
    normaliser turns into the rejects' raw JSON for bad rows only (see normalize_query).
    """
    by_key: dict[str, str] = {}
    for h in headers:
        by_key.setdefault(header_key(h), h)
    found: dict[str, str] = {}
    for source, spellings in preset.sources.items():
        for spelling in spellings:
            if header_key(spelling) in by_key:
                found[source] = by_key[header_key(spelling)]
                break

    def text(header: str) -> str:
        return f"CAST({ident(header)} AS VARCHAR)"

    def render(template: str) -> tuple[str, bool]:
        names = PLACEHOLDER.findall(template)
        present = [n for n in names if n in found]
        sql = PLACEHOLDER.sub(
            lambda m: text(found[m.group(1)]) if m.group(1) in found else "NULL::VARCHAR", template
        )
        return sql, (not names) or bool(present)

    required, optional = GENERIC_COLUMNS[kind]
    select: dict[str, str] = {}
    missing: list[str] = []
    for col in required + optional:
        template = preset.columns.get(col)
        provided = False
        if template is not None:
            sql, provided = render(template)
            if provided:
                select[col] = sql
        if not provided:
            select[col] = "NULL::VARCHAR"
            if col in required:
                missing.append(col)
    if kind == "orders" and select["amount"] == "NULL::VARCHAR" and select["amount_fen"] == "NULL::VARCHAR":
        missing.append("amount or amount_fen")
    if missing and headers:  # no headers at all: nothing but unparseable records, rejected on their own
        raise _missing_columns(preset, kind, headers, missing)

    used = set(found.values())
    dropped = {header_key(d) for d in preset.drop}
    prop_headers = [h for h in headers if h not in used and header_key(h) not in dropped and h != "_line"]
    # Preset columns outside the generic format (e.g. the WeCom staff member) are properties too.
    extra_props = {col: render(t)[0] for col, t in preset.columns.items() if col not in select}
    entries = [f"{{'k': {q(h)}, 'v': {clean_sql(text(h))}}}" for h in prop_headers]
    entries += [f"{{'k': {q(col)}, 'v': {sql}}}" for col, sql in extra_props.items()]
    if entries:
        props = (
            "nullif(to_json(map_from_entries(list_filter(["
            + ", ".join(entries)
            + "], lambda e: e.v IS NOT NULL)))::VARCHAR, '{}')"
        )
    else:
        props = "NULL::VARCHAR"
    body = ",\n  ".join(f"{sql} AS {ident(col)}" for col, sql in select.items())
    if keep_raw:
        row = "{" + ", ".join(f"{q(h)}: {ident(h)}" for h in headers) + "}" if headers else "NULL::VARCHAR"
        body += f",\n  {row} AS _rawrow"
    return Mapping(
        sql=f"SELECT _line,\n  {body},\n  {props} AS _props\nFROM {raw}",
        used_headers=sorted(used),
        prop_headers=prop_headers + list(extra_props),
        absent=frozenset(c for c, sql in {**select, "_props": props}.items() if sql == "NULL::VARCHAR"),
    )

"""The console's shared machinery: page rendering, navigation, filters, tables with export, charts.

Every console page (web/pages/*.py) renders through `render()`, which gives templates the locale,
the translator, the navigation the user's role may see, the shared filters and the CSRF token that
htmx sends with every write (the auth gate checks it). Tables are `Table` objects so that the same
rows are shown, formatted per locale, and exported as CSV or XLSX from the page's own URL
(`?export=<table id>&format=csv|xlsx`, with the page's filters). Charts are `Chart` objects: an
ECharts option serialised into the page as JSON and drawn by static/console.js (no inline script:
the console's CSP allows only its own files).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from liebian.analytics import service as analytics
from liebian.analytics.common import AnalyticsError
from liebian.auth.deps import client_ip, principal_of
from liebian.campaigns import service as campaign_service
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.ingest import campaigns as imported_campaigns
from liebian.privacy import watermark
from liebian.tags import service as tags
from liebian.tags.service import TagError
from liebian.web import people
from liebian.web.evidence import evidence
from liebian.web.format import clean, code_name, format_count, format_decimal, local_time, rich_translator
from liebian.web.i18n import (
    DEFAULT_LOCALE,
    format_money_fen,
    format_money_yuan,
    format_number,
    format_percent,
    locale_of,
    translator,
)
from liebian.web.warmstatus import WARM_STATUS

logger = logging.getLogger(__name__)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


# --- navigation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    key: str  # i18n key nav.<key>
    path: str
    permission: str
    group: str  # i18n key navgroup.<group>


# The console's pages in menu order; a page appears only for roles holding its permission.
NAV: list[NavItem] = [
    NavItem("overview", "/", "analytics:read", "insight"),
    NavItem("funnel", "/funnel", "analytics:read", "insight"),
    NavItem("retention", "/retention", "analytics:read", "insight"),
    NavItem("referrals", "/referrals", "analytics:read", "insight"),
    NavItem("channels", "/channels", "analytics:read", "insight"),
    NavItem("scorecard", "/scorecard", "analytics:read", "insight"),
    NavItem("ltv", "/ltv", "segments:read", "models"),
    NavItem("attribution", "/attribution", "analytics:read", "models"),
    NavItem("experiments", "/experiments", "analytics:read", "models"),
    NavItem("campaigns", "/campaigns", "campaign:read", "operations"),
    NavItem("fraud", "/fraud", "fraud:read", "operations"),
    NavItem("alerts", "/alerts", "analytics:read", "operations"),
    NavItem("community", "/community", "analytics:read", "operations"),
    NavItem("reports", "/reports", "analytics:read", "operations"),
    NavItem("journeys", "/journeys", "campaign:read", "operations"),
    NavItem("complaints", "/complaints", "complaints:handle", "operations"),
    NavItem("quality", "/quality", "quality:read", "data"),
    NavItem("import", "/import", "ingest:write", "data"),
    NavItem("settings", "/settings", "auth:admin", "data"),
    NavItem("costs", "/costs", "campaign:read", "operations"),
    NavItem("insights", "/insights", "analytics:read", "insight"),
    NavItem("dashboards", "/dashboards", "analytics:read", "insight"),
    NavItem("rewards", "/rewards", "rewards:read", "operations"),
    NavItem("people", "/people", "identity:read", "insight"),
]


def _principal(request: Request):

    cached = getattr(request.state, "console_principal", None)
    if cached is None:
        cached = principal_of(request)
        request.state.console_principal = cached
    return cached


def nav_for(request: Request, available: Callable[[str], bool]) -> list[dict[str, Any]]:
    """The menu for this user: items grouped, only pages that exist and the role may open."""
    principal = _principal(request)
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in NAV:
        if not available(item.path) or not principal.can(item.permission):
            continue
        current = request.url.path == item.path or (
            item.path != "/" and request.url.path.startswith(item.path + "/")
        )
        groups.setdefault(item.group, []).append({"key": item.key, "path": item.path, "current": current})
    return [{"group": g, "items": items} for g, items in groups.items()]


def first_page_for(request: Request) -> str:
    """The first console page this user may open (where the console lands after login)."""
    principal = _principal(request)
    paths = _available_paths(request)
    for item in NAV:
        if item.path in paths and principal.can(item.permission):
            return item.path
    return "/"


def _available_paths(request: Request) -> set[str]:
    app = request.app
    paths = getattr(app.state, "console_paths", None)
    if paths is None:
        paths = {rc.path for rc in iter_route_contexts(app.routes)}
        app.state.console_paths = paths
    return paths


# --- cached results -----------------------------------------------------------------------------

# Analyses over an unchanged warehouse give the same answer: a page's results are kept per
# (warehouse file state, key) so that a dashboard reloaded, or reached again through the menu, answers
# at once. Figures from the operational store (reward costs in ROI/CAC, campaign launch dates) may
# change without the warehouse changing: an entry older than the TTL is still served, and recomputed
# in the background (stale-while-revalidate), so it lags by at most TTL + one computation.
CACHE_TTL_SECONDS = 60
CACHE_SIZE = 64
_CACHE: dict[tuple, tuple[float, Any]] = {}
_CACHE_LOCK = threading.Lock()
_REFRESHING: set[tuple] = set()


def cached(key: tuple, compute: Callable[[], Any]) -> Any:

    full = (warehouse.file_state(), *key)
    with _CACHE_LOCK:
        hit = _CACHE.get(full)
    if hit is None:
        return _store(full, compute())
    if time.monotonic() - hit[0] >= CACHE_TTL_SECONDS:
        _refresh_later(full, compute)
    return hit[1]


def cached_analytics(name: str, af: Any, *args: Any, **kwargs: Any) -> Any:
    """`analytics.service.<name>(af, …)` through `cached`: pages that show the same analysis share it."""

    key = ("analytics", name, af, args, tuple(sorted(kwargs.items())))
    return cached(key, lambda: getattr(analytics, name)(af, *args, **kwargs))


def _store(full: tuple, value: Any) -> Any:
    with _CACHE_LOCK:
        if full not in _CACHE and len(_CACHE) >= CACHE_SIZE:  # drop the oldest
            _CACHE.pop(min(_CACHE, key=lambda k: _CACHE[k][0]))
        _CACHE[full] = (time.monotonic(), value)
    return value


def _refresh_later(full: tuple, compute: Callable[[], Any]) -> None:
    with _CACHE_LOCK:
        if full in _REFRESHING:
            return
        _REFRESHING.add(full)

    def refresh() -> None:
        try:
            _store(full, compute())
        except Exception:  # noqa: BLE001 - the stale value stays; the next request tries again
            logger.exception("console: refreshing a cached result failed")
        finally:
            with _CACHE_LOCK:
                _REFRESHING.discard(full)

    threading.Thread(target=refresh, name="console-refresh", daemon=True).start()


# Warmers compute the default view of the heaviest pages (no filters) ahead of the first visitor:
# when the server starts and whenever the warehouse changes (an import, collected events) — at most
# once per WARM_INTERVAL_SECONDS, so that a steady stream of collected events does not keep a core busy.
# Each warmer fills the cache through `cached`; the list is web/pages/warmup.py WARMERS.
WARM_POLL_SECONDS = 5.0
WARM_INTERVAL_SECONDS = 30.0


def warm_once(warmers: Sequence[Callable[[], None]]) -> None:
    """Run every warmer once, in order; a failing warmer is logged and the others still run."""
    started = time.perf_counter()
    for fn in warmers:
        try:
            fn()
        except Exception:  # noqa: BLE001 - warming is an optimisation: the page computes on demand
            logger.exception("console: warming %s failed", fn.__name__)
    WARM_STATUS.update(runs=WARM_STATUS["runs"] + 1, seconds=round(time.perf_counter() - started, 3))


def start_warming(stop: threading.Event, warmers: Sequence[Callable[[], None]]) -> threading.Thread:
    """A daemon thread that runs `warmers` now and again after every change of the warehouse."""

    def loop() -> None:
        warmed = None
        while not stop.is_set():
            state = warehouse.file_state()
            if state != warmed:
                warm_once(warmers)
                warmed = state
                stop.wait(WARM_INTERVAL_SECONDS)
            stop.wait(WARM_POLL_SECONDS)

    thread = threading.Thread(target=loop, name="console-warmer", daemon=True)
    thread.start()
    return thread


# --- filters ----------------------------------------------------------------------------------


class FilterError(ValueError):
    """A console filter the user typed is not valid; shown on the page, not a crash."""


@dataclass(frozen=True)
class ConsoleFilters:
    """Period, channel, campaign and segment (a tag name): shared by every page, kept in the URL."""

    start: str = ""
    end: str = ""
    channel: str = ""
    campaign: str = ""
    segment: str = ""

    KEYS = ("start", "end", "channel", "campaign", "segment")

    @classmethod
    def from_request(cls, request: Request) -> ConsoleFilters:
        q = request.query_params
        return cls(**{k: (q.get(k) or "").strip() for k in cls.KEYS})

    def params(self, **overrides: str) -> dict[str, str]:
        values = {k: getattr(self, k) for k in self.KEYS} | overrides
        return {k: v for k, v in values.items() if v}

    def query(self, **overrides: str) -> str:
        """The filters as a query string (with overrides), for links that keep them."""
        params = self.params(**overrides)
        return ("?" + urlencode(params)) if params else ""

    @property
    def active(self) -> bool:
        return bool(self.params())

    def to_analytics(self):
        """The analytics service's Filters; a segment names a tag whose current members are used."""

        segment = None
        if self.segment:
            segment = segment_members(self.segment)
        try:
            return analytics.make_filters(
                self.start or None,
                self.end or None,
                [self.channel] if self.channel else (),
                [self.campaign] if self.campaign else (),
                segment,
            )
        except AnalyticsError as exc:
            raise FilterError(str(exc)) from exc


def segment_members(tag: str) -> list[int]:

    with session_scope() as s:
        try:
            out: list[int] = []
            while True:  # page through the tag's members
                batch = tags.members(s, tag, limit=50_000, offset=len(out))
                out.extend(batch)
                if len(batch) < 50_000:
                    return out
        except TagError as exc:
            raise FilterError(f"segment: {exc}") from exc


def filter_options() -> dict[str, list[Any]]:
    """Choices for the filter bar: channels seen in the warehouse (cached with the warehouse's
    state), campaigns and tags (read fresh: they change in the database, e.g. after a refit).

    Campaigns are `(id, title)` pairs: the engine's campaigns by title, then the campaigns only the
    warehouse knows (imported data, e.g. the demo's c_invite), by their imported title (else id)."""

    with session_scope() as s:
        titles, segments = campaign_service.campaign_titles(s), tags.tag_names(s)
    known = {cid for cid, _ in titles}
    imported = [
        (cid, title) for cid, title in cached(("campaigns",), _warehouse_campaigns) if cid not in known
    ]
    return {
        "channels": cached(("channels",), _warehouse_channels),
        "campaigns": titles + imported,
        "segments": segments,
    }


def _warehouse_campaigns() -> list[tuple[str, str]]:

    try:
        with warehouse.connect() as con:
            return imported_campaigns.warehouse_campaigns(con)
    except Exception:  # noqa: BLE001 - an empty or missing warehouse just offers no campaigns
        return []


def _warehouse_channels() -> list[str]:

    try:
        with warehouse.connect() as con:
            return [r[0] for r in con.execute(
                "SELECT DISTINCT channel FROM events WHERE channel IS NOT NULL ORDER BY 1 LIMIT 200"
            ).fetchall()]  # fmt: skip
    except Exception:  # noqa: BLE001 - an empty or missing warehouse just offers no channels
        return []


# --- tables -----------------------------------------------------------------------------------

# kind → how a cell is shown; exports keep raw values (numbers stay numbers in Excel).
# decimal: at most 2 places, trailing zeros dropped; utc: a stored (naive UTC) time shown in the
# display zone with its offset; datetime: a time already converted to the display zone.
KINDS = ("text", "int", "float", "decimal", "pct", "fen", "yuan", "date", "datetime", "utc")


@dataclass
class Column:
    key: str
    label: str  # i18n key or literal text
    kind: str = "text"
    codes: str = ""  # a code column: each value shown by its catalogue name `<codes>.<value>`
    data: bool = False  # values are data (titles, names, ids): shown as they are, translate="no"
    # "person": person ids shown by name; "actor": who acted (web/people.py). Set by the key's name.
    who: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.key}: unknown kind {self.kind!r}")
        if not self.who:
            self.who = "person" if self.key.endswith("person_id") else "actor" if self.key == "actor" else ""


@dataclass
class Table:
    id: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    title: str = ""  # i18n key
    link: Callable[[dict[str, Any]], str] | None = None  # a row's drill-down URL
    link_column: str | None = None
    # cell value (as text) → how a person or actor column shows it; filled by render (web/people.py)
    labels: dict[str, str] = field(default_factory=dict)

    def cells(self, row: dict[str, Any], locale: str) -> list[str]:
        t = translator(locale)
        return [
            code_name(t, c.codes, row.get(c.key))
            if c.codes and row.get(c.key) not in (None, "")
            else self.labels.get(str(row.get(c.key)), "")
            if c.who and str(row.get(c.key)) in self.labels
            else format_cell(row.get(c.key), c.kind, locale)
            for c in self.columns
        ]


def format_cell(value: Any, kind: str, locale: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, Markup):  # a cell built with marked-up parts (data values): kept as markup
        return value
    if kind == "int":
        return format_count(value, locale)
    if kind == "float":
        return f"{clean(float(value)):,.2f}"
    if kind == "decimal":
        return format_decimal(value)
    if kind == "utc":
        return local_time(value)
    if kind == "pct":
        return format_percent(float(value))
    if kind == "fen":
        return format_money_fen(int(round(float(value))), locale)
    if kind == "yuan":
        return format_money_yuan(float(value), locale)
    if kind == "date":
        return value.isoformat() if isinstance(value, date) else str(value)[:10]
    if kind == "datetime":
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        return str(value)[:16].replace("T", " ")
    return str(value)


def _export_value(value: Any) -> Any:
    if isinstance(value, Markup):  # a cell with marked-up parts (data values): its text
        return value.striptags()
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return value


def export_table(table: Table, fmt: str, locale: str, request: Request) -> Response:
    """The table's rows as CSV (UTF-8 with BOM, which Excel opens correctly) or XLSX, watermarked
    (privacy/watermark.py: who, when, which page and filters; the mark in every row, audited)."""
    if fmt not in ("csv", "xlsx"):
        return Response(f"format: {fmt!r} is not csv or xlsx", status_code=422, media_type="text/plain")
    t = translator(locale)
    header = [t(c.label) for c in table.columns]
    rows = [[_export_value(row.get(c.key)) for c in table.columns] for row in table.rows]
    filename = f"{table.id}.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    filters = [(k, v) for k, v in request.query_params.multi_items() if k not in ("export", "format", "lang")]
    mark = watermark.issue_now(
        actor=_principal(request).name,
        what=f"console {request.url.path} table {table.id} ({fmt})",
        filter_text=urlencode(filters, safe=":,/"),
        rows=len(rows),
        ip=client_ip(request),
    )
    if fmt == "csv":
        return Response(
            watermark.csv_bytes(header, rows, mark), media_type="text/csv; charset=utf-8", headers=disposition
        )
    return Response(
        watermark.xlsx_bytes(table.id, header, rows, mark),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=disposition,
    )


# --- charts -----------------------------------------------------------------------------------


@dataclass
class Chart:
    """An ECharts option drawn by static/console.js into a canvas; `title` is an i18n key."""

    id: str
    option: dict[str, Any]
    title: str = ""
    height: int = 320

    def option_json(self) -> Markup:
        # JSON inside <script type="application/json">: escape "<" so "</script>" cannot end it.
        text = orjson.dumps(self.option, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        return Markup(text.replace("<", "\\u003c"))


# --- rendering --------------------------------------------------------------------------------


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    tables: Sequence[Table] = (),
    status_code: int = 200,
) -> Response:
    """Render a console page, or answer `?export=<table>&format=csv|xlsx` with that table's rows."""
    locale = locale_of(request)
    export = request.query_params.get("export")
    if export:
        for table in tables:
            if table.id == export:
                return export_table(table, request.query_params.get("format", "csv"), locale, request)
        return Response(f"export: no table {export!r} on this page", status_code=404, media_type="text/plain")
    principal = _principal(request)
    filters = context.get("filters") if context else None
    people.label_tables(request, tables)  # persons by name, API keys with their names
    base: dict[str, Any] = {
        "t": rich_translator(locale),
        "locale": locale,
        "other_locale": "en" if locale == DEFAULT_LOCALE else DEFAULT_LOCALE,
        "nav": nav_for(request, _available_paths(request).__contains__),
        "user": principal.name,
        "role": principal.role,
        "can": principal.can,
        "csrf_token": principal.csrf_token or "",
        "csrf_header": orjson.dumps({"X-CSRF-Token": principal.csrf_token or ""}).decode(),
        "path": request.url.path,
        "filters": filters if filters is not None else ConsoleFilters.from_request(request),
        "fmt": {
            "number": lambda v: format_number(v, locale),
            "pct": format_percent,
            "fen": lambda v: format_money_fen(v, locale),
            "yuan": lambda v: format_money_yuan(v, locale),
            "cell": lambda v, kind: format_cell(v, kind, locale),
            "code": lambda prefix, v: code_name(translator(locale), prefix, v),
            "evidence": lambda text: evidence(text, locale),
            "time": local_time,
            "decimal": format_decimal,
        },
        "export_url": lambda table_id, fmt: _export_url(request, table_id, fmt),
    }
    response = TEMPLATES.TemplateResponse(request, template, base | (context or {}), status_code=status_code)
    if "lang" in request.query_params:
        response.set_cookie("lang", locale, samesite="lax", max_age=365 * 86400)
    return response


def _export_url(request: Request, table_id: str, fmt: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("export", "format", "lang")]
    params += [("export", table_id), ("format", fmt)]
    return f"{request.url.path}?{urlencode(params)}"


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def htmx_redirect(url: str) -> Response:
    """After an htmx write: send the browser to `url` (htmx follows HX-Redirect)."""
    return Response(status_code=204, headers={"HX-Redirect": url})


def flash_fragment(message: str, ok: bool = True, retarget: str | None = None) -> HTMLResponse:
    """A small status line an htmx form swaps in after a write (role=status for screen readers).
    `retarget` (a CSS selector) shows it there instead of the form's own target (e.g. an error of
    a button whose target is a table row)."""

    cls = "flash ok" if ok else "flash error"
    headers = {"HX-Retarget": retarget, "HX-Reswap": "innerHTML"} if retarget else None
    return HTMLResponse(
        f'<p class="{cls}" role="status">{escape(message)}</p>', status_code=200, headers=headers
    )

"""The fraud review queue in the console: held and flagged referrals with their risk score and
reasons (in the reader's language), approved or rejected one by one or in bulk. Decisions are the
fraud service's (`fraud.service.decide` / `bulk_decide`): they flow into the reward ledger, are
idempotent and audited with the reviewer's name. Also the fraud rate per campaign.

A case's page shows its evidence graph (`fraud.evidence`): the persons, the devices, addresses
and identifiers they share and the referral links, as an ECharts graph and as a table."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from liebian.db.session import session_scope
from liebian.fraud import evidence, service
from liebian.schemas import Int64
from liebian.web.console import Chart, Column, ConsoleFilters, Table, _principal, htmx_redirect, render
from liebian.web.evidence import evidence as evidence_text
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.campaign_form import local_time
from liebian.web.pages.campaigns import channel_namer
from liebian.web.people import may_name, person_labels

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
STATUSES = ("open", "approved", "rejected", "all")


def _params(source) -> dict[str, Any]:
    """The queue's filters from the URL (GET) or the form's hidden fields (after a decision)."""
    status = source.get("status") or "open"
    try:
        min_score = max(0.0, min(100.0, float(source.get("min_score") or 0)))
    except ValueError:
        min_score = 0.0
    try:
        page = max(1, int(source.get("page") or 1))
    except ValueError:
        page = 1
    return {
        "status": status if status in STATUSES else "open",
        "campaign": (source.get("campaign") or "").strip(),
        "pattern": (source.get("pattern") or "").strip(),
        "min_score": min_score,
        "page": page,
    }


def _url(params: dict[str, Any], **overrides: Any) -> str:
    values = {**params, **overrides}
    query = {k: v for k, v in values.items() if v not in ("", None, 0, 0.0) and not (k == "page" and v == 1)}
    if query.get("status") == "open":
        query.pop("status")
    return "/fraud" + (("?" + urlencode(query)) if query else "")


def _case_rows(cases: list[dict]) -> list[dict]:
    return [
        {
            **c,
            "created_local": local_time(c["created_at"]),
            "reason_codes": ", ".join(r["code"] for r in c["reasons"]),
            "reason_texts": "; ".join(r["text"] for r in c["reasons"]),
        }
        for c in cases
    ]


CASE_COLUMNS = [
    Column("id", "fraud.case", "int"),
    Column("score", "fraud.score", "float"),
    Column("reason_codes", "fraud.reason_codes"),
    Column("reason_texts", "fraud.reasons"),
    Column("campaign_id", "fraud.campaign", data=True),
    Column("channel", "fraud.channel", codes="channel"),
    Column("inviter_person_id", "fraud.inviter", data=True),
    Column("person_id", "fraud.friend", data=True),
    Column("referral_id", "fraud.referral"),
    Column("source", "fraud.source", codes="fraud.source"),
    Column("pattern", "fraud.pattern", codes="fraud.patternname"),
    Column("status", "fraud.status"),
    Column("reviewer", "fraud.reviewer", data=True),
    Column("created_local", "fraud.created", "datetime"),
]


def _queue_page(request: Request, params: dict[str, Any], flash: tuple[str, bool] | None = None) -> Response:

    locale = locale_of(request)
    status = None if params["status"] == "all" else params["status"]
    filters = {"status": status, "campaign_id": params["campaign"] or None, "pattern": params["pattern"] or None,
               "min_score": params["min_score"]}  # fmt: skip
    export = request.query_params.get("export") == "cases"
    with session_scope() as s:
        facets = service.queue_facets(s)
        total = service.count_cases(s, **filters)
        pages = max(1, -(-total // PAGE_SIZE))
        params = {**params, "page": min(params["page"], pages)}
        if export:  # every matching case, not just this page
            cases: list[dict[str, Any]] = []
            while len(cases) < total:
                batch = service.list_cases(s, **filters, limit=1000, offset=len(cases), lang=locale)
                if not batch:
                    break
                cases += batch
        else:
            cases = service.list_cases(
                s, **filters, limit=PAGE_SIZE, offset=(params["page"] - 1) * PAGE_SIZE, lang=locale
            )
        rate = service.fraud_rate(s, "campaign")
        shown = cases[:PAGE_SIZE]
        labels = person_labels(s, [p for c in shown for p in (c["inviter_person_id"], c["person_id"]) if p is not None],
                               may_name(request))  # fmt: skip
    rows = _case_rows(cases)
    case_table = Table("cases", CASE_COLUMNS, rows, title="fraud.cases")
    rate_table = Table(
        "fraud_rate",
        [
            Column("campaign_id", "fraud.campaign", data=True),
            Column("title", "fraud.campaign_title", data=True),
            Column("referrals", "fraud.referrals", "int"),
            Column("rejected", "fraud.rejected", "int"),
            Column("fraud_rate", "fraud.fraud_rate", "pct"),
        ],
        rate,
        title="fraud.rate",
    )
    context = {
        "filters": ConsoleFilters.from_request(request),
        "params": params,
        "statuses": STATUSES,
        "facets": facets,
        "cases": rows,
        "total": total,
        "pages": pages,
        "url": lambda **o: _url(params, **o),
        "export_cases": lambda fmt: (
            _url(params)
            + ("&" if "?" in _url(params) else "?")
            + urlencode({"export": "cases", "format": fmt})
        ),
        "flash": flash,
        "rate_table": rate_table,
        "channel_name": channel_namer(locale),
        "labels": labels,
    }
    return render(request, "fraud/queue.html", context, tables=[case_table, rate_table])


@router.get("/fraud")
def fraud_queue(request: Request) -> Response:
    return _queue_page(request, _params(request.query_params))


def _actor(request: Request) -> str:

    return _principal(request).name


def _summary(t, results: list[dict], target: str) -> tuple[str, bool]:
    changed = [f"#{r['case_id']}" for r in results if r["changed"]]
    same = [f"#{r['case_id']}" for r in results if not r["changed"] and not r["error"]]
    failed = [f"#{r['case_id']}: {r['error']}" for r in results if r["error"]]
    parts = []
    if changed:
        parts.append(f"{t('fraud.decided.' + target)} {' '.join(changed)}")
    if same:
        parts.append(f"{t('fraud.unchanged')} {' '.join(same)}")
    if failed:
        parts.append(f"{t('fraud.failed')} {'; '.join(failed)}")
    return " · ".join(parts), not failed


def _decide(request: Request, form: dict[str, Any], case_ids: list[int], action: str) -> Response:

    t = translator(locale_of(request))
    params = _params(form)
    if not case_ids:
        return _queue_page(request, params, (t("fraud.none_selected"), False))
    if action == "reject" and form.get("confirm") != "1":  # irreversible: the dialog's confirm=1
        return _queue_page(request, params, (t("ccamp.confirm_required"), False))
    with session_scope() as s:
        results = service.bulk_decide(
            s, case_ids, action, actor=_actor(request), note=form.get("note", "").strip()
        )
    message, ok = _summary(t, results, service.ACTIONS[action])
    if form.get("_from") == "detail" and ok:
        return htmx_redirect(f"/fraud/cases/{case_ids[0]}")
    return _queue_page(request, params, (message, ok))


async def _form(request: Request) -> tuple[dict[str, Any], list[int]]:
    form = await request.form()
    ids = []
    for value in form.getlist("case_ids"):
        if not isinstance(value, str):  # an uploaded file is no case id
            continue
        try:
            ids.append(int(value))
        except ValueError:
            continue
    return {k: v for k, v in form.items() if isinstance(v, str)}, ids


@router.post("/fraud/cases/{case_id}/approve")
async def approve_case(request: Request, case_id: Int64) -> Response:
    """Not fraud: the referral is accepted and its rewards leave the review hold."""
    form, _ids = await _form(request)
    return await run_in_threadpool(_decide, request, form, [case_id], "approve")


@router.post("/fraud/cases/{case_id}/reject")
async def reject_case(request: Request, case_id: Int64) -> Response:
    """Fraud: the referral is blocked and its rewards rejected (issued ones revoked)."""
    form, _ids = await _form(request)
    return await run_in_threadpool(_decide, request, form, [case_id], "reject")


@router.post("/fraud/bulk")
async def bulk(request: Request) -> Response:
    form, ids = await _form(request)
    action = form.get("action", "")
    if action not in ("approve", "reject"):
        return await run_in_threadpool(_queue_page, request, _params(form), (f"action: {action!r}", False))
    return await run_in_threadpool(_decide, request, form, ids, action)


def _sync(request: Request, form: dict[str, Any]) -> Response:

    t = translator(locale_of(request))
    with session_scope() as s:
        opened = service.sync_held_referrals(s, actor=_actor(request))
    return _queue_page(request, _params(form), (f"{t('fraud.synced')} {opened}", True))


@router.post("/fraud/sync")
async def sync(request: Request) -> Response:
    """Open a case for every referral the campaign engine held that has none yet."""
    form, _ids = await _form(request)
    return await run_in_threadpool(_sync, request, form)


def _effects(t, effects: dict) -> str:
    """What a decision did, in words: reward ids per ledger move, and the referral's new state."""
    parts = []
    for key in ("released", "rejected", "revoked", "untouched"):
        ids = [str(e["reward_id"] if isinstance(e, dict) else e) for e in effects.get(key) or []]
        if ids:
            parts.append(f"{t('fraud.eff.' + key)}: " + ", ".join(f"#{i}" for i in ids))
    if effects.get("referral_state"):
        parts.append(f"{t('fraud.eff.referral_state')}: {t('campaigns.state.' + effects['referral_state'])}")
    return " · ".join(parts)


@router.get("/fraud/cases/{case_id}")
def case_detail(request: Request, case_id: Int64) -> Response:

    locale = locale_of(request)
    t = translator(locale)
    with session_scope() as s:
        try:
            case = service.get_case(s, case_id, locale)
        except service.FraudError:
            return render(request, "fraud/case.html", {"case": None, "case_id": case_id}, status_code=404)
        graph = evidence.case_evidence(s, service.load_case(s, case_id))
        people = [p for p in (case["inviter_person_id"], case["person_id"]) if p is not None]
        labels = person_labels(s, people, may_name(request))
    audit = Table(
        "audit",
        [
            Column("ts", "fraud.time", "datetime"),
            Column("actor", "fraud.actor", data=True),
            Column("action", "fraud.action"),
            Column("note", "fraud.note_col"),
            Column("effects", "fraud.effects"),
        ],
        [
            {
                **a,
                "ts": local_time(a["ts"]),
                "action": t(f"fraud.act.{a['action']}"),
                "note": evidence_text(a.get("note"), locale),
                "effects": _effects(t, a["effects"]),
            }
            for a in case["audit"]
        ],
        title="fraud.audit",
    )
    chart, table = _evidence_views(t, graph)
    context = {"case": case, "case_id": case_id, "audit": audit, "channel_name": channel_namer(locale),
               "evidence_chart": chart, "evidence_table": table, "labels": labels}  # fmt: skip
    return render(request, "fraud/case.html", context, tables=[audit, table])


KIND_SIZE = {"person": 34, "device": 24, "ip": 24, "identifier": 18}


def _node_text(t, node: dict[str, Any]) -> str:
    role = f" ({t('fraud_review.role.' + node['role'])})" if node["role"] else ""
    return f"{t('fraud_review.kind.' + node['kind'])} {node['label']}{role}"


def _evidence_views(t, graph: dict[str, Any]) -> tuple[Chart, Table]:
    """The evidence graph as an ECharts graph (force layout) and as a table of its links."""
    kinds = list(KIND_SIZE)
    index = {n["id"]: i for i, n in enumerate(graph["nodes"])}
    text = {n["id"]: _node_text(t, n) for n in graph["nodes"]}
    data = [
        {"name": n["id"], "category": kinds.index(n["kind"]), "symbolSize": KIND_SIZE[n["kind"]] + (8 if n["role"] in ("friend", "inviter", "same") else 0),
         "label": {"show": True, "formatter": text[n["id"]].replace("{", "(").replace("}", ")")}}
        for n in graph["nodes"]
    ]  # fmt: skip
    links = [
        {"source": index[e["source"]], "target": index[e["target"]], "label": {"show": True, "formatter": t("fraud_review.rel." + e["relation"])}}
        for e in graph["edges"]
    ]  # fmt: skip
    option = {
        "legend": [{"data": [t("fraud_review.kind." + k) for k in kinds]}],
        "tooltip": {},
        "series": [{
            "type": "graph", "layout": "force", "roam": True, "draggable": True, "data": data, "links": links,
            "categories": [{"name": t("fraud_review.kind." + k)} for k in kinds],
            "edgeSymbol": ["none", "arrow"], "force": {"repulsion": 260, "edgeLength": [60, 140], "layoutAnimation": False},
            "lineStyle": {"opacity": 0.8, "width": 1.5}, "edgeLabel": {"fontSize": 10},
        }],
    }  # fmt: skip
    # a few dozen nodes: laid out to the end before the first paint, not stepped on timers for
    # seconds afterwards (a step racing a redraw threw in the browser on the referral graph)
    chart = Chart("evidence-graph", option, title="fraud_review.graph", height=420)
    rows = [
        {"from": text[e["source"]], "relation": t("fraud_review.rel." + e["relation"]), "to": text[e["target"]],
         "origin": _origin(t, e["origin"])}
        for e in graph["edges"]
    ]  # fmt: skip
    # the ends of a link are masked identifiers, devices and addresses: data, shown as they are
    columns = [
        Column(k, f"fraud_review.col.{k}", data=k in ("from", "to"))
        for k in ("from", "relation", "to", "origin")
    ]
    return chart, Table("evidence", columns, rows, title="fraud_review.table")


def _origin(t, origin: str) -> str:
    """Where a link comes from: a referral's state, the campaign's sightings, imports or OneID."""
    if origin in ("sighting", "import", "oneid"):
        return str(t("fraud_review.origin." + origin))
    return str(t("campaigns.state." + origin))

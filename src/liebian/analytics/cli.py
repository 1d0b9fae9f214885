"""`liebian analyze …`: every analysis as a command, with the same filters and --format json|csv|table."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from liebian.analytics import benchmarks as bench
from liebian.analytics import catalogue, service
from liebian.analytics.common import AnalyticsError
from liebian.engine import eventstore, warehouse
from liebian.engine.backend import export_parquet
from liebian.errors import Invalid
from liebian.output import Format, emit, err_console

app = typer.Typer(
    help="Growth analytics: KPIs, funnel, cohorts, referral tree, channels, scorecard, benchmarks."
)

START = typer.Option(None, "--start", help="First day (YYYY-MM-DD, display zone).")
END = typer.Option(None, "--end", help="Last day, inclusive.")
CHANNEL = typer.Option([], "--channel", help="Channel filter (repeatable).")
CAMPAIGN = typer.Option([], "--campaign", help="Campaign id filter (repeatable).")
SEGMENT = typer.Option(None, "--segment-file", help="File with one person id per line.")
ENGINES = ("duckdb", "spark")


def _engine(value: str | None) -> str | None:
    if value is not None and value not in ENGINES:
        raise typer.BadParameter(f"{value!r} is not an engine; expected one of {', '.join(ENGINES)}")
    return value


ENGINE = typer.Option(
    None,
    "--engine",
    callback=_engine,
    help="duckdb or spark (default: settings; Spark reads LIEBIAN_EVENT_STORE when set).",
)
FORMAT = typer.Option(Format.table, "--format", help="table, json or csv.")


def _filters(start, end, channel, campaign, segment_file):
    segment = service.read_segment_file(segment_file) if segment_file else None
    return service.make_filters(start, end, channel, campaign, segment)


def _fail(exc: Exception) -> None:
    err_console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


@app.command("kpis")
def kpis_cmd(
    start: str = START, end: str = END, channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
    reward_cost: int = typer.Option(None, "--reward-cost", help="Reward cost in fen (default: reward ledger)."),
    other_cost: int = typer.Option(
        None, "--other-cost", help="Other campaign costs in fen (default: the costs entered, `liebian costs`)."
    ),
) -> None:  # fmt: skip
    """The KPI sheet (definitions: docs/metrics.md)."""
    try:
        result = service.run_kpis(
            _filters(start, end, channel, campaign, segment_file), engine, reward_cost, other_cost
        )
    except AnalyticsError as exc:
        _fail(exc)
    if fmt is not Format.table:
        emit(result, fmt, title="KPIs")
        return
    # the table: the catalogue's names and units; json and csv keep the raw values
    rows = [
        {"metric": k, "name": catalogue.metric(k).label, "value": catalogue.format_value(k, v)}
        for k, v in result.items()
        if catalogue.is_metric(k)
    ]
    emit(rows, fmt, title="KPIs")


@app.command("metrics")
def metrics_cmd(fmt: Format = FORMAT) -> None:
    """The metric catalogue: every metric's names, unit and formula (docs/metrics.md)."""
    rows = [catalogue.describe(m) for m in catalogue.METRICS]
    if fmt is Format.table:
        rows = [{k: r[k] for k in ("key", "name_zh", "name_en", "unit", "formula")} for r in rows]
    emit(rows, fmt, title="Metrics")


@app.command("funnel")
def funnel_cmd(
    start: str = START, end: str = END, channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
    steps: str = typer.Option(None, "--steps", help="Comma list of events or name=event (order_paid = paid order)."),
    window_days: float = typer.Option(14, "--window-days", help="Conversion window from the first step."),
    breakdown: str = typer.Option(None, "--breakdown", help="channel or campaign (of the entry event)."),
) -> None:  # fmt: skip
    """Fission funnel: persons, conversion and drop-off per step."""
    try:
        result = service.run_funnel(
            _filters(start, end, channel, campaign, segment_file),
            steps,
            window_days,
            breakdown,
            engine=engine,
        )
    except AnalyticsError as exc:
        _fail(exc)
    emit(result if fmt is Format.json else result["steps"], fmt, title="Funnel")


@app.command("dropped")
def dropped_cmd(
    at_step: int = typer.Argument(..., help="The step (1-based, ≥ 2) they did not reach."),
    start: str = START, end: str = END, channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
    steps: str = typer.Option(None, "--steps"), window_days: float = typer.Option(14, "--window-days"),
) -> None:  # fmt: skip
    """Export the persons who dropped before a funnel step."""
    try:
        rows = service.run_dropped(
            _filters(start, end, channel, campaign, segment_file), at_step, steps, window_days, engine
        )
    except AnalyticsError as exc:
        _fail(exc)
    emit(rows, fmt, title=f"Dropped before step {at_step}")


@app.command("retention")
def retention_cmd(
    start: str = START, end: str = END, channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
    unit: str = typer.Option("week", "--unit", help="day, week or month."),
    cohort_by: str = typer.Option("first_event", "--cohort-by", help="first_event or referral."),
    periods: int = typer.Option(12, "--periods"), cohorts: int = typer.Option(12, "--cohorts"),
) -> None:  # fmt: skip
    """Retention matrix (rates per cohort and period)."""
    try:
        r = service.run_retention(
            _filters(start, end, channel, campaign, segment_file), unit, cohort_by, periods, cohorts, engine
        )
    except AnalyticsError as exc:
        _fail(exc)
    emit(r["matrix"], fmt, title=f"Retention by {unit}")


@app.command("revenue")
def revenue_cmd(
    start: str = START, end: str = END, channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
    unit: str = typer.Option("month", "--unit"), cohort_by: str = typer.Option("first_event", "--cohort-by"),
    periods: int = typer.Option(12, "--periods"), cohorts: int = typer.Option(12, "--cohorts"),
) -> None:  # fmt: skip
    """Revenue per cohort: cumulative revenue per member (observed LTV curves, fen)."""
    try:
        r = service.run_revenue(
            _filters(start, end, channel, campaign, segment_file), unit, cohort_by, periods, cohorts, engine
        )
    except AnalyticsError as exc:
        _fail(exc)
    emit(r["ltv_curves"], fmt, title=f"LTV (fen) by {unit}")


TREE_PARTS = ("summary", "generations", "depth", "breadth", "spreaders", "nodes", "edges")


@app.command("referral-tree")
def tree_cmd(
    start: str = START, end: str = END, channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
    part: str = typer.Option("generations", "--part", help=", ".join(TREE_PARTS)),
    top: int = typer.Option(20, "--top"),
) -> None:  # fmt: skip
    """Referral tree: generations, depth/breadth, top spreaders, graph nodes and edges."""
    if part not in TREE_PARTS:
        _fail(AnalyticsError(f"--part must be one of {', '.join(TREE_PARTS)}"))
    try:
        r = service.run_referral_tree(
            _filters(start, end, channel, campaign, segment_file), top, engine=engine
        )
    except AnalyticsError as exc:
        _fail(exc)
    pick = {
        "summary": r["summary"], "generations": r["generations"], "depth": r["depth_distribution"],
        "breadth": r["breadth_distribution"], "spreaders": r["top_spreaders"],
        "nodes": r["graph"]["nodes"], "edges": r["graph"]["edges"],
    }  # fmt: skip
    emit(pick[part], fmt, title=f"Referral tree: {part}")


@app.command("channels")
def channels_cmd(
    start: str = START, end: str = END, channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
) -> None:  # fmt: skip
    """Channel efficacy radar: fission power vs conversion power."""
    try:
        rows = service.run_channels(_filters(start, end, channel, campaign, segment_file), engine)
    except AnalyticsError as exc:
        _fail(exc)
    emit(rows, fmt, title="Channel radar")


@app.command("scorecard")
def scorecard_cmd(
    start: str = typer.Option(..., "--start"), end: str = typer.Option(..., "--end"),
    channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
    stage: str = typer.Option("mature", "--stage", help="launch, growth or mature."),
    weights: str = typer.Option(None, "--weights", help='JSON, e.g. {"scale":20,"activity":30,"conversion":50}.'),
) -> None:  # fmt: skip
    """Composite scorecard: a 1–10 score with each indicator's contribution."""
    try:
        parsed = json.loads(weights) if weights else None
    except json.JSONDecodeError as exc:
        _fail(AnalyticsError(f"--weights: not JSON ({exc})"))
    try:
        r = service.run_scorecard(
            _filters(start, end, channel, campaign, segment_file), stage, parsed, engine
        )
    except AnalyticsError as exc:
        _fail(exc)
    if fmt is Format.json:
        emit(r, fmt)
    else:
        err_console.print(f"score {r['score']:.2f} / 10" if r["score"] is not None else "score n/a (no data)")
        emit(r["indicators"], fmt, title="Scorecard")


@app.command("benchmarks")
def benchmarks_cmd(
    sector: str = typer.Argument(..., help="food_service, education, ecommerce, beauty, fmcg, maternal_baby …"),
    start: str = START, end: str = END, channel: list[str] = CHANNEL, campaign: list[str] = CAMPAIGN,
    segment_file: Path = SEGMENT, engine: str = ENGINE, fmt: Format = FORMAT,
    reference: Path = typer.Option(None, "--reference", help="JSON {sector: {indicator: value}} replacing the defaults."),
) -> None:  # fmt: skip
    """Five core indicators against industry references."""

    try:
        table = bench.load_reference(reference) if reference else None
        r = service.run_benchmarks(
            _filters(start, end, channel, campaign, segment_file), sector, table, engine
        )
    except AnalyticsError as exc:
        _fail(exc)
    emit(r["comparison"], fmt, title=f"Benchmarks: {sector}")


@app.command("export-parquet")
def export_cmd() -> None:
    """Write the warehouse tables as Parquet (what the Spark engine reads)."""

    written = export_parquet()
    emit([{"table": t, "path": str(p)} for t, p in written.items()], Format.table)


@app.command("sync-store")
def sync_store_cmd() -> None:
    """Publish the warehouse to the Parquet event store (LIEBIAN_EVENT_STORE): the first fill of
    an existing warehouse, or a repair; imports keep it up to date by themselves."""
    try:
        loc = eventstore.location()
        with warehouse.connect() as con:
            eventstore.publish(con)
    except (Invalid, OSError) as exc:
        _fail(exc)
    manifest = eventstore.read_manifest(loc)
    emit(
        [
            {"table": t, "files": len(eventstore.table_files(manifest, t)),
             "rows": sum(g["rows"] for g in manifest["tables"].get(t, []))}
            for t in warehouse.TABLES
        ],
        Format.table,
        title=f"event store {loc.url}: manifest {manifest['version']}",
    )  # fmt: skip

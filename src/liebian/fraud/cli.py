"""`liebian fraud …`: graph scan, evaluation, review queue, fraud rate."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from liebian.auth.cli_guard import acting
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.errors import DomainError
from liebian.fraud import evaluate as evaluation
from liebian.fraud import service
from liebian.fraud.reasons import REASONS, label
from liebian.fraud.service import FraudError
from liebian.output import Format, console, emit, err_console
from liebian.rewards.service import LedgerError

app = typer.Typer(no_args_is_help=True)


def _fail(exc: FraudError | LedgerError) -> None:
    message = exc.message if isinstance(exc, FraudError) else str(exc)
    err_console.print(f"[red]{message}[/red]")
    raise typer.Exit(2)


@app.command("scan")
def scan_command(
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help="duckdb (embedded) | spark: the graph's features on Spark from the event store (LIEBIAN_EVENT_STORE)",
    ),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Graph scan: score persons and referrals, open review cases for the risky referrals."""
    if engine not in ("duckdb", "spark"):
        err_console.print(f"[red]--engine: {engine!r} is not one of duckdb, spark[/red]")
        raise typer.Exit(2)
    try:
        with session_scope() as session, warehouse.connect() as con:
            report = service.run_scan(session, con, engine=engine).as_dict()
    except DomainError as exc:  # the event store is off or unreadable (spark)
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    timings = report.pop("timings", {})
    emit({**report, **{f"seconds.{k}": v for k, v in timings.items()}}, fmt)


@app.command("evaluate")
def evaluate_command(
    ground_truth: Path | None = typer.Option(
        None,
        "--ground-truth",
        help="labelled file (harness or demo format); default DATA_DIR/demo/ground_truth.json",
    ),
    threshold: float = typer.Option(
        service.CASE_THRESHOLD, "--threshold", help="score that counts as flagged"
    ),
    rescan: bool = typer.Option(True, "--rescan/--no-rescan", help="run the graph scan first"),
    lang: str = typer.Option("zh-CN", "--lang", help="zh-CN | en"),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Precision, recall and F1 per fraud pattern against a labelled file (referrals and/or persons)."""
    path = ground_truth or get_settings().data_dir / "demo" / "ground_truth.json"
    if not path.exists():
        err_console.print(
            f"[red]--ground-truth: no file {path}; generate the demo brand first (liebian demo)[/red]"
        )
        raise typer.Exit(2)
    try:
        truth = evaluation.load_truth(path)
        with session_scope() as session, warehouse.connect() as con:
            if rescan:
                service.run_scan(session, con)
            result = evaluation.evaluate(con, truth, threshold=threshold)
    except DomainError as exc:
        err_console.print(f"[red]--ground-truth: {exc.message if lang == 'en' else exc.message_zh}[/red]")
        raise typer.Exit(2) from exc
    if fmt is Format.json:
        emit(result, fmt)
        return
    _print_evaluation(result, threshold, lang, fmt)


def _print_evaluation(result: dict, threshold: float, lang: str, fmt: Format) -> None:
    columns = ("truth", "claimed", "precision", "recall", "f1")
    for unit in ("referrals", "persons"):
        if not result[unit]:
            continue
        rows = [
            {label("pattern", lang): label(name, lang), **{label(c, lang): m[c] for c in columns}}
            for name, m in result[unit].items()
        ]
        emit(rows, fmt, title=label(unit, lang, threshold=f"{threshold:g}"))
    d = result["decoys"]
    console.print(
        label("decoys", lang, flagged=d["flagged"], total=d["total"], inviters=d["flagged_inviters"])
    )
    if result["unmapped"]:
        console.print(f"[yellow]{label('unmapped', lang, n=result['unmapped'])}[/yellow]")


@app.command("queue")
def queue_command(
    status: str = typer.Option("open", "--status", help="open | approved | rejected | all"),
    campaign_id: str | None = typer.Option(None, "--campaign"),
    pattern: str | None = typer.Option(None, "--pattern"),
    min_score: float = typer.Option(0.0, "--min-score"),
    limit: int = typer.Option(50, "--limit"),
    lang: str = typer.Option("zh-CN", "--lang", help="zh-CN | en"),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """The review queue, highest score first."""
    try:
        with session_scope() as session:
            cases = service.list_cases(
                session, status=None if status == "all" else status, campaign_id=campaign_id, pattern=pattern,
                min_score=min_score, limit=limit, lang=lang,
            )  # fmt: skip
    except FraudError as exc:
        _fail(exc)
    rows = []
    for c in cases:
        row = {"id": c["id"], "score": c["score"], "status": c["status"], "campaign": c["campaign_id"],
               "friend": c["person_id"], "pattern": c["pattern"],
               "reasons": ",".join(r["code"] for r in c["reasons"])}  # fmt: skip
        if fmt is not Format.table:  # the table stays narrow; files get the texts and the inviter
            row.update(channel=c["channel"], inviter=c["inviter_person_id"],
                       texts="; ".join(r["text"] for r in c["reasons"]))  # fmt: skip
        rows.append(row)
    emit(rows, fmt)


@app.command("show")
def show_command(
    case_id: int,
    lang: str = typer.Option("zh-CN", "--lang"),
    fmt: Format = typer.Option(Format.json, "--format"),
) -> None:
    """One case with its reasons and audit trail."""
    try:
        with session_scope() as session:
            emit(service.get_case(session, case_id, lang), fmt)
    except FraudError as exc:
        _fail(exc)


def _decide(case_ids: list[int], action: str, note: str, key: str | None, fmt: Format) -> None:
    reviewer = acting().name  # who runs the command (--user / LIEBIAN_USER / an API key), audited
    try:
        with session_scope() as session:
            if len(case_ids) == 1:
                r = service.decide(
                    session, case_ids[0], action, actor=reviewer, note=note, idempotency_key=key
                )
                rows = [{"case_id": r["id"], "status": r["status"], "changed": r["changed"], "error": None,
                         "effects": json.dumps(r["effects"])}]  # fmt: skip
            else:
                rows = service.bulk_decide(
                    session, case_ids, action, actor=reviewer, note=note, idempotency_key=key
                )
    except (FraudError, LedgerError) as exc:
        _fail(exc)
    emit(rows, fmt)
    if any(r.get("error") for r in rows):
        raise typer.Exit(1)


@app.command("approve")
def approve_command(
    case_ids: list[int] = typer.Argument(..., help="one or more case ids"),
    note: str = typer.Option("", "--note"),
    key: str | None = typer.Option(None, "--idempotency-key"),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Not fraud: release the rewards held for review."""
    _decide(case_ids, "approve", note, key, fmt)


@app.command("reject")
def reject_command(
    case_ids: list[int] = typer.Argument(..., help="one or more case ids"),
    note: str = typer.Option("", "--note"),
    key: str | None = typer.Option(None, "--idempotency-key"),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Fraud: reject the referral's rewards (revoke issued ones)."""
    _decide(case_ids, "reject", note, key, fmt)


@app.command("rate")
def rate_command(
    by: str = typer.Option("campaign", "--by", help="campaign | channel"),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Fraud rate: rejected referrals / all referrals (reference point 0.5%)."""
    try:
        with session_scope() as session:
            emit(service.fraud_rate(session, by), fmt)
    except FraudError as exc:
        _fail(exc)


@app.command("reasons")
def reasons_command(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """The reason codes, their weights and texts."""
    emit(
        [
            {"code": r.code, "weight": r.weight, "pattern": r.pattern, "zh": r.zh, "en": r.en}
            for r in REASONS.values()
        ],
        fmt,
    )

"""`liebian campaign …`: create and run fission campaigns from the command line."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import typer

from liebian.campaigns import budget, invites, outbox, service, stage_cli, views
from liebian.campaigns.common import CampaignError
from liebian.campaigns.schemas import Participant
from liebian.db.session import session_scope
from liebian.output import Format, console, emit, err_console

app = typer.Typer(no_args_is_help=True)
app.add_typer(stage_cli.app, name="stage")

FMT = typer.Option(Format.table, "--format", "-f", help="table, json or csv")


def _load(path: Path) -> dict:
    """Rules from a JSON or TOML file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise typer.BadParameter(f"{path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise typer.BadParameter(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None


def _call(fn, *args, **kwargs):
    try:
        with session_scope() as s:
            return fn(s, *args, **kwargs)
    except CampaignError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        for e in exc.errors:
            err_console.print(f"  {e['field']}: {e['reason']}")
        raise typer.Exit(2) from None


def _summary(view: dict) -> dict:
    return {k: v for k, v in view.items() if k != "rules"}


@app.command()
def create(
    rules_file: Path = typer.Argument(..., help="rules as JSON or TOML"),
    campaign_id: str | None = typer.Option(None, "--id", help="a slug; generated if left out"),
    fmt: Format = FMT,
) -> None:
    """Create a draft campaign from a rules file."""
    emit(
        _summary(_call(service.create_campaign, _load(rules_file), campaign_id=campaign_id, actor="cli")), fmt
    )


@app.command()
def edit(
    campaign_id: str,
    rules_file: Path = typer.Argument(..., help="the new rules as JSON or TOML"),
    note: str = typer.Option("", help="why the rules change"),
    fmt: Format = FMT,
) -> None:
    """Change the rules (a launched campaign gets a new version)."""
    emit(_summary(_call(service.edit_campaign, campaign_id, _load(rules_file), note=note, actor="cli")), fmt)


@app.command()
def launch(campaign_id: str, fmt: Format = FMT) -> None:
    """Launch after the compliance check."""
    emit(_summary(_call(service.launch, campaign_id, actor="cli")), fmt)


@app.command()
def pause(campaign_id: str, fmt: Format = FMT) -> None:
    emit(_summary(_call(service.pause, campaign_id, actor="cli")), fmt)


@app.command("end")
def end_(campaign_id: str, fmt: Format = FMT) -> None:
    """End the campaign (a leaderboard grants its rank rewards)."""
    emit(_summary(_call(service.end, campaign_id, actor="cli")), fmt)


@app.command("list")
def list_(status: str | None = typer.Option(None, help="only this status"), fmt: Format = FMT) -> None:
    emit(_call(service.list_campaigns, status), fmt, title="campaigns")


@app.command()
def show(campaign_id: str, fmt: Format = FMT) -> None:
    """The campaign with its rules in force."""
    view = _call(service.get_campaign, campaign_id)
    if fmt is Format.json:
        emit(view, fmt)
    else:
        emit(_summary(view), fmt)
        console.print_json(json.dumps(view["rules"], ensure_ascii=False))


@app.command()
def compliance(campaign_id: str, fmt: Format = FMT) -> None:
    """The compliance check: hard failures block launch, soft findings add to the risk score."""
    report = _call(service.compliance_report, campaign_id)
    if fmt is Format.json:
        emit(report, fmt)
    else:
        keys = ("rule", "field", "message", "message_zh", "citation", "suggestion")
        rows = [{"kind": "hard", **{k: h[k] for k in keys}, "score": ""} for h in report["hard"]]
        rows += [{"kind": "soft", **{k: f[k] for k in keys}, "score": f["score"]} for f in report["soft"]]
        emit(rows, fmt, title=f"{campaign_id} v{report['version']} compliance")
        verdict = "[green]passes[/green]" if report["passed"] else "[red]fails: launch is blocked[/red]"
        (console if fmt is Format.table else err_console).print(
            f"{verdict}; risk score {report['risk_score']} ({report['risk_level']})"
        )
    if not report["passed"]:  # every format: scripts and CI see the failure in the exit code
        raise typer.Exit(1)


@app.command()
def poster(
    campaign_id: str,
    id_type: str = typer.Option(..., help="the inviter's identifier type, e.g. unionid"),
    id: str = typer.Option(..., "--id", help="the inviter's identifier"),
    nickname: str = typer.Option("", help="shown on the poster"),
    channel: str = typer.Option("poster"),
    out: Path = typer.Option(Path("poster.png"), "--out", "-o"),
) -> None:
    """Write the inviter's share poster (PNG with QR code) for a live campaign."""
    person = Participant(id_type=id_type, id=id, nickname=nickname or None)
    invite = _call(invites.get_invite, campaign_id, person, channel=channel)
    out.write_bytes(_call(invites.poster_png, invite["code"]))
    console.print(f"{out}  {invite['link']}")


@app.command()
def leaderboard(campaign_id: str, limit: int = typer.Option(20, min=1), fmt: Format = FMT) -> None:
    rows = _call(views.leaderboard, campaign_id, limit)
    emit([dict(row) for row in rows], fmt, title=f"{campaign_id} leaderboard")


@app.command("close-due")
def close_due() -> None:
    """End campaigns past their end date (leaderboards grant their rank rewards) and give back the
    budget of rewards rejected or revoked in the ledger; for cron (the server's scheduler runs the jobs campaigns-close-due and
    campaigns-reconcile-reservations)."""
    closed = _call(service.close_due)
    released = _call(budget.reconcile_reservations)
    console.print(
        f"{len(closed)} campaign(s) ended{': ' + ', '.join(closed) if closed else ''}; {released} reservation(s) released"
    )


@app.command()
def flush() -> None:
    """Move queued invite events and referral edges to the warehouse now (the server does it every second)."""
    total = outbox.drain_warehouse()
    console.print(f"{total} rows flushed to the warehouse")

"""`liebian alerts …`: rules, the alert lifecycle, notification channels, anomaly scans."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import overload

import typer

from liebian.auth.cli_guard import acting
from liebian.db.session import session_scope
from liebian.monitor import anomalies, notifications, rules, service
from liebian.monitor.detector import DetectorError
from liebian.monitor.service import MonitorError
from liebian.output import Format, emit, err_console
from liebian.schemas import to_local

app = typer.Typer(no_args_is_help=True)
rules_app = typer.Typer(no_args_is_help=True, help="Threshold rules.")
channels_app = typer.Typer(no_args_is_help=True, help="Notification channels.")
app.add_typer(rules_app, name="rules")
app.add_typer(channels_app, name="channels")
FMT = typer.Option(Format.table, "--format")


def _run(fn, *args, **kwargs):
    try:
        with session_scope() as s:
            return fn(s, *args, **kwargs)
    except (MonitorError, DetectorError) as exc:
        err_console.print(f"[red]{getattr(exc, 'message', str(exc))}[/red]")
        raise typer.Exit(2) from None


def _actor() -> str:
    return acting().name


@overload
def _day(value: str, field: str) -> date: ...
@overload
def _day(value: str | None, field: str) -> date | None: ...


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err_console.print(f"[red]{field}: {value!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None


@rules_app.command("list")
def rules_list(fmt: Format = FMT) -> None:
    """List the threshold rules."""
    emit(_run(rules.list_rules), fmt)


@rules_app.command("add")
def rules_add(
    name: str = typer.Option(..., help="unique name"),
    metric: str = typer.Option(..., help=", ".join(rules.RULE_METRICS)),
    op: str = typer.Option(..., help="< or >"),
    threshold: float = typer.Option(..., help="a share, e.g. 0.15"),
    campaign_id: str | None = typer.Option(None),
    channel: str | None = typer.Option(None),
    level: str = typer.Option("一般", help="一般 | 重要 | 紧急"),
    action: str = typer.Option("none", help=", ".join(rules.ACTIONS)),
    auto_adjust: bool = typer.Option(False, "--auto-adjust/--no-auto-adjust"),
    limits: str = typer.Option("{}", help='JSON, e.g. {"max_reward_fen": 2000, "step_pct": 0.2}'),
    fmt: Format = FMT,
) -> None:
    """Add a threshold rule."""
    try:
        parsed = json.loads(limits)
    except ValueError as exc:
        err_console.print(f"[red]limits: not JSON ({exc})[/red]")
        raise typer.Exit(2) from None
    data = {"name": name, "metric": metric, "op": op, "threshold": threshold, "campaign_id": campaign_id,
            "channel": channel, "level": level, "action": action, "auto_adjust": auto_adjust, "limits": parsed}  # fmt: skip
    emit(_run(rules.create_rule, data, actor=_actor()), fmt)


@rules_app.command("defaults")
def rules_defaults(fmt: Format = FMT) -> None:
    """Install the plan's rules (participation < 15%, fission < 10%, negative share > 5%, …)."""
    emit(_run(rules.install_default_rules, actor=_actor()), fmt)


@rules_app.command("disable")
def rules_disable(rule_id: int, fmt: Format = FMT) -> None:
    """Disable a rule (its alerts stay)."""
    emit(_run(rules.delete_rule, rule_id, actor=_actor()), fmt)


def _hour(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return to_local(datetime.fromisoformat(value))  # …Z or …+08:00 → the local hour
    except ValueError:
        err_console.print(f"[red]hour: {value!r} is not a local time (YYYY-MM-DDTHH:00)[/red]")
        raise typer.Exit(2) from None


@app.command("evaluate")
def evaluate(
    day: str | None = typer.Option(None, help="YYYY-MM-DD; default yesterday (local)"),
    hour: str | None = typer.Option(
        None, help="a finished local hour YYYY-MM-DDTHH:00 instead: rate rules of live campaigns"
    ),
    fmt: Format = FMT,
) -> None:
    """Check every enabled rule for one day (or hour); open alerts; notify; apply auto-adjust policies."""
    h = _hour(hour)
    d = None if h else _day(day, "day") or anomalies.local_time().date() - timedelta(days=1)
    emit(_run(rules.evaluate_rules, d, hour=h), fmt)


@app.command("series")
def series(
    metric: str = typer.Option(..., help=", ".join(anomalies.SERIES_METRICS)),
    start: str = typer.Option(..., help="YYYY-MM-DD (local)"),
    end: str = typer.Option(..., help="YYYY-MM-DD (local)"),
    grain: str = typer.Option("day", help="day | hour (hours not yet finished are left out)"),
    campaign_id: str | None = typer.Option(None),
    channel: str | None = typer.Option(None),
    fmt: Format = FMT,
) -> None:
    """One KPI per local day or hour (Asia/Shanghai)."""
    values = _run(
        lambda _s: anomalies.metric_series(
            metric,
            _day(start, "start"),
            _day(end, "end"),
            grain=grain,
            campaign_id=campaign_id,
            channel=channel,
        )
    )
    emit(anomalies.series_points(values), fmt)


@app.command("live")
def live(
    metric: str = typer.Option("participants", help=", ".join(anomalies.SERIES_METRICS)),
    days: int = typer.Option(2, help=f"local days back, 1–{anomalies.MAX_HOURLY_DAYS}"),
    fmt: Format = FMT,
) -> None:
    """Hourly series of every live campaign, in total (no channel) and per channel."""
    entries = _run(anomalies.live_series, days, metrics=[metric])
    emit(
        [
            {"campaign_id": e["campaign_id"], "channel": e["channel"], **p}
            for e in entries
            for p in anomalies.series_points(e["frame"][metric])
        ],
        fmt,
    )


@app.command("scan")
def scan(
    metric: str = typer.Option(..., help=", ".join(anomalies.SERIES_METRICS)),
    start: str = typer.Option(..., help="YYYY-MM-DD"),
    end: str = typer.Option(..., help="YYYY-MM-DD"),
    campaign_id: str | None = typer.Option(None),
    channel: str | None = typer.Option(None),
    sensitivity: float = typer.Option(3.0, help="robust sigmas (3 = the 3σ rule)"),
    min_change: float = typer.Option(0.15, help="smallest relative move that alerts"),
    grain: str = typer.Option("day", help="day (weekly cycle) | hour (daily cycle)"),
    fmt: Format = FMT,
) -> None:
    """Anomalies of one daily or hourly KPI series (STL + robust 3σ, calendar of known effects)."""
    result = _run(
        anomalies.scan_series, metric, _day(start, "start"), _day(end, "end"), campaign_id=campaign_id,
        channel=channel, sensitivity=sensitivity, min_change=min_change, grain=grain,
    )  # fmt: skip
    emit(result["anomalies"] if fmt != Format.json else result, fmt)


@app.command("list")
def list_(
    status: str | None = typer.Option(None, help="open | acknowledged | resolved"),
    level: str | None = typer.Option(None, help="一般 | 重要 | 紧急"),
    grouped: bool = typer.Option(False, "--grouped", help="group by campaign / channel / group"),
    fmt: Format = FMT,
) -> None:
    """List alerts (newest first) or alert groups."""
    if grouped:
        emit(_run(service.grouped_alerts, status), fmt)
    else:
        emit(_run(service.list_alerts, status, level), fmt)


@app.command("show")
def show(alert_id: int, fmt: Format = FMT) -> None:
    """One alert."""
    emit(_run(service.get_alert, alert_id), fmt)


@app.command("ack")
def ack(alert_id: int, fmt: Format = FMT) -> None:
    """Acknowledge an open alert."""
    emit(_run(service.acknowledge, alert_id, actor=_actor()), fmt)


@app.command("resolve")
def resolve(
    alert_id: int,
    root_cause: str = typer.Option(..., "--root-cause", help="what caused it"),
    fmt: Format = FMT,
) -> None:
    """Resolve an alert with a root-cause note."""
    emit(_run(service.resolve, alert_id, root_cause, actor=_actor()), fmt)


@app.command("escalate")
def escalate(fmt: Format = FMT) -> None:
    """Escalate open alerts whose response deadline has passed."""
    emit(_run(notifications.escalate_due), fmt)


@channels_app.command("add")
def channels_add(
    name: str = typer.Option(...),
    kind: str = typer.Option(..., help="wecom | dingtalk | webhook | email"),
    target: str = typer.Option(..., help="robot / webhook URL, or comma-separated e-mail addresses"),
    secret: str = typer.Option("", help="DingTalk 加签 secret (SEC…) or webhook signing secret"),
    min_level: str = typer.Option("一般", help="lowest level sent to this channel"),
    fmt: Format = FMT,
) -> None:
    """Add a notification channel (URL and secret are stored encrypted)."""
    emit(_run(notifications.add_channel, name, kind, target, secret, min_level, actor=_actor()), fmt)


@channels_app.command("list")
def channels_list(fmt: Format = FMT) -> None:
    """List notification channels (URLs without their keys)."""
    emit(_run(notifications.list_channels), fmt)


@app.command("deliveries")
def deliveries(alert_id: int | None = typer.Option(None), fmt: Format = FMT) -> None:
    """The notification delivery log."""
    emit(_run(notifications.list_deliveries, alert_id), fmt)

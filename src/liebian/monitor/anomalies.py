"""Metric series (KPIs per local day or hour and scope, from the analytics service) and the anomaly
scans over them, daily and for live campaigns per hour; new anomalies open alerts and notify."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from liebian import display
from liebian.analytics import service as analytics
from liebian.analytics.common import MetricConfig, zone_offset_seconds
from liebian.campaigns import service as campaigns
from liebian.db.base import utcnow
from liebian.lazy import lazy_import
from liebian.monitor import detector
from liebian.monitor.notifications import notify_alert
from liebian.monitor.service import invalid, raise_alert

if TYPE_CHECKING:
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    pd = lazy_import("pandas")

# KPI series the anomaly scan can watch (keys of analytics' KPI sheet)
SERIES_METRICS = (
    "participation_rate",
    "referred_share_of_new",
    "referral_rate",
    "paid_orders",
    "revenue_fen",
    "new_users",
    "active_users",
    "participants",
    "reached",
)


GRAINS = ("day", "hour")


# the detector's period per grain: a weekly cycle of days, a daily cycle of hours
SEASON = {"day": 7, "hour": 24}


STEP = {"day": timedelta(days=1), "hour": timedelta(hours=1)}


MAX_HOURLY_DAYS = 31  # an hourly series is for watching a live campaign, not for a season


# series metrics that are counts (Poisson noise: the detector's square-root transform for hours)
COUNT_METRICS = frozenset(SERIES_METRICS) - {"participation_rate", "referred_share_of_new", "referral_rate"}


def local_time(now: datetime | None = None) -> datetime:
    """`now` (naive UTC) as naive local time of analytics' display zone (Asia/Shanghai)."""

    return (now or utcnow()) + timedelta(seconds=zone_offset_seconds(MetricConfig().zone))


def _check_metric(metric: str) -> None:
    if metric not in SERIES_METRICS:
        raise invalid("metric", f"{metric!r} is not one of {', '.join(SERIES_METRICS)}")


def _check_series(metric: str | None, start: date, end: date, grain: str) -> None:
    if metric is not None:
        _check_metric(metric)
    if grain not in GRAINS:
        raise invalid("grain", f"{grain!r} is not one of {', '.join(GRAINS)}")
    if start > end:
        raise invalid("start", f"{start} is after end {end}")
    if grain == "hour" and (end - start).days + 1 > MAX_HOURLY_DAYS:
        raise invalid("end", f"an hourly series covers at most {MAX_HOURLY_DAYS} days")


def _as_frame(rows: list[dict], grain: str, now: datetime | None) -> pd.DataFrame:
    """Analytics' series rows as a frame indexed by local bucket start, without unfinished buckets."""
    frame = pd.DataFrame(rows)
    starts = pd.DatetimeIndex(pd.to_datetime(frame.pop("start")), name="ts")
    frame.index = starts
    frame = frame.astype("float64")  # rates without a base (None) become gaps (NaN)
    if grain == "hour" or now is not None:  # the hour (or day) in progress would read as a drop
        frame = frame[starts + STEP[grain] <= pd.Timestamp(local_time(now))]
    return frame


def kpi_frame(
    start: date,
    end: date,
    *,
    grain: str = "day",
    campaign_id: str | None = None,
    channel: str | None = None,
    engine: str | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every series KPI per local day or hour (columns: SERIES_METRICS and the counts behind them).

    One analytics query (`run_kpi_series`: the KPI sheet's definitions counted per bucket of the
    display zone). Buckets that have not ended by `now` are left out: always for hours (default
    now), for days only when `now` is given.
    """

    _check_series(None, start, end, grain)
    filters = analytics.make_filters(start, end, channels=[channel] if channel else (), campaigns=[campaign_id] if campaign_id else ())  # fmt: skip
    return _as_frame(analytics.run_kpi_series(filters, grain, engine=engine), grain, now)


def metric_series(
    metric: str,
    start: date,
    end: date,
    *,
    grain: str = "day",
    campaign_id: str | None = None,
    channel: str | None = None,
    engine: str | None = None,
    now: datetime | None = None,
) -> pd.Series:
    """Values of one KPI per local day, or per local hour (`grain="hour"`), see `kpi_frame`."""
    _check_series(metric, start, end, grain)
    frame = kpi_frame(start, end, grain=grain, campaign_id=campaign_id, channel=channel, engine=engine, now=now)  # fmt: skip
    return frame[metric].rename(metric)


def series_points(series: pd.Series) -> list[dict]:
    """[{ts, value}] for JSON: local ISO times, gaps as None."""
    times = pd.DatetimeIndex(series.index)
    return [
        {"ts": ts.isoformat(), "value": None if pd.isna(v) else float(v)}
        for ts, v in zip(times, series, strict=True)
    ]


def live_campaigns(session: Session) -> list[dict]:
    """Campaigns that are live now (launched and inside their window), with the local hour their
    window began (the later of launch and start_at): their hourly series start there."""

    out = []
    for c in campaigns.list_campaigns(session, status="live"):
        start_at = campaigns.get_campaign(session, c["id"])["rules"].get("start_at")
        began = max(x for x in (c["launched_at"], start_at and datetime.fromisoformat(start_at).replace(tzinfo=None)) if x)  # fmt: skip
        out.append({"campaign_id": c["id"], "title": c["title"],
                    "since": local_time(began).replace(minute=0, second=0, microsecond=0)})  # fmt: skip
    return out


def live_series(
    session: Session,
    days: int = 7,
    *,
    metrics: Iterable[str] | None = None,
    now: datetime | None = None,
    engine: str | None = None,
) -> list[dict]:
    """Hourly series of every live campaign, in total and per channel, over the last `days` local
    days up to the last finished hour (and from the campaign's window start): one entry per
    (campaign, channel) with a frame of the KPIs (`frame`) — campaigns that are not live are not
    watched hourly (their daily series are)."""

    if not 1 <= days <= MAX_HOURLY_DAYS:
        raise invalid("days", f"must lie in 1–{MAX_HOURLY_DAYS}, got {days}")
    wanted = list(metrics or SERIES_METRICS)
    for m in wanted:
        _check_metric(m)
    end = local_time(now).date()
    start = end - timedelta(days=days - 1)
    out = []
    for c in live_campaigns(session):
        f = analytics.make_filters(start, end, campaigns=[c["campaign_id"]])
        scopes: dict[str | None, list[dict[str, Any]]] = {
            None: analytics.run_kpi_series(f, "hour", engine=engine)
        }
        scopes.update(analytics.run_kpi_series_by_channel(f, "hour", engine=engine))
        for channel, rows in scopes.items():
            frame = _as_frame(rows, "hour", now)
            frame = frame[frame.index >= pd.Timestamp(c["since"])][wanted]
            out.append(
                {"campaign_id": c["campaign_id"], "channel": channel, "since": c["since"], "frame": frame}
            )
    return out


def calendar_for(session: Session | None, years: Iterable[int]) -> list[detector.CalendarEffect]:
    """The holiday calendar of the settings (liebian/calendar.py: windows, public holidays, adjusted
    working days) plus every campaign launch known to the campaign service."""
    effects = detector.default_calendar(years)
    if session is not None:
        launches = []
        for c in campaigns.list_campaigns(session):
            launched = c.get("launched_at")
            if launched:
                launches.append((c["id"], launched.date() if isinstance(launched, datetime) else date.fromisoformat(str(launched)[:10])))  # fmt: skip
        effects += detector.launch_effects(launches)
    return effects


def scan_series(
    session: Session | None,
    metric: str,
    start: date,
    end: date,
    *,
    campaign_id: str | None = None,
    channel: str | None = None,
    sensitivity: float = detector.DEFAULT_SENSITIVITY,
    min_change: float = detector.DEFAULT_MIN_CHANGE,
    extra_calendar: Iterable[detector.CalendarEffect] = (),
    raise_alerts_since: date | datetime | None = None,
    level: str = "重要",
    now: datetime | None = None,
    engine: str | None = None,
    grain: str = "day",
    series: pd.Series | None = None,
) -> dict:
    """Detect anomalies in one KPI series (daily: weekly cycle; hourly: daily cycle); open alerts
    for new episodes from `raise_alerts_since` (a day, or a local hour) on. `series` skips the
    query when the caller has the values already (the live scan reads one frame per scope)."""
    if series is None:
        series = metric_series(metric, start, end, grain=grain, campaign_id=campaign_id, channel=channel,
                               engine=engine, now=now)  # fmt: skip
    else:
        _check_series(metric, start, end, grain)
    cal = calendar_for(session, range(start.year, end.year + 1)) + list(extra_calendar)
    # buckets without a defined value (no one reached yet) are gaps, not zeros
    found = detector.detect(
        series, period=SEASON[grain], sensitivity=sensitivity, min_change=min_change, calendar=cal,
        counts=grain == "hour" and metric in COUNT_METRICS,
    )  # fmt: skip
    alerts = []
    scope = {"campaign_id": campaign_id, "channel": channel}
    if session is not None and raise_alerts_since is not None:
        since = pd.Timestamp(raise_alerts_since)
        for a in found:
            if a.alert and a.ts >= since:
                direction = "突增" if a.direction == "spike" else "骤降"
                when = a.ts.date().isoformat() if grain == "day" else a.ts.strftime("%Y-%m-%dT%H:00")
                view, new = raise_alert(
                    session, kind="anomaly", metric=metric, scope=scope, level=level,
                    # display.decimal: float noise (an expected -9.992e-16) reads 0, never in e-notation
                    title=f"{metric} {direction}（{when}）：实际 {display.decimal(a.observed, 4)}，"
                    f"预期 {display.decimal(a.expected, 4)}",
                    observed=a.observed, expected=a.expected, period=when,
                    suggested_action="review_channel" if channel else "raise_reward_tier" if a.direction == "drop" else "none",
                    now=now,
                )  # fmt: skip
                if new or view["status"] != "resolved":  # a resolved alert of the day stays resolved
                    alerts.append(view)
    return {
        "metric": metric,
        "grain": grain,
        "scope": {k: v for k, v in scope.items() if v},
        "points": int(series.notna().sum()),
        "anomalies": [a.as_dict() for a in found],
        "alerts": alerts,
    }


LIVE_DAYS = 8  # hours of the last eight days: the detector's window of daily cycles


LIVE_METRICS = ("participants", "paid_orders")  # counts: a rate per hour swings on tiny bases


def last_hour(now: datetime | None = None) -> datetime:
    """The last finished local hour (its start)."""
    return local_time(now).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def scan_live(
    session: Session,
    *,
    now: datetime | None = None,
    days: int = LIVE_DAYS,
    metrics: Iterable[str] = LIVE_METRICS,
    engine: str | None = None,
    notify_new: bool = True,
) -> dict:
    """The hourly watch of live campaigns: each one's hourly series (in total and per channel),
    STL + 3σ over the daily cycle, alerts (and notifications) for anomalies of the last finished hour."""
    now = now or utcnow()
    since = last_hour(now)
    metrics = list(metrics)
    series = alerts = 0
    skipped = []
    for entry in live_series(session, days, metrics=metrics, now=now, engine=engine):
        frame = entry["frame"]
        for metric in metrics:
            scope = {"campaign_id": entry["campaign_id"], "channel": entry["channel"]}
            if frame.empty:
                skipped.append({**scope, "metric": metric, "reason": "no finished hour yet"})
                continue
            try:
                r = scan_series(
                    session, metric, frame.index[0].date(), frame.index[-1].date(), **scope, grain="hour",
                    series=frame[metric], raise_alerts_since=since, now=now, engine=engine,
                )  # fmt: skip
            except detector.DetectorError as exc:  # a campaign younger than a day and an hour
                skipped.append({**scope, "metric": metric, "reason": str(exc)})
                continue
            series += 1
            for alert in r["alerts"]:
                if notify_new and alert["occurrences"] == 1:
                    notify_alert(session, alert, "opened")
            alerts += len(r["alerts"])
    return {"hour": since.isoformat(), "series": series, "alerts": alerts, "skipped": skipped}

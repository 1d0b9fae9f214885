"""The console's warm-up: the pages whose default view is computed ahead of the first visitor, in
the order web/console.py `start_warming` runs them (the server starts it in web/app.py)."""

from __future__ import annotations

from collections.abc import Callable

from liebian.web.pages import data, journeys, overview
from liebian.web.pages.analytics import channels, funnel, referrals, retention, scorecard

WARMERS: tuple[Callable[[], None], ...] = (
    overview.warm_default_view,
    funnel.warm_default_view,
    retention.warm_default_view,
    referrals.warm_default_view,
    channels.warm_default_view,
    scorecard.warm_default_view,
    journeys.warm_journey_stats,
    data.warm_quality_report,
)

"""Metric names (`kpi.<key>`): the metric catalogue's (analytics/catalogue.py), the one place a metric
is named; every page labels a metric with `t(f"kpi.{key}")`."""

from __future__ import annotations

from liebian.analytics.catalogue import METRICS

MESSAGES = {f"kpi.{m.key}": (m.zh, m.en) for m in METRICS}

"""The quality report on the demo brand finds exactly the problems the generator injected."""

from __future__ import annotations

import json

import pytest

from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.quality import service

pytestmark = pytest.mark.slow


def test_report_finds_every_injected_problem(demo_brand) -> None:
    truth = json.loads((demo_brand / "demo" / "ground_truth.json").read_text(encoding="utf-8"))["quality"]
    with warehouse.connect(read_only=True) as con, session_scope() as session:
        report = service.quality_report(con, session=session)
    rows = service.check_ground_truth(report, truth)
    kinds = {row["kind"].split(".")[0] for row in rows}
    # every kind of injected problem is compared, and each is found in the injected amount
    assert {
        "bad_rows",
        "duplicate_content_events",
        "late_events",
        "out_of_range_amounts",
        "volume_anomaly",
    } <= kinds
    assert [row for row in rows if not row["ok"]] == []
    # and the injected bad rows are visible in the quarantine with their reasons
    assert sum(report.quarantine.by_category.values()) >= sum(truth["bad_rows"].values())

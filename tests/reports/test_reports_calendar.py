"""Reports name the holidays, adjusted working days and promotions of their period."""

from __future__ import annotations

import io
from datetime import date

from openpyxl import load_workbook
from reports_helpers import parse_html

from liebian.reports import service


def test_a_report_names_the_holidays_of_its_period(sqlite_store):
    report = service.build_report("monthly", date(2026, 2, 1), date(2026, 2, 28))
    named = {(w["name"], w["kind"], w["start"], w["end"]) for w in report["calendar"]}
    assert ("春节", "holiday", "2026-02-15", "2026-02-23") in named
    assert ("调休上班（春节）", "workday", "2026-02-14", "2026-02-14") in named
    assert ("春节", "season", "2026-02-07", "2026-03-10") in named
    html = service.render_html(report)
    assert "calendar" in parse_html(html).ids and "春节</span> (2026-02-15 – 2026-02-23)" in html
    about = dict(load_workbook(io.BytesIO(service.render_xlsx(report)))["About"].values)
    assert "春节 2026-02-15–2026-02-23" in about["calendar"]
    # an ordinary week names nothing
    plain = service.build_report("weekly", date(2026, 3, 16), date(2026, 3, 22))
    assert plain["calendar"] == [] and 'id="calendar"' not in service.render_html(plain)

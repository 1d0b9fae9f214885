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


def test_a_targets_status_is_named_in_the_reports_language_and_its_name_is_data(sqlite_store):
    report = service.build_report("weekly", date(2026, 3, 16), date(2026, 3, 22))
    target = {"name": "次日留存 32%→41%", "metric": "retention_d1", "baseline": 0.32, "target": 0.41,
              "start_date": "2026-03-01", "due_date": "2026-04-30"}  # fmt: skip
    # no measure: no data; 0.40 is 89% done after 21 of 60 days: on track
    report["targets"] = [service.progress(target, current, date(2026, 3, 22)) for current in (None, 0.40)]
    assert [x["status"] for x in report["targets"]] == ["no data", "on track"]
    zh, en = service.render_html(report), service.render_html(report, "en")
    assert "tstatus" not in zh + en
    assert '"no_data">无数据<' in zh and '"on_track">按计划<' in zh
    assert '"no_data">no data<' in en and '"on_track">on track<' in en
    # the name an operator gave is data in the table and in the progress chart: never translated
    assert en.count('translate="no">次日留存 32%→41%<') == 4

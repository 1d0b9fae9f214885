"""The growth-insight pages in Chromium and over real HTTP: the fission funnel and its drop-off
drill-down, the retention heatmap, the referral graph, the channel radar, the scorecard with the
sector benchmarks. What the pages show is compared with the analytics JSON API (the same service
answering through another door), never with numbers written into the test."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from console_helpers import PASSWORD, check_accessibility, check_page

from liebian.web.format import code_name
from liebian.web.i18n import format_number, translator
from liebian.web.pages.analytics.referrals import GRAPH_NODES
from shared_helpers import export_csv


@pytest.fixture(scope="module")
def client(console_url: str) -> Iterator[httpx.Client]:
    """A viewer's HTTP session on the console server (no browser needed)."""
    with httpx.Client(base_url=console_url, timeout=60) as c:
        r = c.post("/api/v1/auth/login", json={"username": "viewer1", "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield c


@pytest.fixture(scope="module")
def operator(console_url: str) -> Iterator[httpx.Client]:
    """An operator's HTTP session: operators may look up persons (identity:read)."""
    with httpx.Client(base_url=console_url, timeout=60) as c:
        r = c.post("/api/v1/auth/login", json={"username": "operator1", "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield c


def _csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return export_csv(response.content)  # without the export watermark (footer row, mark column)


def _option(html: str, chart_id: str) -> dict:
    """The ECharts option a page serialised for one chart."""
    found = re.search(rf'<script type="application/json" id="{chart_id}-option">(.*?)</script>', html, re.S)
    assert found, f"no chart {chart_id} on the page"
    return json.loads(found.group(1))


def _cells(page, table_id: str) -> list[list[str]]:
    return page.locator(f"table#{table_id} tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.innerText.trim()))"
    )


def _person_ids(page, table_id: str) -> list[str]:
    """The person ids of a table's first column: persons are shown by name, linking to their
    profile with the id as the link's title (web/people.py)."""
    return page.locator(f"table#{table_id} tbody tr td:first-child a.person").evaluate_all(
        "links => links.map(a => a.title)"
    )


def _int(text: str) -> int:
    return int(text.replace(",", ""))


# --- over HTTP ------------------------------------------------------------------------------------


def test_every_analytics_page_answers_a_viewer_and_refuses_a_reviewer(client, console_url):
    for path in ("/funnel", "/retention", "/referrals", "/channels", "/scorecard"):
        r = client.get(path)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        assert 'class="chart"' in r.text or "table-box" in r.text, path
    # the drop-off list names persons: like its API it needs identity:read, which a viewer lacks,
    # so the viewer's funnel offers no drill-down links
    assert client.get("/funnel/dropped?step=3").status_code == 403
    assert "/funnel/dropped" not in client.get("/funnel").text
    with httpx.Client(base_url=console_url) as reviewer:
        reviewer.post("/api/v1/auth/login", json={"username": "reviewer1", "password": PASSWORD})
        assert reviewer.get("/funnel").status_code == 403
        assert reviewer.get("/scorecard").status_code == 403


def test_bad_page_options_are_named_not_crashes(operator):
    cases = {
        "/funnel?breakdown=device": "breakdown: &#39;device&#39; is not one of channel, campaign",
        "/funnel/dropped?step=9": "step: must be between 2 and 4; got 9",
        "/funnel/dropped?step=two": "step: &#39;two&#39; is not a whole number",
        "/retention?unit=year": "unit: &#39;year&#39; is not one of day, week, month",
        "/scorecard?sector=mining": "sector: &#39;mining&#39; is not one of",
        "/channels?start=2026-05-01&end=2026-04-01": "is after end",
    }
    for path, message in cases.items():
        r = operator.get(path)
        assert r.status_code == 422, path
        assert message in r.text, f"{path}: {r.text[:2000]}"


def test_dropped_persons_export_is_exactly_the_apis_dropped_persons(operator):
    funnel = operator.get("/api/v1/analytics/funnel").json()["steps"]
    for step in (2, 4):
        api = operator.get("/api/v1/analytics/funnel/dropped", params={"at_step": step}).json()
        rows = _csv(
            operator.get("/funnel/dropped", params={"step": step, "export": "dropped", "format": "csv"})
        )
        assert rows[0][0] == "人员 ID"
        assert sorted(int(r[0]) for r in rows[1:]) == sorted(p["person_id"] for p in api)
        # the drill-down is the funnel's drop between the two steps
        assert (
            len(rows) - 1
            == funnel[step - 1]["dropped"]
            == funnel[step - 2]["persons"] - funnel[step - 1]["persons"]
        )


def test_funnel_with_a_channel_filter_matches_the_api_and_groups_add_up(client):
    channel = client.get("/api/v1/analytics/channels").json()[0]["channel"]
    api = client.get("/api/v1/analytics/funnel", params={"channel": channel}).json()["steps"]
    rows = _csv(client.get("/funnel", params={"channel": channel, "export": "funnel_steps", "format": "csv"}))
    assert [int(r[3]) for r in rows[1:]] == [s["persons"] for s in api]
    # broken down by entry channel, the groups add up to the whole funnel at every step
    whole = client.get("/api/v1/analytics/funnel").json()["steps"]
    groups = _csv(
        client.get("/funnel", params={"breakdown": "channel", "export": "funnel_by_group", "format": "csv"})
    )
    for s in whole:
        assert sum(int(r[4]) for r in groups[1:] if int(r[1]) == s["step"]) == s["persons"]


def test_retention_matrix_export_matches_the_api(client):
    for unit in ("week", "month"):
        api = client.get("/api/v1/analytics/retention", params={"unit": unit}).json()["matrix"]
        rows = _csv(
            client.get("/retention", params={"unit": unit, "export": "retention_matrix", "format": "csv"})
        )
        assert [r[0] for r in rows[1:]] == [m["cohort"] for m in api]
        for row, m in zip(rows[1:], api, strict=True):
            assert int(row[1]) == m["size"]
            for k, cell in enumerate(row[2:]):
                want = m.get(f"{unit[0]}{k}")
                assert (cell == "" and want is None) or float(cell) == pytest.approx(want)


def test_referral_graph_is_capped_and_spreaders_match_the_api(client):
    page = client.get("/referrals").text
    option = _option(page, "referral_graph")
    nodes, links = option["series"][0]["data"], option["series"][0]["links"]
    assert 0 < len(nodes) <= GRAPH_NODES
    ids = {n["id"] for n in nodes}
    assert all(link["source"] in ids and link["target"] in ids for link in links)
    # laid out here (one ring per generation), so the browser runs no layout of its own
    assert option["series"][0]["layout"] == "none"
    place = {n["id"]: (n["x"], n["y"]) for n in nodes}
    assert len(set(place.values())) == len(nodes)
    assert f"最多 {GRAPH_NODES} 人" in page  # the cap is said on the page
    api = client.get(
        "/api/v1/analytics/referral-tree", params={"top": 20, "max_graph_nodes": GRAPH_NODES}
    ).json()
    assert {str(n["id"]) for n in api["graph"]["nodes"]} == ids
    rows = _csv(client.get("/referrals", params={"export": "top_spreaders", "format": "csv"}))
    assert [(int(r[0]), int(r[3])) for r in rows[1:]] == [
        (s["person_id"], s["descendants"]) for s in api["top_spreaders"]
    ]


def test_channel_radar_and_table_are_the_apis_channels(client):
    api = client.get("/api/v1/analytics/channels").json()
    page = client.get("/channels").text
    radar = _option(page, "channel_radar")["series"][0]["data"]
    assert len(radar) == len(api)
    for drawn, row in zip(radar, api, strict=True):
        assert drawn["value"] == pytest.approx(
            [
                row[f"{a}_norm"]
                for a in ("invites_sent", "k_factor", "conversion_rate", "aov_fen", "retention_d7")
            ],
            abs=1e-4,
        )
    rows = _csv(client.get("/channels", params={"export": "channels", "format": "csv"}))
    assert [r[0] for r in rows[1:]] == [r["channel"] for r in api]
    assert [float(r[-2]) for r in rows[1:]] == pytest.approx([r["fission_power"] for r in api])


def test_scorecard_and_benchmarks_are_the_apis(client):
    # without dates the page scores the last 30 days of data; the API is asked for those days
    default = client.get("/scorecard").text
    start, end = re.search(r"(\d{4}-\d\d-\d\d) — (\d{4}-\d\d-\d\d)", default).groups()
    params = {"start": start, "end": end}
    page = client.get("/scorecard", params=params | {"stage": "growth", "sector": "beauty"}).text
    card = client.get("/api/v1/analytics/scorecard", params=params | {"stage": "growth"}).json()
    bench = client.get("/api/v1/analytics/benchmarks", params=params | {"sector": "beauty"}).json()
    shown = float(re.search(r'id="score-total" data-value="([0-9.]+)"', page).group(1))
    assert shown == pytest.approx(card["score"])
    rows = _csv(
        client.get(
            "/scorecard", params=params | {"stage": "growth", "sector": "beauty", "export": "benchmarks"}
        )
    )
    assert [r[-1] for r in rows[1:]] == [
        {"above": "高于基准", "below": "低于基准", "on par": "持平", "n/a": "无数据"}[c["verdict"]]
        for c in bench["comparison"]
    ]
    scores = _csv(client.get("/scorecard", params=params | {"stage": "growth", "export": "indicators"}))
    assert len(scores) - 1 == len(card["indicators"]) == 15
    for row, ind in zip(scores[1:], card["indicators"], strict=True):
        assert (row[4] == "" and ind["score"] is None) or float(row[4]) == pytest.approx(ind["score"])


# --- in the browser -------------------------------------------------------------------------------

browser = pytest.mark.browser


@browser
def test_funnel_drill_down_to_the_persons_who_dropped(page):
    page.goto("/funnel")
    check_page(page, "funnel", min_charts=1)
    check_accessibility(page)
    api = page.request.get("/api/v1/analytics/funnel").json()["steps"]
    shown = _cells(page, "funnel_steps")
    assert [r[3] for r in shown] == [format_number(s["persons"], "zh-CN") for s in api]
    assert [r[6] for r in shown] == [format_number(s["dropped"], "zh-CN") for s in api]
    assert page.locator("#funnel-entered").get_attribute("data-value") == str(api[0]["persons"])
    # click the drop-off between the first two steps
    page.locator("table#funnel_steps tbody tr").nth(1).locator("a").click()
    page.wait_for_load_state("networkidle")
    assert "/funnel/dropped" in page.url and "step=2" in page.url
    count = int(page.locator("#dropped-count").get_attribute("data-value"))
    assert count == api[0]["persons"] - api[1]["persons"] == api[1]["dropped"]
    dropped = page.request.get("/api/v1/analytics/funnel/dropped?at_step=2").json()
    assert count == len(dropped)
    listed = _person_ids(page, "dropped")
    assert listed and set(listed) <= {str(p["person_id"]) for p in dropped}
    check_page(page, "funnel-dropped")
    check_accessibility(page)


@browser
def test_a_click_on_a_funnel_step_in_the_chart_opens_its_drop_off(page):
    page.goto("/funnel")
    page.wait_for_load_state("networkidle")
    chart = page.locator("#funnel")
    chart.locator("canvas").wait_for()
    # the centre of the third step's shape, from the drawn chart
    x, y = chart.evaluate(
        """(el) => {
          const c = echarts.getInstanceByDom(el);
          const shape = c.getModel().getSeriesByIndex(0).getData().getItemGraphicEl(2);
          const r = shape.getBoundingRect();
          return [r.x + r.width / 2, r.y + r.height / 2];
        }"""
    )
    chart.click(position={"x": x, "y": y})
    page.wait_for_url(re.compile(r"/funnel/dropped\?step=3"))
    api = page.request.get("/api/v1/analytics/funnel").json()["steps"]
    assert int(page.locator("#dropped-count").get_attribute("data-value")) == api[2]["dropped"]


@browser
def test_funnel_breakdown_selector_keeps_the_filters_in_the_url(page):
    channel = page.request.get("/api/v1/analytics/channels").json()[0]["channel"]
    page.goto(f"/funnel?channel={channel}")
    page.get_by_label("拆分维度").select_option("channel")
    page.wait_for_url(re.compile(r"breakdown=channel"))
    assert f"channel={channel}" in page.url
    check_page(page, "funnel-breakdown", min_charts=2)
    check_accessibility(page)
    # the filter bar keeps the breakdown when a filter changes
    page.locator("form[role=search] select[name=channel]").select_option("")
    page.wait_for_load_state("networkidle")
    assert "breakdown=channel" in page.url


@browser
def test_retention_heatmap_follows_the_cohort_unit(page):
    page.goto("/retention")
    check_page(page, "retention", min_charts=1)
    check_accessibility(page)
    page.get_by_label("同期群粒度").select_option("month")
    page.wait_for_url(re.compile(r"unit=month"))
    api = page.request.get("/api/v1/analytics/retention?unit=month").json()["matrix"]
    rows = _cells(page, "retention_matrix")
    assert [r[0] for r in rows] == [m["cohort"] for m in api]
    assert [r[2] for r in rows] == ["100.0%"] * len(api)  # month 0 is the cohort itself
    m1 = [m.get("m1") for m in api]
    assert [r[3] for r in rows] == ["—" if v is None else f"{v:.1%}" for v in m1]
    check_page(page, "retention-month", min_charts=1)


@browser
def test_referral_graph_draws_and_lists_the_top_spreaders(page):
    page.goto("/referrals")
    check_page(page, "referrals", min_charts=1)
    check_accessibility(page)
    assert str(GRAPH_NODES) in page.locator("#graph-cap").inner_text()
    api = page.request.get(f"/api/v1/analytics/referral-tree?max_graph_nodes={GRAPH_NODES}").json()
    assert _person_ids(page, "top_spreaders") == [str(s["person_id"]) for s in api["top_spreaders"]]
    assert page.locator("#tree-edges").inner_text() == format_number(api["summary"]["edges"], "zh-CN")


@browser
def test_channel_radar_in_english(page):
    page.goto("/channels?lang=en")
    assert page.locator("h1").inner_text() == "Channel radar"
    check_page(page, "channels-en", min_charts=2)
    check_accessibility(page)
    api = page.request.get("/api/v1/analytics/channels").json()
    rows = _cells(page, "channels")
    en = translator("en")  # channels by their English names, in the API's order
    assert [r[0] for r in rows] == [code_name(en, "channel", r["channel"]) for r in api]
    assert [_int(r[1]) for r in rows] == [r["invites_sent"] for r in api]
    with page.expect_download() as png:
        page.locator("button[data-png=channel_radar]").click()
    with open(png.value.path(), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    page.goto("/channels?lang=zh-CN")


@browser
def test_scorecard_with_sector_selector(page):
    page.goto("/scorecard")
    check_page(page, "scorecard", min_charts=3)
    check_accessibility(page)
    period = re.search(r"(\d{4}-\d\d-\d\d) — (\d{4}-\d\d-\d\d)", page.locator("main").inner_text())
    start, end = period.groups()
    card = page.request.get(f"/api/v1/analytics/scorecard?start={start}&end={end}").json()
    assert float(page.locator("#score-total").get_attribute("data-value")) == pytest.approx(card["score"])
    page.locator("select[name=sector]").select_option("education")
    page.wait_for_url(re.compile(r"sector=education"))
    bench = page.request.get(f"/api/v1/analytics/benchmarks?start={start}&end={end}&sector=education").json()
    verdicts = [r[-1] for r in _cells(page, "benchmarks")]
    names = {"above": "高于基准", "below": "低于基准", "on par": "持平", "n/a": "无数据"}
    assert verdicts == [names[c["verdict"]] for c in bench["comparison"]]

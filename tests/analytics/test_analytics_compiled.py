"""The kept SQL of an analysis (analytics/compiled.py): a repeated call reuses it on a new connection,
reads the rows there are now, and a changed warehouse schema compiles it again."""

from __future__ import annotations

from liebian.analytics import compiled, service
from liebian.engine import warehouse

P = service.make_filters("2026-03-01", "2026-03-07")


def persons(result) -> list[int]:
    return [s["persons"] for s in result["steps"]]


def test_a_repeated_funnel_reuses_its_sql_reads_new_rows_and_follows_the_schema(rows, load):
    compiled._kept.clear()
    rows.event(1, "2026-03-01 10:00:00", "exposure")
    rows.event(1, "2026-03-01 11:00:00", "page_view")
    load()
    assert persons(service.run_funnel(P, "exposure,page_view")) == [1, 1]
    assert len(compiled._kept) == 1
    rows.events.clear()  # the next load adds only these
    rows.event(2, "2026-03-02 10:00:00", "exposure")
    rows.event(3, "2026-03-02 10:00:00", "exposure")
    rows.event(3, "2026-03-02 10:30:00", "page_view")
    load()
    # each call opens its own connection: the kept SQL serves it, over the rows written since
    assert persons(service.run_funnel(P, "exposure,page_view")) == [3, 2]
    assert len(compiled._kept) == 1
    assert persons(service.run_funnel(P, "exposure,page_view", window_days=0.025)) == [3, 1]  # 36 minutes
    assert len(compiled._kept) == 2  # another window: another shape
    with warehouse.connect() as con:
        con.execute("ALTER TABLE events ADD COLUMN note VARCHAR")
    assert persons(service.run_funnel(P, "exposure,page_view")) == [3, 2]
    assert len(compiled._kept) == 3  # the schema changed: compiled again


def test_the_kpi_sheet_and_retention_give_the_same_values_when_kept(rows, load):
    compiled._kept.clear()
    for person in range(1, 6):
        rows.event(person, "2026-03-01 10:00:00", "exposure")
        rows.event(person, f"2026-03-0{person + 1} 10:00:00", "join_campaign")
    rows.order(2, "2026-03-03 12:00:00", 990)
    load()
    first = (service.run_kpis(P, reward_cost_fen=0, other_cost_fen=0), service.run_retention(P, unit="day"))
    kept = len(compiled._kept)
    again = (service.run_kpis(P, reward_cost_fen=0, other_cost_fen=0), service.run_retention(P, unit="day"))
    assert len(compiled._kept) == kept
    assert again == first
    assert first[0]["participants"] == 5
    assert first[1]["cells"][0]["size"] == 5

"""The channel radar computes every channel in one grouped query; on the demo brand (six channels,
referrals, orders, people coming back) it must give what the KPI sheet gives run once per channel."""

from __future__ import annotations

import pytest

from liebian.analytics import service
from liebian.analytics.channels import CONVERSION_AXES, FISSION_AXES


@pytest.mark.parametrize("period", [(None, None), ("2026-09-01", "2026-09-30")])
def test_grouped_radar_equals_the_sheet_per_channel(demo_brand, period):
    filters = service.make_filters(*period)
    rows = service.run_channels(filters)
    assert len(rows) >= 3
    for row in rows:
        sheet = service.run_kpis(service.make_filters(*period, channels=[row["channel"]]))
        for axis in FISSION_AXES + CONVERSION_AXES:
            assert row[axis] == pytest.approx(sheet[axis]), (row["channel"], axis)
    assert any(r["retention_d7"] for r in rows) and any(r["k_factor"] for r in rows)


def test_radar_lists_an_asked_channel_without_data_as_empty(demo_brand):
    rows = service.run_channels(service.make_filters(channels=["no-such-channel"]))
    assert [r["channel"] for r in rows] == ["no-such-channel"]
    assert rows[0]["invites_sent"] == 0 and rows[0]["k_factor"] is None and rows[0]["fission_power"] == 0

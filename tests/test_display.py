"""liebian.display: numbers by type, as the issue found them wrong (561.00, -0.00, -9.992e-16, fen)."""

from __future__ import annotations

from datetime import datetime

from liebian import display


def test_counts_and_decimals_read_as_numbers_not_float_noise():
    assert display.count(561.0, "zh-CN") == "561" and display.count(56_100, "zh-CN") == "5.6万"
    assert display.count(56_100, "en") == "56,100"
    assert display.decimal(-0.0) == "0" and display.decimal(-9.992e-16, 4) == "0"
    assert display.decimal(561.0) == "561" and display.decimal(0.06706, 4) == "0.0671"
    assert display.percent(0.06706) == "6.7%"


def test_money_in_fen_is_shown_in_yuan():
    assert display.money_fen(647_950, "zh-CN") == "¥6,479.50"
    assert (
        display.money_fen(6_479_500, "zh-CN") == "¥6.48万"
        and display.money_fen(6_479_500, "en") == "¥64,795.00"
    )


def test_stored_utc_times_are_shown_in_the_display_zone_with_its_offset():
    # the default display zone is Asia/Shanghai (UTC+8)
    assert display.local_time(datetime(2026, 11, 15, 12, 0)) == "2026-11-15 20:00 UTC+8"
    assert display.local_time("2026-11-15T16:30:00") == "2026-11-16 00:30 UTC+8"
    assert display.local_time(None) == "—"

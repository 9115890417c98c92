"""Business numbers carry the day people live in (TIANBAO_TIMEZONE), like the dates printed beside them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.numbers import business_number
from messages import DEFAULT_TIMEZONE, configure


def test_a_number_made_early_morning_in_beijing_carries_the_beijing_day() -> None:
    at = datetime(2026, 12, 1, 22, 42, tzinfo=UTC)  # 2026-12-02 06:42 in Beijing
    assert business_number("PL", 2, at) == "PL202612020000002"


def test_the_number_day_follows_the_timezone_setting() -> None:
    at = datetime(2026, 12, 1, 22, 42, tzinfo=UTC)
    try:
        configure(timezone="Europe/London")
        assert business_number("CL", 7, at) == "CL202612010000007"
    finally:
        configure(timezone=DEFAULT_TIMEZONE)


def test_a_number_needs_the_rows_id() -> None:
    with pytest.raises(ValueError, match="flush"):
        business_number("AP", None)

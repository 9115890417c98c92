"""The pure parsers behind natural input: numbers with units, Chinese numerals, days and times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bot.forms.parsers import (
    MAX_PEOPLE,
    Moment,
    chinese_number,
    normalize_phrase,
    parse_moment,
    plain_number,
    whole_count,
)

TODAY = date(2026, 12, 2)
BEIJING = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("typed", "unit", "plain"),
    [
        ("20亩", "mu", "20"),
        ("20 亩", "mu", "20"),
        ("3.5亩", "mu", "3.5"),
        ("35人", "person", "35"),
        ("三十五人", "person", "35"),
        ("12头", "head", "12"),
        ("4000元", "yuan", "4000"),
        ("4,000", "yuan", "4000"),
        ("4，000元", "yuan", "4000"),
        ("¥4,000.50", "yuan", "4000.50"),
        ("四千", "yuan", "4000"),
        ("四千块钱", "yuan", "4000"),
        ("1.5万", "yuan", "15000"),
        ("两万五千元", "yuan", "25000"),
        ("２０亩", "mu", "20"),
    ],
)
def test_numbers_people_type_become_plain_numbers(typed: str, unit: str, plain: str) -> None:
    assert plain_number(typed, unit) == plain


@pytest.mark.parametrize(
    ("typed", "unit", "plain"),
    [
        ("大概5亩", "mu", "5"),
        ("5亩左右", "mu", "5"),
        ("约20亩", "mu", "20"),
        ("差不多 30 头", "head", "30"),
        ("大约 4,000元", "yuan", "4000"),
        ("about 5 mu", "mu", "5"),
    ],
)
def test_a_farmer_saying_about_gives_the_figure(typed: str, unit: str, plain: str) -> None:
    assert plain_number(typed, unit) == plain


@pytest.mark.parametrize(
    ("typed", "unit"), [("20头", "mu"), ("abc", "mu"), ("35亩", "person"), ("万", "yuan")]
)
def test_a_wrong_unit_or_no_number_is_left_for_the_validator_to_refuse(typed: str, unit: str) -> None:
    assert plain_number(typed, unit) == typed


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("十", "10"),
        ("十五", "15"),
        ("三十五", "35"),
        ("一百零八", "108"),
        ("两万五千", "25000"),
        ("一亿", "100000000"),
    ],
)
def test_chinese_numerals(typed: str, value: str) -> None:
    assert chinese_number(typed) == value


@pytest.mark.parametrize(
    ("typed", "moment"),
    [
        ("今天", Moment(TODAY)),
        ("昨天", Moment(date(2026, 12, 1))),
        ("前天", Moment(date(2026, 11, 30))),
        ("12月1日", Moment(date(2026, 12, 1))),
        ("11月30号", Moment(date(2026, 11, 30))),
        ("2026-11-20", Moment(date(2026, 11, 20))),
        ("2026年11月3日", Moment(date(2026, 11, 3))),
        ("11/30 14:00", Moment(date(2026, 11, 30), 14, 0)),
        ("昨天下午3点", Moment(date(2026, 12, 1), 15, 0)),
        ("昨天下午三点半", Moment(date(2026, 12, 1), 15, 30)),
        ("昨晚", Moment(date(2026, 12, 1), 20, 0)),
        ("明天上午", Moment(date(2026, 12, 3), 9, 0)),
        ("中午1点", Moment(TODAY, 13, 0)),
        ("凌晨2点", Moment(TODAY, 2, 0)),
        ("15:30", Moment(TODAY, 15, 30)),
        ("yesterday 3pm", Moment(date(2026, 12, 1), 15, 0)),
        ("Yesterday.", Moment(date(2026, 12, 1))),
    ],
)
def test_days_and_times_people_type(typed: str, moment: Moment) -> None:
    assert parse_moment(typed, TODAY) == moment


def test_a_time_alone_falls_on_the_day_already_chosen() -> None:
    assert parse_moment("下午3点", TODAY, default_day=date(2026, 11, 28)) == Moment(date(2026, 11, 28), 15)


def test_a_month_and_day_far_ahead_is_last_years_but_a_near_one_stays_ahead() -> None:
    january = date(2027, 1, 5)
    assert parse_moment("12月28日", january) == Moment(date(2026, 12, 28))
    assert parse_moment("12月5日", TODAY) == Moment(date(2026, 12, 5))  # the future: the step refuses it


@pytest.mark.parametrize("typed", ["李四", "2月30日", "下午25点", "明天 abc", "", "12月"])
def test_what_is_not_a_date_is_none(typed: str) -> None:
    assert parse_moment(typed, TODAY) is None


def test_a_moment_is_placed_in_the_zone_it_is_given() -> None:
    at = Moment(date(2026, 12, 1), 15, 0).at(BEIJING)
    assert at == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert Moment(TODAY).at(BEIJING) is None


def test_phrases_match_whatever_the_width_case_and_end_punctuation() -> None:
    assert normalize_phrase(" 我要报案！") == normalize_phrase("我要报案") == "我要报案"
    assert normalize_phrase("Report  a Loss.") == "report a loss"


def test_the_form_parsers_take_units_and_chinese_numerals() -> None:
    from bot.forms.claim import parse_amount, parse_count
    from bot.forms.common import parse_positive_int
    from bot.forms.engine import Form

    form = Form(flow="x", step="y")
    assert parse_positive_int("35人", form) == 35
    assert parse_count("三人", form) == 3
    assert parse_amount("4,000元", form) == "4000"
    assert parse_amount("四千", form) == "4000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("没有", 0), ("无", 0), ("0", 0), ("没有人", 0), ("none", 0), ("3人", 3), ("三个人", 3)],
)
def test_whole_count_reads_none_as_zero_where_zero_is_allowed(raw: str, expected: int) -> None:
    assert whole_count(raw, "person", low=0, high=MAX_PEOPLE) == expected


@pytest.mark.parametrize("raw", ["没有", "0", "100001", "两三个", "1.5"])
def test_whole_count_refuses_what_is_outside_its_range(raw: str) -> None:
    assert whole_count(raw, "person", low=1, high=MAX_PEOPLE) is None

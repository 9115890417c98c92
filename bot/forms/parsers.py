"""Pure parsers for what people type: numbers with units ("20亩", "35人", "4,000元", "四千"), dates and
times ("12月1日", "昨天", "明天上午", "2026-11-30 14:00"), and phrases to match. No I/O; unit tested in
tests/bot/test_parsers.py. A parser returns ``None`` when the text is not of its kind; the step that calls
it says what was expected."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal

_TRAILING = "。.!！?？~～ "


def normalize_phrase(text: str) -> str:
    """For matching typed requests: full-width folded, case-folded, spaces collapsed, end punctuation gone."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(_TRAILING)


# --- numbers ------------------------------------------------------------------------------------------

# The unit words people type after a number, per unit of the question (backend unit codes, plus money).
UNIT_WORDS: dict[str, tuple[str, ...]] = {
    "mu": ("亩", "mu"),
    "head": ("头", "只", "匹", "heads", "head"),
    "bird": ("只", "羽", "birds", "bird"),
    "m2": ("平方米", "平米", "m2", "㎡", "sqm"),
    "person": ("个人", "人", "名", "位", "people", "persons", "person"),
    "yuan": ("块钱", "元", "块", "圆", "rmb", "cny", "yuan"),
}
_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_SMALL = {"十": 10, "百": 100, "千": 1000}
_LARGE = {"万": 10_000, "亿": 100_000_000}
_GROUPED = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")
_DECIMAL = re.compile(r"\d+(\.\d+)?")


def plain_number(raw: str, unit: str) -> str:
    """ "20亩" -> "20", "4,000元" -> "4000", "四千" -> "4000", "1.5万" -> "15000", "35人" -> "35".

    The unit word must be one of the question's (``UNIT_WORDS[unit]``); text that is not a number in
    that unit comes back unchanged, so the validator that follows refuses it with its own message."""
    text = unicodedata.normalize("NFKC", raw).strip().casefold().replace("，", ",")
    text = _without_hedges(text.removeprefix("¥").removeprefix("rmb").strip())
    for word in UNIT_WORDS.get(unit, ()):
        if text.endswith(word):
            text = text[: -len(word)].strip()
            break
    text = text.replace(" ", "")
    value = _arabic(text) or chinese_number(text)
    return value if value is not None else raw


# How farmers say "about": "大概5亩", "5亩左右" mean 5 mu; the figure is what the form records.
_HEDGE_PREFIXES = ("大概", "大约", "差不多", "约", "about", "around", "approx.", "approximately", "roughly")
_HEDGE_SUFFIXES = ("左右", "上下", "多点", "多")


def _without_hedges(text: str) -> str:
    for word in _HEDGE_PREFIXES:
        if text.startswith(word):
            text = text[len(word) :].strip()
            break
    for word in _HEDGE_SUFFIXES:
        if text.endswith(word):
            return text[: -len(word)].strip()
    return text


MAX_PEOPLE = 100_000  # head counts of people (employees, injured, dead)
# "None" typed for a count that may be zero ("有多少人死亡？" "没有"): read as 0 only where 0 is allowed.
NONE_WORDS = frozenset(
    {"没有", "没", "无", "没有人", "无人", "一个也没有", "none", "no", "nobody", "no one", "zero"}
)


def whole_count(raw: str, unit: str, *, low: int, high: int) -> int | None:
    """A whole number from ``low`` to ``high`` in ``unit`` ("3", "3人", "三个人"); "没有"/"无" is 0 when
    ``low`` is 0. None when the text is not such a number, so the step can state the real range."""
    word = normalize_phrase(raw)
    if low == 0 and word in NONE_WORDS:
        return 0
    digits = plain_number(raw, unit)
    if not digits.isdigit() or not low <= int(digits) <= high:
        return None
    return int(digits)


def _arabic(text: str) -> str | None:
    """Digits with an optional thousands grouping ("4,000") or a trailing 万/千 ("1.5万")."""
    multiplier = 1
    if text[-1:] in ("万", "千"):
        multiplier = 10_000 if text[-1] == "万" else 1000
        text = text[:-1]
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    if not _DECIMAL.fullmatch(text):
        return None
    if multiplier == 1:
        return text
    return format((Decimal(text) * multiplier).normalize(), "f")


def chinese_number(text: str) -> str | None:
    """Whole numbers in Chinese numerals: "三十五", "四千", "两万五千", "一百零八". None if not one."""
    if (
        not text
        or text[0] in _LARGE
        or any(ch not in _DIGITS and ch not in _SMALL and ch not in _LARGE for ch in text)
    ):
        return None
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _SMALL:
            section += (1 if digit is None else digit) * _SMALL[ch]
            digit = None
        else:
            section += digit or 0
            total += (section or 1) * _LARGE[ch]
            section, digit = 0, None
    return str(total + section + (digit or 0))


# --- dates and times ------------------------------------------------------------------------------------

RELATIVE_DAYS: dict[str, int] = {
    "大前天": -3, "前天": -2, "昨天": -1, "昨日": -1, "昨晚": -1, "今天": 0, "今日": 0, "今晚": 0,
    "明天": 1, "明日": 1, "后天": 2,
    "day before yesterday": -2, "yesterday": -1, "today": 0, "tonight": 0, "tomorrow": 1,
}  # fmt: skip
# A part of the day without a clock time stands for this hour; with one, it says am or pm.
DAY_PARTS: dict[str, int] = {
    "凌晨": 3, "清晨": 6, "早上": 7, "早晨": 7, "上午": 9, "中午": 12, "下午": 15, "傍晚": 18,
    "晚上": 20, "夜里": 22, "半夜": 0, "晚": 20,
    "morning": 9, "noon": 12, "afternoon": 15, "evening": 19, "night": 22,
}  # fmt: skip
PAST_YEAR_AFTER = timedelta(days=60)
_PM_PARTS = frozenset({"下午", "傍晚", "晚上", "夜里", "晚", "afternoon", "evening", "night", "pm"})
_NUM = r"[\d一二两三四五六七八九十〇零]+"
_FULL_DATE = re.compile(rf"(\d{{4}})\s*[-/.年]\s*({_NUM})\s*[-/.月]\s*({_NUM})\s*[日号]?")
_MONTH_DAY = re.compile(rf"({_NUM})\s*(?:月|[-/.])\s*({_NUM})\s*[日号]?")
_CLOCK = re.compile(rf"({_NUM})\s*(?::|：|点|时)\s*(半|{_NUM})?\s*分?|(\d{{1,2}})\s*(am|pm)")


@dataclass(frozen=True)
class Moment:
    """A typed day, with the hour and minute when the text gave a time (``hour`` None: the day only)."""

    day: date
    hour: int | None = None
    minute: int = 0

    def at(self, zone: tzinfo) -> datetime | None:
        if self.hour is None:
            return None
        return datetime.combine(self.day, time(self.hour, self.minute), zone)


def parse_moment(
    raw: str, today: date, *, default_day: date | None = None, past: bool = True
) -> Moment | None:
    """ "12月1日", "2026-11-30", "昨天", "明天上午", "昨天下午3点", "15:30", "3点半" -> a ``Moment``.

    ``today`` is the date where the user lives (the caller passes it in the insurer's zone). A month and
    day without a year is this year's, or last year's when ``past`` (a loss, say) and this year's is more
    than two months ahead. A time
    without a day is on ``default_day`` (a day already chosen), else today. None if the text is neither."""
    text = " ".join(unicodedata.normalize("NFKC", raw).casefold().split()).strip(_TRAILING)
    if not text:
        return None
    day, rest = _day_of(text, today, past)
    if day is None:
        day, rest = default_day or today, text
    try:
        clock = _clock_of(rest)
    except _NotATime:
        return None
    if clock is None:  # only reachable when a day was found and nothing follows it
        return Moment(day)
    hour, minute = clock
    return Moment(day, hour, minute)


def _day_of(text: str, today: date, past: bool) -> tuple[date | None, str]:
    for word in sorted(RELATIVE_DAYS, key=len, reverse=True):
        if text.startswith(word):
            rest = text[len(word) :].strip()
            if word in ("昨晚", "今晚", "tonight"):
                rest = "晚" + rest
            return today + timedelta(days=RELATIVE_DAYS[word]), rest
    match = _FULL_DATE.match(text)
    if match:
        return _date(int(match[1]), _int(match[2]), _int(match[3])), text[match.end() :].strip()
    match = _MONTH_DAY.match(text)
    if match:
        month, day_no = _int(match[1]), _int(match[2])
        found = _date(today.year, month, day_no)
        if found is not None and past and found > today + PAST_YEAR_AFTER:
            # "12月28日" typed in January is last year's; "12月5日" typed on 2 December is a future
            # day (and refused as such), not a date a year ago.
            found = _date(today.year - 1, month, day_no)
        return found, text[match.end() :].strip()
    return None, text


class _NotATime(ValueError):
    pass


def _clock_of(text: str) -> tuple[int, int] | None:
    """(hour, minute), None when there is no time in ``text``; ``_NotATime`` when it is not a time."""
    if not text:
        return None
    part = next((p for p in sorted(DAY_PARTS, key=len, reverse=True) if text.startswith(p)), None)
    rest = text[len(part) :].strip() if part else text
    if not rest:
        return (DAY_PARTS[part], 0) if part else None
    match = _CLOCK.fullmatch(rest)
    if not match:
        raise _NotATime(text)
    if match[4]:
        typed_hour: int | None = int(match[3])
        typed_minute: int | None = 0
        pm = match[4] == "pm"
    else:
        typed_hour = _int(match[1])
        typed_minute = 30 if match[2] == "半" else (_int(match[2]) if match[2] else 0)
        pm = part in _PM_PARTS
    if typed_hour is None or typed_minute is None:
        raise _NotATime(text)
    hour, minute = typed_hour, typed_minute
    if pm and hour < 12:
        hour += 12
    if part == "中午" and hour < 6:
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise _NotATime(text)
    return hour, minute


def _int(text: str) -> int | None:
    value = text if text.isdigit() else chinese_number(text)
    return int(value) if value is not None else None


def _date(year: int, month: int | None, day: int | None) -> date | None:
    try:
        return date(year, month or 0, day or 0)
    except ValueError:
        return None

"""R-DIS-2 grades and R-DIS-3 reporting clocks as pure functions (004 art. 7, 9, 10, 19).

Money is integer fen (never float). 以上 includes the number, 以下 excludes it: "I if P ≥ 1 billion CNY",
"II if 50 million ≤ P < 1 billion". The highest grade any one measure reaches applies; below III the event
is not a graded event (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

YUAN = 100  # fen per yuan
GRADE_I, GRADE_II, GRADE_III = "I", "II", "III"
GRADES = (GRADE_I, GRADE_II, GRADE_III)  # highest first
DAILY_REPORT_GRADES = frozenset({GRADE_I, GRADE_II})  # R-DIS-3: a daily report during an I or II response


@dataclass(frozen=True)
class Limits:
    """The lowest value of each measure that reaches a grade (the limit itself included)."""

    property_fen: int
    casualty_fen: int
    deaths: int


LIMITS: dict[str, Limits] = {
    GRADE_I: Limits(property_fen=1_000_000_000 * YUAN, casualty_fen=20_000_000 * YUAN, deaths=30),
    GRADE_II: Limits(property_fen=50_000_000 * YUAN, casualty_fen=10_000_000 * YUAN, deaths=10),
    GRADE_III: Limits(property_fen=10_000_000 * YUAN, casualty_fen=5_000_000 * YUAN, deaths=5),
}


def grade_for(*, property_fen: int, casualty_fen: int, deaths: int) -> str | None:
    """R-DIS-2: the grade of expected property payout P, casualty payout C and insured deaths D (the
    highest any of them reaches), or None below grade III."""
    for grade in GRADES:
        limits = LIMITS[grade]
        if (
            property_fen >= limits.property_fen
            or casualty_fen >= limits.casualty_fen
            or deaths >= limits.deaths
        ):
            return grade
    return None


def grade_rank(grade: str | None) -> int:
    """3 for I, 2 for II, 1 for III, 0 ungraded: to say whether a change is an upgrade."""
    return len(GRADES) - GRADES.index(grade) if grade in GRADES else 0


# --- R-DIS-3 reporting clocks ---------------------------------------------------------------------------

SUPERVISOR = "supervisor"  # report to the supervisor (监管部门), every graded event: within 2 hours
PHONE = "phone"  # grade I or sensitive: by phone within 30 minutes
WRITING = "writing"  # grade I or sensitive: in writing within 1 hour
CLOCK_KINDS = (SUPERVISOR, PHONE, WRITING)


@dataclass(frozen=True)
class Clock:
    within: timedelta  # from the moment the clock starts
    remind_before: timedelta  # the responsible staff are reminded this long before the deadline


CLOCKS: dict[str, Clock] = {
    SUPERVISOR: Clock(within=timedelta(hours=2), remind_before=timedelta(minutes=30)),
    PHONE: Clock(within=timedelta(minutes=30), remind_before=timedelta(minutes=10)),
    WRITING: Clock(within=timedelta(hours=1), remind_before=timedelta(minutes=15)),
}


def clocks_due(*, grade: str | None, sensitive: bool) -> tuple[str, ...]:
    """The reporting clocks an event needs: none while ungraded and not sensitive; the supervisor report
    for every graded (or sensitive) event; phone and writing as well for grade I or a sensitive event."""
    if grade is None and not sensitive:
        return ()
    if grade == GRADE_I or sensitive:
        return (PHONE, WRITING, SUPERVISOR)
    return (SUPERVISOR,)


def due_at(kind: str, started_at: datetime) -> datetime:
    return started_at + CLOCKS[kind].within


def remind_at(kind: str, due: datetime) -> datetime:
    return due - CLOCKS[kind].remind_before

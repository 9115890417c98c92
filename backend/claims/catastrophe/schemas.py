"""R-CLM-5 disaster events as the staff API takes and shows them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from backend.ids import Id


class EventIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    cause: str = Field(max_length=40, description="a claim cause: typhoon, heavy_rain, disease, wind ...")
    started_on: date = Field(description="the day the disaster began (China time)")
    region_code: str | None = Field(
        default=None,
        pattern=r"^\d{12}$",
        description="the area it struck (R-DIS-4 green channel, R-DIS-5; inside the caller's regions)",
    )


class LinkIn(BaseModel):
    claim_ids: list[Id] = Field(min_length=1, max_length=5000)


class SplitIn(BaseModel):
    """R-CLM-5: the claims that are another disaster, taken out into a new confirmed event."""

    claim_ids: list[Id] = Field(min_length=1, max_length=5000)
    name: str | None = Field(default=None, max_length=200, description="the new event's name")


class EventOut(BaseModel):
    id: int
    name: str
    cause: str
    started_on: datetime
    ended_on: datetime | None = Field(description="the last loss of its claims")
    status: str = Field(description="candidate (grouped automatically: confirm or split) | confirmed")
    region_code: str = Field(
        description="a candidate's region (the smallest division holding its counties); for an event staff "
        "opened, the area they gave (empty if none)"
    )
    confirmed_by: int | None
    confirmed_at: datetime | None
    catastrophe: bool
    catastrophe_reasons: list[str] = Field(
        description="more_than_two_counties | crop_loss:<county> | livestock_loss:<county>"
    )
    raised_at: datetime | None
    created_at: datetime


class CountyOut(BaseModel):
    county_code: str
    claims: int
    crop_fen: int
    crop_yuan: str
    livestock_fen: int
    livestock_yuan: str
    crop_threshold_reached: bool
    livestock_threshold_reached: bool


class LinkedClaimOut(BaseModel):
    id: int
    number: str
    kind: str
    status: str
    product_code: str
    region_code: str
    county_code: str
    insured_name: str
    cause: str
    loss_started_at: datetime
    estimated_amount_fen: int


class EventDetailOut(EventOut):
    county_count: int = Field(description="counties with counted claims, all regions (the rule's count)")
    claim_count: int = Field(description="counted claims, all regions")
    counties: list[CountyOut] = Field(description="per-county totals, within the caller's regions")
    claims: list[LinkedClaimOut] = Field(description="linked claims within the caller's regions")
    reasons_now: list[str] | None = Field(default=None, description="the evaluation just made, if any")


# --- R-DIS-2 to R-DIS-5 ---------------------------------------------------------------------------------

MAX_FEN = 10**15  # ten trillion CNY: far above any payout, inside a 64-bit column


class EstimatesIn(BaseModel):
    """R-DIS-2: expected property payout P, casualty payout C (fen: integers, never float) and insured deaths D."""

    property_fen: int = Field(ge=0, le=MAX_FEN)
    casualty_fen: int = Field(ge=0, le=MAX_FEN)
    deaths: int = Field(ge=0, le=1_000_000)
    sensitive: bool | None = Field(default=None, description="very sensitive: the grade I clocks apply")
    note: str = Field(default="", max_length=1000)


class ReportIn(BaseModel):
    """R-DIS-3: the event was reported (to the supervisor / by phone / in writing)."""

    kind: Literal["supervisor", "phone", "writing"]
    note: str = Field(default="", max_length=1000)


class ReportTextIn(BaseModel):
    """R-DIS-3: the daily report's words; a field left out keeps its text."""

    situation: str | None = Field(default=None, max_length=4000)
    progress: str | None = Field(default=None, max_length=4000)
    problems: str | None = Field(default=None, max_length=4000)
    measures: str | None = Field(default=None, max_length=4000)


class GreenChannelIn(BaseModel):
    on: bool


class DeadlineOut(BaseModel):
    kind: str = Field(description="supervisor (2 h) | phone (30 min) | writing (1 h)")
    started_at: datetime
    due_at: datetime
    reminded_at: datetime | None
    escalated_at: datetime | None
    done_at: datetime | None
    done_by: int | None
    note: str


class ResponseOut(BaseModel):
    event_id: int
    region_code: str = Field(description="the event's region, or the smallest division holding its claims")
    property_fen: int
    casualty_fen: int
    deaths: int
    grade: str | None = Field(description="I | II | III; null below III (R-DIS-2)")
    graded_at: datetime | None = Field(description="the first moment it was graded: the R-DIS-3 clocks start")
    sensitive: bool
    situation: str
    progress: str
    problems: str
    measures: str
    green_channel: bool
    green_channel_changed_at: datetime | None
    deadlines: list[DeadlineOut]
    told: int | None = Field(default=None, description="people told by this change (green channel on)")


class GradeChangeOut(BaseModel):
    id: int
    old_property_fen: int
    old_casualty_fen: int
    old_deaths: int
    old_grade: str | None
    new_property_fen: int
    new_casualty_fen: int
    new_deaths: int
    new_grade: str | None
    old_sensitive: bool
    new_sensitive: bool
    note: str
    staff_id: int | None
    staff_username: str
    at: datetime


class DailyReportOut(BaseModel):
    report_date: str
    grade: str
    figures: dict[str, int]
    generated_at: datetime
    url: str


class BranchCloseIn(BaseModel):
    reason: str = Field(default="", max_length=500)
    event_id: Id | None = None


class BranchClosureOut(BaseModel):
    id: int
    region_code: str
    region_name: str = ""
    event_id: int | None
    reason: str
    closed_at: datetime
    closed_by: int | None
    reopened_at: datetime | None
    reopened_by: int | None
    told_closed: int
    told_reopened: int


class ClosedBranchOut(BaseModel):
    """R-DIS-5 for the chat: a closed branch of a region where the chat's person is insured."""

    region_code: str
    region_name: str
    closed_at: datetime

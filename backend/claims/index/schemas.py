"""R-CLM-2 weather index: the contract of the readings import, the trigger status and the payout list."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

ReadingRejectReason = Literal[
    "bad_township_code",  # not 9 or 12 digits
    "unknown_township",  # no such division, or not a township (level 4)
    "outside_scope",  # the staff member's regions do not cover the township
    "bad_peril",  # not wind, rain or cold
    "bad_value",  # not a decimal number
    "implausible_value",  # outside the plausible range of the peril's measure
    "bad_date",  # not YYYY-MM-DD
    "future_date",  # after today (China time)
    "station_too_long",
    "duplicate_in_file",  # the same township, peril and day earlier in this file
    "already_recorded",  # the same reading is already stored: ignored
    "conflicts_with_recorded",  # a different value is already stored for that township, peril and day
]


class ReadingIn(BaseModel):
    """One station reading. Everything is text so that a bad row is reported, not a bad request."""

    township_code: str = Field(max_length=40, description="12-digit (or 9-digit) township code")
    peril: str = Field(max_length=40, description="wind | rain | cold (or heavy_rain | low_temperature)")
    value: str | int = Field(description="decimal text: Beaufort level, 24 h rain in mm, or min °C")
    observed_on: str = Field(max_length=40, description="the station's day, YYYY-MM-DD (China time)")
    station: str = Field(default="", max_length=400)


class RejectedReading(BaseModel):
    line: int = Field(description="CSV line (header = 1), or position in the JSON list (first = 1)")
    township_code: str
    peril: str
    value: str
    observed_on: str
    reason: ReadingRejectReason


class ReadingReport(BaseModel):
    accepted: int = 0
    rejected: list[RejectedReading] = Field(default_factory=list)
    reading_ids: list[int] = Field(default_factory=list, description="the new readings")
    payouts: int = Field(default=0, description="payouts (and index claims) created by the new readings")
    payout_total_fen: int = 0


class ReadingOut(BaseModel):
    id: int
    value: str
    observed_on: date
    station: str


class PerilStatus(BaseModel):
    peril: str = Field(description="wind | rain | cold")
    index_peril: str = Field(description="the catalogue's name: wind | heavy_rain | low_temperature")
    unit: str = Field(description="beaufort | mm | celsius")
    compare: str = Field(description="'>=' (at or above the threshold) or '<=' (at or below)")
    first_threshold: str | None = Field(description="the level 1 trigger")
    latest: ReadingOut | None = Field(description="the latest reading in the window")
    triggered: bool
    level: int | None = Field(description="the highest level reached in the window")
    share: str | None = Field(description="that level's payout share of the sum insured")
    reached_by: ReadingOut | None = Field(description="the reading that reached that level")


class PayoutOut(BaseModel):
    claim_id: int | None
    claim_number: str | None
    claim_status: str | None
    peril: str
    level: int
    share: str
    amount_fen: int
    amount_yuan: str
    observed_on: date


class TriggerStatus(BaseModel):
    township_code: str
    township_name: str
    product_code: str
    product_name_zh: str
    product_name_en: str
    policy_id: int | None
    since: date
    until: date
    report_needed: bool = Field(default=False, description="R-CLM-2: never, for weather-index products")
    triggered: bool
    level: int | None = Field(description="the highest level reached by any peril in the window")
    perils: list[PerilStatus]
    payouts: list[PayoutOut] = Field(description="the policy's index payouts (empty without a policy)")
    paid_total_fen: int
    paid_total_yuan: str


class PayoutRow(BaseModel):
    """R-CLM-2 publication fields: insured name, subject, insured quantity, payout standard, amount."""

    insured_name: str
    product_code: str
    subject_zh: str
    subject_en: str
    quantity: str
    unit: str
    peril: str
    level: int
    share: str = Field(description="payout standard: the level's share of the sum insured")
    amount_fen: int
    amount_yuan: str
    observed_on: date


class VillagePayouts(BaseModel):
    village_code: str = Field(
        description="the village, or the township for fields recorded at township level"
    )
    village_name: str
    rows: list[PayoutRow]
    total_fen: int
    total_yuan: str


class PayoutList(BaseModel):
    region_code: str
    region_name: str
    villages: list[VillagePayouts]
    count: int
    total_fen: int
    total_yuan: str

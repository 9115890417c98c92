"""R-CLM-5 disaster events as the staff API takes and shows them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from backend.ids import Id


class EventIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    cause: str = Field(max_length=40, description="a claim cause: typhoon, heavy_rain, disease, wind ...")
    started_on: date = Field(description="the day the disaster began (China time)")


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
        description="a candidate's region (the smallest division holding its counties); empty for events staff opened"
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

"""The API contract for QR campaigns (R-LIA-3) and for the bot's scans."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from backend.ids import Id


class CampaignCreate(BaseModel):
    product_code: str = Field(min_length=1, max_length=40)
    agent_id: Id | None = None
    region_code: str | None = Field(default=None, pattern=r"^\d{12}$")
    title: str = Field(default="", max_length=100)
    expires_at: AwareDatetime | None = None


class CampaignOut(BaseModel):
    id: int
    product_code: str
    agent_id: int | None
    region_code: str | None
    title: str
    expires_at: datetime | None
    active: bool
    created_by: int | None
    created_at: datetime
    payload: str
    telegram_link: str
    webchat_link: str


class ScanOut(BaseModel):
    id: int
    identity_id: int
    agent_id: int | None
    scanned_at: datetime


class ScansOut(BaseModel):
    campaign_id: int
    count: int
    last: list[ScanOut]


class ScanIn(BaseModel):
    """Sent by the bot when ``/start <payload>`` arrives; the payload is checked by the service, so an
    over-long or odd one is answered ``malformed`` like any other bad code."""

    payload: str = Field(max_length=512)


class ScanResultOut(BaseModel):
    campaign_id: int
    product_code: str
    region_code: str | None
    agent_id: int | None

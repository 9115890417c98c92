"""What the delivery worker reports about texts: the provider's receipts and its unsubscribe reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SmsTemplateRef(BaseModel):
    """An outbox SMS as the provider takes it: an approved template and its values, in order."""

    key: str
    locale: str
    params: list[str]


class ReceiptIn(BaseModel):
    """One delivery receipt (回执): the provider's serial id of the text, delivered or not, and why."""

    external_message_id: str = Field(min_length=1, max_length=64)
    delivered: bool
    reason: str | None = Field(default=None, max_length=200)
    at: datetime | None = None


class ReceiptsIn(BaseModel):
    receipts: list[ReceiptIn] = Field(max_length=5000)


class ReceiptsOut(BaseModel):
    updated: int


class StopIn(BaseModel):
    """A number that asked for no more bulk texts ("回复TD退订", or the provider's unsubscribe report)."""

    phone: str = Field(min_length=5, max_length=20)
    source: str = Field(default="reply", max_length=32)


class StopOut(BaseModel):
    phone: str
    stopped_queued: int


class LinkIn(BaseModel):
    token: str = Field(min_length=1, max_length=64)


class LinkOut(BaseModel):
    """``ok`` (``target``: ``claim:12``), ``other_person`` (``phone_masked``: whose it is), ``expired``,
    ``unknown``."""

    status: Literal["ok", "other_person", "expired", "unknown"]
    target: str | None = None
    phone_masked: str | None = None

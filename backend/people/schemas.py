"""The contract between the bot and the backend for chat identities."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class IdentityOpen(BaseModel):
    """Sent by the bot when a user starts (or comes back): creates or refreshes the identity."""

    channel: str = Field(pattern=r"^(telegram|webchat)$")
    external_id: str = Field(min_length=1, max_length=64)
    address: str = Field(min_length=1, max_length=64)
    first_name: str | None = Field(default=None, max_length=100)
    language_code: str | None = Field(default=None, max_length=16)


class IdentityOut(BaseModel):
    id: int
    channel: str
    external_id: str
    locale: str
    first_name: str | None
    phone_masked: str | None
    phone_verified: bool
    person_id: int | None
    menu: list[str]


class DeviceOut(BaseModel):
    """One chat identity of the person ("my devices"): the id masked, ``this`` the asking chat."""

    id: int
    channel: str
    masked_id: str
    last_seen_at: datetime
    this: bool


class DeviceEndedOut(BaseModel):
    """The person's devices after one was ended, and the ended chat's address for the bot, which erases
    a web chat's transcript (the service-token API only; never shown to a user)."""

    devices: list[DeviceOut]
    ended_channel: str
    ended_external_id: str


class PhoneIn(BaseModel):
    phone_number: str = Field(min_length=3, max_length=32)


class LocaleIn(BaseModel):
    locale: str = Field(pattern=r"^(zh-CN|en)$")


class ProblemDetail(BaseModel):
    """A refusal the bot can explain in the user's language: ``code`` names a message template."""

    code: str
    message: str

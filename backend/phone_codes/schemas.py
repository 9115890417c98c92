"""The contract between the bot and the backend for phone verification by SMS code."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CodeRequestIn(BaseModel):
    """The number to text a code to; none: the chat's bound number."""

    phone_number: str | None = Field(default=None, min_length=3, max_length=32)


class CodeSentOut(BaseModel):
    phone_masked: str
    valid_minutes: int


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=16)

"""Staff API contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from backend.staff.models import Role


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def _twelve_digits(codes: list[str] | None) -> list[str] | None:
    for code in codes or []:
        if len(code) != 12 or not code.isdigit():
            raise ValueError(f"region code {code!r} must be 12 digits")
    return codes


# The password rule (length, common passwords, the username) is the service's, refused with a code and
# a text in the caller's language; the schema only bounds the size of what it reads.
class StaffCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(max_length=128)
    full_name: str = Field(default="", max_length=100)
    role: Role
    region_codes: list[str] = Field(default_factory=list)
    # The whole country: an explicit choice, never what an empty list of regions falls back to.
    national: bool = False
    phone: str | None = None

    _codes = field_validator("region_codes")(_twelve_digits)


class StaffUpdate(BaseModel):
    full_name: str | None = None
    role: Role | None = None
    region_codes: list[str] | None = None
    national: bool | None = None
    active: bool | None = None
    password: str | None = Field(default=None, max_length=128)

    _codes = field_validator("region_codes")(_twelve_digits)


class StaffOut(BaseModel):
    id: int
    username: str
    full_name: str
    role: str
    region_codes: list[str]
    phone_masked: str | None
    active: bool
    locked: bool = False
    created_at: datetime


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]
    ip: str | None

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


class StaffCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=10, max_length=128)
    full_name: str = Field(default="", max_length=100)
    role: Role
    region_codes: list[str] = Field(default_factory=list)
    phone: str | None = None

    @field_validator("region_codes")
    @classmethod
    def _twelve_digits(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if len(code) != 12 or not code.isdigit():
                raise ValueError(f"region code {code!r} must be 12 digits")
        return codes


class StaffUpdate(BaseModel):
    full_name: str | None = None
    role: Role | None = None
    region_codes: list[str] | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=128)


class StaffOut(BaseModel):
    id: int
    username: str
    full_name: str
    role: str
    region_codes: list[str]
    phone_masked: str | None
    active: bool
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

"""Staff accounts, roles, region scopes and the audit log of every staff write."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class Role(StrEnum):
    ADMIN = "admin"
    UNDERWRITER = "underwriter"
    ADJUSTER = "adjuster"
    AGENT = "agent"
    VIEWER = "viewer"


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    password_hash: str = Field(max_length=255)
    full_name: str = Field(default="", max_length=100)
    role: str = Field(default=Role.VIEWER.value, max_length=20)
    # 12-digit division codes this user may act in; empty means the whole country, given only when an
    # admin chooses it explicitly (``national: true``).
    region_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    phone: str | None = Field(default=None, max_length=20)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # Every token carries the version it was issued under (``ver``); a change of password, role or
    # regions, or disabling, bumps it, so tokens issued before the change stop working at once.
    token_version: int = Field(default=0)
    # Sign-in lockout, kept here so a restart of the embedded default forgets none of it: consecutive
    # failed sign-ins, and the moment a lock (after too many of them) ends.
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = Field(default=None)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(default="", max_length=40)
    target_id: str = Field(default="", max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ip: str | None = Field(default=None, max_length=64)

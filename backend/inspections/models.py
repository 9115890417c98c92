"""R-LIA-5: hazard inspections of insured enterprises by a professional team."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from backend.db import utcnow


class InspectionStatus(StrEnum):
    DUE = "due"
    DONE = "done"


class Inspection(SQLModel, table=True):
    __tablename__ = "inspection"

    id: int | None = Field(default=None, primary_key=True)
    policy_id: int = Field(foreign_key="policy.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    region_code: str = Field(max_length=12, index=True)
    due_at: datetime
    status: str = Field(default=InspectionStatus.DUE.value, max_length=20)
    created_at: datetime = Field(default_factory=utcnow)

"""R-LIA-5: hazard inspections of insured enterprises by a professional team.

An ``inspection`` is created at the issuance of every liability policy (``enrollment/issuance.py``), due
``FIRST_INSPECTION_DUE`` after it. Its steps are timestamps the scheduler acts on: the appointment
proposed to the enterprise in chat and confirmed (or a new day asked for), reminders before the day, the
hazards recorded on site (``inspection_hazard``, each with a rectification deadline, reminded before it and
escalated to staff after it), the report (a PDF sent to the enterprise) and the feedback to the safety
authority (an HTTP POST retried until accepted).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from backend.db import utcnow
from backend.enrollment.inspection_models import AuthorityStatus, Inspection, InspectionStatus

__all__ = [
    "AuthorityStatus",
    "HazardSeverity",
    "HazardStatus",
    "Inspection",
    "InspectionHazard",
    "InspectionStatus",
]


class HazardSeverity(StrEnum):
    GENERAL = "general"  # 一般隐患
    SERIOUS = "serious"  # 较大隐患
    MAJOR = "major"  # 重大隐患


class HazardStatus(StrEnum):
    OPEN = "open"
    FIXED = "fixed"  # the enterprise sent a photo of the rectification


class InspectionHazard(SQLModel, table=True):
    __tablename__ = "inspection_hazard"

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int = Field(foreign_key="inspection.id", index=True)
    region_code: str = Field(max_length=12, index=True)  # the inspection's, for scoped queries
    description: str = Field(max_length=1000)
    severity: str = Field(max_length=20)
    advice: str = Field(default="", max_length=1000)  # rectification advice for the report
    photo_document_id: int | None = Field(default=None, foreign_key="document.id")
    rectify_by: datetime = Field(index=True)
    status: str = Field(default=HazardStatus.OPEN.value, max_length=20, index=True)
    recorded_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    reminded_at: datetime | None = None  # the reminder before the deadline, once
    escalated_at: datetime | None = None  # overdue and not fixed: insurer staff alerted, once
    fixed_at: datetime | None = None
    fixed_photo_document_id: int | None = Field(default=None, foreign_key="document.id")
    fixed_note: str | None = Field(default=None, max_length=500)
    fixed_by_identity_id: int | None = Field(default=None, foreign_key="chat_identity.id")

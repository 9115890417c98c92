"""The inspection row of R-LIA-5, which issuance creates for every liability policy.

The table belongs to the inspections domain (``backend/inspections/``, which re-exports it from its
``models``) but is defined here, below both: issuance must create the row in the policy's own transaction,
and the inspections domain reads policies and documents, so a definition in ``backend/inspections`` would
make enrollment and inspections import each other (the acyclic-siblings contract forbids it).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class InspectionStatus(StrEnum):
    DUE = "due"  # created at issuance; no appointment yet
    PROPOSED = "proposed"  # an appointment was proposed to the enterprise in chat
    RESCHEDULE = (
        "reschedule"  # the enterprise asked for another day (reason, proposed day): staff propose again
    )
    CONFIRMED = "confirmed"  # the enterprise confirmed the appointment
    DONE = "done"  # completed: the report went to the enterprise, the summary to the authority


class AuthorityStatus(StrEnum):
    NONE = ""  # not completed yet
    PENDING = "pending"  # to be sent (again) at ``authority_next_at``
    ACCEPTED = "accepted"  # the authority answered 2xx
    UNCONFIGURED = "unconfigured"  # no TIANBAO_SAFETY_AUTHORITY_URL: kept until one is set


class Inspection(SQLModel, table=True):
    __tablename__ = "inspection"

    id: int | None = Field(default=None, primary_key=True)
    policy_id: int = Field(foreign_key="policy.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    region_code: str = Field(max_length=12, index=True)
    due_at: datetime
    status: str = Field(default=InspectionStatus.DUE.value, max_length=20)
    created_at: datetime = Field(default_factory=utcnow)
    # Who inspects: a staff member of an inspecting role in the region, or a named professional team.
    inspector_staff_id: int | None = Field(default=None, foreign_key="staff_user.id")
    inspector_team: str | None = Field(default=None, max_length=100)
    # The appointment: proposed by staff, confirmed (or another day asked for) by the enterprise in chat.
    appointment_at: datetime | None = Field(default=None, index=True)
    appointment_round: int = 0  # each proposal is a round; buttons of an older round record nothing
    proposed_at: datetime | None = None
    confirmed_at: datetime | None = None
    reschedule_reason: str | None = Field(default=None, max_length=500)
    reschedule_day: str | None = Field(default=None, max_length=10)  # YYYY-MM-DD the enterprise proposed
    # Reminders before the day, once per round (the round's number is stored when sent).
    enterprise_reminded_round: int = 0
    inspector_reminded_round: int = 0
    overdue_alerted_at: datetime | None = None  # not done by ``due_at``: staff told once
    # The report
    completed_at: datetime | None = None
    completed_by: int | None = Field(default=None, foreign_key="staff_user.id")
    summary: str | None = Field(default=None, max_length=2000)
    report_document_id: int | None = Field(default=None, foreign_key="document.id")
    report_channel: str = Field(default="", max_length=10)  # chat | sms | none
    # Feedback to the safety authority (R-LIA-5): retried by the job until accepted.
    authority_status: str = Field(default=AuthorityStatus.NONE.value, max_length=20, index=True)
    authority_attempts: int = 0
    authority_next_at: datetime | None = None
    authority_accepted_at: datetime | None = None
    authority_reference: str | None = Field(default=None, max_length=100)
    authority_last_error: str | None = Field(default=None, max_length=300)
    # What the authority is sent beside the PDF, fixed when the report is made (a retry days later sends
    # the report as it was, not the hazards as they are by then).
    authority_summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)
    history: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

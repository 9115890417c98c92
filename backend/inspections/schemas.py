"""The inspections contract: staff requests and answers, the bot's view of its own inspections, and the
button strings the notices carry (``insp:<verb>:<id>:<round>``, shared with ``bot/routers/inspection.py``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from backend.ids import Id

PREFIX = "insp"
CONFIRM = "ok"  # the enterprise confirms the appointment of the round on the button
RESCHEDULE = "re"  # the enterprise asks for another day
FIX = "fix"  # the enterprise marks a hazard fixed (the id is the hazard's)
VIEW = "view"


def pack(verb: str, target_id: int, round_: int = 0) -> str:
    """The callback data of a notice's button (at most 64 bytes: ``insp:fix:2147483647:0`` is 21)."""
    return f"{PREFIX}:{verb}:{target_id}:{round_}"


# --- staff ----------------------------------------------------------------------------------------------


class InspectionIn(BaseModel):
    """Another inspection of a liability policy (the first is made at issuance)."""

    policy_id: Id
    due_at: AwareDatetime = Field(description="when it is due (after now)")


class InspectorIn(BaseModel):
    """Who inspects: one staff member of an inspecting role in the region, or a professional team's name."""

    staff_user_id: Id | None = None
    team_name: str | None = Field(default=None, min_length=2, max_length=100)
    due_at: AwareDatetime | None = Field(default=None, description="a new due date (default: unchanged)")


class AppointmentIn(BaseModel):
    at: AwareDatetime = Field(description="the visit's time; proposed to the enterprise in chat (or by text)")


class CompleteIn(BaseModel):
    summary: str = Field(min_length=1, max_length=2000, description="the inspection's conclusion")


class HazardOut(BaseModel):
    id: int
    description: str
    severity: str
    advice: str
    photo_document_id: int | None
    rectify_by: datetime
    status: str
    overdue: bool
    reminded_at: datetime | None
    escalated_at: datetime | None
    fixed_at: datetime | None
    fixed_photo_document_id: int | None
    fixed_note: str | None


class InspectionOut(BaseModel):
    id: int
    policy_id: int
    policy_number: str
    enterprise_id: int
    enterprise_name: str
    enterprise_phone: str  # masked for the roles that may not see it whole
    region_code: str
    due_at: datetime
    status: str
    inspector_staff_id: int | None
    inspector_name: str | None
    inspector_team: str | None
    appointment_at: datetime | None
    appointment_round: int
    proposed_at: datetime | None
    confirmed_at: datetime | None
    reschedule_reason: str | None
    reschedule_day: str | None
    completed_at: datetime | None
    summary: str | None
    report_document_id: int | None
    report_channel: str
    authority_status: str
    authority_attempts: int
    authority_accepted_at: datetime | None
    authority_reference: str | None
    authority_last_error: str | None
    hazards: list[HazardOut]
    # every step with its time: proposals, confirmations, reschedule requests, hazards, authority attempts
    history: list[dict[str, Any]]


# --- the bot ----------------------------------------------------------------------------------------------


class RescheduleIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500)
    proposed_day: date = Field(
        description="the day the enterprise proposes instead (local date, after today)"
    )


class ConfirmIn(BaseModel):
    round: int = Field(ge=0, le=10_000, description="the appointment round on the tapped button")


class FixedIn(BaseModel):
    photo_document_id: Id = Field(description="the photo of the fixed hazard, uploaded to /media first")
    note: str | None = Field(default=None, max_length=500)


class MediaOut(BaseModel):
    id: int


class MyHazardOut(BaseModel):
    id: int
    description: str
    severity: str
    advice: str
    rectify_by: datetime
    status: str
    fixed_at: datetime | None


class MyInspectionOut(BaseModel):
    id: int
    policy_number: str
    enterprise_name: str
    status: str
    due_at: datetime
    inspector: str | None  # the inspector's name or the team's
    appointment_at: datetime | None
    appointment_round: int
    reschedule_day: str | None
    completed_at: datetime | None
    report_document_id: int | None
    hazards: list[MyHazardOut]
    recorded: bool = True  # False: the tap changed nothing (an older appointment's button, a second tap)

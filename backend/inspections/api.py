"""Safety inspection routes (R-LIA-5): staff (``/api/inspections``, their regions only; reads for every
role, writes for the inspecting roles, audited) and the bot (``/api/bot/inspections``, acting for one chat
identity: only the inspections of its own enterprise). Errors are ``{"detail": {"code", "message",
"detail"}}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from pydantic import AwareDatetime
from sqlmodel import SQLModel, col, select

from backend.db import utcnow
from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep
from backend.enrollment.models import Policy
from backend.ids import Id
from backend.inspections import service
from backend.inspections.models import Inspection, InspectionHazard
from backend.inspections.schemas import (
    AppointmentIn,
    CompleteIn,
    ConfirmIn,
    FixedIn,
    HazardOut,
    InspectionIn,
    InspectionOut,
    InspectorIn,
    MediaOut,
    MyHazardOut,
    MyInspectionOut,
    RescheduleIn,
)
from backend.people.disclosure import Personal, shown
from backend.people.models import Enterprise
from backend.staff.api import client_ip
from backend.staff.models import StaffUser

Row = TypeVar("Row", bound=SQLModel)
router = APIRouter(prefix="/api/inspections", tags=["inspections"])
bot_router = APIRouter(prefix="/api/bot/inspections", tags=["bot: inspections"])

MAX_PHOTO_BYTES = 10 * 1024 * 1024
Status = Literal["due", "proposed", "reschedule", "confirmed", "done"]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


async def _upload(file: UploadFile) -> service.Upload:
    data = await file.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, detail={"code": "file_too_large", "message": ""}
        )
    return service.Upload(data=data, filename=file.filename or "photo")


# --- answers ------------------------------------------------------------------------------------------


def _hazard_out(h: InspectionHazard) -> HazardOut:
    return HazardOut(
        id=h.id or 0,
        description=h.description,
        severity=h.severity,
        advice=h.advice,
        photo_document_id=h.photo_document_id,
        rectify_by=h.rectify_by,
        status=h.status,
        overdue=h.status == "open" and h.rectify_by <= utcnow(),
        reminded_at=h.reminded_at,
        escalated_at=h.escalated_at,
        fixed_at=h.fixed_at,
        fixed_photo_document_id=h.fixed_photo_document_id,
        fixed_note=h.fixed_note,
    )


async def _staff_out(session: SessionDep, rows: Sequence[Inspection], role: str) -> list[InspectionOut]:
    """Each related table read once for the whole list."""
    ids = [i.id or 0 for i in rows]
    policies = await _by_id(session, Policy, {i.policy_id for i in rows})
    enterprises = await _by_id(session, Enterprise, {i.enterprise_id for i in rows})
    staff = await _by_id(session, StaffUser, {i.inspector_staff_id for i in rows if i.inspector_staff_id})
    hazards = await service.hazards_of(session, ids)
    out = []
    for i in rows:
        policy, enterprise = policies.get(i.policy_id), enterprises.get(i.enterprise_id)
        inspector = staff.get(i.inspector_staff_id or 0)
        out.append(
            InspectionOut(
                **i.model_dump(
                    include={
                        "region_code",
                        "due_at",
                        "status",
                        "inspector_staff_id",
                        "inspector_team",
                        "appointment_at",
                        "appointment_round",
                        "proposed_at",
                        "confirmed_at",
                        "reschedule_reason",
                        "reschedule_day",
                        "completed_at",
                        "summary",
                        "report_document_id",
                        "report_channel",
                        "authority_status",
                        "authority_attempts",
                        "authority_accepted_at",
                        "authority_reference",
                        "authority_last_error",
                        "history",
                    }
                ),
                id=i.id or 0,
                policy_id=i.policy_id,
                policy_number=policy.number if policy else "",
                enterprise_id=i.enterprise_id,
                enterprise_name=policy.insured_name if policy else (enterprise.name if enterprise else ""),
                enterprise_phone=shown(Personal.PHONE, enterprise.phone if enterprise else None, role),
                inspector_name=(inspector.full_name or inspector.username) if inspector else None,
                hazards=[_hazard_out(h) for h in hazards.get(i.id or 0, [])],
            )
        )
    return out


async def _by_id(session: SessionDep, model: type[Row], ids: set[int]) -> dict[int, Row]:
    if not ids:
        return {}
    key = col(model.id)  # type: ignore[attr-defined]
    rows = (await session.exec(select(model).where(key.in_(sorted(ids))))).all()
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


async def _my_out(
    session: SessionDep, inspection: Inspection, policy: Policy, recorded: bool = True
) -> MyInspectionOut:
    hazards = (await service.hazards_of(session, [inspection.id or 0]))[inspection.id or 0]
    return MyInspectionOut(
        id=inspection.id or 0,
        policy_number=policy.number,
        enterprise_name=policy.insured_name,
        status=inspection.status,
        due_at=inspection.due_at,
        inspector=await service.inspector_name(session, inspection),
        appointment_at=inspection.appointment_at,
        appointment_round=inspection.appointment_round,
        reschedule_day=inspection.reschedule_day,
        completed_at=inspection.completed_at,
        report_document_id=inspection.report_document_id,
        hazards=[
            MyHazardOut(
                id=h.id or 0,
                description=h.description,
                severity=h.severity,
                advice=h.advice,
                rectify_by=h.rectify_by,
                status=h.status,
                fixed_at=h.fixed_at,
            )
            for h in hazards
        ],
        recorded=recorded,
    )


# --- staff --------------------------------------------------------------------------------------------


@router.get("", response_model=list[InspectionOut])
async def list_inspections(
    staff: StaffDep,
    session: SessionDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[InspectionOut]:
    """The caller's regions, the earliest due first; ``status=reschedule`` is the queue of enterprises
    that asked for another day (reason and day on each)."""
    rows = await service.list_inspections(session, staff, status=status_, limit=limit, offset=offset)
    return await _staff_out(session, rows, staff.role)


@router.post("", response_model=InspectionOut, status_code=status.HTTP_201_CREATED)
async def add_inspection(
    body: InspectionIn, staff: StaffDep, session: SessionDep, request: Request
) -> InspectionOut:
    """A further inspection of a liability policy of the caller's regions (a follow-up, say)."""
    inspection = await service.add_inspection(
        session, staff, policy_id=body.policy_id, due_at=body.due_at, ip=client_ip(request)
    )
    return (await _staff_out(session, [inspection], staff.role))[0]


@router.get("/{inspection_id}", response_model=InspectionOut)
async def get_inspection(inspection_id: Id, staff: StaffDep, session: SessionDep) -> InspectionOut:
    inspection = await service.scoped(session, staff, inspection_id, lock=False)
    return (await _staff_out(session, [inspection], staff.role))[0]


@router.post("/{inspection_id}/inspector", response_model=InspectionOut)
async def assign_inspector(
    inspection_id: Id, body: InspectorIn, staff: StaffDep, session: SessionDep, request: Request
) -> InspectionOut:
    """A staff member of an inspecting role (underwriter, adjuster) whose region covers the enterprise,
    or a professional team's name; optionally a new due date."""
    inspection = await service.assign_inspector(
        session,
        staff,
        inspection_id,
        staff_user_id=body.staff_user_id,
        team_name=body.team_name,
        due_at=body.due_at,
        ip=client_ip(request),
    )
    return (await _staff_out(session, [inspection], staff.role))[0]


@router.post("/{inspection_id}/appointment", response_model=InspectionOut)
async def propose_appointment(
    inspection_id: Id,
    body: AppointmentIn,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> InspectionOut:
    """Proposed to the enterprise in chat (confirm / another day), or by text with a link."""
    inspection = await service.propose_appointment(
        session, settings, staff, inspection_id, at=body.at, ip=client_ip(request)
    )
    return (await _staff_out(session, [inspection], staff.role))[0]


@router.post("/{inspection_id}/hazards", response_model=InspectionOut, status_code=status.HTTP_201_CREATED)
async def record_hazard(
    inspection_id: Id,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    description: Annotated[str, Form(min_length=1, max_length=1000, description="what was found")],
    severity: Annotated[str, Form(max_length=20, description="general | serious | major")],
    rectify_by: Annotated[
        AwareDatetime, Form(description="the rectification deadline (after now, with its offset)")
    ],
    advice: Annotated[str, Form(max_length=1000, description="rectification advice")] = "",
    file: Annotated[UploadFile | None, File(description="a photo of the hazard")] = None,
) -> InspectionOut:
    """One hazard of the on-site record; the photo is decoded whole before it is kept."""
    hazard = await service.record_hazard(
        session,
        settings,
        staff,
        inspection_id,
        description=description,
        severity=severity.strip(),
        advice=advice,
        rectify_by=rectify_by,
        photo=await _upload(file) if file is not None else None,
        ip=client_ip(request),
    )
    inspection = await service.scoped(session, staff, hazard.inspection_id, lock=False)
    return (await _staff_out(session, [inspection], staff.role))[0]


@router.post("/{inspection_id}/complete", response_model=InspectionOut)
async def complete(
    inspection_id: Id,
    body: CompleteIn,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> InspectionOut:
    """The report (PDF) goes to the enterprise in chat; its summary to the safety authority (by the job)."""
    inspection = await service.complete(
        session, settings, staff, inspection_id, summary=body.summary, ip=client_ip(request)
    )
    return (await _staff_out(session, [inspection], staff.role))[0]


# --- the bot --------------------------------------------------------------------------------------------


@bot_router.get("", response_model=list[MyInspectionOut])
async def my_inspections(principal: BotDep, session: SessionDep) -> list[MyInspectionOut]:
    return [await _my_out(session, i, p) for i, p in await service.inspections_for(session, principal)]


@bot_router.post("/media", response_model=MediaOut, status_code=status.HTTP_201_CREATED)
async def fix_photo(
    principal: BotDep,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="a photo of a fixed hazard")],
) -> MediaOut:
    return MediaOut(id=await service.store_photo(session, principal, await _upload(file), settings=settings))


@bot_router.get("/{inspection_id}", response_model=MyInspectionOut)
async def my_inspection(inspection_id: Id, principal: BotDep, session: SessionDep) -> MyInspectionOut:
    inspection, policy = await service.inspection_for(session, principal, inspection_id)
    return await _my_out(session, inspection, policy)


@bot_router.post("/{inspection_id}/confirm", response_model=MyInspectionOut)
async def confirm(
    inspection_id: Id, body: ConfirmIn, principal: BotDep, session: SessionDep
) -> MyInspectionOut:
    inspection, policy, recorded = await service.confirm(session, principal, inspection_id, body.round)
    return await _my_out(session, inspection, policy, recorded)


@bot_router.post("/{inspection_id}/reschedule", response_model=MyInspectionOut)
async def reschedule(
    inspection_id: Id, body: RescheduleIn, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> MyInspectionOut:
    inspection, policy = await service.request_reschedule(
        session, settings, principal, inspection_id, reason=body.reason, proposed_day=body.proposed_day
    )
    return await _my_out(session, inspection, policy)


@bot_router.post("/hazards/{hazard_id}/fixed", response_model=MyInspectionOut)
async def mark_fixed(
    hazard_id: Id, body: FixedIn, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> MyInspectionOut:
    hazard, recorded = await service.mark_fixed(
        session, settings, principal, hazard_id, photo_document_id=body.photo_document_id, note=body.note
    )
    inspection, policy = await service.inspection_for(session, principal, hazard.inspection_id)
    return await _my_out(session, inspection, policy, recorded)

"""Safety inspections (R-LIA-5): who inspects, the appointment agreed with the enterprise in chat, the
hazards recorded on site, the report to the enterprise and the feedback to the safety authority, and what
the enterprise does with the report (marks hazards fixed with a photo). Time (reminders, escalations, the
authority's retries) is ``jobs.py``; the PDF is ``render.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.db import utcnow
from backend.enrollment.documents import store_document
from backend.enrollment.models import Document, Policy
from backend.images import checked_image
from backend.inspections import render as report_render
from backend.inspections.models import (
    AuthorityStatus,
    HazardSeverity,
    HazardStatus,
    Inspection,
    InspectionHazard,
    InspectionStatus,
)
from backend.inspections.schemas import CONFIRM, FIX, PREFIX, RESCHEDULE, pack
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_for_identity
from backend.outbox.sms.service import notify_person
from backend.people.models import ChatIdentity, Enterprise
from backend.refusals import Refusal
from backend.security import BotPrincipal, StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.models import Role, StaffUser
from backend.staff.service import record_audit
from messages import label, local_date, local_time, normalize_locale, render

# Who inspects and records: the insurer's risk staff (underwriting) and its adjusters; admin always.
INSPECT_ROLES = (Role.UNDERWRITER.value, Role.ADJUSTER.value)
SEVERITIES = tuple(s.value for s in HazardSeverity)
REPORT_KIND = "inspection_report"
PHOTO_KIND = "inspection_photo"
FIX_PHOTO_KIND = "inspection_fix_photo"
MAX_BUTTONS = 10  # hazards with a "fixed" button on the report's message; the rest from the detail view
# Staff alert kinds (``GET /api/alerts?kind=...``)
ALERT_RESCHEDULE = "inspection_reschedule"
ALERT_REMINDER = "inspection_reminder"
ALERT_OVERDUE = "inspection_overdue"
ALERT_HAZARD = "hazard_overdue"


class InspectionError(Refusal):
    """``not_found`` (also another enterprise's, or outside the caller's regions), ``forbidden``,
    ``inspection_*`` and ``hazard_*`` codes (texts in ``messages/*/errors`` and ``enroll_errors``)."""


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str


# --- access --------------------------------------------------------------------------------------------


def require_role(actor: StaffPrincipal, roles: Sequence[str]) -> None:
    if actor.role != Role.ADMIN.value and actor.role not in roles:
        raise InspectionError("forbidden", role=actor.role)


def in_scope(query: Any, actor: StaffPrincipal, column: Any = None) -> Any:
    if actor.is_national:
        return query
    target = column if column is not None else col(Inspection.region_code)
    return query.where(or_(*(target.startswith(significant_prefix(c)) for c in actor.region_codes)))


async def scoped(
    session: AsyncSession, actor: StaffPrincipal, inspection_id: int, *, lock: bool = True
) -> Inspection:
    """The inspection (under a row lock, for a write) if it lies in the actor's regions (else it does
    not exist)."""
    inspection = await session.get(Inspection, inspection_id, with_for_update=lock, populate_existing=lock)
    if inspection is None or not actor.covers_region(inspection.region_code):
        raise InspectionError("not_found")
    return inspection


async def inspection_for(
    session: AsyncSession, principal: BotPrincipal, inspection_id: int, *, lock: bool = False
) -> tuple[Inspection, Policy]:
    """The chat's own inspection: of a policy this chat enrolled, or its verified person holds. Another
    enterprise's does not exist for it."""
    inspection = await session.get(Inspection, inspection_id, with_for_update=lock, populate_existing=lock)
    policy = await session.get(Policy, inspection.policy_id) if inspection is not None else None
    if inspection is None or policy is None or not principal.sees(policy.identity_id, policy.person_id):
        raise InspectionError("not_found")
    return inspection, policy


async def inspections_for(session: AsyncSession, principal: BotPrincipal) -> list[tuple[Inspection, Policy]]:
    mine = [col(Policy.identity_id) == principal.identity_id]
    if principal.person_view is not None:
        mine.append(col(Policy.person_id) == principal.person_view)
    query = (
        select(Inspection, Policy)
        .join(Policy, col(Policy.id) == col(Inspection.policy_id))
        .where(or_(*mine))
        .order_by(col(Inspection.id).desc())
        .limit(20)
    )
    return [(i, p) for i, p in (await session.exec(query)).all()]


async def hazards_of(
    session: AsyncSession, inspection_ids: Sequence[int]
) -> dict[int, list[InspectionHazard]]:
    found: dict[int, list[InspectionHazard]] = {i: [] for i in inspection_ids}
    if not inspection_ids:
        return found
    query = (
        select(InspectionHazard)
        .where(col(InspectionHazard.inspection_id).in_(list(inspection_ids)))
        .order_by(col(InspectionHazard.id))
    )
    for hazard in (await session.exec(query)).all():
        found[hazard.inspection_id].append(hazard)
    return found


def note(inspection: Inspection, now: datetime, step: str, **data: Any) -> None:
    inspection.history = [*inspection.history, {"at": now.isoformat(), "step": step, **data}]
    inspection.updated_at = now


def _audit(
    session: AsyncSession,
    actor: StaffPrincipal,
    action: str,
    inspection: Inspection,
    ip: str | None,
    **detail: Any,
) -> None:
    record_audit(
        session=session,
        actor=actor,
        action=action,
        target_type="inspection",
        target_id=inspection.id or "",
        detail={"policy_id": inspection.policy_id, **detail},
        ip=ip,
    )


def _open_for_changes(inspection: Inspection) -> None:
    if inspection.status == InspectionStatus.DONE.value:
        raise InspectionError("inspection_done")


# --- staff: list, inspector, appointment -------------------------------------------------------------


async def list_inspections(
    session: AsyncSession, actor: StaffPrincipal, *, status: str | None, limit: int, offset: int
) -> list[Inspection]:
    query = in_scope(select(Inspection), actor)
    if status:
        query = query.where(col(Inspection.status) == status)
    query = query.order_by(col(Inspection.due_at), col(Inspection.id)).limit(limit).offset(offset)
    return list((await session.exec(query)).all())


async def add_inspection(
    session: AsyncSession, actor: StaffPrincipal, *, policy_id: int, due_at: datetime, ip: str | None
) -> Inspection:
    """Another inspection of a liability policy (R-LIA-5 asks for at least one: a follow-up after the
    rectifications, say). A policy outside the actor's regions does not exist for it."""
    require_role(actor, INSPECT_ROLES)
    policy = await session.get(Policy, policy_id)
    if policy is None or not actor.covers_region(policy.region_code):
        raise InspectionError("not_found")
    if policy.enterprise_id is None:
        raise InspectionError("inspection_not_liability")
    if due_at <= utcnow():
        raise InspectionError("inspection_time_past")
    inspection = Inspection(
        policy_id=policy_id, enterprise_id=policy.enterprise_id, region_code=policy.region_code, due_at=due_at
    )
    session.add(inspection)
    await session.flush()
    note(inspection, utcnow(), "created", by=actor.user_id)
    _audit(session, actor, "inspection.create", inspection, ip)
    await session.commit()
    return inspection


async def assign_inspector(
    session: AsyncSession,
    actor: StaffPrincipal,
    inspection_id: int,
    *,
    staff_user_id: int | None,
    team_name: str | None,
    due_at: datetime | None,
    ip: str | None,
) -> Inspection:
    """One staff member of an inspecting role whose region covers the enterprise, or a named team."""
    require_role(actor, INSPECT_ROLES)
    if (staff_user_id is None) == (not team_name or not team_name.strip()):
        raise InspectionError("inspection_inspector_required")
    inspection = await scoped(session, actor, inspection_id)
    _open_for_changes(inspection)
    now = utcnow()
    if due_at is not None and due_at <= now:
        raise InspectionError("inspection_time_past")
    if staff_user_id is not None:
        inspector = await session.get(StaffUser, staff_user_id)
        if inspector is None or not _can_inspect(inspector, inspection.region_code):
            raise InspectionError("inspection_inspector_invalid", staff_user_id=staff_user_id)
    inspection.inspector_staff_id = staff_user_id
    inspection.inspector_team = team_name.strip() if team_name else None
    if due_at is not None:
        inspection.due_at = due_at
    note(inspection, now, "inspector", staff_user_id=staff_user_id, team=inspection.inspector_team)
    session.add(inspection)
    _audit(
        session, actor, "inspection.inspector", inspection, ip, staff_user_id=staff_user_id, team=team_name
    )
    await session.commit()
    return inspection


def _can_inspect(user: StaffUser, region_code: str) -> bool:
    if not user.active or user.role not in (*INSPECT_ROLES, Role.ADMIN.value):
        return False
    principal = StaffPrincipal(user.id or 0, user.username, user.role, tuple(user.region_codes))
    return principal.covers_region(region_code)


async def propose_appointment(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    inspection_id: int,
    *,
    at: datetime,
    ip: str | None,
) -> Inspection:
    """A new round: the enterprise is asked in chat (or by text) to confirm or ask for another day; the
    buttons of earlier rounds record nothing from now on."""
    require_role(actor, INSPECT_ROLES)
    inspection = await scoped(session, actor, inspection_id)
    _open_for_changes(inspection)
    if inspection.inspector_staff_id is None and not inspection.inspector_team:
        raise InspectionError("inspection_no_inspector")
    now = utcnow()
    if at <= now:
        raise InspectionError("inspection_time_past")
    inspection.appointment_at = at
    inspection.appointment_round += 1
    inspection.proposed_at = now
    inspection.confirmed_at = None
    inspection.status = InspectionStatus.PROPOSED.value
    note(inspection, now, "proposed", at=at.isoformat(), round=inspection.appointment_round)
    session.add(inspection)
    policy = await _policy(session, inspection)
    await tell_enterprise(
        session,
        settings,
        inspection,
        policy,
        kind="appointment",
        dedupe=f"inspection-{inspection.id}-proposed-{inspection.appointment_round}",
        buttons=lambda locale: _appointment_buttons(inspection, locale),
        sms_key="inspection_appointment",
        sms_values={"day": local_time(at, "%m-%d %H:%M")},
        inspector=await inspector_name(session, inspection),
    )
    _audit(session, actor, "inspection.appointment", inspection, ip, at=at.isoformat())
    await session.commit()
    return inspection


def _appointment_buttons(inspection: Inspection, locale: str) -> list[list[dict[str, str]]]:
    round_ = inspection.appointment_round
    return [
        [
            {
                "text": label("inspections.confirm", locale),
                "callback_data": pack(CONFIRM, inspection.id or 0, round_),
            }
        ],
        [
            {
                "text": label("inspections.reschedule", locale),
                "callback_data": pack(RESCHEDULE, inspection.id or 0, round_),
            }
        ],
    ]


async def inspector_name(session: AsyncSession, inspection: Inspection) -> str | None:
    if inspection.inspector_staff_id is not None:
        user = await session.get(StaffUser, inspection.inspector_staff_id)
        if user is not None:
            return user.full_name or user.username
    return inspection.inspector_team


async def _policy(session: AsyncSession, inspection: Inspection) -> Policy:
    policy = await session.get(Policy, inspection.policy_id)
    assert policy is not None  # a foreign key
    return policy


async def tell_enterprise(
    session: AsyncSession,
    settings: Settings,
    inspection: Inspection,
    policy: Policy,
    *,
    kind: str,
    dedupe: str,
    sms_key: str,
    sms_values: dict[str, str],
    buttons: Any = None,
    attachments: list[dict[str, Any]] | None = None,
    **ctx: Any,
) -> str:
    """A notice to the enterprise: the chat that enrolled while it has not blocked us, else the insured's
    chat that reaches them, else a text with a link to the inspection. Returns the channel used."""
    preferred = (
        await session.get(ChatIdentity, policy.identity_id) if policy.identity_id is not None else None
    )

    async def in_chat(chat: ChatIdentity) -> None:
        locale = normalize_locale(chat.locale)
        await enqueue_for_identity(
            session=session,
            identity=chat,
            text=render(f"inspections/{kind}", locale, i=inspection, policy_number=policy.number, **ctx),
            dedupe_key=dedupe,
            priority=Priority.NOTICE,
            buttons=buttons(locale) if buttons is not None else None,
            attachments=attachments,
        )

    return await notify_person(
        session=session,
        person_id=policy.person_id,
        preferred=preferred,
        chat=in_chat,
        sms_key=sms_key,
        sms_values=sms_values,
        target=f"inspection:{inspection.id}",
        dedupe_key=dedupe,
        link_days=settings.sms_link_days,
    )


# --- the enterprise in chat -----------------------------------------------------------------------------


async def confirm(
    session: AsyncSession, principal: BotPrincipal, inspection_id: int, round_: int
) -> tuple[Inspection, Policy, bool]:
    """The enterprise confirms the appointment of the button's round. A button of an older round, or a
    second tap, records nothing (``False``)."""
    inspection, policy = await inspection_for(session, principal, inspection_id, lock=True)
    if inspection.appointment_at is None:
        raise InspectionError("inspection_no_appointment")
    current = inspection.status == InspectionStatus.PROPOSED.value and round_ == inspection.appointment_round
    if not current:
        return inspection, policy, False
    now = utcnow()
    inspection.status = InspectionStatus.CONFIRMED.value
    inspection.confirmed_at = now
    note(inspection, now, "confirmed", round=round_, identity_id=principal.identity_id)
    session.add(inspection)
    await session.commit()
    return inspection, policy, True


async def request_reschedule(
    session: AsyncSession,
    settings: Settings,
    principal: BotPrincipal,
    inspection_id: int,
    *,
    reason: str,
    proposed_day: date,
) -> tuple[Inspection, Policy]:
    """Another day, with the reason: staff of the region see it (alert and ``status=reschedule``) and
    propose again."""
    inspection, policy = await inspection_for(session, principal, inspection_id, lock=True)
    _open_for_changes(inspection)
    if inspection.appointment_at is None:
        raise InspectionError("inspection_no_appointment")
    now = utcnow()
    if proposed_day <= local_date(now):
        raise InspectionError("inspection_day_past")
    text = " ".join(reason.split())
    if not 2 <= len(text) <= 500:
        raise InspectionError("inspection_reason_length")
    inspection.status = InspectionStatus.RESCHEDULE.value
    inspection.reschedule_reason = text
    inspection.reschedule_day = proposed_day.isoformat()
    inspection.confirmed_at = None
    note(inspection, now, "reschedule", day=proposed_day.isoformat(), reason=text[:100])
    session.add(inspection)
    locale = settings.default_locale
    ctx = {"i": inspection, "policy_number": policy.number, "enterprise": policy.insured_name}
    await alert_staff(
        session,
        settings,
        kind=ALERT_RESCHEDULE,
        region_code=inspection.region_code,
        title=render("inspections/staff_reschedule_title", locale, ext="txt", **ctx),
        body=render("inspections/staff_reschedule_body", locale, ext="txt", **ctx),
        dedupe_key=f"inspection-{inspection.id}-reschedule-{inspection.appointment_round}",
    )
    await session.commit()
    return inspection, policy


async def store_photo(
    session: AsyncSession, principal: BotPrincipal, upload: Upload, *, settings: Settings
) -> int:
    """A photo of a fixed hazard, decoded whole before it is kept (the claims evidence path)."""
    image = await checked_image(upload.data, max_pixels=settings.max_image_pixels)
    document = await store_document(
        session=session,
        kind=FIX_PHOTO_KIND,
        # The chat that sent it, for the check in mark_fixed: a photo is used only by the chat that sent it.
        filename=f"{_fix_photo_stem(principal)}.{image.format.lower()}",
        content=upload.data,
        content_type=image.content_type,
        person_id=principal.person_id,
    )
    await session.commit()
    return document.id or 0


def _fix_photo_stem(principal: BotPrincipal) -> str:
    return f"fix-{principal.identity_id}"


async def mark_fixed(
    session: AsyncSession,
    settings: Settings,
    principal: BotPrincipal,
    hazard_id: int,
    *,
    photo_document_id: int,
    note: str | None,
) -> tuple[InspectionHazard, bool]:
    """The enterprise says a hazard is fixed, with a photo it sent. A second time records nothing."""
    hazard = await session.get(InspectionHazard, hazard_id, with_for_update=True, populate_existing=True)
    if hazard is None:
        raise InspectionError("not_found")
    await inspection_for(session, principal, hazard.inspection_id)
    if hazard.status == HazardStatus.FIXED.value:
        return hazard, False
    photo = await session.get(Document, photo_document_id)
    if (
        photo is None
        or photo.kind != FIX_PHOTO_KIND
        or photo.person_id != principal.person_id
        or not photo.filename.startswith(f"{_fix_photo_stem(principal)}.")
    ):
        raise InspectionError("hazard_photo_unknown")
    now = utcnow()
    hazard.status = HazardStatus.FIXED.value
    hazard.fixed_at = now
    hazard.fixed_photo_document_id = photo_document_id
    hazard.fixed_note = " ".join(note.split())[:500] if note else None
    hazard.fixed_by_identity_id = principal.identity_id
    # The photo belongs with the policy now, so the region's staff can open it (GET /api/documents/{id}).
    inspection = await session.get(Inspection, hazard.inspection_id)
    assert inspection is not None
    photo.policy_id = inspection.policy_id
    session.add_all([hazard, photo])
    await session.commit()
    return hazard, True


# --- staff: hazards and the report ----------------------------------------------------------------------


async def record_hazard(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    inspection_id: int,
    *,
    description: str,
    severity: str,
    advice: str,
    rectify_by: datetime,
    photo: Upload | None,
    ip: str | None,
) -> InspectionHazard:
    """One hazard found on site (R-LIA-5 "on-site record"), with its photo and rectification deadline."""
    require_role(actor, INSPECT_ROLES)
    text = " ".join(description.split())
    if not text:
        raise InspectionError("hazard_description_required")
    if severity not in SEVERITIES:
        raise InspectionError(
            "hazard_severity_unknown", severity=severity[:20], allowed=", ".join(SEVERITIES)
        )
    if rectify_by <= utcnow():
        raise InspectionError("hazard_deadline_past")
    inspection = await scoped(session, actor, inspection_id)
    _open_for_changes(inspection)
    document_id = None
    if photo is not None:
        image = await checked_image(photo.data, max_pixels=settings.max_image_pixels)
        document = await store_document(
            session=session,
            kind=PHOTO_KIND,
            filename=photo.filename or "hazard",
            content=photo.data,
            content_type=image.content_type,
            policy_id=inspection.policy_id,  # staff of the policy's region open it
            uploaded_by_staff_id=actor.user_id,
        )
        document_id = document.id
    hazard = InspectionHazard(
        inspection_id=inspection.id or 0,
        region_code=inspection.region_code,
        description=text[:1000],
        severity=severity,
        advice=" ".join(advice.split())[:1000],
        photo_document_id=document_id,
        rectify_by=rectify_by,
        recorded_by=actor.user_id,
    )
    session.add(hazard)
    await session.flush()
    note(inspection, utcnow(), "hazard", hazard_id=hazard.id, severity=severity)
    session.add(inspection)
    _audit(session, actor, "inspection.hazard", inspection, ip, hazard_id=hazard.id, severity=severity)
    await session.commit()
    return hazard


async def complete(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    inspection_id: int,
    *,
    summary: str,
    ip: str | None,
) -> Inspection:
    """The inspection is done: the report (PDF, risks and rectification advice) goes to the enterprise in
    chat, and its summary is queued for the safety authority (sent by the job until accepted)."""
    require_role(actor, INSPECT_ROLES)
    text = summary.strip()
    if not text:
        raise InspectionError("inspection_summary_required")
    inspection = await scoped(session, actor, inspection_id)
    _open_for_changes(inspection)
    if inspection.inspector_staff_id is None and not inspection.inspector_team:
        raise InspectionError("inspection_no_inspector")
    now = utcnow()
    policy = await _policy(session, inspection)
    enterprise = await session.get(Enterprise, inspection.enterprise_id)
    hazards = (await hazards_of(session, [inspection.id or 0]))[inspection.id or 0]
    inspection.status = InspectionStatus.DONE.value
    inspection.completed_at = now
    inspection.completed_by = actor.user_id
    inspection.summary = text[:2000]
    preferred = (
        await session.get(ChatIdentity, policy.identity_id) if policy.identity_id is not None else None
    )
    locale = normalize_locale(preferred.locale if preferred is not None else settings.default_locale)
    view = report_render.report_view(
        inspection,
        policy_number=policy.number,
        enterprise=enterprise,
        enterprise_name=policy.insured_name,
        inspector=await inspector_name(session, inspection) or "",
        hazards=hazards,
        insurer_name=render("enroll/insurer_name", locale, ext="txt"),
        photos=await _photos_of(session, hazards),
    )
    pdf = await asyncio.to_thread(report_render.report_pdf, view, locale)
    document = await store_document(
        session=session,
        kind=REPORT_KIND,
        filename=f"{view.number}.pdf",
        content=pdf,
        policy_id=policy.id,
        person_id=policy.person_id,
    )
    inspection.report_document_id = document.id
    inspection.authority_summary = report_render.authority_summary(view)
    configured = bool(settings.safety_authority_url)
    inspection.authority_status = (
        AuthorityStatus.PENDING if configured else AuthorityStatus.UNCONFIGURED
    ).value
    inspection.authority_next_at = now
    note(inspection, now, "completed", hazards=len(hazards))
    session.add(inspection)
    inspection.report_channel = await tell_enterprise(
        session,
        settings,
        inspection,
        policy,
        kind="report",
        dedupe=f"inspection-{inspection.id}-report",
        buttons=lambda loc: fix_buttons(hazards, loc),
        attachments=[
            {"kind": "document", "name": f"{view.number}.pdf", "url": f"/api/outbox/documents/{document.id}"}
        ],
        sms_key="inspection_report",
        sms_values={},
        hazards=hazards,
    )
    _audit(session, actor, "inspection.complete", inspection, ip, hazards=len(hazards))
    await session.commit()
    return inspection


async def _photos_of(session: AsyncSession, hazards: Sequence[InspectionHazard]) -> dict[int, bytes]:
    """Each hazard's photo, for the report (one query)."""
    wanted = {h.photo_document_id: h.id or 0 for h in hazards if h.photo_document_id is not None}
    if not wanted:
        return {}
    query = select(Document).where(col(Document.id).in_(sorted(wanted)))
    return {wanted[d.id or 0]: d.content for d in (await session.exec(query)).all()}


def fix_buttons(hazards: Sequence[InspectionHazard], locale: str) -> list[list[dict[str, str]]]:
    """A "fixed (send a photo)" button per open hazard, numbered as in the report."""
    return [
        [{"text": label("inspections.fixed_button", locale, n=n), "callback_data": pack(FIX, h.id or 0)}]
        for n, h in enumerate(hazards, start=1)
        if h.status == HazardStatus.OPEN.value
    ][:MAX_BUTTONS]


__all__ = [
    "PREFIX",
    "InspectionError",
    "Upload",
    "assign_inspector",
    "complete",
    "confirm",
    "inspection_for",
    "inspections_for",
    "mark_fixed",
    "propose_appointment",
    "record_hazard",
    "request_reschedule",
]

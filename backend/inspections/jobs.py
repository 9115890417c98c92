"""Scheduler entry points for safety inspections (R-LIA-5); each is safe to run twice and after a restart,
because every step it takes is recorded on the row it acted on, in the same transaction:

- ``inspection-reminders`` (every 5 min): the appointment reminder to the enterprise (chat or text) and to
  the inspector (a staff alert), once per appointment round, ``TIANBAO_INSPECTION_REMINDER_HOURS`` before
  the visit; a reminder before each hazard's rectification deadline (``TIANBAO_RECTIFICATION_REMINDER_HOURS``),
  once; an overdue hazard escalated to the region's insurer staff, once; an inspection not done by its due
  date, once.
- ``inspection-authority`` (every minute): the report's summary and PDF POSTed to
  ``TIANBAO_SAFETY_AUTHORITY_URL`` until the authority answers 2xx (backoff 1, 2, 4 ... minutes, at most
  6 hours; every attempt recorded in the inspection's history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.db import utcnow
from backend.enrollment.models import Document, Policy
from backend.inspections import render as report_render
from backend.inspections import service
from backend.inspections.models import (
    AuthorityStatus,
    HazardStatus,
    Inspection,
    InspectionHazard,
    InspectionStatus,
)
from backend.inspections.schemas import FIX, pack
from backend.settings import Settings
from messages import label, local_time, render

BATCH = 200  # rows per run and kind: a backlog is worked off over a few runs, each one short
MAX_BACKOFF = timedelta(hours=6)
AUTHORITY_TIMEOUT = 15.0  # seconds per POST


@dataclass(frozen=True)
class ReminderReport:
    appointments: int
    inspectors: int
    rectifications: int
    escalated: int
    overdue: int


async def inspection_reminders(
    session: AsyncSession, settings: Settings, now: datetime | None = None
) -> ReminderReport:
    now = now or utcnow()
    appointments, inspectors = await _appointment_reminders(session, settings, now)
    rectifications = await _rectification_reminders(session, settings, now)
    escalated = await _escalate_overdue_hazards(session, settings, now)
    overdue = await _overdue_inspections(session, settings, now)
    await session.commit()
    return ReminderReport(appointments, inspectors, rectifications, escalated, overdue)


async def _appointment_reminders(session: AsyncSession, settings: Settings, now: datetime) -> tuple[int, int]:
    """Once per round, for a visit within the reminder window that is still planned."""
    window = now + timedelta(hours=settings.inspection_reminder_hours)
    query = (
        select(Inspection, Policy)
        .join(Policy, col(Policy.id) == col(Inspection.policy_id))
        .where(
            col(Inspection.status).in_([InspectionStatus.PROPOSED.value, InspectionStatus.CONFIRMED.value])
        )
        .where(col(Inspection.appointment_at) > now, col(Inspection.appointment_at) <= window)
        .where(
            or_(
                col(Inspection.enterprise_reminded_round) < col(Inspection.appointment_round),
                col(Inspection.inspector_reminded_round) < col(Inspection.appointment_round),
            )
        )
        .order_by(col(Inspection.appointment_at))
        .limit(BATCH)
    )
    enterprises = inspectors = 0
    for inspection, policy in await _pairs(session, query):
        assert inspection.appointment_at is not None
        inspector = await service.inspector_name(session, inspection)
        if inspection.enterprise_reminded_round < inspection.appointment_round:
            await service.tell_enterprise(
                session,
                settings,
                inspection,
                policy,
                kind="reminder",
                dedupe=f"inspection-{inspection.id}-reminder-{inspection.appointment_round}",
                sms_key="inspection_reminder",
                sms_values={"day": local_time(inspection.appointment_at, "%m-%d %H:%M")},
                inspector=inspector,
            )
            inspection.enterprise_reminded_round = inspection.appointment_round
            enterprises += 1
        if inspection.inspector_reminded_round < inspection.appointment_round:
            await _staff_alert(
                session,
                settings,
                inspection,
                policy,
                kind=service.ALERT_REMINDER,
                name="reminder",
                dedupe=f"inspection-{inspection.id}-inspector-{inspection.appointment_round}",
                inspector=inspector or "",
            )
            inspection.inspector_reminded_round = inspection.appointment_round
            inspectors += 1
        session.add(inspection)
    return enterprises, inspectors


async def _staff_alert(
    session: AsyncSession,
    settings: Settings,
    inspection: Inspection,
    policy: Policy,
    *,
    kind: str,
    name: str,
    dedupe: str,
    **ctx: object,
) -> None:
    locale = settings.default_locale
    values = {"i": inspection, "policy_number": policy.number, "enterprise": policy.insured_name, **ctx}
    await alert_staff(
        session,
        settings,
        kind=kind,
        region_code=inspection.region_code,
        title=render(f"inspections/staff_{name}_title", locale, ext="txt", **values),
        body=render(f"inspections/staff_{name}_body", locale, ext="txt", **values),
        dedupe_key=dedupe,
    )


async def _pairs(session: AsyncSession, query: Any) -> list[tuple[Inspection, Policy]]:
    return list((await session.exec(query)).all())


async def _triples(session: AsyncSession, query: Any) -> list[tuple[InspectionHazard, Inspection, Policy]]:
    return list((await session.exec(query)).all())


def _with_inspection_and_policy() -> Any:
    """Hazards with their inspection and policy, in one statement per batch."""
    return (
        select(InspectionHazard, Inspection, Policy)
        .join(Inspection, col(Inspection.id) == col(InspectionHazard.inspection_id))
        .join(Policy, col(Policy.id) == col(Inspection.policy_id))
    )


async def _rectification_reminders(session: AsyncSession, settings: Settings, now: datetime) -> int:
    window = now + timedelta(hours=settings.rectification_reminder_hours)
    query = (
        _with_inspection_and_policy()
        .where(col(InspectionHazard.status) == HazardStatus.OPEN.value)
        .where(col(InspectionHazard.reminded_at).is_(None))
        .where(col(InspectionHazard.rectify_by) > now, col(InspectionHazard.rectify_by) <= window)
        .order_by(col(InspectionHazard.rectify_by))
        .limit(BATCH)
    )
    count = 0
    for hazard, inspection, policy in await _triples(session, query):
        if inspection.status != InspectionStatus.DONE.value:
            continue  # the report has not reached the enterprise yet: nothing to remind of
        numbers = [
            h.id for h in (await service.hazards_of(session, [inspection.id or 0]))[inspection.id or 0]
        ]
        await service.tell_enterprise(
            session,
            settings,
            inspection,
            policy,
            kind="rectify_reminder",
            dedupe=f"hazard-{hazard.id}-reminder",
            buttons=lambda loc, h=hazard, n=numbers.index(hazard.id) + 1: [
                [{"text": label("inspections.fixed_button", loc, n=n), "callback_data": pack(FIX, h.id or 0)}]
            ],
            sms_key="rectification_reminder",
            sms_values={"day": local_time(hazard.rectify_by, "%m-%d %H:%M")},
            hazard=hazard,
            n=numbers.index(hazard.id) + 1,
        )
        hazard.reminded_at = now
        session.add(hazard)
        count += 1
    return count


async def _escalate_overdue_hazards(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Past its deadline and not reported fixed: the region's insurer staff are alerted, once."""
    query = (
        _with_inspection_and_policy()
        .where(col(InspectionHazard.status) == HazardStatus.OPEN.value)
        .where(col(InspectionHazard.escalated_at).is_(None), col(InspectionHazard.rectify_by) <= now)
        .order_by(col(InspectionHazard.rectify_by))
        .limit(BATCH)
    )
    count = 0
    for hazard, inspection, policy in await _triples(session, query):
        await _staff_alert(
            session,
            settings,
            inspection,
            policy,
            kind=service.ALERT_HAZARD,
            name="hazard",
            dedupe=f"hazard-{hazard.id}-overdue",
            hazard=hazard,
        )
        hazard.escalated_at = now
        session.add(hazard)
        count += 1
    return count


async def _overdue_inspections(session: AsyncSession, settings: Settings, now: datetime) -> int:
    query = (
        select(Inspection, Policy)
        .join(Policy, col(Policy.id) == col(Inspection.policy_id))
        .where(col(Inspection.status) != InspectionStatus.DONE.value)
        .where(col(Inspection.overdue_alerted_at).is_(None), col(Inspection.due_at) <= now)
        .order_by(col(Inspection.due_at))
        .limit(BATCH)
    )
    count = 0
    for inspection, policy in await _pairs(session, query):
        await _staff_alert(
            session,
            settings,
            inspection,
            policy,
            kind=service.ALERT_OVERDUE,
            name="overdue",
            dedupe=f"inspection-{inspection.id}-overdue",
        )
        inspection.overdue_alerted_at = now
        session.add(inspection)
        count += 1
    return count


# --- feedback to the authority ------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorityReport:
    attempted: int
    accepted: int


async def send_to_authority(
    session: AsyncSession,
    settings: Settings,
    now: datetime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AuthorityReport:
    """POST each due report (multipart: ``summary`` JSON and ``report`` PDF) until accepted. The
    ``Idempotency-Key`` header names the report, so an authority that received a POST whose answer was
    lost can recognise the retry."""
    now = now or utcnow()
    if not settings.safety_authority_url:
        return AuthorityReport(0, 0)
    await _adopt_unconfigured(session, now)
    query = (
        select(Inspection)
        .where(col(Inspection.authority_status) == AuthorityStatus.PENDING.value)
        .where(col(Inspection.authority_next_at) <= now)
        .order_by(col(Inspection.authority_next_at))
        .limit(BATCH)
    )
    due = list((await session.exec(query)).all())
    await session.commit()  # no transaction stays open while the network is awaited
    accepted = 0
    headers = (
        {"Authorization": f"Bearer {settings.safety_authority_token}"}
        if settings.safety_authority_token
        else {}
    )
    async with httpx.AsyncClient(timeout=AUTHORITY_TIMEOUT, transport=transport, headers=headers) as client:
        for inspection in due:
            summary, pdf, number = await _payload(session, inspection)
            await session.commit()  # the read ends before the POST: no transaction waits on the network
            outcome = await _post(client, settings.safety_authority_url, summary, pdf, number)
            accepted += await _record(session, inspection.id or 0, outcome, utcnow())
    return AuthorityReport(len(due), accepted)


async def _adopt_unconfigured(session: AsyncSession, now: datetime) -> None:
    """Reports completed while no address was configured are sent once one is."""
    query = select(Inspection).where(col(Inspection.authority_status) == AuthorityStatus.UNCONFIGURED.value)
    for inspection in (await session.exec(query.limit(BATCH))).all():
        inspection.authority_status = AuthorityStatus.PENDING.value
        inspection.authority_next_at = now
        session.add(inspection)


async def _payload(session: AsyncSession, inspection: Inspection) -> tuple[dict[str, Any], bytes, str]:
    """The summary and PDF as they were when the report was made."""
    document = (
        await session.get(Document, inspection.report_document_id) if inspection.report_document_id else None
    )
    summary = dict(inspection.authority_summary or {})
    number = str(summary.get("report_number") or report_render.report_number(inspection))
    return summary, document.content if document else b"", number


@dataclass(frozen=True)
class _Outcome:
    accepted: bool
    status_code: int | None
    reference: str | None = None
    error: str | None = None


async def _post(
    client: httpx.AsyncClient, url: str, summary: dict[str, Any], pdf: bytes, number: str
) -> _Outcome:
    try:
        response = await client.post(
            url,
            data={"summary": json.dumps(summary, ensure_ascii=False)},
            files={"report": (f"{number}.pdf", pdf, "application/pdf")},
            headers={"Idempotency-Key": f"tianbao-{number}"},
        )
    except httpx.HTTPError as exc:
        return _Outcome(False, None, error=f"{type(exc).__name__}: {exc}"[:300])
    if response.is_success:
        return _Outcome(True, response.status_code, reference=_reference(response))
    return _Outcome(False, response.status_code, error=f"HTTP {response.status_code}: {response.text[:200]}")


def _reference(response: httpx.Response) -> str | None:
    """The authority's receipt number when its answer names one (``{"reference": ...}`` or ``id``)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        value = body.get("reference") or body.get("id")
        return str(value)[:100] if value is not None else None
    return None


async def _record(session: AsyncSession, inspection_id: int, outcome: _Outcome, now: datetime) -> int:
    inspection = await session.get(Inspection, inspection_id, with_for_update=True, populate_existing=True)
    if inspection is None or inspection.authority_status != AuthorityStatus.PENDING.value:
        return 0
    inspection.authority_attempts += 1
    if outcome.accepted:
        inspection.authority_status = AuthorityStatus.ACCEPTED.value
        inspection.authority_accepted_at = now
        inspection.authority_reference = outcome.reference
        inspection.authority_last_error = None
        inspection.authority_next_at = None
    else:
        backoff = min(timedelta(minutes=2 ** (inspection.authority_attempts - 1)), MAX_BACKOFF)
        inspection.authority_next_at = now + backoff
        inspection.authority_last_error = outcome.error
    service.note(
        inspection,
        now,
        "authority",
        attempt=inspection.authority_attempts,
        status_code=outcome.status_code,
        accepted=outcome.accepted,
    )
    session.add(inspection)
    await session.commit()
    return 1 if outcome.accepted else 0

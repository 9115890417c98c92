"""The response to a disaster event (R-DIS-2 to R-DIS-4; R-DIS-5 is ``branches.py``).

- **Grade (R-DIS-2)**: staff enter the expected property payout P, casualty payout C and insured deaths D
  (``update_estimates``, audited); the grade is recomputed by ``grading.grade_for`` and every change is an
  ``event_grade_change`` row (old and new estimates, grade and sensitivity, who, when).
- **Clocks (R-DIS-3)** start at the moment the event **first becomes graded** (``event_response.graded_at``),
  or is marked sensitive, or is upgraded to grade I: each is an ``event_report_deadline`` row (supervisor
  2 h; phone 30 min and writing 1 h for grade I or sensitive), created once per kind. The job
  ``event-report-clocks`` reminds the responsible staff before each deadline (an alert in the event's
  region) and escalates after it (an alert in the event's province, for the supervisors above), once each
  (``reminded_at``, ``escalated_at`` and the alerts' keys). Staff record each report (``record_report``).
- **Daily report (R-DIS-3)**: while the event is grade I or II, the job ``event-daily-reports`` makes one
  PDF per local day (``event_daily_report`` is unique per event and day): figures computed from the
  event's claims plus the staff-entered situation, progress, problems and measures.
- **Green channel (R-DIS-4)**: staff turn it on and off (audited). While on, a claim of the event, or any
  claim in the event's region (``disaster_event.region_code`` prefix), gets the short document list
  (``rules.claim_documents``), drone and satellite surveys besides video, and pre-payment
  (``workflow.record_prepayment``). Turning it on tells the insured of the area once (``fanout.py``).

Scope: reads follow ``service.visible_event``; writes need the event's region (its own region code, or the
smallest division holding its claims) inside the caller's scope (``outside_scope`` otherwise).
Nothing here commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.claims.catastrophe import grading
from backend.claims.catastrophe.fanout import tell_insured_in
from backend.claims.catastrophe.models import (
    DisasterEvent,
    EventDailyReport,
    EventGradeChange,
    EventReportDeadline,
    EventResponse,
)
from backend.claims.catastrophe.service import (
    NATIONAL,
    EventError,
    _common_region,
    _region_names,
    visible_event,
)
from backend.claims.models import Claim, ClaimPrepayment, ClaimStatus
from backend.db import utcnow
from backend.enrollment import documents
from backend.enrollment.models import Document
from backend.products.pricing import fen_to_yuan
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.models import Role, StaffUser
from backend.staff.service import record_audit
from messages import local_date, render, to_local

RESPONSIBLE_ROLES = (Role.ADMIN.value, Role.ADJUSTER.value, Role.UNDERWRITER.value)
DUE_ALERT = "event_report_due"
OVERDUE_ALERT = "event_report_overdue"
REPORT_KIND = "event_daily_report"  # the stored PDF's document kind
TEXT_FIELDS = ("situation", "progress", "problems", "measures")
PROVINCE_DIGITS = 2


# --- scope ---------------------------------------------------------------------------------------------


async def event_region(session: AsyncSession, event: DisasterEvent) -> str:
    """The event's region: its own code, else the smallest division holding its claims, else the country."""
    if event.region_code:
        return event.region_code
    counties = (
        await session.exec(select(Claim.county_code).where(col(Claim.event_id) == event.id).distinct())
    ).all()
    return _common_region([str(c) for c in counties]) if counties else NATIONAL


async def managed_event(session: AsyncSession, actor: StaffPrincipal, event_id: int) -> DisasterEvent:
    """An event the caller may act on: visible, and its region inside the caller's scope."""
    event = await visible_event(session, actor, event_id)
    if not actor.is_national and not actor.covers_region(await event_region(session, event)):
        raise EventError("outside_scope", event_id=event_id)
    return event


async def response_of(session: AsyncSession, event_id: int) -> EventResponse:
    """The event's response row (a fresh, unsaved one with nothing entered when there is none yet)."""
    found = await session.get(EventResponse, event_id)
    return found if found is not None else EventResponse(event_id=event_id)


# --- R-DIS-2 estimates and grade ----------------------------------------------------------------------


async def update_estimates(
    session: AsyncSession,
    actor: StaffPrincipal,
    event_id: int,
    *,
    property_fen: int,
    casualty_fen: int,
    deaths: int,
    sensitive: bool | None = None,
    note: str = "",
    ip: str | None = None,
) -> tuple[EventResponse, EventGradeChange | None]:
    """Staff enter the estimates (and, optionally, sensitivity); the grade is recomputed, the change
    recorded and the reporting clocks opened. The same figures again record nothing. Audited."""
    if min(property_fen, casualty_fen, deaths) < 0:
        raise EventError("estimate_negative")
    event = await managed_event(session, actor, event_id)
    response = await response_of(session, event_id)
    new_sensitive = response.sensitive if sensitive is None else sensitive
    new_grade = grading.grade_for(property_fen=property_fen, casualty_fen=casualty_fen, deaths=deaths)
    old = (response.property_fen, response.casualty_fen, response.deaths, response.grade, response.sensitive)
    new = (property_fen, casualty_fen, deaths, new_grade, new_sensitive)
    if old == new:
        return response, None
    now = utcnow()
    change = EventGradeChange(
        event_id=event_id,
        old_property_fen=old[0],
        old_casualty_fen=old[1],
        old_deaths=old[2],
        old_grade=old[3],
        old_sensitive=old[4],
        new_property_fen=property_fen,
        new_casualty_fen=casualty_fen,
        new_deaths=deaths,
        new_grade=new_grade,
        new_sensitive=new_sensitive,
        note=note.strip()[:1000],
        staff_id=actor.user_id,
        staff_username=actor.username,
        at=now,
    )
    response.property_fen, response.casualty_fen, response.deaths = property_fen, casualty_fen, deaths
    response.grade, response.sensitive, response.updated_at = new_grade, new_sensitive, now
    if response.graded_at is None and (new_grade is not None or new_sensitive):
        response.graded_at = now
    session.add(response)
    session.add(change)
    await session.flush()
    opened = await open_clocks(session, event, response, now)
    record_audit(
        session=session,
        actor=actor,
        action="events.estimates",
        target_type="disaster_event",
        target_id=event_id,
        detail={
            "old": {"property_fen": old[0], "casualty_fen": old[1], "deaths": old[2], "grade": old[3]},
            "new": {"property_fen": property_fen, "casualty_fen": casualty_fen, "deaths": deaths},
            "grade": new_grade,
            "sensitive": new_sensitive,
            "clocks_opened": opened,
        },
        ip=ip,
    )
    return response, change


async def grade_history(session: AsyncSession, event_id: int) -> list[EventGradeChange]:
    query = (
        select(EventGradeChange)
        .where(col(EventGradeChange.event_id) == event_id)
        .order_by(col(EventGradeChange.id))
    )
    return list((await session.exec(query)).all())


# --- R-DIS-3 reporting clocks --------------------------------------------------------------------------


async def deadlines_of(session: AsyncSession, event_id: int) -> list[EventReportDeadline]:
    query = (
        select(EventReportDeadline)
        .where(col(EventReportDeadline.event_id) == event_id)
        .order_by(col(EventReportDeadline.due_at), col(EventReportDeadline.id))
    )
    return list((await session.exec(query)).all())


async def open_clocks(
    session: AsyncSession, event: DisasterEvent, response: EventResponse, now: datetime
) -> list[str]:
    """The deadlines the grade and sensitivity now need, each created once (from ``now``): a grade III
    upgraded to I gets its phone and writing clocks from the upgrade. Returns the kinds opened."""
    wanted = grading.clocks_due(grade=response.grade, sensitive=response.sensitive)
    have = {d.kind for d in await deadlines_of(session, event.id or 0)}
    opened = [kind for kind in wanted if kind not in have]
    for kind in opened:
        session.add(
            EventReportDeadline(
                event_id=event.id or 0, kind=kind, started_at=now, due_at=grading.due_at(kind, now)
            )
        )
    await session.flush()
    return opened


async def record_report(
    session: AsyncSession,
    actor: StaffPrincipal,
    event_id: int,
    *,
    kind: str,
    note: str = "",
    ip: str | None = None,
) -> EventReportDeadline:
    """Staff record that the event was reported (to the supervisor, by phone, in writing). Recording a
    report again changes nothing. Audited."""
    await managed_event(session, actor, event_id)
    deadline = next((d for d in await deadlines_of(session, event_id) if d.kind == kind), None)
    if deadline is None:
        raise EventError("report_not_required", kind=kind)
    if deadline.done_at is not None:
        return deadline
    deadline.done_at = utcnow()
    deadline.done_by = actor.user_id
    deadline.note = note.strip()[:1000]
    session.add(deadline)
    record_audit(
        session=session,
        actor=actor,
        action="events.report",
        target_type="disaster_event",
        target_id=event_id,
        detail={"kind": kind, "note": deadline.note, "late": deadline.done_at > deadline.due_at},
        ip=ip,
    )
    return deadline


async def responsible_staff(session: AsyncSession, region_code: str) -> list[StaffUser]:
    """Active staff with a responsible role whose scope covers the region: those closest to it first
    (a county's adjuster before the province's), national staff last."""
    query = select(StaffUser).where(
        col(StaffUser.active).is_(True), col(StaffUser.role).in_(RESPONSIBLE_ROLES)
    )
    found: list[tuple[int, str, StaffUser]] = []
    for user in (await session.exec(query)).all():
        prefixes = [significant_prefix(code) for code in user.region_codes]
        if not user.region_codes:
            found.append((0, user.username, user))
        elif any(region_code.startswith(p) for p in prefixes):
            found.append((max(len(p) for p in prefixes if region_code.startswith(p)), user.username, user))
    return [user for _depth, _name, user in sorted(found, key=lambda f: (-f[0], f[1]))]


def province_of(region_code: str) -> str:
    return region_code[:PROVINCE_DIGITS].ljust(12, "0") if region_code != NATIONAL else NATIONAL


@dataclass
class ClockRun:
    reminded: int = 0
    escalated: int = 0


async def run_report_clocks(session: AsyncSession, settings: Settings, now: datetime) -> ClockRun:
    """One pass of the ``event-report-clocks`` job: remind before each open deadline, escalate after it,
    once each (a second run finds ``reminded_at``/``escalated_at`` set). Does not commit."""
    soonest_lead = max(c.remind_before for c in grading.CLOCKS.values())
    query = select(EventReportDeadline, DisasterEvent).join(
        DisasterEvent, col(DisasterEvent.id) == col(EventReportDeadline.event_id)
    )
    query = query.where(
        col(EventReportDeadline.done_at).is_(None),
        col(EventReportDeadline.due_at) <= now + soonest_lead,
        or_(col(EventReportDeadline.reminded_at).is_(None), col(EventReportDeadline.escalated_at).is_(None)),
    ).order_by(col(EventReportDeadline.due_at), col(EventReportDeadline.id))
    run = ClockRun()
    for deadline, event in (await session.exec(query)).all():
        overdue = now >= deadline.due_at
        if overdue and deadline.escalated_at is None:
            await _clock_alert(session, settings, event, deadline, overdue=True)
            deadline.escalated_at = now
            deadline.reminded_at = deadline.reminded_at or now  # past due: the reminder is the escalation
            run.escalated += 1
        elif (
            not overdue
            and deadline.reminded_at is None
            and now >= grading.remind_at(deadline.kind, deadline.due_at)
        ):
            await _clock_alert(session, settings, event, deadline, overdue=False)
            deadline.reminded_at = now
            run.reminded += 1
        session.add(deadline)
    await session.flush()
    return run


async def _clock_alert(
    session: AsyncSession,
    settings: Settings,
    event: DisasterEvent,
    deadline: EventReportDeadline,
    *,
    overdue: bool,
) -> None:
    region = await event_region(session, event)
    staff = await responsible_staff(session, region)
    response = await response_of(session, event.id or 0)
    context = {
        "event": {
            "id": event.id,
            "name": event.name,
            "grade": response.grade,
            "sensitive": response.sensitive,
        },
        "kind": deadline.kind,
        "due_at": deadline.due_at,
        "staff": [u.full_name or u.username for u in staff[:5]],
    }
    which = "overdue" if overdue else "due"
    locale = settings.default_locale
    await alert_staff(
        session,
        settings,
        kind=OVERDUE_ALERT if overdue else DUE_ALERT,
        region_code=province_of(region) if overdue else region,
        title=render(f"events/report_{which}_title", locale, ext="txt", **context)[:200],
        body=render(f"events/report_{which}_body", locale, ext="txt", **context)[:2000],
        dedupe_key=f"event-{event.id}-{deadline.kind}-{which}",
        event_id=event.id,
    )


# --- R-DIS-3 daily report ------------------------------------------------------------------------------


async def set_report_text(
    session: AsyncSession,
    actor: StaffPrincipal,
    event_id: int,
    *,
    texts: dict[str, str | None],
    ip: str | None = None,
) -> EventResponse:
    """Staff enter the daily report's words (situation, progress, problems, measures); a missing one is
    kept as it was. Audited."""
    await managed_event(session, actor, event_id)
    response = await response_of(session, event_id)
    changed: dict[str, str] = {}
    for name in TEXT_FIELDS:
        value = texts.get(name)
        if value is not None:
            setattr(response, name, value.strip()[:4000])
            changed[name] = getattr(response, name)
    response.updated_at = utcnow()
    session.add(response)
    record_audit(
        session=session,
        actor=actor,
        action="events.report_text",
        target_type="disaster_event",
        target_id=event_id,
        detail=changed,
        ip=ip,
    )
    return response


async def report_figures(session: AsyncSession, event_id: int) -> dict[str, int]:
    """The daily report's figures from the event's claims (one query, and one for pre-payments)."""
    paid = case((col(Claim.status) == ClaimStatus.PAID.value, 1), else_=0)
    denied = case((col(Claim.status) == ClaimStatus.DENIED.value, 1), else_=0)
    row = (
        await session.execute(
            sa_select(
                func.count(col(Claim.id)),
                func.coalesce(func.sum(col(Claim.estimated_amount_fen)), 0),
                func.count(col(Claim.surveyed_at)),
                func.coalesce(func.sum(col(Claim.assessed_amount_fen)), 0),
                func.coalesce(func.sum(paid), 0),
                func.coalesce(func.sum(col(Claim.paid_amount_fen)), 0),
                func.coalesce(func.sum(denied), 0),
            ).where(col(Claim.event_id) == event_id)
        )
    ).one()
    prepaid = (
        await session.exec(
            select(func.coalesce(func.sum(col(ClaimPrepayment.amount_fen)), 0))
            .join(Claim, col(Claim.id) == col(ClaimPrepayment.claim_id))
            .where(col(Claim.event_id) == event_id)
        )
    ).one()
    return {
        "claims": int(row[0]),
        "reported_fen": int(row[1]),
        "surveyed": int(row[2]),
        "assessed_fen": int(row[3]),
        "paid": int(row[4]),
        "paid_fen": int(row[5]),
        "denied": int(row[6]),
        "prepaid_fen": int(prepaid),
    }


def _money(figures: dict[str, int]) -> dict[str, str]:
    return {key: fen_to_yuan(value) for key, value in figures.items() if key.endswith("_fen")}


async def generate_daily_reports(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """One pass of the ``event-daily-reports`` job: each event now graded I or II without a report for the
    local day gets one (a PDF stored as a document). Returns how many were made. Commits each report."""
    day = local_date(now).isoformat()
    have = select(EventDailyReport.event_id).where(col(EventDailyReport.report_date) == day)
    query = (
        select(DisasterEvent, EventResponse)
        .join(EventResponse, col(EventResponse.event_id) == col(DisasterEvent.id))
        .where(
            col(EventResponse.grade).in_(sorted(grading.DAILY_REPORT_GRADES)),
            col(DisasterEvent.id).notin_(have),
        )
        .order_by(col(DisasterEvent.id))
    )
    made = 0
    for event, response in (await session.exec(query)).all():
        figures = await report_figures(session, event.id or 0)
        names = await _region_names(session, [await event_region(session, event)])
        pdf = await asyncio.to_thread(
            _report_pdf, event, response, figures, day, now, settings.default_locale, names
        )
        document = await documents.store_document(
            session=session, kind=REPORT_KIND, filename=f"event-{event.id}-{day}.pdf", content=pdf
        )
        session.add(
            EventDailyReport(
                event_id=event.id or 0,
                report_date=day,
                grade=response.grade or "",
                figures=figures,
                document_id=document.id or 0,
                generated_at=now,
            )
        )
        try:
            await session.commit()
        except IntegrityError:  # another runner made it first: its report stands
            await session.rollback()
            continue
        made += 1
    return made


def _report_pdf(
    event: DisasterEvent,
    response: EventResponse,
    figures: dict[str, int],
    day: str,
    now: datetime,
    locale: str,
    names: dict[str, str],
) -> bytes:
    from fpdf import FPDF  # only the job renders

    region = event.region_code or ""
    body = render(
        "events/daily_report",
        locale,
        event={"id": event.id, "name": event.name, "cause": event.cause, "region": names.get(region, region)},
        response=response,
        figures=figures,
        money=_money(figures),
        day=day,
        generated_at=to_local(now),
    ).replace("\n", "")
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_margins(15, 12, 15)
    pdf.set_auto_page_break(auto=True, margin=12)
    font = str(documents.font_path())
    pdf.add_font(documents.FONT_FAMILY, "", font)
    pdf.add_font(documents.FONT_FAMILY, "B", font)
    pdf.set_title(f"{event.name} {day}")
    pdf.set_creator("Tianbao")
    pdf.set_lang(locale)
    pdf.set_creation_date(to_local(now))
    pdf.add_page()
    pdf.set_font(documents.FONT_FAMILY, size=10)
    pdf.write_html(body, font_family=documents.FONT_FAMILY, table_line_separators=True)
    return bytes(pdf.output())


async def daily_reports(session: AsyncSession, event_id: int) -> list[EventDailyReport]:
    query = (
        select(EventDailyReport)
        .where(col(EventDailyReport.event_id) == event_id)
        .order_by(col(EventDailyReport.report_date).desc())
    )
    return list((await session.exec(query)).all())


async def daily_report_file(session: AsyncSession, event_id: int, report_date: str) -> Document:
    query = select(Document).join(EventDailyReport, col(EventDailyReport.document_id) == col(Document.id))
    query = query.where(
        col(EventDailyReport.event_id) == event_id, col(EventDailyReport.report_date) == report_date
    )
    document = (await session.exec(query)).first()
    if document is None:
        raise EventError("report_not_found", report_date=report_date)
    return document


# --- R-DIS-4 green channel -----------------------------------------------------------------------------


async def set_green_channel(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    event_id: int,
    *,
    on: bool,
    ip: str | None = None,
) -> tuple[EventResponse, int | None]:
    """Staff turn the green channel on or off (audited when it changes). Turning it on tells the insured
    of the event's area, once per event (the outbox's dedupe key). Returns the response and how many
    people were told (None when nothing changed or it was turned off)."""
    event = await managed_event(session, actor, event_id)
    response = await response_of(session, event_id)
    if response.green_channel == on:
        return response, None
    response.green_channel = on
    response.green_channel_changed_at = response.updated_at = utcnow()
    session.add(response)
    await session.flush()
    regions = await green_channel_regions(session, event)
    told = None
    record_audit(
        session=session,
        actor=actor,
        action="events.green_channel",
        target_type="disaster_event",
        target_id=event_id,
        detail={"on": on, "regions": regions},
        ip=ip,
    )
    if on:  # told once per event: the broadcast's source key
        told = await tell_insured_in(
            session,
            settings,
            region_codes=regions,
            template="events/green_channel",
            sms_key="green_channel",
            source_key=f"event-{event_id}-green-channel",
            context={"event": {"id": event.id, "name": event.name}},
        )
    return response, told


async def green_channel_claim_ids(session: AsyncSession, claims: Sequence[Claim]) -> set[int]:
    """The claims in a green channel now: linked to an event whose channel is on, or in the region of one
    (two queries however many claims: the events with the channel on are few)."""
    if not claims:
        return set()
    query = (
        select(DisasterEvent.id, DisasterEvent.region_code)
        .join(EventResponse, col(EventResponse.event_id) == col(DisasterEvent.id))
        .where(col(EventResponse.green_channel).is_(True))
    )
    rows = (await session.exec(query)).all()
    if not rows:
        return set()
    events = {int(event_id or 0) for event_id, _region in rows}
    prefixes = [significant_prefix(region) for _id, region in rows if region and region != NATIONAL]
    return {
        claim.id or 0
        for claim in claims
        if claim.event_id in events or any(claim.region_code.startswith(p) for p in prefixes if p)
    }


async def in_green_channel(session: AsyncSession, claim: Claim) -> bool:
    return bool(await green_channel_claim_ids(session, [claim]))


async def green_channel_regions(session: AsyncSession, event: DisasterEvent) -> list[str]:
    """Where the green channel's farmers are: the event's region, or else the counties of its claims."""
    if event.region_code:
        return [event.region_code]
    counties = (
        await session.exec(select(Claim.county_code).where(col(Claim.event_id) == event.id).distinct())
    ).all()
    return sorted({str(c) for c in counties})

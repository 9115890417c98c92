"""R-DIS-2 to R-DIS-5 staff routes: estimates and grade, reporting clocks, daily reports, green channel,
branch closures; and the bot's read of closed branches. Thin: the rules are in ``response.py`` and
``branches.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from backend.claims.catastrophe import branches, response
from backend.claims.catastrophe.models import BranchClosure, DisasterEvent, EventResponse
from backend.claims.catastrophe.schemas import (
    BranchCloseIn,
    BranchClosureOut,
    ClosedBranchOut,
    DailyReportOut,
    DeadlineOut,
    EstimatesIn,
    GradeChangeOut,
    GreenChannelIn,
    ReportIn,
    ReportTextIn,
    ResponseOut,
)
from backend.claims.catastrophe.service import _region_names, visible_event
from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep, require_roles
from backend.enrollment.api import _file_response
from backend.ids import Id
from backend.security import StaffPrincipal
from backend.staff.api import client_ip

router = APIRouter(prefix="/api/events", tags=["claims: disaster events"])
branches_router = APIRouter(prefix="/api/branches", tags=["claims: disaster events"])
bot_router = APIRouter(prefix="/api/bot/branches", tags=["bot: branches"])

EventManager = Annotated[StaffPrincipal, Depends(require_roles("adjuster", "underwriter"))]
RegionCode = Annotated[str, Path(pattern=r"^\d{12}$")]
ReportDate = Annotated[str, Path(pattern=r"^\d{4}-\d{2}-\d{2}$")]
PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "the daily report (PDF)"}
}


async def _response_out(session: SessionDep, event_id: int, told: int | None = None) -> ResponseOut:
    event = await session.get(DisasterEvent, event_id)
    assert event is not None  # the route checked it is visible
    row: EventResponse = await response.response_of(session, event_id)
    deadlines = await response.deadlines_of(session, event_id)
    return ResponseOut(
        event_id=event_id,
        region_code=await response.event_region(session, event),
        property_fen=row.property_fen,
        casualty_fen=row.casualty_fen,
        deaths=row.deaths,
        grade=row.grade,
        graded_at=row.graded_at,
        sensitive=row.sensitive,
        situation=row.situation,
        progress=row.progress,
        problems=row.problems,
        measures=row.measures,
        green_channel=row.green_channel,
        green_channel_changed_at=row.green_channel_changed_at,
        deadlines=[
            DeadlineOut(
                kind=d.kind,
                started_at=d.started_at,
                due_at=d.due_at,
                reminded_at=d.reminded_at,
                escalated_at=d.escalated_at,
                done_at=d.done_at,
                done_by=d.done_by,
                note=d.note,
            )
            for d in deadlines
        ],
        told=told,
    )


@router.get("/{event_id}/response", response_model=ResponseOut)
async def get_response(event_id: Id, staff: StaffDep, session: SessionDep) -> ResponseOut:
    """R-DIS-2/3/4: the event's estimates, grade, reporting deadlines and green channel."""
    await visible_event(session, staff, event_id)
    return await _response_out(session, event_id)


@router.put("/{event_id}/estimates", response_model=ResponseOut)
async def put_estimates(
    event_id: Id, body: EstimatesIn, staff: EventManager, session: SessionDep, request: Request
) -> ResponseOut:
    """R-DIS-2: new estimates; the grade is recomputed and the change recorded (audited)."""
    await response.update_estimates(
        session,
        staff,
        event_id,
        property_fen=body.property_fen,
        casualty_fen=body.casualty_fen,
        deaths=body.deaths,
        sensitive=body.sensitive,
        note=body.note,
        ip=client_ip(request),
    )
    await session.commit()
    return await _response_out(session, event_id)


@router.get("/{event_id}/grade-history", response_model=list[GradeChangeOut])
async def grade_history(event_id: Id, staff: StaffDep, session: SessionDep) -> list[GradeChangeOut]:
    await visible_event(session, staff, event_id)
    changes = await response.grade_history(session, event_id)
    return [GradeChangeOut.model_validate(change, from_attributes=True) for change in changes]


@router.post("/{event_id}/reports", response_model=ResponseOut)
async def record_report(
    event_id: Id, body: ReportIn, staff: EventManager, session: SessionDep, request: Request
) -> ResponseOut:
    """R-DIS-3: staff record that the event was reported to the supervisor, by phone or in writing."""
    await response.record_report(
        session, staff, event_id, kind=body.kind, note=body.note, ip=client_ip(request)
    )
    await session.commit()
    return await _response_out(session, event_id)


@router.put("/{event_id}/report-text", response_model=ResponseOut)
async def put_report_text(
    event_id: Id, body: ReportTextIn, staff: EventManager, session: SessionDep, request: Request
) -> ResponseOut:
    """R-DIS-3: the daily report's situation, progress, problems and measures."""
    await response.set_report_text(session, staff, event_id, texts=body.model_dump(), ip=client_ip(request))
    await session.commit()
    return await _response_out(session, event_id)


@router.get("/{event_id}/daily-reports", response_model=list[DailyReportOut])
async def list_daily_reports(event_id: Id, staff: StaffDep, session: SessionDep) -> list[DailyReportOut]:
    await visible_event(session, staff, event_id)
    return [
        DailyReportOut(
            report_date=r.report_date,
            grade=r.grade,
            figures=dict(r.figures),
            generated_at=r.generated_at,
            url=f"/api/events/{event_id}/daily-reports/{r.report_date}",
        )
        for r in await response.daily_reports(session, event_id)
    ]


@router.get("/{event_id}/daily-reports/{report_date}", response_class=Response, responses=PDF)
async def daily_report_pdf(
    event_id: Id, report_date: ReportDate, staff: StaffDep, session: SessionDep
) -> Response:
    await visible_event(session, staff, event_id)
    return _file_response(await response.daily_report_file(session, event_id, report_date))


@router.post("/{event_id}/green-channel", response_model=ResponseOut)
async def green_channel(
    event_id: Id,
    body: GreenChannelIn,
    staff: EventManager,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ResponseOut:
    """R-DIS-4: turn the green channel on (the insured of the area are told once) or off (audited)."""
    _row, told = await response.set_green_channel(
        session, settings, staff, event_id, on=body.on, ip=client_ip(request)
    )
    await session.commit()
    return await _response_out(session, event_id, told)


# --- R-DIS-5 branches ------------------------------------------------------------------------------------


async def _closure_out(session: SessionDep, closure: BranchClosure) -> BranchClosureOut:
    names = await _region_names(session, [closure.region_code])
    return BranchClosureOut(
        **closure.model_dump(exclude={"id"}),
        id=closure.id or 0,
        region_name=names.get(closure.region_code, closure.region_code),
    )


@branches_router.get("/closures", response_model=list[BranchClosureOut])
async def list_closures(
    staff: StaffDep,
    session: SessionDep,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BranchClosureOut]:
    """Branch closures in the caller's regions, newest first; ``open=true`` lists those still closed."""
    closures = await branches.list_closures(session, staff, open_only=open_only, limit=limit)
    return [await _closure_out(session, c) for c in closures]


@branches_router.post("/{region_code}/close", response_model=BranchClosureOut, status_code=201)
async def close_branch(
    region_code: RegionCode,
    body: BranchCloseIn,
    staff: EventManager,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> BranchClosureOut:
    """R-DIS-5: the region's branch is closed; its customers are told every service continues online."""
    closure = await branches.close_branch(
        session,
        settings,
        staff,
        region_code=region_code,
        reason=body.reason,
        event_id=body.event_id,
        ip=client_ip(request),
    )
    await session.commit()
    return await _closure_out(session, closure)


@branches_router.post("/{region_code}/reopen", response_model=BranchClosureOut)
async def reopen_branch(
    region_code: RegionCode, staff: EventManager, session: SessionDep, settings: SettingsDep, request: Request
) -> BranchClosureOut:
    """R-DIS-5: the branch is open again; its customers are told once."""
    closure = await branches.reopen_branch(
        session, settings, staff, region_code=region_code, ip=client_ip(request)
    )
    await session.commit()
    return await _closure_out(session, closure)


@bot_router.get("/closed", response_model=list[ClosedBranchOut])
async def closed_for_me(principal: BotDep, session: SessionDep) -> list[ClosedBranchOut]:
    """R-DIS-5: the closed branches of the regions where this chat's person is insured (the help answer)."""
    found = await branches.closures_for_person(
        session, person_id=principal.person_view, identity_id=principal.identity_id
    )
    return [
        ClosedBranchOut(region_code=c.region_code, region_name=name, closed_at=c.closed_at)
        for c, name in found
    ]

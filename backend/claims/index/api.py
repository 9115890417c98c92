"""R-CLM-2 weather-index routes: station readings (staff), the payout list by village (staff, in scope),
and the township's trigger status for the insured's own policy (the bot)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, File, HTTPException, Query, Request, UploadFile, status

from backend.claims.errors import ClaimError
from backend.claims.index import service as index
from backend.claims.index.schemas import PayoutList, ReadingIn, ReadingReport, TriggerStatus
from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep, require_roles
from backend.enrollment.models import Policy
from backend.ids import Id
from backend.security import StaffPrincipal
from backend.staff.api import client_ip

router = APIRouter(prefix="/api/index", tags=["claims: weather index"])
bot_router = APIRouter(prefix="/api/bot/index", tags=["bot: weather index"])

ReadingWriter = Annotated[StaffPrincipal, Depends(require_roles("underwriter", "adjuster"))]

MAX_ROWS = 10_000
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Plain numbers: Starlette renamed the 413/422 constants and the old names now warn.
UNPROCESSABLE = 422
TOO_LARGE = 413


@router.post("/readings", response_model=ReadingReport)
async def post_readings(
    readings: Annotated[list[ReadingIn], Body(max_length=MAX_ROWS)],
    staff: ReadingWriter,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ReadingReport:
    """Official station readings; each new reading that reaches a trigger pays at once (R-CLM-2)."""
    return await index.record_readings(
        session, staff, readings, "api", settings=settings, ip=client_ip(request)
    )


@router.post("/readings/csv", response_model=ReadingReport)
async def post_readings_csv(
    staff: ReadingWriter,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    file: Annotated[
        UploadFile, File(description="CSV, UTF-8: township_code,peril,value,observed_on[,station]")
    ],
) -> ReadingReport:
    raw = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        raise HTTPException(TOO_LARGE, detail={"code": "file_too_large", "message": ""})
    try:
        csv_text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail={"code": "not_utf8", "message": "file must be UTF-8 CSV"}
        ) from exc
    try:
        return await index.import_readings_csv(
            session, staff, csv_text, settings=settings, ip=client_ip(request)
        )
    except index.ReadingImportError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail={"code": "bad_header", "message": str(exc)}
        ) from exc


@router.get("/payouts", response_model=PayoutList)
async def get_payouts(
    staff: StaffDep,
    session: SessionDep,
    region: Annotated[str, Query(min_length=9, max_length=12, description="township or village code")],
    since: Annotated[date | None, Query(description="readings from this day")] = None,
    until: Annotated[date | None, Query(description="readings up to this day")] = None,
) -> PayoutList:
    """The payout list by administrative village, with the R-CLM-2 publication fields."""
    code = region.strip().ljust(12, "0")
    if not staff.covers_region(code):
        raise ClaimError("outside_scope")  # 403 with its text in the caller's language
    return await index.payout_list(session, region, since=since, until=until)


@bot_router.get("/status", response_model=TriggerStatus)
async def my_index_status(
    principal: BotDep, session: SessionDep, policy_id: Annotated[Id, Query()]
) -> TriggerStatus:
    """For the insured's own weather-index policy: no report is needed; this is the township's status."""
    policy = await session.get(Policy, policy_id)
    if policy is None or not principal.sees(policy.identity_id, policy.person_id):
        raise index.IndexClaimError("not_found")  # another person's policy looks like none
    return await index.policy_status(session, policy)

"""Collective enrollment routes: staff (an agent within their village, or staff of the region) upload and
follow a household list; the bot shows a household its own row, takes its confirmation or objection and
hands it its voucher."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse, Response
from sqlmodel import col, select

from backend import images
from backend.db import utcnow
from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep, require_roles
from backend.enrollment.collective import checks, jobs, service, sheets
from backend.enrollment.collective.models import CollectiveEnrollment, PolicyHousehold
from backend.enrollment.collective.schemas import (
    CollectiveOut,
    CollectivePaymentIn,
    HouseholdConfirmIn,
    HouseholdObjectionIn,
    HouseholdOut,
    HouseholdStaffOut,
    ListRefusedOut,
    ListReportOut,
    ObjectionAnswerIn,
    OrganiserKind,
    ProblemOut,
)
from backend.enrollment.models import Application, Policy
from backend.enrollment.validation import mask_id_number, resident_id_check_character
from backend.files import content_disposition
from backend.ids import Id
from backend.people.models import ChatIdentity
from backend.products.models import Product, ProductKind
from backend.products.service import get_product
from backend.refusals import refusal_message
from backend.regions.models import Region
from backend.security import StaffPrincipal
from backend.settings import Settings
from backend.throttle import client_ip
from messages import label, mask_phone, normalize_locale

staff_router = APIRouter(prefix="/api/collective", tags=["collective enrollment"])
bot_router = APIRouter(prefix="/api/bot/collective", tags=["bot: collective enrollment"])

# Lists are uploaded by the village's agent or by underwriters of the region (admin always).
Uploader = Annotated[StaffPrincipal, Depends(require_roles("agent", "underwriter"))]
Underwriter = Annotated[StaffPrincipal, Depends(require_roles("underwriter"))]
EXAMPLE_ID_FIRST17 = "11010119800101001"  # 北京市东城区, born 1980-01-01: a valid number for the example


def _locale(request: Request) -> str:
    return normalize_locale(request.headers.get("accept-language"))


async def _product(session: SessionDep, code: str) -> Product:
    try:
        product = await get_product(session=session, code=code)
    except LookupError as exc:
        raise service.CollectiveError("unknown_product", product=code) from exc
    if product.kind != ProductKind.AGRICULTURAL or not product.active:
        raise service.CollectiveError("product_not_collective", product=code)
    if product.weather_index:
        # An index payout is one per policy (R-CLM-2); a collective one must pay each household (R-CLM-12),
        # which index claims do not do yet: such cover is enrolled household by household.
        raise service.CollectiveError("index_not_collective", product=code)
    return product


async def _read_list(upload: UploadFile, settings: Settings) -> bytes:
    data = await upload.read(settings.household_list_max_bytes + 1)
    if len(data) > settings.household_list_max_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, detail={"code": "file_too_large", "message": ""}
        )
    return data


def report_out(result: checks.CheckResult, rows: int, locale: str) -> ListReportOut:
    labels = checks.labels_for("collective", locale)
    return ListReportOut(
        ok=result.ok,
        rows=rows,
        problems=[
            ProblemOut(
                line=p.line,
                column=p.column,
                column_label=checks.column_text(p, locale),
                code=p.code,
                reason=checks.reason_text(p, locale, labels),
                detail=p.detail,
            )
            for p in result.problems
        ],
    )


async def _checked(
    session: SessionDep, staff: StaffPrincipal, data: bytes, product_code: str, region_code: str
) -> tuple[sheets.Table, checks.CheckResult, Product, Region]:
    service.check_scope(staff, region_code)  # an agent outside their village is refused here
    product = await _product(session, product_code)
    area = await service.area_of(session, region_code)
    table = await asyncio.to_thread(sheets.read_table, data)  # seconds for 100,000 rows: off the loop
    if not table.rows:
        raise sheets.SheetError("list_empty")
    result = await checks.check_list(session, product=product, area_code=area.code, table=table, now=utcnow())
    return table, result, product, area


async def collective_out(
    session: SessionDep, collective: CollectiveEnrollment, *, again: bool = False
) -> CollectiveOut:
    application = await session.get(Application, collective.application_id)
    assert application is not None
    policy = await session.get(Policy, collective.policy_id) if collective.policy_id else None
    counts = await service.household_counts(session, collective.id or 0)
    return CollectiveOut(
        id=collective.id or 0,
        application_id=application.id or 0,
        application_number=application.number,
        policy_id=collective.policy_id,
        policy_number=policy.number if policy else None,
        product_code=collective.product_code,
        region_code=collective.region_code,
        organiser_kind=collective.organiser_kind,
        organiser_name=collective.organiser_name,
        status=collective.status,
        household_count=collective.household_count,
        total_quantity=application.quantity,
        sum_insured_fen=application.sum_insured_fen,
        premium_total_fen=int(application.premium.get("total_fen", 0)),
        farmers_fen=application.payable_fen,
        uploaded_at=collective.uploaded_at,
        organiser_confirmed_at=collective.organiser_confirmed_at,
        organiser_confirmed_by_name=collective.organiser_confirmed_by_name,
        stamp_document_id=collective.stamp_document_id,
        households_confirmed=counts.get("confirmed", 0),
        households_objected=counts.get("objected", 0),
        already_uploaded=again,
    )


# --- staff ----------------------------------------------------------------------------------------------


@staff_router.get("/template", response_class=Response)
async def template(
    staff: StaffDep,
    session: SessionDep,
    request: Request,
    product_code: Annotated[str, Query(max_length=40)],
    village_code: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
) -> Response:
    """The list template (XLSX): the columns in the user's language and one example row (its village the
    one given, else the caller's first region)."""
    product = await _product(session, product_code)
    locale = _locale(request)
    example = {
        "name": "张三" if locale == "zh-CN" else "Zhang San",
        "id_number": EXAMPLE_ID_FIRST17 + resident_id_check_character(EXAMPLE_ID_FIRST17),
        "phone": "13800138000",
        "subject": product.name_en if locale == "en" else product.name_zh,
        "quantity": "3" if product.needs_ear_tags else "12.5",
        "village": village_code or (staff.region_codes[0] if staff.region_codes else "110101001000"),
        "place_name": label("collective.example_place_name", locale),
        "ear_tags": "111010100000001 111010100000002 111010100000003" if product.needs_ear_tags else "",
        "bank_name": label("collective.example_bank_name", locale),
        "bank_account": "6228480012345678901",
    }
    return Response(
        sheets.template_xlsx(locale, example),
        media_type=sheets.XLSX_CONTENT_TYPE,
        headers={
            "Content-Disposition": content_disposition(f"{label('collective.template_sheet', locale)}.xlsx")
        },
    )


@staff_router.post("/lists/check", response_model=ListReportOut)
async def check_list(
    staff: Uploader,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    file: Annotated[UploadFile, File()],
    product_code: Annotated[str, Form(max_length=40)],
    region_code: Annotated[str, Form(pattern=r"^\d{12}$")],
) -> ListReportOut:
    """Validate a list and store nothing: every bad row with line, column and reason."""
    data = await _read_list(file, settings)
    table, result, _, _ = await _checked(session, staff, data, product_code, region_code)
    return report_out(result, len(table.rows), _locale(request))


@staff_router.post("/lists/report", response_class=Response)
async def list_report(
    staff: Uploader,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    file: Annotated[UploadFile, File()],
    product_code: Annotated[str, Form(max_length=40)],
    region_code: Annotated[str, Form(pattern=r"^\d{12}$")],
) -> Response:
    """The same check, answered as the uploaded list (XLSX) with each row's reasons in an extra column."""
    data = await _read_list(file, settings)
    table, result, _, _ = await _checked(session, staff, data, product_code, region_code)
    locale = _locale(request)
    body = sheets.report_xlsx(
        locale, table.headers, table.rows, checks.problems_by_line(result.problems, locale)
    )
    name = f"{label('collective.column_reason', locale)}-{file.filename or 'list'}"
    return Response(
        body,
        media_type=sheets.XLSX_CONTENT_TYPE,
        headers={"Content-Disposition": content_disposition(name.rsplit(".", 1)[0] + ".xlsx")},
    )


@staff_router.post(
    "/lists",
    response_model=CollectiveOut,
    status_code=201,
    responses={200: {"model": CollectiveOut, "description": "the same list again: the enrollment it made"}},
)
async def upload_list(
    staff: Uploader,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    file: Annotated[UploadFile, File()],
    product_code: Annotated[str, Form(max_length=40)],
    region_code: Annotated[str, Form(pattern=r"^\d{12}$")],
    organiser_kind: Annotated[OrganiserKind, Form()],
    organiser_name: Annotated[str, Form(min_length=2, max_length=200)],
    organiser_credit_code: Annotated[str | None, Form(max_length=18)] = None,
) -> CollectiveOut | JSONResponse:
    """Validate first, store after: a list with any bad row stores nothing and is answered 422 with the
    refusal ``list_has_errors`` in ``detail`` (every error body's shape, ``ErrorOut``) and the report
    beside it (``ok``, ``rows``, ``problems``: ``ListRefusedOut``); a clean list makes one collective
    enrollment with one row per household (201). The
    same file again answers the enrollment it made (200), never a second one."""
    data = await _read_list(file, settings)
    service.check_scope(staff, region_code)
    digest = service.list_sha256(data)
    earlier = await service.same_list(
        session, product_code=product_code, region_code=region_code, sha256=digest
    )
    if earlier is not None:
        return JSONResponse((await collective_out(session, earlier, again=True)).model_dump(mode="json"), 200)
    table, result, product, area = await _checked(session, staff, data, product_code, region_code)
    locale = _locale(request)
    if not result.ok or not result.rows:
        report = report_out(result, len(table.rows), locale)
        detail = {"problems": str(len(report.problems))}
        refusal = {
            "code": "list_has_errors",
            "message": refusal_message("list_has_errors", locale, detail),
            "detail": detail,
        }
        body = ListRefusedOut(detail=refusal, rows=report.rows, problems=report.problems)
        return JSONResponse(body.model_dump(mode="json"), status.HTTP_422_UNPROCESSABLE_CONTENT)
    collective = await service.store_list(
        session,
        actor=staff,
        product=product,
        area=area,
        organiser=service.Organiser(organiser_kind, organiser_name.strip(), organiser_credit_code),
        result=result,
        sha256=digest,
        filename=file.filename or "list",
        ip=client_ip(request),
    )
    if collective.household_count <= jobs.NOTIFY_INLINE_MAX:  # a larger list is told by the job
        await service.notify_households(
            session, collective=collective, kind="confirm", link_days=settings.sms_link_days
        )
        collective.households_notified_at = utcnow()
    await session.commit()
    return await collective_out(session, collective)


@staff_router.get("/{collective_id}", response_model=CollectiveOut)
async def get_collective(collective_id: Id, staff: StaffDep, session: SessionDep) -> CollectiveOut:
    return await collective_out(session, await service.scoped(session, staff, collective_id))


@staff_router.get("/{collective_id}/households", response_model=list[HouseholdStaffOut])
async def list_households(collective_id: Id, staff: StaffDep, session: SessionDep) -> list[HouseholdStaffOut]:
    collective = await service.scoped(session, staff, collective_id)
    query = select(PolicyHousehold).where(PolicyHousehold.collective_id == collective.id)
    rows = (await session.exec(query.order_by(col(PolicyHousehold.line)))).all()
    return [household_staff_out(h) for h in rows]


@staff_router.post("/{collective_id}/organiser-confirmation", response_model=CollectiveOut)
async def organiser_confirmation(
    collective_id: Id,
    staff: Uploader,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    file: Annotated[UploadFile, File()],
    confirmed_by_name: Annotated[str, Form(min_length=1, max_length=30)],
    confirmed_by_title: Annotated[str, Form(min_length=1, max_length=100)],
) -> CollectiveOut:
    """The committee's check and stamp: who confirmed, and the photo of the stamped list."""
    collective = await service.scoped(session, staff, collective_id)
    data = await file.read(10 * 1024 * 1024 + 1)
    if len(data) > 10 * 1024 * 1024:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, detail={"code": "file_too_large", "message": ""}
        )
    image = await images.checked_image(data, max_pixels=settings.max_image_pixels)
    await service.record_organiser_confirmation(
        session,
        actor=staff,
        collective=collective,
        name=confirmed_by_name,
        title=confirmed_by_title,
        photo=data,
        content_type=image.content_type,
        filename=file.filename or "stamped-list.jpg",
        ip=client_ip(request),
    )
    await session.commit()
    return await collective_out(session, collective)


@staff_router.post("/{collective_id}/payment", response_model=CollectiveOut)
async def confirm_payment(
    collective_id: Id,
    body: CollectivePaymentIn,
    staff: Underwriter,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> CollectiveOut:
    """R-ENR-9: the households' shares paid: the collective policy is issued and every household told."""
    collective = await service.scoped(session, staff, collective_id)
    await service.confirm_payment(
        session, actor=staff, collective=collective, body=body, ip=client_ip(request)
    )
    await service.store_policy_document(
        session, collective=collective, secret=settings.secret_key, locale=settings.default_locale
    )
    if collective.household_count <= jobs.NOTIFY_INLINE_MAX:
        await service.notify_households(
            session, collective=collective, kind="issued", link_days=settings.sms_link_days
        )
        collective.issued_notified_at = utcnow()
    await session.commit()
    return await collective_out(session, collective)


@staff_router.post(
    "/{collective_id}/households/{household_id}/objection-answer", response_model=HouseholdStaffOut
)
async def answer_objection(
    collective_id: Id,
    household_id: Id,
    body: ObjectionAnswerIn,
    staff: Uploader,
    session: SessionDep,
    request: Request,
) -> HouseholdStaffOut:
    """An objection checked and found unfounded: the row stands, the household is told why and asked
    again. (A real error: cancel the list and upload the fixed one.)"""
    collective = await service.scoped(session, staff, collective_id)
    household = await service.answer_objection(
        session,
        actor=staff,
        collective=collective,
        household_id=household_id,
        answer=body.answer,
        ip=client_ip(request),
    )
    await session.commit()
    return household_staff_out(household)


@staff_router.post("/{collective_id}/cancel", response_model=CollectiveOut)
async def cancel(collective_id: Id, staff: Uploader, session: SessionDep, request: Request) -> CollectiveOut:
    collective = await service.scoped(session, staff, collective_id)
    await service.cancel(session, actor=staff, collective=collective, ip=client_ip(request))
    await session.commit()
    return await collective_out(session, collective)


def household_staff_out(h: PolicyHousehold) -> HouseholdStaffOut:
    return HouseholdStaffOut(
        id=h.id or 0,
        line=h.line,
        name=h.name,
        id_number_masked=mask_id_number(h.id_number),
        phone_masked=mask_phone(h.phone),
        quantity=h.quantity,
        village_code=h.village_code,
        place_name=h.place_name,
        ear_tags=h.ear_tags,
        bank_name=h.bank_name,
        bank_account_masked=mask_id_number(h.bank_account),
        premium_total_fen=h.premium_total_fen,
        farmer_fen=h.farmer_fen,
        status=h.status,
        signer=h.signer,
        confirmed_at=h.confirmed_at,
        objection_reason=h.objection_reason,
        objection_answer=h.objection_answer,
    )


# --- the bot, for one household --------------------------------------------------------------------------


async def household_out(session: SessionDep, principal: BotDep, household: PolicyHousehold) -> HouseholdOut:
    collective = await session.get(CollectiveEnrollment, household.collective_id)
    product = await session.get(Product, household.product_code)
    village = await session.get(Region, household.village_code)
    assert collective is not None and product is not None
    policy = await session.get(Policy, collective.policy_id) if collective.policy_id else None
    return HouseholdOut(
        id=household.id or 0,
        organiser_name=collective.organiser_name,
        product_code=product.code,
        product_name_zh=product.name_zh,
        product_name_en=product.name_en,
        unit=product.unit,
        name=household.name,
        id_number_masked=mask_id_number(household.id_number),
        quantity=household.quantity,
        village_name=village.name if village else household.village_code,
        place_name=household.place_name,
        ear_tags=household.ear_tags,
        bank_name=household.bank_name,
        bank_account_masked=mask_id_number(household.bank_account),
        premium_total_fen=household.premium_total_fen,
        farmer_fen=household.farmer_fen,
        status=household.status,
        signer_roles=await service.signer_roles(session, principal, household),
        policy_number=policy.number if policy else None,
        voucher_ready=policy is not None,
    )


@bot_router.get("/households/{household_id}", response_model=HouseholdOut)
async def my_household(household_id: Id, principal: BotDep, session: SessionDep) -> HouseholdOut:
    return await household_out(
        session, principal, await service.household_for(session, principal, household_id)
    )


@bot_router.post("/households/{household_id}/confirmation", response_model=HouseholdOut)
async def confirm_household(
    household_id: Id, body: HouseholdConfirmIn, principal: BotDep, session: SessionDep
) -> HouseholdOut:
    household = await service.confirm_household(
        session, principal=principal, household_id=household_id, body=body
    )
    await session.commit()
    return await household_out(session, principal, household)


@bot_router.post("/households/{household_id}/objection", response_model=HouseholdOut)
async def object_household(
    household_id: Id, body: HouseholdObjectionIn, principal: BotDep, session: SessionDep
) -> HouseholdOut:
    household = await service.object_household(
        session, principal=principal, household_id=household_id, reason=body.reason
    )
    await session.commit()
    return await household_out(session, principal, household)


@bot_router.get("/households/{household_id}/voucher", response_class=Response)
async def household_voucher(
    household_id: Id, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> Response:
    identity = await session.get(ChatIdentity, principal.identity_id)
    locale = identity.locale if identity else "zh-CN"
    document = await service.voucher(
        session, principal=principal, household_id=household_id, secret=settings.secret_key, locale=locale
    )
    await session.commit()
    return Response(
        document.content,
        media_type=document.content_type,
        headers={"Content-Disposition": content_disposition(document.filename)},
    )

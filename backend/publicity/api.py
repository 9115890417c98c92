"""Publicity routes: staff (``/api/publicity``, region-scoped, writes audited), the bot
(``/api/bot/publicity``, for one chat identity) and the public page behind the notice's unguessable
token (``/p/<token>``, no login: the archived page as shown, and its PDF)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col, select

from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep, require_roles
from backend.ids import Id
from backend.publicity import service
from backend.publicity.archive import service as archive
from backend.publicity.archive.models import ArchiveRecord, RecordKind
from backend.publicity.errors import PublicityError
from backend.publicity.schemas import (
    ArchiveRecordOut,
    CorrectionIn,
    MediaOut,
    NoticeCreate,
    NoticeOut,
    ObjectionAnswer,
    ObjectionIn,
    ObjectionOut,
    VerifyOut,
)
from backend.security import StaffPrincipal
from backend.settings import Settings
from backend.staff.api import client_ip
from messages import normalize_locale, render

router = APIRouter(prefix="/api/publicity", tags=["publicity"])
bot_router = APIRouter(prefix="/api/bot/publicity", tags=["bot: publicity"])
public_router = APIRouter(include_in_schema=False)

Writer = Annotated[StaffPrincipal, Depends(require_roles("underwriter", "adjuster", "agent"))]
MAX_PHOTO_BYTES = 10 * 1024 * 1024
Status = Literal["draft", "checked", "open", "closed"]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


async def _upload(file: UploadFile) -> service.Upload:
    data = await file.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, detail={"code": "file_too_large", "message": ""}
        )
    return service.Upload(data=data, filename=file.filename or "photo")


async def _out(session: SessionDep, notice: service.PublicityNotice, settings: Settings) -> NoticeOut:
    counts = await service.open_objection_counts(session, [notice])
    return service.notice_out(notice, settings, open_objections=counts.get(notice.id or 0, 0))


# --- staff ---------------------------------------------------------------------------------------------


@router.post("/notices", response_model=NoticeOut, status_code=status.HTTP_201_CREATED)
async def create_notice(
    body: NoticeCreate, staff: Writer, session: SessionDep, settings: SettingsDep, request: Request
) -> NoticeOut:
    """A draft notice with its rows built from the kind's source, every number masked (R-PUB-2/4)."""
    notice = await service.create_notice(session, staff, body, settings=settings, ip=client_ip(request))
    return await _out(session, notice, settings)


@router.get("/notices", response_model=list[NoticeOut])
async def list_notices(
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[NoticeOut]:
    notices = await service.list_notices(session, staff, status_, limit, offset)
    counts = await service.open_objection_counts(session, notices)
    return [service.notice_out(n, settings, open_objections=counts.get(n.id or 0, 0)) for n in notices]


@router.get("/notices/{notice_id}", response_model=NoticeOut)
async def get_notice(notice_id: Id, staff: StaffDep, session: SessionDep, settings: SettingsDep) -> NoticeOut:
    return await _out(session, await service.notice_in_scope(session, staff, notice_id), settings)


@router.post("/notices/{notice_id}/check", response_model=NoticeOut)
async def record_check(
    notice_id: Id,
    staff: Writer,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    checked_by_name: Annotated[str, Form(min_length=1, max_length=100, description="who checked")],
    file: Annotated[UploadFile, File(description="photo of the stamped list")],
    checked_at: Annotated[datetime | None, Form(description="when (default: now)")] = None,
) -> NoticeOut:
    """The village committee's check and stamp (R-PUB-1, R-ENR-8): the notice may open after it."""
    notice = await service.record_check(
        session,
        staff,
        notice_id,
        checked_by_name=checked_by_name.strip(),
        checked_at=checked_at,
        stamp=await _upload(file),
        settings=settings,
        ip=client_ip(request),
    )
    return await _out(session, notice, settings)


@router.post("/notices/{notice_id}/open", response_model=NoticeOut)
async def open_notice(
    notice_id: Id, staff: Writer, session: SessionDep, settings: SettingsDep, request: Request
) -> NoticeOut:
    """Publish: open for 72 hours from now, tell every household (chat, else SMS), archive as shown."""
    notice = await service.open_notice(session, staff, notice_id, settings=settings, ip=client_ip(request))
    return await _out(session, notice, settings)


@router.post("/notices/{notice_id}/corrections", response_model=NoticeOut)
async def correct(
    notice_id: Id,
    body: CorrectionIn,
    staff: Writer,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> NoticeOut:
    """A confirmed error: the row corrected, the notice published again with a new 72-hour window."""
    notice = await service.correct(session, staff, notice_id, body, settings=settings, ip=client_ip(request))
    return await _out(session, notice, settings)


def record_out(record: ArchiveRecord) -> ArchiveRecordOut:
    return ArchiveRecordOut(
        id=record.id or 0,
        notice_id=record.notice_id,
        version=record.version,
        record_kind=record.record_kind,
        payload=record.payload,
        has_html=record.html is not None,
        has_pdf=record.pdf is not None,
        has_photo=record.photo is not None,
        content_sha256=record.content_sha256,
        prev_sha256=record.prev_sha256,
        record_sha256=record.record_sha256,
        created_at=record.created_at,
    )


@router.post("/notices/{notice_id}/board-photos", response_model=ArchiveRecordOut)
async def add_board_photo(
    notice_id: Id,
    staff: Writer,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    file: Annotated[UploadFile, File(description="the notice on the village board (EXIF time and GPS read)")],
) -> ArchiveRecordOut:
    record = await service.add_board_photo(
        session, staff, notice_id, await _upload(file), settings=settings, ip=client_ip(request)
    )
    return record_out(record)


@router.get("/notices/{notice_id}/archive", response_model=list[ArchiveRecordOut])
async def notice_archive(notice_id: Id, staff: StaffDep, session: SessionDep) -> list[ArchiveRecordOut]:
    """Every archived record of the notice: each publication as shown, board photos, the closing."""
    await service.notice_in_scope(session, staff, notice_id)
    records = (
        await session.exec(
            select(ArchiveRecord)
            .where(col(ArchiveRecord.notice_id) == notice_id)
            .order_by(col(ArchiveRecord.id))
        )
    ).all()
    return [record_out(record) for record in records]


@router.get("/archive/verify", response_model=VerifyOut)
async def verify_chain(staff: StaffDep, session: SessionDep) -> VerifyOut:
    """Recompute the whole hash chain; name the first record that does not match."""
    checked, mismatch = await archive.verify_chain(session)
    return _verdict(checked, mismatch)


def _verdict(checked: int, mismatch: archive.Mismatch | None) -> VerifyOut:
    if mismatch is None:
        return VerifyOut(ok=True, checked=checked)
    return VerifyOut(
        ok=False, checked=checked, first_bad_record_id=mismatch.record_id, reason=mismatch.reason
    )


async def _record_in_scope(session: SessionDep, staff: StaffPrincipal, record_id: int) -> ArchiveRecord:
    record = await session.get(ArchiveRecord, record_id)
    if record is None:
        raise PublicityError("not_found")
    try:
        await service.notice_in_scope(session, staff, record.notice_id)
    except PublicityError as exc:
        raise PublicityError("not_found") from exc
    return record


@router.get("/archive/{record_id}/verify", response_model=VerifyOut)
async def verify_record(record_id: Id, staff: StaffDep, session: SessionDep) -> VerifyOut:
    record = await _record_in_scope(session, staff, record_id)
    return _verdict(1, await archive.verify_record(session, record))


@router.get("/archive/{record_id}/{part}", response_class=Response)
async def archived_part(
    record_id: Id, part: Literal["html", "pdf", "photo"], staff: StaffDep, session: SessionDep
) -> Response:
    """The archived bytes exactly as stored (the page as shown, the PDF, the board photo)."""
    record = await _record_in_scope(session, staff, record_id)
    if part == "html" and record.html is not None:
        return HTMLResponse(record.html)
    if part == "pdf" and record.pdf is not None:
        return Response(record.pdf, media_type="application/pdf")
    if part == "photo" and record.photo is not None:
        content_type = str(record.payload.get("content_type") or "application/octet-stream")
        return Response(record.photo, media_type=content_type)
    raise PublicityError("archive_part_missing", part=part)


@router.get("/objections", response_model=list[ObjectionOut])
async def objection_queue(
    staff: StaffDep,
    session: SessionDep,
    status_: Annotated[Literal["open", "answered"] | None, Query(alias="status")] = "open",
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[ObjectionOut]:
    """The queue of the caller's region, the earliest due first (``overdue`` past the due date)."""
    return await service.objection_queue(session, staff, status_, limit, offset)


@router.get("/objections/{objection_id}/photo", response_class=Response)
async def objection_photo_file(objection_id: Id, staff: StaffDep, session: SessionDep) -> Response:
    """The photo the household sent with its objection."""
    document = await service.objection_photo(session, staff, objection_id)
    return Response(document.content, media_type=document.content_type)


@router.post("/objections/{objection_id}/answer", response_model=ObjectionOut)
async def answer_objection(
    objection_id: Id,
    body: ObjectionAnswer,
    staff: Writer,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ObjectionOut:
    """The answer goes to the objector's chat; a confirmed error with its correction re-publishes."""
    objection, notice = await service.answer_objection(
        session, staff, objection_id, body, settings=settings, ip=client_ip(request)
    )
    return service.objection_out(objection, notice, objection.answered_at or objection.created_at)


# --- the bot -------------------------------------------------------------------------------------------


@bot_router.get("/notices", response_model=list[NoticeOut])
async def my_notices(principal: BotDep, session: SessionDep, settings: SettingsDep) -> list[NoticeOut]:
    """The open notices of the chat's villages and those its household is on (own rows marked)."""
    return await service.notices_for(session, principal, settings)


@bot_router.get("/notices/{notice_id}", response_model=NoticeOut)
async def my_notice(
    notice_id: Id, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> NoticeOut:
    notice = await service.published(session, notice_id)
    return await service.notice_for(session, principal, notice, settings)


@bot_router.get("/by-token/{token}", response_model=NoticeOut)
async def notice_by_token(
    token: Annotated[str, Path(max_length=64)],
    principal: BotDep,
    session: SessionDep,
    settings: SettingsDep,
) -> NoticeOut:
    notice = await service.by_token(session, token)
    return await service.notice_for(session, principal, notice, settings)


@bot_router.post("/media", response_model=MediaOut, status_code=status.HTTP_201_CREATED)
async def objection_photo(
    principal: BotDep,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="a photo for an objection")],
) -> MediaOut:
    """A photo the household sends with its objection (decoded whole first; stored with its SHA-256)."""
    document_id = await service.store_objection_photo(
        session, principal, await _upload(file), settings=settings
    )
    return MediaOut(id=document_id)


@bot_router.post("/notices/{notice_id}/objections", response_model=ObjectionOut)
async def object_to(
    notice_id: Id, body: ObjectionIn, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> ObjectionOut:
    objection, notice = await service.raise_objection(
        session,
        principal,
        notice_id,
        body.reason,
        settings=settings,
        photo_document_id=body.photo_document_id,
    )
    return service.objection_out(objection, notice, objection.created_at)


# --- the public page (no login; masked data only) -------------------------------------------------------


async def _latest_publication(session: SessionDep, token: str) -> ArchiveRecord | None:
    try:
        notice = await service.by_token(session, token)
    except PublicityError:
        return None
    return (
        await session.exec(
            select(ArchiveRecord)
            .where(col(ArchiveRecord.notice_id) == notice.id)
            .where(col(ArchiveRecord.record_kind) == RecordKind.PUBLICATION.value)
            .order_by(col(ArchiveRecord.id).desc())
            .limit(1)
        )
    ).first()


def _not_found(request: Request) -> HTMLResponse:
    locale = normalize_locale(request.headers.get("accept-language"))
    return HTMLResponse(render("publicity/not_found", locale), status_code=status.HTTP_404_NOT_FOUND)


@public_router.get("/p/{token}", response_class=HTMLResponse)
async def public_page(token: str, request: Request, session: SessionDep) -> Response:
    """The current version exactly as archived when it was published (R-PUB-3)."""
    record = await _latest_publication(session, token)
    if record is None or record.html is None:
        return _not_found(request)
    return HTMLResponse(record.html, headers={"X-Robots-Tag": "noindex", "Cache-Control": "no-store"})


@public_router.get("/p/{token}/notice.pdf")
async def public_pdf(token: str, request: Request, session: SessionDep) -> Response:
    record = await _latest_publication(session, token)
    if record is None or record.pdf is None:
        return _not_found(request)
    return Response(record.pdf, media_type="application/pdf", headers={"X-Robots-Tag": "noindex"})

"""Publicity notices: draft → the village committee's check → open for at least 72 hours → closed by the
scheduler (R-PUB-1, R-ENR-8). Objections are answered by staff; a confirmed error corrects the row and
publishes the notice again as a new version with a new window (the old version stays in the archive).

Every publication is archived as shown (``archive/service.py``): the page, the PDF, the window, the
villages, the channels and the recipients. Staff act only inside their region (a notice outside it is
"not found") and every staff step is audited in the same transaction.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.db import utcnow
from backend.enrollment.collective.models import CollectiveEnrollment, PolicyHousehold
from backend.enrollment.documents import store_document
from backend.enrollment.models import Document, Policy
from backend.images import checked_image
from backend.numbers import business_number
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_for_identity, enqueue_many
from backend.outbox.sms.service import create_link, enqueue_sms_rows, sms_row, text_person
from backend.people.models import ChatIdentity, Person
from backend.people.reach import reachable_identities, reachable_identity
from backend.publicity import render, sources
from backend.publicity.archive import service as archive
from backend.publicity.archive.models import ArchiveRecord, RecordKind
from backend.publicity.errors import PublicityError
from backend.publicity.exif import photo_facts
from backend.publicity.models import (
    NoticeObjection,
    NoticePerson,
    NoticeStatus,
    ObjectionStatus,
    PublicityNotice,
)
from backend.publicity.schemas import (
    CorrectionIn,
    NoticeCreate,
    NoticeOut,
    ObjectionAnswer,
    ObjectionOut,
    RowOut,
    notice_button,
)
from backend.regions.models import Region, RegionLevel
from backend.regions.service import MalformedCode, canonical_code
from backend.security import BotPrincipal, StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.service import record_audit
from messages import label, normalize_locale
from messages import render as template

TOKEN_BYTES = 18  # 24 URL-safe characters: 144 random bits
MIN_REASON = 2
BATCH = 500
MAX_OPEN_OBJECTIONS = 3  # per chat and notice, waiting for an answer: enough for a household, not a flood


# --- reading -----------------------------------------------------------------------------------------


async def notice_in_scope(session: AsyncSession, staff: StaffPrincipal, notice_id: int) -> PublicityNotice:
    notice = await session.get(PublicityNotice, notice_id)
    if notice is None or not staff.covers_region(notice.region_code):
        raise PublicityError("not_found")  # another region's notice looks like none
    return notice


def view_of(notice: PublicityNotice, settings: Settings, own: set[int] | None = None) -> render.NoticeView:
    return render.notice_view(
        notice,
        public_url=settings.public_url,
        open_hours=settings.publicity_min_open_hours,
        insurer_name=settings.insurer_name,
        own=own,
    )


def notice_out(
    notice: PublicityNotice, settings: Settings, own: set[int] | None = None, open_objections: int = 0
) -> NoticeOut:
    view = view_of(notice, settings, own)
    return NoticeOut(
        id=view.id,
        number=notice.number,
        kind=notice.kind,
        status=notice.status,
        region_code=notice.region_code,
        region_name=notice.region_name,
        version=notice.version,
        columns=view.columns,
        rows=[RowOut(**row) for row in view.rows],
        own_rows=view.own_rows,
        checked_by_name=notice.checked_by_name,
        checked_at=notice.checked_at,
        stamp_document_id=notice.stamp_document_id,
        opened_at=notice.opened_at,
        closes_at=notice.closes_at,
        closed_at=notice.closed_at,
        open_hours=view.open_hours,
        page_url=view.page_url if notice.version else None,
        chat_url=view.chat_url if notice.version else None,
        open_objections=open_objections,
    )


async def list_notices(
    session: AsyncSession, staff: StaffPrincipal, status: str | None, limit: int, offset: int
) -> list[PublicityNotice]:
    query = select(PublicityNotice).order_by(col(PublicityNotice.id).desc())
    if status:
        query = query.where(col(PublicityNotice.status) == status)
    if not staff.is_national:
        query = query.where(or_(*(_under(scope) for scope in staff.region_codes)))
    return list((await session.exec(query.offset(offset).limit(limit))).all())


def _under(scope: str) -> Any:
    return col(PublicityNotice.region_code).startswith(significant_prefix(scope), autoescape=True)


# --- creating and checking -----------------------------------------------------------------------------


async def _publication_region(session: AsyncSession, raw: str) -> Region:
    try:
        code = canonical_code(raw)
    except MalformedCode as exc:
        raise PublicityError("notice_bad_region", region=raw) from exc
    region = await session.get(Region, code)
    if region is None or region.level not in (RegionLevel.TOWNSHIP, RegionLevel.VILLAGE):
        raise PublicityError("notice_bad_region", region=code)
    return region


async def create_notice(
    session: AsyncSession, staff: StaffPrincipal, body: NoticeCreate, *, settings: Settings, ip: str | None
) -> PublicityNotice:
    """A draft with its rows built by the kind's source (masked once, there)."""
    region = await _publication_region(session, body.region_code)
    if not staff.covers_region(region.code):
        raise PublicityError("outside_scope")
    locale = settings.default_locale
    query = sources.SourceQuery(
        kind=body.kind,
        region=region,
        locale=locale,
        policy_id=body.policy_id,
        collective_id=body.collective_id,
        claim_ids=tuple(body.claim_ids),
        since=body.since,
        until=body.until,
    )
    rows = await sources.build_rows(session, query)
    if not rows:
        raise PublicityError("notice_empty")
    notice = PublicityNotice(
        number=f"TMP{secrets.token_hex(8)}",
        kind=body.kind,
        region_code=region.code,
        region_name=region.name,
        locale=locale,
        source=body.model_dump(mode="json"),
        rows=rows,
        public_token=secrets.token_urlsafe(TOKEN_BYTES),
        created_by=staff.user_id,
    )
    session.add(notice)
    await session.flush()
    notice.number = business_number("PN", notice.id)
    record_audit(
        session=session,
        actor=staff,
        action="publicity.create",
        target_type="publicity_notice",
        target_id=notice.id or 0,
        detail={"kind": body.kind, "region": region.code, "rows": len(rows)},
        ip=ip,
    )
    await session.commit()
    return notice


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str


async def record_check(
    session: AsyncSession,
    staff: StaffPrincipal,
    notice_id: int,
    *,
    checked_by_name: str,
    checked_at: datetime | None,
    stamp: Upload,
    settings: Settings,
    ip: str | None,
) -> PublicityNotice:
    """The village committee checked and stamped the list (R-PUB-1): who, when, and the stamped list's
    photo. Only then may the notice open."""
    notice = await notice_in_scope(session, staff, notice_id)
    if notice.status != NoticeStatus.DRAFT:
        raise PublicityError("notice_bad_status", status=notice.status)
    image = await checked_image(stamp.data, max_pixels=settings.max_image_pixels)
    document = await store_document(
        session=session,
        kind="publicity_stamp",
        filename=stamp.filename or "stamp",
        content=stamp.data,
        content_type=image.content_type,
        uploaded_by_staff_id=staff.user_id,
    )
    now = utcnow()
    notice.checked_by_name = checked_by_name
    notice.checked_at = min(checked_at, now) if checked_at is not None else now
    notice.check_recorded_by = staff.user_id
    notice.stamp_document_id = document.id
    notice.status = NoticeStatus.CHECKED.value
    notice.updated_at = now
    record_audit(
        session=session,
        actor=staff,
        action="publicity.check",
        target_type="publicity_notice",
        target_id=notice.id or 0,
        detail={"checked_by": checked_by_name, "stamp_document": document.id},
        ip=ip,
    )
    await session.commit()
    return notice


# --- publishing ----------------------------------------------------------------------------------------


async def open_notice(
    session: AsyncSession, staff: StaffPrincipal, notice_id: int, *, settings: Settings, ip: str | None
) -> PublicityNotice:
    notice = await notice_in_scope(session, staff, notice_id)
    if notice.status != NoticeStatus.CHECKED:
        raise PublicityError("notice_bad_status", status=notice.status)
    await _publish(session, notice, settings=settings, actor=staff.username, note="")
    record_audit(
        session=session,
        actor=staff,
        action="publicity.open",
        target_type="publicity_notice",
        target_id=notice.id or 0,
        detail={"version": notice.version, "closes_at": _iso(notice.closes_at)},
        ip=ip,
    )
    await session.commit()
    return notice


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def _publish(
    session: AsyncSession, notice: PublicityNotice, *, settings: Settings, actor: str, note: str
) -> ArchiveRecord:
    """Open (or open again) with a full window from now, tell every household, archive what was shown."""
    now = utcnow()
    notice.version += 1
    notice.status = NoticeStatus.OPEN.value
    notice.opened_at = now
    notice.closes_at = now + timedelta(hours=settings.publicity_min_open_hours)
    notice.closed_at = None
    notice.updated_at = now
    await _list_persons(session, notice)
    view = view_of(notice, settings)
    page = render.page_html(view, notice.locale)
    pdf = await asyncio.to_thread(render.notice_pdf, view, notice.locale)
    recipients = await _reach(session, notice, settings)
    payload = {
        "number": notice.number,
        "kind": notice.kind,
        "villages": [{"code": notice.region_code, "name": notice.region_name}],
        "opened_at": _iso(notice.opened_at),
        "closes_at": _iso(notice.closes_at),
        "open_hours": settings.publicity_min_open_hours,
        "checked_by_name": notice.checked_by_name,
        "checked_at": _iso(notice.checked_at),
        "stamp_document_id": notice.stamp_document_id,
        "rows": notice.rows,
        "channels": sorted({r["channel"] for r in recipients if r["channel"] != "none"} | {"web", "board"}),
        "recipients": recipients,
        "page_url": view.page_url,
        "published_by": actor,
        "note": note,
        "archived_at": now.isoformat(),
    }
    return await archive.append(
        session,
        notice_id=notice.id or 0,
        version=notice.version,
        record_kind=RecordKind.PUBLICATION.value,
        payload=payload,
        html=page,
        pdf=pdf,
    )


async def _list_persons(session: AsyncSession, notice: PublicityNotice) -> None:
    """Rewrite who is on the notice (set-based: one DELETE, one multi-row INSERT)."""
    await session.execute(delete(NoticePerson).where(col(NoticePerson.notice_id) == notice.id))
    people = sorted({int(row["person_id"]) for row in notice.rows if row.get("person_id") is not None})
    if people:
        await session.execute(
            insert(NoticePerson), [{"notice_id": notice.id, "person_id": person} for person in people]
        )


async def _households(session: AsyncSession, notice: PublicityNotice, region: Region) -> set[int]:
    """Every household of the village we know: the persons on the notice and every insured of the
    village (R-PUB-1: the notice reaches the whole village, not only those listed)."""
    listed = {int(row["person_id"]) for row in notice.rows if row.get("person_id") is not None}
    insured = (
        await session.exec(
            select(Policy.person_id)
            .where(sources.in_region(region), col(Policy.person_id).is_not(None))
            .where(col(Policy.status) == "active")
            .distinct()
        )
    ).all()
    # The households of collective policies in force, by their own village (the organiser's policy
    # names no person).
    households = (
        await session.exec(
            select(PolicyHousehold.person_id)
            .join(CollectiveEnrollment, col(CollectiveEnrollment.id) == col(PolicyHousehold.collective_id))
            .join(Policy, col(Policy.id) == col(CollectiveEnrollment.policy_id))
            .where(col(Policy.status) == "active", household_in_region(region))
            .distinct()
        )
    ).all()
    return listed | {int(person) for person in insured if person is not None} | {int(p) for p in households}


def household_in_region(region: Region) -> ColumnElement[bool]:
    if region.level == RegionLevel.TOWNSHIP:
        return col(PolicyHousehold.village_code).startswith(
            region.code[: sources.TOWNSHIP_PREFIX], autoescape=True
        )
    return col(PolicyHousehold.village_code) == region.code


def _buttons(notice_id: int, locale: str, objections: bool) -> list[list[dict[str, str]]]:
    rows = [[{"text": label("publicity.view", locale), "callback_data": notice_button("view", notice_id)}]]
    if objections:
        rows.append(
            [{"text": label("publicity.object", locale), "callback_data": notice_button("object", notice_id)}]
        )
    return rows


def _batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Multi-row INSERTs of at most ``BATCH`` rows: a village of 10,000 households stays under the
    drivers' bound-parameter limits (SQLite 32,766, asyncpg 32,767)."""
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


async def _reach(session: AsyncSession, notice: PublicityNotice, settings: Settings) -> list[dict[str, Any]]:
    """Chat where a verified chat reaches the person, else a text with a link; set-based writes."""
    region = await session.get(Region, notice.region_code)
    assert region is not None
    people = sorted(await _households(session, notice, region))
    listed = {int(row["person_id"]) for row in notice.rows if row.get("person_id") is not None}
    chats = await reachable_identities(session, people)
    dedupe = f"notice-{notice.id}-v{notice.version}"
    chat_rows = []
    view = view_of(notice, settings)
    for person, identity in chats.items():
        chat_rows.append(
            {
                "channel": identity.channel,
                "address": identity.address,
                "identity_id": identity.id,
                "text": template("publicity/announce", identity.locale, n=view, own=person in listed),
                "buttons": _buttons(notice.id or 0, identity.locale, objections=True),
                "dedupe_key": dedupe,
                "priority": int(Priority.BULK),
            }
        )
    for batch in _batches(chat_rows):
        await enqueue_many(session=session, rows=batch)
    unreached = [person for person in people if person not in chats]
    found = (
        await session.exec(
            select(Person.id, Person.phone).where(
                col(Person.id).in_(unreached), col(Person.phone).is_not(None)
            )
        )
    ).all()
    phones = {int(person or 0): str(phone) for person, phone in found}
    locale = normalize_locale(notice.locale)
    kind = label(f"publicity.sms_kind_{notice.kind}", locale)
    texts = []
    for person, phone in phones.items():
        token = await create_link(
            session=session, days=settings.sms_link_days, person_id=person, target=f"notice:{notice.id}"
        )
        values = {"kind": kind, "token": token}
        texts.append(
            sms_row(phone=phone, key="publicity_notice", locale=locale, values=values, dedupe_key=dedupe)
        )
    for batch in _batches(texts):
        await enqueue_sms_rows(session=session, rows=batch)
    return [
        {
            "person_id": person,
            "channel": chats[person].channel if person in chats else ("sms" if person in phones else "none"),
        }
        for person in people
    ]


# --- corrections ---------------------------------------------------------------------------------------


def _corrected_rows(notice: PublicityNotice, correction: CorrectionIn) -> list[dict[str, Any]]:
    if correction.row_index >= len(notice.rows):
        raise PublicityError("correction_bad_row", row=correction.row_index)
    columns = set(sources.columns_of(notice.kind))
    for name in correction.fields:
        if name not in columns:
            raise PublicityError("correction_bad_field", field=name)
    rows = [dict(row) for row in notice.rows]
    old = rows[correction.row_index]
    merged = {**old["fields"], **correction.fields}
    rows[correction.row_index] = sources.published_row(notice.kind, old.get("person_id"), merged)
    return rows


async def _republish(
    session: AsyncSession,
    staff: StaffPrincipal,
    notice: PublicityNotice,
    correction: CorrectionIn,
    *,
    settings: Settings,
    ip: str | None,
    objection_id: int | None = None,
) -> None:
    if notice.status not in (NoticeStatus.OPEN, NoticeStatus.CLOSED):
        raise PublicityError("notice_bad_status", status=notice.status)
    notice.rows = _corrected_rows(notice, correction)
    await _publish(session, notice, settings=settings, actor=staff.username, note=correction.note)
    record_audit(
        session=session,
        actor=staff,
        action="publicity.correct",
        target_type="publicity_notice",
        target_id=notice.id or 0,
        detail={
            "version": notice.version,
            "row": correction.row_index,
            "fields": sorted(correction.fields),
            "objection": objection_id,
        },
        ip=ip,
    )


async def correct(
    session: AsyncSession,
    staff: StaffPrincipal,
    notice_id: int,
    correction: CorrectionIn,
    *,
    settings: Settings,
    ip: str | None,
) -> PublicityNotice:
    """Feedback found an error (on the board, by phone): correct the row and publish again."""
    notice = await notice_in_scope(session, staff, notice_id)
    await _republish(session, staff, notice, correction, settings=settings, ip=ip)
    await session.commit()
    return notice


# --- the notice-board photo (R-PUB-3: time and place) --------------------------------------------------


async def add_board_photo(
    session: AsyncSession,
    staff: StaffPrincipal,
    notice_id: int,
    photo: Upload,
    *,
    settings: Settings,
    ip: str | None,
) -> ArchiveRecord:
    notice = await notice_in_scope(session, staff, notice_id)
    if notice.version == 0:
        raise PublicityError("notice_bad_status", status=notice.status)
    image = await checked_image(photo.data, max_pixels=settings.max_image_pixels)
    facts = await asyncio.to_thread(photo_facts, photo.data)
    payload = {
        "content_type": image.content_type,
        "width": image.width,
        "height": image.height,
        "filename": photo.filename[:200],
        "taken_at": facts.taken_at,
        "gps": facts.gps,
        "uploaded_by": staff.username,
        "uploaded_at": utcnow().isoformat(),
    }
    record = await archive.append(
        session,
        notice_id=notice.id or 0,
        version=notice.version,
        record_kind=RecordKind.BOARD_PHOTO.value,
        payload=payload,
        photo=photo.data,
    )
    record_audit(
        session=session,
        actor=staff,
        action="publicity.board_photo",
        target_type="publicity_notice",
        target_id=notice.id or 0,
        detail={"record": record.id, "taken_at": facts.taken_at, "gps": facts.gps is not None},
        ip=ip,
    )
    await session.commit()
    return record


# --- closing (the scheduler) ---------------------------------------------------------------------------


async def close_due(session: AsyncSession, now: datetime | None = None) -> int:
    """Close every open notice whose window has passed, once: the UPDATE only takes a notice still open
    and still due, so a second runner (or a re-publication in between) changes nothing."""
    now = now or utcnow()
    due = (
        await session.exec(
            select(PublicityNotice.id)
            .where(col(PublicityNotice.status) == NoticeStatus.OPEN.value)
            .where(col(PublicityNotice.closes_at) <= now)
            .order_by(col(PublicityNotice.id))
        )
    ).all()
    closed = 0
    for notice_id in due:
        result = await session.execute(
            update(PublicityNotice)
            .where(col(PublicityNotice.id) == notice_id)
            .where(col(PublicityNotice.status) == NoticeStatus.OPEN.value)
            .where(col(PublicityNotice.closes_at) <= now)
            .values(status=NoticeStatus.CLOSED.value, closed_at=now, updated_at=now)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            continue
        notice = await session.get(PublicityNotice, notice_id, populate_existing=True)
        assert notice is not None
        waiting = await _open_objections(session, [notice.id or 0])
        await archive.append(
            session,
            notice_id=notice.id or 0,
            version=notice.version,
            record_kind=RecordKind.CLOSING.value,
            payload={
                "closed_at": now.isoformat(),
                "opened_at": _iso(notice.opened_at),
                "closes_at": _iso(notice.closes_at),
                "open_objections": waiting.get(notice.id or 0, 0),
            },
        )
        closed += 1
        await session.commit()
    return closed


async def _open_objections(session: AsyncSession, notice_ids: list[int]) -> dict[int, int]:
    if not notice_ids:
        return {}
    rows = (
        await session.exec(
            select(NoticeObjection.notice_id, func.count())
            .where(col(NoticeObjection.notice_id).in_(notice_ids))
            .where(col(NoticeObjection.status) == ObjectionStatus.OPEN.value)
            .group_by(col(NoticeObjection.notice_id))
        )
    ).all()
    return {int(notice_id): int(count) for notice_id, count in rows}


async def open_objection_counts(session: AsyncSession, notices: Sequence[PublicityNotice]) -> dict[int, int]:
    return await _open_objections(session, [n.id for n in notices if n.id is not None])


# --- the farmer's side (the bot) -----------------------------------------------------------------------


async def _own(session: AsyncSession, principal: BotPrincipal) -> tuple[set[int], set[str]]:
    """The persons whose rows are this chat's (its verified person, and the insured of policies the chat
    enrolled itself: ``BotPrincipal.sees``) and the regions of those policies."""
    seen = col(Policy.identity_id) == principal.identity_id
    if principal.person_view is not None:
        seen = or_(seen, col(Policy.person_id) == principal.person_view)
    policies = (await session.exec(select(Policy.person_id, Policy.region_code).where(seen))).all()
    people = {int(person) for person, _ in policies if person is not None}
    regions = {region for _, region in policies}
    if principal.person_view is not None:
        people.add(principal.person_view)
        # A household of a collective list lives in its own village, whatever the organiser's area.
        villages = await session.exec(
            select(PolicyHousehold.village_code).where(PolicyHousehold.person_id == principal.person_view)
        )
        regions |= set(villages.all())
    return people, regions


def _publication_codes(regions: set[str]) -> set[str]:
    """The notice codes that cover a policy's region: the region itself and its township."""
    codes = set(regions)
    codes |= {region[: sources.TOWNSHIP_PREFIX] + "000" for region in regions if len(region) == 12}
    return codes


async def notices_for(session: AsyncSession, principal: BotPrincipal, settings: Settings) -> list[NoticeOut]:
    """The open notices of the chat's villages, and any open notice its household is on."""
    people, regions = await _own(session, principal)
    conditions = []
    if regions:
        conditions.append(col(PublicityNotice.region_code).in_(sorted(_publication_codes(regions))))
    if people:
        listed = select(NoticePerson.notice_id).where(col(NoticePerson.person_id).in_(sorted(people)))
        conditions.append(col(PublicityNotice.id).in_(listed))
    if not conditions:
        return []
    notices = (
        await session.exec(
            select(PublicityNotice)
            .where(col(PublicityNotice.status) == NoticeStatus.OPEN.value, or_(*conditions))
            .order_by(col(PublicityNotice.closes_at))
            .limit(20)
        )
    ).all()
    return [notice_out(notice, settings, people) for notice in notices]


async def published(session: AsyncSession, notice_id: int) -> PublicityNotice:
    """A notice that was ever published: public to anyone who has its id or link."""
    notice = await session.get(PublicityNotice, notice_id)
    if notice is None or notice.version == 0:
        raise PublicityError("not_found")
    return notice


async def by_token(session: AsyncSession, token: str) -> PublicityNotice:
    if not token or len(token) > 32:
        raise PublicityError("not_found")
    notice = (
        await session.exec(select(PublicityNotice).where(col(PublicityNotice.public_token) == token))
    ).first()
    if notice is None or notice.version == 0:
        raise PublicityError("not_found")
    return notice


async def notice_for(
    session: AsyncSession, principal: BotPrincipal, notice: PublicityNotice, settings: Settings
) -> NoticeOut:
    people, _ = await _own(session, principal)
    return notice_out(notice, settings, people)


OBJECTION_PHOTO = "publicity_objection"


async def store_objection_photo(
    session: AsyncSession, principal: BotPrincipal, photo: Upload, *, settings: Settings
) -> int:
    image = await checked_image(photo.data, max_pixels=settings.max_image_pixels)
    document = await store_document(
        session=session,
        kind=OBJECTION_PHOTO,
        filename=f"objection-{principal.identity_id}.{image.format.lower()}",
        content=photo.data,
        content_type=image.content_type,
        person_id=principal.person_id,
    )
    await session.commit()
    return document.id or 0


async def _objection_photo(
    session: AsyncSession, principal: BotPrincipal, document_id: int | None
) -> int | None:
    """The chat's own objection photo (sent through ``store_objection_photo``), or a refusal."""
    if document_id is None:
        return None
    document = await session.get(Document, document_id)
    if document is None or document.kind != OBJECTION_PHOTO or document.person_id != principal.person_id:
        raise PublicityError("objection_photo_unknown")
    return document_id


async def raise_objection(
    session: AsyncSession,
    principal: BotPrincipal,
    notice_id: int,
    reason: str,
    *,
    settings: Settings,
    photo_document_id: int | None = None,
) -> tuple[NoticeObjection, PublicityNotice]:
    notice = await published(session, notice_id)
    if notice.status != NoticeStatus.OPEN:
        raise PublicityError("notice_not_open")
    text = " ".join(reason.split())
    if len(text) < MIN_REASON:
        raise PublicityError("objection_reason_short")
    waiting = (
        await session.exec(
            select(func.count())
            .select_from(NoticeObjection)
            .where(col(NoticeObjection.notice_id) == notice.id)
            .where(col(NoticeObjection.identity_id) == principal.identity_id)
            .where(col(NoticeObjection.status) == ObjectionStatus.OPEN.value)
        )
    ).one()
    if waiting >= MAX_OPEN_OBJECTIONS:
        raise PublicityError("objection_too_many", count=MAX_OPEN_OBJECTIONS)
    people, _ = await _own(session, principal)
    own_rows = [i for i, row in enumerate(notice.rows) if row.get("person_id") in people]
    now = utcnow()
    objection = NoticeObjection(
        notice_id=notice.id or 0,
        version=notice.version,
        identity_id=principal.identity_id,
        person_id=principal.person_view or principal.person_id,
        row_index=own_rows[0] if own_rows else None,
        reason=text,
        photo_document_id=await _objection_photo(session, principal, photo_document_id),
        created_at=now,
        due_at=now + timedelta(days=settings.publicity_objection_due_days),
    )
    session.add(objection)
    await session.flush()
    await _alert_staff(session, objection, notice, settings)
    await session.commit()
    return objection, notice


async def _alert_staff(
    session: AsyncSession, objection: NoticeObjection, notice: PublicityNotice, settings: Settings
) -> None:
    """The region's staff see the objection among their alerts (and in the staff chat when configured)."""
    locale = settings.default_locale
    context = {"objection": objection, "notice": notice}
    await alert_staff(
        session,
        settings,
        kind="publicity_objection",
        region_code=notice.region_code,
        title=template("publicity/staff_alert_title", locale, ext="txt", **context),
        body=template("publicity/staff_alert_body", locale, ext="txt", **context),
        dedupe_key=f"publicity-objection-{objection.id}",
    )


# --- the staff queue -----------------------------------------------------------------------------------


def objection_out(objection: NoticeObjection, notice: PublicityNotice, now: datetime) -> ObjectionOut:
    return ObjectionOut(
        id=objection.id or 0,
        notice_id=objection.notice_id,
        notice_number=notice.number,
        version=objection.version,
        row_index=objection.row_index,
        reason=objection.reason,
        has_photo=objection.photo_document_id is not None,
        photo_document_id=objection.photo_document_id,
        status=objection.status,
        created_at=objection.created_at,
        due_at=objection.due_at,
        overdue=objection.status == ObjectionStatus.OPEN and objection.due_at <= now,
        answer=objection.answer,
        confirmed_error=objection.confirmed_error,
        answered_at=objection.answered_at,
    )


async def objection_queue(
    session: AsyncSession, staff: StaffPrincipal, status: str | None, limit: int, offset: int
) -> list[ObjectionOut]:
    """Objections of the staff member's region, the most urgent first."""
    query = (
        select(NoticeObjection, PublicityNotice)
        .join(PublicityNotice, col(PublicityNotice.id) == col(NoticeObjection.notice_id))
        .order_by(col(NoticeObjection.due_at), col(NoticeObjection.id))
    )
    if status:
        query = query.where(col(NoticeObjection.status) == status)
    if not staff.is_national:
        query = query.where(or_(*(_under(scope) for scope in staff.region_codes)))
    now = utcnow()
    found = (await session.exec(query.offset(offset).limit(limit))).all()
    return [objection_out(objection, notice, now) for objection, notice in found]


async def _objection_in_scope(
    session: AsyncSession, staff: StaffPrincipal, objection_id: int
) -> tuple[NoticeObjection, PublicityNotice]:
    objection = await session.get(NoticeObjection, objection_id)
    notice = await session.get(PublicityNotice, objection.notice_id) if objection is not None else None
    if objection is None or notice is None or not staff.covers_region(notice.region_code):
        raise PublicityError("not_found")
    return objection, notice


async def objection_photo(session: AsyncSession, staff: StaffPrincipal, objection_id: int) -> Document:
    objection, _ = await _objection_in_scope(session, staff, objection_id)
    document = (
        await session.get(Document, objection.photo_document_id) if objection.photo_document_id else None
    )
    if document is None:
        raise PublicityError("objection_no_photo")
    return document


async def answer_objection(
    session: AsyncSession,
    staff: StaffPrincipal,
    objection_id: int,
    body: ObjectionAnswer,
    *,
    settings: Settings,
    ip: str | None,
) -> tuple[NoticeObjection, PublicityNotice]:
    """Answer in the objector's chat (R-PUB-1: the result is told to the objector); a confirmed error
    with its correction publishes the notice again with a new 72-hour window."""
    objection, notice = await _objection_in_scope(session, staff, objection_id)
    if objection.status != ObjectionStatus.OPEN:
        raise PublicityError("objection_answered")
    if body.confirmed_error:
        if body.correction is None:
            raise PublicityError("correction_needs_row")
        await _republish(
            session, staff, notice, body.correction, settings=settings, ip=ip, objection_id=objection.id
        )
    now = utcnow()
    objection.status = ObjectionStatus.ANSWERED.value
    objection.answer = body.answer
    objection.confirmed_error = body.confirmed_error
    objection.answered_by = staff.user_id
    objection.answered_at = now
    record_audit(
        session=session,
        actor=staff,
        action="publicity.answer",
        target_type="publicity_objection",
        target_id=objection.id or 0,
        detail={"notice": notice.id, "confirmed_error": body.confirmed_error},
        ip=ip,
    )
    await _tell_objector(session, objection, notice, settings)
    await session.commit()
    return objection, notice


async def _tell_objector(
    session: AsyncSession, objection: NoticeObjection, notice: PublicityNotice, settings: Settings
) -> None:
    """The chat that objected; gone, the person's chat that reaches them; none, a text with a link."""
    identity = await session.get(ChatIdentity, objection.identity_id)
    if identity is not None and identity.stopped_at is not None:
        identity = None
    if identity is None and objection.person_id is not None:
        identity = await reachable_identity(session=session, person_id=objection.person_id)
    dedupe = f"objection-{objection.id}-answer"
    if identity is not None:
        text = template(
            "publicity/objection_answer",
            identity.locale,
            notice=view_of(notice, settings),
            answer=objection.answer or "",
            corrected=objection.confirmed_error,
        )
        await enqueue_for_identity(
            session=session,
            identity=identity,
            text=text,
            dedupe_key=dedupe,
            buttons=_buttons(notice.id or 0, identity.locale, objections=False),
        )
        return
    if objection.person_id is not None:
        locale = normalize_locale(notice.locale)
        await text_person(
            session=session,
            link_days=settings.sms_link_days,
            person_id=objection.person_id,
            key="publicity_answer",
            values={"kind": label(f"publicity.sms_kind_{notice.kind}", locale)},
            target=f"notice:{notice.id}",
            dedupe_key=dedupe,
            locale=locale,
        )

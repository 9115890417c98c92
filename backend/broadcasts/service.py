"""Broadcast rules: compose, count, four eyes, start (resolve once, enqueue set-based), pause, resume,
cancel, resend the failed, progress and acknowledgements.

The public interface other domains call (keyword-only, a session first; each commits its own work):

- ``create_broadcast(session, kind=, content=, audience=, actor=, source_key=, send_at=, ack_button=)``: a
  draft (idempotent per ``source_key``);
- ``send_system_broadcast(session, kind=, content=, audience=, source_key=, ack_button=, claim_link=)``:
  no staff; resolves and enqueues at once (warnings, all-clear, green channel, branch closure);
  idempotent per ``source_key``;
- ``submit_broadcast``, ``approve_broadcast``, ``start_broadcast``, ``pause_broadcast``,
  ``resume_broadcast``, ``cancel_broadcast``, ``resend_failed`` (``session, *, broadcast_id, actor``).

Statuses: draft -> (submit) awaiting_approval | approved -> (start, or the scheduler at send_at) sending
-> paused <-> sending -> done; cancelled from any but done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.broadcasts import fanout, geo
from backend.broadcasts.errors import BroadcastError
from backend.broadcasts.models import (
    Broadcast,
    BroadcastKind,
    BroadcastRecipient,
    BroadcastStatus,
    BroadcastVariant,
    RecipientStatus,
)
from backend.broadcasts.schemas import (
    AudienceSpec,
    BroadcastContent,
    BroadcastOut,
    ButtonSpec,
    PreviewText,
    ProgressOut,
    RegionAck,
)
from backend.db import utcnow
from backend.outbox.models import OutboxMessage, OutboxStatus
from backend.security import BotPrincipal, StaffPrincipal
from backend.settings import Settings
from backend.staff.service import record_audit
from messages import label
from messages.sms import SmsTemplateError

KINDS = frozenset(kind.value for kind in BroadcastKind)
# Work done inside "send" before answering; the scheduler's fan-out job carries on with the rest.
INLINE_SECONDS = 1.0
LEASE_SECONDS = 300  # longer than any pass of two ranges
PARALLEL = 2  # ranges side by side on PostgreSQL (the database does the work; two cores here)
PENDING = (OutboxStatus.QUEUED.value, OutboxStatus.SENDING.value, OutboxStatus.HELD.value)


def _setting(settings: Settings | None, name: str) -> Any:
    if settings is not None:
        return getattr(settings, name)
    return Settings.model_fields[name].default


# --- composing -------------------------------------------------------------------------------------------


def _check_content(content: BroadcastContent, kind: str, ack: bool) -> None:
    """Render every locale's common text, each section and the SMS once now: a bad template key or a
    parameter the approved SMS refuses is a clear refusal at compose time, not a failed fan-out."""
    sections = content.section_keys()
    every = (1 << len(sections)) - 1
    for locale in content.locales:
        try:
            fanout.chat_text(content, locale, every)
            fanout.chat_buttons(content, locale, 0, ack)
            fanout.sms_variant(content, kind, locale)
        except SmsTemplateError as error:
            raise BroadcastError("broadcast_sms_invalid", reason=str(error)[:200]) from None
        except Exception as error:  # a missing template or parameter: say which
            raise BroadcastError(
                "broadcast_content_invalid", reason=f"{type(error).__name__}: {error}"[:200]
            ) from None


def _check_audience(audience: AudienceSpec) -> None:
    if audience.is_empty:
        raise BroadcastError("audience_empty")
    if audience.geometry is not None:
        geo.area_of(audience.geometry)


def _with_claim_link(content: BroadcastContent, claim_link: dict[str, Any] | None) -> BroadcastContent:
    """The optional "report a loss" button: ``{"callback_data": ..., "label": {locale: text}}``."""
    if not claim_link:
        return content
    labels = claim_link.get("label") or {loc: label("broadcasts.report_loss", loc) for loc in ("zh-CN", "en")}
    button = ButtonSpec(
        label=labels, callback_data=claim_link.get("callback_data"), url=claim_link.get("url")
    )
    return content.model_copy(update={"buttons": [*content.buttons, [button]]})


async def by_source(session: AsyncSession, source_key: str) -> Broadcast | None:
    return (await session.exec(select(Broadcast).where(col(Broadcast.source_key) == source_key))).first()


async def create_broadcast(
    session: AsyncSession,
    *,
    kind: str,
    content: BroadcastContent,
    audience: AudienceSpec,
    actor: StaffPrincipal | None,
    source_key: str | None = None,
    send_at: datetime | None = None,
    ack_button: bool = False,
    claim_link: dict[str, Any] | None = None,
    ip: str | None = None,
) -> Broadcast:
    """A draft. The same ``source_key`` again answers the broadcast it made (one source, one broadcast)."""
    if kind not in KINDS:
        raise BroadcastError("broadcast_kind", kind=kind)
    if source_key is not None and (existing := await by_source(session, source_key)) is not None:
        return existing
    content = _with_claim_link(content, claim_link)
    _check_content(content, kind, ack_button)
    _check_audience(audience)
    check_named_regions(actor, audience)
    broadcast = Broadcast(
        kind=kind,
        content=content.model_dump(mode="json", exclude_none=True),
        audience=audience.model_dump(mode="json"),
        scope_regions=list(actor.region_codes) if actor else [],
        ack_button=ack_button,
        claim_link=claim_link,
        source_key=source_key,
        send_at=send_at,
        created_by=actor.user_id if actor else None,
    )
    session.add(broadcast)
    await session.flush()
    record_audit(
        session=session,
        actor=actor,
        action="broadcast.create",
        target_type="broadcast",
        target_id=broadcast.id or 0,
        detail={"kind": kind, "source_key": source_key},
        ip=ip,
    )
    await session.commit()
    await session.refresh(broadcast)
    return broadcast


async def send_system_broadcast(
    session: AsyncSession,
    *,
    kind: str,
    content: BroadcastContent,
    audience: AudienceSpec,
    source_key: str,
    ack_button: bool = False,
    claim_link: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> Broadcast:
    """No staff involved: create, approve and start at once. Called twice with the same ``source_key``,
    it answers the first broadcast and sends nothing more."""
    existing = await by_source(session, source_key)
    if existing is not None:
        return existing
    broadcast = await create_broadcast(
        session,
        kind=kind,
        content=content,
        audience=audience,
        actor=None,
        source_key=source_key,
        ack_button=ack_button,
        claim_link=claim_link,
    )
    broadcast.status = BroadcastStatus.APPROVED.value
    broadcast.approved_at = utcnow()
    await session.commit()
    return await start_broadcast(session, broadcast_id=broadcast.id or 0, actor=None, settings=settings)


# --- finding, scope --------------------------------------------------------------------------------------


def _covers(actor: StaffPrincipal | None, broadcast: Broadcast) -> bool:
    """Staff act on a broadcast whose audience scope lies inside theirs (national staff on any)."""
    if actor is None or actor.is_national:
        return True
    if not broadcast.scope_regions:
        return False
    return all(actor.covers_region(code) for code in broadcast.scope_regions)


async def get_broadcast(
    session: AsyncSession, *, broadcast_id: int, actor: StaffPrincipal | None
) -> Broadcast:
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise BroadcastError("not_found")
    if not _covers(actor, broadcast):  # another region's broadcast does not exist for them
        raise BroadcastError("not_found")
    return broadcast


def check_named_regions(actor: StaffPrincipal | None, audience: AudienceSpec) -> None:
    """Staff name only regions inside their own scope; an audience naming none is clipped to it."""
    if actor is None:
        return
    for code in audience.region_codes:
        if not actor.covers_region(code.ljust(12, "0")):
            raise BroadcastError("outside_scope", region=code)


async def list_broadcasts(
    session: AsyncSession, *, actor: StaffPrincipal, status: str | None, limit: int, offset: int
) -> list[Broadcast]:
    query = select(Broadcast).order_by(col(Broadcast.id).desc())
    if status:
        query = query.where(col(Broadcast.status) == status)
    rows = list((await session.exec(query)).all())
    return [b for b in rows if _covers(actor, b)][offset : offset + limit]


def _expect(broadcast: Broadcast, *statuses: BroadcastStatus) -> None:
    if broadcast.status not in {s.value for s in statuses}:
        raise BroadcastError("broadcast_status", status=broadcast.status)


def _audit(
    session: AsyncSession, actor: StaffPrincipal | None, action: str, broadcast: Broadcast, **detail: Any
) -> None:
    record_audit(
        session=session,
        actor=actor,
        action=f"broadcast.{action}",
        target_type="broadcast",
        target_id=broadcast.id or 0,
        detail=detail or None,
        ip=detail.pop("ip", None),
    )


# --- counting, preview -----------------------------------------------------------------------------------


async def targeting(
    session: AsyncSession,
    broadcast_or_spec: Broadcast | AudienceSpec,
    *,
    kind: str = "",
    content: BroadcastContent | None = None,
    scope: Sequence[str] = (),
    stored_geo: bool = False,
) -> fanout.Targeting:
    """The audience as SQL needs it; for a geometry the GPS matches are computed here (``stored_geo``:
    they were stored for this broadcast at its start)."""
    if isinstance(broadcast_or_spec, Broadcast):
        spec = AudienceSpec.model_validate(broadcast_or_spec.audience)
        content = BroadcastContent.model_validate(broadcast_or_spec.content)
        kind, scope, bid = (
            broadcast_or_spec.kind,
            tuple(broadcast_or_spec.scope_regions),
            broadcast_or_spec.id or 0,
        )
    else:
        spec, bid = broadcast_or_spec, 0
    sections = content.section_keys() if content else []
    codes = await fanout.product_codes_for(session, [*spec.subject_types, *sections])
    t = fanout.Targeting(
        spec=spec,
        kind=kind,
        subject_codes=tuple(sorted({c for key in spec.subject_types for c in codes[key]})),
        section_codes=tuple(codes[key] for key in sections),
        scope=tuple(scope),
        broadcast_id=bid,
        now=utcnow(),
    )
    if spec.geometry is None:
        return t
    area = geo.area_of(spec.geometry)
    from dataclasses import replace

    t = replace(t, townships=await geo.townships_meeting(session, area))
    if stored_geo:
        return replace(t, geo_broadcast_id=bid)
    return replace(t, geo_people=await geo.matching_people(session, t, area))


async def audience_size(
    session: AsyncSession, *, audience: AudienceSpec, actor: StaffPrincipal | None
) -> int:
    """How many people the audience reaches (each once), clipped to the staff member's regions; writes nothing."""
    _check_audience(audience)
    check_named_regions(actor, audience)
    t = await targeting(session, audience, scope=actor.region_codes if actor else ())
    return await fanout.count_people(session, t)


def preview(
    *,
    kind: str,
    content: BroadcastContent,
    subjects: Sequence[str],
    ack_button: bool,
    section_matches: dict[str, bool],
) -> list[PreviewText]:
    """The message a sample recipient who insures ``subjects`` reads, in both languages, chat and SMS."""
    _check_content(content, kind, ack_button)
    keys = content.section_keys()
    variant = sum(1 << i for i, key in enumerate(keys) if section_matches.get(key))
    texts = []
    for locale in ("zh-CN", "en"):
        sms = fanout.sms_variant(content, kind, locale, token="AbCdEf1234")
        texts.append(
            PreviewText(
                locale=locale,
                chat=fanout.chat_text(content, locale, variant),
                sms=sms["text"],
                buttons=fanout.chat_buttons(content, locale, 0, ack_button),
            )
        )
    return texts


async def preview_for(
    session: AsyncSession, *, kind: str, content: BroadcastContent, subjects: Sequence[str], ack_button: bool
) -> list[PreviewText]:
    codes = await fanout.product_codes_for(session, content.section_keys())
    matches = {key: key in subjects or bool(set(found) & set(subjects)) for key, found in codes.items()}
    return preview(
        kind=kind, content=content, subjects=subjects, ack_button=ack_button, section_matches=matches
    )


# --- four eyes -------------------------------------------------------------------------------------------


async def submit_broadcast(
    session: AsyncSession,
    *,
    broadcast_id: int,
    actor: StaffPrincipal | None,
    settings: Settings | None = None,
    ip: str | None = None,
) -> Broadcast:
    """Count the audience; above ``TIANBAO_BROADCAST_APPROVAL_THRESHOLD`` people it waits for a second
    staff member's approval, otherwise it is ready to send."""
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    _expect(broadcast, BroadcastStatus.DRAFT)
    t = await targeting(session, broadcast)
    broadcast.audience_size = await fanout.count_people(session, t)
    threshold = int(_setting(settings, "broadcast_approval_threshold"))
    if broadcast.audience_size > threshold:
        broadcast.status = BroadcastStatus.AWAITING_APPROVAL.value
    else:
        broadcast.status, broadcast.approved_at = BroadcastStatus.APPROVED.value, utcnow()
    broadcast.updated_at = utcnow()
    _audit(
        session, actor, "submit", broadcast, audience_size=broadcast.audience_size, threshold=threshold, ip=ip
    )
    await session.commit()
    await session.refresh(broadcast)
    return broadcast


async def approve_broadcast(
    session: AsyncSession, *, broadcast_id: int, actor: StaffPrincipal | None, ip: str | None = None
) -> Broadcast:
    """The second pair of eyes: another staff member than the creator, whose scope covers the audience."""
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    _expect(broadcast, BroadcastStatus.AWAITING_APPROVAL)
    if actor is None or actor.user_id == broadcast.created_by:
        raise BroadcastError("approver_is_creator")
    broadcast.status = BroadcastStatus.APPROVED.value
    broadcast.approved_by, broadcast.approved_at, broadcast.updated_at = actor.user_id, utcnow(), utcnow()
    _audit(session, actor, "approve", broadcast, ip=ip)
    await session.commit()
    await session.refresh(broadcast)
    return broadcast


async def schedule_broadcast(
    session: AsyncSession,
    *,
    broadcast_id: int,
    actor: StaffPrincipal | None,
    send_at: datetime,
    ip: str | None = None,
) -> Broadcast:
    """Send later: the scheduler starts it at ``send_at``."""
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    _expect(broadcast, BroadcastStatus.APPROVED)
    broadcast.send_at, broadcast.updated_at = send_at, utcnow()
    _audit(session, actor, "schedule", broadcast, send_at=send_at.isoformat(), ip=ip)
    await session.commit()
    await session.refresh(broadcast)
    return broadcast


# --- sending ---------------------------------------------------------------------------------------------


async def start_broadcast(
    session: AsyncSession,
    *,
    broadcast_id: int,
    actor: StaffPrincipal | None,
    settings: Settings | None = None,
    ip: str | None = None,
) -> Broadcast:
    """Resolve and enqueue now: the first range of people is committed at once (its messages claimable
    within a second), more ranges while ``INLINE_SECONDS`` last, the rest by the ``broadcast-fanout`` job."""
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    _expect(broadcast, BroadcastStatus.APPROVED)
    if broadcast.audience.get("geometry") is not None:
        t = await targeting(session, broadcast)
        await geo.store_matches(session, broadcast.id or 0, t.geo_people)
    broadcast.status, broadcast.started_at = BroadcastStatus.SENDING.value, utcnow()
    broadcast.updated_at = utcnow()
    _audit(session, actor, "start", broadcast, ip=ip)
    await session.commit()
    await continue_fan_out(session, broadcast, settings=settings, budget_seconds=INLINE_SECONDS)
    await session.refresh(broadcast)
    return broadcast


async def continue_fan_out(
    session: AsyncSession,
    broadcast: Broadcast,
    *,
    settings: Settings | None = None,
    budget_seconds: float | None = None,
    chunk: int | None = None,
) -> int:
    """Resolve the next ranges of people of a sending broadcast until every person is done or the time
    budget is spent, under the broadcast's fan-out lease (another runner holding it: nothing to do here).
    On PostgreSQL ``PARALLEL`` ranges run side by side on their own connections (each its own
    transaction), then the cursor moves past them; SQLite has one writer, so one range at a time.
    Returns the outbox rows written."""
    if not await _take_lease(session, broadcast):
        return 0
    try:
        return await _passes(
            session, broadcast, settings=settings, budget_seconds=budget_seconds, chunk=chunk
        )
    finally:
        await session.execute(
            update(Broadcast).where(col(Broadcast.id) == broadcast.id).values(fanout_lease_until=None)
        )
        await session.commit()
        await session.refresh(broadcast)


async def _take_lease(session: AsyncSession, broadcast: Broadcast) -> bool:
    now = utcnow()
    free = col(Broadcast.fanout_lease_until).is_(None) | (col(Broadcast.fanout_lease_until) < now)
    result = await session.execute(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast.id, free)
        .values(fanout_lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )
    await session.commit()
    await session.refresh(broadcast)  # the cursor as the last runner left it
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _passes(
    session: AsyncSession,
    broadcast: Broadcast,
    *,
    settings: Settings | None,
    budget_seconds: float | None,
    chunk: int | None,
) -> int:
    t = await targeting(session, broadcast, stored_geo=True)
    top = await fanout.highest_person_id(session)
    link_days = int(_setting(settings, "sms_link_days"))
    size = chunk or fanout.CHUNK
    lanes = PARALLEL if session.get_bind().dialect.name == "postgresql" else 1
    started, written, per_id = time.monotonic(), 0, 0.0
    while broadcast.status == BroadcastStatus.SENDING.value and broadcast.resolved_at is None:
        lo = broadcast.resolved_through + 1
        if lo > top:
            broadcast.resolved_at = utcnow()
            session.add(broadcast)
            await session.commit()
            break
        if broadcast.resolved_through == 0:  # the first range small: its messages go at once
            ranges = [(lo, min(lo + fanout.FIRST_CHUNK - 1, top))]
        else:
            ranges = [(a, min(a + size - 1, top)) for a in range(lo, top + 1, size)][:lanes]
        # Within a budget, a pass starts only when the last one's pace says it ends in time: "send" then
        # answers after the first small range of a big audience, and the job does the rest.
        ids = (ranges[-1][1] - lo + 1) / len(ranges)
        if (
            budget_seconds is not None
            and written
            and time.monotonic() - started + per_id * ids > budget_seconds
        ):
            break
        pass_started = time.monotonic()
        if len(ranges) == 1:
            written += await fanout.fan_out_range(session, broadcast, t, *ranges[0], link_days=link_days)
        else:
            written += sum(
                await asyncio.gather(*(_range_apart(session, broadcast, t, r, link_days) for r in ranges))
            )
        await fanout.advance(session, broadcast, lo, ranges[-1][1])
        broadcast.fanout_lease_until = utcnow() + timedelta(seconds=LEASE_SECONDS)
        await session.commit()
        per_id = (time.monotonic() - pass_started) / ids
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            break
    return written


async def _range_apart(
    session: AsyncSession, broadcast: Broadcast, t: fanout.Targeting, bounds: tuple[int, int], link_days: int
) -> int:
    """One range in a session of its own (its own connection and transaction)."""
    async with AsyncSession(session.bind, expire_on_commit=False) as own:
        written = await fanout.fan_out_range(own, broadcast, t, *bounds, link_days=link_days)
        await own.commit()
        return written


async def pause_broadcast(
    session: AsyncSession, *, broadcast_id: int, actor: StaffPrincipal | None, ip: str | None = None
) -> Broadcast:
    """Hold its queued outbox rows and those waiting for a retry (status ``held``: not claimable, and the
    housekeeping's re-queue leaves them); other messages are untouched. Rows a worker holds finish."""
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    _expect(broadcast, BroadcastStatus.SENDING)
    retrying = (col(OutboxMessage.status) == OutboxStatus.FAILED.value) & col(
        OutboxMessage.next_attempt_at
    ).is_not(None)
    result = await session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.broadcast_id) == broadcast.id,
            (col(OutboxMessage.status) == OutboxStatus.QUEUED.value) | retrying,
        )
        .values(status=OutboxStatus.HELD.value)
    )
    broadcast.status, broadcast.paused_at, broadcast.updated_at = (
        BroadcastStatus.PAUSED.value,
        utcnow(),
        utcnow(),
    )
    _audit(session, actor, "pause", broadcast, held=int(result.rowcount or 0), ip=ip)  # type: ignore[attr-defined]
    await session.commit()
    await session.refresh(broadcast)
    return broadcast


async def resume_broadcast(
    session: AsyncSession,
    *,
    broadcast_id: int,
    actor: StaffPrincipal | None,
    settings: Settings | None = None,
    ip: str | None = None,
) -> Broadcast:
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    _expect(broadcast, BroadcastStatus.PAUSED)
    result = await session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.broadcast_id) == broadcast.id,
            col(OutboxMessage.status) == OutboxStatus.HELD.value,
        )
        .values(status=OutboxStatus.QUEUED.value, next_attempt_at=utcnow())
    )
    broadcast.status, broadcast.paused_at, broadcast.updated_at = (
        BroadcastStatus.SENDING.value,
        None,
        utcnow(),
    )
    _audit(session, actor, "resume", broadcast, released=int(result.rowcount or 0), ip=ip)  # type: ignore[attr-defined]
    await session.commit()
    await continue_fan_out(session, broadcast, settings=settings, budget_seconds=INLINE_SECONDS)
    await session.refresh(broadcast)
    return broadcast


async def cancel_broadcast(
    session: AsyncSession, *, broadcast_id: int, actor: StaffPrincipal | None, ip: str | None = None
) -> Broadcast:
    """Stop for good: its queued, held and retry-waiting outbox rows are dropped; sent ones stay."""
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    if broadcast.status in (BroadcastStatus.DONE.value, BroadcastStatus.CANCELLED.value):
        raise BroadcastError("broadcast_status", status=broadcast.status)
    waiting = (col(OutboxMessage.status) == OutboxStatus.FAILED.value) & col(
        OutboxMessage.next_attempt_at
    ).is_not(None)
    result = await session.execute(
        delete(OutboxMessage).where(
            col(OutboxMessage.broadcast_id) == broadcast.id,
            col(OutboxMessage.status).in_([OutboxStatus.QUEUED.value, OutboxStatus.HELD.value]) | waiting,
        )
    )
    now = utcnow()
    broadcast.status, broadcast.cancelled_at, broadcast.updated_at = BroadcastStatus.CANCELLED.value, now, now
    _audit(session, actor, "cancel", broadcast, dropped=int(result.rowcount or 0), ip=ip)  # type: ignore[attr-defined]
    await session.commit()
    await session.refresh(broadcast)
    return broadcast


async def resend_failed(
    session: AsyncSession, *, broadcast_id: int, actor: StaffPrincipal | None, ip: str | None = None
) -> int:
    """Queue again the messages that failed for good (retries spent); the broadcast is sending again."""
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    _expect(broadcast, BroadcastStatus.SENDING, BroadcastStatus.DONE)
    result = await session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.broadcast_id) == broadcast.id,
            col(OutboxMessage.status) == OutboxStatus.FAILED.value,
            col(OutboxMessage.next_attempt_at).is_(None),
        )
        .values(status=OutboxStatus.QUEUED.value, next_attempt_at=utcnow(), attempts=0, last_error=None)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        broadcast.status, broadcast.finished_at = BroadcastStatus.SENDING.value, None
    broadcast.updated_at = utcnow()
    _audit(session, actor, "resend_failed", broadcast, requeued=count, ip=ip)
    await session.commit()
    return count


# --- the scheduler's side --------------------------------------------------------------------------------


async def start_due(
    session: AsyncSession, *, settings: Settings | None = None, now: datetime | None = None
) -> int:
    """Approved broadcasts whose ``send_at`` has come."""
    now = now or utcnow()
    due = (
        await session.exec(
            select(Broadcast.id).where(
                col(Broadcast.status) == BroadcastStatus.APPROVED.value,
                col(Broadcast.send_at).is_not(None),
                col(Broadcast.send_at) <= now,
            )
        )
    ).all()
    for broadcast_id in due:
        await start_broadcast(session, broadcast_id=int(broadcast_id or 0), actor=None, settings=settings)
    return len(due)


async def continue_all(session: AsyncSession, *, settings: Settings | None = None) -> int:
    """Carry on every sending broadcast not yet fully resolved (after "send", or after a restart)."""
    rows = (
        await session.exec(
            select(Broadcast).where(
                col(Broadcast.status) == BroadcastStatus.SENDING.value, col(Broadcast.resolved_at).is_(None)
            )
        )
    ).all()
    written = 0
    for broadcast in rows:
        written += await continue_fan_out(session, broadcast, settings=settings)
    return written


async def finish_done(session: AsyncSession) -> int:
    """Sending broadcasts fully resolved with nothing left to send (queued, leased, held or waiting for a
    retry) are done."""
    waiting = select(OutboxMessage.id).where(
        col(OutboxMessage.broadcast_id) == Broadcast.id,
        col(OutboxMessage.status).in_(PENDING)
        | (
            (col(OutboxMessage.status) == OutboxStatus.FAILED.value)
            & col(OutboxMessage.next_attempt_at).is_not(None)
        ),
    )
    now = utcnow()
    result = await session.execute(
        update(Broadcast)
        .where(
            col(Broadcast.status) == BroadcastStatus.SENDING.value, col(Broadcast.resolved_at).is_not(None)
        )
        .where(~waiting.exists())
        .values(status=BroadcastStatus.DONE.value, finished_at=now, updated_at=now)
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- progress and acknowledgements -----------------------------------------------------------------------


async def progress(session: AsyncSession, *, broadcast_id: int, actor: StaffPrincipal | None) -> ProgressOut:
    broadcast = await get_broadcast(session, broadcast_id=broadcast_id, actor=actor)
    bid = broadcast.id or 0
    by_status = dict(
        (
            await session.execute(
                select(OutboxMessage.status, func.count())
                .where(col(OutboxMessage.broadcast_id) == bid)
                .group_by(OutboxMessage.status)
            )
        ).all()
    )
    reasons = dict(
        (
            await session.execute(
                select(func.coalesce(OutboxMessage.last_error, "unknown"), func.count())
                .where(
                    col(OutboxMessage.broadcast_id) == bid,
                    col(OutboxMessage.status) == OutboxStatus.FAILED.value,
                )
                .group_by(func.coalesce(OutboxMessage.last_error, "unknown"))
            )
        ).all()
    )
    now = utcnow()
    last_minute = int(
        (
            await session.execute(
                select(func.count()).where(
                    col(OutboxMessage.broadcast_id) == bid,
                    col(OutboxMessage.sent_at) >= now - timedelta(minutes=1),
                )
            )
        ).scalar()
        or 0
    )
    excluded = dict(
        (
            await session.execute(
                select(BroadcastRecipient.reason, func.count())
                .where(
                    col(BroadcastRecipient.broadcast_id) == bid,
                    col(BroadcastRecipient.status) == RecipientStatus.EXCLUDED.value,
                )
                .group_by(BroadcastRecipient.reason)
            )
        ).all()
    )
    regions = await _ack_by_region(session, bid)
    rate = last_minute / 60.0
    left = sum(int(by_status.get(s, 0)) for s in PENDING)
    finish = now + timedelta(seconds=left / rate) if rate > 0 and left else (now if not left else None)
    return ProgressOut(
        broadcast_id=bid,
        status=broadcast.status,
        recipients=broadcast.recipient_count,
        excluded={str(k or "unknown"): int(v) for k, v in excluded.items()},
        queued=int(by_status.get(OutboxStatus.QUEUED.value, 0)),
        held=int(by_status.get(OutboxStatus.HELD.value, 0)),
        sending=int(by_status.get(OutboxStatus.SENDING.value, 0)),
        sent=int(by_status.get(OutboxStatus.SENT.value, 0)),
        delivered=int(by_status.get(OutboxStatus.DELIVERED.value, 0)),
        failed=int(by_status.get(OutboxStatus.FAILED.value, 0)),
        stopped=int(by_status.get(OutboxStatus.STOPPED.value, 0)),
        failed_reasons={str(k): int(v) for k, v in reasons.items()},
        rate_per_second=round(rate, 2),
        estimated_finish=finish,
        acked=sum(r.acked for r in regions),
        ack_by_region=regions,
    )


async def _ack_by_region(session: AsyncSession, broadcast_id: int) -> list[RegionAck]:
    """Per township (the first 9 digits of the recipient's region, padded): recipients and taps."""
    township = func.substr(BroadcastRecipient.region_code, 1, 9)
    rows = (
        await session.execute(
            select(township, func.count(), func.count(col(BroadcastRecipient.acked_at)))
            .where(
                col(BroadcastRecipient.broadcast_id) == broadcast_id,
                col(BroadcastRecipient.status) == RecipientStatus.QUEUED.value,
            )
            .group_by(township)
            .order_by(township)
        )
    ).all()
    return [
        RegionAck(
            region_code=str(code).ljust(12, "0"),
            recipients=int(n),
            acked=int(a),
            rate=round(a / n, 4) if n else 0.0,
        )
        for code, n, a in rows
    ]


async def _recipient_for(
    session: AsyncSession, broadcast_id: int, principal: BotPrincipal
) -> BroadcastRecipient:
    """The recipient row this chat answers for: the chat it was sent to, or its verified person's."""
    mine = col(BroadcastRecipient.identity_id) == principal.identity_id
    if principal.person_view is not None:
        mine = mine | (col(BroadcastRecipient.person_id) == principal.person_view)
    found = (
        await session.exec(
            select(BroadcastRecipient).where(
                col(BroadcastRecipient.broadcast_id) == broadcast_id,
                col(BroadcastRecipient.status) == RecipientStatus.QUEUED.value,
                mine,
            )
        )
    ).first()
    if found is None:
        raise BroadcastError("broadcast_not_yours")
    return found


async def acknowledge(
    session: AsyncSession, *, broadcast_id: int, principal: BotPrincipal
) -> tuple[datetime, bool]:
    """The "收到" tap: recorded once (a second tap changes nothing); another person's tap is refused."""
    row = await _recipient_for(session, broadcast_id, principal)
    if row.acked_at is not None:
        return row.acked_at, False
    now = utcnow()
    result = await session.execute(
        update(BroadcastRecipient)
        .where(col(BroadcastRecipient.id) == row.id, col(BroadcastRecipient.acked_at).is_(None))
        .values(acked_at=now)
    )
    await session.commit()
    if not result.rowcount:  # type: ignore[attr-defined]  # a concurrent tap won
        await session.refresh(row)
        return row.acked_at or now, False
    return now, True


async def chat_view(
    session: AsyncSession, *, broadcast_id: int, principal: BotPrincipal, locale: str
) -> tuple[str, list[list[dict[str, str]]]]:
    """What the broadcast says to this chat's person, in the chat's language (a text's link opens it)."""
    row = await _recipient_for(session, broadcast_id, principal)
    broadcast = await session.get(Broadcast, broadcast_id)
    assert broadcast is not None
    stored = (
        await session.exec(
            select(BroadcastVariant).where(
                col(BroadcastVariant.broadcast_id) == broadcast_id,
                col(BroadcastVariant.variant) == row.variant,
                col(BroadcastVariant.locale) == locale,
                col(BroadcastVariant.channel) == fanout.CHAT,
            )
        )
    ).first()
    if stored is not None:
        return stored.text, stored.buttons
    shown = fanout.render_variant(broadcast, row.variant, locale, fanout.CHAT)
    return shown["text"], shown["buttons"]


def broadcast_out(broadcast: Broadcast) -> BroadcastOut:
    return BroadcastOut(
        id=broadcast.id or 0,
        kind=broadcast.kind,
        status=broadcast.status,
        source_key=broadcast.source_key,
        send_at=broadcast.send_at,
        ack_button=broadcast.ack_button,
        audience=broadcast.audience,
        audience_size=broadcast.audience_size,
        recipient_count=broadcast.recipient_count,
        excluded_count=broadcast.excluded_count,
        created_by=broadcast.created_by,
        approved_by=broadcast.approved_by,
        created_at=broadcast.created_at,
        started_at=broadcast.started_at,
        finished_at=broadcast.finished_at,
    )

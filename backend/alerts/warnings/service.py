"""Official warnings: ingest a CAP message once, decide what it does for farmers, send through broadcasts.

What a message does (``ingest``), by ``msgType`` and ``status``:

- Test, Exercise, Draft, System (and Ack / Error messages): stored, shown to staff, ``held``: never sent.
- Alert: expired already -> ``expired`` (nothing sent); names no area we can match -> ``no_area``;
  Extreme + Immediate with ``TIANBAO_CAP_AUTO_SEND_EXTREME`` -> sent at once (``auto_sent``); otherwise
  ``pending`` until a staff member approves (``approve``). Severe or Extreme: a candidate disaster event.
- Update: to the people who got the message it updates (``from_broadcast_ids``), by the same approval
  rule; the original becomes ``updated``. An Update of nothing we received is handled as an Alert of its
  own area (feeds often start mid-story).
- Cancel: an all-clear to those who got the cancelled warning (no approval: it only tells them the
  danger passed); a cancelled warning still pending is never sent.

The same message (sender, identifier, sent) twice is processed once: the second answers the first row.
The audience: the warning's geometry (polygons, circles) when it has one, else its region codes
(geocodes as administrative-division codes); the broadcasts domain resolves who insures there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.warnings import cap, geo, sending
from backend.alerts.warnings.advice import EVENT_CAUSE, hazard_of
from backend.alerts.warnings.compose import (
    ProductRef,
    all_clear_content,
    invite_content,
    section_groups,
    warning_content,
)
from backend.alerts.warnings.errors import WarningError
from backend.alerts.warnings.models import CapWarning, WarningState
from backend.db import utcnow
from backend.enrollment.models import Policy
from backend.products.models import Product
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.models import Role
from backend.staff.service import record_audit

UPLOAD_ROLES = (Role.UNDERWRITER.value, Role.ADJUSTER.value)  # and admin (require_roles lets it through)
APPROVE_ROLES = (Role.UNDERWRITER.value, Role.ADJUSTER.value)
EVENT_SEVERITIES = frozenset({"Severe", "Extreme"})
MAX_EXCLUDED = 10_000  # the broadcast audience's exclusion list holds at most this many people
LIST_PAGE = 500  # rows read at a time when a regional staff member lists warnings
MAX_CHAIN = 20  # and at most this many earlier broadcasts (the latest messages of an update chain)
# The claims domain imports alerts (staff alerts), so alerts may not import claims back (acyclic
# siblings): its tables are taken from the schema by name (``backend.models`` loads every table).


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


@dataclass(frozen=True)
class Ingested:
    warning: CapWarning
    duplicate: bool  # the same message was received before: nothing was done again


def _utc(moment: datetime) -> datetime:
    """Stored in UTC: the same message's ``sent`` compares equal whatever offset it was written with."""
    return moment.astimezone(UTC)


def refuse(exc: cap.CapRefused) -> WarningError:
    return WarningError(exc.code, reason=exc.reason, path=exc.path or "/")


async def ingest(
    session: AsyncSession,
    settings: Settings,
    *,
    data: bytes,
    source: str = "upload",
    source_url: str | None = None,
    actor: StaffPrincipal | None = None,
    ip: str | None = None,
) -> Ingested:
    """Parse, store once and act on one CAP message (see the module doc). Commits."""
    try:
        alert = cap.parse(data)
    except cap.CapRefused as exc:
        raise refuse(exc) from exc
    sent = _utc(alert.sent)
    existing = await _find(session, alert.sender, alert.identifier, sent)
    if existing is not None:
        return Ingested(existing, duplicate=True)
    warning = _row(alert, data, source=source, source_url=source_url, actor=actor)
    session.add(warning)
    try:
        await session.flush()
    except IntegrityError:  # another runner stored the same message a moment ago
        await session.rollback()
        again = await _find(session, alert.sender, alert.identifier, sent)
        if again is None:
            raise
        return Ingested(again, duplicate=True)
    await _act(session, settings, warning, alert)
    record_audit(
        session=session,
        actor=actor,
        action="warnings.ingest",
        target_type="cap_warning",
        target_id=warning.id or "",
        detail={
            "identifier": alert.identifier,
            "msg_type": alert.msg_type,
            "state": warning.state,
            "source": source,
        },
        ip=ip,
    )
    await session.commit()
    await session.refresh(warning)
    return Ingested(warning, duplicate=False)


async def _find(session: AsyncSession, sender: str, identifier: str, sent: datetime) -> CapWarning | None:
    query = select(CapWarning).where(
        CapWarning.sender == sender, CapWarning.identifier == identifier, CapWarning.sent == sent
    )
    return (await session.exec(query)).first()


def _row(
    alert: cap.CapAlert, data: bytes, *, source: str, source_url: str | None, actor: StaffPrincipal | None
) -> CapWarning:
    info = cap.pick_info(alert.infos)
    areas = [area for block in alert.infos for area in block.areas]
    geometry = geo.geojson(geo.area_geometry(areas))
    return CapWarning(
        sender=alert.sender[:255],
        identifier=alert.identifier[:255],
        sent=_utc(alert.sent),
        status=alert.status,
        msg_type=alert.msg_type,
        scope=alert.scope,
        references=[[r.sender, r.identifier, r.sent.isoformat()] for r in alert.references],
        language=(info.language if info else "")[:20],
        event=(info.event if info else "")[:255],
        hazard=hazard_of(info),
        category=(",".join(info.categories) if info else "")[:40],
        urgency=info.urgency if info else "",
        severity=info.severity if info else "",
        certainty=info.certainty if info else "",
        sender_name=(info.sender_name if info else "")[:255],
        headline=(info.headline if info else "")[:500],
        description=info.description if info else "",
        instruction=info.instruction if info else "",
        area_desc="; ".join(dict.fromkeys(a.desc for a in (info.areas if info else []) if a.desc))[:1000],
        onset=_utc(info.onset) if info and info.onset else None,
        expires=_latest_expiry(alert),
        region_codes=geo.region_codes(areas),
        geocodes=[[name, value] for area in areas for name, value in area.geocodes][:200],
        geometry=geometry,
        source=source,
        source_url=source_url,
        uploaded_by=actor.user_id if actor else None,
        raw_xml=data.decode("utf-8", errors="replace"),
    )


def _latest_expiry(alert: cap.CapAlert) -> datetime | None:
    """The message is over when its last block is: the latest ``expires`` of the blocks that give one."""
    ends = [_utc(info.expires) for info in alert.infos if info.expires is not None]
    return max(ends) if ends else None


def expired(warning: CapWarning, now: datetime | None = None) -> bool:
    return warning.expires is not None and warning.expires <= (now or utcnow())


def has_area(warning: CapWarning) -> bool:
    return bool(warning.region_codes or warning.geometry)


def immediate_extreme(warning: CapWarning) -> bool:
    return warning.severity == "Extreme" and warning.urgency == "Immediate"


async def _act(session: AsyncSession, settings: Settings, warning: CapWarning, alert: cap.CapAlert) -> None:
    if not alert.for_farmers or alert.msg_type in ("Ack", "Error"):
        warning.state = WarningState.HELD.value
        return
    originals = await _referred(session, alert)
    warning.refers_to_id = originals[-1].id if originals else None
    if alert.msg_type == "Cancel":
        await _cancel(session, warning, originals)
        return
    if alert.msg_type == "Update" and originals:
        for original in originals:
            if original.state in (WarningState.SENT.value, WarningState.PENDING.value):
                original.state = WarningState.UPDATED.value
                original.invited_at = original.invited_at or utcnow()  # the update carries the story on
                session.add(original)
    if alert.msg_type == "Alert" or not originals:
        await _open_event(session, warning)
    if expired(warning):
        warning.state = WarningState.EXPIRED.value
    elif not has_area(warning) and not _sent_broadcasts(originals):
        warning.state = WarningState.NO_AREA.value
    elif settings.cap_auto_send_extreme and immediate_extreme(warning):
        warning.auto_sent = True
        await _send(session, warning, actor=None)
    else:
        warning.state = WarningState.PENDING.value
    session.add(warning)


async def _referred(session: AsyncSession, alert: cap.CapAlert) -> list[CapWarning]:
    """The messages we received that this one refers to, oldest first."""
    found: list[CapWarning] = []
    for reference in alert.references:
        row = await _find(session, reference.sender, reference.identifier, _utc(reference.sent))
        if row is not None:
            found.append(row)
    return sorted(found, key=lambda w: w.sent)


def _sent_broadcasts(originals: list[CapWarning]) -> list[int]:
    return [w.broadcast_id for w in originals if w.broadcast_id is not None]


async def _with_updates(session: AsyncSession, originals: list[CapWarning]) -> list[CapWarning]:
    """The cancelled messages and the updates we received of them (a Cancel may name only the first)."""
    chain = {w.id: w for w in originals}
    frontier = [w.id for w in originals]
    while frontier:
        query = select(CapWarning).where(
            col(CapWarning.refers_to_id).in_(frontier), CapWarning.msg_type == "Update"
        )
        found = [w for w in (await session.exec(query)).all() if w.id not in chain]
        chain.update({w.id: w for w in found})
        frontier = [w.id for w in found]
    return sorted(chain.values(), key=lambda w: w.sent)


async def _cancel(session: AsyncSession, warning: CapWarning, originals: list[CapWarning]) -> None:
    warning.state = WarningState.CANCEL.value if originals else WarningState.UNMATCHED.value
    originals = await _with_updates(session, originals)
    reached = _sent_broadcasts(originals)[-MAX_CHAIN:]
    for original in originals:
        original.state = WarningState.CANCELLED.value
        original.invited_at = original.invited_at or utcnow()  # the all-clear invites the loss reports
        session.add(original)
    if reached:
        broadcast = await sending.send_now(
            session,
            content=all_clear_content(originals[-1]),
            audience=sending.audience_of(from_broadcast_ids=reached),
            source_key=f"cap:{warning.id}:all-clear",
            ack_button=False,
        )
        warning.all_clear_broadcast_id = broadcast
    session.add(warning)


async def _open_event(session: AsyncSession, warning: CapWarning) -> None:
    """An Actual Severe or Extreme alert opens a candidate disaster event (staff confirm or drop it)."""
    if warning.severity not in EVENT_SEVERITIES:
        return
    began = warning.onset or warning.sent
    values = {
        "name": (warning.headline or warning.event or warning.identifier)[:200],
        "cause": EVENT_CAUSE.get(warning.hazard, "other"),
        "started_on": began,
        "ended_on": warning.expires,
        "status": "candidate",
        "region_code": _common_region(warning.region_codes),
        "catastrophe": False,
        "catastrophe_reasons": [],
        "created_at": utcnow(),
    }
    events = _table("disaster_event")
    result = await session.exec(insert(events).values(values).returning(events.c.id))
    warning.event_id = result.scalar_one()


def _common_region(codes: list[str]) -> str:
    """The smallest division holding every code (a city at least), else "" (national or drawn area)."""
    if not codes:
        return ""
    prefixes = [significant_prefix(code) for code in codes]
    prefix = prefixes[0]
    for other in prefixes[1:]:
        while not other.startswith(prefix):
            prefix = prefix[:-1]
    return prefix.ljust(12, "0") if len(prefix) >= 4 else ""


async def _groups(session: AsyncSession) -> dict[str, str]:
    products = (await session.exec(select(Product).where(col(Product.active).is_(True)))).all()
    return section_groups([ProductRef(p.code, p.category, p.kind) for p in products])


async def _send(session: AsyncSession, warning: CapWarning, *, actor: StaffPrincipal | None) -> None:
    original = await session.get(CapWarning, warning.refers_to_id) if warning.refers_to_id else None
    reached = [original.broadcast_id] if original is not None and original.broadcast_id else []
    if warning.msg_type == "Update" and reached:
        audience = sending.audience_of(from_broadcast_ids=reached)
    else:
        audience = sending.audience_for_area(warning)
    content = warning_content(warning, await _groups(session), update=warning.msg_type == "Update")
    warning.broadcast_id = await sending.send_now(
        session, content=content, audience=audience, source_key=f"cap:{warning.id}", ack_button=True
    )
    warning.state = WarningState.SENT.value
    if actor is not None:
        warning.approved_by = actor.user_id
        warning.approved_at = utcnow()
    session.add(warning)


# --- staff ---------------------------------------------------------------------------------------------


def visible(actor: StaffPrincipal, warning: CapWarning) -> bool:
    """National staff see every warning; regional staff those naming a division inside their regions."""
    return actor.is_national or any(actor.covers_region(code) for code in warning.region_codes)


async def get_warning(session: AsyncSession, *, actor: StaffPrincipal, warning_id: int) -> CapWarning:
    warning = await session.get(CapWarning, warning_id)
    if warning is None or not visible(actor, warning):
        raise WarningError("warning_not_found", warning_id=warning_id)
    return warning


async def list_warnings(
    session: AsyncSession,
    *,
    actor: StaffPrincipal,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[CapWarning]:
    """Newest first. National staff page in SQL; regional staff's rows are picked by their region codes
    (a JSON list: no portable prefix query), reading the newest in pages until the page is full."""
    query = select(CapWarning).order_by(col(CapWarning.id).desc())
    if state is not None:
        query = query.where(CapWarning.state == state)
    if actor.is_national:
        return list((await session.exec(query.offset(offset).limit(limit))).all())
    found: list[CapWarning] = []
    skipped, page = 0, 0
    while len(found) < limit:
        rows = (await session.exec(query.offset(page * LIST_PAGE).limit(LIST_PAGE))).all()
        for warning in rows:
            if not visible(actor, warning):
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(warning)
            if len(found) == limit:
                break
        if len(rows) < LIST_PAGE:
            break
        page += 1
    return found


async def approve(
    session: AsyncSession, *, actor: StaffPrincipal, warning_id: int, ip: str | None = None
) -> CapWarning:
    """Staff approve a pending warning: it goes out now (audited). An expired one is refused. Commits."""
    warning = await get_warning(session, actor=actor, warning_id=warning_id)
    if warning.state != WarningState.PENDING.value:
        raise WarningError("warning_not_pending", state=warning.state)
    if expired(warning):
        warning.state = WarningState.EXPIRED.value
        session.add(warning)
        await session.commit()
        raise WarningError("warning_expired", expires=warning.expires)
    await _send(session, warning, actor=actor)
    record_audit(
        session=session,
        actor=actor,
        action="warnings.approve",
        target_type="cap_warning",
        target_id=warning.id or "",
        detail={"broadcast_id": warning.broadcast_id},
        ip=ip,
    )
    await session.commit()
    await session.refresh(warning)
    return warning


# --- time ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueReport:
    expired_unsent: int
    invited: int


async def act_on_due(session: AsyncSession, *, now: datetime | None = None) -> DueReport:
    """The scheduler's job (idempotent): pending warnings past their expiry are never sent; a sent one
    past its expiry invites the insured who got it and have reported no claim since it began to report
    their losses, once (``invited_at``). Commits."""
    now = now or utcnow()
    due = (
        await session.exec(
            select(CapWarning).where(
                col(CapWarning.expires).is_not(None),
                col(CapWarning.expires) <= now,
                col(CapWarning.state).in_([WarningState.PENDING.value, WarningState.SENT.value]),
                col(CapWarning.invited_at).is_(None),
            )
        )
    ).all()
    expired_unsent = invited = 0
    for warning in due:
        if warning.state == WarningState.PENDING.value:
            warning.state = WarningState.EXPIRED.value
            warning.invited_at = now  # nothing was sent: nobody to invite
            expired_unsent += 1
        else:
            await _invite(session, warning, now)
            invited += 1
        session.add(warning)
    await session.commit()
    return DueReport(expired_unsent=expired_unsent, invited=invited)


async def _invite(session: AsyncSession, warning: CapWarning, now: datetime) -> None:
    reached = await _chain_broadcasts(session, warning)
    warning.invited_at = now
    if not reached:
        return
    began = warning.onset or warning.sent
    original = await session.get(CapWarning, warning.refers_to_id) if warning.refers_to_id else None
    if original is not None:
        began = min(began, original.onset or original.sent)
    warning.invite_broadcast_id = await sending.send_now(
        session,
        content=invite_content(warning),
        audience=sending.audience_of(
            from_broadcast_ids=reached[:MAX_CHAIN], excluded_people=await _reported_since(session, began)
        ),
        source_key=f"cap:{warning.id}:invite",
        ack_button=False,
    )


async def _chain_broadcasts(session: AsyncSession, warning: CapWarning) -> list[int]:
    """The broadcasts of this warning and of the messages it updated: everyone who was warned."""
    ids: list[int] = []
    current: CapWarning | None = warning
    seen: set[int] = set()
    while current is not None and current.id not in seen:
        seen.add(current.id or 0)
        if current.broadcast_id is not None:
            ids.append(current.broadcast_id)
        current = await session.get(CapWarning, current.refers_to_id) if current.refers_to_id else None
    return ids


async def _reported_since(session: AsyncSession, began: datetime) -> list[int]:
    claims = _table("claim")
    query = (
        select(Policy.person_id)
        .join(claims, claims.c.policy_id == col(Policy.id))
        .where(claims.c.reported_at >= began, col(Policy.person_id).is_not(None))
        .distinct()
        .limit(MAX_EXCLUDED)
    )
    return [person for person in (await session.exec(query)).all() if person is not None]


async def warning_for_claim(session: AsyncSession, warning_id: int | None) -> int | None:
    """The warning a claim's report names, when it exists (a stale or forged id links nothing)."""
    if warning_id is None:
        return None
    return warning_id if await session.get(CapWarning, warning_id) is not None else None

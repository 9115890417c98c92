"""R-DIS-5: when a disaster closes a branch (the office serving a region), service continues online.

Staff mark a branch closed (``close_branch``) and reopened (``reopen_branch``), both audited. Its customers
(everyone holding a policy in force in the region) are told once when it closes that every service
continues online, and once when it reopens (``fanout.tell_insured_in``; the dedupe key is the closure's
id). While a closure is open, the chat's help and contact answers say so (``closures_for_person``, read
by the bot's help through ``GET /api/bot/branches/closed``). One branch has at most one open closure.
Nothing here commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims.catastrophe.fanout import tell_insured_in
from backend.claims.catastrophe.models import BranchClosure, DisasterEvent
from backend.claims.catastrophe.service import EventError, _region_names
from backend.db import utcnow
from backend.enrollment.models import Policy
from backend.regions.models import Region
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.service import record_audit

CLOSED_TEMPLATE = "events/branch_closed"
REOPENED_TEMPLATE = "events/branch_reopened"


async def _branch_region(session: AsyncSession, actor: StaffPrincipal, region_code: str) -> Region:
    region = await session.get(Region, region_code)
    if region is None:
        raise EventError("region_not_found", region_code=region_code)
    if not actor.covers_region(region_code):
        raise EventError("outside_scope", region_code=region_code)
    return region


async def open_closure(session: AsyncSession, region_code: str) -> BranchClosure | None:
    query = select(BranchClosure).where(
        col(BranchClosure.region_code) == region_code, col(BranchClosure.reopened_at).is_(None)
    )
    return (await session.exec(query)).first()


def _context(region: Region, closure: BranchClosure) -> dict[str, Any]:
    """The notice's template parameters (stored with the broadcast: JSON values only)."""
    return {"region_name": region.name, "reason": closure.reason}


async def close_branch(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    *,
    region_code: str,
    reason: str = "",
    event_id: int | None = None,
    ip: str | None = None,
) -> BranchClosure:
    """Mark the region's branch closed and tell its customers once. Audited."""
    region = await _branch_region(session, actor, region_code)
    if event_id is not None and await session.get(DisasterEvent, event_id) is None:
        raise EventError("not_found", event_id=event_id)
    if await open_closure(session, region_code) is not None:
        raise EventError("branch_already_closed", region_code=region_code)
    closure = BranchClosure(
        region_code=region_code, event_id=event_id, reason=reason.strip()[:500], closed_by=actor.user_id
    )
    session.add(closure)
    await session.flush()
    record_audit(
        session=session,
        actor=actor,
        action="branches.close",
        target_type="branch_closure",
        target_id=closure.id or "",
        detail={"region_code": region_code, "reason": closure.reason},
        ip=ip,
    )
    closure.told_closed = await tell_insured_in(
        session,
        settings,
        region_codes=[region_code],
        template=CLOSED_TEMPLATE,
        sms_key="branch_closed",
        source_key=f"branch-{closure.id}-closed",
        context=_context(region, closure),
    )
    session.add(closure)
    return closure


async def reopen_branch(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    *,
    region_code: str,
    ip: str | None = None,
) -> BranchClosure:
    """Mark the region's branch open again and tell its customers once. Audited."""
    region = await _branch_region(session, actor, region_code)
    closure = await open_closure(session, region_code)
    if closure is None:
        raise EventError("branch_not_closed", region_code=region_code)
    closure.reopened_at = utcnow()
    closure.reopened_by = actor.user_id
    session.add(closure)
    record_audit(
        session=session,
        actor=actor,
        action="branches.reopen",
        target_type="branch_closure",
        target_id=closure.id or "",
        detail={"region_code": region_code},
        ip=ip,
    )
    closure.told_reopened = await tell_insured_in(
        session,
        settings,
        region_codes=[region_code],
        template=REOPENED_TEMPLATE,
        sms_key="branch_reopened",
        source_key=f"branch-{closure.id}-reopened",
        context=_context(region, closure),
    )
    session.add(closure)
    return closure


async def list_closures(
    session: AsyncSession, actor: StaffPrincipal, *, open_only: bool = False, limit: int = 100
) -> list[BranchClosure]:
    query = select(BranchClosure).order_by(col(BranchClosure.id).desc()).limit(limit)
    if open_only:
        query = query.where(col(BranchClosure.reopened_at).is_(None))
    closures = (await session.exec(query)).all()
    return [c for c in closures if actor.covers_region(c.region_code)]


async def closures_covering(
    session: AsyncSession, region_codes: list[str]
) -> list[tuple[BranchClosure, str]]:
    """Open closures whose region holds one of the codes, with the region's name (few rows: read all)."""
    query = select(BranchClosure).where(col(BranchClosure.reopened_at).is_(None))
    found = [
        c
        for c in (await session.exec(query)).all()
        if any(code.startswith(significant_prefix(c.region_code)) for code in region_codes)
    ]
    names = await _region_names(session, [c.region_code for c in found])
    return [(c, names.get(c.region_code, c.region_code)) for c in found]


async def closures_for_person(
    session: AsyncSession, *, person_id: int | None, identity_id: int | None
) -> list[tuple[BranchClosure, str]]:
    """The open closures of the regions where the chat's person (or the chat itself) holds a policy."""
    conditions = []
    if person_id is not None:
        conditions.append(col(Policy.person_id) == person_id)
    if identity_id is not None:
        conditions.append(col(Policy.identity_id) == identity_id)
    if not conditions:
        return []
    query = select(Policy.region_code).where(or_(*conditions), col(Policy.status) == "active").distinct()
    regions = [str(r) for r in (await session.exec(query)).all()]
    return await closures_covering(session, regions) if regions else []

"""What every staff claims action starts and ends with: the role check, the claim in the actor's region,
the audit row. Below workflow and payees, so neither copies the other's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims.errors import ClaimError
from backend.claims.models import Claim
from backend.security import StaffPrincipal
from backend.staff.models import Role
from backend.staff.service import record_audit


def require_role(actor: StaffPrincipal, roles: Sequence[str]) -> None:
    if actor.role != Role.ADMIN.value and actor.role not in roles:
        raise ClaimError("forbidden", role=actor.role)


async def scoped_claim(
    session: AsyncSession, actor: StaffPrincipal, claim_id: int, *, lock: bool = False
) -> Claim:
    """Staff see only their region: outside it a claim does not exist for them. ``lock`` holds the row
    (``FOR UPDATE`` on PostgreSQL) so two staff acting at once cannot both move the claim on."""
    claim = await session.get(Claim, claim_id, with_for_update=lock or None, populate_existing=lock)
    if claim is None or not actor.covers_region(claim.region_code):
        raise ClaimError("not_found")
    return claim


def audit_claim(
    session: AsyncSession, actor: StaffPrincipal, action: str, claim: Claim, ip: str | None, **detail: Any
) -> None:
    record_audit(
        session=session,
        actor=actor,
        action=action,
        target_type="claim",
        target_id=claim.id or "",
        detail={"number": claim.number, **detail},
        ip=ip,
    )

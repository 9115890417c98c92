"""What a household holds of its collective policy: one row (``policy_household``) of the organiser's policy.

The organiser's policy names no person; each household's person sees its own row as its cover, reports
its own losses on it, is paid to the account its row gives (R-CLM-12) and confirms its own settlement
(R-CLM-14). Only a verified binding of the chat to that person (``BotPrincipal.person_view``) sees it."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.enrollment.collective.models import CollectiveEnrollment, PolicyHousehold
from backend.enrollment.models import Policy


async def households_of_person(session: AsyncSession, person_id: int) -> list[tuple[PolicyHousehold, Policy]]:
    """Every issued collective policy the person is a household of, with the household's row."""
    query = (
        select(PolicyHousehold, Policy)
        .join(CollectiveEnrollment, col(CollectiveEnrollment.id) == col(PolicyHousehold.collective_id))
        .join(Policy, col(Policy.id) == col(CollectiveEnrollment.policy_id))
        .where(PolicyHousehold.person_id == person_id)
        .order_by(col(Policy.id).desc())
    )
    return [(household, policy) for household, policy in (await session.exec(query)).all()]


async def household_on_policy(
    session: AsyncSession, *, policy_id: int, person_id: int
) -> PolicyHousehold | None:
    """The person's own row of a collective policy; None when they are no household of it."""
    query = (
        select(PolicyHousehold)
        .join(CollectiveEnrollment, col(CollectiveEnrollment.id) == col(PolicyHousehold.collective_id))
        .where(CollectiveEnrollment.policy_id == policy_id, PolicyHousehold.person_id == person_id)
    )
    return (await session.exec(query)).first()


async def household_of_policy(
    session: AsyncSession, *, policy_id: int, household_id: int
) -> PolicyHousehold | None:
    """A household row by id, only if it belongs to this policy (an agent naming a household of another
    list finds none)."""
    household = await session.get(PolicyHousehold, household_id)
    if household is None:
        return None
    collective = await session.get(CollectiveEnrollment, household.collective_id)
    if collective is None or collective.policy_id != policy_id:
        return None
    return household


async def is_collective_policy(session: AsyncSession, policy_id: int) -> bool:
    """An organiser's policy: its claims are its households' (R-CLM-12), never the organiser's own."""
    query = select(CollectiveEnrollment.id).where(CollectiveEnrollment.policy_id == policy_id)
    return (await session.exec(query)).first() is not None

"""Whose claim it is: the policy's own insured, or one household of a collective policy.

A household of a collective enrollment is a row of the organiser's policy (``policy_household``); its
claim is the household's own: its name, village and quantity, paid to the account its row gives
(R-CLM-12: a cooperative's or committee's policy pays each household), told and asked in the household's
chat (R-CLM-14). Everything that reads "the insured" of a claim reads it here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims.models import Claim
from backend.enrollment.collective.models import PolicyHousehold
from backend.enrollment.models import Policy


@dataclass(frozen=True)
class ClaimInsured:
    policy: Policy
    household: PolicyHousehold | None = None

    @property
    def person_id(self) -> int | None:
        return self.household.person_id if self.household is not None else self.policy.person_id

    @property
    def household_id(self) -> int | None:
        return self.household.id if self.household is not None else None

    @property
    def name(self) -> str:
        return (self.household.name if self.household is not None else self.policy.insured_name).strip()

    @property
    def quantity(self) -> str:
        return self.household.quantity if self.household is not None else self.policy.quantity

    @property
    def region_code(self) -> str:
        """The household's own village (a township organiser's policy spans several)."""
        return self.household.village_code if self.household is not None else self.policy.region_code

    @property
    def sum_insured_fen(self) -> int:
        return self.household.sum_insured_fen if self.household is not None else self.policy.sum_insured_fen

    @property
    def account(self) -> str:
        """The account on file: the household's row, or the policy's current terms (endorsements change
        it, R-ENR-11), validated when it was given."""
        raw = (
            self.household.bank_account
            if self.household is not None
            else self.policy.terms.get("bank_account")
        )
        return "".join(str(raw or "").split())

    @property
    def bank_name(self) -> str:
        raw = self.household.bank_name if self.household is not None else self.policy.terms.get("bank_name")
        return str(raw or "").strip()


async def insured_of(session: AsyncSession, claim: Claim) -> ClaimInsured:
    policy = await session.get(Policy, claim.policy_id)
    assert policy is not None
    household = await session.get(PolicyHousehold, claim.household_id) if claim.household_id else None
    return ClaimInsured(policy=policy, household=household)

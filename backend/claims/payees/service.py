"""R-CLM-12: a claim is paid only to the insured's own account on file. Any other payee needs a recorded
explanation and a second staff member's approval, and an account known to belong to a village committee,
a township, a staff member or another insured is refused whatever name is given with it.

The check is on the account itself, never on words in the payee's name: a name says nothing about whose
account it is ("大塘村" or "张 会计" may be anyone's)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims import timeline
from backend.claims.access import audit_claim as _audit
from backend.claims.access import require_role as _require
from backend.claims.access import scoped_claim as _scoped
from backend.claims.errors import ClaimError
from backend.claims.insured import ClaimInsured, insured_of
from backend.claims.models import Claim, ClaimStatus
from backend.claims.payees.models import PayeeAccount, PayeeAccountKind, PayeeException, PayeeExceptionStatus
from backend.claims.payees.schemas import PayeeAccountIn, PayeeExceptionIn
from backend.db import utcnow
from backend.enrollment.collective.models import CollectiveEnrollment, PolicyHousehold
from backend.enrollment.endorsements import mask_value
from backend.enrollment.models import Policy
from backend.enrollment.validation import ValidationProblem, validate_bank_account
from backend.security import StaffPrincipal, significant_prefix
from backend.staff.models import Role
from backend.staff.service import record_audit

PAYEE_ROLES = (Role.UNDERWRITER.value,)  # who pays, enters and approves payee exceptions
REGISTRY_ROLES = (Role.UNDERWRITER.value, Role.ADJUSTER.value)  # who maintains the registry
Decision = Literal["approve", "refuse"]
OPEN_STATUSES = (ClaimStatus.ASSESSED.value, ClaimStatus.AGREED.value, ClaimStatus.OBJECTED.value)


def account_of(raw: str) -> str:
    """An account number staff type, checked as at enrollment (12-30 digits, spaces dropped): the same
    rule as the accounts on file, so the two compare equal and the column's length always holds."""
    try:
        return validate_bank_account(raw)
    except ValidationProblem as exc:
        raise ClaimError(exc.code, **exc.detail) from exc


def own_account(insured: ClaimInsured) -> str:
    """The account on file of whoever the claim is for: the policy's insured, or the household."""
    return insured.account


# --- the account check ----------------------------------------------------------------------------------


async def refuse_known_account(session: AsyncSession, insured: ClaimInsured, account: str) -> None:
    """Refuse an account of the registry (staff members' accounts are registered as ``staff``) or another
    insured's account on file, a household's row included. Three queries, whatever the number of
    policies. A phone number never reaches here: it is no bank account (``account_of``). A registered
    account is refused for every claim but those it is on file for."""
    registered = (
        await session.exec(
            select(PayeeAccount).where(
                PayeeAccount.account_number == account, col(PayeeAccount.removed_at).is_(None)
            )
        )
    ).first()
    # The account on file is never "someone else's" for its own claims, whatever the kind it is registered
    # under (an insured's, or a cooperative's on the cooperative's own policy). A household's row was
    # written by its organiser: an account registered as a committee's, a township's, a staff member's or
    # a collective one on it is refused all the same (R-CLM-12).
    if registered is not None and (
        account != own_account(insured)
        or (insured.household is not None and registered.kind != PayeeAccountKind.INSURED_OTHER)
    ):
        raise ClaimError("payee_account_registered", kind=registered.kind)
    await _refuse_other_policies(session, insured, account)
    await _refuse_other_households(session, insured, account)


async def _refuse_other_policies(session: AsyncSession, insured: ClaimInsured, account: str) -> None:
    query = select(Policy).where(col(Policy.terms)["bank_account"].as_string() == account)
    if insured.household is None:
        query = query.where(Policy.id != insured.policy.id)
    # A household's claim is paid to the household: the organiser's own account on its own policy is
    # someone else's (R-CLM-12, "for cooperatives with a household list, pay each household").
    for other in (await session.exec(query)).all():
        same_insured = (
            other.person_id == insured.person_id
            if other.person_id is not None and insured.person_id is not None
            else other.insured_name == insured.name
        )
        if not same_insured:
            raise ClaimError("payee_other_insured", policy=other.number)


async def _refuse_other_households(session: AsyncSession, insured: ClaimInsured, account: str) -> None:
    query = (
        select(PolicyHousehold.id, PolicyHousehold.person_id, Policy.number)
        .join(CollectiveEnrollment, col(CollectiveEnrollment.id) == col(PolicyHousehold.collective_id))
        .outerjoin(Policy, col(Policy.id) == col(CollectiveEnrollment.policy_id))
        .where(PolicyHousehold.bank_account == account)
    )
    for household_id, person_id, number in (await session.exec(query)).all():
        if household_id != insured.household_id and person_id != insured.person_id:
            raise ClaimError("payee_other_insured", policy=number or "")


async def approved_exception(
    session: AsyncSession, claim: Claim, account: str, payee_name: str | None
) -> PayeeException:
    """The latest exception entered for this account (and name, when one is given) must be approved; the
    refusal says what is missing."""
    query = select(PayeeException).where(
        PayeeException.claim_id == claim.id, PayeeException.account_number == account
    )
    if payee_name is not None:
        query = query.where(PayeeException.payee_name == payee_name)
    found = (await session.exec(query.order_by(col(PayeeException.id).desc()))).first()
    if found is None:
        raise ClaimError("payee_explanation_required")
    if found.status == PayeeExceptionStatus.PENDING:
        raise ClaimError("payee_second_approval_required", exception_id=found.id)
    if found.status != PayeeExceptionStatus.APPROVED:
        raise ClaimError("payee_exception_not_approved", status=found.status)
    return found


# --- payee exceptions -----------------------------------------------------------------------------------


async def enter_exception(
    *, session: AsyncSession, actor: StaffPrincipal, claim_id: int, body: PayeeExceptionIn, ip: str | None
) -> PayeeException:
    """Record another payee with its explanation; it waits for a second staff member's decision."""
    _require(actor, PAYEE_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    if claim.status not in OPEN_STATUSES:
        raise ClaimError("bad_status", status=claim.status, expected=",".join(OPEN_STATUSES))
    insured = await insured_of(session, claim)
    account = account_of(body.account_number)
    if account == own_account(insured):
        raise ClaimError("payee_is_insured_account")  # nothing to approve: it is paid directly
    await refuse_known_account(session, insured, account)
    explanation = body.explanation.strip()
    if len(explanation) < 2:
        raise ClaimError("payee_explanation_required")
    open_query = select(PayeeException).where(
        PayeeException.claim_id == claim.id,
        col(PayeeException.status).in_((PayeeExceptionStatus.PENDING, PayeeExceptionStatus.APPROVED)),
    )
    if (await session.exec(open_query)).first() is not None:
        raise ClaimError("payee_exception_open")
    exception = PayeeException(
        claim_id=claim.id or 0,
        payee_name=body.payee_name.strip(),
        bank_name=body.bank_name.strip(),
        account_number=account,
        explanation=explanation,
        entered_by=actor.user_id,
    )
    session.add(exception)
    masked = mask_value("bank_account", account)
    timeline.record(session, claim, "payee_exception_entered", actor=actor.username, account_masked=masked)
    _audit(
        session,
        actor,
        "claims.payee_exception",
        claim,
        ip,
        payee=exception.payee_name,
        account_masked=masked,
        explanation=explanation,
    )
    await session.commit()
    await session.refresh(exception)
    return exception


async def decide_exception(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    claim_id: int,
    exception_id: int,
    approve: bool,
    note: str | None,
    ip: str | None,
) -> PayeeException:
    """The second staff member approves or refuses; whoever entered the exception cannot decide it."""
    _require(actor, PAYEE_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    exception = await session.get(PayeeException, exception_id, with_for_update=True)
    if exception is None or exception.claim_id != claim.id:
        raise ClaimError("not_found")
    if exception.status != PayeeExceptionStatus.PENDING:
        raise ClaimError("payee_exception_decided", status=exception.status)
    if exception.entered_by == actor.user_id:
        raise ClaimError("second_approver_required")
    if approve:  # the registry may have learnt of the account since it was entered
        await refuse_known_account(session, await insured_of(session, claim), exception.account_number)
    exception.status = (PayeeExceptionStatus.APPROVED if approve else PayeeExceptionStatus.REFUSED).value
    exception.decided_by = actor.user_id
    exception.decided_at = utcnow()
    exception.decision_note = (note or "").strip()[:500] or None
    session.add(exception)
    kind = "payee_exception_approved" if approve else "payee_exception_refused"
    timeline.record(session, claim, kind, actor=actor.username, exception_id=exception.id)
    _audit(
        session,
        actor,
        f"claims.{kind}",
        claim,
        ip,
        exception_id=exception.id,
        entered_by=exception.entered_by,
        note=exception.decision_note,
    )
    await session.commit()
    await session.refresh(exception)
    return exception


async def exceptions_of(session: AsyncSession, claim_id: int) -> list[PayeeException]:
    query = select(PayeeException).where(PayeeException.claim_id == claim_id).order_by(col(PayeeException.id))
    return list((await session.exec(query)).all())


# --- the registry -----------------------------------------------------------------------------------------


async def list_accounts(
    *, session: AsyncSession, actor: StaffPrincipal, kind: str | None = None, limit: int = 500
) -> list[PayeeAccount]:
    """The registered accounts of the actor's region, in one query."""
    _require(actor, REGISTRY_ROLES)
    query = select(PayeeAccount).where(col(PayeeAccount.removed_at).is_(None))
    if not actor.is_national:
        query = query.where(
            or_(
                *(col(PayeeAccount.region_code).startswith(significant_prefix(c)) for c in actor.region_codes)
            )
        )
    if kind:
        query = query.where(PayeeAccount.kind == kind)
    query = query.order_by(col(PayeeAccount.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def register_account(
    *, session: AsyncSession, actor: StaffPrincipal, body: PayeeAccountIn, ip: str | None
) -> PayeeAccount:
    _require(actor, REGISTRY_ROLES)
    if not actor.covers_region(body.region_code):
        raise ClaimError("outside_scope")
    account = account_of(body.account_number)
    existing = (
        await session.exec(
            select(PayeeAccount).where(
                PayeeAccount.account_number == account, col(PayeeAccount.removed_at).is_(None)
            )
        )
    ).first()
    if existing is not None:  # another region's entry: known, but its kind is not this actor's to see
        seen = actor.covers_region(existing.region_code)
        raise ClaimError("payee_account_known", **({"kind": existing.kind} if seen else {}))
    entry = PayeeAccount(
        account_number=account,
        bank_name=body.bank_name.strip(),
        kind=body.kind,
        holder=body.holder.strip(),
        region_code=body.region_code,
        note=body.note.strip(),
        created_by=actor.user_id,
    )
    session.add(entry)
    await session.flush()
    record_audit(
        session=session,
        actor=actor,
        action="payees.register",
        target_type="payee_account",
        target_id=entry.id or "",
        detail={
            "kind": entry.kind,
            "account_masked": mask_value("bank_account", account),
            "holder": entry.holder,
        },
        ip=ip,
    )
    await session.commit()
    await session.refresh(entry)
    return entry


async def remove_account(
    *, session: AsyncSession, actor: StaffPrincipal, account_id: int, ip: str | None
) -> PayeeAccount:
    _require(actor, REGISTRY_ROLES)
    entry = await session.get(PayeeAccount, account_id)
    if entry is None or entry.removed_at is not None or not actor.covers_region(entry.region_code):
        raise ClaimError("not_found")
    entry.removed_at = utcnow()
    entry.removed_by = actor.user_id
    session.add(entry)
    record_audit(
        session=session,
        actor=actor,
        action="payees.remove",
        target_type="payee_account",
        target_id=account_id,
        detail={"kind": entry.kind},
        ip=ip,
    )
    await session.commit()
    await session.refresh(entry)
    return entry

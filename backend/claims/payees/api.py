"""R-CLM-12 staff routes: the registry of accounts never paid (``/api/payee-accounts``) and a claim's payee
exceptions (``/api/claims/{id}/payee-exceptions``): entered by one staff member, decided by another.
Refusals are ``{"detail": {"code", "message", "detail"}}`` (``backend.errors``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from backend.claims.payees import service
from backend.claims.payees.models import PayeeAccount, PayeeException
from backend.claims.payees.schemas import (
    PayeeAccountIn,
    PayeeAccountOut,
    PayeeDecisionIn,
    PayeeExceptionIn,
    PayeeExceptionOut,
)
from backend.deps import SessionDep, require_roles
from backend.enrollment.endorsements import mask_value
from backend.ids import Id
from backend.security import StaffPrincipal
from backend.staff.api import client_ip

router = APIRouter(prefix="/api/payee-accounts", tags=["claims: payees"])
exceptions_router = APIRouter(prefix="/api/claims", tags=["claims: payees"])

Maintainer = Annotated[StaffPrincipal, Depends(require_roles(*service.REGISTRY_ROLES))]
Payer = Annotated[StaffPrincipal, Depends(require_roles(*service.PAYEE_ROLES))]


def account_out(entry: PayeeAccount) -> PayeeAccountOut:
    return PayeeAccountOut(
        id=entry.id or 0,
        account_masked=mask_value("bank_account", entry.account_number),
        bank_name=entry.bank_name,
        kind=entry.kind,
        holder=entry.holder,
        region_code=entry.region_code,
        note=entry.note,
        created_by=entry.created_by,
        created_at=entry.created_at,
    )


def exception_out(exception: PayeeException) -> PayeeExceptionOut:
    return PayeeExceptionOut(
        id=exception.id or 0,
        claim_id=exception.claim_id,
        payee_name=exception.payee_name,
        bank_name=exception.bank_name,
        account_masked=mask_value("bank_account", exception.account_number),
        explanation=exception.explanation,
        status=exception.status,
        entered_by=exception.entered_by,
        entered_at=exception.entered_at,
        decided_by=exception.decided_by,
        decided_at=exception.decided_at,
        decision_note=exception.decision_note,
    )


@router.get("", response_model=list[PayeeAccountOut])
async def list_accounts(
    staff: Maintainer, session: SessionDep, kind: str | None = None
) -> list[PayeeAccountOut]:
    return [account_out(a) for a in await service.list_accounts(session=session, actor=staff, kind=kind)]


@router.post("", response_model=PayeeAccountOut, status_code=201)
async def register_account(
    body: PayeeAccountIn, staff: Maintainer, session: SessionDep, request: Request
) -> PayeeAccountOut:
    entry = await service.register_account(session=session, actor=staff, body=body, ip=client_ip(request))
    return account_out(entry)


@router.delete("/{account_id}", response_model=PayeeAccountOut)
async def remove_account(
    account_id: Id, staff: Maintainer, session: SessionDep, request: Request
) -> PayeeAccountOut:
    entry = await service.remove_account(
        session=session, actor=staff, account_id=account_id, ip=client_ip(request)
    )
    return account_out(entry)


@exceptions_router.post("/{claim_id}/payee-exceptions", response_model=PayeeExceptionOut, status_code=201)
async def enter_exception(
    claim_id: Id, body: PayeeExceptionIn, staff: Payer, session: SessionDep, request: Request
) -> PayeeExceptionOut:
    exception = await service.enter_exception(
        session=session, actor=staff, claim_id=claim_id, body=body, ip=client_ip(request)
    )
    return exception_out(exception)


@exceptions_router.post(
    "/{claim_id}/payee-exceptions/{exception_id}/{decision}", response_model=PayeeExceptionOut
)
async def decide_exception(
    claim_id: Id,
    exception_id: Id,
    decision: service.Decision,
    body: PayeeDecisionIn,
    staff: Payer,
    session: SessionDep,
    request: Request,
) -> PayeeExceptionOut:
    exception = await service.decide_exception(
        session=session,
        actor=staff,
        claim_id=claim_id,
        exception_id=exception_id,
        approve=decision == "approve",
        note=body.note,
        ip=client_ip(request),
    )
    return exception_out(exception)

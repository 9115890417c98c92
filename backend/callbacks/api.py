"""Callback routes: the bot answering for the insured (only their own callbacks), and staff (their regions
only; reads by role, writes audited). Errors are ``{"detail": {"code", "message", "detail"}}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import select

from backend.callbacks import service
from backend.callbacks.models import Callback
from backend.callbacks.schemas import (
    AnswerIn,
    CallbackDetailOut,
    CallbackOut,
    CallbackStaffOut,
    ClaimRecordOut,
    ContactIn,
    DeletedOut,
    PaymentRecordOut,
    RateOut,
    RederiveOut,
    RemarksIn,
    ResolveIn,
    SampleOut,
    StaffAnswerIn,
)
from backend.claims.models import Claim, ClaimPayment
from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep
from backend.ids import Id
from backend.people.disclosure import Personal, shown
from backend.people.models import Person
from backend.security import StaffPrincipal
from backend.staff.api import client_ip

bot_router = APIRouter(prefix="/api/bot/callbacks", tags=["bot: callbacks"])
router = APIRouter(prefix="/api/callbacks", tags=["callbacks"])


def _chat_out(callback: Callback, number: str, recorded: bool = True) -> CallbackOut:
    return CallbackOut(
        id=callback.id or 0,
        claim_number=number,
        amount_fen=callback.amount_fen,
        paid_at=callback.paid_at,
        due_at=callback.due_at,
        status=callback.status,
        received=callback.received,
        amount_correct=callback.amount_correct,
        satisfaction=callback.satisfaction,
        comment_given=callback.comment is not None,
        next_question=service.next_question(callback),
        recorded=recorded,
    )


@bot_router.get("/{callback_id}", response_model=CallbackOut)
async def my_callback(callback_id: Id, principal: BotDep, session: SessionDep) -> CallbackOut:
    callback = await service.callback_for(session, principal, callback_id)
    return _chat_out(callback, await service.claim_number(session, callback))


@bot_router.post("/{callback_id}/answers", response_model=CallbackOut)
async def answer(
    callback_id: Id, body: AnswerIn, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> CallbackOut:
    callback, changed = await service.answer(
        session, settings, principal, callback_id, body.question, body.value
    )
    return _chat_out(callback, await service.claim_number(session, callback), recorded=changed)


# --- staff -------------------------------------------------------------------------------------------


async def _staff_out(session: SessionDep, callback: Callback, role: str) -> CallbackStaffOut:
    claim = await session.get(Claim, callback.claim_id)
    person = await session.get(Person, callback.person_id) if callback.person_id is not None else None
    return CallbackStaffOut(**_staff_fields(callback, claim, person, role))


def _staff_fields(
    callback: Callback, claim: Claim | None, person: Person | None, role: str
) -> dict[str, object]:
    return {
        **callback.model_dump(
            include={
                "id",
                "sample_id",
                "drawn_on",
                "claim_id",
                "policy_id",
                "region_code",
                "case_key",
                "amount_fen",
                "paid_at",
                "due_at",
                "late",
                "status",
                "attempts",
                "channel",
                "asked_at",
                "reminded_at",
                "unreachable_at",
                "received",
                "amount_correct",
                "satisfaction",
                "comment",
                "answered_at",
                "flagged_at",
                "flag_reasons",
                "flag_resolved_at",
                "flag_note",
                "remarks",
                "closed_at",
            }
        ),
        "claim_number": claim.number if claim else "",
        "insured_name": claim.insured_name if claim else "",
        "phone": shown(Personal.PHONE, person.phone if person else None, role),
    }


@router.get("", response_model=list[CallbackStaffOut])
async def list_callbacks(
    staff: StaffDep,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    flagged: bool | None = None,
    sample_id: Id | None = None,
) -> list[CallbackStaffOut]:
    """The queues: ``status=unreachable`` (re-confirm the contact), ``flagged=true`` (to investigate)."""
    rows = await service.list_callbacks(session, staff, status=status, flagged=flagged, sample_id=sample_id)
    return [await _staff_out(session, c, staff.role) for c in rows]


@router.get("/samples", response_model=list[SampleOut])
async def list_samples(staff: StaffDep, session: SessionDep) -> list[SampleOut]:
    rows = await service.list_samples(session, staff)
    return [
        SampleOut.model_validate({**s.model_dump(), "id": s.id or 0, "in_scope": count}) for s, count in rows
    ]


@router.get("/samples/{sample_id}/rederive", response_model=RederiveOut)
async def rederive(sample_id: Id, staff: StaffDep, session: SessionDep) -> RederiveOut:
    """The auditor's check: the draw done again from the recorded seed and population (national scope:
    the population is the whole country's)."""
    _national(staff)
    sample, population, recorded, derived = await service.rederive(session, sample_id)
    return RederiveOut(
        sample_id=sample_id,
        seed=sample.seed,
        population=population,
        recorded=recorded,
        derived=derived,
        matches=recorded == derived,
    )


@router.delete("/samples/{sample_id}", response_model=DeletedOut)
async def delete_sample(
    sample_id: Id, staff: StaffDep, session: SessionDep, settings: SettingsDep, request: Request
) -> DeletedOut:
    """R-CBK-5: refused (``callback_kept``) until the retention period has passed."""
    removed = await service.delete_sample(session, settings, staff, sample_id, client_ip(request))
    return DeletedOut(sample_id=sample_id, callbacks=removed)


@router.get("/rates", response_model=list[RateOut])
async def rates(
    staff: StaffDep,
    session: SessionDep,
    since: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    until: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    level: Annotated[int, Query(ge=2, le=12)] = 12,
) -> list[RateOut]:
    """Response rates by village (``level=12``; 9 township, 6 county...) and month of the draw."""
    rows = await service.response_rates(session, staff, since=since, until=until, level=level)
    return [
        RateOut(
            region_code=r.region_code,
            period=r.period,
            sampled=r.sampled,
            answered=r.answered,
            unreachable=r.unreachable,
            flagged=r.flagged,
            response_rate=round(r.answered / r.sampled, 4) if r.sampled else 0.0,
        )
        for r in rows
    ]


@router.get("/{callback_id}", response_model=CallbackDetailOut)
async def detail(
    callback_id: Id, staff: StaffDep, session: SessionDep, request: Request
) -> CallbackDetailOut:
    """R-CBK-4: the answers with the claim, payee and payment records beside them; the read is audited
    (it shows the payee's account)."""
    service.require_role(staff, service.READ_ROLES)
    callback = await service.scoped_callback(session, staff, callback_id)
    out = await _detail_out(session, callback, staff)
    service.audit(session, staff, "callback.view", callback, client_ip(request))
    await session.commit()
    return out


async def _detail_out(session: SessionDep, callback: Callback, staff: StaffPrincipal) -> CallbackDetailOut:
    claim = await session.get(Claim, callback.claim_id)
    assert claim is not None
    person = await session.get(Person, callback.person_id) if callback.person_id is not None else None
    payment = (
        await session.exec(select(ClaimPayment).where(ClaimPayment.claim_id == callback.claim_id))
    ).first()
    return CallbackDetailOut(
        **_staff_fields(callback, claim, person, staff.role),
        claim=ClaimRecordOut(
            id=claim.id or 0,
            number=claim.number,
            kind=claim.kind,
            status=claim.status,
            insured_name=claim.insured_name,
            agreed_amount_fen=claim.agreed_amount_fen,
            paid_amount_fen=claim.paid_amount_fen,
            paid_at=claim.paid_at,
            event_id=claim.event_id,
        ),
        payment=None
        if payment is None
        else PaymentRecordOut(
            amount_fen=payment.amount_fen,
            payee_name=payment.payee_name,
            bank_name=payment.bank_name,
            account_number=shown(Personal.BANK_ACCOUNT, payment.account_number, staff.role),
            payee_is_insured=payment.payee_is_insured,
            reference=payment.reference,
            paid_at=payment.paid_at,
        ),
        history=list(callback.history),
    )


@router.post("/{callback_id}/contact", response_model=CallbackStaffOut)
async def reconfirm_contact(
    callback_id: Id,
    body: ContactIn,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> CallbackStaffOut:
    """R-CBK-3: a new phone or the old one confirmed; the insured is asked again at once."""
    callback = await service.reconfirm_contact(
        session, settings, staff, callback_id, phone=body.phone, confirm=body.confirm, ip=client_ip(request)
    )
    return await _staff_out(session, callback, staff.role)


@router.post("/{callback_id}/answers", response_model=CallbackStaffOut)
async def answer_by_phone(
    callback_id: Id,
    body: StaffAnswerIn,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> CallbackStaffOut:
    callback = await service.answer_by_phone(
        session,
        settings,
        staff,
        callback_id,
        received=body.received,
        amount_correct=body.amount_correct,
        satisfaction=body.satisfaction,
        comment=body.comment,
        ip=client_ip(request),
    )
    return await _staff_out(session, callback, staff.role)


@router.post("/{callback_id}/close", response_model=CallbackStaffOut)
async def close(
    callback_id: Id, body: RemarksIn, staff: StaffDep, session: SessionDep, request: Request
) -> CallbackStaffOut:
    """R-CBK-3: still unreachable after the contact was re-confirmed; the reason goes to the remarks."""
    callback = await service.close_unreachable(session, staff, callback_id, body.remarks, client_ip(request))
    return await _staff_out(session, callback, staff.role)


@router.post("/{callback_id}/resolve", response_model=CallbackStaffOut)
async def resolve(
    callback_id: Id, body: ResolveIn, staff: StaffDep, session: SessionDep, request: Request
) -> CallbackStaffOut:
    callback = await service.resolve_flag(session, staff, callback_id, body.note, client_ip(request))
    return await _staff_out(session, callback, staff.role)


def _national(staff: StaffPrincipal) -> None:
    if not staff.is_national:
        raise service.CallbackError("outside_scope", reason="national_scope_required")

"""Staff claim routes: adjuster, survey, documents, denial, assessment, payment, deadlines (alerts: ``backend.alerts``).

Errors are ``{"detail": {"code", "message", "detail"}}``: 404 ``not_found`` (also for a claim outside the
caller's region), 403 ``forbidden`` (role), 409 ``documents_already_requested``, 422 for the others.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request

from backend.claims import workflow
from backend.claims.models import Claim
from backend.claims.payees.api import exception_out
from backend.claims.schemas_staff import (
    AssessIn,
    AssignIn,
    AttachmentOut,
    ClaimActionOut,
    ClaimDetailOut,
    ClaimSummaryOut,
    DeadlineOut,
    DenyIn,
    DisposalIn,
    DocumentRequestOut,
    DocumentsRequestIn,
    EventOut,
    PaymentIn,
    PaymentOut,
    PrepaymentIn,
    PrepaymentOut,
    SurveyReportIn,
    SurveyReportOut,
    SurveyScheduleIn,
)
from backend.deps import SessionDep, SettingsDep, StaffDep, require_roles
from backend.enrollment.endorsements import mask_value
from backend.ids import Id
from backend.people.disclosure import Personal, shown
from backend.security import StaffPrincipal

router = APIRouter(prefix="/api/claims", tags=["claims: staff"])

Adjuster = Annotated[StaffPrincipal, Depends(require_roles(*workflow.ADJUSTER_ROLES))]
Payer = Annotated[StaffPrincipal, Depends(require_roles(*workflow.PAYMENT_ROLES))]


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _deadlines(deadlines: dict[str, workflow.Deadline]) -> dict[str, DeadlineOut]:
    return {
        name: DeadlineOut(due_at=d.due_at, met_at=d.met_at, state=d.state, late=d.late, agreed_at=d.agreed_at)
        for name, d in deadlines.items()
    }


def _summary_fields(claim: Claim, deadlines: dict[str, workflow.Deadline]) -> dict[str, object]:
    return {
        "id": claim.id or 0,
        "number": claim.number,
        "kind": claim.kind,
        "status": claim.status,
        "policy_id": claim.policy_id,
        "product_code": claim.product_code,
        "region_code": claim.region_code,
        "insured_name": claim.insured_name,
        "cause": claim.cause,
        "lost_quantity": claim.lost_quantity,
        "unit": claim.unit,
        "estimated_amount_fen": claim.estimated_amount_fen,
        "reported_at": claim.reported_at,
        "late": claim.late,
        "adjuster_id": claim.adjuster_id,
        "joint_survey": claim.joint_survey,
        "remote_survey": claim.remote_survey,
        "disposal_required": claim.disposal_required,
        "disposal_received_at": claim.disposal_received_at,
        "disposal_proven_at": claim.disposal_proven_at,
        "assessed_amount_fen": claim.assessed_amount_fen,
        "agreed_amount_fen": claim.agreed_amount_fen,
        "paid_amount_fen": claim.paid_amount_fen,
        "denial_reasons": list(claim.denial_reasons),
        "deadlines": _deadlines(deadlines),
    }


def summary_out(row: workflow.ClaimRow) -> ClaimSummaryOut:
    return ClaimSummaryOut.model_validate(_summary_fields(row.claim, row.deadlines))


def detail_out(detail: workflow.ClaimDetail, role: str) -> ClaimDetailOut:
    """The claim as ``role`` may see it: the reporter's phone per ``backend/people/disclosure.py``."""
    claim = detail.claim
    survey = detail.survey
    request = detail.document_request
    payment = detail.payment
    return ClaimDetailOut.model_validate(
        {
            **_summary_fields(claim, detail.deadlines),
            "loss_started_at": claim.loss_started_at,
            "loss_ended_at": claim.loss_ended_at,
            "place_name": claim.place_name,
            "description": claim.description,
            "reporter_name": claim.reporter_name,
            "reporter_phone": shown(Personal.PHONE, claim.reporter_phone, role),
            "reported_by_staff_id": claim.reported_by_staff_id,
            "delay_minutes": claim.delay_minutes,
            "survey_agreed_at": claim.survey_agreed_at,
            "surveyed_at": claim.surveyed_at,
            "assessed_at": claim.assessed_at,
            "agreed_at": claim.agreed_at,
            "confirmation": dict(claim.confirmation),
            "disposal_confirmation": dict(claim.disposal_confirmation),
            "objection": claim.objection,
            "paid_at": claim.paid_at,
            "denied_at": claim.denied_at,
            "timeline": [
                EventOut(at=e.at, kind=e.kind, note=e.note, actor=e.actor, data=dict(e.data))
                for e in detail.events
            ],
            "attachments": [
                AttachmentOut(
                    id=a.id or 0,
                    document_id=a.document_id,
                    purpose=a.purpose,
                    added_at=a.added_at,
                    sha256=detail.attachment_files.get(a.document_id, ("", ""))[0],
                    content_type=detail.attachment_files.get(a.document_id, ("", ""))[1],
                )
                for a in detail.attachments
            ],
            "survey_report": SurveyReportOut(
                loss=survey.loss,
                cause=survey.cause,
                covered=survey.covered,
                surveyors=list(survey.surveyors),
                loss_degree=survey.loss_degree,
                sampling=list(survey.sampling),
                sampling_record=dict(survey.sampling_record),
                remote=survey.remote,
                joint_with_government=survey.joint_with_government,
                created_by=survey.created_by,
                created_at=survey.created_at,
            )
            if survey
            else None,
            "document_request": DocumentRequestOut(
                items=list(request.items),
                requested_by=request.requested_by,
                requested_at=request.requested_at,
                fulfilled_at=request.fulfilled_at,
            )
            if request
            else None,
            "payment": PaymentOut(
                amount_fen=payment.amount_fen,
                payee_name=payment.payee_name,
                bank_name=payment.bank_name,
                account_masked=mask_value("bank_account", payment.account_number),
                payee_is_insured=payment.payee_is_insured,
                explanation=payment.explanation,
                reference=payment.reference,
                paid_by=payment.paid_by,
                paid_at=payment.paid_at,
                payee_exception_id=payment.payee_exception_id,
                approved_by=payment.approved_by,
                prepaid_fen=payment.prepaid_fen,
            )
            if payment
            else None,
            "payee_exceptions": [exception_out(e) for e in detail.payee_exceptions],
            "prepayments": [
                PrepaymentOut(
                    id=p.id or 0,
                    kind=p.kind,
                    amount_fen=p.amount_fen,
                    payee_name=p.payee_name,
                    payee_kind=p.payee_kind,
                    bank_name=p.bank_name,
                    account_masked=mask_value("bank_account", p.account_number),
                    reason=p.reason,
                    reference=p.reference,
                    recorded_by=p.recorded_by,
                    recorded_at=p.recorded_at,
                )
                for p in detail.prepayments
            ],
            "prepaid_fen": detail.prepaid_fen,
        }
    )


async def _action_out(
    session: SessionDep,
    staff: StaffPrincipal,
    claim_id: Id | None,
    *,
    denial_suggested: bool = False,
    document_id: Id | None = None,
) -> ClaimActionOut:
    """The claim as it stands after a staff action, for the action's answer."""
    detail = await workflow.claim_detail(session=session, actor=staff, claim_id=claim_id or 0)
    return ClaimActionOut(
        claim=detail_out(detail, staff.role), denial_suggested=denial_suggested, document_id=document_id
    )


# --- deadlines view (R-KPI-3) -----------------------------------------------------------------------------


@router.get("", response_model=list[ClaimSummaryOut])
async def list_claims(
    staff: StaffDep,
    session: SessionDep,
    status: str | None = None,
    deadline: Literal["overdue", "due_soon"] | None = None,
) -> list[ClaimSummaryOut]:
    rows = await workflow.list_claims(session=session, actor=staff, status=status, deadline=deadline)
    return [summary_out(r) for r in rows]


@router.get("/{claim_id}", response_model=ClaimDetailOut)
async def get_claim(claim_id: Id, staff: StaffDep, session: SessionDep) -> ClaimDetailOut:
    detail = await workflow.claim_detail(session=session, actor=staff, claim_id=claim_id)
    return detail_out(detail, staff.role)


# --- actions ----------------------------------------------------------------------------------------------


@router.post("/{claim_id}/assign", response_model=ClaimActionOut)
async def assign(
    claim_id: Id, body: AssignIn, staff: Adjuster, session: SessionDep, request: Request
) -> ClaimActionOut:
    claim = await workflow.assign_adjuster(
        session=session, actor=staff, claim_id=claim_id, adjuster_id=body.adjuster_id, ip=_ip(request)
    )
    return await _action_out(session, staff, claim.id)


@router.post("/{claim_id}/survey-schedule", response_model=ClaimActionOut)
async def survey_schedule(
    claim_id: Id, body: SurveyScheduleIn, staff: Adjuster, session: SessionDep, request: Request
) -> ClaimActionOut:
    claim = await workflow.schedule_survey(
        session=session,
        actor=staff,
        claim_id=claim_id,
        at=body.at,
        remote=body.remote,
        remote_method=body.remote_method,
        joint_with_government=body.joint_with_government,
        delay_reason=body.delay_reason,
        ip=_ip(request),
    )
    return await _action_out(session, staff, claim.id)


@router.post("/{claim_id}/survey-report", response_model=ClaimActionOut)
async def survey_report(
    claim_id: Id, body: SurveyReportIn, staff: Adjuster, session: SessionDep, request: Request
) -> ClaimActionOut:
    outcome = await workflow.survey_report(
        session=session,
        actor=staff,
        claim_id=claim_id,
        loss=body.loss,
        cause=body.cause,
        covered=body.covered,
        surveyors=body.surveyors,
        loss_degree=body.loss_degree,
        sampling=[s.model_dump() for s in body.sampling],
        loss_villages=[v.model_dump() for v in body.loss_villages],
        loss_classes=body.loss_classes,
        samplers=body.samplers,
        sampling_signer=body.sampling_signer.model_dump() if body.sampling_signer else None,
        harvest_on=body.harvest_on,
        ip=_ip(request),
    )
    return await _action_out(session, staff, outcome.claim.id, denial_suggested=outcome.denial_suggested)


@router.post("/{claim_id}/documents-request", response_model=ClaimActionOut)
async def documents_request(
    claim_id: Id, body: DocumentsRequestIn, staff: Adjuster, session: SessionDep, request: Request
) -> ClaimActionOut:
    asked = await workflow.request_documents(
        session=session, actor=staff, claim_id=claim_id, items=body.items, ip=_ip(request)
    )
    return await _action_out(session, staff, asked.claim_id)


@router.post("/{claim_id}/deny", response_model=ClaimActionOut)
async def deny(
    claim_id: Id, body: DenyIn, staff: Adjuster, session: SessionDep, settings: SettingsDep, request: Request
) -> ClaimActionOut:
    claim, document = await workflow.deny(
        session=session,
        actor=staff,
        claim_id=claim_id,
        reasons=body.reasons,
        settings=settings,
        ip=_ip(request),
    )
    return await _action_out(session, staff, claim.id, document_id=document.id)


@router.post("/{claim_id}/disposal", response_model=ClaimActionOut)
async def disposal(
    claim_id: Id, body: DisposalIn, staff: Adjuster, session: SessionDep, request: Request
) -> ClaimActionOut:
    """R-CLM-7: confirm (or reject) the proof of harmless disposal; settlement waits for it."""
    claim = await workflow.decide_disposal(
        session=session,
        actor=staff,
        claim_id=claim_id,
        decision=workflow.DisposalDecision(
            decision=body.decision,
            by=body.by,
            authority=body.vet_authority,
            person=body.vet_person,
            confirmed_at=body.vet_confirmed_at,
            document=body.vet_document,
            reason=body.reason,
        ),
        ip=_ip(request),
    )
    return await _action_out(session, staff, claim.id)


@router.post("/{claim_id}/assess", response_model=ClaimActionOut)
async def assess(
    claim_id: Id, body: AssessIn, staff: Adjuster, session: SessionDep, request: Request
) -> ClaimActionOut:
    claim = await workflow.assess(
        session=session, actor=staff, claim_id=claim_id, amount_fen=body.amount_fen, ip=_ip(request)
    )
    return await _action_out(session, staff, claim.id)


@router.post("/{claim_id}/payment", response_model=ClaimActionOut)
async def payment(
    claim_id: Id, body: PaymentIn, staff: Payer, session: SessionDep, request: Request
) -> ClaimActionOut:
    paid = await workflow.record_payment(
        session=session,
        actor=staff,
        claim_id=claim_id,
        reference=body.reference,
        amount_fen=body.amount_fen,
        payee_name=body.payee_name,
        bank_name=body.bank_name,
        account_number=body.account_number,
        ip=_ip(request),
    )
    return await _action_out(session, staff, paid.claim_id)


@router.post("/{claim_id}/prepayments", response_model=ClaimActionOut, status_code=201)
async def prepayment(
    claim_id: Id, body: PrepaymentIn, staff: Payer, session: SessionDep, request: Request
) -> ClaimActionOut:
    """R-LIA-6: a pre-payment of compensation, rescue or medical costs on an accident claim."""
    made = await workflow.record_prepayment(
        session=session,
        actor=staff,
        claim_id=claim_id,
        kind=body.kind,
        amount_fen=body.amount_fen,
        payee_name=body.payee_name,
        payee_kind=body.payee_kind,
        bank_name=body.bank_name,
        account_number=body.account_number,
        reason=body.reason,
        reference=body.reference,
        ip=_ip(request),
    )
    return await _action_out(session, staff, made.claim_id)

"""Enrollment routes: the bot acting for one insured, and staff acting within their region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import Response

from backend import images
from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep, require_roles, require_service
from backend.enrollment import documents, endorsements, payments, service, verification
from backend.enrollment.collective import holdings
from backend.enrollment.collective.models import PolicyHousehold
from backend.enrollment.models import Application, Document, Endorsement, Policy
from backend.enrollment.schemas import (
    ApplicationOut,
    ApplicationSubmit,
    EarTagCheckIn,
    EarTagCheckOut,
    EndorsementDecision,
    EndorsementOut,
    EndorsementRequest,
    LateEntryIn,
    OfflinePaymentIn,
    PaymentStartIn,
    PaymentStartOut,
    PolicyOut,
    PremiumOut,
    SignerRolesIn,
    SignerRolesOut,
    TelegramPaymentIn,
    VerificationIn,
)
from backend.files import content_disposition
from backend.ids import Id
from backend.people.disclosure import Personal, shown
from backend.security import StaffPrincipal
from backend.settings import Settings

bot_router = APIRouter(prefix="/api/bot", tags=["bot: enrollment"])
staff_router = APIRouter(prefix="/api", tags=["enrollment"])
service_router = APIRouter(prefix="/api/outbox", tags=["outbox"], dependencies=[Depends(require_service)])

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
Verifier = Annotated[StaffPrincipal, Depends(require_roles("agent", "adjuster"))]
Underwriter = Annotated[StaffPrincipal, Depends(require_roles("underwriter"))]
# Evidence uploads: verifiers' site photos; the underwriter's photo of a signed form for a late entry.
Uploader = Annotated[StaffPrincipal, Depends(require_roles("agent", "adjuster", "underwriter"))]
VERIFIER_ROLES = frozenset({"admin", "agent", "adjuster"})
# Only who enters a late entry uploads its signed form (an agent's upload would be evidence nobody checked).
LATE_ENTRY_ROLES = frozenset({"admin", "underwriter"})
# A signed paper form: the underwriter's for a late entry (R-ENR-5), the surveyor's for a sampling record
# the insured signed on site (R-CLM-8). Whose form may serve which record is checked where it is used.
SIGNED_FORM_ROLES = LATE_ENTRY_ROLES | {"adjuster"}


def application_out(application: Application, policy_id: int | None = None) -> ApplicationOut:
    answers = application.answers
    return ApplicationOut(
        id=application.id or 0,
        number=application.number,
        status=application.status,
        product_code=application.product_code,
        kind=application.kind,
        insured_name=answers.get("company_name") or answers.get("name", ""),
        quantity=application.quantity,
        sum_insured_fen=application.sum_insured_fen,
        premium=PremiumOut(
            total_fen=int(application.premium.get("total_fen", 0)),
            payable_fen=application.payable_fen,
            breakdown=application.premium,
        ),
        verification_required=application.verification_required,
        verification_reasons=application.verification_reasons,
        created_at=application.created_at,
        policy_id=policy_id,
    )


def insured_numbers(answers: dict[str, Any], role: str) -> dict[str, str]:
    """Who the insured is, for the staff who verify the application (R-ENR-7): the numbers as ``role``
    may see them. An enterprise's number is its credit code (``id_number`` here)."""
    return {
        "name": str(answers.get("company_name") or answers.get("name") or ""),
        "id_number": shown(Personal.ID_NUMBER, answers.get("credit_code") or answers.get("id_number"), role),
        "phone": shown(Personal.PHONE, answers.get("phone"), role),
        "bank_account": shown(Personal.BANK_ACCOUNT, answers.get("bank_account"), role),
    }


def policy_out(policy: Policy, document_id: int | None, role: str | None = None) -> PolicyOut:
    """``role`` None is the chat: its numbers are masked (others may see a phone screen); staff see them
    as their role may (``backend/people/disclosure.py``)."""
    terms = dict(policy.terms)
    terms["bank_account"] = shown(Personal.BANK_ACCOUNT, str(terms.get("bank_account") or ""), role)
    terms["phone"] = shown(Personal.PHONE, str(terms.get("phone") or ""), role)
    return PolicyOut(
        id=policy.id or 0,
        number=policy.number,
        product_code=policy.product_code,
        insured_name=policy.insured_name,
        quantity=policy.quantity,
        sum_insured_fen=policy.sum_insured_fen,
        premium_fen=policy.premium_fen,
        starts_at=policy.starts_at,
        ends_at=policy.ends_at,
        status=policy.status,
        document_id=document_id,
        terms=terms,
        late_entry=policy.late_entry,
    )


def household_policy_out(policy: Policy, household: PolicyHousehold) -> PolicyOut:
    """A household's row shown as its own cover: its name, quantity, sum insured and its own share of the
    premium; its account masked as every number in chat is."""
    return PolicyOut(
        id=policy.id or 0,
        number=policy.number,
        product_code=household.product_code,
        insured_name=household.name,
        quantity=household.quantity,
        sum_insured_fen=household.sum_insured_fen,
        premium_fen=household.premium_total_fen,
        starts_at=policy.starts_at,
        ends_at=policy.ends_at,
        status=policy.status,
        document_id=household.voucher_document_id,
        terms={
            "payable_fen": household.farmer_fen,
            "bank_name": household.bank_name,
            "bank_account": shown(Personal.BANK_ACCOUNT, household.bank_account, None),
            "phone": shown(Personal.PHONE, household.phone or "", None),
        },
        household_id=household.id,
    )


def endorsement_out(endorsement: Endorsement, document_id: int | None = None) -> EndorsementOut:
    return EndorsementOut(
        id=endorsement.id or 0,
        number=endorsement.number,
        policy_id=endorsement.policy_id,
        field=endorsement.field,
        old_value_masked=endorsements.mask_value(endorsement.field, endorsement.old_value),
        new_value_masked=endorsements.mask_value(endorsement.field, endorsement.new_value),
        status=endorsement.status,
        requested_at=endorsement.requested_at,
        decided_at=endorsement.decided_at,
        decision_note=endorsement.decision_note,
        document_id=document_id,
    )


async def _staff_policy_out(session: SessionDep, policy: Policy, staff: StaffPrincipal) -> PolicyOut:
    return (await _policies_out(session, [policy], staff.role))[0]


async def _policy_document_id(session: SessionDep, policy: Policy) -> int | None:
    return (await _policies_out(session, [policy]))[0].document_id


async def _policies_out(
    session: SessionDep, policies: list[Policy], role: str | None = None
) -> list[PolicyOut]:
    """Policies with their e-policy's id: one query for the whole list, no blob read."""
    ids = await service.latest_document_ids(
        session=session, policy_ids=[p.id or 0 for p in policies], kind="e_policy"
    )
    return [policy_out(p, ids.get(p.id or 0), role) for p in policies]


def _file_response(document: Document) -> Response:
    """The stored file as a download: its name in both RFC 6266 forms (``backend/files.py``), so any
    name, ``现场照片.jpg`` included, makes a valid header."""
    return Response(
        document.content,
        media_type=document.content_type,
        headers={
            "Content-Disposition": content_disposition(document.filename),
            "X-Content-SHA256": document.sha256,
        },
    )


@dataclass(frozen=True)
class Upload:
    data: bytes
    content_type: str  # what Pillow found the bytes to be, not what the client said


async def read_verified_image(upload: UploadFile, settings: Settings) -> Upload:
    """The uploaded photo, read up to the limit and opened whole by Pillow (``backend/images.py``):
    a file that only begins like an image, a truncated one or a decompression bomb is refused."""
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, detail={"code": "file_too_large", "message": ""}
        )
    image = await images.checked_image(data, max_pixels=settings.max_image_pixels)
    return Upload(data, image.content_type)


# --- the bot, for the insured ---------------------------------------------------------------------------


@bot_router.post("/applications", response_model=ApplicationOut)
async def submit(body: ApplicationSubmit, principal: BotDep, session: SessionDep) -> ApplicationOut:
    application = await service.submit_application(session=session, principal=principal, body=body)
    return application_out(application)


@bot_router.get("/applications", response_model=list[ApplicationOut])
async def my_applications(principal: BotDep, session: SessionDep) -> list[ApplicationOut]:
    return [application_out(a) for a in await service.applications_for(session=session, principal=principal)]


@bot_router.post("/signer-roles", response_model=SignerRolesOut)
async def signer_roles(body: SignerRolesIn, principal: BotDep, session: SessionDep) -> SignerRolesOut:
    """R-ENR-5: the chat offers "I confirm myself" only where the backend would accept it."""
    insured = {"insured_type": body.insured_type, "phone": body.phone}
    if body.insured_type in service.NATURAL_PERSON_TYPES:
        insured["id_number"] = service.validated_resident_id(body.id_number)
    else:  # an organisation or enterprise is bound by its credit code (R-ENR-5)
        insured["credit_code"] = service.validated_credit_code(body.id_number)
    roles = await service.signer_roles(session=session, principal=principal, insured=insured)
    return SignerRolesOut.model_validate({"roles": roles})


@bot_router.post("/ear-tags/check", response_model=EarTagCheckOut)
async def check_ear_tags(body: EarTagCheckIn, _principal: BotDep, session: SessionDep) -> EarTagCheckOut:
    return EarTagCheckOut(taken=await service.taken_ear_tags(session=session, tags=body.tags))


@bot_router.post("/applications/{application_id}/payments", response_model=PaymentStartOut)
async def pay(
    application_id: Id, body: PaymentStartIn, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> PaymentStartOut:
    started, policy = await payments.start_payment(
        session=session,
        principal=principal,
        application_id=application_id,
        provider=body.provider,
        settings=settings,
    )
    if policy is not None:
        started.policy = policy_out(policy, await _policy_document_id(session, policy))
    return started


@bot_router.post("/payments/telegram/precheck", status_code=204)
async def telegram_precheck(body: TelegramPaymentIn, _principal: BotDep, session: SessionDep) -> None:
    await payments.precheck_telegram_payment(session=session, body=body)


@bot_router.post("/payments/telegram", response_model=PolicyOut)
async def telegram_paid(
    body: TelegramPaymentIn, _principal: BotDep, session: SessionDep, settings: SettingsDep
) -> PolicyOut:
    policy = await payments.confirm_telegram_payment(session=session, body=body, secret=settings.secret_key)
    return policy_out(policy, await _policy_document_id(session, policy))


@bot_router.get("/policies", response_model=list[PolicyOut])
async def my_policies(principal: BotDep, session: SessionDep) -> list[PolicyOut]:
    own = await _policies_out(session, await service.policies_for(session=session, principal=principal))
    if principal.person_view is None:
        return own
    rows = await holdings.households_of_person(session, principal.person_view)
    return own + [household_policy_out(policy, household) for household, policy in rows]


@bot_router.get("/policies/{policy_id}", response_model=PolicyOut)
async def my_policy(policy_id: Id, principal: BotDep, session: SessionDep) -> PolicyOut:
    try:
        policy = await service.policy_for(session=session, principal=principal, policy_id=policy_id)
    except service.EnrollmentError:
        held = await _household_view(session, principal.person_view, policy_id)
        if held is None:
            raise
        return held
    return policy_out(policy, await _policy_document_id(session, policy))


async def _household_view(session: SessionDep, person_id: int | None, policy_id: int) -> PolicyOut | None:
    """The chat's person as a household of this collective policy, if they are one."""
    if person_id is None:
        return None
    household = await holdings.household_on_policy(session, policy_id=policy_id, person_id=person_id)
    policy = await session.get(Policy, policy_id) if household is not None else None
    if household is None or policy is None:
        return None
    return household_policy_out(policy, household)


@bot_router.get("/documents/{document_id}")
async def my_document(document_id: Id, principal: BotDep, session: SessionDep) -> Response:
    document = await service.document_for(session=session, principal=principal, document_id=document_id)
    return _file_response(document)


@bot_router.post("/documents", status_code=201)
async def upload_authorisation(
    principal: BotDep,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(pattern="^authorisation$")] = "authorisation",
) -> dict[str, int | str]:
    """R-ENR-5: the photo of a written authorisation, kept as evidence."""
    if principal.person_id is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"code": "phone_required", "message": ""}
        )
    upload = await read_verified_image(file, settings)
    document = await documents.store_document(
        session=session,
        kind=kind,
        filename=file.filename or "authorisation.jpg",
        content=upload.data,
        content_type=upload.content_type,
        person_id=principal.person_id,
    )
    await session.commit()
    return {"id": document.id or 0, "sha256": document.sha256}


@bot_router.post("/policies/{policy_id}/endorsements", response_model=EndorsementOut)
async def ask_endorsement(
    policy_id: Id, body: EndorsementRequest, principal: BotDep, session: SessionDep
) -> EndorsementOut:
    endorsement = await endorsements.request_endorsement(
        session=session, principal=principal, policy_id=policy_id, body=body
    )
    return endorsement_out(endorsement)


# --- staff ------------------------------------------------------------------------------------------------


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@staff_router.get("/applications", response_model=list[ApplicationOut])
async def list_applications(
    staff: StaffDep, session: SessionDep, status: str | None = None
) -> list[ApplicationOut]:
    rows = await verification.list_applications(session=session, actor=staff, status=status)
    return [application_out(a) for a in rows]


@staff_router.get("/applications/{application_id}")
async def get_application(application_id: Id, staff: StaffDep, session: SessionDep) -> dict[str, object]:
    application = await verification.scoped_application(
        session=session, actor=staff, application_id=application_id
    )
    policy = await service.policy_of_application(session=session, application_id=application_id)
    out = application_out(application, policy.id if policy else None).model_dump(mode="json")
    out["region_code"] = application.region_code
    out["insured"] = insured_numbers(application.answers, staff.role)
    out["signer"] = application.signer
    out["disclosure"] = {
        "version": application.disclosure_version,
        "confirmed_at": application.disclosure_confirmed_at.isoformat(),
    }
    return out


@staff_router.post("/documents", status_code=201)
async def upload_evidence(
    staff: Uploader,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    file: Annotated[UploadFile, File()],
    application_id: Annotated[Id | None, Form()] = None,
    kind: Annotated[str, Form(pattern="^(verification_photo|signed_form)$")] = "verification_photo",
) -> dict[str, int | str]:
    """Verification photos (R-ENR-7), attached to the application they prove; or the photo of a paper
    form signed by the insured or their relative or authorised person, for a late entry (R-ENR-5, R-ENR-6),
    attached to the application the late entry creates."""
    if kind == "verification_photo":
        if staff.role not in VERIFIER_ROLES:
            raise service.EnrollmentError("forbidden")
        if application_id is None:
            raise service.EnrollmentError("application_required")
        await verification.scoped_application(session=session, actor=staff, application_id=application_id)
    elif staff.role not in SIGNED_FORM_ROLES:
        raise service.EnrollmentError("forbidden")
    upload = await read_verified_image(file, settings)
    document = await documents.store_document(
        session=session,
        kind=kind,
        filename=file.filename or "photo.jpg",
        content=upload.data,
        content_type=upload.content_type,
        application_id=application_id if kind == "verification_photo" else None,
        uploaded_by_staff_id=staff.user_id,
    )
    from backend.staff.service import record_audit

    target = ("application", application_id) if application_id is not None else ("document", document.id or 0)
    record_audit(
        session=session,
        actor=staff,
        action="documents.upload",
        target_type=target[0],
        target_id=target[1],
        detail={"sha256": document.sha256, "kind": kind},
        ip=_ip(request),
    )
    await session.commit()
    return {"id": document.id or 0, "sha256": document.sha256}


@staff_router.post("/applications/{application_id}/verification", response_model=ApplicationOut)
async def verify(
    application_id: Id, body: VerificationIn, staff: Verifier, session: SessionDep, request: Request
) -> ApplicationOut:
    application = await verification.record_verification(
        session=session, actor=staff, application_id=application_id, body=body, ip=_ip(request)
    )
    return application_out(application)


@staff_router.post("/applications/{application_id}/offline-payment", response_model=PolicyOut)
async def offline_payment(
    application_id: Id,
    body: OfflinePaymentIn,
    staff: Underwriter,
    session: SessionDep,
    request: Request,
    settings: SettingsDep,
) -> PolicyOut:
    policy = await payments.confirm_offline_payment(
        session=session,
        actor=staff,
        application_id=application_id,
        body=body,
        ip=_ip(request),
        secret=settings.secret_key,
    )
    return await _staff_policy_out(session, policy, staff)


@staff_router.post("/policies/late-entry", response_model=PolicyOut, status_code=201)
async def late_entry(
    body: LateEntryIn, staff: Underwriter, session: SessionDep, request: Request, settings: SettingsDep
) -> PolicyOut:
    policy = await verification.late_entry(
        session=session, actor=staff, body=body, ip=_ip(request), secret=settings.secret_key
    )
    return await _staff_policy_out(session, policy, staff)


@staff_router.get("/policies", response_model=list[PolicyOut])
async def list_policies(staff: StaffDep, session: SessionDep) -> list[PolicyOut]:
    policies = await verification.list_policies(session=session, actor=staff)
    return await _policies_out(session, policies, staff.role)


@staff_router.get("/policies/{policy_id}", response_model=PolicyOut)
async def get_policy(policy_id: Id, staff: StaffDep, session: SessionDep) -> PolicyOut:
    policy = await verification.scoped_policy(session=session, actor=staff, policy_id=policy_id)
    return await _staff_policy_out(session, policy, staff)


# GET /api/documents/{document_id}, the staff download, is backend/claims/evidence.py: a claim's photos
# follow the claim's scope, and enrollment does not know claims.


@staff_router.get("/endorsements", response_model=list[EndorsementOut])
async def pending_endorsements(staff: StaffDep, session: SessionDep) -> list[EndorsementOut]:
    return [endorsement_out(e) for e in await endorsements.list_pending(session=session, actor=staff)]


@staff_router.post("/endorsements/{endorsement_id}/approve", response_model=EndorsementOut)
async def approve_endorsement(
    endorsement_id: Id, body: EndorsementDecision, staff: Underwriter, session: SessionDep, request: Request
) -> EndorsementOut:
    return await _decide(endorsement_id, True, body, staff, session, request)


@staff_router.post("/endorsements/{endorsement_id}/refuse", response_model=EndorsementOut)
async def refuse_endorsement(
    endorsement_id: Id, body: EndorsementDecision, staff: Underwriter, session: SessionDep, request: Request
) -> EndorsementOut:
    return await _decide(endorsement_id, False, body, staff, session, request)


async def _decide(
    endorsement_id: Id,
    approve: bool,
    body: EndorsementDecision,
    staff: StaffPrincipal,
    session: SessionDep,
    request: Request,
) -> EndorsementOut:
    endorsement, document_id = await endorsements.decide_endorsement(
        session=session,
        actor=staff,
        endorsement_id=endorsement_id,
        approve=approve,
        note=body.note,
        ip=_ip(request),
        secret=request.app.state.settings.secret_key,
    )
    return endorsement_out(endorsement, document_id)


# --- delivery workers fetch attachments ----------------------------------------------------------------


@service_router.get("/documents/{document_id}")
async def attachment(document_id: Id, session: SessionDep) -> Response:
    document = await session.get(Document, document_id)
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such document")
    return _file_response(document)

"""Staff side of enrollment: on-site verification (R-ENR-7), late entry (R-ENR-6), scoped queries."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.chat_actions import pay_button
from backend.db import utcnow
from backend.enrollment import payments
from backend.enrollment.issuance import issue_policy
from backend.enrollment.models import (
    Application,
    ApplicationStatus,
    Document,
    Payment,
    PaymentStatus,
    Policy,
    Verification,
)
from backend.enrollment.schemas import LateEntryIn, VerificationIn
from backend.enrollment.service import EnrollmentError, submit_application
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_for_identity
from backend.people.models import ChatIdentity
from backend.products import pricing
from backend.products.models import Product
from backend.security import BotPrincipal, StaffPrincipal, significant_prefix
from backend.staff.models import StaffUser
from backend.staff.service import record_audit
from messages import label, local_date, render


async def scoped_application(
    *, session: AsyncSession, actor: StaffPrincipal, application_id: int
) -> Application:
    """Staff see only their region: outside it, an application does not exist for them."""
    application = await session.get(Application, application_id)
    if application is None or not actor.covers_region(application.region_code):
        raise EnrollmentError("not_found")
    return application


def _in_scope(query, actor: StaffPrincipal, column):  # type: ignore[no-untyped-def]
    if actor.is_national:
        return query
    from sqlalchemy import or_

    return query.where(or_(*(col(column).startswith(significant_prefix(c)) for c in actor.region_codes)))


async def list_applications(
    *, session: AsyncSession, actor: StaffPrincipal, status: str | None, limit: int = 100
) -> list[Application]:
    query = select(Application).order_by(col(Application.id).desc()).limit(limit)
    if status:
        query = query.where(Application.status == status)
    return list((await session.exec(_in_scope(query, actor, Application.region_code))).all())


async def list_policies(*, session: AsyncSession, actor: StaffPrincipal, limit: int = 100) -> list[Policy]:
    query = select(Policy).order_by(col(Policy.id).desc()).limit(limit)
    return list((await session.exec(_in_scope(query, actor, Policy.region_code))).all())


async def scoped_policy(*, session: AsyncSession, actor: StaffPrincipal, policy_id: int) -> Policy:
    policy = await session.get(Policy, policy_id)
    if policy is None or not actor.covers_region(policy.region_code):
        raise EnrollmentError("not_found")
    return policy


async def scoped_document(*, session: AsyncSession, actor: StaffPrincipal, document_id: int) -> Document:
    document = await session.get(Document, document_id)
    if document is None:
        raise EnrollmentError("not_found")
    if document.policy_id is not None:
        await scoped_policy(session=session, actor=actor, policy_id=document.policy_id)
    elif document.application_id is not None:
        await scoped_application(session=session, actor=actor, application_id=document.application_id)
    elif not actor.is_national and document.uploaded_by_staff_id != actor.user_id:
        raise EnrollmentError("not_found")  # an unattached upload: its uploader's, or national staff's
    return document


async def record_verification(
    *, session: AsyncSession, actor: StaffPrincipal, application_id: int, body: VerificationIn, ip: str | None
) -> Application:
    """R-ENR-7: photos and a record; crops need land-rights proof, livestock head count and epidemic
    prevention. A pass lets the farmer pay; a fail cancels the application. The farmer is told either way."""
    application = await scoped_application(session=session, actor=actor, application_id=application_id)
    if application.status != ApplicationStatus.PENDING_VERIFICATION:
        raise EnrollmentError("not_awaiting_verification", status=application.status)
    product = await session.get(Product, application.product_code)
    assert product is not None
    _check_evidence(product, body)
    await _check_photos(session, body.photo_document_ids, application_id)
    session.add(
        Verification(
            application_id=application_id,
            staff_id=actor.user_id,
            record=body.record,
            head_count=body.head_count,
            land_rights_evidence=body.land_rights_evidence,
            epidemic_prevention=body.epidemic_prevention,
            photo_document_ids=body.photo_document_ids,
            passed=body.passed,
        )
    )
    application.verified_at = utcnow()
    application.status = (
        ApplicationStatus.AWAITING_PAYMENT if body.passed else ApplicationStatus.CANCELLED
    ).value
    application.updated_at = utcnow()
    await _notify_verified(session, application, body.passed)
    record_audit(
        session=session,
        actor=actor,
        action="enrollment.verify",
        target_type="application",
        target_id=application_id,
        detail={"passed": body.passed},
        ip=ip,
    )
    await session.commit()
    await session.refresh(application)
    return application


def _check_evidence(product: Product, body: VerificationIn) -> None:
    needed = pricing.required_evidence(product)
    if "land_rights" in needed and not body.land_rights_evidence:
        raise EnrollmentError("land_rights_evidence_missing")
    if "head_count_epidemic_ear_tags" in needed and (body.head_count is None or not body.epidemic_prevention):
        raise EnrollmentError("livestock_evidence_missing")


async def _check_photos(session: AsyncSession, ids: list[int], application_id: int) -> None:
    """Only photos uploaded for this application's verification count as its evidence (R-ENR-7)."""
    query = select(Document.id).where(
        col(Document.id).in_(ids),
        Document.kind == "verification_photo",
        Document.application_id == application_id,
    )
    found = (await session.exec(query)).all()
    if len(set(found)) != len(set(ids)):
        raise EnrollmentError("photo_not_found")


async def _notify_verified(session: AsyncSession, application: Application, passed: bool) -> None:
    identity = await session.get(ChatIdentity, application.identity_id)
    assert identity is not None
    locale = identity.locale
    buttons = (
        [
            [
                {
                    "text": label("enroll.pay_now", locale),
                    "callback_data": pay_button(application.id),
                }
            ]
        ]
        if passed
        else []
    )
    key = "enroll/verification_passed" if passed else "enroll/verification_failed"
    # The campaign's agent (a QR scan) is the farmer's first contact: named, with a number.
    agent = await session.get(StaffUser, application.agent_id) if application.agent_id else None
    await enqueue_for_identity(
        session=session,
        identity=identity,
        dedupe_key=f"application-{application.id}-verified",
        priority=Priority.NOTICE,
        text=render(
            key,
            locale,
            application=application,
            agent_name=agent.full_name if agent else "",
            agent_phone=(agent.phone or "") if agent else "",
        ),
        buttons=buttons,
    )


async def _signed_form(
    session: AsyncSession, document_id: int, actor: StaffPrincipal, region_code: str
) -> Document:
    """The uploaded photo of the signed paper form, not yet evidence for another application, uploaded by
    this staff member or by staff of their region for the late entry's region (R-ENR-5): a form somebody
    else uploaded, from wherever, is no evidence this underwriter has seen."""
    document = await session.get(Document, document_id)
    if document is None or document.kind != "signed_form" or document.application_id is not None:
        raise EnrollmentError("signed_form_missing")
    if document.uploaded_by_staff_id != actor.user_id and not await _uploaded_in_scope(
        session, document, actor, region_code
    ):
        raise EnrollmentError("signed_form_not_in_scope")
    return document


async def _uploaded_in_scope(
    session: AsyncSession, document: Document, actor: StaffPrincipal, region_code: str
) -> bool:
    """Whether the uploader's whole region lies in the actor's and covers the late entry's region."""
    if document.uploaded_by_staff_id is None:
        return False
    uploader = await session.get(StaffUser, document.uploaded_by_staff_id)
    if uploader is None:
        return False
    scope = StaffPrincipal(
        user_id=document.uploaded_by_staff_id,
        username=uploader.username,
        role=uploader.role,
        region_codes=tuple(uploader.region_codes),
    )
    if not scope.covers_region(region_code):
        return False
    if scope.is_national:  # a national uploader lies inside a national actor's scope only
        return actor.is_national
    return all(actor.covers_region(code) for code in scope.region_codes)


async def late_entry(
    *, session: AsyncSession, actor: StaffPrincipal, body: LateEntryIn, ip: str | None, secret: str
) -> Policy:
    """R-ENR-6: main crops only, at most 30 days late, and only with a written reason."""
    product = await session.get(Product, body.application.product_code)
    if product is None:
        raise EnrollmentError("unknown_product")
    if not pricing.late_entry_allowed(product):
        raise EnrollmentError("late_entry_not_allowed", product=product.code)
    # Calendar days in Beijing time: entered on the 30th day after enrollment is "at most 30 days late".
    days_late = (local_date(utcnow()) - local_date(body.enrolled_on)).days
    if days_late > pricing.LATE_ENTRY_MAX_DAYS:
        raise EnrollmentError("late_entry_too_late", days=days_late)
    if days_late < 0:
        raise EnrollmentError("late_entry_in_future")
    if not actor.covers_region(body.application.region_code):
        raise EnrollmentError("outside_scope")
    identity = await session.get(ChatIdentity, body.identity_id)
    if identity is None or identity.id is None:
        raise EnrollmentError("unknown_identity")
    principal = BotPrincipal(
        identity_id=identity.id,
        channel=identity.channel,
        external_id=identity.external_id,
        person_id=identity.person_id,
        phone_verified=identity.phone_verified_at is not None,
    )
    evidence = await _signed_form(session, body.signed_form_document_id, actor, body.application.region_code)
    application = await submit_application(
        session=session, principal=principal, body=body.application, commit=False
    )
    if application.status == ApplicationStatus.PENDING_VERIFICATION:
        await session.rollback()  # nothing half-done: the verification has to come first
        raise EnrollmentError("verification_pending")
    # R-ENR-5: the signer is the real one (checked like a chat signature), with the signed form as evidence;
    # the staff member is recorded as who entered it, never as who signed.
    evidence.application_id = application.id
    application.signer = {
        **application.signer,
        "evidence_document_id": evidence.id,
        "entered_by_staff_id": actor.user_id,
    }
    await payments.refuse_used_reference(session, "bank_deduction", body.payment_reference)
    payment = Payment(
        application_id=application.id or 0,
        provider="bank_deduction",
        amount_fen=application.payable_fen,
        status=PaymentStatus.CONFIRMED.value,
        external_ref=body.payment_reference,
        confirmed_by=actor.user_id,
        confirmed_at=utcnow(),
    )
    session.add(payment)
    await session.flush()
    policy = await issue_policy(session=session, application=application, payment=payment, secret=secret)
    policy.late_entry = True
    policy.late_entry_reason = body.reason
    record_audit(
        session=session,
        actor=actor,
        action="enrollment.late_entry",
        target_type="policy",
        target_id=policy.id or "",
        detail={
            "reason": body.reason,
            "days_late": days_late,
            "signer_role": body.application.signer.role,
            "signed_form_document_id": body.signed_form_document_id,
        },
        ip=ip,
    )
    await session.commit()
    await session.refresh(policy)
    return policy

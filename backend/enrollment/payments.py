"""Premium before policy (R-ENR-9). Providers: the demo provider (embedded default, labelled as a demo,
refused by the production profile), Telegram Payments (invoice, pre-checkout, successful payment) and
offline confirmation by staff (bank deduction, or the agriculture authority's letter when the government
pays the whole premium)."""

from __future__ import annotations

import secrets

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.enrollment.issuance import issue_policy
from backend.enrollment.models import Application, ApplicationStatus, Payment, PaymentStatus, Policy
from backend.enrollment.schemas import OfflinePaymentIn, PaymentStartOut, TelegramPaymentIn
from backend.enrollment.service import EnrollmentError, application_for, policy_of_application
from backend.security import BotPrincipal, StaffPrincipal
from backend.settings import Settings
from backend.staff.service import record_audit

INVOICE_PREFIX = "tbpay"


def _payable(application: Application) -> None:
    if application.status == ApplicationStatus.PENDING_VERIFICATION:
        raise EnrollmentError("verification_pending")
    if application.status == ApplicationStatus.CANCELLED:
        raise EnrollmentError("application_cancelled")


async def start_payment(
    *, session: AsyncSession, principal: BotPrincipal, application_id: int, provider: str, settings: Settings
) -> tuple[PaymentStartOut, Policy | None]:
    application = await application_for(session=session, principal=principal, application_id=application_id)
    issued = await policy_of_application(session=session, application_id=application.id or 0)
    if issued is not None:  # paid already: answer with the policy instead of charging twice
        return PaymentStartOut(
            kind="instant",
            application_id=application.id or 0,
            amount_fen=application.payable_fen,
            already_paid=True,
        ), issued
    _payable(application)
    if provider == "demo":
        return await _pay_demo(session, application, settings)
    if provider == "telegram":
        return await _open_invoice(session, application, settings), None
    return PaymentStartOut(
        kind="offline", application_id=application.id or 0, amount_fen=application.payable_fen
    ), None


async def _pay_demo(
    session: AsyncSession, application: Application, settings: Settings
) -> tuple[PaymentStartOut, Policy]:
    if settings.payment_provider != "demo":
        raise EnrollmentError("provider_not_available", provider="demo")
    payment = Payment(
        application_id=application.id or 0,
        provider="demo",
        amount_fen=application.payable_fen,
        status=PaymentStatus.CONFIRMED.value,
        external_ref=f"demo-{secrets.token_hex(8)}",
        confirmed_at=utcnow(),
    )
    session.add(payment)
    await session.flush()
    policy = await issue_policy(
        session=session, application=application, payment=payment, secret=settings.secret_key
    )
    await session.commit()
    return PaymentStartOut(
        kind="instant", demo=True, application_id=application.id or 0, amount_fen=application.payable_fen
    ), policy


async def _open_invoice(
    session: AsyncSession, application: Application, settings: Settings
) -> PaymentStartOut:
    if settings.payment_provider != "telegram":
        raise EnrollmentError("provider_not_available", provider="telegram")
    payload = f"{INVOICE_PREFIX}-{application.id}-{secrets.token_urlsafe(9)}"
    session.add(
        Payment(
            application_id=application.id or 0,
            provider="telegram",
            amount_fen=application.payable_fen,
            external_ref=payload,
        )
    )
    await session.commit()
    return PaymentStartOut(
        kind="invoice",
        application_id=application.id or 0,
        amount_fen=application.payable_fen,
        invoice_payload=payload,
        title=application.number,
    )


async def _pending_invoice(session: AsyncSession, payload: str) -> Payment:
    query = select(Payment).where(Payment.provider == "telegram", Payment.external_ref == payload)
    payment = (await session.exec(query)).first()
    if payment is None:
        raise EnrollmentError("unknown_invoice")
    return payment


async def _paid_already(session: AsyncSession, application_id: int) -> bool:
    confirmed = select(Payment).where(
        Payment.application_id == application_id, Payment.status == PaymentStatus.CONFIRMED.value
    )
    return (await session.exec(confirmed)).first() is not None


async def precheck_telegram_payment(*, session: AsyncSession, body: TelegramPaymentIn) -> None:
    """Answer Telegram's pre-checkout query: the invoice is ours, the application unpaid by any means
    (so Telegram never charges twice), and the amount unchanged."""
    payment = await _pending_invoice(session, body.invoice_payload)
    application = await session.get(Application, payment.application_id)
    assert application is not None
    if await _paid_already(session, payment.application_id):
        raise EnrollmentError("already_paid")
    _payable(application)
    if body.currency != "CNY" or body.total_amount != payment.amount_fen:
        raise EnrollmentError("amount_mismatch")
    if payment.status == PaymentStatus.CONFIRMED:
        raise EnrollmentError("already_paid")


async def confirm_telegram_payment(*, session: AsyncSession, body: TelegramPaymentIn, secret: str) -> Policy:
    payment = await _pending_invoice(session, body.invoice_payload)
    application = await session.get(Application, payment.application_id)
    assert application is not None
    if payment.status != PaymentStatus.CONFIRMED:
        if body.total_amount != payment.amount_fen or body.currency != "CNY":
            raise EnrollmentError("amount_mismatch")
        payment.status = PaymentStatus.CONFIRMED.value
        payment.confirmed_at = utcnow()
        payment.evidence = body.telegram_payment_charge_id or body.provider_payment_charge_id
    policy = await issue_policy(session=session, application=application, payment=payment, secret=secret)
    await session.commit()
    return policy


async def refuse_used_reference(session: AsyncSession, provider: str, reference: str | None) -> None:
    """One bank transfer pays one application: a reference recorded before is refused (the unique index
    would have answered a 500)."""
    if not reference:
        return
    query = select(Payment.id).where(Payment.provider == provider, Payment.external_ref == reference)
    if (await session.exec(query)).first() is not None:
        raise EnrollmentError("payment_reference_used", reference=reference)


async def confirm_offline_payment(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    application_id: int,
    body: OfflinePaymentIn,
    ip: str | None,
    secret: str,
) -> Policy:
    """Staff record a bank deduction, or the authority's letter when government pays the whole premium."""
    application = await session.get(Application, application_id)
    if application is None or not actor.covers_region(application.region_code):
        raise EnrollmentError("not_found")
    if await _paid_already(session, application_id):
        raise EnrollmentError("already_paid")  # one payment per application, whoever records it
    _payable(application)
    if body.method == "government_letter" and application.payable_fen != 0:
        raise EnrollmentError("letter_needs_full_subsidy", payable_fen=application.payable_fen)
    amount = application.payable_fen if body.amount_fen is None else body.amount_fen
    if body.method == "bank_deduction" and amount != application.payable_fen:
        raise EnrollmentError("amount_mismatch", expected_fen=application.payable_fen, given_fen=amount)
    await refuse_used_reference(session, body.method, body.reference)
    payment = Payment(
        application_id=application_id,
        provider=body.method,
        amount_fen=amount,
        status=PaymentStatus.CONFIRMED.value,
        external_ref=body.reference,
        evidence=body.note,
        confirmed_by=actor.user_id,
        confirmed_at=utcnow(),
    )
    session.add(payment)
    await session.flush()
    policy = await issue_policy(session=session, application=application, payment=payment, secret=secret)
    record_audit(
        session=session,
        actor=actor,
        action="enrollment.confirm_payment",
        target_type="application",
        target_id=application_id,
        detail={
            "method": body.method,
            "reference": body.reference,
            "amount_fen": amount,
            "policy": policy.number,
        },
        ip=ip,
    )
    await session.commit()
    return policy

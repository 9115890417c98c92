"""Endorsements (R-ENR-11): the insured asks in chat to change bank account, phone or quantity; staff
approve or refuse; an approval changes the policy's terms and sends the e-endorsement PDF to the chat."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.enrollment import documents, validation
from backend.enrollment.doc_contexts import endorsement_context, paid_by_demo
from backend.enrollment.issuance import INSURER_NAME_KEY
from backend.enrollment.models import Endorsement, EndorsementStatus, Policy
from backend.enrollment.schemas import EndorsementRequest
from backend.enrollment.service import EnrollmentError, _number, _phone, _validated, policy_for
from backend.enrollment.verification import scoped_policy
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_for_identity
from backend.outbox.sms.service import notify_person
from backend.people.models import ChatIdentity
from backend.products import pricing
from backend.products.models import Product
from backend.security import BotPrincipal, StaffPrincipal
from backend.settings import get_settings
from backend.staff.service import record_audit
from messages import render


def mask_value(field: str, value: str) -> str:
    """Personal numbers are masked wherever they are shown (bank account, phone)."""
    if field == "bank_account" and len(value) > 8:
        return f"{value[:4]}{'*' * (len(value) - 8)}{value[-4:]}"
    if field == "phone" and len(value) == 11:
        return f"{value[:3]}****{value[-4:]}"
    return value


def _current_value(policy: Policy, field: str) -> str:
    return policy.quantity if field == "quantity" else str(policy.terms.get(field) or "")


async def request_endorsement(
    *, session: AsyncSession, principal: BotPrincipal, policy_id: int, body: EndorsementRequest
) -> Endorsement:
    policy = await policy_for(session=session, principal=principal, policy_id=policy_id)
    product = await session.get(Product, policy.product_code)
    assert product is not None
    new_value, effect = _clean_new_value(body, product, policy)
    if new_value == _current_value(policy, body.field):
        raise EnrollmentError("endorsement_no_change")
    pending = await session.exec(
        select(Endorsement).where(
            Endorsement.policy_id == policy_id,
            Endorsement.field == body.field,
            Endorsement.status == EndorsementStatus.REQUESTED.value,
        )
    )
    if pending.first() is not None:
        raise EnrollmentError("endorsement_pending")
    endorsement = Endorsement(
        number=f"TMP{policy_id}-{utcnow().timestamp()}",
        policy_id=policy_id,
        field=body.field,
        old_value=_current_value(policy, body.field),
        new_value=new_value,
        extra={**effect, **({"bank_name": body.bank_name} if body.bank_name else {})},
    )
    session.add(endorsement)
    await session.flush()
    endorsement.number = _number("EN", endorsement)
    await session.commit()
    await session.refresh(endorsement)
    return endorsement


def _clean_new_value(
    body: EndorsementRequest, product: Product, policy: Policy
) -> tuple[str, dict[str, Any]]:
    """The checked new value, and what the change does to the cover (quantity changes move the premium)."""
    if body.field == "bank_account":
        return str(_validated(validation.validate_bank_account, body.new_value)), {}
    if body.field == "phone":
        return _phone(body.new_value), {}
    if product.needs_ear_tags:
        # A head count change needs the new animals' ear tags and an on-site check: not by chat.
        raise EnrollmentError("endorsement_quantity_needs_ear_tags")
    quantity = _validated(validation.validate_quantity, body.new_value, product.unit)
    if quantity > Decimal(policy.quantity):
        # More cover needs its premium paid first (R-ENR-9) and may need an on-site check (R-ENR-7):
        # that goes through an agent, not a chat request.
        raise EnrollmentError("endorsement_quantity_increase")
    quote = pricing.quote_agricultural(product, quantity)
    return str(quantity), {
        "sum_insured_fen": quote.sum_insured_fen,
        "premium_fen": quote.premium_fen,
        "premium_change_fen": quote.premium_fen - policy.premium_fen,
    }


async def endorsements_for(
    *, session: AsyncSession, principal: BotPrincipal, policy_id: int
) -> list[Endorsement]:
    await policy_for(session=session, principal=principal, policy_id=policy_id)
    query = select(Endorsement).where(Endorsement.policy_id == policy_id).order_by(col(Endorsement.id).desc())
    return list((await session.exec(query)).all())


async def list_pending(*, session: AsyncSession, actor: StaffPrincipal) -> list[Endorsement]:
    query = (
        select(Endorsement, Policy)
        .join(Policy, col(Policy.id) == Endorsement.policy_id)
        .where(Endorsement.status == EndorsementStatus.REQUESTED.value)
        .order_by(col(Endorsement.id))
    )
    rows = (await session.exec(query)).all()
    return [endorsement for endorsement, policy in rows if actor.covers_region(policy.region_code)]


async def decide_endorsement(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    endorsement_id: int,
    approve: bool,
    note: str,
    ip: str | None,
    secret: str,
) -> tuple[Endorsement, int | None]:
    endorsement = await session.get(Endorsement, endorsement_id)
    if endorsement is None:
        raise EnrollmentError("not_found")
    policy = await scoped_policy(session=session, actor=actor, policy_id=endorsement.policy_id)
    if endorsement.status != EndorsementStatus.REQUESTED:
        raise EnrollmentError("endorsement_decided", status=endorsement.status)
    endorsement.status = (EndorsementStatus.APPROVED if approve else EndorsementStatus.REFUSED).value
    endorsement.decided_by, endorsement.decided_at, endorsement.decision_note = actor.user_id, utcnow(), note
    identity = await session.get(ChatIdentity, policy.identity_id)
    assert identity is not None
    document_id = None
    if approve:
        # The document shows the terms before the change (old bank name), so render it first.
        document_id = await _store_endorsement_pdf(
            session, policy, endorsement, identity.locale, actor.username, secret
        )
        _apply(policy, endorsement)
    await _notify_decision(session, identity, policy, endorsement, document_id)
    record_audit(
        session=session,
        actor=actor,
        action="enrollment.endorsement_" + endorsement.status,
        target_type="endorsement",
        target_id=endorsement_id,
        detail={"note": note},
        ip=ip,
    )
    await session.commit()
    await session.refresh(endorsement)
    return endorsement, document_id


def _apply(policy: Policy, endorsement: Endorsement) -> None:
    terms: dict[str, Any] = dict(policy.terms)
    if endorsement.field == "quantity":
        policy.quantity = endorsement.new_value
        policy.sum_insured_fen = int(endorsement.extra["sum_insured_fen"])
        policy.premium_fen = int(endorsement.extra["premium_fen"])
    else:
        terms[endorsement.field] = endorsement.new_value
        if endorsement.field == "bank_account" and endorsement.extra.get("bank_name"):
            terms["bank_name"] = endorsement.extra["bank_name"]
    policy.terms = terms  # a new dict, so the JSON column is seen as changed


async def _store_endorsement_pdf(
    session: AsyncSession,
    policy: Policy,
    endorsement: Endorsement,
    locale: str,
    approved_by: str,
    secret: str,
) -> int:
    product = await session.get(Product, policy.product_code)
    assert product is not None
    context = endorsement_context(
        policy=policy,
        endorsement=endorsement,
        product=product,
        approved_by=approved_by,
        secret=secret,
        insurer_name=render(INSURER_NAME_KEY, locale, ext="txt"),
        demo_payment=await paid_by_demo(session, policy.application_id),
    )
    pdf = await asyncio.to_thread(documents.render_pdf, "e_endorsement", locale, doc=context)
    document = await documents.store_document(
        session=session,
        kind="e_endorsement",
        filename=f"{endorsement.number}.pdf",
        content=pdf,
        policy_id=policy.id,
        endorsement_id=endorsement.id,
        person_id=policy.person_id,
    )
    return document.id or 0


async def _notify_decision(
    session: AsyncSession,
    identity: ChatIdentity,
    policy: Policy,
    endorsement: Endorsement,
    document_id: int | None,
) -> None:
    """The decision to the chat that asked; when it has blocked us, to the insured's chat that reaches
    them, else a text with a link to the policy."""
    attachments = (
        [
            {
                "kind": "document",
                "name": f"{endorsement.number}.pdf",
                "url": f"/api/outbox/documents/{document_id}",
            }
        ]
        if document_id
        else []
    )
    dedupe_key = f"endorsement-{endorsement.id}-{endorsement.status}"

    async def in_chat(chat: ChatIdentity) -> None:
        await enqueue_for_identity(
            session=session,
            identity=chat,
            dedupe_key=dedupe_key,
            priority=Priority.NOTICE,
            attachments=attachments,
            text=render(
                "enroll/endorsement_decided",
                chat.locale,
                policy=policy,
                endorsement=endorsement,
                old_masked=mask_value(endorsement.field, endorsement.old_value),
                new_masked=mask_value(endorsement.field, endorsement.new_value),
            ),
        )

    await notify_person(
        session=session,
        person_id=policy.person_id,
        preferred=identity,
        chat=in_chat,
        sms_key="policy_update",
        sms_values={"policy": policy.number},
        target=f"policy:{policy.id}",
        dedupe_key=dedupe_key,
        link_days=get_settings().sms_link_days,
    )

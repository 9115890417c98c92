"""Issuing a policy (R-ENR-9, R-ENR-10, R-LIA-5): only on a confirmed payment or government letter;
the e-policy PDF is stored with its SHA-256 and sent to the chat through the outbox, all in one
transaction with the policy itself."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.enrollment import documents
from backend.enrollment.doc_contexts import paid_by_demo, policy_context
from backend.enrollment.documents import PolicyDocumentContext
from backend.enrollment.inspection_models import Inspection
from backend.enrollment.models import Application, ApplicationStatus, Document, Payment, PaymentStatus, Policy
from backend.enrollment.service import FIRST_INSPECTION_DUE, POLICY_TERM, EnrollmentError, _number
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_for_identity
from backend.outbox.sms.service import notify_person
from backend.people.models import ChatIdentity
from backend.products.models import Product, ProductKind
from backend.regions.models import Region
from backend.settings import get_settings
from messages import render

INSURER_NAME_KEY = "enroll/insurer_name"


async def issue_policy(
    *, session: AsyncSession, application: Application, payment: Payment, secret: str
) -> Policy:
    """Create the policy for a paid application; the caller commits."""
    if payment.status != PaymentStatus.CONFIRMED or payment.application_id != application.id:
        raise EnrollmentError("payment_not_confirmed")  # R-ENR-9: no policy without a confirmed payment
    existing = (await session.exec(select(Policy).where(Policy.application_id == application.id))).first()
    if existing is not None:
        return existing
    product = await session.get(Product, application.product_code)
    assert product is not None
    policy = _new_policy(application, product)
    session.add(policy)
    await session.flush()
    policy.number = _number("PL", policy)
    application.status = ApplicationStatus.ISSUED.value
    application.updated_at = utcnow()
    if product.kind == ProductKind.LIABILITY and application.enterprise_id is not None:
        session.add(
            Inspection(  # R-LIA-5: at least one hazard inspection after enrollment
                policy_id=policy.id or 0,
                enterprise_id=application.enterprise_id,
                region_code=application.region_code,
                due_at=policy.issued_at + FIRST_INSPECTION_DUE,
            )
        )
    identity = await session.get(ChatIdentity, application.identity_id)
    assert identity is not None
    document = await store_policy_document(
        session=session,
        policy=policy,
        application=application,
        product=product,
        locale=identity.locale,
        secret=secret,
    )
    await _notify_issued(session, identity, policy, product, document.id or 0)
    return policy


def _new_policy(application: Application, product: Product) -> Policy:
    answers = application.answers
    now = utcnow()
    terms: dict[str, Any] = {
        "phone": answers.get("phone"),
        "bank_name": answers.get("bank_name"),
        "bank_account": answers.get("bank_account"),
        "ear_tags": answers.get("ear_tags", []),
        "premium": application.premium,
        "payable_fen": application.payable_fen,
        "unit": product.unit,
    }
    return Policy(
        number=f"TMP{application.id}",
        application_id=application.id or 0,
        product_code=product.code,
        identity_id=application.identity_id,
        person_id=application.person_id,
        enterprise_id=application.enterprise_id,
        region_code=application.region_code,
        insured_name=answers.get("company_name") or answers.get("name", ""),
        terms=terms,
        quantity=application.quantity,
        sum_insured_fen=application.sum_insured_fen,
        premium_fen=int(application.premium.get("total_fen", application.payable_fen)),
        starts_at=now,
        ends_at=now + POLICY_TERM,
        issued_at=now,
    )


async def region_path_names(session: AsyncSession, code: str) -> list[str]:
    names: list[str] = []
    current: str | None = code
    while current:
        region = await session.get(Region, current)
        if region is None:
            break
        names.append(region.name)
        current = region.parent_code
    return list(reversed(names))


async def store_policy_document(
    *,
    session: AsyncSession,
    policy: Policy,
    application: Application,
    product: Product,
    locale: str,
    secret: str,
) -> Any:
    context = policy_context(
        policy=policy,
        application=application,
        product=product,
        location=await region_path_names(session, application.region_code),
        insurer_name=render(INSURER_NAME_KEY, locale, ext="txt"),
        secret=secret,
        demo_payment=await paid_by_demo(session, application.id or 0),
    )
    return await save_e_policy(session, policy=policy, context=context, locale=locale)


async def save_e_policy(
    session: AsyncSession, *, policy: Policy, context: PolicyDocumentContext, locale: str
) -> Document:
    """Render the e-policy and keep it with the policy (a collective policy's too)."""
    # Rendering takes about a second of CPU: keep it off the event loop.
    pdf = await asyncio.to_thread(documents.render_pdf, "e_policy", locale, doc=context)
    return await documents.store_document(
        session=session,
        kind="e_policy",
        filename=f"{policy.number}.pdf",
        content=pdf,
        policy_id=policy.id,
        application_id=policy.application_id,
        person_id=policy.person_id,
    )


async def _notify_issued(
    session: AsyncSession, identity: ChatIdentity, policy: Policy, product: Product, document_id: int
) -> None:
    """The e-policy to the chat that applied; when that chat has blocked us (a payment confirmed days
    later by staff), to the insured's chat that reaches them, else a text with a link to the policy."""
    demo = await paid_by_demo(session, policy.application_id)

    async def in_chat(chat: ChatIdentity) -> None:
        await enqueue_for_identity(
            session=session,
            identity=chat,
            dedupe_key=f"policy-{policy.id}-issued",
            priority=Priority.REPLY,
            text=render(
                "enroll/policy_issued",
                chat.locale,
                policy=policy,
                product_name=_name(product, chat.locale),
                demo=demo,
            ),
            attachments=[
                {
                    "kind": "document",
                    "name": f"{policy.number}.pdf",
                    "url": f"/api/outbox/documents/{document_id}",
                }
            ],
        )

    await notify_person(
        session=session,
        person_id=policy.person_id,
        preferred=identity,
        chat=in_chat,
        sms_key="policy_issued",
        sms_values={"policy": policy.number},
        target=f"policy:{policy.id}",
        dedupe_key=f"policy-{policy.id}-issued",
        link_days=get_settings().sms_link_days,
    )


def _name(product: Product, locale: str) -> str:
    return product.name_en if locale == "en" else product.name_zh

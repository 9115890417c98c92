"""Filling the e-document contexts (R-ENR-10) from the stored application, policy and endorsement."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.enrollment.documents import (
    AgriculturalPremium,
    BankAccount,
    EndorsementDocumentContext,
    LiabilityPremium,
    PolicyDocumentContext,
    Signer,
)
from backend.enrollment.models import Application, Endorsement, Payment, PaymentStatus, Policy
from backend.products.models import Product


def verification_code(number: str, secret: str) -> str:
    """A short code printed on a document so a reader can check it with the insurer."""
    return hashlib.sha256(f"{secret}:{number}".encode()).hexdigest()[:12].upper()


async def paid_by_demo(session: AsyncSession, application_id: int) -> bool:
    """Whether the premium behind a document was a demo payment (embedded default): it must say so."""
    query = select(col(Payment.id)).where(
        Payment.application_id == application_id,
        Payment.provider == "demo",
        Payment.status == PaymentStatus.CONFIRMED.value,
    )
    return (await session.exec(query)).first() is not None


def _premium(application: Application) -> AgriculturalPremium | LiabilityPremium:
    premium = application.premium
    if premium.get("kind") == "liability":
        answers = application.answers
        return LiabilityPremium(
            industry_name_zh=answers.get("industry_name_zh", ""),
            industry_name_en=answers.get("industry_name_en", ""),
            employees=int(premium["employees"]),
            base_rate=premium["base_rate"],
            factor=premium["factor"],
            factor_reason=premium["factor_reason"],
            premium_per_person_fen=int(premium["per_person_fen"]),
            total_fen=int(premium["total_fen"]),
            limits_fen=dict(premium.get("limits_fen") or {}),
        )
    return AgriculturalPremium(
        total_fen=int(premium["total_fen"]),
        central_fen=int(premium["central_fen"]),
        provincial_fen=int(premium["provincial_fen"]),
        county_fen=int(premium["county_fen"]),
        farmer_fen=int(premium["farmer_fen"]),
    )


def _signer(application: Application, insured_name: str) -> Signer:
    signer = application.signer
    role = signer.get("role", "insured")
    if role == "insured":
        # A company is not "本人": the document names the person who speaks for it.
        return Signer(
            kind="insured", name=insured_name, representative=application.answers.get("legal_representative")
        )
    reference = signer.get("authorisation_document_id")
    return Signer(
        kind=role,
        name=signer.get("name") or "",
        relation=signer.get("relation"),
        authorisation_ref=f"DOC-{reference}" if reference else None,
    )


def _bank(answers: dict[str, Any], liability: bool) -> BankAccount | None:
    """An enterprise's account is its corporate account (对公账户) in its own name (户名)."""
    if not answers.get("bank_account"):
        return None
    if liability:
        return BankAccount(
            bank_name=answers["bank_name"],
            account_number=answers["bank_account"],
            account_kind="corporate",
            account_name=answers.get("account_name") or answers.get("company_name"),
        )
    return BankAccount(bank_name=answers["bank_name"], account_number=answers["bank_account"])


def _detail_address(address: str, location: list[str]) -> str:
    """The address without the region path printed just before it: an enterprise's address is stored
    as "广东省 东莞市 东城街道 东城大道88号" (or from the township on), the document prints the path once."""
    text = address.strip()
    for start in range(len(location)):  # the stored address may begin at any level of the path
        rest = text
        for part in location[start:]:
            if not rest.startswith(part):
                break
            rest = rest[len(part) :].strip()
        if rest != text:
            return rest or text
    return text


def policy_context(
    *,
    policy: Policy,
    application: Application,
    product: Product,
    location: list[str],
    insurer_name: str,
    secret: str,
    demo_payment: bool = False,
) -> PolicyDocumentContext:
    answers = application.answers
    liability = application.premium.get("kind") == "liability"
    bank = _bank(answers, liability)
    return PolicyDocumentContext(
        policy_number=policy.number,
        verification_code=verification_code(policy.number, secret),
        insurer_name=insurer_name,
        product_name_zh=product.name_zh,
        product_name_en=product.name_en,
        insured_name=policy.insured_name,
        id_type="credit_code"
        if liability or answers.get("insured_type") == "organisation"
        else "resident_id",
        id_number=answers.get("credit_code") or answers.get("id_number", ""),
        phone=answers.get("phone", ""),
        subject_name_zh=product.name_zh,
        subject_name_en=product.name_en,
        quantity=policy.quantity,
        unit=product.unit,  # type: ignore[arg-type]
        location=tuple(location),
        starts_at=policy.starts_at,
        ends_at=policy.ends_at,
        sum_insured_fen=policy.sum_insured_fen,
        premium=_premium(application),
        disclosure_version=application.disclosure_version,
        disclosure_confirmed_at=application.disclosure_confirmed_at,
        signer=_signer(application, policy.insured_name),
        issued_at=policy.issued_at,
        place_name=_detail_address(answers.get("address") or answers.get("place_name") or "", location),
        ear_tags=tuple(answers.get("ear_tags") or ()),
        bank=bank,
        demo_payment=demo_payment,
    )


def endorsement_context(
    *,
    policy: Policy,
    endorsement: Endorsement,
    product: Product,
    insurer_name: str,
    approved_by: str,
    secret: str,
    demo_payment: bool = False,
) -> EndorsementDocumentContext:
    assert endorsement.decided_at is not None
    return EndorsementDocumentContext(
        endorsement_number=endorsement.number,
        policy_number=policy.number,
        verification_code=verification_code(endorsement.number, secret),
        insurer_name=insurer_name,
        product_name_zh=product.name_zh,
        product_name_en=product.name_en,
        insured_name=policy.insured_name,
        field=endorsement.field,  # type: ignore[arg-type]
        old_value=endorsement.old_value,
        new_value=endorsement.new_value,
        requested_at=endorsement.requested_at,
        approved_at=endorsement.decided_at,
        approved_by=approved_by,
        effective_at=endorsement.decided_at,
        issued_at=endorsement.decided_at,
        unit=product.unit if endorsement.field == "quantity" else None,  # type: ignore[arg-type]
        bank_name_old=policy.terms.get("bank_name") if endorsement.field == "bank_account" else None,
        bank_name_new=endorsement.extra.get("bank_name"),
        decision_note=endorsement.decision_note or "",
        premium_change_fen=endorsement.extra.get("premium_change_fen"),
        demo_payment=demo_payment,
    )

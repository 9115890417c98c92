"""Enrollment rules: submit an application, verify on site, take payment, issue the policy, endorse it.

Everything the chat collected is validated again here; the bot is a convenience, never the authority.
Rule IDs: R-ENR-2..11, R-LIA-1..5 (see ../shared/domain/RULES.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.enrollment import validation
from backend.enrollment.models import (
    Application,
    ApplicationStatus,
    Document,
    EarTag,
    Policy,
)
from backend.enrollment.schemas import (
    ApplicationSubmit,
    EnterpriseAnswers,
    FarmerAnswers,
    SignerIn,
)
from backend.numbers import business_number
from backend.people.models import Enterprise, Person
from backend.people.service import PhoneError, normalize_cn_mobile
from backend.products import pricing
from backend.products.models import Product, ProductKind
from backend.products.service import get_product, industry_rate, list_risk_questions, recorded_accidents
from backend.refusals import Refusal
from backend.regions.models import Region, RegionLevel
from backend.security import BotPrincipal

POLICY_TERM = timedelta(days=365)
# R-LIA-5: the first hazard inspection is due within this time of issuance.
FIRST_INSPECTION_DUE = timedelta(days=30)
# Insured types that are natural people, identified by a resident ID number (the others: a credit code).
NATURAL_PERSON_TYPES = frozenset({"farmer", "large_grower", "family_farm"})


class EnrollmentError(Refusal):
    """A refused enrollment step; its code names a message the user or staff member can act on."""


@dataclass(frozen=True)
class Quote:
    sum_insured_fen: int
    total_fen: int
    payable_fen: int
    breakdown: dict[str, Any]


# --- submission -----------------------------------------------------------------------------------------


async def submit_application(
    *, session: AsyncSession, principal: BotPrincipal, body: ApplicationSubmit, commit: bool = True
) -> Application:
    """Create the application once per idempotency key (a double tap on "confirm" returns the same one)."""
    existing = await _by_idempotency_key(session, body.idempotency_key)
    if existing is not None:
        return _own_or_refuse(existing, principal)
    product = await _active_product(session, body.product_code)
    _check_disclosure(product, body)  # R-ENR-4
    region = await _region_for(session, body.region_code, product)
    if product.kind == ProductKind.LIABILITY:
        application = await _liability_application(session, principal, product, region, body)
    else:
        application = await _agricultural_application(session, principal, product, region, body)
    await _check_signer(session, body.signer, principal, application.answers)  # R-ENR-5
    session.add(application)
    try:
        await session.flush()
    except IntegrityError:
        # Two confirms raced past the first lookup: the database kept one; return it.
        await session.rollback()
        raced = await _by_idempotency_key(session, body.idempotency_key)
        assert raced is not None
        return _own_or_refuse(raced, principal)
    application.number = _number("AP", application)
    if body.farmer and body.farmer.ear_tags:
        session.add_all(
            EarTag(tag=tag, application_id=application.id or 0) for tag in application.answers["ear_tags"]
        )
    if not commit:  # part of a larger staff action (late entry) that commits once
        return application
    await session.commit()
    await session.refresh(application)
    return application


async def _by_idempotency_key(session: AsyncSession, key: str) -> Application | None:
    return (await session.exec(select(Application).where(Application.idempotency_key == key))).first()


def _own_or_refuse(application: Application, principal: BotPrincipal) -> Application:
    if application.identity_id != principal.identity_id:
        raise EnrollmentError("idempotency_key_taken")
    return application


async def _active_product(session: AsyncSession, code: str) -> Product:
    try:
        product = await get_product(session=session, code=code)
    except LookupError as exc:
        raise EnrollmentError("unknown_product", product=code) from exc
    if not product.active:
        raise EnrollmentError("product_inactive", product=code)
    return product


def _check_disclosure(product: Product, body: ApplicationSubmit) -> None:
    """R-ENR-4: the applicant confirmed reading the current version of the key terms."""
    if not body.disclosure_read:
        raise EnrollmentError("disclosure_not_confirmed")
    if body.disclosure_version != product.disclosure_version:
        raise EnrollmentError("disclosure_outdated", current=product.disclosure_version)


async def _check_signer(
    session: AsyncSession, signer: SignerIn, principal: BotPrincipal, insured: dict[str, Any]
) -> None:
    """R-ENR-5: the insured (this bound account), a direct relative with name and relation, or an
    authorised person whose written authorisation is kept as evidence. Nobody else signs."""
    if signer.role == "insured":
        await _check_insured_signs(session, principal, insured)
        return
    if not signer.name:
        raise EnrollmentError("signer_name_missing")
    validation.validate_person_name(signer.name)
    if signer.role == "relative" and signer.relation is None:
        raise EnrollmentError("signer_relation_missing")
    if signer.role == "authorised":
        if signer.authorisation_document_id is None:
            raise EnrollmentError("authorisation_missing")
        document = await session.get(Document, signer.authorisation_document_id)
        if document is None or document.kind != "authorisation" or document.person_id != principal.person_id:
            raise EnrollmentError("authorisation_missing")


async def _check_insured_signs(
    session: AsyncSession, principal: BotPrincipal, insured: dict[str, Any]
) -> None:
    """R-ENR-5: "insured" counts as the insured's own confirmation only through the insured's own account.

    The account's person is the one whose phone it verified. The first application that person signs as
    insured, with the account's own phone, binds the insured's number to the person: the resident ID number
    of a natural person, the credit code of an organisation or enterprise. Afterwards only that number signs
    as insured through the person's accounts (one account cannot sign "insured" for a parent, a neighbour,
    a stranger, or any number of companies), and no other person can bind it (a number typed first by one
    account is never signed for by a second). Anyone else signs as a relative or an authorised person, with
    evidence.
    """
    person = await session.get(Person, principal.person_id) if principal.person_id else None
    if person is None or person.phone is None:
        raise EnrollmentError("phone_required")
    if not insured_may_sign(person, insured):
        raise EnrollmentError("signer_not_insured")
    field, number = insured_number(insured)
    if getattr(person, field) is not None:
        return
    if await _bound_elsewhere(session, person, insured):
        _refuse_bound_elsewhere(field)
    setattr(person, field, number)  # the account's person from now on
    try:
        await session.flush()
    except IntegrityError:  # another account bound the same number a moment ago
        await session.rollback()
        _refuse_bound_elsewhere(field)


def _refuse_bound_elsewhere(field: str) -> NoReturn:
    if field == "id_number":
        raise EnrollmentError("id_number_bound_elsewhere")
    raise EnrollmentError("credit_code_bound_elsewhere")


def insured_number(insured: dict[str, Any]) -> tuple[str, str]:
    """The Person column that binds this insured, and its number: a resident ID or a credit code."""
    if insured.get("insured_type") in NATURAL_PERSON_TYPES:
        return "id_number", str(insured.get("id_number") or "")
    # An organisation's credit code is in ``id_number`` (the farmer form), an enterprise's in ``credit_code``.
    return "credit_code", str(insured.get("credit_code") or insured.get("id_number") or "")


def insured_may_sign(person: Person, insured: dict[str, Any]) -> bool:
    """Whether the account of ``person`` may confirm as the insured described by ``insured`` (R-ENR-5):
    its bound number, or, before one is bound, an insured giving the account's own phone."""
    field, number = insured_number(insured)
    bound = getattr(person, field)
    if bound is not None:
        return bool(bound == number)
    return insured.get("phone") == person.phone


async def _bound_elsewhere(session: AsyncSession, person: Person, insured: dict[str, Any]) -> bool:
    """Whether the insured's number is already bound to another person (R-ENR-5)."""
    field, number = insured_number(insured)
    column = getattr(Person, field)
    query = select(Person.id).where(column == number, Person.id != person.id)
    return (await session.exec(query)).first() is not None


async def signer_roles(
    *, session: AsyncSession, principal: BotPrincipal, insured: dict[str, Any]
) -> list[str]:
    """The signer roles the chat may offer for this insured (R-ENR-5); "insured" only where it holds."""
    person = await session.get(Person, principal.person_id) if principal.person_id else None
    roles = ["relative", "authorised"]
    if (
        person is not None
        and person.phone is not None
        and insured_may_sign(person, insured)
        and not await _bound_elsewhere(session, person, insured)
    ):
        roles.insert(0, "insured")
    return roles


async def _region_for(session: AsyncSession, code: str, product: Product) -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise EnrollmentError("unknown_region", region=code)
    # Fields and herds are located to the township at least; a village when villages are imported.
    if region.level < RegionLevel.TOWNSHIP:
        raise EnrollmentError("region_too_coarse", region=code)
    return region


def validated_resident_id(raw: str) -> str:
    """The normalised resident ID number, or the refusal the chat explains."""
    return str(_validated(validation.validate_resident_id, raw))


def validated_credit_code(raw: str) -> str:
    """The normalised unified social credit code, or the refusal the chat explains."""
    return str(_validated(validation.validate_credit_code, raw))


def _phone(raw: str) -> str:
    try:
        return normalize_cn_mobile(raw)
    except PhoneError as exc:
        raise EnrollmentError(exc.code) from exc


def _validated(check: Any, raw: Any, *args: Any) -> Any:
    try:
        return check(raw, *args)
    except validation.ValidationProblem as exc:
        raise EnrollmentError(exc.code, str(exc), **exc.detail) from exc


async def _agricultural_application(
    session: AsyncSession, principal: BotPrincipal, product: Product, region: Region, body: ApplicationSubmit
) -> Application:
    answers = body.farmer
    if answers is None:
        raise EnrollmentError("farmer_answers_missing")
    quantity: Decimal = _validated(validation.validate_quantity, body.quantity, product.unit)
    cleaned = await _clean_farmer_answers(session, product, answers, quantity)
    quote = pricing.quote_agricultural(product, quantity)
    reasons = [
        str(r) for r in pricing.verification_reasons(product, quantity, answers.insured_type)
    ]  # R-ENR-7
    return Application(
        number=_temporary_number(),
        idempotency_key=body.idempotency_key,
        product_code=product.code,
        kind="individual",
        identity_id=principal.identity_id,
        person_id=principal.person_id,
        campaign_id=body.campaign_id,
        region_code=region.code,
        answers=cleaned,
        quantity=str(quantity),
        sum_insured_fen=quote.sum_insured_fen,
        premium=_agri_premium(quote),
        payable_fen=quote.farmer_fen,
        disclosure_version=body.disclosure_version,
        disclosure_confirmed_at=utcnow(),
        signer=body.signer.model_dump(),
        verification_required=bool(reasons),
        verification_reasons=reasons,
        status=(
            ApplicationStatus.PENDING_VERIFICATION if reasons else ApplicationStatus.AWAITING_PAYMENT
        ).value,
    )


def _agri_premium(quote: pricing.AgriQuote) -> dict[str, Any]:
    return {
        "kind": "agricultural",
        "total_fen": quote.premium_fen,
        "central_fen": quote.central_fen,
        "provincial_fen": quote.provincial_fen,
        "county_fen": quote.county_fen,
        "farmer_fen": quote.farmer_fen,
        "rate": pricing.decimal_text(quote.rate),
    }


async def _clean_farmer_answers(
    session: AsyncSession, product: Product, answers: FarmerAnswers, quantity: Decimal
) -> dict[str, Any]:
    """R-ENR-2 fields, each checked (R-ENR-3 for the ID number)."""
    if answers.insured_type == "organisation":
        id_number = _validated(validation.validate_credit_code, answers.id_number)
    else:
        id_number = _validated(validation.validate_resident_id, answers.id_number)
        await check_id_region(session, id_number)
    tags = await _checked_ear_tags(session, product, answers.ear_tags, quantity)
    return {
        "insured_type": answers.insured_type,
        "name": _validated(validation.validate_person_name, answers.name)
        if answers.insured_type != "organisation"
        else answers.name.strip(),
        "id_number": id_number,
        "phone": _phone(answers.phone),
        "village_code": answers.village_code,
        "place_name": answers.place_name,
        "latitude": answers.latitude,
        "longitude": answers.longitude,
        "ear_tags": tags,
        "bank_name": answers.bank_name.strip(),
        "bank_account": _validated(validation.validate_bank_account, answers.bank_account),
    }


async def check_id_region(session: AsyncSession, id_number: str) -> None:
    """R-ENR-3: positions 1-6 of a resident ID number name the county where it was first issued.

    Accepted: a county in the regions table (current codes), or any six digits whose prefecture (first four)
    is in the table. Why the second: a number keeps the county code of its first registration for life, and
    counties are abolished, merged and renumbered (GB 11643's own example, 440524 潮阳县, has been 潮阳区
    440513 since 1993); the table holds only today's list, so refusing unknown counties would refuse real
    people. Cities without counties (东莞 441900, 中山 442000, 儋州 460400) are covered by the same rule. An
    unknown prefecture is refused: no number was ever issued there.
    """
    county, prefecture = id_number[:6].ljust(12, "0"), id_number[:4].ljust(12, "0")
    query = select(Region.code).where(
        col(Region.code).in_([county, prefecture]),
        col(Region.level).in_([RegionLevel.CITY, RegionLevel.COUNTY]),
    )
    if (await session.exec(query)).first() is None:
        raise EnrollmentError("id_region", region=id_number[:6])


async def _checked_ear_tags(
    session: AsyncSession, product: Product, raw_tags: list[str], quantity: Decimal
) -> list[str]:
    if not product.needs_ear_tags:
        return []
    tags = [_validated(validation.validate_ear_tag, tag) for tag in raw_tags]
    if len(tags) != int(quantity):
        raise EnrollmentError("ear_tags_count", expected=int(quantity), given=len(tags))
    duplicates = sorted({t for t in tags if tags.count(t) > 1})
    if duplicates:
        raise EnrollmentError("ear_tags_duplicate", tags=" ".join(duplicates))
    taken = await taken_ear_tags(session=session, tags=tags)
    if taken:
        raise EnrollmentError("ear_tags_taken", tags=" ".join(taken))
    return tags


async def taken_ear_tags(*, session: AsyncSession, tags: list[str]) -> list[str]:
    """Ear tags already insured with this insurer (no tag twice, R-ENR-2)."""
    rows = await session.exec(select(EarTag.tag).where(col(EarTag.tag).in_(tags)))
    return sorted(rows.all())


async def _liability_application(
    session: AsyncSession, principal: BotPrincipal, product: Product, region: Region, body: ApplicationSubmit
) -> Application:
    answers = body.enterprise
    if answers is None:
        raise EnrollmentError("enterprise_answers_missing")
    cleaned = await _clean_enterprise_answers(session, answers)
    try:
        rate = await industry_rate(session=session, code=answers.industry_code)  # R-LIA-1
    except LookupError as exc:
        raise EnrollmentError("unknown_industry", industry=answers.industry_code) from exc
    now = utcnow()
    recorded = await recorded_accidents(  # R-LIA-2: the insurer's own record of the previous policy year
        session=session, credit_code=cleaned["credit_code"], since=now - POLICY_TERM, until=now
    )
    accidents = pricing.worse_accident_count(answers.accidents_previous_year, recorded)
    quote = pricing.quote_liability(product, rate, answers.employees, accidents)
    enterprise = await _upsert_enterprise(session, cleaned, region)
    cleaned["industry_name_zh"], cleaned["industry_name_en"] = rate.name_zh, rate.name_en
    return Application(
        number=_temporary_number(),
        idempotency_key=body.idempotency_key,
        product_code=product.code,
        kind="enterprise",
        identity_id=principal.identity_id,
        person_id=principal.person_id,
        enterprise_id=enterprise.id,
        campaign_id=body.campaign_id,
        region_code=region.code,
        answers=cleaned,
        quantity=str(answers.employees),
        sum_insured_fen=quote.limits_fen.get(pricing.DEATH_DISABILITY_LIMIT, 0) * answers.employees,
        premium=_liability_premium(quote, answers.accidents_previous_year, recorded),
        payable_fen=quote.premium_fen,
        disclosure_version=body.disclosure_version,
        disclosure_confirmed_at=utcnow(),
        signer=body.signer.model_dump(),
        status=ApplicationStatus.AWAITING_PAYMENT.value,
    )


def _liability_premium(quote: pricing.LiabilityQuote, declared: int | None, recorded: int) -> dict[str, Any]:
    return {
        # R-LIA-2: what the enterprise said, what the insurer's record shows, and whether the record won.
        "accidents_declared": declared,
        "accidents_recorded": recorded,
        "record_overrides": quote.accidents_previous_year != declared,
        "kind": "liability",
        "total_fen": quote.premium_fen,
        "base_rate": pricing.decimal_text(quote.base_rate),
        "factor": pricing.decimal_text(quote.factor),
        "factor_reason": quote.factor_reason,
        "per_person_fen": quote.premium_per_person_fen,
        "employees": quote.employees,
        "limits_fen": dict(quote.limits_fen),
    }


async def _clean_enterprise_answers(session: AsyncSession, answers: EnterpriseAnswers) -> dict[str, Any]:
    questions = await list_risk_questions(session=session)
    missing = [q.code for q in questions if answers.survey.get(q.code) not in ("yes", "no")]
    if missing:  # R-LIA-4: the whole risk survey is filled in at enrollment
        raise EnrollmentError("risk_survey_incomplete", questions=" ".join(missing))
    company_name = answers.company_name.strip()
    if validation.registered_name_key(answers.account_name) != validation.registered_name_key(company_name):
        # Claims are paid to the insured's own account only (R-CLM-12): another holder's account would
        # be refused at payment, long after the enterprise was promised cover.
        raise EnrollmentError(
            "account_name_mismatch", company=company_name, account_name=answers.account_name
        )
    return {
        "company_name": company_name,
        "credit_code": _validated(validation.validate_credit_code, answers.credit_code),
        "legal_representative": _validated(validation.validate_person_name, answers.legal_representative),
        "phone": _phone(answers.phone),
        "address": answers.address.strip(),
        "industry_code": answers.industry_code,
        "employees": answers.employees,
        "accidents_previous_year": answers.accidents_previous_year,
        "survey": {q.code: answers.survey[q.code] for q in questions},
        "bank_name": answers.bank_name.strip(),
        "account_name": company_name,
        "bank_account": _validated(validation.validate_bank_account, answers.bank_account),
    }


async def _upsert_enterprise(session: AsyncSession, answers: dict[str, Any], region: Region) -> Enterprise:
    """Create the enterprise on first enrollment; an existing record is never overwritten from chat
    (anyone can type a credit code: the application keeps what this applicant said)."""
    query = select(Enterprise).where(Enterprise.credit_code == answers["credit_code"])
    existing = (await session.exec(query)).first()
    if existing is not None:
        return existing
    enterprise = Enterprise(
        credit_code=answers["credit_code"],
        name=answers["company_name"],
        legal_representative=answers["legal_representative"],
        phone=answers["phone"],
        industry_code=answers["industry_code"],
        region_code=region.code,
        address=answers["address"],
        employees=answers["employees"],
    )
    session.add(enterprise)
    await session.flush()
    return enterprise


def _temporary_number() -> str:
    return f"TMP{secrets.token_hex(8)}"


def _number(prefix: str, row: Any) -> str:
    return business_number(prefix, row.id)


# --- reading, for the insured --------------------------------------------------------------------------


async def application_for(
    *, session: AsyncSession, principal: BotPrincipal, application_id: int
) -> Application:
    application = await session.get(Application, application_id)
    if application is None or application.identity_id != principal.identity_id:
        raise EnrollmentError("not_found")  # another person's application looks the same as none
    return application


async def applications_for(*, session: AsyncSession, principal: BotPrincipal) -> list[Application]:
    query = (
        select(Application)
        .where(Application.identity_id == principal.identity_id)
        .order_by(col(Application.id).desc())
    )
    return list((await session.exec(query)).all())


async def policies_for(*, session: AsyncSession, principal: BotPrincipal) -> list[Policy]:
    mine: ColumnElement[bool] = col(Policy.identity_id) == principal.identity_id
    if principal.person_view is not None:
        mine = or_(mine, col(Policy.person_id) == principal.person_view)
    query = select(Policy).where(mine).order_by(col(Policy.id).desc())
    return list((await session.exec(query)).all())


async def policy_for(*, session: AsyncSession, principal: BotPrincipal, policy_id: int) -> Policy:
    policy = await session.get(Policy, policy_id)
    # The chat's own, or (a verified binding) its person's: enrolled on another device or by an agent.
    if policy is None or not principal.sees(policy.identity_id, policy.person_id):
        raise EnrollmentError("not_found")
    return policy


async def policy_of_application(*, session: AsyncSession, application_id: int) -> Policy | None:
    return (await session.exec(select(Policy).where(Policy.application_id == application_id))).first()


async def latest_document_ids(*, session: AsyncSession, policy_ids: list[int], kind: str) -> dict[int, int]:
    """The newest document of ``kind`` per policy, by id, in one query for a whole list of policies.

    Only ids are read: a listing never loads the PDF blobs (they are fetched on demand by id)."""
    if not policy_ids:
        return {}
    query = (
        select(Document.policy_id, func.max(Document.id))
        .where(col(Document.policy_id).in_(policy_ids), Document.kind == kind)
        .group_by(col(Document.policy_id))
    )
    rows = (await session.exec(query)).all()
    return {policy: document for policy, document in rows if policy is not None and document is not None}


async def document_for(*, session: AsyncSession, principal: BotPrincipal, document_id: int) -> Document:
    """Farmers see only their own documents: those of their own policies, or uploaded by them."""
    document = await session.get(Document, document_id)
    if document is None:
        raise EnrollmentError("not_found")
    if document.person_id is not None and document.person_id == principal.person_view:
        return document  # made for this person: a household's voucher on the organiser's policy
    if document.policy_id is not None:
        await policy_for(session=session, principal=principal, policy_id=document.policy_id)
        return document
    if document.person_id is not None and document.person_id == principal.person_id:
        return document
    raise EnrollmentError("not_found")

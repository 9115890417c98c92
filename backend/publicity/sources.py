"""Where a notice's rows come from: one source per kind, each returning the rows as published.

A row is ``{"person_id": int | None, "fields": {column: display text}}``; the columns of each kind are
``COLUMNS`` (R-PUB-2 for claims payouts, R-CLM-2 for weather-index payouts). Sources write values in the
notice's language and mask every personal number here, once (``published_row``), so nothing downstream
(page, PDF, chat, archive) ever holds a whole ID number, phone or card number (R-PUB-4).

Underwriting (R-ENR-8) reads the household list of a collective policy through ``household_rows``, which
collective enrollment provides (``backend/enrollment/collective``); see ``HouseholdRowsSource``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement
from sqlalchemy import select as sql_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims.index.models import IndexPayout, IndexReading
from backend.claims.models import Claim, ClaimKind, ClaimPayment, SurveyReport
from backend.enrollment.collective.models import CollectiveEnrollment, PolicyHousehold
from backend.enrollment.collective.service import collective_household_rows
from backend.enrollment.models import Policy
from backend.products import pricing
from backend.products.models import Product
from backend.publicity.errors import PublicityError
from backend.publicity.masking import mask_card, mask_id, plain_amount, scrub
from backend.publicity.models import NoticeKind
from backend.regions.models import Region, RegionLevel
from messages import MessageNotFound, label, local_date, local_day_start

TOWNSHIP_PREFIX = 9

FieldKind = Literal["text", "card", "id", "number"]

# Columns per kind, in display order, and how each value is made safe to publish.
COLUMNS: dict[str, tuple[tuple[str, FieldKind], ...]] = {
    NoticeKind.UNDERWRITING: (
        ("insured_name", "text"),
        ("id_number", "id"),
        ("subject", "text"),
        ("location", "text"),
        ("insured_quantity", "text"),
    ),
    NoticeKind.CLAIMS_PAYOUT: (  # R-PUB-2
        ("insured_name", "text"),
        ("subject", "text"),
        ("subject_address", "text"),
        ("insured_quantity", "text"),
        ("loss_date", "text"),
        ("cause", "text"),
        ("lost_quantity", "text"),
        ("loss_degree", "text"),
        ("payout_amount", "number"),
        ("card_number", "card"),
    ),
    NoticeKind.INDEX_PAYOUT: (  # R-CLM-2
        ("insured_name", "text"),
        ("subject", "text"),
        ("insured_quantity", "text"),
        ("payout_standard", "text"),
        ("payout_amount", "number"),
    ),
}
MAX_FIELD = 200


def columns_of(kind: str) -> list[str]:
    return [name for name, _ in COLUMNS[kind]]


def _safe(kind: FieldKind, value: Any) -> str:
    text = "" if value is None else str(value).strip()[:MAX_FIELD]
    if kind == "card":
        return mask_card(text)
    if kind == "id":
        return mask_id(text)
    if kind == "number":
        return plain_amount(text)
    return scrub(text)


def published_row(kind: str, person_id: int | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A row as it may be published: the kind's columns only, every value masked by its column's rule."""
    return {
        "person_id": person_id,
        "fields": {name: _safe(field_kind, fields.get(name)) for name, field_kind in COLUMNS[kind]},
    }


@dataclass(frozen=True)
class SourceQuery:
    """What to publish: the village (or township) and, per kind, which policy, claims or days."""

    kind: str
    region: Region
    locale: str
    policy_id: int | None = None
    collective_id: int | None = None
    claim_ids: tuple[int, ...] = ()
    since: date | None = None
    until: date | None = None


def in_region(region: Region) -> ColumnElement[bool]:
    """Policies of the village, or of every village of the township."""
    if region.level == RegionLevel.TOWNSHIP:
        return col(Policy.region_code).startswith(region.code[:TOWNSHIP_PREFIX], autoescape=True)
    return col(Policy.region_code) == region.code


def claim_in_region(region: Region) -> ColumnElement[bool]:
    """Claims of the village, or of every village of the township, by the claim's own region."""
    if region.level == RegionLevel.TOWNSHIP:
        return col(Claim.region_code).startswith(region.code[:TOWNSHIP_PREFIX], autoescape=True)
    return col(Claim.region_code) == region.code


async def build_rows(session: AsyncSession, query: SourceQuery) -> list[dict[str, Any]]:
    if query.kind == NoticeKind.CLAIMS_PAYOUT:
        return await claims_payout_rows(session, query)
    if query.kind == NoticeKind.INDEX_PAYOUT:
        return await index_payout_rows(session, query)
    return await underwriting_rows(session, query)


# --- underwriting: the household list of a collective enrollment (R-ENR-8) ---------------------------


async def underwriting_rows(session: AsyncSession, query: SourceQuery) -> list[dict[str, Any]]:
    """The households of a collective enrollment (``collective_id``: published before its policy is
    issued) or of its policy (``policy_id``), when the list is the publishing village's."""
    if query.collective_id is not None:
        enrollment = await session.get(CollectiveEnrollment, query.collective_id)
    elif query.policy_id is not None:
        found = select(CollectiveEnrollment).where(CollectiveEnrollment.policy_id == query.policy_id)
        enrollment = (await session.exec(found)).first()
    else:
        raise PublicityError("notice_policy_required")
    same_township = (
        enrollment is not None
        and enrollment.region_code[:TOWNSHIP_PREFIX] == query.region.code[:TOWNSHIP_PREFIX]
    )
    if enrollment is None or enrollment.id is None or not same_township:
        raise PublicityError("underwriting_not_found")
    households = await collective_household_rows(session, enrollment.id)
    if query.region.level != RegionLevel.TOWNSHIP:  # a village's notice lists that village's households
        households = [h for h in households if h.village_code == query.region.code]
    return [underwriting_row(h) for h in households]


def _attribute(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def underwriting_row(household: Any) -> dict[str, Any]:
    person_id = _attribute(household, "person_id")
    return published_row(
        NoticeKind.UNDERWRITING,
        int(person_id) if person_id is not None else None,
        {
            "insured_name": _attribute(household, "name"),
            "id_number": _attribute(household, "id_number"),
            "subject": _attribute(household, "subject"),
            "location": _attribute(household, "location"),
            "insured_quantity": _attribute(household, "quantity"),
        },
    )


# --- claims payouts (R-PUB-2) -------------------------------------------------------------------------


def _quantity(quantity: str, unit: str, locale: str) -> str:
    return f"{quantity}{label(f'enroll.unit_{unit}', locale)}"


def _subject(product: Product, locale: str) -> str:
    return product.name_zh if locale == "zh-CN" else product.name_en


async def claims_payout_rows(session: AsyncSession, query: SourceQuery) -> list[dict[str, Any]]:
    """Paid claims of the village (index payouts have their own kind): one row per payment."""
    statement = (
        sql_select(Claim, ClaimPayment, Policy, Product, PolicyHousehold)
        .join(ClaimPayment, col(ClaimPayment.claim_id) == col(Claim.id))
        .join(Policy, col(Policy.id) == col(Claim.policy_id))
        .join(Product, col(Product.code) == col(Policy.product_code))
        .outerjoin(PolicyHousehold, col(PolicyHousehold.id) == col(Claim.household_id))
        # The claim's own village: a household's, on a township organiser's collective policy.
        .where(claim_in_region(query.region), col(Claim.kind) != ClaimKind.INDEX.value)
        .order_by(col(Claim.region_code), col(Claim.insured_name), col(Claim.id))
    )
    if query.claim_ids:
        statement = statement.where(col(Claim.id).in_(list(query.claim_ids)))
    if query.since is not None:
        statement = statement.where(col(ClaimPayment.paid_at) >= local_day_start(query.since))
    if query.until is not None:
        statement = statement.where(
            col(ClaimPayment.paid_at) < local_day_start(query.until + timedelta(days=1))
        )
    found = [tuple(row) for row in (await session.execute(statement)).all()]
    names = await region_names(session, {claim.region_code for claim, *_rest in found})
    degrees = await _loss_degrees(session, [claim.id for claim, *_rest in found if claim.id])
    locale = query.locale
    return [
        published_row(
            NoticeKind.CLAIMS_PAYOUT,
            household.person_id if household is not None else policy.person_id,
            {
                "insured_name": claim.insured_name,
                "subject": _subject(product, locale),
                "subject_address": f"{names.get(claim.region_code, '')}{claim.place_name}",
                "insured_quantity": _quantity(
                    household.quantity if household is not None else policy.quantity, product.unit, locale
                ),
                "loss_date": local_date(claim.loss_started_at).isoformat(),
                "cause": _labelled("claims.cause_", claim.cause, locale),
                "lost_quantity": _quantity(claim.lost_quantity, claim.unit, locale),
                "loss_degree": _labelled("publicity.degree_", degrees.get(claim.id or 0), locale),
                "payout_amount": pricing.fen_to_yuan(payment.amount_fen),
                "card_number": payment.account_number,
            },
        )
        for claim, payment, policy, product, household in found
    ]


async def _loss_degrees(session: AsyncSession, claim_ids: list[int]) -> dict[int, str | None]:
    """The surveyed loss degree per claim (SurveyReport.loss_degree), in one query."""
    if not claim_ids:
        return {}
    statement = select(SurveyReport.claim_id, SurveyReport.loss_degree).where(
        col(SurveyReport.claim_id).in_(claim_ids)
    )
    return dict((await session.exec(statement)).all())


def _labelled(prefix: str, code: str | None, locale: str) -> str:
    if not code:
        return "-"
    try:
        return label(f"{prefix}{code}", locale)
    except MessageNotFound:  # a code without a text (an old cause): shown as stored, scrubbed later
        return code


async def region_names(session: AsyncSession, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = (await session.exec(select(Region.code, Region.name).where(col(Region.code).in_(codes)))).all()
    return dict(rows)


# --- weather-index payouts by administrative village (R-CLM-2) ------------------------------------------


def _standard(peril: str, level: str, share: str, locale: str) -> str:
    percent = (Decimal(share) * 100).normalize()
    return label(
        "publicity.payout_standard",
        locale,
        peril=_labelled("publicity.peril_", peril, locale),
        level=level,
        percent=f"{percent:f}",
    )


async def index_payout_rows(session: AsyncSession, query: SourceQuery) -> list[dict[str, Any]]:
    statement = (
        select(IndexPayout, IndexReading, Policy, Product)
        .join(IndexReading, col(IndexReading.id) == col(IndexPayout.reading_id))
        .join(Policy, col(Policy.id) == col(IndexPayout.policy_id))
        .join(Product, col(Product.code) == col(Policy.product_code))
        .where(in_region(query.region))
        .order_by(col(Policy.region_code), col(IndexReading.observed_on), col(Policy.insured_name))
    )
    if query.since is not None:
        statement = statement.where(col(IndexReading.observed_on) >= local_day_start(query.since))
    if query.until is not None:
        statement = statement.where(
            col(IndexReading.observed_on) < local_day_start(query.until + timedelta(days=1))
        )
    locale = query.locale
    return [
        published_row(
            NoticeKind.INDEX_PAYOUT,
            policy.person_id,
            {
                "insured_name": policy.insured_name,
                "subject": _subject(product, locale),
                "insured_quantity": _quantity(policy.quantity, product.unit, locale),
                "payout_standard": _standard(reading.peril, payout.level, payout.share, locale),
                "payout_amount": pricing.fen_to_yuan(payout.amount_fen),
            },
        )
        for payout, reading, policy, product in (await session.exec(statement)).all()
    ]

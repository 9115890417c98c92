"""Product routes: the catalogue and the liability rate table and survey (staff or the bot), staff edits
(admin or underwriter, audited) and quotes (staff or the bot)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.deps import ReaderDep, SessionDep
from backend.products import pricing, service
from backend.products.models import LiabilityRate, Product, ProductKind
from backend.products.schemas import (
    AgriQuoteOut,
    AgriSharesMoney,
    IndustryRateIn,
    IndustryRateOut,
    LiabilityQuoteOut,
    Money,
    ProductOut,
    ProductUpdate,
    QuoteOut,
    QuoteRequest,
    RiskQuestionOut,
    SharesOut,
)
from backend.security import StaffPrincipal
from backend.staff.api import client_ip
from backend.staff.deps import require_national_roles

router = APIRouter(prefix="/api/products", tags=["products"])

# The catalogue and the rate table are the same for the whole country: only national staff edit them
# (a county underwriter gets 403 outside_scope).
EditorDep = Annotated[StaffPrincipal, Depends(require_national_roles("underwriter"))]

# Plain numbers: Starlette renamed the 422 constant and the old name now warns.
UNPROCESSABLE = 422

T = TypeVar("T")


async def _lookup(call: Awaitable[T]) -> T:
    try:
        return await call
    except service.UnknownProduct as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def product_out(product: Product) -> ProductOut:
    return ProductOut(
        code=product.code,
        kind=ProductKind(product.kind).value,
        category=product.category,
        name_zh=product.name_zh,
        name_en=product.name_en,
        unit=product.unit,
        sum_insured_per_unit=Money.of(product.sum_insured_per_unit_fen),
        rate=product.rate,
        shares=SharesOut(
            central=product.share_central,
            provincial=product.share_provincial,
            county=product.share_county,
            farmer=product.share_farmer,
        ),
        main_crop=product.main_crop,
        late_entry_allowed=pricing.late_entry_allowed(product),
        weather_index=product.weather_index,
        needs_ear_tags=product.needs_ear_tags,
        report_within_24h=product.report_within_24h,
        details=product.details,
        disclosure_version=product.disclosure_version,
        active=product.active,
        sample=product.sample,
        catalogue_version=product.catalogue_version,
        updated_at=product.updated_at,
    )


@router.get("", response_model=list[ProductOut])
async def list_products(
    _reader: ReaderDep,
    session: SessionDep,
    kind: Annotated[Literal["agricultural", "liability"] | None, Query()] = None,
    include_inactive: bool = False,
) -> list[ProductOut]:
    products = await service.list_products(session, kind=kind, active_only=not include_inactive)
    return [product_out(product) for product in products]


# The liability routes come before /{code} so "liability" is never read as a product code.
@router.get("/liability/industries", response_model=list[IndustryRateOut])
async def list_industries(_reader: ReaderDep, session: SessionDep) -> list[IndustryRateOut]:
    """R-LIA-1: the unified rate table by industry."""
    return [IndustryRateOut.model_validate(rate) for rate in await service.list_industries(session)]


@router.put("/liability/industries/{code}", response_model=IndustryRateOut)
async def put_industry(
    code: str, body: IndustryRateIn, staff: EditorDep, session: SessionDep, request: Request
) -> IndustryRateOut:
    try:
        rate = await service.upsert_industry_rate(
            session,
            staff,
            code,
            name_zh=body.name_zh,
            name_en=body.name_en,
            base_rate=body.base_rate,
            ip=client_ip(request),
            sample=body.sample,
        )
    except service.InvalidChange as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc
    return IndustryRateOut.model_validate(rate)


@router.get("/liability/risk-questions", response_model=list[RiskQuestionOut])
async def list_risk_questions(_reader: ReaderDep, session: SessionDep) -> list[RiskQuestionOut]:
    """R-LIA-4: the safety risk survey filled in at enrollment."""
    return [RiskQuestionOut.model_validate(q) for q in await service.list_risk_questions(session)]


@router.get("/{code}", response_model=ProductOut)
async def get_product(code: str, _reader: ReaderDep, session: SessionDep) -> ProductOut:
    return product_out(await _lookup(service.get_product(session, code)))


@router.patch("/{code}", response_model=ProductOut)
async def update_product(
    code: str, body: ProductUpdate, staff: EditorDep, session: SessionDep, request: Request
) -> ProductOut:
    try:
        product = await _lookup(
            service.update_product(
                session, staff, code, body.model_dump(exclude_none=True), ip=client_ip(request)
            )
        )
    except service.InvalidChange as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc
    return product_out(product)


@router.post("/{code}/quote", response_model=QuoteOut)
async def quote(
    code: str, body: QuoteRequest, _reader: ReaderDep, session: SessionDep
) -> AgriQuoteOut | LiabilityQuoteOut:
    product = await _lookup(service.get_product(session, code))
    if not product.active:
        raise HTTPException(status.HTTP_409_CONFLICT, f"product {code} is not offered")
    try:
        if product.kind == ProductKind.LIABILITY:
            return await _liability_quote(session, product, body)
        if body.quantity is None or body.employees is not None or body.industry_code is not None:
            raise pricing.PricingError("an agricultural quote takes quantity only")
        return agri_quote_out(pricing.quote_agricultural(product, body.quantity))
    except pricing.PricingError as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc


async def _liability_quote(session: AsyncSession, product: Product, body: QuoteRequest) -> LiabilityQuoteOut:
    if body.quantity is not None or body.employees is None or body.industry_code is None:
        raise pricing.PricingError(
            "a liability quote takes employees, industry_code and accidents_previous_year"
        )
    try:
        rate = await service.industry_rate(session, body.industry_code)
    except service.UnknownIndustry as exc:  # R-LIA-1: no rate outside the table
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc
    result = pricing.quote_liability(product, rate, body.employees, body.accidents_previous_year)
    return liability_quote_out(result, rate)


def agri_quote_out(result: pricing.AgriQuote) -> AgriQuoteOut:
    return AgriQuoteOut(
        product_code=result.product_code,
        unit=result.unit,
        quantity=pricing.decimal_text(result.quantity),
        rate=pricing.decimal_text(result.rate),
        sum_insured_per_unit=Money.of(result.sum_insured_per_unit_fen),
        sum_insured=Money.of(result.sum_insured_fen),
        premium=Money.of(result.premium_fen),
        shares=AgriSharesMoney(
            central=Money.of(result.central_fen),
            provincial=Money.of(result.provincial_fen),
            county=Money.of(result.county_fen),
            farmer=Money.of(result.farmer_fen),
        ),
        payable=Money.of(result.payable_fen),
        sample=result.sample,
    )


def liability_quote_out(result: pricing.LiabilityQuote, rate: LiabilityRate) -> LiabilityQuoteOut:
    return LiabilityQuoteOut(
        product_code=result.product_code,
        industry_code=result.industry_code,
        industry_name_zh=rate.name_zh,
        industry_name_en=rate.name_en,
        employees=result.employees,
        accidents_previous_year=result.accidents_previous_year,
        base_rate=pricing.decimal_text(result.base_rate),
        floating_factor=pricing.decimal_text(result.factor),
        factor_reason=result.factor_reason,
        effective_rate=pricing.decimal_text(result.effective_rate),
        premium_per_person=Money.of(result.premium_per_person_fen),
        premium=Money.of(result.premium_fen),
        payable=Money.of(result.payable_fen),
        limits={name.removesuffix("_fen"): Money.of(fen) for name, fen in result.limits_fen.items()},
        sample=result.sample,
    )

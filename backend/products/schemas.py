"""Products API contract: the catalogue, the liability rate table and survey, staff edits and quotes.

Money goes out twice, as integer fen and as a yuan string ('1234.56'); rates and shares as decimal strings.
Every catalogue figure carries ``sample`` so a UI can label sample figures as such.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.products.pricing import fen_to_yuan

INDUSTRY_CODE_PATTERN = r"^[a-z][a-z0-9_]{0,19}$"

ShareValue = Annotated[Decimal, Field(ge=0, le=1, description="decimal share of the premium, 0..1")]


class Money(BaseModel):
    fen: int
    yuan: str = Field(description="two decimals, e.g. '1234.56'")

    @classmethod
    def of(cls, fen: int) -> Money:
        return cls(fen=fen, yuan=fen_to_yuan(fen))


class SharesOut(BaseModel):
    central: str
    provincial: str
    county: str
    farmer: str


class ProductOut(BaseModel):
    code: str
    kind: Literal["agricultural", "liability"]
    category: str = Field(description="crop, livestock, facility, index (weather-index fruit) or liability")
    name_zh: str
    name_en: str
    unit: str = Field(description="mu, head, bird, m2 or person")
    sum_insured_per_unit: Money = Field(description="liability: the death/disability limit per person")
    rate: str = Field(description="agricultural premium rate; liability: '0', the rate comes from the table")
    shares: SharesOut = Field(description="premium shares; 'farmer' is what the insured pays")
    main_crop: bool = Field(description="R-ENR-6: late entry allowed (at most 30 days, with a reason)")
    late_entry_allowed: bool
    weather_index: bool = Field(description="R-CLM-2: paid by station data, no report needed")
    needs_ear_tags: bool
    report_within_24h: bool = Field(description="R-CLM-1")
    details: dict[str, Any]
    disclosure_version: str
    active: bool
    sample: bool = Field(description="the figures are samples, not filed rates")
    catalogue_version: str
    updated_at: datetime


class ProductUpdate(BaseModel):
    """A staff edit (admin or underwriter); only the fields given change. Shares must still add up to 1."""

    model_config = ConfigDict(extra="forbid")

    name_zh: str | None = Field(default=None, min_length=1, max_length=100)
    name_en: str | None = Field(default=None, min_length=1, max_length=100)
    sum_insured_per_unit_fen: int | None = Field(default=None, ge=0)
    rate: Decimal | None = Field(default=None, ge=0, le=1)
    share_central: ShareValue | None = None
    share_provincial: ShareValue | None = None
    share_county: ShareValue | None = None
    share_farmer: ShareValue | None = None
    disclosure_version: str | None = Field(default=None, min_length=1, max_length=20)
    active: bool | None = None
    sample: bool | None = None


class IndustryRateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    industry_code: str
    name_zh: str
    name_en: str
    base_rate: str = Field(description="annual premium per employee as a share of the death/disability limit")
    sample: bool
    catalogue_version: str


class IndustryRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    base_rate: Decimal = Field(gt=0, lt=1)
    sample: bool | None = Field(default=None, description="omitted: kept, or true for a new industry")


class RiskQuestionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    position: int
    text_zh: str
    text_en: str
    risky_answer: str = Field(description="the answer that signals a risk for the inspection team (R-LIA-5)")


class QuoteRequest(BaseModel):
    """Agricultural products take ``quantity``; liability cover takes the other three (R-LIA-1: the rate
    comes from ``industry_code`` only, there is no way to pass a rate)."""

    model_config = ConfigDict(extra="forbid")

    quantity: Decimal | None = Field(
        default=None, gt=0, le=1_000_000_000, decimal_places=4, description="in the product's unit"
    )
    employees: int | None = Field(default=None, ge=1, le=1_000_000)
    accidents_previous_year: int | None = Field(
        default=None, ge=0, description="R-LIA-2; null for a first-year enterprise with no known history"
    )
    industry_code: str | None = Field(default=None, pattern=INDUSTRY_CODE_PATTERN)


class AgriSharesMoney(BaseModel):
    central: Money
    provincial: Money
    county: Money
    farmer: Money


class AgriQuoteOut(BaseModel):
    kind: Literal["agricultural"] = "agricultural"
    product_code: str
    unit: str
    quantity: str
    rate: str
    sum_insured_per_unit: Money
    sum_insured: Money
    premium: Money
    shares: AgriSharesMoney
    payable: Money = Field(description="the farmer's own share (R-ENR-9: paid before the policy is issued)")
    rounding: str = "shares rounded half up to the fen; the farmer's share carries the remainder"
    sample: bool


class LiabilityQuoteOut(BaseModel):
    kind: Literal["liability"] = "liability"
    product_code: str
    industry_code: str
    industry_name_zh: str
    industry_name_en: str
    employees: int
    accidents_previous_year: int | None
    base_rate: str
    floating_factor: str
    factor_reason: Literal["accident_free", "one_accident", "several_accidents", "no_history"]
    effective_rate: str
    premium_per_person: Money
    premium: Money
    payable: Money
    limits: dict[str, Money] = Field(description="per person or per accident, by name")
    sample: bool


QuoteOut = Annotated[AgriQuoteOut | LiabilityQuoteOut, Field(discriminator="kind")]

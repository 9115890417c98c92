"""The product catalogue (data, not code): agricultural products and work-safety liability cover.

Money is stored in fen (1/100 yuan) as integers; rates and shares are decimal strings so no float rounding
ever touches a premium.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class ProductKind(StrEnum):
    AGRICULTURAL = "agricultural"
    LIABILITY = "liability"


class ProductCategory(StrEnum):
    CROP = "crop"
    LIVESTOCK = "livestock"
    FACILITY = "facility"
    INDEX = "index"  # weather-index fruit (R-CLM-2)
    LIABILITY = "liability"


class Product(SQLModel, table=True):
    __tablename__ = "product"

    code: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=20)
    category: str = Field(max_length=20)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=100)
    unit: str = Field(max_length=10)  # mu, head, bird, m2, person
    sum_insured_per_unit_fen: int = 0
    rate: str = Field(default="0", max_length=20)  # e.g. "0.06"
    # Premium shares: central, provincial, county governments and the farmer; they sum to 1.
    share_central: str = Field(default="0", max_length=10)
    share_provincial: str = Field(default="0", max_length=10)
    share_county: str = Field(default="0", max_length=10)
    share_farmer: str = Field(default="1", max_length=10)
    main_crop: bool = False  # R-ENR-6, R-CLM-11
    weather_index: bool = False  # R-CLM-2
    needs_ear_tags: bool = False  # R-ENR-2: sows, dairy cows
    report_within_24h: bool = False  # R-CLM-1
    # Liability cover: limits, floating factors, coverage text keys; agricultural: index triggers etc.
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    disclosure_version: str = Field(default="1", max_length=20)
    active: bool = True
    sample: bool = True  # figures are samples, not filed rates
    catalogue_version: str = Field(default="", max_length=20)
    updated_at: datetime = Field(default_factory=utcnow)


class LiabilityRate(SQLModel, table=True):
    """R-LIA-1: one rate table by industry for every insurer."""

    __tablename__ = "liability_rate"

    industry_code: str = Field(primary_key=True, max_length=20)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=100)
    # Annual premium per employee (fen) = base rate x limit per person; stored as the rate.
    base_rate: str = Field(max_length=20)
    sample: bool = True
    catalogue_version: str = Field(default="", max_length=20)


class RiskQuestion(SQLModel, table=True):
    """R-LIA-4: the safety risk survey filled in at enrollment."""

    __tablename__ = "risk_question"

    code: str = Field(primary_key=True, max_length=40)
    position: int = 0
    text_zh: str = Field(max_length=200)
    text_en: str = Field(max_length=200)
    # The answer that signals a risk (for the inspection team), e.g. "no" to "has a safety officer".
    risky_answer: str = Field(default="no", max_length=10)
    active: bool = True

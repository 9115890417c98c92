"""R-CLM-2 weather index: station readings and the payouts they made (tables ``index_reading``,
``index_payout``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class IndexReading(SQLModel, table=True):
    """R-CLM-2: an official station reading for a township (wind, heavy rain, low temperature)."""

    __tablename__ = "index_reading"
    __table_args__ = (UniqueConstraint("township_code", "peril", "observed_on", name="uq_index_reading_day"),)

    id: int | None = Field(default=None, primary_key=True)
    township_code: str = Field(max_length=12, index=True)
    peril: str = Field(max_length=20)  # wind | rain | cold
    value: str = Field(max_length=20)  # decimal text, in the peril's unit
    observed_on: datetime
    station: str = Field(default="", max_length=100)
    source: str = Field(default="api", max_length=20)
    created_at: datetime = Field(default_factory=utcnow)


class IndexPayout(SQLModel, table=True):
    __tablename__ = "index_payout"
    __table_args__ = (UniqueConstraint("reading_id", "policy_id", name="uq_index_payout"),)

    id: int | None = Field(default=None, primary_key=True)
    reading_id: int = Field(foreign_key="index_reading.id", index=True)
    policy_id: int = Field(foreign_key="policy.id", index=True)
    claim_id: int | None = Field(default=None, foreign_key="claim.id")
    level: str = Field(max_length=20)
    share: str = Field(max_length=10)  # payout as a share of the sum insured
    amount_fen: int
    created_at: datetime = Field(default_factory=utcnow)

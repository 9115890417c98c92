"""R-CLM-12 payee registry and payee exceptions: the staff API contract."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

AccountKind = Literal[
    "village_committee", "township", "staff", "insured_other", "cooperative", "other_collective"
]


class PayeeAccountIn(BaseModel):
    account_number: str = Field(min_length=6, max_length=40)
    bank_name: str = Field(default="", max_length=50)
    kind: AccountKind
    holder: str = Field(default="", max_length=100)
    region_code: str = Field(pattern=r"^\d{12}$")
    note: str = Field(default="", max_length=500)


class PayeeAccountOut(BaseModel):
    id: int
    account_masked: str
    bank_name: str
    kind: str
    holder: str
    region_code: str
    note: str
    created_by: int
    created_at: datetime


class PayeeExceptionIn(BaseModel):
    """A payee other than the insured's account on file, with the reason (R-CLM-12)."""

    payee_name: str = Field(min_length=1, max_length=100)
    bank_name: str = Field(min_length=1, max_length=50)
    account_number: str = Field(min_length=6, max_length=40)
    explanation: str = Field(max_length=1000)


class PayeeDecisionIn(BaseModel):
    note: str | None = Field(default=None, max_length=500)


class PayeeExceptionOut(BaseModel):
    id: int
    claim_id: int
    payee_name: str
    bank_name: str
    account_masked: str
    explanation: str
    status: str
    entered_by: int
    entered_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    decision_note: str | None

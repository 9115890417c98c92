"""R-CLM-12: known accounts that never receive a claim payment, and approved payee exceptions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from backend.db import utcnow


class PayeeAccountKind(StrEnum):
    """Whose account it is: none of these ever receives a claim payment (R-CLM-12)."""

    VILLAGE_COMMITTEE = "village_committee"
    TOWNSHIP = "township"
    STAFF = "staff"
    INSURED_OTHER = "insured_other"  # an insured's account, refused for every other insured's claim
    COOPERATIVE = "cooperative"  # a cooperative's collective account: its households are paid each
    OTHER_COLLECTIVE = "other_collective"


class PayeeAccount(SQLModel, table=True):
    """One registered account. Removing an entry keeps the row (``removed_at``) for the audit trail."""

    __tablename__ = "payee_account"

    id: int | None = Field(default=None, primary_key=True)
    account_number: str = Field(max_length=30, index=True)  # digits and letters only
    bank_name: str = Field(default="", max_length=50)
    kind: str = Field(max_length=30)
    holder: str = Field(default="", max_length=100)  # e.g. 大塘村民委员会, kept for staff, never matched on
    region_code: str = Field(max_length=12, index=True)  # whose staff maintain it (region scope)
    note: str = Field(default="", max_length=500)
    created_by: int = Field(foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    removed_by: int | None = Field(default=None, foreign_key="staff_user.id")
    removed_at: datetime | None = None


class PayeeExceptionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    USED = "used"  # the payment was made to it


class PayeeException(SQLModel, table=True):
    """A payee other than the insured's own account: the explanation one staff member records, and the
    decision of a second one (never the same user)."""

    __tablename__ = "claim_payee_exception"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    payee_name: str = Field(max_length=100)
    bank_name: str = Field(max_length=50)
    account_number: str = Field(max_length=30)
    explanation: str = Field(max_length=1000)
    status: str = Field(default=PayeeExceptionStatus.PENDING.value, max_length=20)
    entered_by: int = Field(foreign_key="staff_user.id")
    entered_at: datetime = Field(default_factory=utcnow)
    decided_by: int | None = Field(default=None, foreign_key="staff_user.id")
    decided_at: datetime | None = None
    decision_note: str | None = Field(default=None, max_length=500)

"""The publicity API's contract (staff, the bot, the public page) and the notice buttons' callback data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from backend.ids import Id

NoticeKindIn = Literal["underwriting", "claims_payout", "index_payout"]

# Buttons on notices: ``pub:<verb>:<notice id>``; the bot's ``NoticeAction`` packs the same string.
NOTICE_PREFIX: Final = "pub"
NoticeVerb = Literal["view", "object"]
# ``/start n_<public token>`` (the QR code on the board, the public page's link) opens a notice in chat.
START_PREFIX: Final = "n_"


def notice_button(verb: NoticeVerb, notice_id: int) -> str:
    return f"{NOTICE_PREFIX}:{verb}:{notice_id}"


class NoticeCreate(BaseModel):
    kind: NoticeKindIn
    region_code: str = Field(min_length=9, max_length=12, pattern=r"^\d+$", description="village or township")
    policy_id: Id | None = Field(default=None, description="underwriting: the collective policy (issued)")
    collective_id: Id | None = Field(
        default=None, description="underwriting: the collective enrollment, before its policy is issued"
    )
    claim_ids: list[Id] = Field(
        default_factory=list, max_length=5000, description="claims payout: only these"
    )
    since: date | None = Field(default=None, description="payouts from this day")
    until: date | None = Field(default=None, description="payouts up to this day")


class RowOut(BaseModel):
    index: int
    fields: dict[str, str]
    own: bool = False


class NoticeOut(BaseModel):
    id: int
    number: str
    kind: str
    status: str
    region_code: str
    region_name: str
    version: int
    columns: list[str]
    rows: list[RowOut]
    own_rows: list[int] = Field(default_factory=list, description="the rows of the caller's household")
    checked_by_name: str | None
    checked_at: datetime | None
    stamp_document_id: int | None = None
    opened_at: datetime | None
    closes_at: datetime | None
    closed_at: datetime | None
    open_hours: int = Field(description="the window stated in the notice (at least 72)")
    page_url: str | None = Field(default=None, description="the public page (staff only)")
    chat_url: str | None = None
    open_objections: int = 0


class CorrectionIn(BaseModel):
    row_index: int = Field(ge=0, le=100_000)
    fields: dict[str, str] = Field(min_length=1, max_length=20)
    note: str = Field(default="", max_length=1000)


class ObjectionIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)
    photo_document_id: Id | None = Field(default=None, description="a photo sent with POST /media first")


class MediaOut(BaseModel):
    id: int


class ObjectionOut(BaseModel):
    id: int
    notice_id: int
    notice_number: str
    version: int
    row_index: int | None
    reason: str
    has_photo: bool
    photo_document_id: int | None = Field(
        default=None, description="GET /api/publicity/objections/{id}/photo"
    )
    status: str
    created_at: datetime
    due_at: datetime
    overdue: bool = False
    answer: str | None
    confirmed_error: bool
    answered_at: datetime | None


class ObjectionAnswer(BaseModel):
    answer: str = Field(min_length=1, max_length=1000)
    confirmed_error: bool = False
    correction: CorrectionIn | None = Field(
        default=None, description="with confirmed_error: the corrected row; the notice is re-published"
    )


class RecipientOut(BaseModel):
    person_id: int
    channel: str  # telegram | webchat | sms | none


class ArchiveRecordOut(BaseModel):
    id: int
    notice_id: int
    version: int
    record_kind: str
    payload: dict[str, Any]
    has_html: bool
    has_pdf: bool
    has_photo: bool
    photo_document_id: int | None = Field(
        default=None, description="GET /api/publicity/objections/{id}/photo"
    )
    content_sha256: str
    prev_sha256: str
    record_sha256: str
    created_at: datetime


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    first_bad_record_id: int | None = None
    reason: str | None = Field(default=None, description="content | previous | record")

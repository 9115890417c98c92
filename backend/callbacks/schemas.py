"""What the callback API takes and answers, and the callback-data of its buttons (shared with the bot:
pure, no database)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from messages import label

PREFIX = "cbk"  # callback data: cbk:<callback id>:<question>:<value> (bot: CallbackAnswer)
Question = Literal["received", "amount", "satisfaction", "comment", "skip"]
NextQuestion = Literal["received", "amount", "satisfaction", "comment", "done", "closed"]
YES, NO = "y", "n"


def pack(callback_id: int, question: str, value: str) -> str:
    return f"{PREFIX}:{callback_id}:{question}:{value}"


def question_buttons(callback_id: int, question: str, locale: str) -> list[list[dict[str, str]]]:
    """The buttons of one question, as outbox notices carry them and the bot shows them."""
    if question in ("received", "amount"):
        return [
            [
                {
                    "text": label(f"callbacks.{question}_yes", locale),
                    "callback_data": pack(callback_id, question, YES),
                },
                {
                    "text": label(f"callbacks.{question}_no", locale),
                    "callback_data": pack(callback_id, question, NO),
                },
            ]
        ]
    if question == "satisfaction":
        return [
            [
                {
                    "text": label(f"callbacks.satisfaction_{n}", locale),
                    "callback_data": pack(callback_id, question, str(n)),
                }
                for n in range(1, 6)
            ]
        ]
    if question == "comment":
        return [[{"text": label("callbacks.skip", locale), "callback_data": pack(callback_id, "skip", "0")}]]
    return []


class CallbackOut(BaseModel):
    """A callback as the insured's chat sees it."""

    id: int
    claim_number: str
    amount_fen: int
    paid_at: datetime
    due_at: datetime
    status: str
    received: bool | None
    amount_correct: bool | None
    satisfaction: int | None
    comment_given: bool
    next_question: NextQuestion
    recorded: bool = True  # False when the answer had been given before (a second tap): nothing changed


class AnswerIn(BaseModel):
    question: Question
    value: str = Field(min_length=1, max_length=1000)


class SampleOut(BaseModel):
    id: int
    drawn_on: str
    drawn_at: datetime
    seed: str
    permille: int
    households_per_case: int
    population_size: int
    required_overall: int
    case_quotas: dict[str, int]
    sample_size: int
    in_scope: int  # callbacks of this sample in the caller's regions


class RederiveOut(BaseModel):
    sample_id: int
    seed: str
    population: list[int]
    recorded: list[int]
    derived: list[int]
    matches: bool


class CallbackStaffOut(BaseModel):
    id: int
    sample_id: int
    drawn_on: str
    claim_id: int
    claim_number: str
    policy_id: int
    region_code: str
    case_key: str | None
    insured_name: str
    phone: str  # masked unless the role's work needs it (backend/people/disclosure.py)
    amount_fen: int
    paid_at: datetime
    due_at: datetime
    late: bool
    status: str
    attempts: int
    channel: str
    asked_at: datetime | None
    reminded_at: datetime | None
    unreachable_at: datetime | None
    received: bool | None
    amount_correct: bool | None
    satisfaction: int | None
    comment: str | None
    answered_at: datetime | None
    flagged_at: datetime | None
    flag_reasons: list[str]
    flag_resolved_at: datetime | None
    flag_note: str | None
    remarks: str | None
    closed_at: datetime | None


class PaymentRecordOut(BaseModel):
    amount_fen: int
    payee_name: str
    bank_name: str
    account_number: str  # masked unless the role pays (disclosure table)
    payee_is_insured: bool
    reference: str
    paid_at: datetime


class ClaimRecordOut(BaseModel):
    id: int
    number: str
    kind: str
    status: str
    insured_name: str
    agreed_amount_fen: int | None
    paid_amount_fen: int | None
    paid_at: datetime | None
    event_id: int | None


class CallbackDetailOut(CallbackStaffOut):
    """R-CBK-4: the answer with the claim, payee and payment records beside it."""

    claim: ClaimRecordOut
    payment: PaymentRecordOut | None
    history: list[dict[str, object]]


class ContactIn(BaseModel):
    """R-CBK-3: a new phone for the insured, or ``confirm`` that the one on file is right; asked again."""

    phone: str | None = Field(default=None, max_length=30)
    confirm: bool = False


class StaffAnswerIn(BaseModel):
    """Answers taken by staff on the phone."""

    received: bool
    amount_correct: bool | None = None
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=1000)


class RemarksIn(BaseModel):
    remarks: str = Field(min_length=1, max_length=1000)


class ResolveIn(BaseModel):
    note: str = Field(min_length=1, max_length=1000)


class RateOut(BaseModel):
    region_code: str
    period: str  # YYYY-MM of the draw
    sampled: int
    answered: int
    unreachable: int
    flagged: int
    response_rate: float  # answered / sampled


class DeletedOut(BaseModel):
    sample_id: int
    callbacks: int

"""Staff-side claims contract: survey, documents, denial, assessment, payment, deadlines and alerts.

Rule checks that have a code of their own (a missing delay reason, incomplete sampling, an empty list of
reasons ...) are left to the service, so the caller gets ``{"detail": {"code": ...}}`` rather than a bare
validation error; the schemas only bound sizes and shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from backend.claims.payees.schemas import PayeeExceptionOut
from backend.ids import Id

LossClass = Literal["light", "medium", "heavy"]
LossDegree = Literal["light", "medium", "heavy", "total"]
DeadlineName = Literal["survey", "settlement", "payment"]


class AssignIn(BaseModel):
    adjuster_id: Id


class SurveyScheduleIn(BaseModel):
    """R-CLM-6: the time of the survey; a time after the 24 h limit needs the reason told to the reporter."""

    at: AwareDatetime
    remote: bool = False  # a video survey
    # R-DIS-4: video, or drone / satellite for a claim in a green channel (implies ``remote``).
    remote_method: Literal["video", "drone", "satellite"] | None = None
    joint_with_government: bool | None = None  # None: the rule decides (larger events)
    delay_reason: str | None = Field(default=None, max_length=500)


class SampleIn(BaseModel):
    """R-CLM-8: one random sample point of the sampled yield measurement."""

    village_code: str = Field(pattern=r"^\d{12}$")
    loss_class: LossClass
    place: str = Field(min_length=1, max_length=100)
    method: str = Field(min_length=1, max_length=40)  # random, equidistant, quincunx (梅花式) ...
    sample_size: int = Field(gt=0, le=1_000_000)
    lost_count: int = Field(ge=0, le=1_000_000)
    loss_degree: str = Field(min_length=1, max_length=20)  # e.g. "35%"


class LossVillageIn(BaseModel):
    """R-CLM-8: a village of the loss and the loss classes found there (each needs a sample point)."""

    village_code: str = Field(pattern=r"^\d{12}$")
    loss_classes: list[LossClass] = Field(min_length=1, max_length=3)


class SamplingSignerIn(BaseModel):
    """R-CLM-8 with R-ENR-5: who signed the sampling record for the insured. ``insured``: the insured in
    person; ``relative``: a direct relative, with name and relation; ``authorised``: a person with a kept
    written authorisation (the document's id). Staff never sign for the insured: every role needs the
    photo of the signed record (``POST /api/documents`` kind ``signed_form``)."""

    role: Literal["insured", "relative", "authorised"]
    name: str | None = Field(default=None, max_length=30)
    relation: Literal["parent", "child", "spouse"] | None = None
    authorisation_document_id: Id | None = None
    signed_record_document_id: Id | None = None


class SurveyReportIn(BaseModel):
    """R-CLM-9: loss, cause, whether covered, signed by the surveyors; R-CLM-8 sampling when required."""

    loss: str = Field(max_length=2000)
    cause: str = Field(max_length=200)
    covered: bool
    surveyors: list[str] = Field(default_factory=list, max_length=20)
    loss_degree: LossDegree | None = None
    sampling: list[SampleIn] = Field(default_factory=list, max_length=500)
    # R-CLM-8: every village of the loss with the loss classes found there (the claim's own village, when
    # it is located to one, is a village of the loss too).
    loss_villages: list[LossVillageIn] = Field(default_factory=list, max_length=500)
    # The loss classes of the claim's own village (default: its loss degree, else those sampled there).
    loss_classes: list[LossClass] | None = None
    samplers: list[str] = Field(default_factory=list, max_length=20)  # they sign the sampling record
    sampling_signer: SamplingSignerIn | None = None  # and the insured (or representative) signs it
    harvest_on: AwareDatetime | None = None  # main crops: the settlement plan is due 20 days after harvest


class DocumentsRequestIn(BaseModel):
    items: list[str] = Field(default_factory=list, max_length=30)


class DenyIn(BaseModel):
    # Reason keys (not_covered, excluded_cause, outside_policy_period, no_disposal_proof, not_insured_subject,
    # false_report) or free text.
    reasons: list[str] = Field(default_factory=list, max_length=10)


class DisposalIn(BaseModel):
    """R-CLM-7: confirm the insured's disposal evidence (``by="adjuster"``), record the vet authority's
    confirmation (``by="vet"``: authority, person, time, document), or reject the evidence with a reason."""

    decision: Literal["confirm", "reject"]
    by: Literal["adjuster", "vet"] = "adjuster"
    vet_authority: str = Field(default="", max_length=100)
    vet_person: str = Field(default="", max_length=100)
    vet_confirmed_at: AwareDatetime | None = None
    vet_document: str = Field(default="", max_length=100)
    reason: str = Field(default="", max_length=500)


class PrepaymentIn(BaseModel):
    """R-LIA-6 先行垫付 on an accident claim: deducted from the settlement's payment."""

    kind: Literal["compensation", "rescue", "medical"]
    amount_fen: int = Field(gt=0, le=10_000_000_000)
    payee_name: str = Field(min_length=1, max_length=100)
    payee_kind: Literal["insured", "injured", "hospital", "rescue_team"]
    bank_name: str = Field(min_length=1, max_length=50)
    account_number: str = Field(min_length=1, max_length=40)  # R-CLM-12: checked against the registry
    reason: str = Field(min_length=1, max_length=1000)
    reference: str = Field(default="", max_length=128)


class PrepaymentOut(BaseModel):
    id: int
    kind: str
    amount_fen: int
    payee_name: str
    payee_kind: str
    bank_name: str
    account_masked: str
    reason: str
    reference: str
    recorded_by: int
    recorded_at: datetime


class AssessIn(BaseModel):
    amount_fen: int


class PaymentIn(BaseModel):
    """R-CLM-12: payee, bank and account default to the insured and the policy's account. Another account
    is paid only through an approved payee exception (``/api/claims/{id}/payee-exceptions``)."""

    amount_fen: int | None = None
    payee_name: str | None = Field(default=None, max_length=100)
    bank_name: str | None = Field(default=None, max_length=50)
    account_number: str | None = Field(default=None, max_length=40)
    reference: str = Field(min_length=1, max_length=128)


class DeadlineOut(BaseModel):
    due_at: datetime | None
    met_at: datetime | None
    state: str  # on_time | due_soon | overdue | met | none
    late: bool  # met, but after the deadline
    agreed_at: datetime | None = None  # survey: the time agreed with the reporter after a delay


class ClaimSummaryOut(BaseModel):
    id: int
    number: str
    kind: str
    status: str
    policy_id: int
    product_code: str
    region_code: str
    insured_name: str
    cause: str
    lost_quantity: str
    unit: str
    estimated_amount_fen: int
    reported_at: datetime
    late: bool
    adjuster_id: int | None
    joint_survey: bool
    remote_survey: bool
    disposal_required: bool
    disposal_received_at: datetime | None = None  # the insured's evidence, not yet confirmed (R-CLM-7)
    disposal_proven_at: datetime | None  # confirmed by an adjuster or the vet authority
    assessed_amount_fen: int | None
    agreed_amount_fen: int | None
    paid_amount_fen: int | None
    denial_reasons: list[str]
    deadlines: dict[str, DeadlineOut]


class EventOut(BaseModel):
    at: datetime
    kind: str
    note: str
    actor: str
    data: dict[str, Any]


class AttachmentOut(BaseModel):
    id: int
    document_id: int
    purpose: str
    added_at: datetime
    sha256: str = Field(description="SHA-256 of the file as received, hex: proof it was not changed since")
    content_type: str


class SurveyReportOut(BaseModel):
    loss: str
    cause: str
    covered: bool
    surveyors: list[str]
    loss_degree: str | None
    sampling: list[dict[str, Any]]
    sampling_record: dict[str, Any] = Field(description="R-CLM-8: villages, samplers, the insured's signer")
    remote: bool
    joint_with_government: bool
    created_by: int
    created_at: datetime


class DocumentRequestOut(BaseModel):
    items: list[str]
    requested_by: int
    requested_at: datetime
    fulfilled_at: datetime | None


class PaymentOut(BaseModel):
    amount_fen: int
    payee_name: str
    bank_name: str
    account_masked: str
    payee_is_insured: bool
    explanation: str | None
    reference: str
    paid_by: int
    paid_at: datetime
    payee_exception_id: int | None = None
    approved_by: int | None = None  # the second staff member who approved another payee
    prepaid_fen: int = 0  # R-LIA-6 pre-payments deducted from the agreed amount


class ClaimDetailOut(ClaimSummaryOut):
    loss_started_at: datetime
    loss_ended_at: datetime | None
    place_name: str
    description: str
    reporter_name: str
    reporter_phone: str
    reported_by_staff_id: int | None
    delay_minutes: int
    survey_agreed_at: datetime | None
    surveyed_at: datetime | None
    assessed_at: datetime | None
    agreed_at: datetime | None
    confirmation: dict[str, Any]
    disposal_confirmation: dict[str, Any] = Field(default_factory=dict)
    objection: str | None
    paid_at: datetime | None
    denied_at: datetime | None
    timeline: list[EventOut]
    attachments: list[AttachmentOut]
    survey_report: SurveyReportOut | None
    document_request: DocumentRequestOut | None
    payment: PaymentOut | None
    payee_exceptions: list[PayeeExceptionOut] = Field(default_factory=list)
    prepayments: list[PrepaymentOut] = Field(default_factory=list)  # R-LIA-6
    prepaid_fen: int = 0  # their total, deducted from the agreed amount when paying


class ClaimActionOut(BaseModel):
    claim: ClaimDetailOut
    denial_suggested: bool = False  # a survey found the loss not covered: a denial (R-CLM-10) should follow
    document_id: int | None = None  # the denial notice

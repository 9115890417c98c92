"""Staff side of a claim: adjuster, survey (R-CLM-6, -8, -9), documents (R-CLM-9), denial (R-CLM-10),
assessment (R-CLM-7, -11), the household's answer (R-CLM-14), payment (R-CLM-12, -13), deadlines (R-KPI-3).

Every staff action checks the role and the region (a claim outside the actor's region does not exist for
them: ``not_found``), checks the claim's status (``bad_status`` with the current one), records a timeline
entry, tells the insured in chat (every status change), audits and commits, in one transaction.

The chat side (built in ``backend.claims.reporting``) calls :func:`documents_received`,
:func:`confirm_settlement` and :func:`object_settlement` inside its own transaction and commits itself.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.chat_actions import claim_button
from backend.claims import rules, timeline
from backend.claims.access import audit_claim as _audit
from backend.claims.access import require_role as _require
from backend.claims.access import scoped_claim as _scoped
from backend.claims.catastrophe.response import in_green_channel
from backend.claims.catastrophe.service import joint_survey_needed_for
from backend.claims.denial import DENIAL_REASONS, DenialNoticeContext, render_denial_pdf
from backend.claims.errors import ClaimError
from backend.claims.insured import insured_of
from backend.claims.models import (
    Claim,
    ClaimAttachment,
    ClaimEvent,
    ClaimPayment,
    ClaimPrepayment,
    ClaimStatus,
    DocumentRequest,
    PrepaymentKind,
    PrepaymentPayeeKind,
    SurveyReport,
)
from backend.claims.payees import service as payees
from backend.claims.payees.models import PayeeException, PayeeExceptionStatus
from backend.db import utcnow
from backend.enrollment import documents
from backend.enrollment.doc_contexts import verification_code
from backend.enrollment.endorsements import mask_value
from backend.enrollment.issuance import INSURER_NAME_KEY, region_path_names
from backend.enrollment.models import Document
from backend.numbers import business_number
from backend.people.models import ChatIdentity
from backend.products.models import Product
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings, get_settings
from backend.staff.models import Role, StaffUser
from backend.staff.service import principal_of
from messages import MessageNotFound, label, render, to_local

__all__ = [
    "ClaimDetail",
    "ClaimError",
    "Deadline",
    "DisposalDecision",
    "SurveyOutcome",
    "assess",
    "assign_adjuster",
    "claim_detail",
    "confirm_settlement",
    "deadlines_of",
    "decide_disposal",
    "deny",
    "documents_received",
    "list_claims",
    "object_settlement",
    "record_payment",
    "record_prepayment",
    "request_documents",
    "schedule_survey",
    "survey_report",
]

ADJUSTER_ROLES = (Role.ADJUSTER.value,)  # survey, documents, assessment, denial
PAYMENT_ROLES = (Role.UNDERWRITER.value,)  # R-CLM-12 payment
FINAL = (ClaimStatus.PAID.value, ClaimStatus.DENIED.value)
CLOCK_SKEW = timedelta(minutes=5)
LOSS_CLASSES = ("light", "medium", "heavy")
SAMPLE_FIELDS = ("village_code", "loss_class", "place", "method", "sample_size", "lost_count", "loss_degree")
SIGNER_RELATIONS = ("parent", "child", "spouse")

# --- reading ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """One deadline of a claim and its state (R-KPI-3): survey, settlement plan, payment."""

    due_at: datetime | None
    met_at: datetime | None
    state: rules.DeadlineState
    late: bool  # met after the deadline
    agreed_at: datetime | None = None


def deadlines_of(claim: Claim, now: datetime) -> dict[str, Deadline]:
    """R-CLM-6 survey (24 h), R-CLM-11 settlement plan (20 days), R-CLM-13 payment (10 days).

    A denial closes the survey and settlement deadlines (nothing more is owed than the notice)."""

    def one(due: datetime | None, met: datetime | None, agreed: datetime | None = None) -> Deadline:
        late = due is not None and met is not None and met > due
        return Deadline(due, met, rules.deadline_state(due, met, now), late, agreed)

    return {
        "survey": one(claim.survey_due_at, claim.surveyed_at or claim.denied_at, claim.survey_agreed_at),
        "settlement": one(claim.settlement_due_at, claim.assessed_at or claim.denied_at),
        "payment": one(claim.payment_due_at, claim.paid_at),
    }


@dataclass(frozen=True)
class ClaimRow:
    claim: Claim
    deadlines: dict[str, Deadline]


@dataclass(frozen=True)
class ClaimDetail:
    claim: Claim
    deadlines: dict[str, Deadline]
    events: list[ClaimEvent]
    attachments: list[ClaimAttachment]
    survey: SurveyReport | None
    document_request: DocumentRequest | None
    payment: ClaimPayment | None
    payee_exceptions: list[PayeeException]
    prepayments: list[ClaimPrepayment]
    # document id -> (SHA-256 taken on receipt, content type), for staff to check each file
    attachment_files: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def prepaid_fen(self) -> int:
        return sum(p.amount_fen for p in self.prepayments)


@dataclass(frozen=True)
class SurveyOutcome:
    claim: Claim
    report: SurveyReport
    denial_suggested: bool  # not covered: a denial notice (R-CLM-10) should follow


def _in_scope(query: Any, actor: StaffPrincipal, column: Any) -> Any:
    if actor.is_national:
        return query
    return query.where(or_(*(col(column).startswith(significant_prefix(c)) for c in actor.region_codes)))


async def list_claims(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    status: str | None = None,
    deadline: str | None = None,
    now: datetime | None = None,
    limit: int = 200,
) -> list[ClaimRow]:
    """Claims in the actor's region, newest first; ``deadline`` = overdue | due_soon keeps the claims with
    at least one deadline in that state (computed with ``rules.deadline_state``)."""
    now = now or utcnow()
    query = _in_scope(select(Claim), actor, Claim.region_code).order_by(col(Claim.id).desc())
    if status:
        query = query.where(Claim.status == status)
    if deadline in ("overdue", "due_soon"):
        horizon = now + rules.DUE_SOON
        query = query.where(col(Claim.status).not_in(FINAL)).where(
            or_(
                and_(col(Claim.survey_due_at) <= horizon, col(Claim.surveyed_at).is_(None)),
                and_(col(Claim.settlement_due_at) <= horizon, col(Claim.assessed_at).is_(None)),
                and_(col(Claim.payment_due_at) <= horizon, col(Claim.paid_at).is_(None)),
            )
        )
    else:
        query = query.limit(limit)
    rows = [ClaimRow(c, deadlines_of(c, now)) for c in (await session.exec(query)).all()]
    if deadline in ("overdue", "due_soon"):
        rows = [r for r in rows if any(d.state == deadline for d in r.deadlines.values())][:limit]
    return rows


async def claim_detail(
    *, session: AsyncSession, actor: StaffPrincipal, claim_id: int, now: datetime | None = None
) -> ClaimDetail:
    claim = await _scoped(session, actor, claim_id)
    return await _detail(session, claim, now or utcnow())


async def _detail(session: AsyncSession, claim: Claim, now: datetime) -> ClaimDetail:
    cid = claim.id or 0
    events = (
        await session.exec(select(ClaimEvent).where(ClaimEvent.claim_id == cid).order_by(col(ClaimEvent.id)))
    ).all()
    attachments = (
        await session.exec(
            select(ClaimAttachment).where(ClaimAttachment.claim_id == cid).order_by(col(ClaimAttachment.id))
        )
    ).all()
    document_ids = [a.document_id for a in attachments]
    files = (
        await session.exec(
            select(Document.id, Document.sha256, Document.content_type).where(
                col(Document.id).in_(document_ids)
            )
        )
    ).all()
    return ClaimDetail(
        claim=claim,
        deadlines=deadlines_of(claim, now),
        events=list(events),
        attachments=list(attachments),
        attachment_files={int(i or 0): (sha, kind) for i, sha, kind in files},
        survey=(await session.exec(select(SurveyReport).where(SurveyReport.claim_id == cid))).first(),
        document_request=await _document_request(session, cid),
        payment=(await session.exec(select(ClaimPayment).where(ClaimPayment.claim_id == cid))).first(),
        payee_exceptions=await payees.exceptions_of(session, cid),
        prepayments=await prepayments_of(session, cid),
    )


async def _document_request(session: AsyncSession, claim_id: int) -> DocumentRequest | None:
    query = select(DocumentRequest).where(DocumentRequest.claim_id == claim_id)
    return (await session.exec(query)).first()


# --- helpers ----------------------------------------------------------------------------------------------


def _expect(claim: Claim, *statuses: str) -> None:
    if claim.status not in statuses:
        raise ClaimError("bad_status", status=claim.status, expected=",".join(statuses))


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):
        return Decimal(0)


async def _product(session: AsyncSession, claim: Claim) -> Product:
    product = await session.get(Product, claim.product_code)
    assert product is not None, claim.product_code
    return product


async def _locale(session: AsyncSession, claim: Claim, default: str) -> str:
    if claim.identity_id is not None:
        identity = await session.get(ChatIdentity, claim.identity_id)
        if identity is not None:
            return identity.locale
    return default


async def _count_events(session: AsyncSession, claim: Claim, kind: str) -> int:
    query = (
        select(func.count())
        .select_from(ClaimEvent)
        .where(ClaimEvent.claim_id == claim.id, ClaimEvent.kind == kind)
    )
    return int((await session.exec(query)).one())


def _yuan(fen: int | None) -> Decimal:
    return documents.yuan(fen or 0)


def cause_label(cause: str, locale: str) -> str:
    try:
        return label(f"claims.cause_{cause}", locale)
    except MessageNotFound:
        return cause


def alert_texts(
    kind: str,
    locale: str,
    claim: Claim,
    *,
    deadline: str = "",
    due_at: datetime | None = None,
    adjuster: str | None = None,
    objection: str | None = None,
) -> tuple[str, str]:
    """Title and body of a staff alert from ``claims_notice/staff_alert_title`` and ``_body``, as plain
    text (``alert_staff`` escapes them itself)."""
    ctx: dict[str, Any] = {
        "kind": kind,
        "claim": claim,
        "deadline": deadline,
        "due_at": to_local(due_at) if due_at else None,
        "adjuster": adjuster,
        "amount": _yuan(claim.assessed_amount_fen),
        "objection": objection,
    }
    title = html.unescape(render("claims_notice/staff_alert_title", locale, **ctx))
    body = html.unescape(render("claims_notice/staff_alert_body", locale, **ctx))
    return title[:200], body[:2000]


def _touch(claim: Claim, status: str | None = None) -> None:
    if status is not None:
        claim.status = status
    claim.updated_at = utcnow()


async def _commit(session: AsyncSession, claim: Claim) -> Claim:
    await session.commit()
    await session.refresh(claim)
    return claim


# --- 1. adjuster ------------------------------------------------------------------------------------------


async def assign_adjuster(
    *, session: AsyncSession, actor: StaffPrincipal, claim_id: int, adjuster_id: int, ip: str | None = None
) -> Claim:
    """The adjuster must be an active staff user with the adjuster role whose region covers the claim."""
    _require(actor, ADJUSTER_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    _expect(
        claim,
        ClaimStatus.REPORTED,
        ClaimStatus.SURVEY_SCHEDULED,
        ClaimStatus.SURVEYED,
        ClaimStatus.DOCUMENTS_REQUESTED,
        ClaimStatus.ASSESSED,
        ClaimStatus.OBJECTED,
        ClaimStatus.AGREED,
    )
    user = await session.get(StaffUser, adjuster_id)
    if user is None or not user.active or user.role != Role.ADJUSTER.value:
        raise ClaimError("adjuster_not_found", adjuster_id=adjuster_id)
    if not principal_of(user).covers_region(claim.region_code):
        raise ClaimError("adjuster_out_of_region", adjuster_id=adjuster_id, region=claim.region_code)
    previous = claim.adjuster_id
    claim.adjuster_id = adjuster_id
    _touch(claim)
    timeline.record(
        session, claim, "adjuster_assigned", actor=actor.username, adjuster_id=adjuster_id, previous=previous
    )
    await timeline.tell_insured(
        session,
        claim,
        "adjuster_assigned",
        dedupe=f"adjuster-{adjuster_id}",
        adjuster_name=user.full_name or user.username,
    )
    _audit(session, actor, "claims.assign", claim, ip, adjuster_id=adjuster_id, previous=previous)
    return await _commit(session, claim)


def _self_assign(claim: Claim, actor: StaffPrincipal) -> None:
    if claim.adjuster_id is None and actor.role == Role.ADJUSTER.value:
        claim.adjuster_id = actor.user_id


# --- 2. survey schedule (R-CLM-6) ---------------------------------------------------------------------------


async def schedule_survey(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    claim_id: int,
    at: datetime,
    remote: bool = False,
    remote_method: str | None = None,
    joint_with_government: bool | None = None,
    delay_reason: str | None = None,
    ip: str | None = None,
) -> Claim:
    """R-CLM-6: on site within 24 h of the report; a later time needs the reason, which the reporter is
    told together with the agreed time. Larger events are surveyed with the local government.
    R-DIS-4: a remote survey is by video, or, for a claim in a green channel, by drone or satellite."""
    _require(actor, ADJUSTER_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    _expect(claim, ClaimStatus.REPORTED, ClaimStatus.SURVEY_SCHEDULED)
    if remote_method is not None:
        if remote_method not in rules.REMOTE_METHODS:
            raise ClaimError("remote_method_invalid", remote_method=remote_method)
        green = await in_green_channel(session, claim)
        if remote_method not in rules.remote_methods(green_channel=green):
            raise ClaimError("remote_method_green_channel_only", remote_method=remote_method)
        remote = True
    elif remote:
        remote_method = "video"  # a remote survey without a method is the video survey it always was
    if at.tzinfo is None:
        raise ClaimError("time_not_aware")
    now = utcnow()
    if at < now - CLOCK_SKEW:
        raise ClaimError("survey_time_in_past")
    reason = (delay_reason or "").strip()[:500]
    delayed = claim.survey_due_at is not None and at > claim.survey_due_at
    if delayed and not reason:
        raise ClaimError(
            "delay_reason_required", due_at=claim.survey_due_at.isoformat() if claim.survey_due_at else ""
        )
    product = await _product(session, claim)
    joint = (
        joint_with_government
        if joint_with_government is not None
        else await joint_survey_needed_for(session, claim, product)
    )
    claim.joint_survey = joint
    claim.remote_survey = remote
    claim.remote_method = remote_method if remote else None
    claim.survey_agreed_at = at if delayed else None
    _self_assign(claim, actor)
    _touch(claim, ClaimStatus.SURVEY_SCHEDULED.value)
    data: dict[str, Any] = {"at": at.isoformat(), "remote": remote, "joint": joint}
    if remote:
        data["remote_method"] = claim.remote_method
    local_at = to_local(at)
    if delayed:
        timeline.record(session, claim, "survey_delayed", note=reason, actor=actor.username, **data)
        await timeline.tell_insured(
            session,
            claim,
            "survey_delayed",
            dedupe=f"survey-{at:%Y%m%d%H%M}",
            at=local_at,
            reason=reason,
            remote=remote,
            remote_method=claim.remote_method,
            joint=joint,
        )
    else:
        timeline.record(session, claim, ClaimStatus.SURVEY_SCHEDULED.value, actor=actor.username, **data)
        await timeline.tell_insured(
            session,
            claim,
            "survey_scheduled",
            dedupe=f"survey-{at:%Y%m%d%H%M}",
            at=local_at,
            remote=remote,
            remote_method=claim.remote_method,
            joint=joint,
        )
    _audit(
        session, actor, "claims.survey_schedule", claim, ip, delayed=delayed, reason=reason or None, **data
    )
    return await _commit(session, claim)


# --- 3. survey report (R-CLM-8, R-CLM-9, R-CLM-11) ---------------------------------------------------------


def _loss_class_of(degree: str | None) -> str | None:
    if degree == "total":
        return "heavy"
    return degree if degree in LOSS_CLASSES else None


@dataclass(frozen=True)
class Sampling:
    """A checked R-CLM-8 sampling: the sample points and the record's villages and signers."""

    samples: list[dict[str, Any]]
    record: dict[str, Any]


def _is_village(code: str) -> bool:
    """A 12-digit division code of level 5 (村/社区): the last three digits are not 000."""
    return len(code) == 12 and code.isdigit() and not code.endswith("000")


def loss_villages_of(
    *,
    claim: Claim,
    declared: Sequence[dict[str, Any]],
    loss_classes: Sequence[str] | None,
    loss_degree: str | None,
    sampled: dict[str, set[str]],
) -> dict[str, set[str]]:
    """R-CLM-8: the villages of the loss and the loss classes present in each. The villages named by the
    surveyor (with their classes) and the claim's own village when it is located to one; the claim's own
    village has the ``loss_classes`` given, else its loss degree's class, else the classes sampled there."""
    villages: dict[str, set[str]] = {}
    for index, village in enumerate(declared):
        code = str(village.get("village_code") or "")
        if not code.startswith(significant_prefix(claim.county_code)):
            raise ClaimError("sampling_village_outside_claim", index=index, village_code=code)
        villages.setdefault(code, set()).update(str(c) for c in village.get("loss_classes") or ())
    if _is_village(claim.region_code) and claim.region_code not in villages:
        own = _loss_class_of(loss_degree)
        default = set(loss_classes) if loss_classes else ({own} if own else set())
        villages[claim.region_code] = default or set(sampled.get(claim.region_code, ()))
    if not villages:
        # The claim is located to a township (or coarser): only the surveyor knows the villages.
        raise ClaimError("loss_villages_required", region_code=claim.region_code)
    return villages


def check_sampling(
    *,
    claim: Claim,
    samples: Sequence[dict[str, Any]],
    loss_villages: Sequence[dict[str, Any]] = (),
    loss_classes: Sequence[str] | None,
    loss_degree: str | None,
    samplers: Sequence[str] = (),
    signer: dict[str, Any] | None,
    required: bool,
) -> Sampling:
    """R-CLM-8: every village of the loss gets at least one random sample point per loss class present
    there, and no point lies outside them; each record has place, method, sample size, lost count and loss
    degree; the record is signed by the samplers and by the insured or their representative (the signer's
    R-ENR-5 evidence is checked by :func:`survey_report`)."""
    if not samples:
        if required:
            raise ClaimError("sampling_required")
        return Sampling(samples=[], record={})
    names = [n.strip() for n in samplers if n and n.strip()]
    if not names:
        raise ClaimError("sampling_samplers_required")
    if signer is None:
        raise ClaimError("sampling_unsigned")
    cleaned: list[dict[str, Any]] = []
    for index, sample in enumerate(samples):
        missing = [f for f in SAMPLE_FIELDS if sample.get(f) in (None, "")]
        if missing:
            raise ClaimError("sampling_record_invalid", index=index, missing=",".join(missing))
        if sample["loss_class"] not in LOSS_CLASSES:
            raise ClaimError("sampling_record_invalid", index=index, loss_class=sample["loss_class"])
        if int(sample["lost_count"]) > int(sample["sample_size"]) or int(sample["sample_size"]) <= 0:
            raise ClaimError("sampling_record_invalid", index=index, lost_count=sample["lost_count"])
        village = str(sample["village_code"])
        if not village.startswith(significant_prefix(claim.county_code)):
            raise ClaimError("sampling_village_outside_claim", index=index, village_code=village)
        cleaned.append({f: sample[f] for f in SAMPLE_FIELDS})
    sampled: dict[str, set[str]] = {}
    for sample in cleaned:
        sampled.setdefault(str(sample["village_code"]), set()).add(str(sample["loss_class"]))
    villages = loss_villages_of(
        claim=claim,
        declared=loss_villages,
        loss_classes=loss_classes,
        loss_degree=loss_degree,
        sampled=sampled,
    )
    outside = sorted(set(sampled) - set(villages))
    if outside:
        raise ClaimError("sampling_village_outside_loss", village_code=outside[0])
    for village, classes in sorted(villages.items()):
        found = sampled.get(village)
        if not found:
            raise ClaimError("sampling_village_missing", village_code=village)
        lacking = sorted(classes - found, key=LOSS_CLASSES.index)
        if lacking:
            raise ClaimError("sampling_incomplete", village_code=village, missing=",".join(lacking))
    signer_name = claim.insured_name if signer.get("role") == "insured" else str(signer.get("name") or "")
    record = {
        "villages": {
            code: sorted(classes, key=LOSS_CLASSES.index) for code, classes in sorted(villages.items())
        },
        "samplers": names,
        "signer": {
            "role": signer.get("role"),
            "name": signer_name.strip(),
            "relation": signer.get("relation"),
            "authorisation_document_id": signer.get("authorisation_document_id"),
            "signed_record_document_id": signer.get("signed_record_document_id"),
        },
    }
    return Sampling(samples=[{**s, "signed_by": signer_name.strip()} for s in cleaned], record=record)


async def survey_report(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    claim_id: int,
    loss: str,
    cause: str,
    covered: bool,
    surveyors: Sequence[str],
    loss_degree: str | None = None,
    sampling: Sequence[dict[str, Any]] = (),
    loss_villages: Sequence[dict[str, Any]] = (),
    loss_classes: Sequence[str] | None = None,
    samplers: Sequence[str] = (),
    sampling_signer: dict[str, Any] | None = None,
    harvest_on: datetime | None = None,
    ip: str | None = None,
) -> SurveyOutcome:
    """R-CLM-9 survey report; R-CLM-8 sampling; sets the R-CLM-11 settlement deadline. A loss found not
    covered stays ``surveyed``: the outcome says a denial (R-CLM-10) should follow."""
    _require(actor, ADJUSTER_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    _expect(claim, ClaimStatus.REPORTED, ClaimStatus.SURVEY_SCHEDULED)
    if not loss.strip():
        raise ClaimError("loss_required")
    if not cause.strip():
        raise ClaimError("cause_required")
    names = [n.strip() for n in surveyors if n and n.strip()]
    if not names:
        raise ClaimError("surveyors_required")  # signed by the surveyors
    if loss_degree is not None and loss_degree not in (*LOSS_CLASSES, "total"):
        raise ClaimError("loss_degree_invalid", loss_degree=loss_degree)
    if harvest_on is not None and harvest_on.tzinfo is None:
        raise ClaimError("time_not_aware")
    product = await _product(session, claim)
    mass_disaster = claim.event_id is not None or claim.kind == "collective"
    required = rules.sampling_required(
        product.category, claim.kind, _decimal(claim.lost_quantity), claim.unit, mass_disaster
    )
    checked = check_sampling(
        claim=claim,
        samples=sampling,
        loss_villages=loss_villages,
        loss_classes=loss_classes,
        loss_degree=loss_degree,
        samplers=samplers,
        signer=sampling_signer,
        required=required,
    )
    if sampling_signer is not None and checked.samples:
        await _check_signer(session, claim, sampling_signer)  # R-ENR-5: who signed for the insured, and how
        await _check_signed_record(session, sampling_signer, actor)
    samples = checked.samples
    if (await session.exec(select(SurveyReport).where(SurveyReport.claim_id == claim.id))).first():
        raise ClaimError("survey_already_reported")
    now = utcnow()
    report = SurveyReport(
        claim_id=claim.id or 0,
        loss=loss.strip(),
        cause=cause.strip(),
        covered=covered,
        surveyors=names,
        loss_degree=loss_degree,
        sampling=samples,
        sampling_record=checked.record,
        remote=claim.remote_survey,
        joint_with_government=claim.joint_survey,
        created_by=actor.user_id,
        created_at=now,
    )
    session.add(report)
    claim.surveyed_at = now
    claim.settlement_due_at = rules.settlement_due(now, harvest_on, product.main_crop)
    _self_assign(claim, actor)
    _touch(claim, ClaimStatus.SURVEYED.value)
    timeline.record(
        session,
        claim,
        ClaimStatus.SURVEYED.value,
        actor=actor.username,
        covered=covered,
        loss_degree=loss_degree,
        samples=len(samples),
        remote=claim.remote_survey,
    )
    await timeline.tell_insured(
        session,
        claim,
        "surveyed",
        dedupe="surveyed",
        covered=covered,
        loss=report.loss,
        loss_degree=loss_degree,
    )
    _audit(
        session,
        actor,
        "claims.survey_report",
        claim,
        ip,
        covered=covered,
        surveyors=names,
        samples=len(samples),
        sampling_record=checked.record or None,
        harvest_on=harvest_on.isoformat() if harvest_on else None,
    )
    await session.commit()
    await session.refresh(claim)
    await session.refresh(report)
    return SurveyOutcome(claim=claim, report=report, denial_suggested=not covered)


# --- 4. documents (R-CLM-9) -------------------------------------------------------------------------------


async def request_documents(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    claim_id: int,
    items: Sequence[str],
    ip: str | None = None,
) -> DocumentRequest:
    """R-CLM-9: missing documents are asked for once, all at once: one request, one notice, every item."""
    _require(actor, ADJUSTER_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    if await _document_request(session, claim.id or 0) is not None:
        raise ClaimError("documents_already_requested")
    _expect(claim, ClaimStatus.REPORTED, ClaimStatus.SURVEY_SCHEDULED, ClaimStatus.SURVEYED)
    wanted: list[str] = []
    for item in items:
        text = (item or "").strip()
        if text and text not in wanted:
            wanted.append(text[:200])
    if not wanted:
        raise ClaimError("items_required")
    request = DocumentRequest(claim_id=claim.id or 0, items=wanted, requested_by=actor.user_id)
    session.add(request)
    try:
        await session.flush()
    except IntegrityError as exc:  # another request won the race
        await session.rollback()
        raise ClaimError("documents_already_requested") from exc
    previous = claim.status
    _touch(claim, ClaimStatus.DOCUMENTS_REQUESTED.value)
    timeline.record(
        session,
        claim,
        ClaimStatus.DOCUMENTS_REQUESTED.value,
        actor=actor.username,
        items=wanted,
        previous_status=previous,
    )
    await timeline.tell_insured(
        session, claim, "documents_requested", dedupe="documents-requested", items=wanted
    )
    _audit(session, actor, "claims.documents_request", claim, ip, items=wanted)
    await session.commit()
    await session.refresh(request)
    return request


async def documents_received(session: AsyncSession, claim: Claim, *, actor: str = "insured") -> Claim:
    """The chat side received the requested documents: the request is fulfilled and the claim goes back to
    the status it had before the request. In the caller's transaction; the caller tells the insured and
    commits. Calling it again after the documents were received changes nothing."""
    request = await _document_request(session, claim.id or 0)
    if request is None:
        raise ClaimError("no_documents_requested")
    if claim.status != ClaimStatus.DOCUMENTS_REQUESTED:
        if request.fulfilled_at is not None:
            return claim
        raise ClaimError("bad_status", status=claim.status)
    asked = (
        await session.exec(
            select(ClaimEvent)
            .where(ClaimEvent.claim_id == claim.id, ClaimEvent.kind == ClaimStatus.DOCUMENTS_REQUESTED.value)
            .order_by(col(ClaimEvent.id).desc())
        )
    ).first()
    previous = str((asked.data if asked else {}).get("previous_status") or ClaimStatus.SURVEYED.value)
    request.fulfilled_at = utcnow()
    session.add(request)
    _touch(claim, previous)
    timeline.record(session, claim, "documents_received", actor=actor, items=list(request.items))
    return claim


# --- 5. denial (R-CLM-10, R-CLM-7) ------------------------------------------------------------------------


async def deny(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    claim_id: int,
    reasons: Sequence[str],
    settings: Settings,
    ip: str | None = None,
) -> tuple[Claim, Document]:
    """R-CLM-10: the denial notice 拒赔通知书 (claim, policy, insured, reasons, date, insurer) is stored
    as a document, attached to the claim and sent to the insured's chat. Reason ``no_disposal_proof``
    (R-CLM-7) only where proof of harmless disposal is required and missing."""
    _require(actor, ADJUSTER_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    _expect(
        claim,
        ClaimStatus.REPORTED,
        ClaimStatus.SURVEY_SCHEDULED,
        ClaimStatus.SURVEYED,
        ClaimStatus.DOCUMENTS_REQUESTED,
        ClaimStatus.ASSESSED,
        ClaimStatus.OBJECTED,
    )
    cleaned: list[str] = []
    for reason in reasons:
        text = (reason or "").strip()[:500]
        if text and text not in cleaned:
            cleaned.append(text)
    if not cleaned:
        raise ClaimError("reasons_required")
    if "no_disposal_proof" in cleaned and not (claim.disposal_required and claim.disposal_proven_at is None):
        raise ClaimError("reason_not_applicable", reason="no_disposal_proof")
    insured = await insured_of(session, claim)
    policy = insured.policy
    product = await _product(session, claim)
    locale = await _locale(session, claim, settings.default_locale)
    now = utcnow()
    number = business_number("DN", claim.id, now)
    context = DenialNoticeContext(
        notice_number=number,
        claim_number=claim.number,
        policy_number=policy.number,
        verification_code=verification_code(number, settings.secret_key),
        insurer_name=render(INSURER_NAME_KEY, locale, ext="txt"),
        insured_name=claim.insured_name,
        product_name_zh=product.name_zh,
        product_name_en=product.name_en,
        cause=claim.cause,
        cause_label=cause_label(claim.cause, locale),
        loss_started_at=claim.loss_started_at,
        reported_at=claim.reported_at,
        lost_quantity=claim.lost_quantity,
        unit=claim.unit,
        reasons=tuple(cleaned),
        issued_at=now,
        location=tuple(await region_path_names(session, claim.region_code)),
        place_name=claim.place_name,
        surveyed_at=claim.surveyed_at,
    )
    pdf = await asyncio.to_thread(render_denial_pdf, locale, context)
    document = await documents.store_document(
        session=session,
        kind="denial_notice",
        filename=f"{number}.pdf",
        content=pdf,
        policy_id=policy.id,
        person_id=insured.person_id,
    )
    session.add(
        ClaimAttachment(claim_id=claim.id or 0, document_id=document.id or 0, purpose="denial_notice")
    )
    claim.denied_at = now
    claim.denial_reasons = cleaned
    _touch(claim, ClaimStatus.DENIED.value)
    timeline.record(
        session,
        claim,
        ClaimStatus.DENIED.value,
        actor=actor.username,
        reasons=cleaned,
        document_id=document.id,
        notice_number=number,
    )
    await timeline.tell_insured(
        session,
        claim,
        "denied",
        dedupe="denied",
        attachments=[
            {"kind": "document", "name": f"{number}.pdf", "url": f"/api/outbox/documents/{document.id}"}
        ],
        reasons=cleaned,
        reason_keys=DENIAL_REASONS,
        notice_number=number,
    )
    _audit(
        session,
        actor,
        "claims.deny",
        claim,
        ip,
        reasons=cleaned,
        document_id=document.id,
        sha256=document.sha256,
    )
    await session.commit()
    await session.refresh(claim)
    return claim, document


# --- 6. assessment (R-CLM-7) ------------------------------------------------------------------------------


def _check_disposal(claim: Claim) -> None:
    """R-CLM-7: dead animals without confirmed proof of harmless disposal are never assessed, agreed nor
    paid (the insured's upload alone is not proof: :func:`decide_disposal` confirms it)."""
    if claim.disposal_required and claim.disposal_proven_at is None:
        raise ClaimError("disposal_proof_missing")


VET_FIELDS = ("authority", "person", "confirmed_at", "document")


@dataclass(frozen=True)
class DisposalDecision:
    """R-CLM-7: an adjuster confirms the insured's evidence, or records the vet authority's confirmation
    (who, when, which document); or rejects the evidence with the reason told to the insured."""

    decision: str  # confirm | reject
    by: str = "adjuster"  # adjuster | vet
    authority: str = ""  # the vet authority (畜牧兽医部门), for ``by="vet"``
    person: str = ""
    confirmed_at: datetime | None = None
    document: str = ""  # the vet's certificate or record number
    reason: str = ""  # a rejection's reason, told to the insured


def _confirmation(
    claim: Claim, actor: StaffPrincipal, decision: DisposalDecision, now: datetime
) -> dict[str, Any]:
    confirmation: dict[str, Any] = {
        "by": decision.by,
        "staff_id": actor.user_id,
        "staff": actor.username,
        "recorded_at": now.isoformat(),
    }
    if decision.by == "adjuster":
        if claim.disposal_received_at is None:
            raise ClaimError("disposal_evidence_missing")  # nothing to confirm: the insured sends it first
        return confirmation
    values = {
        "authority": decision.authority.strip(),
        "person": decision.person.strip(),
        "confirmed_at": decision.confirmed_at,
        "document": decision.document.strip(),
    }
    missing = [k for k in VET_FIELDS if not values[k]]
    if missing:
        raise ClaimError("vet_confirmation_incomplete", missing=",".join(missing))
    when = decision.confirmed_at
    assert when is not None
    if when.tzinfo is None:
        raise ClaimError("time_not_aware")
    if when > now + CLOCK_SKEW:
        raise ClaimError("vet_confirmation_in_future")
    return {**confirmation, **values, "confirmed_at": when.isoformat()}


async def decide_disposal(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    claim_id: int,
    decision: DisposalDecision,
    ip: str | None = None,
) -> Claim:
    """R-CLM-7: the insured's upload is evidence only; this is the confirmation that makes it proof (or
    its rejection: the insured is asked to send it again). The insured is told either way."""
    _require(actor, ADJUSTER_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    if not claim.disposal_required:
        raise ClaimError("disposal_not_required")
    if claim.status in FINAL:
        raise ClaimError("bad_status", status=claim.status)
    if claim.disposal_proven_at is not None:
        raise ClaimError("disposal_already_confirmed")
    now = utcnow()
    if decision.decision == "reject":
        reason = decision.reason.strip()[:500]
        if not reason:
            raise ClaimError("reason_required")
        if claim.disposal_received_at is None:
            raise ClaimError("disposal_evidence_missing")
        claim.disposal_received_at = None  # asked for again
        _touch(claim)
        round_no = await _count_events(session, claim, "disposal_rejected") + 1
        timeline.record(session, claim, "disposal_rejected", note=reason, actor=actor.username)
        await timeline.tell_insured(
            session, claim, "disposal_rejected", dedupe=f"disposal-rejected-{round_no}", reason=reason
        )
        _audit(session, actor, "claims.disposal_reject", claim, ip, reason=reason)
        return await _commit(session, claim)
    confirmation = _confirmation(claim, actor, decision, now)
    claim.disposal_proven_at = now
    claim.disposal_confirmation = confirmation
    _self_assign(claim, actor)
    _touch(claim)
    timeline.record(session, claim, "disposal_confirmed", actor=actor.username, **confirmation)
    await timeline.tell_insured(
        session,
        claim,
        "disposal_confirmed",
        dedupe="disposal-confirmed",
        by=decision.by,
        authority=confirmation.get("authority", ""),
    )
    _audit(session, actor, "claims.disposal_confirm", claim, ip, **confirmation)
    return await _commit(session, claim)


async def assess(
    *, session: AsyncSession, actor: StaffPrincipal, claim_id: int, amount_fen: int, ip: str | None = None
) -> Claim:
    """The amount proposed to the household, who confirms or objects in chat (R-CLM-14). An objected
    claim may be assessed again."""
    _require(actor, ADJUSTER_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    _expect(claim, ClaimStatus.SURVEYED, ClaimStatus.OBJECTED)
    _check_disposal(claim)
    report = (await session.exec(select(SurveyReport).where(SurveyReport.claim_id == claim.id))).first()
    if report is None:
        raise ClaimError("survey_report_missing")
    if not report.covered:
        raise ClaimError("not_covered")  # the survey found the loss not covered: deny instead
    if amount_fen <= 0:
        raise ClaimError("amount_invalid")
    insured = await insured_of(session, claim)  # a household's own sum insured, on a collective policy
    if amount_fen > insured.sum_insured_fen:
        raise ClaimError("amount_exceeds_sum_insured", sum_insured_fen=insured.sum_insured_fen)
    prepaid = await prepaid_fen(session, claim.id or 0)
    if amount_fen < prepaid:
        raise ClaimError("amount_below_prepaid", prepaid_fen=prepaid)  # R-LIA-6: pre-paid is part of it
    claim.assessed_amount_fen = amount_fen
    claim.assessed_at = utcnow()
    _touch(claim, ClaimStatus.ASSESSED.value)
    round_no = await _count_events(session, claim, ClaimStatus.ASSESSED.value) + 1
    timeline.record(session, claim, ClaimStatus.ASSESSED.value, actor=actor.username, amount_fen=amount_fen)
    locale = await _locale(session, claim, "zh-CN")
    await timeline.tell_insured(
        session,
        claim,
        "assessed",
        dedupe=f"assessed-{round_no}",
        buttons=[
            [
                {
                    "text": label("claims.confirm", locale),
                    "callback_data": claim_button("confirm", claim.id, claim.assessed_amount_fen or 0),
                },
                {
                    "text": label("claims.object", locale),
                    "callback_data": claim_button("object", claim.id, claim.assessed_amount_fen or 0),
                },
            ]
        ],
        amount=_yuan(amount_fen),
        again=round_no > 1,
    )
    _audit(session, actor, "claims.assess", claim, ip, amount_fen=amount_fen, round=round_no)
    return await _commit(session, claim)


# --- 7. the household's answer (R-CLM-14, R-CLM-13) -----------------------------------------------------


async def _check_signer(session: AsyncSession, claim: Claim, signer: dict[str, Any]) -> None:
    """R-ENR-5 applied to the claims list: the insured (their bound chat account), a direct relative with
    name and relation, or an authorised person with a kept authorisation. Staff never sign."""
    role = signer.get("role")
    if role == "insured":
        return
    if role not in ("relative", "authorised"):
        raise ClaimError("signer_invalid", role=role)
    if not str(signer.get("name") or "").strip():
        raise ClaimError("signer_name_missing")
    if role == "relative":
        if signer.get("relation") not in SIGNER_RELATIONS:
            raise ClaimError("signer_relation_missing")
        return
    document_id = signer.get("authorisation_document_id")
    document = await session.get(Document, int(document_id)) if document_id else None
    insured = await insured_of(session, claim)  # the household's own person on a collective policy
    if document is None or document.kind != "authorisation" or document.person_id != insured.person_id:
        raise ClaimError("authorisation_missing")


async def _check_signed_record(session: AsyncSession, signer: dict[str, Any], actor: StaffPrincipal) -> None:
    """R-CLM-8: the adjuster posts the survey, so a role alone proves nobody signed. Whoever signs (the
    insured, a relative, an authorised person), the photo of the signed sampling record is the evidence:
    a staff upload of kind ``signed_form`` not attached to an application, uploaded by the staff member
    who reports the survey (someone else's upload, from wherever, proves nothing about this field)."""
    document_id = signer.get("signed_record_document_id")
    document = await session.get(Document, int(document_id)) if document_id else None
    if document is None or document.kind != "signed_form" or document.application_id is not None:
        raise ClaimError("sampling_signature_missing")
    if document.uploaded_by_staff_id != actor.user_id:
        raise ClaimError("sampling_signature_not_yours")


async def confirm_settlement(
    session: AsyncSession, claim: Claim, signer: dict[str, Any], *, now: datetime | None = None
) -> Claim:
    """The household confirms the assessed amount: agreed, payment due within 10 days (R-CLM-13).
    In the caller's transaction; the caller commits."""
    _expect(claim, ClaimStatus.ASSESSED)
    _check_disposal(claim)
    await _check_signer(session, claim, signer)
    now = now or utcnow()
    claim.agreed_amount_fen = claim.assessed_amount_fen
    claim.agreed_at = now
    claim.payment_due_at = rules.payment_due(now)
    claim.confirmation = {**signer, "confirmed_at": now.isoformat(), "amount_fen": claim.assessed_amount_fen}
    _touch(claim, ClaimStatus.AGREED.value)
    timeline.record(
        session,
        claim,
        ClaimStatus.AGREED.value,
        actor=str(signer.get("role") or "insured"),
        amount_fen=claim.agreed_amount_fen,
        signer=signer.get("name") or signer.get("role"),
    )
    await timeline.tell_insured(
        session,
        claim,
        "agreed",
        dedupe=f"agreed-{await _count_events(session, claim, ClaimStatus.AGREED.value)}",
        amount=_yuan(claim.agreed_amount_fen),
        payment_due_at=to_local(claim.payment_due_at),
    )
    return claim


async def object_settlement(
    session: AsyncSession, claim: Claim, reason: str, *, settings: Settings | None = None
) -> Claim:
    """The household objects to the assessed amount: staff are alerted and may assess again. In the
    caller's transaction; the caller tells the insured (``claims_notice/objected``) and commits."""
    _expect(claim, ClaimStatus.ASSESSED)
    text = (reason or "").strip()
    if not text:
        raise ClaimError("objection_reason_required")
    settings = settings or get_settings()
    claim.objection = text[:1000]
    _touch(claim, ClaimStatus.OBJECTED.value)
    round_no = await _count_events(session, claim, ClaimStatus.OBJECTED.value) + 1
    timeline.record(session, claim, ClaimStatus.OBJECTED.value, note=claim.objection, actor="insured")
    title, body = alert_texts("claim_objection", settings.default_locale, claim, objection=claim.objection)
    await alert_staff(
        session,
        settings,
        kind="claim_objection",
        region_code=claim.region_code,
        title=title,
        body=body,
        dedupe_key=f"claim-{claim.id}-objection-{round_no}",
        claim_id=claim.id,
    )
    return claim


# --- 8. payment (R-CLM-12) --------------------------------------------------------------------------------


async def record_payment(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    claim_id: int,
    reference: str,
    amount_fen: int | None = None,
    payee_name: str | None = None,
    bank_name: str | None = None,
    account_number: str | None = None,
    ip: str | None = None,
) -> ClaimPayment:
    """R-CLM-12: by transfer to the insured's own account on file (the policy's, by default). Another
    payee needs an exception entered with its explanation and approved by a second staff member
    (``backend.claims.payees``); an account of the registry (village committee, township, staff, another
    insured) or another insured's account on file is refused whatever the name. The amount is the agreed
    one; the insured is told the amount and the masked account."""
    _require(actor, PAYMENT_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    _expect(claim, ClaimStatus.AGREED)
    _check_disposal(claim)
    agreed = claim.agreed_amount_fen or 0
    prepaid = await prepaid_fen(session, claim.id or 0)
    due = agreed - prepaid  # R-LIA-6: pre-payments are deducted from the settlement
    amount = due if amount_fen is None else amount_fen
    if amount != due or due < 0 or (amount == 0 and prepaid == 0):
        raise ClaimError("amount_mismatch", agreed_fen=agreed, prepaid_fen=prepaid, due_fen=due)
    if not reference.strip():
        raise ClaimError("reference_required")
    insured = await insured_of(session, claim)  # R-CLM-12: a household of a collective policy is paid itself
    on_file = payees.own_account(insured)
    # R-LIA-6: pre-payments that cover the whole agreed amount leave nothing to transfer; the settlement
    # closes with 0 due and no account (the reference is the settlement voucher's).
    no_transfer = due == 0
    account = "" if no_transfer else (payees.account_of(account_number) if account_number else on_file)
    if not account and not no_transfer:
        raise ClaimError("account_required")
    is_insured = no_transfer or account == on_file
    given_name = (payee_name or "").strip() or None
    if is_insured and given_name not in (None, insured.name):
        raise ClaimError("payee_name_not_insured")  # the account on file is the insured's, in their name
    if not no_transfer:
        await payees.refuse_known_account(session, insured, account)
    exception = None if is_insured else await payees.approved_exception(session, claim, account, given_name)
    name = exception.payee_name if exception else insured.name
    bank = (exception.bank_name if exception else (bank_name or insured.bank_name)).strip()
    if no_transfer:
        bank = ""
    elif not bank:
        raise ClaimError("bank_required")
    note = exception.explanation if exception else ""
    now = utcnow()
    payment = ClaimPayment(
        claim_id=claim.id or 0,
        amount_fen=amount,
        payee_name=name,
        bank_name=bank,
        account_number=account,
        payee_is_insured=is_insured,
        explanation=note or None,
        reference=reference.strip(),
        paid_by=actor.user_id,
        paid_at=now,
        payee_exception_id=exception.id if exception else None,
        approved_by=exception.decided_by if exception else None,
        prepaid_fen=prepaid,
    )
    session.add(payment)
    if exception is not None:
        exception.status = PayeeExceptionStatus.USED.value
        session.add(exception)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise ClaimError("already_paid") from exc
    masked = mask_value("bank_account", account) if account else ""
    claim.paid_at = now
    claim.paid_amount_fen = amount
    _touch(claim, ClaimStatus.PAID.value)
    timeline.record(
        session,
        claim,
        ClaimStatus.PAID.value,
        actor=actor.username,
        amount_fen=amount,
        account_masked=masked,
        payee_is_insured=is_insured,
    )
    await timeline.tell_insured(
        session,
        claim,
        "paid",
        dedupe="paid",
        amount=_yuan(amount),
        bank_name=bank,
        account_masked=masked,
        payee_name=name,
        payee_is_insured=is_insured,
        prepaid=_yuan(prepaid) if prepaid else None,
    )
    _audit(
        session,
        actor,
        "claims.payment",
        claim,
        ip,
        amount_fen=amount,
        payee=name,
        account_masked=masked,
        payee_is_insured=is_insured,
        explanation=note or None,
        payee_exception_id=exception.id if exception else None,
        approved_by=exception.decided_by if exception else None,
        prepaid_fen=prepaid,
        reference=reference.strip(),
    )
    await session.commit()
    await session.refresh(payment)
    return payment


# --- 8b. pre-payments (R-LIA-6) ----------------------------------------------------------------------------


async def prepayments_of(session: AsyncSession, claim_id: int) -> list[ClaimPrepayment]:
    query = (
        select(ClaimPrepayment).where(ClaimPrepayment.claim_id == claim_id).order_by(col(ClaimPrepayment.id))
    )
    return list((await session.exec(query)).all())


async def prepaid_fen(session: AsyncSession, claim_id: int) -> int:
    query = select(func.coalesce(func.sum(ClaimPrepayment.amount_fen), 0)).where(
        ClaimPrepayment.claim_id == claim_id
    )
    return int((await session.exec(query)).one())


async def record_prepayment(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    claim_id: int,
    kind: str,
    amount_fen: int,
    payee_name: str,
    payee_kind: str,
    bank_name: str,
    account_number: str,
    reason: str,
    reference: str = "",
    ip: str | None = None,
) -> ClaimPrepayment:
    """R-LIA-6 先行垫付: compensation, rescue or medical costs paid on an accident claim before the
    settlement; listed on the claim and deducted from the settlement's payment. R-CLM-12: the payee may be
    the injured, a hospital or a rescue team, but its account goes through the payee registry check (never
    a village committee's, township's, staff member's or another insured's account)."""
    _require(actor, PAYMENT_ROLES)
    claim = await _scoped(session, actor, claim_id, lock=True)
    # R-LIA-6 on accident claims; R-DIS-4 on any claim in a green channel.
    if not rules.prepayment_allowed(claim.kind, green_channel=await in_green_channel(session, claim)):
        raise ClaimError("prepayment_liability_only")
    if claim.status in (*FINAL, ClaimStatus.AGREED.value):
        raise ClaimError("bad_status", status=claim.status)
    if kind not in {k.value for k in PrepaymentKind}:
        raise ClaimError("prepayment_kind_invalid", kind=kind)
    if amount_fen <= 0:
        raise ClaimError("amount_invalid")
    name, why, bank = payee_name.strip(), reason.strip(), bank_name.strip()
    if not name:
        raise ClaimError("payee_required")
    if payee_kind not in {k.value for k in PrepaymentPayeeKind}:
        raise ClaimError("prepayment_payee_kind_invalid", payee_kind=payee_kind)
    if not bank:
        raise ClaimError("bank_required")
    if not why:
        raise ClaimError("reason_required")
    account = payees.account_of(account_number)
    insured = await insured_of(session, claim)
    await payees.refuse_known_account(session, insured, account)
    already = await prepaid_fen(session, claim.id or 0)
    # Once assessed (ASSESSED or OBJECTED) the pre-payments are part of the assessed amount: more would leave
    # a negative balance that no payment can settle. Before, the sum insured is the only bound known.
    if claim.assessed_amount_fen is not None:
        if already + amount_fen > claim.assessed_amount_fen:
            raise ClaimError(
                "prepayment_exceeds_assessed", assessed_fen=claim.assessed_amount_fen, prepaid_fen=already
            )
    elif already + amount_fen > insured.sum_insured_fen:
        raise ClaimError("amount_exceeds_sum_insured", sum_insured_fen=insured.sum_insured_fen)
    prepayment = ClaimPrepayment(
        claim_id=claim.id or 0,
        kind=kind,
        amount_fen=amount_fen,
        payee_name=name[:100],
        payee_kind=payee_kind,
        bank_name=bank[:50],
        account_number=account,
        reason=why[:1000],
        reference=reference.strip()[:128],
        recorded_by=actor.user_id,
    )
    session.add(prepayment)
    _touch(claim)
    timeline.record(
        session, claim, "prepayment", actor=actor.username, prepayment=kind, amount_fen=amount_fen, payee=name
    )
    _audit(
        session,
        actor,
        "claims.prepayment",
        claim,
        ip,
        kind=kind,
        amount_fen=amount_fen,
        payee=name,
        payee_kind=payee_kind,
        account_masked=mask_value("bank_account", account),
        reason=why,
        reference=prepayment.reference or None,
        prepaid_total_fen=already + amount_fen,
    )
    await session.commit()
    await session.refresh(prepayment)
    return prepayment

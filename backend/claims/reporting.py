"""The insured's side of a claim: reporting a loss (R-CLM-1, -4, -6, -7; R-LIA-6), evidence uploads,
following the claim, and confirming or objecting to the settlement (R-CLM-14). Collective reports by
agents (R-CLM-3) create the same claims for many households at once."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import ColumnElement, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.alerts.warnings.models import CapWarning
from backend.claims import rules, timeline
from backend.claims.errors import ClaimError
from backend.claims.insured import ClaimInsured
from backend.claims.models import Claim, ClaimAttachment, ClaimEvent, ClaimKind, ClaimStatus, DocumentRequest
from backend.claims.schemas import ClaimReportIn, CollectiveHousehold, CollectiveReportIn
from backend.claims.workflow import confirm_settlement, documents_received, object_settlement
from backend.db import utcnow
from backend.enrollment import validation
from backend.enrollment.collective import holdings
from backend.enrollment.collective.models import PolicyHousehold
from backend.enrollment.models import Document, Policy
from backend.numbers import business_number
from backend.outbox.models import Priority
from backend.outbox.service import enqueue
from backend.people.models import ChatIdentity
from backend.products.models import Product
from backend.products.pricing import yuan_to_fen
from backend.security import BotPrincipal, StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.service import record_audit
from messages import render

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class ClaimContext:
    insured: ClaimInsured
    product: Product

    @property
    def policy(self) -> Policy:
        return self.insured.policy


def county_of(region_code: str) -> str:
    return region_code[:6] + "000000"


async def _own_policy(session: AsyncSession, principal: BotPrincipal, policy_id: int) -> ClaimContext:
    """Farmers see only their own data: a policy of another person does not exist for them. A household of
    a collective policy holds its own row of it (seen through a verified binding only), and its claim is
    the household's own."""
    policy = await session.get(Policy, policy_id)
    if policy is None:
        raise ClaimError("not_found")
    household = None
    if not principal.sees(policy.identity_id, policy.person_id):
        if principal.person_view is not None:
            household = await holdings.household_on_policy(
                session, policy_id=policy_id, person_id=principal.person_view
            )
        if household is None:
            raise ClaimError("not_found")
    product = await session.get(Product, policy.product_code)
    assert product is not None
    return ClaimContext(insured=ClaimInsured(policy=policy, household=household), product=product)


def _amount_fen(raw: str) -> int:
    try:
        value = Decimal(raw.strip().replace(",", "").replace("，", ""))
    except InvalidOperation as exc:
        raise ClaimError("amount_format") from exc
    if not value.is_finite() or value < 0 or value > Decimal("100000000"):
        raise ClaimError("amount_format")
    return yuan_to_fen(value)


def _check_times(started: datetime, ended: datetime | None, now: datetime) -> None:
    started, ended = _aware(started), (_aware(ended) if ended is not None else None)
    if started > now + CLOCK_SKEW:
        raise ClaimError("loss_in_future")
    if ended is not None and (ended < started or ended > now + CLOCK_SKEW):
        raise ClaimError("loss_end_invalid")


def _aware(moment: datetime) -> datetime:
    """A time without a zone is taken as UTC, as every stored time is."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _check_in_cover(policy: Policy, started: datetime) -> None:
    """A loss is covered only if it began inside the policy's insurance period: before the cover began
    or after it ended there is nothing to report against this policy. The detail carries both ends (UTC,
    ISO) so the chat can show them in the user's time zone."""
    starts, ends = _aware(policy.starts_at), _aware(policy.ends_at)
    if not starts <= _aware(started) <= ends:
        raise ClaimError(
            "loss_outside_cover",
            policy_id=policy.id,
            starts_at=starts.isoformat(),
            ends_at=ends.isoformat(),
        )


def _lost_quantity(raw: str, product: Product, insured: ClaimInsured) -> Decimal:
    try:
        quantity = validation.validate_quantity(raw, product.unit)
    except validation.ValidationProblem as exc:
        raise ClaimError(exc.code, **exc.detail) from exc
    if quantity > Decimal(insured.quantity):  # a household's own quantity, not the whole list's
        raise ClaimError("lost_more_than_insured", insured=insured.quantity)
    return quantity


async def _own_documents(session: AsyncSession, principal: BotPrincipal, ids: list[int]) -> list[int]:
    if not ids:
        return []
    rows = (await session.exec(select(Document).where(col(Document.id).in_(ids)))).all()
    if len(rows) != len(set(ids)) or any(d.person_id != principal.person_id for d in rows):
        raise ClaimError("photo_not_found")
    return [d.id or 0 for d in rows]


def _own_claim_or_refuse(claim: Claim, principal: BotPrincipal) -> Claim:
    """A repeated key returns the claim only to whoever reported it."""
    if claim.identity_id != principal.identity_id:
        raise ClaimError("idempotency_key_taken")
    return claim


async def report_claim(
    *, session: AsyncSession, principal: BotPrincipal, body: ClaimReportIn, settings: Settings
) -> Claim:
    """One claim per idempotency key; late reports are accepted and marked late (R-CLM-1)."""
    existing = (
        await session.exec(select(Claim).where(Claim.idempotency_key == body.idempotency_key))
    ).first()
    if existing is not None:
        return _own_claim_or_refuse(existing, principal)
    context = await _own_policy(session, principal, body.policy_id)
    product, policy = context.product, context.policy
    if product.weather_index:
        raise ClaimError("index_no_report")  # R-CLM-2: the station data decides, no report needed
    if policy.status != "active":
        raise ClaimError("policy_inactive")
    identity = await session.get(ChatIdentity, principal.identity_id)
    if identity is None or not identity.phone:
        raise ClaimError("phone_required")
    now = utcnow()
    _check_times(body.loss_started_at, body.loss_ended_at, now)
    _check_in_cover(policy, body.loss_started_at)
    if body.cause not in rules.CAUSES_BY_CATEGORY.get(product.category, ()):
        raise ClaimError("cause_not_covered_by_product", cause=body.cause)
    claim = _new_claim(body, context, identity, now)
    if body.warning_id is not None and await session.get(CapWarning, body.warning_id) is not None:
        claim.warning_id = body.warning_id  # a stale or forged warning id links nothing
    photos = await _own_documents(session, principal, body.photo_document_ids)
    disposal = await _own_documents(session, principal, body.disposal_document_ids)
    if product.category == "livestock" and not photos:
        raise ClaimError("photo_required")  # at least one photo of dead animals
    if disposal:
        claim.disposal_received_at = now  # R-CLM-7: evidence only, until an adjuster confirms it
    session.add(claim)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raced = (
            await session.exec(select(Claim).where(Claim.idempotency_key == body.idempotency_key))
        ).first()
        assert raced is not None
        return _own_claim_or_refuse(raced, principal)
    claim.number = business_number("CL", claim.id, now)
    _attach(session, claim, photos, "scene")
    _attach(session, claim, disposal, "disposal")
    timeline.record(
        session,
        claim,
        ClaimStatus.REPORTED.value,
        actor="insured",
        late=claim.late,
        delay_minutes=claim.delay_minutes,
    )
    await _after_report(session, settings, claim)
    await session.commit()
    await session.refresh(claim)
    return claim


def _new_claim(body: ClaimReportIn, context: ClaimContext, identity: ChatIdentity, now: datetime) -> Claim:
    product, policy, insured = context.product, context.policy, context.insured
    liability = product.category == "liability"
    lost = Decimal(body.dead or 0) + Decimal(body.injured or 0) if liability else None
    quantity = str(lost) if lost is not None else str(_lost_quantity(body.lost_quantity, product, insured))
    late, delay = rules.report_delay(body.loss_started_at, now)
    return Claim(
        number=f"TMP{secrets.token_hex(6)}",
        idempotency_key=body.idempotency_key,
        kind=(ClaimKind.LIABILITY if liability else ClaimKind.INDIVIDUAL).value,
        policy_id=policy.id or 0,
        household_id=insured.household_id,
        product_code=product.code,
        identity_id=identity.id,
        region_code=insured.region_code,
        county_code=county_of(insured.region_code),
        insured_name=insured.name,
        cause=body.cause,
        loss_started_at=body.loss_started_at,
        loss_ended_at=body.loss_ended_at,
        lost_quantity=quantity,
        unit="person" if liability else product.unit,
        estimated_amount_fen=_amount_fen(body.estimated_amount_yuan),
        place_name=body.place_name.strip(),
        latitude=body.latitude,
        longitude=body.longitude,
        reporter_name=body.reporter_name.strip(),
        reporter_phone=identity.phone or "",
        description=body.description.strip(),
        injured=body.injured,
        dead=body.dead,
        reported_at=now,
        late=late,
        delay_minutes=delay,
        disposal_required=rules.disposal_proof_required(product.category, body.cause),
        survey_due_at=rules.survey_due(now),
        joint_survey=not liability
        and rules.joint_survey_needed(product.category, product.unit, Decimal(quantity), product.details),
    )


def _attach(session: AsyncSession, claim: Claim, document_ids: list[int], purpose: str) -> None:
    session.add_all(
        ClaimAttachment(claim_id=claim.id or 0, document_id=d, purpose=purpose) for d in document_ids
    )


def accident_recipients(settings: Settings) -> list[tuple[str, str, str]]:
    """R-LIA-6: (who, outbox channel, address) of every configured recipient of an accident report."""
    configured = (
        ("operations_centre", settings.operations_centre_channel, settings.operations_centre_address),
        ("safety_authority", settings.safety_authority_channel, settings.safety_authority_address),
    )
    return [(who, channel, address.strip()) for who, channel, address in configured if address.strip()]


async def _notify_accident(session: AsyncSession, settings: Settings, claim: Claim) -> None:
    """R-LIA-6: the operations centre and the safety authority are told at once, through the outbox in
    the report's own transaction (a report is never stored without its notices, nor the reverse)."""
    policy = await session.get(Policy, claim.policy_id)
    for who, channel, address in accident_recipients(settings):
        await enqueue(
            session=session,
            channel=channel,
            address=address,
            text=render(
                "claims/accident_notice",
                settings.default_locale,
                claim=claim,
                policy_number=policy.number if policy else "",
                recipient=who,
            ),
            dedupe_key=f"claim-{claim.id}-accident-{who}",
            priority=Priority.REPLY,
        )


async def _after_report(session: AsyncSession, settings: Settings, claim: Claim) -> None:
    """Liability accidents alert staff and notify the operations centre and the safety authority at once
    (R-LIA-6); every claim may raise a catastrophe (R-CLM-5)."""
    if claim.kind == ClaimKind.LIABILITY:
        await _notify_accident(session, settings, claim)
        await alert_staff(
            session,
            settings,
            kind="liability_accident",
            region_code=claim.region_code,
            title=render("claims/alert_accident_title", settings.default_locale, ext="txt", claim=claim),
            body=render("claims/alert_accident_body", settings.default_locale, ext="txt", claim=claim),
            dedupe_key=f"claim-{claim.id}-accident",
            claim_id=claim.id,
        )
    from backend.claims.catastrophe.service import after_claim_reported

    await after_claim_reported(session, settings, claim)


# --- following a claim -------------------------------------------------------------------------------------


def _claims_of(principal: BotPrincipal) -> ColumnElement[bool]:
    """The chat's own claims, and (a verified binding) those on its person's policies: reported on
    another device, or for them by an agent."""
    mine: ColumnElement[bool] = col(Claim.identity_id) == principal.identity_id
    if principal.person_view is None:
        return mine
    persons = select(Policy.id).where(Policy.person_id == principal.person_view)
    households = select(PolicyHousehold.id).where(PolicyHousehold.person_id == principal.person_view)
    return or_(mine, col(Claim.policy_id).in_(persons), col(Claim.household_id).in_(households))


async def claims_for(*, session: AsyncSession, principal: BotPrincipal) -> list[Claim]:
    query = select(Claim).where(_claims_of(principal)).order_by(col(Claim.id).desc())
    return list((await session.exec(query)).all())


async def claim_for(*, session: AsyncSession, principal: BotPrincipal, claim_id: int) -> Claim:
    claim = (await session.exec(select(Claim).where(Claim.id == claim_id, _claims_of(principal)))).first()
    if claim is None:
        raise ClaimError("not_found")
    return claim


@dataclass(frozen=True)
class ClaimFollowUp:
    """What "my claims" shows of each claim besides the claim itself, read for all of them at once: one
    query each, whatever the number of claims (a query per claim made a long list slow)."""

    timelines: dict[int, list[ClaimEvent]]
    requested: dict[int, list[str]]  # the open document request of a claim (R-CLM-9), if any

    def timeline(self, claim: Claim) -> list[ClaimEvent]:
        return self.timelines.get(claim.id or 0, [])

    def requested_items(self, claim: Claim) -> list[str]:
        return self.requested.get(claim.id or 0, [])


async def follow_up_of(*, session: AsyncSession, claims: Sequence[Claim]) -> ClaimFollowUp:
    ids = [claim.id for claim in claims if claim.id is not None]
    if not ids:
        return ClaimFollowUp(timelines={}, requested={})
    timelines: dict[int, list[ClaimEvent]] = {claim_id: [] for claim_id in ids}
    events = await session.exec(
        select(ClaimEvent).where(col(ClaimEvent.claim_id).in_(ids)).order_by(col(ClaimEvent.id))
    )
    for claim_event in events.all():
        timelines[claim_event.claim_id].append(claim_event)
    open_requests = await session.exec(
        select(DocumentRequest).where(
            col(DocumentRequest.claim_id).in_(ids), col(DocumentRequest.fulfilled_at).is_(None)
        )
    )
    requested = {request.claim_id: list(request.items) for request in open_requests.all()}
    return ClaimFollowUp(timelines=timelines, requested=requested)


def next_action(claim: Claim) -> str:
    """What the insured must do now, shown in "my claims"."""
    if claim.status in (ClaimStatus.DENIED, ClaimStatus.PAID):
        return "none"
    if claim.disposal_required and claim.disposal_proven_at is None:
        # R-CLM-7: an upload waits for the adjuster's confirmation; a rejected one is asked for again
        return "send_disposal_proof" if claim.disposal_received_at is None else "disposal_under_review"
    if claim.status == ClaimStatus.DOCUMENTS_REQUESTED:
        return "send_documents"
    if claim.status == ClaimStatus.ASSESSED:
        return "confirm_amount"
    return "wait"


async def add_evidence(
    *, session: AsyncSession, principal: BotPrincipal, claim_id: int, purpose: str, document_ids: list[int]
) -> Claim:
    """Photos after the report: disposal evidence (R-CLM-7, confirmed by staff afterwards) or the
    documents staff asked for (R-CLM-9)."""
    claim = await claim_for(session=session, principal=principal, claim_id=claim_id)
    if claim.status in (ClaimStatus.DENIED, ClaimStatus.PAID):
        raise ClaimError("claim_closed")
    ids = await _own_documents(session, principal, document_ids)
    _attach(session, claim, ids, purpose)
    if purpose == "disposal" and claim.disposal_required:
        # R-CLM-7: the upload is evidence; the proof counts once an adjuster (or the vet) confirms it
        claim.disposal_received_at = utcnow()
        timeline.record(session, claim, "disposal_received", actor="insured", count=len(ids))
    elif purpose == "requested":
        if claim.status != ClaimStatus.DOCUMENTS_REQUESTED:
            raise ClaimError("no_documents_requested")
        await documents_received(session, claim)
    else:
        timeline.record(session, claim, "photos_added", actor="insured", count=len(ids))
    await session.commit()
    await session.refresh(claim)
    return claim


async def answer_settlement(
    *,
    session: AsyncSession,
    principal: BotPrincipal,
    claim_id: int,
    answer: str,
    reason: str | None,
    expected_amount_fen: int | None = None,
) -> Claim:
    """R-CLM-14: a confirmation in chat by the bound account of the insured counts as the insured's own."""
    claim = await claim_for(session=session, principal=principal, claim_id=claim_id)
    if claim.status != ClaimStatus.ASSESSED:
        raise ClaimError("not_awaiting_confirmation", status=claim.status)
    if expected_amount_fen is not None and expected_amount_fen != claim.assessed_amount_fen:
        raise ClaimError("stale_assessment")  # R-CLM-14: only the amount the household saw is confirmed
    if answer == "confirm":
        signer = {"role": "insured", "identity_id": principal.identity_id, "at": utcnow().isoformat()}
        await confirm_settlement(session, claim, signer)
    else:
        if not reason:
            raise ClaimError("objection_reason_required")
        await object_settlement(session, claim, reason)
    await session.commit()
    await session.refresh(claim)
    return claim


# --- collective report (R-CLM-3) ------------------------------------------------------------------------------


async def _reported_insured(
    session: AsyncSession, actor: StaffPrincipal, village_code: str, entry: CollectiveHousehold
) -> ClaimInsured:
    """One household of an agent's report: its own policy in the village, or its row of a collective
    policy (R-CLM-12: a collective policy's claims are its households', never the organiser's)."""
    policy = await session.get(Policy, entry.policy_id)
    if policy is None:
        raise ClaimError("policy_not_in_village", policy_id=entry.policy_id)
    household = None
    if entry.household_id is not None:
        household = await holdings.household_of_policy(
            session, policy_id=entry.policy_id, household_id=entry.household_id
        )
        if household is None:
            raise ClaimError(
                "household_not_on_policy", policy_id=entry.policy_id, household_id=entry.household_id
            )
    elif await holdings.is_collective_policy(session, entry.policy_id):
        raise ClaimError("household_required", policy_id=entry.policy_id)
    insured = ClaimInsured(policy=policy, household=household)
    # The household's own village: a village agent reports for its households of a township's list.
    in_village = insured.region_code.startswith(significant_prefix(village_code))
    if not in_village or not actor.covers_region(insured.region_code):
        raise ClaimError("policy_not_in_village", policy_id=entry.policy_id)
    if policy.status != "active":
        raise ClaimError("policy_inactive", policy_id=policy.id)
    return insured


async def collective_report(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    body: CollectiveReportIn,
    settings: Settings,
    ip: str | None,
) -> list[Claim]:
    """An agent reports for many households of one village at once; each household gets its own claim."""
    if not actor.covers_region(body.village_code):
        raise ClaimError("outside_scope")
    now = utcnow()
    _check_times(body.loss_started_at, body.loss_ended_at, now)
    claims: list[Claim] = []
    for entry in body.households:
        insured = await _reported_insured(session, actor, body.village_code, entry)
        policy = insured.policy
        _check_in_cover(policy, body.loss_started_at)
        product = await session.get(Product, policy.product_code)
        assert product is not None
        if product.weather_index:
            raise ClaimError("index_no_report", policy_id=policy.id)  # R-CLM-2: paid from the station data
        if body.cause not in rules.CAUSES_BY_CATEGORY.get(product.category, ()):
            raise ClaimError("cause_not_covered_by_product", cause=body.cause, policy_id=policy.id)
        quantity = _lost_quantity(entry.lost_quantity, product, insured)
        late, delay = rules.report_delay(body.loss_started_at, now)
        claim = Claim(
            number=f"TMP{secrets.token_hex(6)}",
            kind=ClaimKind.COLLECTIVE.value,
            policy_id=policy.id or 0,
            household_id=insured.household_id,
            product_code=product.code,
            identity_id=policy.identity_id,
            region_code=insured.region_code,
            county_code=county_of(insured.region_code),
            insured_name=insured.name,
            cause=body.cause,
            loss_started_at=body.loss_started_at,
            loss_ended_at=body.loss_ended_at,
            lost_quantity=str(quantity),
            unit=product.unit,
            estimated_amount_fen=_amount_fen(entry.estimated_amount_yuan),
            place_name=body.place_name or (insured.household.place_name if insured.household else ""),
            reporter_name=actor.username,
            reporter_phone="",
            description=body.description,
            reported_at=now,
            reported_by_staff_id=actor.user_id,
            late=late,
            delay_minutes=delay,
            disposal_required=rules.disposal_proof_required(product.category, body.cause),
            survey_due_at=rules.survey_due(now),
            joint_survey=rules.joint_survey_needed(product.category, product.unit, quantity, product.details),
        )
        session.add(claim)
        await session.flush()
        claim.number = business_number("CL", claim.id, now)
        timeline.record(session, claim, ClaimStatus.REPORTED.value, actor=actor.username, collective=True)
        await timeline.tell_insured(session, claim, "reported_for_you", dedupe="reported")
        await _after_report(session, settings, claim)
        claims.append(claim)
    record_audit(
        session=session,
        actor=actor,
        action="claims.collective_report",
        target_type="region",
        target_id=body.village_code,
        detail={"claims": [c.number for c in claims]},
        ip=ip,
    )
    await session.commit()
    return claims

"""Claim routes for the bot (acting for the insured) and the agents' collective report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile, status
from sqlmodel import col, select

from backend import images
from backend.claims import reporting, rules
from backend.claims.catastrophe.response import green_channel_claim_ids
from backend.claims.models import Claim
from backend.claims.schemas import (
    AttachmentIn,
    ClaimOut,
    ClaimReportIn,
    CollectiveReportIn,
    CollectiveReportOut,
    SettlementAnswerIn,
    TimelineEntry,
)
from backend.deps import BotDep, SessionDep, SettingsDep, require_roles
from backend.enrollment import documents
from backend.ids import Id
from backend.products.models import Product
from backend.security import StaffPrincipal
from backend.settings import Settings

bot_router = APIRouter(prefix="/api/bot/claims", tags=["bot: claims"])
collective_router = APIRouter(prefix="/api/claims", tags=["claims"])

MAX_MEDIA_BYTES = 20 * 1024 * 1024  # Telegram lets bots download files up to 20 MB
Agent = Annotated[StaffPrincipal, Depends(require_roles("agent", "adjuster"))]


async def _media_type(data: bytes, settings: Settings) -> str:
    """What the loss photo or video really is: a video by its container, a photo once Pillow has
    decoded it whole (``backend/images.py``); anything else is refused, whatever the client called it."""
    video = images.video_type_of(data)
    if video is not None:
        return video
    try:
        found = await images.checked_image(data, max_pixels=settings.max_image_pixels)
    except images.ImageRefused as refused:
        if refused.code == "not_an_image":
            raise images.ImageRefused("not_media") from refused
        raise
    return found.content_type


def _claim_out(claim: Claim, follow_up: reporting.ClaimFollowUp, green: bool, category: str) -> ClaimOut:
    return ClaimOut(
        id=claim.id or 0,
        number=claim.number,
        kind=claim.kind,
        status=claim.status,
        policy_id=claim.policy_id,
        product_code=claim.product_code,
        cause=claim.cause,
        loss_started_at=claim.loss_started_at,
        lost_quantity=claim.lost_quantity,
        unit=claim.unit,
        estimated_amount_fen=claim.estimated_amount_fen,
        reported_at=claim.reported_at,
        late=claim.late,
        delay_minutes=claim.delay_minutes,
        survey_due_at=claim.survey_agreed_at or claim.survey_due_at,
        joint_survey=claim.joint_survey,
        remote_survey=claim.remote_survey,
        disposal_required=claim.disposal_required,
        disposal_proven=claim.disposal_proven_at is not None,
        assessed_amount_fen=claim.assessed_amount_fen,
        agreed_amount_fen=claim.agreed_amount_fen,
        paid_amount_fen=claim.paid_amount_fen,
        paid_at=claim.paid_at,
        documents_requested=follow_up.requested_items(claim),
        denial_reasons=claim.denial_reasons,
        next_action=reporting.next_action(claim),
        timeline=[TimelineEntry(at=e.at, kind=e.kind, note=e.note) for e in follow_up.timeline(claim)],
        green_channel=green,
        documents_needed=list(rules.claim_documents(category, green_channel=green)),
        remote_methods=list(rules.remote_methods(green_channel=green)),
        remote_method=claim.remote_method,
        prepayment_available=rules.prepayment_allowed(claim.kind, green_channel=green),
    )


async def claims_out(session: SessionDep, claims: Sequence[Claim]) -> list[ClaimOut]:
    """The claims as the bot shows them, in a constant number of queries however many there are."""
    follow_up = await reporting.follow_up_of(session=session, claims=claims)
    green = await green_channel_claim_ids(session, claims)  # R-DIS-4
    codes = sorted({c.product_code for c in claims})
    categories = dict(
        (await session.exec(select(Product.code, Product.category).where(col(Product.code).in_(codes)))).all()
    )
    return [
        _claim_out(
            claim, follow_up, (claim.id or 0) in green, str(categories.get(claim.product_code, "crop"))
        )
        for claim in claims
    ]


async def claim_out(session: SessionDep, claim: Claim) -> ClaimOut:
    return (await claims_out(session, [claim]))[0]


@bot_router.post("", response_model=ClaimOut)
async def report(
    body: ClaimReportIn, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> ClaimOut:
    claim = await reporting.report_claim(session=session, principal=principal, body=body, settings=settings)
    return await claim_out(session, claim)


@bot_router.get("", response_model=list[ClaimOut])
async def my_claims(principal: BotDep, session: SessionDep) -> list[ClaimOut]:
    return await claims_out(session, await reporting.claims_for(session=session, principal=principal))


@bot_router.get("/{claim_id}", response_model=ClaimOut)
async def my_claim(claim_id: Id, principal: BotDep, session: SessionDep) -> ClaimOut:
    claim = await reporting.claim_for(session=session, principal=principal, claim_id=claim_id)
    return await claim_out(session, claim)


@bot_router.post("/media", status_code=201)
async def upload_media(
    principal: BotDep, session: SessionDep, settings: SettingsDep, file: Annotated[UploadFile, File()]
) -> dict[str, int]:
    """A photo or video of the loss, kept with its SHA-256; attached to a claim by id afterwards."""
    if principal.person_id is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"code": "phone_required", "message": ""}
        )
    data = await file.read(MAX_MEDIA_BYTES + 1)
    if len(data) > MAX_MEDIA_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, detail={"code": "file_too_large", "message": ""}
        )
    document = await documents.store_document(
        session=session,
        kind="claim_media",
        filename=file.filename or "photo.jpg",
        content=data,
        content_type=await _media_type(data, settings),
        person_id=principal.person_id,
    )
    await session.commit()
    return {"id": document.id or 0}


@bot_router.post("/{claim_id}/attachments", response_model=ClaimOut)
async def add_evidence(claim_id: Id, body: AttachmentIn, principal: BotDep, session: SessionDep) -> ClaimOut:
    claim = await reporting.add_evidence(
        session=session,
        principal=principal,
        claim_id=claim_id,
        purpose=body.purpose,
        document_ids=body.document_ids,
    )
    return await claim_out(session, claim)


@bot_router.post("/{claim_id}/settlement", response_model=ClaimOut)
async def answer_settlement(
    claim_id: Id, body: SettlementAnswerIn, principal: BotDep, session: SessionDep
) -> ClaimOut:
    claim = await reporting.answer_settlement(
        session=session,
        principal=principal,
        claim_id=claim_id,
        answer=body.answer,
        reason=body.reason,
        expected_amount_fen=body.expected_amount_fen,
    )
    return await claim_out(session, claim)


@collective_router.post("/collective", response_model=CollectiveReportOut, status_code=201)
async def collective(
    body: CollectiveReportIn, staff: Agent, session: SessionDep, settings: SettingsDep, request: Request
) -> CollectiveReportOut:
    claims = await reporting.collective_report(
        session=session,
        actor=staff,
        body=body,
        settings=settings,
        ip=request.client.host if request.client else None,
    )
    return CollectiveReportOut(
        claims=[{"id": c.id, "number": c.number, "policy_id": c.policy_id} for c in claims]
    )

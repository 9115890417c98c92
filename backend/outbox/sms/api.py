"""The delivery side tells the backend what the SMS provider reported: receipts and unsubscribes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from backend.deps import BotDep, SessionDep, require_service
from backend.outbox.sms import service
from backend.outbox.sms.schemas import LinkIn, LinkOut, ReceiptsIn, ReceiptsOut, StopIn, StopOut
from backend.people.service import PhoneError

router = APIRouter(prefix="/api/outbox/sms", tags=["outbox"], dependencies=[Depends(require_service)])
bot_router = APIRouter(prefix="/api/bot/links", tags=["bot: links"])


@bot_router.post("/open", response_model=LinkOut)
async def open_link(body: LinkIn, principal: BotDep, session: SessionDep) -> LinkOut:
    """What a text's link opens in this chat: its target when the chat is the link's person's."""
    opening = await service.open_link(session=session, token=body.token, person_id=principal.person_id)
    return LinkOut(status=opening.status, target=opening.target, phone_masked=opening.phone_masked)


@router.post("/receipts", response_model=ReceiptsOut)
async def receipts(body: ReceiptsIn, session: SessionDep) -> ReceiptsOut:
    return ReceiptsOut(updated=await service.record_receipts(session=session, receipts=body.receipts))


@router.post("/stops", response_model=StopOut)
async def stop(body: StopIn, session: SessionDep) -> StopOut:
    try:
        phone = service.e164(body.phone)
    except PhoneError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.code) from exc
    stopped = await service.stop_bulk(session=session, phone=phone, source=body.source)
    return StopOut(phone=phone, stopped_queued=stopped)

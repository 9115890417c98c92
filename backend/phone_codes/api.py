"""Routes the bot calls to verify a web chat's phone by SMS code (service token + identity header)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.people.api import identity_out
from backend.people.deps import BotDep, ServiceDep
from backend.people.schemas import IdentityOut
from backend.phone_codes import service
from backend.phone_codes.schemas import CodeIn, CodeRequestIn, CodeSentOut
from backend.request_deps import SessionDep

router = APIRouter(prefix="/api/bot/me/phone", tags=["bot"])


@router.post("/code", response_model=CodeSentOut)
async def send_code(
    body: CodeRequestIn, principal: BotDep, session: SessionDep, call: ServiceDep
) -> CodeSentOut:
    sent = await service.send_code(
        session=session, settings=call.settings, principal=principal, raw_phone=body.phone_number
    )
    return CodeSentOut(phone_masked=sent.phone_masked, valid_minutes=sent.valid_minutes)


@router.post("/verify", response_model=IdentityOut)
async def verify(body: CodeIn, principal: BotDep, session: SessionDep, call: ServiceDep) -> IdentityOut:
    identity = await service.verify_code(
        session=session, settings=call.settings, directory=call.directory, principal=principal, code=body.code
    )
    return identity_out(identity)

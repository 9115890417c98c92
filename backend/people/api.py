"""Routes the bot calls for the identity it acts for (service token + identity header)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from backend.deps import BotDep, SessionDep, SettingsDep, require_service
from backend.people import service
from backend.people.models import ChatIdentity
from backend.people.schemas import IdentityOpen, IdentityOut, LocaleIn, PhoneIn
from messages import mask_phone

router = APIRouter(prefix="/api/bot", tags=["bot"])


def identity_out(identity: ChatIdentity) -> IdentityOut:
    assert identity.id is not None
    return IdentityOut(
        id=identity.id,
        channel=identity.channel,
        external_id=identity.external_id,
        locale=identity.locale,
        first_name=identity.first_name,
        phone_masked=mask_phone(identity.phone) or None,
        phone_verified=identity.phone_verified_at is not None,
        person_id=identity.person_id,
        menu=list(service.MENU_FEATURES),
    )


@router.post("/identities", response_model=IdentityOut, dependencies=[Depends(require_service)])
async def open_identity(body: IdentityOpen, session: SessionDep, settings: SettingsDep) -> IdentityOut:
    identity = await service.open_identity(
        session=session,
        channel=body.channel,
        external_id=body.external_id,
        address=body.address,
        first_name=body.first_name,
        language_code=body.language_code,
        default_locale=settings.default_locale,
    )
    return identity_out(identity)


@router.get("/me", response_model=IdentityOut)
async def me(principal: BotDep, session: SessionDep) -> IdentityOut:
    return identity_out(await service.get_identity(session=session, principal=principal))


@router.post("/me/locale", response_model=IdentityOut)
async def choose_locale(body: LocaleIn, principal: BotDep, session: SessionDep) -> IdentityOut:
    return identity_out(await service.choose_locale(session=session, principal=principal, locale=body.locale))


@router.post("/me/phone", response_model=IdentityOut)
async def bind_phone(body: PhoneIn, principal: BotDep, session: SessionDep) -> IdentityOut:
    try:
        identity = await service.bind_phone(session=session, principal=principal, raw_phone=body.phone_number)
    except service.PhoneError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"code": exc.code, "message": str(exc)}
        ) from exc
    return identity_out(identity)

"""Routes the bot calls for the identity it acts for (service token + identity header)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel

from backend.people import service
from backend.people.deps import BotDep, ServiceDep, service_call_of
from backend.people.directory import IdentityRecord
from backend.people.models import ChatIdentity
from backend.people.schemas import DeviceEndedOut, DeviceOut, IdentityOpen, IdentityOut, LocaleIn, PhoneIn
from backend.request_deps import RequestRoute, SessionDep, json_body, service_route_openapi

router = APIRouter(prefix="/api/bot", tags=["bot"])


def identity_out(identity: ChatIdentity | IdentityRecord) -> IdentityOut:
    record = identity if isinstance(identity, IdentityRecord) else IdentityRecord.of(identity)
    return IdentityOut(
        id=record.id,
        channel=record.channel,
        external_id=record.external_id,
        locale=record.locale,
        first_name=record.first_name,
        phone_masked=record.phone_masked,
        phone_verified=record.phone_verified,
        person_id=record.person_id,
        menu=list(service.MENU_FEATURES),
    )


def json_of(model: BaseModel) -> Response:
    """A model already of the declared response type, serialised once: FastAPI would validate it
    against ``response_model`` again and encode it in two steps, on the route every /start takes."""
    return Response(model.model_dump_json(), media_type="application/json")


async def open_identity(request: Request) -> Response:
    """Create or refresh the identity of a user who starts the bot (service token).

    The one backend call of every /start, so it parses its own body and token (see
    ``backend.people.deps.service_call_of``) instead of declaring them as parameters.
    """
    call = service_call_of(request)
    body = await json_body(request, IdentityOpen)
    identity = await service.open_identity(
        directory=call.directory,
        channel=body.channel,
        external_id=body.external_id,
        address=body.address,
        first_name=body.first_name,
        language_code=body.language_code,
        default_locale=call.settings.default_locale,
    )
    return json_of(identity_out(identity))


router.add_api_route(
    "/identities",
    open_identity,
    methods=["POST"],
    response_model=IdentityOut,
    openapi_extra=service_route_openapi(IdentityOpen),
    route_class_override=RequestRoute,
)


@router.get("/me", response_model=IdentityOut)
async def me(principal: BotDep, session: SessionDep, call: ServiceDep) -> Response:
    record = await service.identity_record(
        session=session,
        directory=call.directory,
        channel=principal.channel,
        external_id=principal.external_id,
    )
    if record is None:  # deleted between resolving the caller and now
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="unknown chat identity")
    return json_of(identity_out(record))


@router.post("/me/locale", response_model=IdentityOut)
async def choose_locale(
    body: LocaleIn, principal: BotDep, session: SessionDep, call: ServiceDep
) -> IdentityOut:
    identity = await service.choose_locale(
        session=session, directory=call.directory, principal=principal, locale=body.locale
    )
    return identity_out(identity)


@router.post("/me/phone", response_model=IdentityOut)
async def bind_phone(body: PhoneIn, principal: BotDep, session: SessionDep, call: ServiceDep) -> IdentityOut:
    identity = await service.bind_phone(
        session=session, directory=call.directory, principal=principal, raw_phone=body.phone_number
    )
    return identity_out(identity)


def devices_out(identities: list[ChatIdentity], principal_identity_id: int) -> list[DeviceOut]:
    return [
        DeviceOut(
            id=identity.id or 0,
            channel=identity.channel,
            masked_id=service.masked_external_id(identity.external_id),
            last_seen_at=identity.last_seen_at,
            this=identity.id == principal_identity_id,
        )
        for identity in identities
    ]


@router.get("/me/devices", response_model=list[DeviceOut])
async def devices(principal: BotDep, session: SessionDep) -> list[DeviceOut]:
    """The person's chats on every device (a verified chat; an unverified one sees itself only)."""
    return devices_out(await service.devices(session=session, principal=principal), principal.identity_id)


@router.post("/me/devices/{device_id}/end", response_model=DeviceEndedOut)
async def end_device(
    device_id: int, principal: BotDep, session: SessionDep, call: ServiceDep
) -> DeviceEndedOut:
    ended = await service.end_device(
        session=session, directory=call.directory, principal=principal, device_id=device_id
    )
    devices = await service.devices(session=session, principal=principal)
    return DeviceEndedOut(
        devices=devices_out(devices, principal.identity_id),
        ended_channel=ended.channel,
        ended_external_id=ended.external_id,
    )

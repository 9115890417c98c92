"""Who is calling, for the bot's routes: the service token, the identity directory, and the chat
identity the bot acts for (``X-Tianbao-Identity``).

Next to the directory and the service that resolve the identity, so the people API needs nothing
above its own package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from backend.people.directory import IdentityDirectory
from backend.people.service import principal_for
from backend.request_deps import SessionDep, is_service_token, oauth2_scheme, unauthorized
from backend.security import BotPrincipal
from backend.settings import Settings

IDENTITY_HEADER = "X-Tianbao-Identity"


async def get_directory(request: Request) -> IdentityDirectory:
    directory: IdentityDirectory = request.app.state.identities
    return directory


DirectoryDep = Annotated[IdentityDirectory, Depends(get_directory)]


@dataclass(frozen=True)
class ServiceCall:
    """A call with the service token, and what the bot-facing routes need to answer it.

    One dependency instead of a chain (token, settings, directory): FastAPI resolves each node of a
    chain on every request, and these routes are on the path of every chat step.
    """

    settings: Settings
    directory: IdentityDirectory


async def service_call(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> ServiceCall:
    state = request.app.state
    if not is_service_token(token, state.settings):
        raise unauthorized("service token required")
    return ServiceCall(settings=state.settings, directory=state.identities)


ServiceDep = Annotated[ServiceCall, Depends(service_call)]


def service_call_of(request: Request) -> ServiceCall:
    """:func:`service_call` for a route that takes only the request (``backend.request_deps.RequestRoute``)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    state = request.app.state
    if scheme.lower() != "bearer" or not is_service_token(token, state.settings):
        raise unauthorized("service token required")
    return ServiceCall(settings=state.settings, directory=state.identities)


async def current_bot_identity(
    call: ServiceDep,
    session: SessionDep,
    identity: Annotated[str | None, Header(alias=IDENTITY_HEADER)] = None,
) -> BotPrincipal:
    if not identity or ":" not in identity:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{IDENTITY_HEADER} header required")
    channel, _, external_id = identity.partition(":")
    principal = await principal_for(
        session=session, directory=call.directory, channel=channel, external_id=external_id
    )
    if principal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="unknown chat identity")
    return principal


BotDep = Annotated[BotPrincipal, Depends(current_bot_identity)]

"""FastAPI dependencies: the database session and who is calling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import fastapi.routing
from fastapi import Depends, Header, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import Database
from backend.people.directory import IdentityDirectory
from backend.security import BotPrincipal, StaffPrincipal, decode_access_token, tokens_match
from backend.settings import Settings

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)

IDENTITY_HEADER = "X-Tianbao-Identity"
ModelT = TypeVar("ModelT", bound=BaseModel)


# async: FastAPI runs sync dependencies in a thread pool, a hand-off per request for nothing.
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_session(db: Annotated[Database, Depends(get_database)]) -> AsyncIterator[AsyncSession]:
    session = db.session()
    try:
        yield session
    finally:
        # Only a session inside a transaction holds anything to release; closing an untouched (or
        # committed) one still costs a greenlet hop, on every request that answered from a cache.
        if session.in_transaction():
            await session.close()


async def get_directory(request: Request) -> IdentityDirectory:
    directory: IdentityDirectory = request.app.state.identities
    return directory


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DirectoryDep = Annotated[IdentityDirectory, Depends(get_directory)]


def _unauthorized(detail: str = "not authenticated") -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_staff(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> StaffPrincipal:
    from backend.staff.service import load_active_staff

    if not token:
        raise _unauthorized()
    user_id = decode_access_token(token, secret=settings.secret_key)
    if user_id is None:
        raise _unauthorized("invalid or expired token")
    principal = await load_active_staff(session=session, user_id=user_id)
    if principal is None:
        raise _unauthorized("account disabled")
    return principal


StaffDep = Annotated[StaffPrincipal, Depends(current_staff)]


def require_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, StaffPrincipal]]:
    """A dependency that lets through staff holding one of ``roles`` (admin always passes)."""

    async def _check(staff: StaffDep) -> StaffPrincipal:
        if staff.role != "admin" and staff.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"role {staff.role} may not do this")
        return staff

    return _check


def _is_service_token(token: str | None, settings: Settings) -> bool:
    return bool(token) and tokens_match(token or "", settings.service_token)


async def require_service(
    settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> None:
    """The bot or a delivery worker, authenticated by the shared service token."""
    if not _is_service_token(token, settings):
        raise _unauthorized("service token required")


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
    if not _is_service_token(token, state.settings):
        raise _unauthorized("service token required")
    return ServiceCall(settings=state.settings, directory=state.identities)


ServiceDep = Annotated[ServiceCall, Depends(service_call)]


# --- the route every /start takes, resolved without FastAPI's dependency and body machinery ----------
# Resolving a body parameter and a dependency chain costs FastAPI ~130 µs a request, about half of that
# route's whole cost in process; these helpers make the same checks by hand, with the same answers
# (401 with WWW-Authenticate, 422 in FastAPI's format) and the same OpenAPI description.


def service_call_of(request: Request) -> ServiceCall:
    """:func:`service_call` for a route that takes only the request."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    state = request.app.state
    if scheme.lower() != "bearer" or not _is_service_token(token, state.settings):
        raise _unauthorized("service token required")
    return ServiceCall(settings=state.settings, directory=state.identities)


async def json_body(request: Request, model: type[ModelT]) -> ModelT:
    """The request body as ``model``, refused as FastAPI refuses a body parameter (422, ``body`` first
    in every error's location)."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


class RequestRoute(APIRoute):
    """A route whose endpoint takes only the request and returns a response, called as it is.

    FastAPI's request handler would still solve the (empty) dependency graph, make a sub-response
    and run the endpoint through its wrappers: 11-19 µs a call, on the route every /start takes. Its
    ASGI wrapper (exit stacks, exception handlers) and the app's middleware still run.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # Dependencies given where the router is included would be skipped silently: refuse them.
        context = getattr(fastapi.routing, "_effective_route_context_var", None)
        effective = context.get() if context is not None else None
        for dependant in (self.dependant, getattr(effective, "dependant", None)):
            if dependant is not None and (dependant.dependencies or dependant.path_params):
                raise TypeError(f"{self.path}: a RequestRoute takes only the request, no dependencies")
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def service_route_openapi(body: type[BaseModel]) -> dict[str, Any]:
    """What FastAPI would have documented for a ``body`` parameter and the service token."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body.model_json_schema()}},
        },
        "security": [{"OAuth2PasswordBearer": []}],
    }


async def current_bot_identity(
    call: ServiceDep,
    session: SessionDep,
    identity: Annotated[str | None, Header(alias=IDENTITY_HEADER)] = None,
) -> BotPrincipal:
    from backend.people.service import principal_for

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


async def staff_or_service(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> StaffPrincipal | None:
    """Reference data (regions, products) is readable by staff and by the bot; None means the bot."""
    if _is_service_token(token, settings):
        return None
    return await current_staff(session=session, settings=settings, token=token)


ReaderDep = Annotated[StaffPrincipal | None, Depends(staff_or_service)]

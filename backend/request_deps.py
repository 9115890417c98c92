"""FastAPI dependencies that know no domain: the database session, the settings, the service token,
and the hand-made helpers of the route every ``/start`` takes.

Below every domain: the people and staff packages build who is calling (``backend/people/deps.py``,
``backend/staff/deps.py``) on top of this, and ``backend/deps.py`` gathers both for the other domains'
routes. Nothing here may import a domain, or a domain's API would import itself through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import fastapi.routing
from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import Database
from backend.security import tokens_match
from backend.settings import Settings

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)

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


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def unauthorized(detail: str = "not authenticated") -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def is_service_token(token: str | None, settings: Settings) -> bool:
    return bool(token) and tokens_match(token or "", settings.service_token)


async def require_service(
    settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> None:
    """The bot or a delivery worker, authenticated by the shared service token."""
    if not is_service_token(token, settings):
        raise unauthorized("service token required")


# --- the route every /start takes, resolved without FastAPI's dependency and body machinery ----------
# Resolving a body parameter and a dependency chain costs FastAPI ~130 µs a request, about half of that
# route's whole cost in process; these helpers make the same checks by hand, with the same answers
# (401 with WWW-Authenticate, 422 in FastAPI's format) and the same OpenAPI description. The token
# check itself is ``backend.people.deps.service_call_of`` (its answer carries the identity directory).


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

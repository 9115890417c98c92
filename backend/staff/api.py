"""Staff routes: the OAuth2 token endpoint, account management and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from starlette.background import BackgroundTask

from backend.errors import ErrorOut
from backend.ids import Id
from backend.redis import RedisHandle
from backend.refusals import refusal_message
from backend.request_deps import SessionDep, SettingsDep
from backend.security import StaffPrincipal, create_access_token
from backend.staff import service
from backend.staff.deps import StaffDep, require_roles
from backend.staff.models import AuditLog, StaffUser
from backend.staff.schemas import AuditOut, StaffCreate, StaffOut, StaffUpdate, TokenOut
from backend.staff.signin import SignInGuard, SignInLimits, store_for
from backend.throttle import client_ip
from messages import mask_phone, normalize_locale

auth_router = APIRouter(prefix="/api/auth", tags=["auth"])
staff_router = APIRouter(prefix="/api/staff", tags=["staff"])

AdminDep = Annotated[StaffPrincipal, Depends(require_roles("admin"))]


async def sign_in_guard(request: Request) -> SignInGuard:
    """One guard per app, made on first use: its in-process store must be shared by every request."""
    guard: SignInGuard | None = getattr(request.app.state, "sign_in_guard", None)
    if guard is None:
        redis: RedisHandle | None = getattr(request.app.state, "redis", None)
        store = store_for(redis.client() if redis is not None and redis.enabled else None)
        settings = request.app.state.settings
        guard = SignInGuard(store, request.app.state.db, SignInLimits.of(settings))
        request.app.state.sign_in_guard = guard
    return guard


SignInGuardDep = Annotated[SignInGuard, Depends(sign_in_guard)]


def _throttled(request: Request, retry_after: int) -> JSONResponse:
    # The same answer for a throttled address, a throttled or locked username and an unknown one.
    locale = normalize_locale(request.headers.get("accept-language"))
    code = "sign_in_throttled"
    body = {"detail": {"code": code, "message": refusal_message(code, locale, {}), "detail": {}}}
    # One Retry-After for every guard (the window): a longer one would tell a locked account apart.
    headers = {"Retry-After": str(retry_after)}
    return JSONResponse(body, status_code=status.HTTP_429_TOO_MANY_REQUESTS, headers=headers)


@auth_router.post(
    "/token",
    response_model=TokenOut,
    responses={
        401: {"model": ErrorOut, "description": "wrong username or password"},
        429: {"model": ErrorOut, "description": "sign_in_throttled"},
    },
)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    settings: SettingsDep,
    guard: SignInGuardDep,
    request: Request,
) -> TokenOut | JSONResponse:
    outcome = await guard.sign_in(username=form.username, password=form.password, address=client_ip(request))
    if outcome.throttled:
        return _throttled(request, guard.limits.window_seconds)
    # The failure's bookkeeping runs after the answer is sent: a known username (a database write) and
    # an unknown one answer alike.
    after = BackgroundTask(outcome.after) if outcome.after else None
    user = outcome.user
    if user is None or user.id is None:
        return JSONResponse(
            {"detail": "wrong username or password"},
            status_code=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
            background=after,
        )
    token = create_access_token(
        secret=settings.secret_key,
        user_id=user.id,
        username=user.username,
        version=user.token_version,
        minutes=settings.access_token_minutes,
    )
    body = TokenOut(access_token=token, expires_in=settings.access_token_minutes * 60)
    return JSONResponse(body.model_dump(), background=after)


def staff_out(user: StaffUser) -> StaffOut:
    assert user.id is not None
    return StaffOut(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        region_codes=user.region_codes,
        phone_masked=mask_phone(user.phone) or None,
        active=user.active,
        locked=service.is_locked(user),
        created_at=user.created_at,
    )


@staff_router.get("/me", response_model=StaffOut)
async def who_am_i(staff: StaffDep, session: SessionDep) -> StaffOut:
    user = await session.get(StaffUser, staff.user_id)
    assert user is not None
    return staff_out(user)


@staff_router.get("/users", response_model=list[StaffOut])
async def list_users(admin: AdminDep, session: SessionDep) -> list[StaffOut]:
    return [staff_out(u) for u in await service.list_staff(session=session, actor=admin)]


@staff_router.post("/users", response_model=StaffOut, status_code=201)
async def create_user(body: StaffCreate, admin: AdminDep, session: SessionDep, request: Request) -> StaffOut:
    user = await service.create_staff(
        session=session,
        actor=admin,
        username=body.username,
        password=body.password,
        role=body.role,
        full_name=body.full_name,
        region_codes=body.region_codes,
        national=body.national,
        phone=body.phone,
        ip=client_ip(request),
    )
    return staff_out(user)


@staff_router.patch("/users/{user_id}", response_model=StaffOut)
async def update_user(
    user_id: Id, body: StaffUpdate, admin: AdminDep, session: SessionDep, request: Request
) -> StaffOut:
    try:
        user = await service.update_staff(
            session=session,
            actor=admin,
            user_id=user_id,
            changes=body.model_dump(exclude_none=True),
            ip=client_ip(request),
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return staff_out(user)


@staff_router.post("/users/{user_id}/unlock", response_model=StaffOut)
async def unlock_user(
    user_id: Id, admin: AdminDep, session: SessionDep, guard: SignInGuardDep, request: Request
) -> StaffOut:
    """End a sign-in lock before its time (audited as ``staff.unlock``)."""
    try:
        user = await service.unlock_staff(
            session=session, actor=admin, user_id=user_id, ip=client_ip(request)
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    await guard.unlocked(user.username)
    return staff_out(user)


@staff_router.get("/audit", response_model=list[AuditOut])
async def audit_log(
    admin: AdminDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: str | None = None,
) -> list[AuditOut]:
    rows: list[AuditLog] = await service.list_audit(session=session, actor=admin, limit=limit, action=action)
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]

"""Staff routes: the OAuth2 token endpoint, account management and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from backend.ids import Id
from backend.request_deps import SessionDep, SettingsDep
from backend.security import StaffPrincipal, create_access_token
from backend.staff import service
from backend.staff.deps import StaffDep, require_roles
from backend.staff.models import AuditLog, StaffUser
from backend.staff.schemas import AuditOut, StaffCreate, StaffOut, StaffUpdate, TokenOut
from messages import mask_phone

auth_router = APIRouter(prefix="/api/auth", tags=["auth"])
staff_router = APIRouter(prefix="/api/staff", tags=["staff"])

AdminDep = Annotated[StaffPrincipal, Depends(require_roles("admin"))]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@auth_router.post("/token", response_model=TokenOut)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, settings: SettingsDep
) -> TokenOut:
    user = await service.authenticate(session=session, username=form.username, password=form.password)
    if user is None or user.id is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    token = create_access_token(
        secret=settings.secret_key,
        user_id=user.id,
        username=user.username,
        minutes=settings.access_token_minutes,
    )
    return TokenOut(access_token=token, expires_in=settings.access_token_minutes * 60)


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
        created_at=user.created_at,
    )


@staff_router.get("/me", response_model=StaffOut)
async def who_am_i(staff: StaffDep, session: SessionDep) -> StaffOut:
    user = await session.get(StaffUser, staff.user_id)
    assert user is not None
    return staff_out(user)


@staff_router.get("/users", response_model=list[StaffOut])
async def list_users(_admin: AdminDep, session: SessionDep) -> list[StaffOut]:
    return [staff_out(u) for u in await service.list_staff(session=session)]


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


@staff_router.get("/audit", response_model=list[AuditOut])
async def audit_log(
    _admin: AdminDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: str | None = None,
) -> list[AuditOut]:
    rows: list[AuditLog] = await service.list_audit(session=session, limit=limit, action=action)
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]

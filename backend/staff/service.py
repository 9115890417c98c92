"""Staff accounts and the audit log. Every staff write goes through ``record_audit`` in its transaction."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.refusals import Refusal
from backend.security import StaffPrincipal, hash_password, verify_password
from backend.staff.models import AuditLog, Role, StaffUser

ADMIN_USERNAME = "admin"


class StaffError(Refusal):
    """A refused staff-account change; its code names a text in ``messages/*/errors``."""


def principal_of(user: StaffUser) -> StaffPrincipal:
    assert user.id is not None
    return StaffPrincipal(
        user_id=user.id, username=user.username, role=user.role, region_codes=tuple(user.region_codes)
    )


async def load_active_staff(*, session: AsyncSession, user_id: int) -> StaffPrincipal | None:
    user = await session.get(StaffUser, user_id)
    if user is None or not user.active:
        return None
    return principal_of(user)


async def authenticate(*, session: AsyncSession, username: str, password: str) -> StaffUser | None:
    user = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if user is None or not user.active or not verify_password(user.password_hash, password):
        return None
    return user


def record_audit(
    *,
    session: AsyncSession,
    actor: StaffPrincipal | None,
    action: str,
    target_type: str = "",
    target_id: str | int = "",
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditLog:
    """Add an audit row to the caller's transaction: the write and its record commit together."""
    entry = AuditLog(
        actor_id=actor.user_id if actor else None,
        actor=actor.username if actor else "system",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        detail=detail or {},
        ip=ip,
    )
    session.add(entry)
    return entry


async def create_staff(
    *,
    session: AsyncSession,
    actor: StaffPrincipal | None,
    username: str,
    password: str,
    role: Role,
    full_name: str = "",
    region_codes: list[str] | None = None,
    phone: str | None = None,
    ip: str | None = None,
) -> StaffUser:
    existing = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if existing is not None:
        raise StaffError("username_taken", username=username)
    if role != Role.ADMIN and not region_codes:
        raise StaffError("region_scope_required")
    user = StaffUser(
        username=username,
        password_hash=hash_password(password),
        role=role.value,
        full_name=full_name,
        region_codes=list(region_codes or []),
        phone=phone,
    )
    session.add(user)
    await session.flush()
    record_audit(
        session=session,
        actor=actor,
        action="staff.create",
        target_type="staff_user",
        target_id=user.id or "",
        detail={"username": username, "role": role.value, "region_codes": user.region_codes},
        ip=ip,
    )
    await session.commit()
    await session.refresh(user)
    return user


@dataclass(frozen=True)
class AdminBootstrap:
    created: bool
    password: str | None  # the one-time password to print, when generated


async def ensure_admin(*, session: AsyncSession, password: str | None) -> AdminBootstrap:
    """Create the ``admin`` account on first run, with ``password`` or a generated one-time password."""
    count = (await session.exec(select(func.count()).select_from(StaffUser))).one()
    if count:
        return AdminBootstrap(created=False, password=None)
    chosen = password or secrets.token_urlsafe(12)
    await create_staff(
        session=session,
        actor=None,
        username=ADMIN_USERNAME,
        password=chosen,
        role=Role.ADMIN,
        full_name="Administrator",
    )
    return AdminBootstrap(created=True, password=None if password else chosen)


async def set_admin_password(*, session: AsyncSession, username: str, password: str) -> StaffUser:
    """``tianbao create-admin``: create an admin or reset its password."""
    user = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if user is None:
        return await create_staff(
            session=session, actor=None, username=username, password=password, role=Role.ADMIN
        )
    user.password_hash = hash_password(password)
    user.role = Role.ADMIN.value
    user.active = True
    record_audit(
        session=session,
        actor=None,
        action="staff.reset_admin",
        target_type="staff_user",
        target_id=user.id or "",
    )
    await session.commit()
    return user


async def update_staff(
    *, session: AsyncSession, actor: StaffPrincipal, user_id: int, changes: dict[str, Any], ip: str | None
) -> StaffUser:
    user = await session.get(StaffUser, user_id)
    if user is None:
        raise LookupError("no such staff user")
    logged = {k: v for k, v in changes.items() if k != "password"}
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
        logged["password"] = "changed"
    for name, value in changes.items():
        setattr(user, name, value.value if isinstance(value, Role) else value)
    record_audit(
        session=session,
        actor=actor,
        action="staff.update",
        target_type="staff_user",
        target_id=user_id,
        detail=logged,
        ip=ip,
    )
    await session.commit()
    await session.refresh(user)
    return user


async def list_staff(*, session: AsyncSession) -> list[StaffUser]:
    return list((await session.exec(select(StaffUser).order_by(col(StaffUser.id)))).all())


async def list_audit(*, session: AsyncSession, limit: int = 100, action: str | None = None) -> list[AuditLog]:
    query = select(AuditLog).order_by(col(AuditLog.id).desc()).limit(limit)
    if action:
        query = query.where(AuditLog.action == action)
    return list((await session.exec(query)).all())

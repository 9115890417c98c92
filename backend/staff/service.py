"""Staff accounts and the audit log. Every staff write goes through ``record_audit`` in its transaction."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import column, table, update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.refusals import Refusal
from backend.security import StaffPrincipal, hash_password
from backend.staff.models import AuditLog, Role, StaffUser
from backend.staff.passwords import password_problem

ADMIN_USERNAME = "admin"
# The division table, named here rather than imported: backend.regions imports this module (its writes
# are audited), so importing it back would make the two packages a cycle.
_REGION = table("region", column("code"))
# The fields whose change revokes every token issued before it (besides the password).
_REVOKING_FIELDS = ("role", "region_codes")


class StaffError(Refusal):
    """A refused staff-account change; its code names a text in ``messages/*/errors``."""


def principal_of(user: StaffUser) -> StaffPrincipal:
    assert user.id is not None
    return StaffPrincipal(
        user_id=user.id, username=user.username, role=user.role, region_codes=tuple(user.region_codes)
    )


async def load_active_staff(*, session: AsyncSession, user_id: int, version: int) -> StaffPrincipal | None:
    """The account a token names, when it is active and the token's version is still its version."""
    user = await session.get(StaffUser, user_id)
    if user is None or not user.active or user.token_version != version:
        return None
    return principal_of(user)


async def find_by_username(*, session: AsyncSession, username: str) -> StaffUser | None:
    return (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()


def check_password(password: str, username: str) -> None:
    """Refuse a password the rule in ``backend/staff/passwords.py`` does not accept."""
    problem = password_problem(password, username)
    if problem is not None:
        raise StaffError(problem, username=username)


async def check_region_codes(*, session: AsyncSession, codes: Iterable[str]) -> list[str]:
    """Only divisions in the table may be a scope: an unknown code would silently cover nothing."""
    wanted = list(dict.fromkeys(codes))
    if not wanted:
        return wanted
    found = set((await session.execute(select(_REGION.c.code).where(_REGION.c.code.in_(wanted)))).scalars())
    for code in wanted:
        if code not in found:
            raise StaffError("bad_region", region=code)
    return wanted


async def scope_of(*, session: AsyncSession, region_codes: list[str] | None, national: bool) -> list[str]:
    """The region scope an admin asked for. Empty (the whole country) only when asked for explicitly."""
    if national:
        if region_codes:
            raise StaffError("national_with_regions")
        return []
    if not region_codes:
        raise StaffError("region_scope_required")
    return await check_region_codes(session=session, codes=region_codes)


def manages(actor: StaffPrincipal | None, scope: Sequence[str]) -> bool:
    """A regional admin manages only staff whose whole scope lies inside their own regions: without this,
    a county admin could make a national admin and see the whole country. National staff and the
    first-run bootstrap (no actor) manage everyone."""
    if actor is None or actor.is_national:
        return True
    return bool(scope) and all(actor.covers_region(code) for code in scope)


def _check_grantable(actor: StaffPrincipal | None, scope: Sequence[str]) -> None:
    if not manages(actor, scope):
        raise StaffError("outside_scope")


async def _managed_user(*, session: AsyncSession, actor: StaffPrincipal, user_id: int) -> StaffUser:
    """A staff account the actor manages; any other is answered as missing, like an object outside the
    region elsewhere."""
    user = await session.get(StaffUser, user_id)
    if user is None or not manages(actor, user.region_codes):
        raise LookupError("no such staff user")
    return user


def is_locked(user: StaffUser, now: datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (now or utcnow())


async def record_failed_sign_in(
    *, session: AsyncSession, user_id: int, max_failures: int, lockout: timedelta, ip: str | None
) -> bool:
    """Count a failed sign-in; the ``max_failures``-th in a row locks the account for ``lockout``.

    True when this failure locked it. The count is incremented in SQL, so concurrent failures all count.
    """
    await session.exec(
        update(StaffUser)
        .where(col(StaffUser.id) == user_id)
        .values(failed_logins=col(StaffUser.failed_logins) + 1)
    )
    user = await session.get(StaffUser, user_id, populate_existing=True)
    if user is None or user.failed_logins < max_failures:
        await session.commit()
        return False
    user.locked_until = utcnow() + lockout
    user.failed_logins = 0  # after the lock, another full series of tries
    record_audit(
        session=session,
        actor=None,
        action="staff.lock",
        target_type="staff_user",
        target_id=user_id,
        detail={"failures": max_failures, "locked_until": user.locked_until.isoformat()},
        ip=ip,
    )
    await session.commit()
    return True


async def clear_failed_sign_ins(*, session: AsyncSession, user_id: int) -> None:
    """A successful sign-in ends the series of failures (and a lock that has run out)."""
    await session.exec(
        update(StaffUser).where(col(StaffUser.id) == user_id).values(failed_logins=0, locked_until=None)
    )
    await session.commit()


async def unlock_staff(
    *, session: AsyncSession, actor: StaffPrincipal, user_id: int, ip: str | None
) -> StaffUser:
    """An admin ends a lock (and the count of failures) before its time; audited like every staff write."""
    user = await _managed_user(session=session, actor=actor, user_id=user_id)
    detail = {
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "failed_logins": user.failed_logins,
    }
    user.locked_until = None
    user.failed_logins = 0
    record_audit(
        session=session,
        actor=actor,
        action="staff.unlock",
        target_type="staff_user",
        target_id=user_id,
        detail=detail,
        ip=ip,
    )
    await session.commit()
    await session.refresh(user)
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
    national: bool = False,
    phone: str | None = None,
    ip: str | None = None,
) -> StaffUser:
    existing = await find_by_username(session=session, username=username)
    if existing is not None:
        raise StaffError("username_taken", username=username)
    scope = await scope_of(session=session, region_codes=region_codes, national=national)
    _check_grantable(actor, scope)
    check_password(password, username)
    user = StaffUser(
        username=username,
        password_hash=hash_password(password),
        role=role.value,
        full_name=full_name,
        region_codes=scope,
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
    chosen = password or _one_time_password()
    await create_staff(
        session=session,
        actor=None,
        username=ADMIN_USERNAME,
        password=chosen,
        role=Role.ADMIN,
        full_name="Administrator",
        national=True,
    )
    return AdminBootstrap(created=True, password=None if password else chosen)


def _one_time_password() -> str:
    # 16 random characters pass the rule all but never; drawing again costs nothing when one does not.
    while True:
        candidate = secrets.token_urlsafe(12)
        if password_problem(candidate, ADMIN_USERNAME) is None:
            return candidate


async def set_admin_password(*, session: AsyncSession, username: str, password: str) -> StaffUser:
    """``tianbao create-admin``: create an admin or reset its password."""
    user = await find_by_username(session=session, username=username)
    if user is None:
        return await create_staff(
            session=session, actor=None, username=username, password=password, role=Role.ADMIN, national=True
        )
    check_password(password, username)
    user.password_hash = hash_password(password)
    user.role = Role.ADMIN.value
    user.active = True
    # The way back in for a locked-out admin: the reset ends the lock and revokes the old tokens.
    user.locked_until = None
    user.failed_logins = 0
    user.token_version += 1
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
    user = await _managed_user(session=session, actor=actor, user_id=user_id)
    changes = dict(changes)
    national = bool(changes.pop("national", False))
    if national or "region_codes" in changes:
        changes["region_codes"] = await scope_of(
            session=session, region_codes=changes.get("region_codes"), national=national
        )
        _check_grantable(actor, changes["region_codes"])
    logged = {k: v for k, v in changes.items() if k != "password"}
    if national:
        logged["national"] = True
    revoke = False
    if "password" in changes:
        check_password(changes["password"], user.username)
        user.password_hash = hash_password(changes.pop("password"))
        logged["password"] = "changed"
        revoke = True
    for name, value in changes.items():
        value = value.value if isinstance(value, Role) else value
        if name in _REVOKING_FIELDS and getattr(user, name) != value:
            revoke = True
        if name == "active" and not value:
            revoke = True
        setattr(user, name, value)
    if revoke:  # tokens issued under the old password, role or regions stop working now
        user.token_version += 1
        logged["tokens_revoked"] = True
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


async def list_staff(*, session: AsyncSession, actor: StaffPrincipal) -> list[StaffUser]:
    users = (await session.exec(select(StaffUser).order_by(col(StaffUser.id)))).all()
    return [user for user in users if manages(actor, user.region_codes)]


async def list_audit(
    *, session: AsyncSession, actor: StaffPrincipal, limit: int = 100, action: str | None = None
) -> list[AuditLog]:
    """The audit trail as ``actor`` may see it: national staff all of it, a regional admin what the staff
    it manages did (a county's admin must not read what staff elsewhere looked at and changed)."""
    query = select(AuditLog).order_by(col(AuditLog.id).desc()).limit(limit)
    if action:
        query = query.where(AuditLog.action == action)
    if not actor.is_national:
        managed = [user.id for user in await list_staff(session=session, actor=actor)]
        query = query.where(col(AuditLog.actor_id).in_(managed))
    return list((await session.exec(query)).all())

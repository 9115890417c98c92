"""Who is calling, for staff routes: the bearer token's active staff account, and the role checks.

Next to the service that resolves the account, so the staff API needs nothing above its own package.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status

from backend.request_deps import SessionDep, SettingsDep, is_service_token, oauth2_scheme, unauthorized
from backend.security import StaffPrincipal, decode_access_token
from backend.staff.service import StaffError, load_active_staff


async def current_staff(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> StaffPrincipal:
    if not token:
        raise unauthorized()
    claims = decode_access_token(token, secret=settings.secret_key)
    if claims is None:
        raise unauthorized("invalid or expired token")
    principal = await load_active_staff(session=session, user_id=claims.user_id, version=claims.version)
    if principal is None:
        # Disabled, or the token predates a change of password, role or regions: sign in again.
        raise unauthorized("account disabled or token revoked")
    return principal


StaffDep = Annotated[StaffPrincipal, Depends(current_staff)]


def require_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, StaffPrincipal]]:
    """A dependency that lets through staff holding one of ``roles`` (admin always passes)."""

    async def _check(staff: StaffDep) -> StaffPrincipal:
        if staff.role != "admin" and staff.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"role {staff.role} may not do this")
        return staff

    return _check


def require_national_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, StaffPrincipal]]:
    """``require_roles`` for writes that hold for the whole country (the catalogue, the rate table): a
    regional scope, even an admin's, may not change what every other region sells and charges."""
    role_check = require_roles(*roles)

    # A default, not Annotated: the annotation would name a local that FastAPI cannot resolve.
    async def _check(staff: StaffPrincipal = Depends(role_check)) -> StaffPrincipal:
        if not staff.is_national:
            raise StaffError("outside_scope", reason="national_scope_required")
        return staff

    return _check


async def staff_or_service(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> StaffPrincipal | None:
    """Reference data (regions, products) is readable by staff and by the bot; None means the bot."""
    if is_service_token(token, settings):
        return None
    return await current_staff(session=session, settings=settings, token=token)


ReaderDep = Annotated[StaffPrincipal | None, Depends(staff_or_service)]

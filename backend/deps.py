"""FastAPI dependencies for the domains' routes: the database session and who is calling.

A gathering point only, above the packages that define them: the request plumbing that knows no domain
is ``backend/request_deps.py``; staff callers are resolved in ``backend/staff/deps.py`` and chat
identities in ``backend/people/deps.py``, next to what resolves them. The people and staff APIs import
those directly (never this module), so the dependency runs one way and no domain imports itself.
"""

from __future__ import annotations

from backend.people.deps import (
    IDENTITY_HEADER,
    BotDep,
    DirectoryDep,
    ServiceCall,
    ServiceDep,
    current_bot_identity,
    get_directory,
    service_call,
    service_call_of,
)
from backend.request_deps import (
    RequestRoute,
    SessionDep,
    SettingsDep,
    get_database,
    get_session,
    get_settings_dep,
    json_body,
    oauth2_scheme,
    require_service,
    service_route_openapi,
)
from backend.staff.deps import ReaderDep, StaffDep, current_staff, require_roles, staff_or_service

__all__ = [
    "IDENTITY_HEADER",
    "BotDep",
    "DirectoryDep",
    "ReaderDep",
    "RequestRoute",
    "ServiceCall",
    "ServiceDep",
    "SessionDep",
    "SettingsDep",
    "StaffDep",
    "current_bot_identity",
    "current_staff",
    "get_database",
    "get_directory",
    "get_session",
    "get_settings_dep",
    "json_body",
    "oauth2_scheme",
    "require_roles",
    "require_service",
    "service_call",
    "service_call_of",
    "service_route_openapi",
    "staff_or_service",
]

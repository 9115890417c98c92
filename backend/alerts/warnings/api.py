"""Staff routes for official warnings (``/api/warnings``): upload a CAP message (XML body), list, read,
approve. Region-scoped; every write audited."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from backend.alerts.warnings import service
from backend.alerts.warnings.models import CapWarning
from backend.alerts.warnings.schemas import IngestOut, WarningOut
from backend.deps import SessionDep, SettingsDep, StaffDep, require_roles
from backend.ids import Id
from backend.security import StaffPrincipal
from backend.staff.api import client_ip

router = APIRouter(prefix="/api/warnings", tags=["warnings"])

Uploader = Annotated[StaffPrincipal, Depends(require_roles(*service.UPLOAD_ROLES))]
Approver = Annotated[StaffPrincipal, Depends(require_roles(*service.APPROVE_ROLES))]
State = Literal[
    "held", "pending", "sent", "expired", "no_area", "cancelled", "updated", "cancel", "unmatched"
]  # models.WarningState
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
XML_TYPES = ("application/cap+xml", "application/xml", "text/xml")
_XML_BODY = {
    "requestBody": {
        "required": True,
        "description": "one CAP 1.2 message (UTF-8 XML; no DTD)",
        "content": {kind: {"schema": {"type": "string"}} for kind in XML_TYPES},
    }
}


def warning_out(warning: CapWarning) -> WarningOut:
    return WarningOut(
        **warning.model_dump(exclude={"raw_xml", "uploaded_by", "scope", "category"}),
        for_farmers=warning.status not in service.cap.NOT_FOR_FARMERS,
    )


@router.post(
    "",
    response_model=IngestOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_XML_BODY,
    responses={200: {"model": IngestOut, "description": "the same message was received before"}},
)
async def upload(
    request: Request, response: Response, staff: Uploader, session: SessionDep, settings: SettingsDep
) -> IngestOut:
    """Receive one CAP message: refused with the reason when unsafe or invalid; processed once."""
    result = await service.ingest(
        session, settings, data=await request.body(), source="upload", actor=staff, ip=client_ip(request)
    )
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return IngestOut(duplicate=result.duplicate, warning=warning_out(result.warning))


@router.get("", response_model=list[WarningOut])
async def list_warnings(
    staff: StaffDep,
    session: SessionDep,
    state: State | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[WarningOut]:
    rows = await service.list_warnings(session, actor=staff, state=state, limit=limit, offset=offset)
    return [warning_out(w) for w in rows]


@router.get("/{warning_id}", response_model=WarningOut)
async def get_warning(warning_id: Id, staff: StaffDep, session: SessionDep) -> WarningOut:
    return warning_out(await service.get_warning(session, actor=staff, warning_id=warning_id))


@router.post("/{warning_id}/approve", response_model=WarningOut)
async def approve(warning_id: Id, staff: Approver, session: SessionDep, request: Request) -> WarningOut:
    """Send a pending warning now, to the insured in its area (audited)."""
    warning = await service.approve(session, actor=staff, warning_id=warning_id, ip=client_ip(request))
    return warning_out(warning)

"""Staff alert routes: the alerts of the caller's regions, and acknowledging one (audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status

from backend.alerts import service
from backend.alerts.models import StaffAlert
from backend.alerts.schemas import AlertOut
from backend.deps import SessionDep, StaffDep, require_roles
from backend.security import StaffPrincipal
from backend.staff.api import client_ip

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

AlertHandler = Annotated[StaffPrincipal, Depends(require_roles(*service.ALERT_ROLES))]

MESSAGES = {
    "not_found": "no such alert in your region",
    "forbidden": "your role may not do this",
}


def problem(exc: service.AlertError) -> HTTPException:
    code = status.HTTP_403_FORBIDDEN if exc.code == "forbidden" else status.HTTP_404_NOT_FOUND
    return HTTPException(
        code, detail={"code": exc.code, "message": MESSAGES.get(exc.code, exc.code), "detail": exc.detail}
    )


def alert_out(alert: StaffAlert) -> AlertOut:
    return AlertOut(
        id=alert.id or 0,
        kind=alert.kind,
        region_code=alert.region_code,
        title=alert.title,
        body=alert.body,
        claim_id=alert.claim_id,
        event_id=alert.event_id,
        created_at=alert.created_at,
        acknowledged_by=alert.acknowledged_by,
        acknowledged_at=alert.acknowledged_at,
    )


@router.get("", response_model=list[AlertOut])
async def list_alerts(
    staff: StaffDep, session: SessionDep, unacknowledged: bool = False, kind: str | None = None
) -> list[AlertOut]:
    alerts = await service.list_alerts(session=session, actor=staff, unacknowledged=unacknowledged, kind=kind)
    return [alert_out(a) for a in alerts]


@router.post("/{alert_id}/ack", response_model=AlertOut)
async def ack_alert(alert_id: int, staff: AlertHandler, session: SessionDep, request: Request) -> AlertOut:
    try:
        alert = await service.ack_alert(
            session=session, actor=staff, alert_id=alert_id, ip=client_ip(request)
        )
    except service.AlertError as exc:
        raise problem(exc) from exc
    return alert_out(alert)

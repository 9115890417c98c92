"""QR campaign routes (R-LIA-3): staff create and manage posters; the bot resolves what a user scanned.

``router`` is the one to include: it carries ``campaigns_router`` (``/api/campaigns``, staff) and
``scans_router`` (``/api/bot/scans``, the bot acting for one chat identity).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from backend.deps import BotDep, SessionDep, SettingsDep, StaffDep, require_roles
from backend.enrollment import campaigns as service
from backend.enrollment.campaign_schemas import (
    CampaignCreate,
    CampaignOut,
    ScanIn,
    ScanOut,
    ScanResultOut,
    ScansOut,
)
from backend.enrollment.models import QrCampaign
from backend.ids import Id
from backend.security import StaffPrincipal
from backend.settings import Settings
from backend.staff.api import client_ip

campaigns_router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
scans_router = APIRouter(prefix="/api/bot", tags=["bot"])

CampaignManagerDep = Annotated[StaffPrincipal, Depends(require_roles("underwriter", "agent"))]


def campaign_out(campaign: QrCampaign, settings: Settings) -> CampaignOut:
    assert campaign.id is not None
    payload = service.make_payload(campaign.id, settings.secret_key)
    links = service.campaign_links(campaign, payload, settings)
    return CampaignOut(
        id=campaign.id,
        product_code=campaign.product_code,
        agent_id=campaign.agent_id,
        region_code=campaign.region_code,
        title=campaign.title,
        expires_at=campaign.expires_at,
        active=campaign.active,
        created_by=campaign.created_by,
        created_at=campaign.created_at,
        **links,
    )


async def _visible(session: SessionDep, staff: StaffPrincipal, campaign_id: Id) -> QrCampaign:
    return await service.get_campaign(session=session, actor=staff, campaign_id=campaign_id)


@campaigns_router.post("", response_model=CampaignOut, status_code=201)
async def create_campaign(
    body: CampaignCreate,
    staff: CampaignManagerDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> CampaignOut:
    campaign = await service.create_campaign(
        session=session,
        actor=staff,
        product_code=body.product_code,
        agent_id=body.agent_id,
        region_code=body.region_code,
        title=body.title,
        expires_at=body.expires_at,
        ip=client_ip(request),
    )
    return campaign_out(campaign, settings)


@campaigns_router.get("", response_model=list[CampaignOut])
async def list_campaigns(staff: StaffDep, session: SessionDep, settings: SettingsDep) -> list[CampaignOut]:
    return [campaign_out(c, settings) for c in await service.list_campaigns(session=session, actor=staff)]


@campaigns_router.get("/{campaign_id}", response_model=CampaignOut)
async def get_campaign(
    campaign_id: Id, staff: StaffDep, session: SessionDep, settings: SettingsDep
) -> CampaignOut:
    return campaign_out(await _visible(session, staff, campaign_id), settings)


Target = Annotated[Literal["telegram", "webchat"], Query(description="the link the code opens")]


def _link(campaign: QrCampaign, settings: Settings, target: str) -> str:
    out = campaign_out(campaign, settings)
    return out.webchat_link if target == "webchat" else out.telegram_link


@campaigns_router.get("/{campaign_id}/qr.png", response_class=Response)
async def campaign_qr_png(
    campaign_id: Id, staff: StaffDep, session: SessionDep, settings: SettingsDep, target: Target = "telegram"
) -> Response:
    campaign = await _visible(session, staff, campaign_id)
    png = service.qr_png(_link(campaign, settings, target))
    return Response(
        png,
        media_type="image/png",
        headers={"Content-Disposition": f'inline; filename="campaign-{campaign_id}-{target}.png"'},
    )


@campaigns_router.get("/{campaign_id}/qr.svg", response_class=Response)
async def campaign_qr_svg(
    campaign_id: Id, staff: StaffDep, session: SessionDep, settings: SettingsDep, target: Target = "telegram"
) -> Response:
    campaign = await _visible(session, staff, campaign_id)
    svg = service.qr_svg(_link(campaign, settings, target))
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'inline; filename="campaign-{campaign_id}-{target}.svg"'},
    )


@campaigns_router.post("/{campaign_id}/deactivate", response_model=CampaignOut)
async def deactivate_campaign(
    campaign_id: Id,
    staff: CampaignManagerDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> CampaignOut:
    campaign = await service.deactivate_campaign(
        session=session, actor=staff, campaign_id=campaign_id, ip=client_ip(request)
    )
    return campaign_out(campaign, settings)


@campaigns_router.get("/{campaign_id}/scans", response_model=ScansOut)
async def campaign_scans(
    campaign_id: Id,
    staff: StaffDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ScansOut:
    stats = await service.campaign_scans(session=session, actor=staff, campaign_id=campaign_id, limit=limit)
    last = [ScanOut.model_validate(scan, from_attributes=True) for scan in stats.last]
    return ScansOut(campaign_id=campaign_id, count=stats.count, last=last)


@scans_router.post("/scans", response_model=ScanResultOut)
async def record_scan(
    body: ScanIn, principal: BotDep, session: SessionDep, settings: SettingsDep
) -> ScanResultOut:
    """The bot got ``/start <payload>``: which enrollment to open (product, region, agent)."""
    result = await service.resolve_scan(
        session=session,
        payload=body.payload,
        secret=settings.secret_key,
        identity_id=principal.identity_id,
    )
    return ScanResultOut(
        campaign_id=result.campaign_id,
        product_code=result.product_code,
        region_code=result.region_code,
        agent_id=result.agent_id,
    )


# Included last, once every route above is declared (include_router copies the routes it finds).
router = APIRouter()
router.include_router(campaigns_router)
router.include_router(scans_router)

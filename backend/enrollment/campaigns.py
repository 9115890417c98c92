"""R-LIA-3 scan-to-insure (码上保): QR campaigns, their signed deep-link payloads, and the scans.

A campaign is a poster: its QR code opens the bot with ``/start <payload>``. The payload names the campaign
and carries an HMAC tag, so nobody can forge a campaign (and its agent attribution) by editing the link.

Payload format, ``q<id36>_<tag>``:

- ``q``: the payload kind (a QR campaign), so later kinds of deep link can share the ``/start`` command;
- ``<id36>``: the campaign id in canonical lower-case base 36 (no leading zeros);
- ``<tag>``: HMAC-SHA256 of ``"q:" + id36`` under a key derived from the secret for this purpose only,
  truncated to 18 bytes and encoded as 24 characters of base64url (no padding, no spare bits).

Every part is within Telegram's deep-link alphabet ``A-Za-z0-9_-`` and the whole stays far below its 64
characters (39 at most for a 64-bit id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

import segno
from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.enrollment.models import QrCampaign, QrScan
from backend.products.models import Product
from backend.refusals import Refusal
from backend.regions.models import Region
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.models import Role, StaffUser
from backend.staff.service import principal_of, record_audit

# --- the signed payload ----------------------------------------------------------------------------------

PAYLOAD_KIND = "q"
PAYLOAD_MAX_LENGTH = 64  # Telegram's limit for a deep-link start parameter
TAG_BYTES = 18  # a multiple of 3: base64url without padding and without spare bits (24 characters)
_KEY_PURPOSE = b"tianbao-qr-v1"
_DEEP_LINK_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
_PAYLOAD_SHAPE = re.compile(r"^q(?P<id>[1-9a-z][0-9a-z]*)_(?P<tag>[A-Za-z0-9_-]{24})$")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class PayloadError(Refusal):
    """A scan that cannot open a campaign. ``code``: malformed, tampered, unknown, expired or inactive."""


def _to_base36(number: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_BASE36[rest])
    return "".join(reversed(digits)) or "0"


def _payload_key(secret: str) -> bytes:
    """The payload key, derived from the secret: the secret itself is never used raw for two purposes."""
    return hmac.new(secret.encode(), _KEY_PURPOSE, hashlib.sha256).digest()


def _tag(id36: str, secret: str) -> str:
    mac = hmac.new(_payload_key(secret), f"{PAYLOAD_KIND}:{id36}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:TAG_BYTES]).decode("ascii")


def make_payload(campaign_id: int, secret: str) -> str:
    """The signed ``/start`` payload for a campaign: ``q<id36>_<tag>``."""
    if campaign_id <= 0:
        raise ValueError("a campaign id is a positive integer")
    id36 = _to_base36(campaign_id)
    payload = f"{PAYLOAD_KIND}{id36}_{_tag(id36, secret)}"
    assert len(payload) <= PAYLOAD_MAX_LENGTH
    return payload


def read_payload(payload: str, secret: str) -> int:
    """The campaign id inside a payload; ``PayloadError('malformed' | 'tampered')`` otherwise."""
    if (
        not isinstance(payload, str)
        or len(payload) > PAYLOAD_MAX_LENGTH
        or not _DEEP_LINK_ALPHABET.match(payload)
    ):
        raise PayloadError("malformed")
    match = _PAYLOAD_SHAPE.match(payload)
    if match is None:
        raise PayloadError("malformed")
    id36, tag = match.group("id"), match.group("tag")
    # Compare the encoded tags: any changed character is a different string, spare bits cannot hide one.
    if not hmac.compare_digest(tag.encode("ascii"), _tag(id36, secret).encode("ascii")):
        raise PayloadError("tampered")
    return int(id36, 36)


# --- campaigns -------------------------------------------------------------------------------------------


class CampaignError(Refusal):
    """A refused campaign operation; its code names a text in ``messages/*/errors/labels.json``."""


def _aware(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC (every stored timestamp is UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def visible_to(actor: StaffPrincipal, campaign: QrCampaign) -> bool:
    """Staff see the campaigns of their region; a campaign without region, national staff and its creator."""
    if actor.is_national:
        return True
    if campaign.region_code is None:
        return campaign.created_by == actor.user_id
    return actor.covers_region(campaign.region_code)


def _visibility_filter(actor: StaffPrincipal) -> ColumnElement[bool]:
    in_scope = [
        col(QrCampaign.region_code).startswith(significant_prefix(scope), autoescape=True)
        for scope in actor.region_codes
    ]
    own_unscoped = and_(col(QrCampaign.region_code).is_(None), col(QrCampaign.created_by) == actor.user_id)
    return or_(own_unscoped, *in_scope)


async def create_campaign(
    *,
    session: AsyncSession,
    actor: StaffPrincipal,
    product_code: str,
    agent_id: int | None = None,
    region_code: str | None = None,
    title: str = "",
    expires_at: datetime | None = None,
    ip: str | None = None,
) -> QrCampaign:
    """Create a campaign (audited ``campaigns.create``).

    Refusals (``CampaignError``): ``unknown_product`` (missing or inactive), ``unknown_region``,
    ``outside_scope`` (a region outside the actor's scope, or no region from staff with a regional scope:
    a nationwide poster is not theirs to print), ``unknown_agent``, ``agent_outside_region``, ``expired``.
    An agent creating a campaign without naming an agent is the campaign's agent.
    """
    product = await session.get(Product, product_code)
    if product is None or not product.active:
        raise CampaignError("unknown_product")
    if region_code is not None:
        if await session.get(Region, region_code) is None:
            raise CampaignError("unknown_region")
        if not actor.covers_region(region_code):
            raise CampaignError("outside_scope")
    elif not actor.is_national:
        raise CampaignError("outside_scope", reason="region_required")
    if agent_id is None and actor.role == Role.AGENT.value:
        agent_id = actor.user_id
    if agent_id is not None:
        agent = await session.get(StaffUser, agent_id)
        if agent is None or not agent.active or agent.role != Role.AGENT.value:
            raise CampaignError("unknown_agent")
        if region_code is not None and not principal_of(agent).covers_region(region_code):
            raise CampaignError("agent_outside_region")
    if expires_at is not None:
        expires_at = _aware(expires_at)
        if expires_at <= utcnow():
            raise CampaignError("expiry_in_past")
    campaign = QrCampaign(
        product_code=product_code,
        agent_id=agent_id,
        region_code=region_code,
        title=title,
        expires_at=expires_at,
        created_by=actor.user_id,
    )
    session.add(campaign)
    await session.flush()
    record_audit(
        session=session,
        actor=actor,
        action="campaigns.create",
        target_type="qr_campaign",
        target_id=campaign.id or "",
        detail={
            "product_code": product_code,
            "agent_id": agent_id,
            "region_code": region_code,
            "title": title,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        ip=ip,
    )
    await session.commit()
    await session.refresh(campaign)
    return campaign


async def list_campaigns(*, session: AsyncSession, actor: StaffPrincipal) -> list[QrCampaign]:
    """The campaigns the actor may see, newest first."""
    query = select(QrCampaign).order_by(col(QrCampaign.id).desc())
    if not actor.is_national:
        query = query.where(_visibility_filter(actor))
    rows = (await session.exec(query)).all()
    return [c for c in rows if visible_to(actor, c)]


async def get_campaign(*, session: AsyncSession, actor: StaffPrincipal, campaign_id: int) -> QrCampaign:
    """One campaign; ``CampaignError('not_found')`` when missing or outside the actor's scope alike."""
    campaign = await session.get(QrCampaign, campaign_id)
    if campaign is None or not visible_to(actor, campaign):
        raise CampaignError("not_found")
    return campaign


async def deactivate_campaign(
    *, session: AsyncSession, actor: StaffPrincipal, campaign_id: int, ip: str | None = None
) -> QrCampaign:
    """Stop a campaign: its code no longer opens enrollment (audited ``campaigns.deactivate``).

    Deactivating an inactive campaign changes nothing and writes nothing.
    """
    campaign = await get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if not campaign.active:
        return campaign
    campaign.active = False
    session.add(campaign)
    record_audit(
        session=session,
        actor=actor,
        action="campaigns.deactivate",
        target_type="qr_campaign",
        target_id=campaign_id,
        detail={"product_code": campaign.product_code, "region_code": campaign.region_code},
        ip=ip,
    )
    await session.commit()
    await session.refresh(campaign)
    return campaign


@dataclass(frozen=True)
class ScanStats:
    count: int
    last: list[QrScan]


async def campaign_scans(
    *, session: AsyncSession, actor: StaffPrincipal, campaign_id: int, limit: int = 20
) -> ScanStats:
    """How many times the campaign was scanned, and the latest scans (scope-checked like ``get_campaign``)."""
    await get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    count = (
        await session.exec(select(func.count()).select_from(QrScan).where(QrScan.campaign_id == campaign_id))
    ).one()
    query = (
        select(QrScan)
        .where(QrScan.campaign_id == campaign_id)
        .order_by(col(QrScan.scanned_at).desc(), col(QrScan.id).desc())
        .limit(limit)
    )
    return ScanStats(count=count, last=list((await session.exec(query)).all()))


# --- scans -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanResult:
    """What the bot needs to open the right enrollment: the product, the region and the agent."""

    campaign_id: int
    product_code: str
    region_code: str | None
    agent_id: int | None
    scan_id: int
    scanned_at: datetime


async def resolve_scan(*, session: AsyncSession, payload: str, secret: str, identity_id: int) -> ScanResult:
    """Check a scanned payload and record the scan (campaign, identity, agent, time).

    ``PayloadError``: ``malformed``, ``tampered``, ``unknown`` (no such campaign), ``inactive`` (the campaign
    or its product is off), ``expired``. Nothing is written when the scan is refused.
    """
    campaign_id = read_payload(payload, secret)
    campaign = await session.get(QrCampaign, campaign_id)
    if campaign is None or campaign.id is None:
        raise PayloadError("unknown")
    if not campaign.active:
        raise PayloadError("inactive")
    if campaign.expires_at is not None and _aware(campaign.expires_at) <= utcnow():
        raise PayloadError("expired")
    product = await session.get(Product, campaign.product_code)
    if product is None or not product.active:
        raise PayloadError("inactive", "this campaign's product is no longer offered")
    scan = QrScan(campaign_id=campaign.id, identity_id=identity_id, agent_id=campaign.agent_id)
    session.add(scan)
    await session.commit()
    await session.refresh(scan)
    assert scan.id is not None
    return ScanResult(
        campaign_id=campaign.id,
        product_code=campaign.product_code,
        region_code=campaign.region_code,
        agent_id=campaign.agent_id,
        scan_id=scan.id,
        scanned_at=scan.scanned_at,
    )


# --- links and QR images ---------------------------------------------------------------------------------


class CampaignLinks(TypedDict):
    payload: str
    telegram_link: str
    webchat_link: str


def campaign_links(campaign: QrCampaign, payload: str, settings: Settings) -> CampaignLinks:
    """The two ways in: the Telegram deep link and the web chat link, both carrying the same payload."""
    return {
        "payload": payload,
        "telegram_link": f"https://t.me/{settings.bot_username}?start={payload}",
        "webchat_link": f"{settings.public_url.rstrip('/')}/chat?start={payload}",
    }


QR_ERROR = "m"  # error correction M: survives some dirt and creases on a poster
QR_SCALE = 10  # pixels per module: a version 4 code is 330 px wide with its border
QR_BORDER = 4  # the quiet zone the standard asks for, in modules


def qr_code(link: str) -> segno.QRCode:
    """The QR symbol for a link: never a Micro QR (phones' cameras do not all read those), exactly level M."""
    return segno.make(link, error=QR_ERROR, micro=False, boost_error=False)


def qr_png(link: str) -> bytes:
    buffer = io.BytesIO()
    qr_code(link).save(buffer, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return buffer.getvalue()


def qr_svg(link: str) -> str:
    buffer = io.BytesIO()
    qr_code(link).save(buffer, kind="svg", scale=QR_SCALE, border=QR_BORDER, title="Tianbao QR")
    return buffer.getvalue().decode("utf-8")

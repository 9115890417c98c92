"""The one place warnings meet the broadcasts domain: the audience of a warning and sending it.

Every warning, update, all-clear and invitation is a system broadcast of kind ``warning`` (approval is the
warning's own: ``service.approve`` by staff, or the Extreme + Immediate rule), idempotent per source key
``cap:<warning id>`` (``:all-clear``, ``:invite``), so a job or a request run twice sends once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.warnings.models import CapWarning
from backend.broadcasts.schemas import AudienceSpec, BroadcastContent, Exclusions
from backend.broadcasts.service import send_system_broadcast
from backend.security import significant_prefix

KIND = "warning"


def audience_for_area(warning: CapWarning) -> AudienceSpec:
    """The drawn area when the message has one (more precise than the divisions it also names: insured
    items with GPS inside it, else the townships it covers), else its administrative divisions."""
    if warning.geometry is not None:
        return AudienceSpec(geometry=warning.geometry)
    return AudienceSpec(region_codes=sorted({significant_prefix(code) for code in warning.region_codes}))


def audience_of(*, from_broadcast_ids: Sequence[int], excluded_people: Sequence[int] = ()) -> AudienceSpec:
    """Those who got these broadcasts (an update, an all-clear, the invitation after expiry)."""
    return AudienceSpec(
        from_broadcast_ids=list(from_broadcast_ids), exclusions=Exclusions(person_ids=list(excluded_people))
    )


async def send_now(
    session: AsyncSession,
    *,
    content: BroadcastContent,
    audience: AudienceSpec,
    source_key: str,
    ack_button: bool,
) -> int:
    """Resolve and enqueue now (commits: the broadcasts domain commits its own work). Its id."""
    broadcast = await send_system_broadcast(
        session, kind=KIND, content=content, audience=audience, source_key=source_key, ack_button=ack_button
    )
    return broadcast.id or 0

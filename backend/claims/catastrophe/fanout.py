"""Telling the insured of an area (R-DIS-4 green channel, R-DIS-5 branch closure) through the broadcasts
domain: one system broadcast per source (``source_key``: ``event-<id>-green-channel``,
``branch-<id>-closed``, ``branch-<id>-reopened``), so a second call for the same source sends nothing,
and staff follow its progress like any broadcast's. The audience is everyone holding a policy in force in
the regions (by prefix), each person once: their chat (``people/reach.py``'s rule) or else a text
(the approved templates ``green_channel``, ``branch_closed``, ``branch_reopened``). The broadcasts
domain resolves and enqueues set-based; what does not fit in its inline second goes on by its
``broadcast-fanout`` job.

``send_system_broadcast`` commits the caller's session (the first recipients must be claimable at
once): callers add their own rows before calling it, and commit again after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.broadcasts.models import BroadcastKind
from backend.broadcasts.schemas import AudienceSpec, BroadcastContent, LocaleContent, Part, SmsPart
from backend.broadcasts.service import send_system_broadcast
from backend.settings import Settings
from messages import LOCALES


async def tell_insured_in(
    session: AsyncSession,
    settings: Settings,
    *,
    region_codes: Sequence[str],
    template: str,
    sms_key: str,
    source_key: str,
    context: dict[str, Any],
) -> int:
    """Tell everyone insured in the regions (chat, else SMS), once per ``source_key``; returns how many
    recipients are queued so far (0 when there is no region to tell)."""
    regions = sorted(set(region_codes))
    if not regions:
        return 0
    content = BroadcastContent(
        locales={
            locale: LocaleContent(chat=Part(template=template, params=context), sms=SmsPart(template=sms_key))
            for locale in LOCALES
        }
    )
    broadcast = await send_system_broadcast(
        session,
        kind=BroadcastKind.REMINDER.value,
        content=content,
        audience=AudienceSpec(region_codes=regions),
        source_key=source_key,
        settings=settings,
    )
    return broadcast.recipient_count

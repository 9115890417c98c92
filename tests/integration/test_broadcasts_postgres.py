"""Broadcasts on real PostgreSQL: the set-based resolution (window function reach, INSERT ... SELECT into
the outbox with the link token written into the template's JSON), ranges carried on by the job, geometry
through JSON GPS points, pause/resume/cancel by status, and concurrent taps recorded once (R-DIS-1)."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, select

from backend.broadcasts import fanout, service
from backend.broadcasts.jobs import broadcast_fan_out
from backend.broadcasts.models import BroadcastRecipient
from backend.broadcasts.schemas import AudienceSpec
from backend.db import Database
from backend.outbox.models import OutboxMessage
from backend.outbox.service import claim_batch
from backend.outbox.sms.models import SmsLink
from backend.security import BotPrincipal
from backend.settings import Settings
from tests.broadcast_helpers import insured, text_content

pytestmark = pytest.mark.integration
AREA = "659001001001"  # a village code no other integration test uses


async def outbox_of(db: Database, broadcast_id: int) -> list[OutboxMessage]:
    async with db.session() as session:
        query = select(OutboxMessage).where(col(OutboxMessage.broadcast_id) == broadcast_id)
        return list((await session.exec(query)).all())


async def test_r_dis_1_fan_out_on_postgresql(
    pg_db: Database, pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "FIRST_CHUNK", 2)
    monkeypatch.setattr(fanout, "CHUNK", 2)
    monkeypatch.setattr(service, "INLINE_SECONDS", -1.0)
    async with pg_db.session() as session:
        both, chat_both, _ = await insured(session, region=AREA, product="banana")
        await insured(session, region=AREA, product="pig", person=both)
        texted, _, _ = await insured(session, region=AREA, product="pig", chat=False)
        stopped, _, _ = await insured(session, region=AREA, stopped=True)
        _, gps_chat, _ = await insured(session, region=AREA, lat=44.30, lon=86.05)
        for _ in range(3):
            await insured(session, region=AREA)
    content = text_content(banana=("香蕉请立桩。", "Prop bananas."), livestock=("生猪转移。", "Move pigs."))
    async with pg_db.session() as session:
        broadcast = await service.send_system_broadcast(
            session,
            kind="warning",
            content=content,
            audience=AudienceSpec(region_codes=[AREA[:6]]),
            source_key="pg:warning",
            ack_button=True,
        )
        while (await broadcast_fan_out(session, pg_settings))["written"]:
            pass
    rows = {r.address: r for r in await outbox_of(pg_db, broadcast.id or 0)}
    assert chat_both and gps_chat and len(rows) == 7
    assert "立桩" in rows[chat_both.address].text and "转移" in rows[chat_both.address].text
    sms = rows[f"+86{texted.phone}"]
    async with pg_db.session() as session:
        link = (await session.exec(select(SmsLink).where(col(SmsLink.person_id) == texted.id))).one()
    assert sms.template is not None and sms.template["params"][-1] == link.token and link.token in sms.text
    assert f"+86{stopped.phone}" in rows  # the blocked chat: texted instead

    circle = {
        "type": "Polygon",
        "coordinates": [[[86.0, 44.25], [86.1, 44.25], [86.1, 44.35], [86.0, 44.35], [86.0, 44.25]]],
    }
    async with pg_db.session() as session:
        near = await service.send_system_broadcast(
            session,
            kind="warning",
            content=content,
            audience=AudienceSpec(geometry=circle),
            source_key="pg:geo",
        )
        while (await broadcast_fan_out(session, pg_settings))["written"]:
            pass
    assert {r.address for r in await outbox_of(pg_db, near.id or 0)} == {gps_chat.address}

    async with pg_db.session() as session:
        await service.pause_broadcast(session, broadcast_id=broadcast.id or 0, actor=None)
        others = await claim_batch(session=session, worker_id="w", limit=50, lease_seconds=60)
    assert [m.broadcast_id for m in others] == [near.id]  # the paused one's rows are held, the rest go
    assert {m.status for m in await outbox_of(pg_db, broadcast.id or 0)} == {"held"}
    async with pg_db.session() as session:
        await service.resume_broadcast(session, broadcast_id=broadcast.id or 0, actor=None)
        claimed = await claim_batch(session=session, worker_id="w", limit=3, lease_seconds=60)
        assert len(claimed) == 3 and {m.broadcast_id for m in claimed} == {broadcast.id}
        await service.cancel_broadcast(session, broadcast_id=broadcast.id or 0, actor=None)
    assert sorted(m.status for m in await outbox_of(pg_db, broadcast.id or 0)) == ["sending"] * 3

    async def tap() -> bool:
        async with pg_db.session() as session:
            principal = BotPrincipal(
                identity_id=chat_both.id or 0,
                channel="webchat",
                external_id=chat_both.external_id,
                person_id=both.id,
                phone_verified=True,
            )
            _, first = await service.acknowledge(session, broadcast_id=broadcast.id or 0, principal=principal)
            return first

    firsts = await asyncio.gather(tap(), tap(), tap())
    assert sorted(firsts) == [False, False, True]
    async with pg_db.session() as session:
        query = select(BroadcastRecipient).where(
            col(BroadcastRecipient.broadcast_id) == broadcast.id,
            col(BroadcastRecipient.acked_at).is_not(None),
        )
        assert len((await session.exec(query)).all()) == 1

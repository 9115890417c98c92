"""Broadcasts: audiences, dedupe, variants, four eyes, pause/resume/cancel, resend, progress, acks."""

from __future__ import annotations

from sqlmodel import col, select

from backend.broadcasts import service
from backend.broadcasts.models import BroadcastRecipient, BroadcastVariant
from backend.db import Database
from backend.outbox.models import OutboxMessage
from tests.broadcast_helpers import ZHONGSHAN, insured, regions, text_content


async def outbox_of(db: Database, broadcast_id: int) -> list[OutboxMessage]:
    async with db.session() as session:
        rows = await session.exec(
            select(OutboxMessage).where(col(OutboxMessage.broadcast_id) == broadcast_id)
        )
        return list(rows.all())


async def test_system_broadcast_reaches_region_once_per_person(db: Database) -> None:
    async with db.session() as session:
        farmer, _, _ = await insured(session, product="rice")
        await insured(session, product="banana", person=farmer)  # a second policy: still one message
        await insured(session, chat=False)  # texted
        await insured(session, region=ZHONGSHAN)  # outside the audience
        broadcast = await service.send_system_broadcast(
            session,
            kind="warning",
            content=text_content(banana=("香蕉请立桩。", "Prop the bananas.")),
            audience=regions("441900"),
            source_key="cap:test-1",
            ack_button=True,
        )
        again = await service.send_system_broadcast(
            session,
            kind="warning",
            content=text_content(),
            audience=regions("441900"),
            source_key="cap:test-1",
        )
    assert again.id == broadcast.id
    rows = await outbox_of(db, broadcast.id or 0)
    assert sorted(r.channel for r in rows) == ["sms", "webchat"]
    chat = next(r for r in rows if r.channel == "webchat")
    assert "香蕉请立桩" in chat.text and chat.buttons[0][0]["callback_data"] == f"bca:{broadcast.id}"
    sms = next(r for r in rows if r.channel == "sms")
    assert sms.template is not None and sms.template["key"] == "broadcast_warning"
    assert "ZZTOKEN" not in sms.text and "ZZTOKEN" not in str(sms.template)
    async with db.session() as session:
        variants = (await session.exec(select(BroadcastVariant))).all()
        recipients = (await session.exec(select(BroadcastRecipient))).all()
    assert len(recipients) == 2 and len(variants) == 2

"""Delivery through the real worker into web chat: pushed notifications reach the browser."""

from __future__ import annotations

from sqlmodel import select

from backend.db import Database
from backend.outbox import service
from backend.outbox.models import OutboxMessage, OutboxStatus, Priority
from backend.people.models import ChatIdentity
from backend.people.service import mark_stopped
from tests.harness import ChatUser


async def _identity(db: Database, external_id: str) -> ChatIdentity:
    async with db.session() as session:
        query = select(ChatIdentity).where(ChatIdentity.external_id == external_id)
        return (await session.exec(query)).one()


async def test_pushed_notification_appears_in_web_chat_history(
    embedded, db: Database, farmer: ChatUser
) -> None:
    welcome = (await farmer.say("/start"))[0]
    identity = await _identity(db, farmer.chat_id)
    async with db.session() as session:
        await service.enqueue_for_identity(
            session=session,
            identity=identity,
            text="<b>您的保单已生效</b>",
            dedupe_key="policy-7-issued",
            priority=Priority.REPLY,
            buttons=[[{"text": "查看", "callback_data": "m:help"}]],
        )
        await session.commit()
    worker = embedded.state.bot_runtime.delivery_worker(worker_id="test-worker")
    assert await worker.run_once() == 1
    pushed = await farmer.history(after=welcome.id)
    assert [m.text for m in pushed] == ["<b>您的保单已生效</b>"]
    assert pushed[0].buttons == [[{"text": "查看", "callback_data": "m:help"}]]
    async with db.session() as session:
        row = (await session.exec(select(OutboxMessage))).one()
    assert row.status == OutboxStatus.SENT and row.external_message_id == str(pushed[0].id)
    # Tapping the pushed button works like any other button.
    replies = await farmer.tap("查看", pushed)
    assert "使用帮助" in replies[0].text


async def test_stopped_user_comes_back_on_start(embedded, db: Database, farmer: ChatUser) -> None:
    await farmer.say("/start")
    async with db.session() as session:
        await mark_stopped(
            session=session, directory=embedded.state.identities, channel="webchat", address=farmer.chat_id
        )
        await session.commit()
    assert (await _identity(db, farmer.chat_id)).stopped_at is not None
    await farmer.say("/start")
    assert (await _identity(db, farmer.chat_id)).stopped_at is None


async def test_worker_with_nothing_due_claims_nothing(embedded) -> None:
    worker = embedded.state.bot_runtime.delivery_worker(worker_id="idle")
    assert await worker.run_once() == 0

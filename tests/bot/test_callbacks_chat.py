"""Callback surveys in web chat, end to end (R-CBK-1, R-CBK-3, R-CBK-4): a claim paid through the staff
API, the daily draw, the questions answered with buttons and free text, the mismatch in front of staff;
and the unreachable path: texts, a reminder, staff re-confirming the contact, the link opened in web chat,
and the remarks when nobody answers."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlmodel import col, select

from backend.alerts.models import StaffAlert
from backend.callbacks import service
from backend.callbacks.models import Callback
from backend.callbacks.schemas import pack
from backend.db import Database, utcnow
from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity
from backend.settings import Settings
from bot.routers.callbacks import CallbackAnswer
from tests.backend.test_callbacks import follow_up, paid_claims, tuned
from tests.backend.test_claims_reporting import cover_began
from tests.backend.test_claims_workflow import agreed_claim, staff_user
from tests.bot.test_sms_verification import PHONE, bind_by_code, texted_code
from tests.enroll_helpers import deliver, insured_in_chat
from tests.harness import ChatUser, age_phone_codes


async def blocked(db: Database, user: ChatUser) -> None:
    """The user's chat blocked the bot (it reaches them no more)."""
    async with db.session() as session:
        for chat in (
            await session.exec(select(ChatIdentity).where(ChatIdentity.external_id == user.chat_id))
        ).all():
            chat.stopped_at = utcnow()
        await session.commit()


async def draw(db: Database, settings: Settings) -> service.DrawReport:
    async with db.session() as session:
        return await service.draw_daily_sample(session, tuned(settings))


async def the_callback(db: Database) -> Callback:
    async with db.session() as session:
        return (await session.exec(select(Callback))).one()


async def callback_texts(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.channel == "sms").order_by(col(OutboxMessage.id))
            )
        ).all()
    return [r for r in rows if r.template and r.template["key"] == "callback_ask"]


def test_the_buttons_of_a_notice_are_the_ones_the_bot_reads() -> None:
    assert CallbackAnswer(callback_id=12, question="received", value="y").pack() == pack(12, "received", "y")
    assert CallbackAnswer.unpack(pack(7, "satisfaction", "5")).value == "5"


async def test_R_CBK_1_R_CBK_4_paid_sampled_answered_in_web_chat_and_the_mismatch_flagged(
    chat_client: httpx.AsyncClient,
    embedded,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
) -> None:
    farmer = ChatUser(chat_client, "farmer-cbk", first_name="李四")
    await bind_by_code(farmer, db)  # a verified chat: the notice reaches it (backend/people/reach.py)
    policy = await insured_in_chat(farmer, api, service_headers)
    await cover_began(db, timedelta(days=5))
    async with db.session() as session:
        identity = (
            await session.exec(select(ChatIdentity).where(ChatIdentity.external_id == "farmer-cbk"))
        ).one()
    headers = {
        **service_headers,
        "X-Tianbao-Identity": "webchat:farmer-cbk",
        "X-Identity-Id": str(identity.id),
    }
    adjuster, _ = await staff_user(api, admin_headers, "cbk_chat_adj", "adjuster")
    claim_id = await agreed_claim(api, db, headers, policy, adjuster)
    paid = await api.post(
        f"/api/claims/{claim_id}/payment", headers=admin_headers, json={"reference": "TRF-CBK-1"}
    )
    assert paid.status_code == 200, paid.text
    await deliver(embedded)

    report = await draw(db, settings)
    assert (report.population, report.drawn) == (1, 1)
    await deliver(embedded)
    ask = (await farmer.history())[-1]
    assert "理赔回访" in ask.text and "收到" in ask.text, ask.text
    replies = await farmer.tap("收到了", [ask])
    assert "¥1,500.00" in replies[-1].text, farmer.text()
    replies = await farmer.tap("金额不对")
    assert "到账金额与我们的记录不一致" in farmer.text() and "满意" in replies[-1].text, farmer.text()
    replies = await farmer.tap("4")
    assert "实际收到的金额" in replies[-1].text, farmer.text()
    replies = await farmer.say("只收到了1000元")
    assert "回访已经完成" in replies[-1].text, farmer.text()
    # The same tap again, on the first notice: recorded once
    replies = await farmer.tap("没收到", [ask])
    assert "已经回答过了" in farmer.text(), farmer.text()

    callback = await the_callback(db)
    assert (callback.received, callback.amount_correct, callback.satisfaction) == (True, False, 4)
    assert callback.comment == "只收到了1000元" and callback.flag_reasons == ["amount_differs"]
    async with db.session() as session:
        flags = (await session.exec(select(StaffAlert).where(StaffAlert.kind == "callback_flag"))).all()
    assert len(flags) == 1 and flags[0].claim_id == claim_id
    detail = (await api.get(f"/api/callbacks/{callback.id}", headers=adjuster)).json()
    assert detail["payment"]["reference"] == "TRF-CBK-1" and detail["payment"]["amount_fen"] == 150000
    assert detail["comment"] == "只收到了1000元" and detail["claim"]["status"] == "paid"
    neighbour, _ = await staff_user(api, admin_headers, "cbk_chat_zs", "adjuster", regions=("442000000000",))
    assert (await api.get(f"/api/callbacks/{callback.id}", headers=neighbour)).status_code == 404


def _token(text: str) -> str:
    found = re.search(r"/s/([A-Za-z0-9]+)", text)
    assert found is not None, text
    return found.group(1)


async def test_R_CBK_3_texted_reminded_unreachable_recontacted_then_remarks(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
) -> None:
    typed = ChatUser(chat_client, "typed-cbk")
    policy = await insured_in_chat(typed, api, service_headers)
    await blocked(db, typed)  # no chat reaches them: the callback goes by text
    await paid_claims(db, policy, 1)
    await draw(db, settings)
    callback = await the_callback(db)
    assert callback.channel == "sms" and callback.asked_at is not None
    assert len(await callback_texts(db)) == 1
    job = tuned(settings)
    assert (await follow_up(db, job, callback.asked_at + timedelta(hours=48, seconds=1))).reminded == 1
    assert len(await callback_texts(db)) == 2  # the reminder
    assert (await follow_up(db, job, callback.asked_at + timedelta(hours=96, seconds=2))).unreachable == 1
    agent, _ = await staff_user(api, admin_headers, "cbk_chat_agent", "agent")
    queue = (await api.get("/api/callbacks", params={"status": "unreachable"}, headers=agent)).json()
    assert [c["id"] for c in queue] == [callback.id]
    again = await api.post(f"/api/callbacks/{callback.id}/contact", headers=agent, json={"confirm": True})
    assert again.status_code == 200 and again.json()["attempts"] == 2
    texts = await callback_texts(db)
    assert len(texts) == 3

    # Someone else who got the text forwarded opens nothing
    stranger = ChatUser(chat_client, "stranger-cbk")
    replies = await stranger.say(f"/start s_{_token(texts[-1].text)}")
    assert "138****5678" in replies[0].text and "收到" not in stranger.text()
    # Still no answer: unreachable again, and the reason goes to the remarks
    retried = await the_callback(db)
    assert retried.asked_at is not None
    await follow_up(db, job, retried.asked_at + timedelta(hours=48, seconds=1))
    await follow_up(db, job, retried.asked_at + timedelta(hours=96, seconds=2))
    closed = await api.post(
        f"/api/callbacks/{callback.id}/close", headers=agent, json={"remarks": "电话无人接听，已外出务工"}
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["remarks"] == "电话无人接听，已外出务工"


async def test_R_CBK_3_the_texted_link_opens_the_callback_once_the_chat_proves_the_number(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    db: Database,
    settings: Settings,
) -> None:
    typed = ChatUser(chat_client, "typed-cbk-2")
    policy = await insured_in_chat(typed, api, service_headers)
    await blocked(db, typed)  # no chat reaches them: the callback goes by text
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))  # the next code for the number may go
    await paid_claims(db, policy, 1)
    await draw(db, settings)
    token = _token((await callback_texts(db))[-1].text)
    phone_chat = ChatUser(chat_client, "phone-cbk-2")
    await phone_chat.say(f"/start s_{token}")
    await phone_chat.share_contact(PHONE)
    replies = await phone_chat.say(await texted_code(db, PHONE))
    assert "绑定成功" in replies[0].text
    assert "收到" in replies[-1].text and replies[-1].buttons, phone_chat.text()
    await phone_chat.tap("没收到")
    assert "您还没有收到这笔赔款" in phone_chat.text(), phone_chat.text()
    await phone_chat.tap("5")
    replies = await phone_chat.tap("跳过")
    assert "回访已经完成" in replies[-1].text
    callback = await the_callback(db)
    assert (
        callback.received is False and callback.flag_reasons == ["not_received"] and callback.comment_skipped
    )

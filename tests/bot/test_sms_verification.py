"""Web chat verified by a text message (issue 12): a phone bound in web chat is proved by a 6-digit SMS code
before the chat joins that phone's person; then the chat sees the person's policies and claims on any device,
the person can see and end their devices, and a text's link opens the claim in the person's chat only.

The code is read where the farmer would read it: the text the outbox holds for the number (channel sms,
kind otp)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlmodel import col, select

from backend.db import Database
from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity
from backend.phone_codes.models import PhoneCode
from tests.harness import ChatUser

PHONE = "13812345678"


async def texted_code(db: Database, phone: str = PHONE) -> str:
    """The latest one-time code texted to ``phone``, as the farmer reads it on their phone."""
    async with db.session() as session:
        row = (
            await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.channel == "sms", OutboxMessage.address == "+86" + phone)
                .where(OutboxMessage.kind == "otp")
                .order_by(col(OutboxMessage.id).desc())
            )
        ).first()
    assert row is not None, "no code was texted"
    found = re.search(r"\d{6}", row.text)
    assert found is not None, row.text
    return found.group(0)


async def codes_texted(db: Database, phone: str = PHONE) -> int:
    async with db.session() as session:
        rows = await session.exec(
            select(OutboxMessage).where(OutboxMessage.address == "+86" + phone, OutboxMessage.kind == "otp")
        )
        return len(rows.all())


async def identity_of(db: Database, chat_id: str) -> ChatIdentity:
    async with db.session() as session:
        found = (
            await session.exec(
                select(ChatIdentity).where(
                    ChatIdentity.channel == "webchat", ChatIdentity.external_id == chat_id
                )
            )
        ).first()
    assert found is not None
    return found


async def bind_by_code(user: ChatUser, db: Database, phone: str = PHONE) -> None:
    """Menu → bind phone → the number → the texted code: the chat is now the number's person's."""
    await user.say("/start")
    await user.tap("绑定手机号")
    replies = await user.share_contact(phone)
    assert f"已通过短信发送到 {phone[:3]}****{phone[-4:]}" in replies[-1].text, user.text()
    replies = await user.say(await texted_code(db, phone))
    assert "绑定成功" in replies[0].text, user.text()


async def _age_codes(db: Database, by: timedelta) -> None:
    """Move time: the stored codes were sent ``by`` earlier (the outbox rows too, for the per-number count)."""
    async with db.session() as session:
        for code in (await session.exec(select(PhoneCode))).all():
            code.created_at -= by
            code.expires_at -= by
        for text in (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "otp"))).all():
            text.created_at -= by
        await session.commit()


# --- 1. the code ----------------------------------------------------------------------------------------


async def test_binding_in_web_chat_texts_a_code_and_only_the_right_code_verifies(
    farmer: ChatUser, db: Database
) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    replies = await farmer.share_contact("+86 138-1234-5678")
    assert "138****5678" in replies[-1].text and "6 位数字" in replies[-1].text
    assert all(PHONE not in r.text for r in replies)  # the whole number is never echoed
    assert (await identity_of(db, farmer.chat_id)).person_id is None  # nothing bound before the code
    code = await texted_code(db)
    wrong = "000000" if code != "000000" else "111111"
    replies = await farmer.say(wrong)
    assert "验证码不对，还可以再试 4 次" in replies[0].text
    assert "📩 重新发送验证码" in replies[0].button_texts()
    replies = await farmer.say(code)
    assert "138****5678 绑定成功" in replies[0].text
    assert not any("绑定手机号" in t for t in replies[-1].button_texts())
    identity = await identity_of(db, farmer.chat_id)
    assert identity.person_id is not None and identity.phone_verified_at is not None


async def test_the_code_is_stored_only_as_a_keyed_hash(farmer: ChatUser, db: Database) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    await farmer.share_contact(PHONE)
    code = await texted_code(db)
    async with db.session() as session:
        stored = (await session.exec(select(PhoneCode))).one()
    assert code not in stored.code_hash and len(stored.code_hash) == 64
    assert stored.expires_at - stored.created_at == timedelta(minutes=5)


async def test_five_wrong_tries_kill_the_code(farmer: ChatUser, db: Database) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    await farmer.share_contact(PHONE)
    code = await texted_code(db)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        assert f"还可以再试 {left} 次" in (await farmer.say(wrong))[0].text
    assert "输错次数太多" in (await farmer.say(wrong))[0].text
    # Dead: even the right code no longer binds.
    assert "输错次数太多" in (await farmer.say(code))[0].text
    assert (await identity_of(db, farmer.chat_id)).person_id is None


async def test_an_expired_code_says_so_and_a_new_one_can_be_sent(farmer: ChatUser, db: Database) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    await farmer.share_contact(PHONE)
    code = await texted_code(db)
    await _age_codes(db, timedelta(minutes=5, seconds=1))
    replies = await farmer.say(code)
    assert "验证码已过期" in replies[0].text
    replies = await farmer.tap("重新发送验证码")
    assert "已通过短信发送到 138****5678" in replies[-1].text
    fresh = await texted_code(db)
    assert "绑定成功" in (await farmer.say(fresh))[0].text


async def test_codes_are_throttled_one_a_minute_and_five_an_hour(farmer: ChatUser, db: Database) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    await farmer.share_contact(PHONE)
    replies = await farmer.tap("重新发送验证码")
    assert "1分钟后再试" in replies[-1].text
    assert await codes_texted(db) == 1
    for _ in range(4):
        await _age_codes(db, timedelta(minutes=1, seconds=1))
        assert "已通过短信发送到" in (await farmer.tap("重新发送验证码"))[-1].text
    await _age_codes(db, timedelta(minutes=1, seconds=1))
    replies = await farmer.tap("重新发送验证码")
    assert await codes_texted(db) == 5
    assert "次数已满" in replies[-1].text or "太频繁" in replies[-1].text


async def test_one_chat_cannot_text_codes_to_number_after_number(farmer: ChatUser, db: Database) -> None:
    """Throttled per chat as well as per number (the bot is not told the browser's address)."""
    await farmer.say("/start")
    for n in range(6):
        await _age_codes(db, timedelta(minutes=1, seconds=1))
        await farmer.tap("绑定手机号", await farmer.say("/start"))
        replies = await farmer.say(f"1390000000{n}")
    assert "这个聊天获取验证码太频繁了" in replies[-1].text
    assert await codes_texted(db, "13900000005") == 0


async def test_a_typed_number_nobody_holds_binds_unverified_and_never_joins_a_held_one(
    chat_client: httpx.AsyncClient, db: Database
) -> None:
    """The hole closed: a web chat that only typed a number never joins the person who holds it."""
    owner = ChatUser(chat_client, "owner-1")
    await owner.say("/start")
    replies = await owner.share_contact(PHONE)  # outside the menu: a number nobody holds yet
    assert "绑定成功" in replies[0].text and "短信验证码验证" in replies[0].text
    assert (await identity_of(db, owner.chat_id)).phone_verified_at is None
    intruder = ChatUser(chat_client, "intruder-1")
    await intruder.say("/start")
    replies = await intruder.share_contact(PHONE)
    assert "需要用短信验证码证明号码是您的" in replies[0].text
    assert "已通过短信发送到 138****5678" in replies[-1].text
    intruding = await identity_of(db, intruder.chat_id)
    assert intruding.person_id is None and intruding.phone is None


async def test_a_second_device_verified_by_code_joins_the_same_person(
    chat_client: httpx.AsyncClient, db: Database
) -> None:
    first, second = ChatUser(chat_client, "phone-1"), ChatUser(chat_client, "laptop-1")
    await bind_by_code(first, db)
    await _age_codes(db, timedelta(minutes=1, seconds=1))
    await bind_by_code(second, db)
    one, two = await identity_of(db, first.chat_id), await identity_of(db, second.chat_id)
    assert one.person_id == two.person_id is not None
    assert one.phone_verified_at is not None and two.phone_verified_at is not None

"""Web chat verified by a text message (issue 12): a phone bound in web chat is proved by a 6-digit SMS code
before the chat joins that phone's person; then the chat sees the person's policies and claims on any device,
the person can see and end their devices, and a text's link opens the claim in the person's chat only.

The code is read where the farmer would read it: the text the outbox holds for the number (channel sms,
kind otp)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import select

from backend.claims.models import Claim
from backend.db import Database, utcnow
from backend.enrollment.models import Policy
from backend.outbox.models import OutboxMessage
from backend.outbox.sms.models import SmsLink
from backend.outbox.sms.service import create_link
from backend.people.models import ChatIdentity, Person
from backend.phone_codes.models import PhoneCode
from tests.backend.test_claims_workflow import staff_user
from tests.backend.test_enrollment_api import farmer_application
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, VALID_ID, insured_in_chat
from tests.harness import ChatUser, age_phone_codes, latest_text, texted_code

PHONE = "13812345678"


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
    code = await texted_code(db, PHONE)
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
    code = await texted_code(db, PHONE)
    async with db.session() as session:
        stored = (await session.exec(select(PhoneCode))).one()
    assert code not in stored.code_hash and len(stored.code_hash) == 64
    assert stored.expires_at - stored.created_at == timedelta(minutes=5)


async def test_five_wrong_tries_kill_the_code(farmer: ChatUser, db: Database) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    await farmer.share_contact(PHONE)
    code = await texted_code(db, PHONE)
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
    code = await texted_code(db, PHONE)
    await age_phone_codes(db, timedelta(minutes=5, seconds=1))
    replies = await farmer.say(code)
    assert "验证码已过期" in replies[0].text
    replies = await farmer.tap("重新发送验证码")
    assert "已通过短信发送到 138****5678" in replies[-1].text
    fresh = await texted_code(db, PHONE)
    assert "绑定成功" in (await farmer.say(fresh))[0].text


async def test_codes_are_throttled_one_a_minute_and_five_an_hour(farmer: ChatUser, db: Database) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    await farmer.share_contact(PHONE)
    replies = await farmer.tap("重新发送验证码")
    assert "1分钟后再试" in replies[-1].text
    assert await codes_texted(db) == 1
    for _ in range(4):
        await age_phone_codes(db, timedelta(minutes=1, seconds=1))
        assert "已通过短信发送到" in (await farmer.tap("重新发送验证码"))[-1].text
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    replies = await farmer.tap("重新发送验证码")
    assert await codes_texted(db) == 5
    assert "次数已满" in replies[-1].text or "太频繁" in replies[-1].text


async def test_one_chat_cannot_text_codes_to_number_after_number(farmer: ChatUser, db: Database) -> None:
    """Throttled per chat as well as per number (the bot is not told the browser's address)."""
    await farmer.say("/start")
    for n in range(6):
        await age_phone_codes(db, timedelta(minutes=1, seconds=1))
        await farmer.tap("绑定手机号", await farmer.say("/start"))
        replies = await farmer.say(f"1390000000{n}")
    assert "这个聊天获取验证码太频繁了" in replies[-1].text
    assert await codes_texted(db, "13900000005") == 0


async def test_a_shared_number_binds_only_by_its_code_whoever_holds_it(
    chat_client: httpx.AsyncClient, db: Database
) -> None:
    """The hole closed: a web chat that only sent a number binds nothing, held number or new; the code
    proves it. The intruder hears exactly what the owner heard, so nobody learns a number is on file."""
    owner = ChatUser(chat_client, "owner-1")
    await owner.say("/start")
    replies = await owner.share_contact(PHONE)  # outside the menu: a number nobody holds yet
    asked = replies[0].text
    assert "已通过短信发送到 138****5678" in asked
    assert (await identity_of(db, owner.chat_id)).person_id is None
    assert "绑定成功" in (await owner.say(await texted_code(db, PHONE)))[0].text
    assert (await identity_of(db, owner.chat_id)).phone_verified_at is not None
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    intruder = ChatUser(chat_client, "intruder-1")
    await intruder.say("/start")
    replies = await intruder.share_contact(PHONE)
    assert replies[0].text == asked
    intruding = await identity_of(db, intruder.chat_id)
    assert intruding.person_id is None and intruding.phone is None


async def test_a_second_device_verified_by_code_joins_the_same_person(
    chat_client: httpx.AsyncClient, db: Database
) -> None:
    first, second = ChatUser(chat_client, "phone-1"), ChatUser(chat_client, "laptop-1")
    await bind_by_code(first, db)
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    await bind_by_code(second, db)
    one, two = await identity_of(db, first.chat_id), await identity_of(db, second.chat_id)
    assert one.person_id == two.person_id is not None
    assert one.phone_verified_at is not None and two.phone_verified_at is not None


# --- 2. per person, 3. devices, 4. the SMS link ----------------------------------------------------------


async def agent_reports_for(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database, policy_id: int
) -> dict[str, Any]:
    """An agent reports the farmer's loss (collective report, R-CLM-3) and the claim is left with no chat
    identity, as for a farmer the agent reports for who never chatted; then an adjuster is assigned, and
    the farmer hears of it by text."""
    async with db.session() as session:
        policy = await session.get(Policy, policy_id)
        assert policy is not None
        policy.starts_at = utcnow() - timedelta(days=2)  # the loss lies inside the cover
        await session.commit()
    agent, _ = await staff_user(api, admin_headers, "agent_sms", "agent")
    body = {
        "village_code": DONGGUAN_TOWNSHIP,
        "cause": "flood",
        "loss_started_at": (utcnow() - timedelta(hours=5)).isoformat(),
        "households": [{"policy_id": policy_id, "lost_quantity": "5", "estimated_amount_yuan": "3000"}],
    }
    made = await api.post("/api/claims/collective", headers=agent, json=body)
    assert made.status_code == 201, made.text
    claim: dict[str, Any] = made.json()["claims"][0]
    async with db.session() as session:
        stored = await session.get(Claim, claim["id"])
        assert stored is not None
        stored.identity_id = None
        await session.commit()
        # No chat of the farmer reaches them (each was blocked): the notice goes by text. (/start in a
        # chat clears the block again.)
        insured = await session.get(Policy, policy_id)
        assert insured is not None
        chats = await session.exec(select(ChatIdentity).where(ChatIdentity.person_id == insured.person_id))
        for chat in chats.all():
            chat.stopped_at = utcnow()
        await session.commit()
    _, adjuster_id = await staff_user(api, admin_headers, "adj_sms", "adjuster")
    assigned = await api.post(
        f"/api/claims/{claim['id']}/assign", headers=admin_headers, json={"adjuster_id": adjuster_id}
    )
    assert assigned.status_code == 200, assigned.text
    return claim


async def texted_link(db: Database, phone: str = PHONE) -> str:
    """The short link's token in the latest notice texted to ``phone``."""
    text = await latest_text(db, phone, "notice")
    found = re.search(r"/s/([A-Za-z0-9]+)", text)
    assert found is not None, text
    return found.group(1)


async def test_a_second_device_verified_by_code_sees_the_persons_policy_and_an_agents_claim(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    phone_chat, laptop = ChatUser(chat_client, "phone-2"), ChatUser(chat_client, "laptop-2")
    await bind_by_code(phone_chat, db)
    policy = await insured_in_chat(phone_chat, api, service_headers)
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    await bind_by_code(laptop, db)
    replies = await laptop.tap("我的保单")
    assert policy["number"] in " ".join(replies[-1].button_texts()), laptop.text()

    claim = await agent_reports_for(api, admin_headers, db, policy["id"])
    await laptop.say("/start")
    replies = await laptop.tap("我的理赔")
    assert claim["number"] in " ".join(t for r in replies for t in r.button_texts()), laptop.text()

    # The claim's text to the farmer links to the claim; the link opens it in the verified chat.
    token = await texted_link(db)
    redirect = await chat_client.get(f"/s/{token}", follow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["location"] == f"/chat?start=s_{token}"
    replies = await laptop.say(f"/start s_{token}")
    assert f"理赔 {claim['number']}" in replies[0].text, laptop.text()


async def test_an_unverified_chat_sees_only_what_it_did_itself(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    """A chat bound before codes were required (a typed number, unverified) sees its own policy, never an
    agent's claim on it, until it proves the number."""
    typed = ChatUser(chat_client, "typed-1")
    policy = await insured_in_chat(typed, api, service_headers)
    async with db.session() as session:  # as such a chat was left by the releases before
        identity = await session.get(ChatIdentity, (await identity_of(db, typed.chat_id)).id)
        assert identity is not None
        identity.phone_verified_at = None
        await session.commit()
    claim = await agent_reports_for(api, admin_headers, db, policy["id"])
    await typed.say("/start")
    replies = await typed.tap("我的理赔")
    assert claim["number"] not in typed.text() and not replies[-1].buttons


async def test_a_forwarded_link_opens_nothing_in_someone_elses_chat(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    owner = ChatUser(chat_client, "owner-3")
    await bind_by_code(owner, db)
    policy = await insured_in_chat(owner, api, service_headers)
    claim = await agent_reports_for(api, admin_headers, db, policy["id"])
    token = await texted_link(db)
    stranger = ChatUser(chat_client, "stranger-3")
    replies = await stranger.say(f"/start s_{token}")
    assert "这个链接是发给手机号 138****5678 的" in replies[0].text
    assert claim["number"] not in stranger.text()
    # A stranger who tries the owner's number gets a code texted to the owner, never the claim.
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    replies = await stranger.share_contact(PHONE)
    assert "已通过短信发送到 138****5678" in replies[-1].text
    assert "验证码不对" in (await stranger.say("000001"))[0].text or "绑定成功" not in stranger.text()
    assert claim["number"] not in stranger.text()


async def test_the_link_asks_for_the_number_then_opens_once_verified(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    """The farmer opens the text's link on a new phone: the chat proves the number by code, then shows the
    claim."""
    first = ChatUser(chat_client, "first-4")
    await bind_by_code(first, db)
    policy = await insured_in_chat(first, api, service_headers)
    claim = await agent_reports_for(api, admin_headers, db, policy["id"])
    token = await texted_link(db)
    new_phone = ChatUser(chat_client, "new-phone-4")
    await new_phone.say(f"/start s_{token}")
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    await new_phone.share_contact(PHONE)
    replies = await new_phone.say(await texted_code(db, PHONE))
    assert "绑定成功" in replies[0].text
    assert f"理赔 {claim['number']}" in new_phone.text(), new_phone.text()


async def test_expired_and_unknown_links_say_so_and_show_the_menu(farmer: ChatUser, db: Database) -> None:
    await farmer.say("/start")
    replies = await farmer.say("/start s_AAAAAAAAAA")
    assert "没有找到这个短信链接" in replies[0].text and replies[-1].buttons
    async with db.session() as session:
        person = Person(phone=PHONE)
        session.add(person)
        await session.flush()
        assert person.id is not None
        token = await create_link(session=session, days=1, person_id=person.id, target="claim:1")
        link = await session.get(SmsLink, token)
        assert link is not None
        link.expires_at = utcnow() - timedelta(seconds=1)
        await session.commit()
    replies = await farmer.say(f"/start s_{token}")
    assert "已经过期" in replies[0].text and replies[-1].buttons


async def test_the_person_lists_their_devices_and_ends_one(
    chat_client: httpx.AsyncClient, db: Database
) -> None:
    phone_chat, laptop = ChatUser(chat_client, "phone-5"), ChatUser(chat_client, "laptop-5")
    await bind_by_code(phone_chat, db)
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    await bind_by_code(laptop, db)
    replies = await laptop.tap("我的设备")
    listing = replies[-1]
    assert listing.text.count("网页聊天") == 2 and "（本设备）" in listing.text
    assert "****ne-5" in listing.text and "****op-5" in listing.text
    ended = await laptop.tap("结束设备 ****ne-5")
    assert "已结束该设备" in ended[-1].text and "****ne-5" not in ended[-1].text
    gone = await identity_of(db, phone_chat.chat_id)
    assert gone.person_id is None and gone.phone_verified_at is None
    # What that browser could still read is erased: its cookie now opens an empty chat.
    assert await phone_chat.history() == []
    # The ended chat is asked to bind again and sees no devices of the person.
    replies = await phone_chat.say("/start")
    assert any("绑定手机号" in t for t in replies[-1].button_texts())


async def test_another_number_sent_while_a_code_is_awaited_gets_its_own_code(
    farmer: ChatUser, db: Database
) -> None:
    """A mistyped number is corrected by sending the right one: the code goes there, the first one dies."""
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    await farmer.share_contact("13900001111")
    first = await texted_code(db, "13900001111")
    assert "1分钟后再试" in (await farmer.share_contact(PHONE))[-1].text  # one code a minute per chat too
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    replies = await farmer.share_contact(PHONE)
    assert "已通过短信发送到 138****5678" in replies[-1].text
    if first != await texted_code(db, PHONE):  # one chance in a million that both codes are the same
        assert "验证码不对" in (await farmer.say(first))[0].text
    replies = await farmer.say(await texted_code(db, PHONE))
    assert "138****5678 绑定成功" in replies[0].text


async def test_the_enrollment_phone_step_proves_the_number_by_its_code(
    chat_client: httpx.AsyncClient, db: Database
) -> None:
    """The form's phone step texts a code for any number (a held one would have joined the holder's
    person before); a wrong code keeps the question, "back" lets a mistyped number be fixed, the right
    code binds the chat and the form goes on with its answers kept."""
    owner = ChatUser(chat_client, "owner-6")
    await bind_by_code(owner, db)
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    other = ChatUser(chat_client, "other-6")
    await other.say("/start")
    await other.tap("我要投保")
    await other.tap("农户投保")
    await other.tap("水稻")
    await other.tap("普通农户")
    await other.say("李四")
    await other.say(VALID_ID)
    replies = await other.share_contact(PHONE)
    assert "已通过短信发送到 138****5678" in replies[-1].text, other.text()
    taken = await identity_of(db, other.chat_id)
    assert taken.person_id is None and taken.phone is None
    code = await texted_code(db, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    replies = await other.say(wrong)
    assert "验证码不对" in replies[0].text and (await identity_of(db, other.chat_id)).person_id is None
    replies = await other.say(code)
    assert "亩" in other.text(), other.text()  # the next question: how many mu
    joined, holder = await identity_of(db, other.chat_id), await identity_of(db, owner.chat_id)
    assert joined.person_id == holder.person_id and joined.phone_verified_at is not None


async def test_back_from_the_forms_code_asks_for_the_number_again(farmer: ChatUser, db: Database) -> None:
    await farmer.say("/start")
    await farmer.tap("我要投保")
    await farmer.tap("农户投保")
    await farmer.tap("水稻")
    await farmer.tap("普通农户")
    await farmer.say("李四")
    await farmer.say(VALID_ID)
    await farmer.say("13900001111")  # typed, and wrong
    assert "139****1111" in farmer.text()
    replies = await farmer.tap("上一步")
    assert replies[0].keyboard and replies[0].keyboard[0][0]["request_contact"], farmer.text()
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    await farmer.share_proved_contact(PHONE)
    assert "亩" in farmer.text(), farmer.text()
    assert (await identity_of(db, farmer.chat_id)).phone == PHONE


async def test_a_typed_number_never_joins_a_person_no_chat_holds(farmer: ChatUser, db: Database) -> None:
    """The hole: a farmer on file with no chat at all (enrolled by an agent) was joined by any web chat that
    typed their number, and that chat saw their policies. Now it takes the code."""
    async with db.session() as session:
        session.add(Person(phone=PHONE, name="李四"))
        await session.commit()
    await farmer.say("/start")
    replies = await farmer.share_contact(PHONE)
    assert "已通过短信发送到 138****5678" in replies[0].text
    assert (await identity_of(db, farmer.chat_id)).person_id is None
    assert "绑定成功" in (await farmer.say(await texted_code(db, PHONE)))[0].text
    async with db.session() as session:
        person = (await session.exec(select(Person).where(Person.phone == PHONE))).one()
    assert (await identity_of(db, farmer.chat_id)).person_id == person.id


async def test_a_policy_issued_after_the_chat_blocked_us_is_texted_with_its_link(
    chat_client: httpx.AsyncClient, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    """Policy notices choose the channel that reaches the person, as claim notices do: the chat that
    applied has blocked us by the time the premium is paid, so the e-policy's notice goes by text with
    a link that opens the policy in the farmer's verified chat."""
    farmer = ChatUser(chat_client, "policy-sms")
    await bind_by_code(farmer, db)
    headers = {**service_headers, "X-Tianbao-Identity": f"webchat:{farmer.chat_id}"}
    application = await api.post("/api/bot/applications", headers=headers, json=farmer_application())
    assert application.status_code == 200, application.text
    async with db.session() as session:
        chat = await session.get(ChatIdentity, (await identity_of(db, farmer.chat_id)).id)
        assert chat is not None
        chat.stopped_at = utcnow()
        await session.commit()
    paid = await api.post(
        f"/api/bot/applications/{application.json()['id']}/payments",
        headers=headers,
        json={"provider": "demo"},
    )
    policy = paid.json()["policy"]
    text = await latest_text(db, PHONE, "notice")
    assert policy["number"] in text and "已生效" in text
    async with db.session() as session:
        link = await session.get(SmsLink, await texted_link(db))
        assert link is not None and link.target == f"policy:{policy['id']}"
    replies = await farmer.say(f"/start s_{link.token}")
    assert policy["number"] in farmer.text(), [r.text for r in replies]

"""Conversations through the web chat harness: /start, menu, help, language, phone binding, fallback."""

from __future__ import annotations

from datetime import timedelta

import httpx

from backend.db import Database
from tests.harness import ChatUser, age_phone_codes, texted_code


async def test_start_greets_in_chinese_with_menu_buttons(farmer: ChatUser) -> None:
    replies = await farmer.say("/start")
    assert len(replies) == 1
    welcome = replies[0]
    assert "田保" in welcome.text and "王大明" in welcome.text
    labels = welcome.button_texts()
    assert any("帮助" in t for t in labels)
    assert any("绑定手机号" in t for t in labels)
    assert any("Language" in t for t in labels)


async def test_menu_hides_features_not_built(farmer: ChatUser) -> None:
    welcome = (await farmer.say("/start"))[0]
    joined = " ".join(welcome.button_texts())
    assert "我要投保" in joined and "我的保单" in joined and "我要报案" in joined  # built
    assert "本村公示" in joined  # publicity notices (issue 13)
    for not_built in ("回访",):  # callbacks are a later feature
        assert not_built not in joined


async def test_english_telegram_user_gets_english_from_first_message(chat_client: httpx.AsyncClient) -> None:
    user = ChatUser(chat_client, "tourist-1", language_code="en-US", first_name="Ann")
    welcome = (await user.say("/start"))[0]
    assert "Hello, Ann" in welcome.text
    assert any("Help" in t for t in welcome.button_texts())


async def test_help_button_and_command(farmer: ChatUser) -> None:
    await farmer.say("/start")
    replies = await farmer.tap("帮助")
    assert "使用帮助" in replies[0].text and "/language" in replies[0].text
    replies = await farmer.say("/help")
    assert "使用帮助" in replies[0].text
    replies = await farmer.tap("主菜单")
    assert "请选择要办的事" in replies[0].text


async def test_language_switch_to_english_and_back(farmer: ChatUser) -> None:
    await farmer.say("/start")
    choice = (await farmer.say("/language"))[0]
    assert choice.button_texts() == ["中文", "English"]
    replies = await farmer.tap("English")
    assert "Language set to English" in replies[0].text
    # The choice sticks over the Telegram client's own language on the next /start.
    replies = await farmer.say("/start")
    assert "Hello" in replies[0].text
    await farmer.say("/language")
    replies = await farmer.tap("中文")
    assert "已切换为中文" in replies[0].text


async def test_phone_binding_by_contact_button(farmer: ChatUser, db: Database) -> None:
    """Web chat: the number from the contact button is proved by the SMS code before it is bound."""
    await farmer.say("/start")
    prompt = (await farmer.tap("绑定手机号"))[0]
    assert prompt.keyboard is not None
    assert prompt.keyboard[0][0]["request_contact"] is True
    replies = await farmer.share_contact("+86 138-1234-5678")
    assert "验证码已通过短信发送到 138****5678" in replies[0].text
    replies = await farmer.say(await texted_code(db, "13812345678"))
    assert "138****5678" in replies[0].text and "绑定成功" in replies[0].text
    assert replies[0].keyboard == []  # the share-phone keyboard is removed
    menu = replies[-1]
    assert not any("绑定手机号" in t for t in menu.button_texts())
    # The full number is never echoed back.
    assert all("13812345678" not in r.text for r in replies)


async def test_phone_binding_refuses_non_mainland_number_and_keeps_keyboard(farmer: ChatUser) -> None:
    await farmer.say("/start")
    replies = await farmer.share_contact("+1 202 555 0100")
    assert "不是中国大陆手机号" in replies[0].text
    assert replies[0].keyboard and replies[0].keyboard[0][0]["request_contact"]


async def test_cancel_on_reply_keyboard_returns_to_menu(farmer: ChatUser) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    replies = await farmer.say("取消")
    assert "已取消" in replies[0].text and replies[0].keyboard == []
    assert "请选择要办的事" in replies[-1].text


async def test_unknown_text_gets_helpful_answer(farmer: ChatUser) -> None:
    replies = await farmer.say("我想问问")
    assert len(replies) == 1
    assert "转给工作人员" in replies[0].text  # words are for a person (tests/bot/test_insured_messages.py)
    replies = await farmer.say("?!")
    assert len(replies) == 1 and "没看懂" in replies[0].text
    assert replies[0].buttons, "the answer offers the menu"


async def test_unknown_deep_link_payload_shows_menu_and_creates_nothing(farmer: ChatUser) -> None:
    replies = await farmer.say("/start tampered_payload_123")
    assert "无法识别" in replies[0].text
    assert replies[-1].buttons, "the main menu follows"


async def test_stale_button_gets_menu(farmer: ChatUser) -> None:
    await farmer.say("/start")
    response = await farmer.client.post(
        f"/webchat/api/{farmer.chat_id}/messages", json={"callback_data": "gone:button"}
    )
    assert response.status_code == 200
    assert "失效" in response.json()["replies"][0]["text"]


async def test_history_returns_every_bot_message_after_id(farmer: ChatUser) -> None:
    first = (await farmer.say("/start"))[0]
    await farmer.say("/help")
    later = await farmer.history(after=first.id)
    assert [m.id for m in later] == [first.id + 1]
    assert "使用帮助" in later[0].text


async def test_bot_html_reaches_web_chat_as_html_and_user_text_is_escaped(
    chat_client: httpx.AsyncClient,
) -> None:
    user = ChatUser(chat_client, "html-check", first_name="<i>x</i>")
    welcome = (await user.say("/start"))[0]
    assert "<b>田保</b>" in welcome.text
    assert "&lt;i&gt;x&lt;/i&gt;" in welcome.text


async def test_web_chat_without_a_name_is_not_called_by_a_placeholder(chat_client: httpx.AsyncClient) -> None:
    response = await chat_client.post(
        "/webchat/api/anon-1/messages", json={"text": "/start", "language_code": "en"}
    )
    assert response.json()["replies"][0]["text"].startswith("Hello! This is")


async def test_a_number_typed_while_binding_in_web_chat_gets_a_code(farmer: ChatUser, db: Database) -> None:
    """Web chat proves a number by its code, so a typed number is as good as the button's."""
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    replies = await farmer.say("138 1234 5678")
    assert "验证码已通过短信发送到 138****5678" in replies[0].text
    assert "绑定成功" in (await farmer.say(await texted_code(db, "13812345678")))[0].text
    # Bound: typing text is ordinary input again.
    assert "没看懂" in (await farmer.say("13812345678"))[0].text


async def test_typing_something_else_while_binding_points_at_the_button(farmer: ChatUser) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")
    replies = await farmer.say("我的手机")
    assert "不要直接输入号码" in replies[0].text
    assert replies[0].keyboard and replies[0].keyboard[0][0]["request_contact"]


async def test_web_chat_cannot_bind_a_phone_another_account_holds(
    chat_client: httpx.AsyncClient, db: Database
) -> None:
    """Without the code, a web chat never joins the person who holds the number: it is asked for the code,
    in the very words a number nobody holds gets (the answer tells nobody whether a number is on file)."""
    owner = ChatUser(chat_client, "owner-1")
    await owner.say("/start")
    asked_owner = (await owner.share_contact("13812345678"))[0].text
    assert "绑定成功" in (await owner.say(await texted_code(db, "13812345678")))[0].text
    await age_phone_codes(db, timedelta(minutes=1, seconds=1))
    intruder = ChatUser(chat_client, "intruder-1")
    await intruder.say("/start")
    replies = await intruder.share_contact("13812345678")
    assert replies[0].text == asked_owner
    replies = await intruder.say("/start")
    assert any("绑定手机号" in t for t in replies[-1].button_texts()), "still not bound"


async def test_start_leaves_a_half_done_step_and_shows_the_menu(farmer: ChatUser) -> None:
    await farmer.say("/start")
    await farmer.tap("绑定手机号")  # now waiting for the contact card
    assert "田保" in (await farmer.say("/start"))[0].text
    # The wait is over: a typed number is ordinary input again, not a wrong answer to that step.
    assert "没看懂" in (await farmer.say("13812345678"))[0].text

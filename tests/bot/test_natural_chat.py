"""The chat as a farmer uses it: /start always shows the menu (an unfinished form is a reminder beside it),
and typed requests ("我要报案", "理赔进度", "帮助" ...) open their feature at any point, keeping the draft."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from backend.db import Database
from tests.backend.test_claims_reporting import cover_began
from tests.enroll_helpers import insured_in_chat
from tests.harness import ChatUser


@pytest.fixture
async def grower(chat_client: httpx.AsyncClient) -> ChatUser:
    return ChatUser(chat_client, "natural-1", first_name="李四")


async def _half_an_enrollment(user: ChatUser) -> None:
    await user.say("/start")
    await user.tap("我要投保")
    await user.tap("农户投保")
    await user.tap("水稻")
    await user.tap("普通农户")
    replies = await user.say("李四")
    assert "身份证" in replies[-1].text


async def test_start_with_a_half_done_enrollment_shows_the_menu_and_the_draft(grower: ChatUser) -> None:
    await _half_an_enrollment(grower)
    replies = await grower.say("/start")
    menu = " ".join(replies[0].button_texts())
    assert "我要报案" in menu and "我的理赔" in menu and "我要投保" in menu
    assert "没填完" in replies[-1].text
    assert replies[-1].button_texts() == ["▶️ 继续填写", "🗑 不填了"]
    replies = await grower.tap("我的理赔", replies)  # the menu works with a draft waiting
    assert "还没有理赔记录" in replies[-1].text
    await grower.say("/start")
    replies = await grower.tap("继续填写")
    assert "身份证" in replies[-1].text  # exactly where it stopped


async def test_discarding_the_draft_leaves_a_plain_menu(grower: ChatUser) -> None:
    await _half_an_enrollment(grower)
    await grower.say("/start")
    replies = await grower.tap("不填了")
    assert "已取消" in replies[0].text
    replies = await grower.say("/start")
    assert len(replies) == 1 and "没填完" not in replies[0].text


async def test_typing_report_mid_enrollment_opens_the_report_and_keeps_the_draft(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    await insured_in_chat(grower, api, service_headers)
    await _half_an_enrollment(grower)
    replies = await grower.say("我要报案！")
    assert "暴雨" in replies[-1].button_texts()  # the claim form asks for the cause
    replies = await grower.tap("取消")  # the report is given up; the enrollment draft is not
    replies = await grower.say("/start")
    assert "没填完" in replies[-1].text
    replies = await grower.tap("继续填写")
    assert "身份证" in replies[-1].text


async def test_typed_requests_mid_form_answer_and_the_form_goes_on(grower: ChatUser) -> None:
    await _half_an_enrollment(grower)
    replies = await grower.say("理赔进度")
    assert "还没有理赔记录" in replies[-1].text
    replies = await grower.say("帮助")
    assert "使用帮助" in replies[-1].text
    replies = await grower.say("my policies")
    assert "保单" in replies[-1].text
    replies = await grower.say("李")  # the form still waits for the ID number
    assert "身份证" in replies[-1].text


async def test_typed_requests_in_english(chat_client: httpx.AsyncClient) -> None:
    user = ChatUser(chat_client, "natural-en", language_code="en", first_name="Ann")
    await user.say("/start")
    replies = await user.say("Report a loss")
    assert "no policy in force" in replies[-1].text
    replies = await user.say("buy insurance")
    assert any("Farmer" in t for t in replies[-1].button_texts())


async def test_a_loss_reported_as_a_farmer_types_it(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await insured_in_chat(grower, api, service_headers)
    await cover_began(db, timedelta(days=5))  # a policy begins when issued; the loss below is earlier
    await grower.say("报案")
    await grower.tap("暴雨")
    replies = await grower.say("明天上午")
    assert "不能晚于现在" in replies[0].text  # a loss cannot be in the future
    # Day and hour in one go, no hour buttons.
    replies = await grower.say("今天凌晨0点")
    assert "刚刚结束" in " ".join(replies[-1].button_texts())
    await grower.tap("刚刚结束")
    replies = await grower.say("3亩")
    assert "金额" in replies[-1].text
    replies = await grower.say("四千元")
    assert "位置" in replies[-1].text or "跳过" in " ".join(replies[-1].button_texts())
    await grower.tap("跳过")
    await grower.say("村东头大塘边")
    await grower.tap("跳过（以后再补）")
    replies = await grower.tap("是我本人")
    summary = replies[-1].text
    assert "¥4,000.00" in summary and "3" in summary and "00:00" in summary


async def test_r_enr_12_place_search_shows_each_choice_with_its_parents(grower: ChatUser) -> None:
    from tests.bot.test_enroll_farmer import _answer_identity, _finish, _start_farmer_flow

    await _start_farmer_flow(grower, "水稻")
    await _answer_identity(grower)
    replies = await grower.say("10亩")  # the unit typed with the number
    assert "所在地" in replies[-1].text
    replies = await grower.say("朝阳镇")
    towns = [t for t in replies[-1].button_texts() if t.endswith("朝阳镇")]
    assert len(towns) > 4 and len(set(towns)) == len(towns)  # no two alike
    assert "辽宁省 鞍山市 岫岩满族自治县 朝阳镇" in towns
    await grower.tap("鞍山市 岫岩满族自治县 朝阳镇")  # no villages imported there: the township is taken
    await grower.tap("跳过")  # no GPS
    await _finish(grower)
    assert "地点：辽宁省 鞍山市 岫岩满族自治县 朝阳镇" in grower.last[-1].text

"""Broadcasts end to end: staff compose, a second staff member approves (four eyes), it is sent; the
farmer reads it in web chat with the advice for what they insure and taps "收到" (recorded once, the
second tap says so); a farmer with no chat is texted from the approved template with a link that opens
the same message in web chat once the chat proved that number; progress shows the acknowledgement."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlmodel import col, select

from backend.db import Database
from backend.outbox.models import OutboxMessage
from backend.outbox.sms.models import SmsLink
from backend.settings import Settings
from tests.backend.test_claims_workflow import staff_user
from tests.bot.test_sms_verification import bind_by_code
from tests.broadcast_helpers import insured
from tests.enroll_helpers import deliver, insured_in_chat
from tests.harness import ChatUser, Reply

CONTENT: dict[str, Any] = {
    "locales": {
        "zh-CN": {
            "chat": {"text": "台风“海燕”预计明晚登陆，请做好防范。"},
            "sections": {
                "rice": {"text": "水稻：疏通田间排水沟。"},
                "livestock": {"text": "畜禽：转移到高处。"},
            },
        },
        "en": {"chat": {"text": "Typhoon Haiyan lands tomorrow night."}},
    }
}


async def pushed(user: ChatUser, embedded: Any, after: int) -> list[Reply]:
    await deliver(embedded)
    return [m for m in await user.history(after) if m.id > after]


def last_id(replies: list[Reply]) -> int:
    return max((r.id for r in replies), default=0)


async def test_broadcast_with_approval_reaches_web_chat_and_sms_and_is_acknowledged(
    farmer: ChatUser,
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    embedded: Any,
    settings: Settings,
) -> None:
    await insured_in_chat(farmer, api, service_headers, product="rice")  # 东城街道, verified chat
    async with db.session() as session:
        texted, _, _ = await insured(session, product="pig", chat=False)
    before = last_id(await farmer.history())
    writer, _ = await staff_user(api, admin_headers, "bc_chat_writer", "underwriter")
    checker, _ = await staff_user(api, admin_headers, "bc_chat_checker", "adjuster")
    embedded.state.settings.broadcast_approval_threshold = 1  # two people: a second pair of eyes
    api_settings = api._transport.app.state.settings  # type: ignore[attr-defined]
    api_settings.broadcast_approval_threshold = 1
    body = {
        "kind": "warning",
        "content": CONTENT,
        "audience": {"region_codes": ["441900"]},
        "ack_button": True,
    }
    bid = (await api.post("/api/broadcasts", headers=writer, json=body)).json()["id"]
    assert (await api.post(f"/api/broadcasts/{bid}/submit", headers=writer)).json()[
        "status"
    ] == "awaiting_approval"
    assert (await api.post(f"/api/broadcasts/{bid}/approve", headers=writer)).status_code == 403
    assert (await api.post(f"/api/broadcasts/{bid}/approve", headers=checker)).json()["status"] == "approved"
    assert (await api.post(f"/api/broadcasts/{bid}/send", headers=writer)).json()["recipient_count"] == 2

    replies = await pushed(farmer, embedded, before)
    warning = next(r for r in replies if "海燕" in r.text)
    assert "疏通田间排水沟" in warning.text and "转移到高处" not in warning.text  # rice, not livestock
    tapped = await farmer.tap("收到", [warning])
    assert "已收到" in tapped[-1].text
    again = await farmer.tap("收到", [warning])
    assert "已经确认过" in again[-1].text
    progress = (await api.get(f"/api/broadcasts/{bid}/progress", headers=writer)).json()
    assert progress["acked"] == 1 and progress["sent"] + progress["delivered"] == 2
    assert progress["ack_by_region"][0]["rate"] == 0.5

    async with db.session() as session:
        sms = (
            await session.exec(
                select(OutboxMessage).where(
                    col(OutboxMessage.broadcast_id) == bid, col(OutboxMessage.channel) == "sms"
                )
            )
        ).one()
        link = (await session.exec(select(SmsLink).where(col(SmsLink.person_id) == texted.id))).one()
    assert sms.template is not None and sms.template["key"] == "broadcast_warning"
    assert sms.address == f"+86{texted.phone}" and re.search(rf"/s/{link.token}\b", sms.text)
    neighbour = ChatUser(chat_client, "texted-farmer")
    await bind_by_code(neighbour, db, str(texted.phone))
    opened = await neighbour.say(f"/start s_{link.token}")
    shown = next(r for r in opened if "海燕" in r.text)
    assert "转移到高处" in shown.text and "疏通" not in shown.text  # the pig farmer's advice
    late = await neighbour.tap("收到", [shown])  # the text's reader acknowledges in chat too
    assert "已收到" in late[-1].text
    stranger = ChatUser(chat_client, "stranger")
    await stranger.say("/start")
    refused = await stranger.tap("收到", [warning])
    assert "不是发给您的" in refused[-1].text

"""A farmer's own words reach a person: free text no step understood goes to the staff of the farmer's
region, who answer in the same chat (the help and the PDFs say "leave a message in this chat")."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select

from backend.db import Database
from backend.staff.models import AuditLog
from tests.backend.test_campaigns import XICHENG, make_staff
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, deliver, insured_in_chat
from tests.harness import ChatUser

QUESTION = "我家稻子被淹了怎么办"


async def _messages(api: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.get("/api/alerts", params={"kind": "insured_message"}, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_a_farmers_question_reaches_the_staff_of_their_region_who_answer_in_the_chat(
    chat_client: httpx.AsyncClient,
    embedded: Any,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    farmer = ChatUser(chat_client, "asks-staff", first_name="李四")
    await insured_in_chat(farmer, api, service_headers)
    await farmer.say(QUESTION)
    assert "已把您的话转给工作人员" in farmer.text()
    assert "我要报案" in str([r.button_texts() for r in farmer.last])  # the menu stays one tap away

    _, local = await make_staff(api, admin_headers, "adj_msg", "adjuster", [DONGGUAN_TOWNSHIP[:6] + "000000"])
    _, elsewhere = await make_staff(api, admin_headers, "adj_far", "adjuster", [XICHENG])
    [message] = await _messages(api, local)
    assert message["body"] == QUESTION and message["region_code"] == DONGGUAN_TOWNSHIP
    assert await _messages(api, elsewhere) == []  # another county's staff never see it
    refused = await api.post(f"/api/alerts/{message['id']}/reply", json={"text": "x"}, headers=elsewhere)
    assert refused.status_code == 404

    answer = "请先拍几张田里的照片，再点“我要报案”。"
    replied = await api.post(f"/api/alerts/{message['id']}/reply", json={"text": answer}, headers=local)
    assert replied.status_code == 200, replied.text
    assert replied.json()["acknowledged_at"] is not None
    await deliver(embedded)
    history = "\n".join(r.text for r in await farmer.history())
    assert "工作人员回复您的留言" in history and answer in history and QUESTION in history
    async with db.session() as session:
        audit = (await session.exec(select(AuditLog).where(AuditLog.action == "alerts.reply"))).one()
    assert audit.detail["reply"] == answer


async def test_a_resent_message_is_one_message_and_a_reply_needs_an_insureds_message(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    opened = await api.post(
        "/api/bot/identities",
        json={"channel": "webchat", "external_id": "resend", "address": "resend"},
        headers=service_headers,
    )
    assert opened.status_code == 200, opened.text
    headers = {**service_headers, "X-Tianbao-Identity": "webchat:resend"}
    body = {"text": "保费什么时候交", "update_key": "42:7"}
    first = await api.post("/api/bot/messages", json=body, headers=headers)
    again = await api.post("/api/bot/messages", json=body, headers=headers)
    assert first.json() == {"recorded": True} and again.json() == {"recorded": False}
    [message] = await _messages(api, admin_headers)
    assert message["region_code"] == "000000000000"  # no policy yet: national staff answer it
    blank = await api.post(f"/api/alerts/{message['id']}/reply", json={"text": "   "}, headers=admin_headers)
    assert blank.status_code == 422 and blank.json()["detail"]["code"] == "reply_required"


async def test_a_single_character_is_not_sent_to_staff(
    chat_client: httpx.AsyncClient, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    farmer = ChatUser(chat_client, "says-ok")
    await farmer.say("/start")
    await farmer.say("好")
    assert "没看懂" in farmer.text()
    assert await _messages(api, admin_headers) == []

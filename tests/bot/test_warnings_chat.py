"""An official warning end to end: a CAP typhoon alert uploaded by staff, approved, reaches the insured
farmer in web chat (the advice for what they insure, "收到" and "我要报案") and by SMS the one whose chat
blocked us; the farmer acknowledges (counted per region on the broadcast), reports a loss from the
warning's button (the claim carries the warning), and gets the all-clear when the sender cancels it."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import select

from backend.broadcasts.models import BroadcastRecipient
from backend.claims.models import Claim
from backend.db import Database, utcnow
from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity
from tests.backend.test_cap_parsing import cap_xml
from tests.backend.test_cap_warnings import XML, insured, typhoon
from tests.backend.test_claims_reporting import cover_began
from tests.enroll_helpers import deliver, insured_in_chat
from tests.harness import ChatUser, Reply

CANCEL = cap_xml(
    identifier="CN-TEST-1-C",
    sent="2026-12-04T12:00:00+08:00",
    msg_type="Cancel",
    references="gd-weather@cma.cn,CN-TEST-1,2026-12-04T08:00:00+08:00",
    infos="",
)


def _with_button(replies: list[Reply], label: str) -> Reply:
    found = [r for r in replies if any(label in t for t in r.button_texts())]
    assert found, [r.text for r in replies]
    return found[-1]


async def test_a_typhoon_warning_from_upload_to_chat_sms_ack_claim_and_all_clear(
    farmer: ChatUser,
    api: httpx.AsyncClient,
    embedded: object,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
) -> None:
    await insured_in_chat(farmer, api, service_headers)  # rice in 东城街道, 东莞
    await cover_began(db, timedelta(days=5))
    texted, _ = await insured(api, service_headers, "blocked-us", product="pig", quantity="20")
    async with db.session() as session:
        chat = await session.get(ChatIdentity, int(texted["X-Identity-Id"]))
        assert chat is not None
        chat.stopped_at = utcnow()  # blocked the bot: reached by SMS
        session.add(chat)
        await session.commit()

    uploaded = await api.post("/api/warnings", content=typhoon(), headers={**admin_headers, **XML})
    assert uploaded.status_code == 201, uploaded.text
    warning = uploaded.json()["warning"]
    assert warning["state"] == "pending"
    await deliver(embedded)
    assert not any("台风" in r.text for r in await farmer.history())  # nothing before approval
    approved = await api.post(f"/api/warnings/{warning['id']}/approve", headers=admin_headers)
    assert approved.status_code == 200, approved.text
    broadcast_id = approved.json()["broadcast_id"]
    await deliver(embedded)

    history = await farmer.history()
    message = _with_button(history, "收到")
    assert "广东省气象台发布严重台风预警" in message.text and "台风将于今晚登陆" not in message.text
    assert "田里：疏通排水沟" in message.text and "牲畜" not in message.text  # advice for rice only
    assert any("我要报案" in t for t in message.button_texts())
    async with db.session() as session:
        sms = (await session.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms"))).all()
    warning_sms = [m for m in sms if (m.template or {}).get("key") == "cap_warning"]
    assert len(warning_sms) == 1 and "台风" in warning_sms[0].text

    acked = await farmer.tap("收到", [message])
    assert acked, "the tap is answered"
    async with db.session() as session:
        rows = (
            await session.exec(
                select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id)
            )
        ).all()
    assert sorted(r.acked_at is not None for r in rows) == [False, True]  # the farmer, not the texted one
    progress = await api.get(f"/api/broadcasts/{broadcast_id}/progress", headers=admin_headers)
    assert progress.status_code == 200, progress.text
    by_region = {r["region_code"]: r for r in progress.json()["ack_by_region"]}
    assert progress.json()["acked"] == 1
    assert (
        sum(r["acked"] for r in by_region.values()) == 1
        and sum(r["recipients"] for r in by_region.values()) == 2
    )
    await farmer.tap("收到", [message])  # a second tap is harmless
    again = await api.get(f"/api/broadcasts/{broadcast_id}/progress", headers=admin_headers)
    assert again.json()["acked"] == 1

    # "我要报案" under the warning: the claim form, and the claim carries the warning.
    await farmer.tap("我要报案", [message])
    await farmer.tap("台风")
    await farmer.tap("今天")
    await farmer.tap("00:00")
    await farmer.tap("刚刚结束")
    await farmer.say("3")
    await farmer.say("3500")
    await farmer.tap("跳过")
    await farmer.say("村东头大塘边")
    await farmer.tap("跳过")
    await farmer.tap("是我本人")
    replies = await farmer.tap("确认提交")
    assert "报案成功" in replies[-1].text, [r.text for r in replies]
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
    assert claim.warning_id == warning["id"]

    cancelled = await api.post("/api/warnings", content=CANCEL, headers={**admin_headers, **XML})
    assert cancelled.json()["warning"]["all_clear_broadcast_id"] is not None
    await deliver(embedded)
    assert any("已解除台风预警" in r.text for r in await farmer.history())

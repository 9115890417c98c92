"""Disaster events in web chat, end to end: staff turn on an event's green channel and the insured farmer
is told in chat, and their claim shows the shorter document list, the remote survey and pre-payment
(R-DIS-4); staff close the farmer's branch and the farmer is told once that every service continues
online, the help answer says so while it is closed, and the reopening is told too (R-DIS-5)."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import select

from backend.claims.catastrophe.models import DisasterEvent
from backend.claims.models import Claim
from backend.db import Database, utcnow
from backend.people.models import ChatIdentity
from tests.bot.test_sms_verification import bind_by_code
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, deliver, insured_in_chat
from tests.harness import ChatUser, Reply


def plain(replies: list[Reply]) -> str:
    return re.sub(r"<[^>]+>", "", "\n".join(r.text for r in replies))


async def pushed(user: ChatUser, embedded: Any, after: int) -> list[Reply]:
    """What the delivery worker put into the chat since message ``after``."""
    await deliver(embedded)
    return [m for m in await user.history(after) if m.id > after]


async def last_id(user: ChatUser) -> int:
    return max((m.id for m in await user.history()), default=0)


async def claim_in_event(db: Database, user: ChatUser, policy: dict[str, Any]) -> tuple[int, int]:
    """A typhoon event holding a claim of the farmer's policy; returns (event id, claim id)."""
    async with db.session() as session:
        chat = (
            await session.exec(select(ChatIdentity).where(ChatIdentity.external_id == user.chat_id))
        ).one()
        event = DisasterEvent(name="台风“海鸥”", cause="typhoon", started_on=utcnow() - timedelta(days=1))
        session.add(event)
        await session.flush()
        claim = Claim(
            number=f"T{secrets.token_hex(6)}",
            policy_id=policy["id"],
            product_code="rice",
            identity_id=chat.id,
            region_code=DONGGUAN_TOWNSHIP,
            county_code="441900000000",
            insured_name="王大明",
            cause="typhoon",
            loss_started_at=utcnow() - timedelta(hours=20),
            lost_quantity="5",
            unit="mu",
            estimated_amount_fen=300_000,
            reporter_name="王大明",
            reporter_phone="13812345678",
            event_id=event.id,
        )
        session.add(claim)
        await session.commit()
        return event.id or 0, claim.id or 0


async def test_r_dis_4_farmer_is_told_of_the_green_channel_and_the_claim_shows_it(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    embedded: Any,
) -> None:
    farmer = ChatUser(chat_client, "farmer-green")
    await bind_by_code(farmer, db)
    policy = await insured_in_chat(farmer, api, service_headers)
    event_id, claim_id = await claim_in_event(db, farmer, policy)
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        number = claim.number
    before = plain(await farmer.tap(number, await farmer.say("理赔进度")))
    assert number in before and "绿色通道" not in before
    after = await last_id(farmer)
    on = await api.post(f"/api/events/{event_id}/green-channel", headers=admin_headers, json={"on": True})
    assert on.status_code == 200 and on.json()["told"] == 1
    told = plain(await pushed(farmer, embedded, after))
    assert "理赔绿色通道已开通" in told and "无人机" in told
    listed = await farmer.say("理赔进度")
    text = plain(await farmer.tap(number, listed))
    assert "绿色通道" in text and "预付赔款" in text
    assert "受损照片、银行卡（存折）" in text  # the shorter document list
    assert "视频、无人机、卫星" in text  # the remote survey options
    at = (utcnow() + timedelta(hours=2)).isoformat()
    drone = {"at": at, "remote_method": "drone"}
    after = await last_id(farmer)
    scheduled = await api.post(f"/api/claims/{claim_id}/survey-schedule", headers=admin_headers, json=drone)
    assert scheduled.status_code == 200, scheduled.text
    notice = plain(await pushed(farmer, embedded, after))
    assert "无人机远程查勘" in notice and "视频" not in notice and "无需在场等候" in notice
    shown = plain(await farmer.tap(number, await farmer.say("理赔进度")))
    assert "远程查勘方式：无人机" in shown
    # told once: turning it off and on again sends nothing new
    await api.post(f"/api/events/{event_id}/green-channel", headers=admin_headers, json={"on": False})
    after = await last_id(farmer)
    await api.post(f"/api/events/{event_id}/green-channel", headers=admin_headers, json={"on": True})
    assert await pushed(farmer, embedded, after) == []


async def test_r_dis_5_closed_branch_is_told_once_in_chat_and_help_says_service_continues_online(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    embedded: Any,
) -> None:
    farmer = ChatUser(chat_client, "farmer-branch")
    await bind_by_code(farmer, db)
    await insured_in_chat(farmer, api, service_headers)
    assert "暂停营业" not in plain(await farmer.say("帮助"))
    after = await last_id(farmer)
    closed = await api.post(
        f"/api/branches/{DONGGUAN_TOWNSHIP}/close", headers=admin_headers, json={"reason": "台风停电"}
    )
    assert closed.status_code == 201, closed.text
    told = plain(await pushed(farmer, embedded, after))
    assert "暂停营业" in told and "在线办理" in told and "台风停电" in told
    again = await api.post(f"/api/branches/{DONGGUAN_TOWNSHIP}/close", headers=admin_headers, json={})
    assert again.status_code == 422
    after = await last_id(farmer)
    assert await pushed(farmer, embedded, after) == []  # told once
    helped = plain(await farmer.say("帮助"))
    assert "暂停营业" in helped and "照常在线办理" in helped
    helped_cmd = plain(await farmer.say("/help"))
    assert "暂停营业" in helped_cmd
    after = await last_id(farmer)
    reopened = await api.post(f"/api/branches/{DONGGUAN_TOWNSHIP}/reopen", headers=admin_headers)
    assert reopened.status_code == 200
    told = plain(await pushed(farmer, embedded, after))
    assert "恢复营业" in told
    assert "暂停营业" not in plain(await farmer.say("帮助"))

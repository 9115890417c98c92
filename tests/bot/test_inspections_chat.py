"""A safety inspection end to end in web chat (R-LIA-5): an enterprise insured by scanning the QR code; the
insurer proposes a visit, the enterprise asks for another day with its reason, staff propose again and the
enterprise confirms; hazards are recorded, the report's PDF arrives in chat, and the enterprise marks a
hazard fixed with a photo. Old buttons record nothing; another enterprise's inspection opens nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from backend.db import Database, utcnow
from backend.inspections.models import InspectionHazard
from backend.outbox.sms.service import create_link
from backend.people.models import ChatIdentity
from messages import local_date
from tests.backend.test_claims_workflow import staff_user
from tests.bot.test_claims_chat import PNG, send_photo
from tests.bot.test_enroll_enterprise import _answer_survey_and_account, _scan_and_answer_until_survey
from tests.enroll_helpers import create_campaign, deliver
from tests.harness import ChatUser, Reply


@pytest.fixture
async def officer(chat_client: httpx.AsyncClient) -> ChatUser:
    return ChatUser(chat_client, "safety-officer-insp", first_name="张安全")


async def _insured_by_scanning(
    officer: ChatUser, embedded: Any, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    payload = await create_campaign(api, admin, "work_safety_liability")
    await _scan_and_answer_until_survey(officer, payload)
    await _answer_survey_and_account(officer)
    await officer.tap("继续")
    await officer.tap("我已阅读并同意")
    await officer.tap("确认提交")
    await officer.tap("去缴费")
    await deliver(embedded)


async def _pushed(officer: ChatUser, embedded: Any) -> list[Reply]:
    """What the delivery worker put into the chat since the last look."""
    seen = max((r.id for r in await officer.history()), default=0)
    assert await deliver(embedded) >= 1
    pushed = await officer.history(after=seen)
    officer.last = pushed
    return pushed


async def test_r_lia_5_inspection_end_to_end_in_web_chat(
    officer: ChatUser,
    chat_client: httpx.AsyncClient,
    embedded: Any,
    db: Database,
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
) -> None:
    await _insured_by_scanning(officer, embedded, api, admin_headers)
    staff, staff_id = await staff_user(api, admin_headers, "insp_chat_uw", "underwriter", full_name="王检查")
    (row,) = (await api.get("/api/inspections", headers=staff)).json()  # R-LIA-5: the policy's inspection
    path = f"/api/inspections/{row['id']}"
    assigned = await api.post(f"{path}/inspector", headers=staff, json={"staff_user_id": staff_id})
    assert assigned.status_code == 200, assigned.text
    await api.post(
        f"{path}/appointment", headers=staff, json={"at": (utcnow() + timedelta(days=3)).isoformat()}
    )
    (proposal,) = await _pushed(officer, embedded)
    assert "安全隐患排查预约" in proposal.text and "王检查" in proposal.text
    # another day, with the reason and the day
    replies = await officer.tap("另约时间")
    assert "为什么" in replies[-1].text
    replies = await officer.say("忙")  # too short a reason is asked again
    assert "2到500个字" in replies[0].text
    await officer.say("那周设备检修，全厂停产")
    replies = await officer.say("昨天")
    assert "今天以后" in replies[0].text
    day = (local_date(utcnow()) + timedelta(days=9)).isoformat()
    replies = await officer.say(day)
    assert day in replies[-1].text and "重新和您约" in replies[-1].text
    queue = (await api.get("/api/inspections", params={"status": "reschedule"}, headers=staff)).json()
    assert queue[0]["reschedule_reason"] == "那周设备检修，全厂停产" and queue[0]["reschedule_day"] == day
    # staff propose again; the old proposal's button records nothing, the new one confirms
    await api.post(
        f"{path}/appointment", headers=staff, json={"at": (utcnow() + timedelta(days=9)).isoformat()}
    )
    (second,) = await _pushed(officer, embedded)
    replies = await officer.tap("确认这个时间", [proposal])
    assert "已经变了" in replies[0].text and "待您确认时间" in replies[-1].text
    replies = await officer.tap("确认这个时间", [second])
    assert "已确认" in replies[-1].text
    replies = await officer.tap("确认这个时间", [second])  # a second tap
    assert "已经变了或已处理过" in replies[0].text and "已约好时间" in replies[-1].text
    # on site: two hazards, one with a photo; then the report
    for description, severity in (("配电箱未上锁", "major"), ("消防通道堆放杂物", "general")):
        recorded = await api.post(
            f"{path}/hazards",
            headers=staff,
            data={
                "description": description,
                "severity": severity,
                "advice": "立即整改",
                "rectify_by": (utcnow() + timedelta(days=15)).isoformat(),
            },
            files={"file": ("h.png", PNG, "image/png")} if severity == "major" else None,
        )
        assert recorded.status_code == 201, recorded.text
    done = await api.post(f"{path}/complete", headers=staff, json={"summary": "配电和消防管理需加强"})
    assert done.status_code == 200 and done.json()["report_channel"] == "chat", done.text
    pushed = await _pushed(officer, embedded)
    report = next(m for m in pushed if m.document)
    assert "安全隐患排查报告" in report.text and "配电箱未上锁" in report.text and "重大隐患" in report.text
    download = await chat_client.get((report.document or {})["url"])
    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    assert report.button_texts() == ["📷 第1项已整改，拍照反馈", "📷 第2项已整改，拍照反馈"]
    # the enterprise fixes the first one and sends a photo
    replies = await officer.tap("第1项已整改", [report])
    assert "拍一张整改后的照片" in replies[-1].text
    replies = await officer.say("已经修好了")  # words are not a photo
    assert "拍一张" in replies[0].text
    replies = await send_photo(officer)
    assert "已记为“已整改”" in replies[0].text
    assert (
        "配电箱未上锁（重大隐患，已整改" in replies[-1].text
        and "消防通道堆放杂物（一般隐患，待整改" in replies[-1].text
    )
    assert replies[-1].button_texts()[0] == "📷 第2项已整改，拍照反馈"
    async with db.session() as session:
        fixed = (await session.exec(select(InspectionHazard).where(InspectionHazard.status == "fixed"))).one()
    assert fixed.description == "配电箱未上锁" and fixed.fixed_photo_document_id is not None
    view = (await api.get(path, headers=staff)).json()
    photo = await api.get(f"/api/documents/{view['hazards'][0]['fixed_photo_document_id']}", headers=staff)
    assert photo.status_code == 200 and photo.content == PNG


async def test_another_enterprise_chat_opens_nothing_and_a_texted_link_opens_it_for_its_own(
    officer: ChatUser,
    chat_client: httpx.AsyncClient,
    embedded: Any,
    db: Database,
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
) -> None:
    await _insured_by_scanning(officer, embedded, api, admin_headers)
    staff, _ = await staff_user(api, admin_headers, "insp_chat_uw2", "underwriter")
    (row,) = (await api.get("/api/inspections", headers=staff)).json()
    await api.post(
        f"/api/inspections/{row['id']}/inspector", headers=staff, json={"team_name": "安评技术服务队"}
    )
    await api.post(
        f"/api/inspections/{row['id']}/appointment",
        headers=staff,
        json={"at": (utcnow() + timedelta(days=3)).isoformat()},
    )
    (proposal,) = await _pushed(officer, embedded)
    stranger = ChatUser(chat_client, "another-enterprise", first_name="李")
    await stranger.say("/start")
    replies = await stranger.tap("确认这个时间", [proposal])  # a forwarded or guessed button
    assert "没有找到这次隐患排查" in replies[-1].text
    view = (await api.get(f"/api/inspections/{row['id']}", headers=staff)).json()
    assert view["status"] == "proposed" and view["confirmed_at"] is None
    # a text's link opens the inspection in the enterprise's own chat only
    async with db.session() as session:
        chat = (
            await session.exec(select(ChatIdentity).where(ChatIdentity.external_id == officer.chat_id))
        ).one()
        assert chat.person_id is not None
        link = await create_link(
            session=session, days=30, person_id=chat.person_id, target=f"inspection:{row['id']}"
        )
        await session.commit()
    elsewhere = await stranger.say(f"/start s_{link}")
    assert all("安全隐患排查" not in r.text for r in elsewhere)
    opened = await officer.say(f"/start s_{link}")
    assert "安全隐患排查" in opened[-1].text and "待您确认时间" in opened[-1].text
    replies = await officer.tap("确认这个时间", opened)
    assert "已确认" in replies[-1].text

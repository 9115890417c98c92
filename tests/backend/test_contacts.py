"""Issue 10 item 7: a notice that sends the farmer to a person names the campaign's agent, with a number."""

from __future__ import annotations

import secrets

import httpx
from sqlmodel import select

from backend.db import Database
from backend.enrollment import verification
from backend.enrollment.models import Application
from backend.outbox.models import OutboxMessage
from backend.staff.models import Role, StaffUser
from messages import label
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, VALID_ID
from tests.harness import ChatUser


async def _application(user: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str]) -> int:
    await user.say("/start")
    await user.share_proved_contact("13812345678")
    headers = {**service_headers, "X-Tianbao-Identity": f"webchat:{user.chat_id}"}
    body = {
        "idempotency_key": secrets.token_urlsafe(12),
        "product_code": "rice",
        "region_code": DONGGUAN_TOWNSHIP,
        "quantity": "100",  # 100 mu and more: on-site verification first (R-ENR-7)
        "disclosure_version": "2026.1",
        "disclosure_read": True,
        "signer": {"role": "insured"},
        "farmer": {
            "insured_type": "farmer",
            "name": "李四",
            "id_number": VALID_ID,
            "phone": "13812345678",
            "bank_name": "农业银行",
            "bank_account": "6228480012345678901",
        },
    }
    response = await api.post("/api/bot/applications", headers=headers, json=body)
    assert response.status_code == 200, response.text
    application_id: int = response.json()["id"]
    return application_id


async def _verification_notice(db: Database, application_id: int, agent_id: int | None) -> str:
    async with db.session() as session:
        application = await session.get(Application, application_id)
        assert application is not None and application.status == "pending_verification"
        application.agent_id = agent_id
        await verification._notify_verified(session, application, False)
        await session.commit()
        query = select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"application-{application_id}-verified"
        )
        return (await session.exec(query)).one().text


async def test_a_failed_verification_names_the_campaigns_agent_and_phone(
    farmer: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    async with db.session() as session:
        agent = StaffUser(
            username="agent-zhang", password_hash="x", full_name="张业务", role=Role.AGENT.value
        )
        agent.phone = "13900001111"
        session.add(agent)
        await session.commit()
        await session.refresh(agent)
    text = await _verification_notice(db, await _application(farmer, api, service_headers), agent.id)
    assert "张业务" in text and "13900001111" in text


async def test_without_an_agent_the_notice_points_to_this_chat(
    farmer: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    text = await _verification_notice(db, await _application(farmer, api, service_headers), None)
    assert label("common.contact_chat", "zh-CN") in text and "业务员" not in text

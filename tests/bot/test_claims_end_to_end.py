"""The whole path: report in web chat, survey by the adjuster through the API, settlement, the farmer's
confirmation in chat (R-CLM-14), payment to the insured's own account (R-CLM-12), every step pushed."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import select

from backend.claims.models import Claim
from backend.db import Database, utcnow
from tests.backend.test_claims_reporting import cover_began
from tests.backend.test_enrollment_api import signed_form
from tests.bot.test_claims_chat import send_photo
from tests.conftest import login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, deliver, insured_in_chat
from tests.harness import ChatUser, Reply


async def test_claim_from_report_to_money_in_the_account(
    chat_client: httpx.AsyncClient,
    embedded,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    farmer = ChatUser(chat_client, "farmer-e2e", first_name="李四")
    await insured_in_chat(farmer, api, service_headers)
    await cover_began(db, timedelta(days=5))  # the loss below (today 00:00) lies inside the cover
    await farmer.say("/start")
    await farmer.tap("我要报案")
    await farmer.tap("洪水")
    await farmer.tap("今天")
    await farmer.tap("00:00")
    await farmer.tap("刚刚结束")
    await farmer.say("4")
    await farmer.say("4000")
    await farmer.tap("跳过")
    await farmer.say("河边田")
    await send_photo(farmer)
    await farmer.tap("照片发完了")
    await farmer.tap("是我本人")
    await farmer.tap("确认提交")
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()

    adjuster = {
        "username": "adj_dg",
        "password": "adjuster-pass-1",
        "role": "adjuster",
        "region_codes": ["441900000000"],
    }
    adjuster_id = (await api.post("/api/staff/users", json=adjuster, headers=admin_headers)).json()["id"]
    staff = await login(api, "adj_dg", "adjuster-pass-1")
    signed_record = await signed_form(api, staff)  # the photo of the sampling record the farmer signed
    steps = [
        ("assign", {"adjuster_id": adjuster_id}, admin_headers),
        ("survey-schedule", {"at": (utcnow() + timedelta(hours=2)).isoformat()}, staff),
        (
            "survey-report",
            {
                "loss": "4 亩水稻倒伏淹水",
                "cause": "洪水",
                "covered": True,
                "surveyors": ["赵查勘", "钱查勘"],
                "loss_degree": "medium",
                "loss_villages": [{"village_code": DONGGUAN_TOWNSHIP, "loss_classes": ["medium"]}],
                "samplers": ["赵查勘", "钱查勘"],
                "sampling_signer": {"role": "insured", "signed_record_document_id": signed_record},
                "sampling": [
                    {
                        "village_code": DONGGUAN_TOWNSHIP,
                        "loss_class": "medium",
                        "place": "河边田",
                        "method": "random",
                        "sample_size": 50,
                        "lost_count": 20,
                        "loss_degree": "40%",
                    }
                ],
            },
            staff,
        ),
        ("assess", {"amount_fen": 160000}, staff),
    ]
    for path, body, headers in steps:
        response = await api.post(f"/api/claims/{claim.id}/{path}", headers=headers, json=body)
        assert response.status_code == 200, (path, response.text)
    await deliver(embedded)
    pushed = await farmer.history()
    assessed = next(m for m in reversed(pushed) if any("确认" in t for t in _labels(m)))
    assert "1,600.00" in assessed.text or "1600" in assessed.text
    replies = await farmer.tap("确认", [assessed])
    assert "10 日内" in replies[-1].text
    paid = await api.post(
        f"/api/claims/{claim.id}/payment", headers=admin_headers, json={"reference": "TRF-2026-1"}
    )
    assert paid.status_code == 200, paid.text
    await deliver(embedded)
    last = (await farmer.history())[-1].text
    assert "6228" in last and "8901" in last and "6228480012345678901" not in last
    async with db.session() as session:
        done = (await session.exec(select(Claim))).one()
    assert done.status == "paid" and done.paid_amount_fen == 160000
    assert done.payment_due_at is not None and done.agreed_at is not None
    assert done.payment_due_at - done.agreed_at == timedelta(days=10)  # R-CLM-13
    timeline = (
        await api.get(
            f"/api/bot/claims/{claim.id}",
            headers={**service_headers, "X-Tianbao-Identity": f"webchat:{farmer.chat_id}"},
        )
    ).json()["timeline"]
    kinds = [e["kind"] for e in timeline]
    for expected in ("reported", "survey_scheduled", "surveyed", "assessed", "agreed", "paid"):
        assert expected in kinds, kinds


def _labels(message: Reply) -> list[str]:
    return [b["text"] for row in message.buttons for b in row]

"""A household of a collective policy in web chat (R-CLM-12, R-CLM-14): after proving its number, "my
policies" shows its own row (its voucher, no endorsement), and "report a loss" takes its own row, bounded by
its own 10 mu; the claim is the household's. An unverified chat on the same number sees nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import select

from backend.claims.models import Claim
from backend.db import Database
from backend.enrollment.collective.models import PolicyHousehold
from tests.backend.test_claims_reporting import cover_began
from tests.backend.test_household_claims import PHONE_1, issued_collective
from tests.bot.test_claims_chat import _report_rice_loss
from tests.bot.test_sms_verification import bind_by_code
from tests.harness import ChatUser


async def test_r_clm_12_a_household_reports_its_own_loss_in_web_chat(
    chat_client: httpx.AsyncClient, api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    policy_id = await issued_collective(api, admin_headers)
    await cover_began(db, timedelta(days=5), policy_id)
    async with db.session() as session:
        row = (await session.exec(select(PolicyHousehold).where(PolicyHousehold.phone == PHONE_1))).one()

    unproved = ChatUser(chat_client, "hh-unproved", first_name="王")
    await unproved.say("/start")
    replies = await unproved.tap("我要报案")
    assert "还没有有效保单" in replies[-1].text, unproved.text()  # no proved number: no cover to report on

    farmer = ChatUser(chat_client, "hh-chat-1", first_name="李四")
    await bind_by_code(farmer, db, PHONE_1)
    await farmer.say("/start")
    listed = await farmer.tap("我的保单")
    assert any(row.name in text for text in listed[-1].button_texts()), farmer.text()
    detail = await farmer.tap(row.name)
    assert "分户凭证" in " ".join(detail[-1].button_texts()), farmer.text()
    assert not any("批改" in text for text in detail[-1].button_texts())  # changed by a new list only

    replies = await _report_rice_loss(farmer)
    assert "报案成功" in replies[-1].text, farmer.text()
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
    assert claim.household_id == row.id and claim.insured_name == row.name and claim.policy_id == policy_id

"""Scan-to-insure for enterprises (R-LIA-1..5, R-ENR-3, R-ENR-4, R-ENR-9, R-ENR-10), end to end in web chat."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from backend.db import Database
from backend.enrollment.models import Application, Document, Policy
from backend.inspections.models import Inspection
from tests.backend.test_claims_reporting import cover_began
from tests.enroll_helpers import VALID_CREDIT_CODE, create_campaign, deliver, walk_region
from tests.harness import ChatUser


@pytest.fixture
async def officer(chat_client: httpx.AsyncClient) -> ChatUser:
    return ChatUser(chat_client, "safety-officer-1", first_name="张安全")


async def _scan_and_answer_until_survey(officer: ChatUser, payload: str) -> None:
    replies = await officer.say(f"/start {payload}")
    assert "安全生产责任保险" in replies[0].text
    assert "企业全称" in replies[-1].text
    await officer.say(COMPANY)
    replies = await officer.say("91350100M000100Y4A")  # a wrong check character
    assert "校验码不对" in replies[0].text and "统一社会信用代码" in replies[-1].text
    await officer.say(VALID_CREDIT_CODE)
    await officer.say("李建国")
    await officer.share_proved_contact("+8613912345678")
    await walk_region(officer, "广东省", "东莞市", "东城街道")
    await officer.say("东城大道 88 号")
    await officer.tap("机械")
    await officer.say("120")
    await officer.tap("没有发生")


COMPANY = "东莞市安泰机械制造有限公司"
ACCOUNT = "44050188000012345678"


async def _answer_survey_and_account(officer: ChatUser, answer: str = "是") -> None:
    """R-LIA-4: every survey question answered by a tap; then the account claims will be paid to."""
    for _ in range(30):
        if "安全风险调查" not in officer.last[-1].text:
            break
        await officer.tap(answer)
    assert "理赔款" in officer.last[-1].text  # the chat says what the account is for
    await officer.tap("工商银行")
    assert COMPANY in officer.last[-1].text  # the account name must be the company's
    await officer.say(COMPANY.replace("有限公司", "（有限公司）").replace("东莞市", ""))
    assert "不一致" in officer.last[0].text and "户名" in officer.last[-1].text  # asked again
    await officer.say(f" {COMPANY} ")
    await officer.say(ACCOUNT)


async def test_r_lia_3_scan_to_insure_enterprise_from_qr_to_pdf(
    officer: ChatUser, embedded, db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    payload = await create_campaign(api, admin_headers, "work_safety_liability")
    await _scan_and_answer_until_survey(officer, payload)
    await _answer_survey_and_account(officer)
    quote = officer.last[-1].text
    assert "行业基准费率" in quote and "浮动系数" in quote and "费率下浮" in quote  # R-LIA-2
    replies = await officer.tap("继续")
    assert "投保须知" in replies[-1].text and "除外责任" in replies[-1].text  # R-ENR-4
    replies = await officer.tap("我已阅读并同意")
    assert "请核对投保信息" in replies[-1].text and VALID_CREDIT_CODE in replies[-1].text
    assert "工商银行" in replies[-1].text and ACCOUNT[-4:] in replies[-1].text
    assert ACCOUNT not in replies[-1].text  # masked on screen
    replies = await officer.tap("确认提交")
    assert "已提交" in officer.text() and "去缴费" in " ".join(replies[-1].button_texts())
    replies = await officer.tap("去缴费")
    assert "演示保单" in replies[-1].text and "不产生保险保障" in replies[-1].text
    assert await deliver(embedded) >= 1
    pushed = await officer.history(after=replies[-1].id)
    pdf_message = next(m for m in pushed if m.document)
    assert "已出单" in pdf_message.text
    download = await officer.client.get((pdf_message.document or {})["url"])
    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    async with db.session() as session:
        policy = (await session.exec(select(Policy))).one()
        inspection = (await session.exec(select(Inspection))).one()  # R-LIA-5: one inspection due
        document = (await session.exec(select(Document).where(Document.kind == "e_policy"))).one()
    assert inspection.policy_id == policy.id and inspection.status == "due"
    assert len(document.sha256) == 64
    # Claims payment finds the enterprise's account where it finds a farmer's: on the policy's terms.
    assert policy.insured_name == COMPANY
    assert (policy.terms["bank_name"], policy.terms["bank_account"]) == ("工商银行", ACCOUNT)


async def test_enterprise_back_and_cancel_keep_or_clear_answers(
    officer: ChatUser, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    payload = await create_campaign(api, admin_headers, "work_safety_liability")
    await officer.say(f"/start {payload}")
    await officer.say("东莞市安泰机械制造有限公司")
    replies = await officer.tap("上一步")
    assert "企业全称" in replies[-1].text
    await officer.say("东莞市新名字有限公司")
    replies = await officer.say(VALID_CREDIT_CODE)
    assert "法定代表人" in replies[-1].text
    replies = await officer.tap("取消")
    assert "已取消" in officer.text()
    replies = await officer.say("李建国")  # no form any more: ordinary input
    assert "转给工作人员" in replies[0].text  # not an answer to a form: a message for staff


async def test_double_confirm_creates_one_application(
    officer: ChatUser, db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    payload = await create_campaign(api, admin_headers, "work_safety_liability")
    await _scan_and_answer_until_survey(officer, payload)
    await _answer_survey_and_account(officer, "否")
    await officer.tap("继续")
    await officer.tap("我已阅读并同意")
    summary = officer.last[-1]
    confirm = summary.button("确认提交")
    first = await officer.client.post(
        f"/webchat/api/{officer.chat_id}/messages",
        json={"callback_data": confirm["callback_data"], "message_id": summary.id},
    )
    second = await officer.client.post(
        f"/webchat/api/{officer.chat_id}/messages",
        json={"callback_data": confirm["callback_data"], "message_id": summary.id},
    )
    assert first.status_code == second.status_code == 200
    async with db.session() as session:
        assert len((await session.exec(select(Application))).all()) == 1


async def test_tampered_qr_payload_creates_nothing(officer: ChatUser, db: Database) -> None:
    replies = await officer.say("/start q1_AAAAAAAAAAAAAAAAAAAAAAAA")
    assert "无法识别" in replies[0].text
    assert replies[-1].buttons, "the main menu follows"
    async with db.session() as session:
        assert (await session.exec(select(Application))).all() == []


async def test_an_enterprise_enrolled_in_chat_is_paid_for_an_accident_into_its_own_account(
    officer: ChatUser, embedded, db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Item 5: the account asked at enrollment is the one staff pay a liability claim into."""
    from backend.claims import workflow
    from backend.claims.models import Claim, ClaimPayment
    from tests.backend.test_claims_workflow import staff_user, survey_body

    payload = await create_campaign(api, admin_headers, "work_safety_liability")
    await _scan_and_answer_until_survey(officer, payload)
    await _answer_survey_and_account(officer)
    await officer.tap("继续")
    await officer.tap("我已阅读并同意")
    await officer.tap("确认提交")
    await officer.tap("去缴费")
    await cover_began(db, timedelta(days=5))  # a policy begins when issued; the accident below is earlier
    await officer.say("/start")
    await officer.tap("我要报案")
    await officer.tap("今天")
    await officer.tap("00:00")
    await officer.say("1")
    await officer.say("0")
    await officer.say("车间冲压机伤手，已送医院")
    await officer.tap("跳过")
    await officer.say("二号车间")
    await officer.tap("跳过（以后再补）")
    await officer.say("王五")
    await officer.share_proved_contact("+8613912345678")
    assert "报案成功" in (await officer.tap("确认提交"))[-1].text
    adjuster, _ = await staff_user(api, admin_headers, "adj_ent", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_ent", "underwriter")
    async with db.session() as session:
        claim_id = (await session.exec(select(Claim.id))).one()
    base = f"/api/claims/{claim_id}"
    body = survey_body(loss="冲压机伤手，一人受伤", cause="机械伤害")
    assert (await api.post(f"{base}/survey-report", headers=adjuster, json=body)).status_code == 200
    assert (
        await api.post(f"{base}/assess", headers=adjuster, json={"amount_fen": 800000})
    ).status_code == 200
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        await workflow.confirm_settlement(
            session, claim, {"role": "insured", "identity_id": claim.identity_id}
        )
        await session.commit()
    paid = await api.post(f"{base}/payment", headers=underwriter, json={"reference": "TRF-ENT-1"})
    assert paid.status_code == 200, paid.text  # no account_required: the account is on file
    async with db.session() as session:
        payment = (await session.exec(select(ClaimPayment))).one()
    assert (payment.payee_name, payment.bank_name, payment.account_number) == (COMPANY, "工商银行", ACCOUNT)
    assert payment.payee_is_insured

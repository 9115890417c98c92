"""R-LIA-6 accident quick report: the operations centre and the safety authority are told at once through
the outbox, and staff record pre-payments (先行垫付) of compensation, rescue and medical costs, deducted from
the settlement."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from backend.claims import workflow
from backend.claims.models import Claim
from backend.db import Database, utcnow
from backend.enrollment.models import Policy
from backend.outbox.models import OutboxMessage
from backend.settings import Settings
from tests.backend.test_claims_reporting import cover_began
from tests.backend.test_claims_reporting import paid_policy as farmer_policy
from tests.backend.test_claims_reporting import report as crop_report
from tests.backend.test_claims_workflow import audited, code_of, notices, staff_user, survey_body
from tests.backend.test_enrollment_api import (
    enterprise_application,
    identity,
    industry_code,
    submit,
    survey_answers,
)

OPERATIONS_CENTRE = "-100700800"
HOSPITAL = {
    "payee_name": "东莞市人民医院",
    "payee_kind": "hospital",
    "bank_name": "工商银行",
    "account_number": "2010021109000123456",
}
SAFETY_AUTHORITY = "yjj-dongguan"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The insurer's configured recipients of accident reports."""
    return settings.model_copy(
        update={
            "operations_centre_address": OPERATIONS_CENTRE,
            "safety_authority_channel": "webchat",
            "safety_authority_address": SAFETY_AUTHORITY,
        }
    )


async def enterprise_policy(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> tuple[dict[str, str], dict[str, Any]]:
    headers = await identity(api, service_headers, "lia-6-officer", phone="13912345678")
    body = enterprise_application(await survey_answers(api, service_headers))
    body["enterprise"]["industry_code"] = await industry_code(api, service_headers)
    application = await submit(api, headers, body)
    assert application.status_code == 200, application.text
    paid = await api.post(
        f"/api/bot/applications/{application.json()['id']}/payments",
        headers=headers,
        json={"provider": "demo"},
    )
    assert paid.status_code == 200, paid.text
    policy: dict[str, Any] = paid.json()["policy"]
    await cover_began(db, timedelta(days=30), policy["id"])
    return headers, policy


def accident(policy_id: int) -> dict[str, Any]:
    return {
        "idempotency_key": secrets.token_urlsafe(12),
        "policy_id": policy_id,
        "cause": "accident",
        "loss_started_at": (utcnow() - timedelta(hours=1)).isoformat(),
        "lost_quantity": "0",
        "place_name": "二号车间",
        "reporter_name": "张安全",
        "description": "冲压机伤手，已送医院",
        "injured": 2,
        "dead": 0,
    }


async def accident_notices(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        query = select(OutboxMessage).where(col(OutboxMessage.dedupe_key).contains("-accident-"))
        return list((await session.exec(query.order_by(col(OutboxMessage.address)))).all())


async def test_r_lia_6_an_accident_report_notifies_the_operations_centre_and_the_safety_authority(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    headers, policy = await enterprise_policy(api, service_headers, db)
    reported = await api.post("/api/bot/claims", headers=headers, json=accident(policy["id"]))
    assert reported.status_code == 200, reported.text
    claim = reported.json()
    sent = await accident_notices(db)
    assert [(m.channel, m.address) for m in sent] == [
        ("telegram", OPERATIONS_CENTRE),
        ("webchat", SAFETY_AUTHORITY),
    ]
    for message in sent:
        assert claim["number"] in message.text and policy["number"] in message.text
        assert "受伤：2 人" in message.text and "二号车间" in message.text
    assert "运营中心" in sent[0].text and "安全生产监管部门" in sent[1].text
    # A crop loss tells neither.
    farmer = await identity(api, service_headers, "lia-6-farmer", phone="13800001111")
    rice = await farmer_policy(api, farmer)
    assert (
        await api.post("/api/bot/claims", headers=farmer, json=crop_report(rice["id"]))
    ).status_code == 200
    assert len(await accident_notices(db)) == 2


async def test_r_lia_6_staff_record_pre_payments_deducted_from_the_settlement(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_lia6", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_lia6", "underwriter")
    outsider, _ = await staff_user(api, admin_headers, "uw_lia6bj", "underwriter", regions=("110000000000",))
    headers, policy = await enterprise_policy(api, service_headers, db)
    claim = (await api.post("/api/bot/claims", headers=headers, json=accident(policy["id"]))).json()
    url = f"/api/claims/{claim['id']}/prepayments"
    medical = {
        "kind": "medical",
        "amount_fen": 200000,
        **HOSPITAL,
        "reason": "两名伤者急诊",
    }
    assert (await api.post(url, headers=adjuster, json=medical)).status_code == 403
    assert (await api.post(url, headers=outsider, json=medical)).status_code == 404
    assert code_of(await api.post(url, headers=underwriter, json={**medical, "reason": " "})) == (
        "reason_required"
    )
    made = await api.post(url, headers=underwriter, json=medical)
    assert made.status_code == 201, made.text
    rescue = {
        "kind": "rescue",
        "amount_fen": 50000,
        "payee_name": "东城消防救援站",
        "payee_kind": "rescue_team",
        "bank_name": "建设银行",
        "account_number": "4405 0100 9988 7766 55",
        "reason": "现场抢险",
    }
    shown = (await api.post(url, headers=underwriter, json=rescue)).json()["claim"]
    assert [(p["kind"], p["amount_fen"], p["payee_kind"]) for p in shown["prepayments"]] == [
        ("medical", 200000, "hospital"),
        ("rescue", 50000, "rescue_team"),
    ]
    assert shown["prepayments"][1]["account_masked"] == "4405**********6655"
    assert shown["prepaid_fen"] == 250000
    assert await audited(db, claim["id"]) == ["claims.prepayment", "claims.prepayment"]
    # Only accident claims are pre-paid.
    farmer = await identity(api, service_headers, "lia-6-farmer-2", phone="13800002222")
    rice = await farmer_policy(api, farmer)
    crop = (await api.post("/api/bot/claims", headers=farmer, json=crop_report(rice["id"]))).json()
    refused = await api.post(f"/api/claims/{crop['id']}/prepayments", headers=underwriter, json=medical)
    assert code_of(refused) == "prepayment_liability_only"
    # The settlement includes what was pre-paid; the payment is the rest.
    surveyed = await api.post(
        f"/api/claims/{claim['id']}/survey-report", headers=adjuster, json=survey_body(loss="两人手部受伤")
    )
    assert surveyed.status_code == 200, surveyed.text
    below = await api.post(f"/api/claims/{claim['id']}/assess", headers=adjuster, json={"amount_fen": 100000})
    assert code_of(below) == "amount_below_prepaid"
    assessed = await api.post(
        f"/api/claims/{claim['id']}/assess", headers=adjuster, json={"amount_fen": 800000}
    )
    assert assessed.status_code == 200, assessed.text
    async with db.session() as session:
        row = await session.get(Claim, claim["id"])
        assert row is not None
        await workflow.confirm_settlement(session, row, {"role": "insured"})
        insured = await session.get(Policy, policy["id"])
        assert insured is not None  # the enterprise's account on file (issue 10 item 5 collects it)
        insured.terms = {**insured.terms, "bank_account": "44050100112233445566", "bank_name": "建设银行"}
        session.add(insured)
        await session.commit()
    pay_url = f"/api/claims/{claim['id']}/payment"
    whole = await api.post(pay_url, headers=underwriter, json={"reference": "TRF-L1", "amount_fen": 800000})
    assert code_of(whole) == "amount_mismatch"
    assert whole.json()["detail"]["detail"]["due_fen"] == "550000"
    paid = await api.post(pay_url, headers=underwriter, json={"reference": "TRF-L1"})
    assert paid.status_code == 200, paid.text
    payment = paid.json()["claim"]["payment"]
    assert payment["amount_fen"] == 550000 and payment["prepaid_fen"] == 250000
    assert paid.json()["claim"]["paid_amount_fen"] == 550000
    text = (await notices(db, claim["id"]))["paid"].text
    assert "5,500.00" in text and "2,500.00" in text and "先行垫付" in text


async def _assessed_accident(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    suffix: str,
    amount_fen: int,
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """An accident claim surveyed and assessed at ``amount_fen``; returns it with an adjuster and a payer."""
    adjuster, _ = await staff_user(api, admin_headers, f"adj_{suffix}", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, f"uw_{suffix}", "underwriter")
    headers, policy = await enterprise_policy(api, service_headers, db)
    claim = (await api.post("/api/bot/claims", headers=headers, json=accident(policy["id"]))).json()
    surveyed = await api.post(
        f"/api/claims/{claim['id']}/survey-report", headers=adjuster, json=survey_body(loss="一人手部受伤")
    )
    assert surveyed.status_code == 200, surveyed.text
    assessed = await api.post(
        f"/api/claims/{claim['id']}/assess", headers=adjuster, json={"amount_fen": amount_fen}
    )
    assert assessed.status_code == 200, assessed.text
    return claim, adjuster, underwriter


async def test_r_lia_6_pre_payments_are_capped_at_the_assessed_amount_once_assessed(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    claim, _, underwriter = await _assessed_accident(
        api, service_headers, admin_headers, db, "lia6cap", 300000
    )
    url = f"/api/claims/{claim['id']}/prepayments"
    medical = {"kind": "medical", "amount_fen": 200000, **HOSPITAL, "reason": "急诊"}
    assert (await api.post(url, headers=underwriter, json=medical)).status_code == 201
    over = await api.post(url, headers=underwriter, json={**medical, "amount_fen": 100001})
    assert code_of(over) == "prepayment_exceeds_assessed"
    assert over.json()["detail"]["detail"] == {"assessed_fen": "300000", "prepaid_fen": "200000"}
    async with db.session() as session:  # the household objects: the assessment still bounds them
        row = await session.get(Claim, claim["id"])
        assert row is not None
        await workflow.object_settlement(session, row, "金额太低")
        await session.commit()
    again = await api.post(url, headers=underwriter, json={**medical, "amount_fen": 100001})
    assert code_of(again) == "prepayment_exceeds_assessed"
    assert (
        await api.post(url, headers=underwriter, json={**medical, "amount_fen": 100000})
    ).status_code == 201


async def test_r_lia_6_a_settlement_covered_by_pre_payments_closes_with_nothing_due(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    claim, _, underwriter = await _assessed_accident(
        api, service_headers, admin_headers, db, "lia6zero", 300000
    )
    url = f"/api/claims/{claim['id']}/prepayments"
    medical = {"kind": "medical", "amount_fen": 300000, **HOSPITAL, "reason": "住院"}
    assert (await api.post(url, headers=underwriter, json=medical)).status_code == 201
    async with db.session() as session:
        row = await session.get(Claim, claim["id"])
        assert row is not None
        await workflow.confirm_settlement(session, row, {"role": "insured"})
        await session.commit()
    # No account on file for the enterprise is needed: nothing is transferred.
    pay_url = f"/api/claims/{claim['id']}/payment"
    paid = await api.post(pay_url, headers=underwriter, json={"reference": "JS-0001"})
    assert paid.status_code == 200, paid.text
    shown = paid.json()["claim"]
    assert shown["status"] == "paid" and shown["paid_amount_fen"] == 0
    assert shown["payment"]["amount_fen"] == 0 and shown["payment"]["prepaid_fen"] == 300000
    text = (await notices(db, claim["id"]))["paid"].text
    assert "已结案" in text and "3,000.00" in text and "账户" not in text


async def test_r_clm_12_a_pre_payment_account_goes_through_the_payee_registry(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    """R-LIA-6 pre-payments are deducted from the insured's settlement, so their payee's account is checked
    like a payment's (R-CLM-12): a hospital is fine; a registered village committee's account, another
    insured's account on file or no bank account at all are refused, whatever the payee's name."""
    adjuster, _ = await staff_user(api, admin_headers, "adj_lia6reg", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_lia6reg", "underwriter")
    headers, policy = await enterprise_policy(api, service_headers, db)
    claim = (await api.post("/api/bot/claims", headers=headers, json=accident(policy["id"]))).json()
    farmer = await identity(api, service_headers, "lia-6-reg-farmer", phone="13800003333")
    rice = await farmer_policy(api, farmer)
    village = {
        "account_number": "6228000011117777",
        "kind": "village_committee",
        "holder": "大塘村民委员会",
        "region_code": "441900000000",
    }
    assert (await api.post("/api/payee-accounts", headers=adjuster, json=village)).status_code == 201
    url = f"/api/claims/{claim['id']}/prepayments"
    medical = {"kind": "medical", "amount_fen": 100000, **HOSPITAL, "reason": "急诊"}
    refused = await api.post(
        url, headers=underwriter, json={**medical, "account_number": "6228 0000 1111 7777"}
    )
    assert code_of(refused) == "payee_account_registered"
    async with db.session() as session:
        on_file = await session.get(Policy, rice["id"])
        assert on_file is not None
        other = str(on_file.terms["bank_account"])  # the farmer's own account on file
    assert code_of(await api.post(url, headers=underwriter, json={**medical, "account_number": other})) == (
        "payee_other_insured"
    )
    assert code_of(
        await api.post(url, headers=underwriter, json={**medical, "account_number": "------"})
    ) == ("bank_account_format")
    made = await api.post(url, headers=underwriter, json=medical)
    assert made.status_code == 201, made.text
    [kept] = made.json()["claim"]["prepayments"]
    assert kept["bank_name"] == "工商银行" and kept["account_masked"].endswith("3456")
    assert made.json()["claim"]["prepaid_fen"] == 100000  # the refusals recorded nothing

"""Guards of enrollment that must each be proven by a test that fails without them (R-ENR-3, 7, 9)."""

from __future__ import annotations

import io
import secrets
from typing import Any

import httpx
import pytest
from sqlmodel import select

from backend.enrollment.issuance import issue_policy
from backend.enrollment.models import Application, Payment, PaymentStatus, Policy
from backend.enrollment.service import EnrollmentError
from tests.backend.test_enrollment_api import farmer_application, identity, submit
from tests.conftest import SECRET_KEY
from tests.enroll_helpers import VALID_CREDIT_CODE, resident_id
from tests.images import png

PNG = png()  # a real image: uploads are decoded whole
RECORD = "现场查看，标的与投保信息一致"


async def _photo(api: httpx.AsyncClient, admin_headers: dict[str, str], application_id: int) -> int:
    uploaded = await api.post(
        "/api/documents",
        headers=admin_headers,
        data={"application_id": str(application_id)},
        files={"file": ("site.png", io.BytesIO(PNG), "image/png")},
    )
    assert uploaded.status_code == 201, uploaded.text
    return int(uploaded.json()["id"])


async def _verify(
    api: httpx.AsyncClient, admin_headers: dict[str, str], application_id: int, **evidence: Any
) -> httpx.Response:
    photo = await _photo(api, admin_headers, application_id)
    body = {"record": RECORD, "photo_document_ids": [photo], **evidence}
    return await api.post(
        f"/api/applications/{application_id}/verification", headers=admin_headers, json=body
    )


async def test_r_enr_7_crops_need_land_rights_evidence_to_pass_verification(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-7-land")
    application = (await submit(api, headers, farmer_application(quantity="120"))).json()
    assert application["status"] == "pending_verification"
    refused = await _verify(api, admin_headers, application["id"])
    assert refused.status_code == 422
    assert refused.json()["detail"]["code"] == "land_rights_evidence_missing"
    still = (await api.get(f"/api/applications/{application['id']}", headers=admin_headers)).json()
    assert still["status"] == "pending_verification"  # nothing recorded on a refused verification
    passed = await _verify(
        api, admin_headers, application["id"], land_rights_evidence="土地承包经营权证 No.123"
    )
    assert passed.status_code == 200, passed.text
    assert passed.json()["status"] == "awaiting_payment"


def _cooperative_sows(tags: list[str]) -> dict[str, Any]:
    """A cooperative (an organisation: on-site verification required) insuring sows."""
    body = farmer_application(product_code="sow", quantity=str(len(tags)))
    body["farmer"].update(
        insured_type="organisation", name="东城生猪养殖专业合作社", id_number=VALID_CREDIT_CODE, ear_tags=tags
    )
    return body


@pytest.mark.parametrize(
    "evidence",
    [{}, {"head_count": 2}, {"epidemic_prevention": "猪瘟疫苗 2026-11-20 已免疫"}],
    ids=["none", "no_epidemic_prevention", "no_head_count"],
)
async def test_r_enr_7_livestock_need_head_count_and_epidemic_prevention(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    evidence: dict[str, Any],
) -> None:
    headers = await identity(api, service_headers, "r-enr-7-sows")
    tags = [f"1441900{secrets.randbelow(10**8):08d}" for _ in range(2)]
    application = await submit(api, headers, _cooperative_sows(tags))
    assert application.status_code == 200, application.text
    assert application.json()["status"] == "pending_verification"
    refused = await _verify(api, admin_headers, application.json()["id"], **evidence)
    assert refused.json()["detail"]["code"] == "livestock_evidence_missing"
    complete = {"head_count": 2, "epidemic_prevention": "猪瘟疫苗 2026-11-20 已免疫"}
    passed = await _verify(api, admin_headers, application.json()["id"], **complete)
    assert passed.status_code == 200, passed.text


@pytest.mark.parametrize("status", [PaymentStatus.PENDING, PaymentStatus.FAILED])
async def test_r_enr_9_no_policy_without_a_confirmed_payment(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Any, status: PaymentStatus
) -> None:
    headers = await identity(api, service_headers, f"r-enr-9-{status.value}")
    made = (await submit(api, headers, farmer_application())).json()
    async with db.session() as session:
        application = await session.get(Application, made["id"])
        payment = Payment(
            application_id=made["id"], provider="bank_deduction", amount_fen=made["premium"]["payable_fen"]
        )
        payment.status = status.value
        session.add(payment)
        await session.flush()
        with pytest.raises(EnrollmentError) as refused:
            await issue_policy(session=session, application=application, payment=payment, secret=SECRET_KEY)
        assert refused.value.code == "payment_not_confirmed"
        assert (await session.exec(select(Policy))).all() == []


async def test_r_enr_9_another_applications_payment_does_not_issue_this_one(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Any
) -> None:
    headers = await identity(api, service_headers, "r-enr-9-other")
    first = (await submit(api, headers, farmer_application())).json()
    second = (await submit(api, headers, farmer_application(product_code="corn"))).json()
    async with db.session() as session:
        payment = Payment(
            application_id=first["id"],
            provider="bank_deduction",
            amount_fen=first["premium"]["payable_fen"],
            status=PaymentStatus.CONFIRMED.value,
        )
        session.add(payment)
        await session.flush()
        application = await session.get(Application, second["id"])
        with pytest.raises(EnrollmentError) as refused:
            await issue_policy(session=session, application=application, payment=payment, secret=SECRET_KEY)
        assert refused.value.code == "payment_not_confirmed"


@pytest.mark.parametrize(
    "number",
    [
        "440524188001010014",  # GB 11643's example: 潮阳县 440524, abolished in 1993 (prefecture 4405 known)
        "441900198001010015",  # 东莞: a city without counties
        "11010519491231002X",  # a current county
    ],
)
async def test_r_enr_3_id_numbers_of_known_and_historic_counties_are_accepted(
    api: httpx.AsyncClient, service_headers: dict[str, str], number: str
) -> None:
    headers = await identity(api, service_headers, f"r-enr-3-{number}")
    body = farmer_application()
    body["farmer"]["id_number"] = resident_id(number[:17])
    accepted = await submit(api, headers, body)
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("prefix", ["990101", "119901", "000000"])
async def test_r_enr_3_id_number_of_an_unknown_region_is_refused(
    api: httpx.AsyncClient, service_headers: dict[str, str], prefix: str
) -> None:
    headers = await identity(api, service_headers, f"r-enr-3-bad-{prefix}")
    body = farmer_application()
    body["farmer"]["id_number"] = resident_id(prefix + "19800101001")
    refused = await submit(api, headers, body)
    assert refused.status_code == 422
    assert refused.json()["detail"]["code"] == "id_region"
    assert refused.json()["detail"]["detail"] == {"region": prefix}


async def test_r_lia_2_the_insurers_record_overrides_an_accident_free_answer(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Any
) -> None:
    from datetime import timedelta

    from backend.db import utcnow
    from messages import render
    from tests.backend.test_claims_workflow import make_claim
    from tests.backend.test_enrollment_api import enterprise_application, industry_code, survey_answers

    headers = await identity(api, service_headers, "r-lia-2")
    survey = await survey_answers(api, service_headers)
    industry = await industry_code(api, service_headers)

    def body() -> dict[str, Any]:
        made = enterprise_application(survey)
        made["enterprise"]["industry_code"] = industry
        return made

    first = (await submit(api, headers, body())).json()
    assert first["premium"]["breakdown"]["factor_reason"] == "accident_free"  # nothing on record yet
    policy = (
        await api.post(
            f"/api/bot/applications/{first['id']}/payments", headers=headers, json={"provider": "demo"}
        )
    ).json()["policy"]
    now = utcnow()
    liability = {"kind": "liability", "unit": "person", "lost_quantity": "1", "cause": "machinery"}
    await make_claim(db, policy, headers, reported_at=now - timedelta(days=400), **liability)  # too old
    await make_claim(db, policy, headers, reported_at=now - timedelta(days=10), status="denied", **liability)
    assert (await submit(api, headers, body())).json()["premium"]["breakdown"]["record_overrides"] is False
    await make_claim(db, policy, headers, reported_at=now - timedelta(days=30), **liability)
    renewal = await submit(api, headers, body())  # the enterprise still answers "no accident"
    breakdown = renewal.json()["premium"]["breakdown"]
    assert (
        breakdown["factor_reason"] == "one_accident"
        and breakdown["factor"] != first["premium"]["breakdown"]["factor"]
    )
    assert (
        breakdown["accidents_declared"],
        breakdown["accidents_recorded"],
        breakdown["record_overrides"],
    ) == (
        0,
        1,
        True,
    )
    assert renewal.json()["premium"]["total_fen"] > first["premium"]["total_fen"]
    from backend.enrollment.schemas import ApplicationOut

    told = render(
        "enroll/submitted_pay",
        "zh-CN",
        application=ApplicationOut(**renewal.json()),
        yuan=str,
        liability=True,
    )
    assert "理赔记录" in told and "1 起" in told and "不能下浮" in told

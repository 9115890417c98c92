"""Enrollment rules through the API: what the bot may submit and what staff may do (R-ENR-*, R-LIA-4/5)."""

from __future__ import annotations

import io
import secrets
import zlib
from datetime import timedelta
from typing import Any

import httpx
import pytest

from backend.db import Database, utcnow
from backend.people.models import ChatIdentity, Person
from tests.conftest import login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, VALID_CREDIT_CODE, VALID_ID, own_numbers, resident_id
from tests.images import png

PNG = png()  # a real image: uploads are decoded whole
DEFAULT_PHONE = "13812345678"
ENTERPRISE_PHONE = "13912345678"
# The phone each test identity verified, by its X-Tianbao-Identity header.
BOUND_PHONES: dict[str, str] = {}


async def identity(
    api: httpx.AsyncClient, service_headers: dict[str, str], external_id: str, phone: str | None = None
) -> dict[str, str]:
    """A chat identity with a bound phone (by default one of its own); returns the bot's headers for it.
    A Telegram chat: its contact button proves the number, as web chat's SMS code does
    (tests/bot/test_sms_verification.py)."""
    phone = phone or f"138{zlib.crc32(external_id.encode()) % 10**8:08d}"
    opened = await api.post(
        "/api/bot/identities",
        headers=service_headers,
        json={"channel": "telegram", "external_id": external_id, "address": external_id},
    )
    assert opened.status_code == 200
    headers = {**service_headers, "X-Tianbao-Identity": f"telegram:{external_id}"}
    bound = await api.post("/api/bot/me/phone", headers=headers, json={"phone_number": phone})
    assert bound.status_code == 200
    BOUND_PHONES[headers["X-Tianbao-Identity"]] = phone
    headers["X-Identity-Id"] = str(opened.json()["id"])
    return headers


def farmer_application(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "idempotency_key": secrets.token_urlsafe(12),
        "product_code": "rice",
        "region_code": DONGGUAN_TOWNSHIP,
        "quantity": "10",
        "disclosure_version": "2026.1",
        "disclosure_read": True,
        "signer": {"role": "insured"},
        "farmer": {
            "insured_type": "farmer",
            "name": "李四",
            "id_number": VALID_ID,
            "phone": DEFAULT_PHONE,
            "bank_name": "农业银行",
            "bank_account": "6228480012345678901",
        },
    }
    body.update(overrides)
    return body


def enterprise_application(survey: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "idempotency_key": secrets.token_urlsafe(12),
        "product_code": "work_safety_liability",
        "region_code": DONGGUAN_TOWNSHIP,
        "quantity": "50",
        "disclosure_version": "2026.1",
        "disclosure_read": True,
        "signer": {"role": "insured"},
        "enterprise": {
            "company_name": "东莞安泰机械有限公司",
            "credit_code": VALID_CREDIT_CODE,
            "legal_representative": "李建国",
            "phone": ENTERPRISE_PHONE,
            "address": "东城大道 88 号",
            "industry_code": "machinery",
            "employees": 50,
            "accidents_previous_year": 0,
            "survey": survey,
            "bank_name": "工商银行",
            "account_name": "东莞安泰机械有限公司",
            "bank_account": "44050188000012345678",
        },
    }
    body.update(overrides)
    return body


def own_phone(headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """The farmer who signs as the insured gives the phone of their own account (R-ENR-5), and each account
    its own ID number and credit code (each is bound to one person), unless the test chose others on
    purpose."""
    key = headers.get("X-Tianbao-Identity", "")
    bound = BOUND_PHONES.get(key)
    for answers, default in ((body.get("farmer"), DEFAULT_PHONE), (body.get("enterprise"), ENTERPRISE_PHONE)):
        if answers and bound and answers.get("phone") == default:
            answers["phone"] = bound
    if not bound:
        return body
    own_id, own_code = own_numbers(key)
    farmer, enterprise = body.get("farmer"), body.get("enterprise")
    if farmer and farmer.get("id_number") == VALID_ID:
        farmer["id_number"] = own_id
    if farmer and farmer.get("id_number") == VALID_CREDIT_CODE:  # an organisation
        farmer["id_number"] = own_code
    if enterprise and enterprise.get("credit_code") == VALID_CREDIT_CODE:
        enterprise["credit_code"] = own_code
    return body


async def submit(api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    return await api.post("/api/bot/applications", headers=headers, json=own_phone(headers, body))


async def signed_form(api: httpx.AsyncClient, staff_headers: dict[str, str]) -> int:
    """Staff upload the photo of a paper form signed by the insured (or relative, or authorised person)."""
    uploaded = await api.post(
        "/api/documents",
        headers=staff_headers,
        data={"kind": "signed_form"},
        files={"file": ("form.png", io.BytesIO(PNG), "image/png")},
    )
    assert uploaded.status_code == 201, uploaded.text
    return int(uploaded.json()["id"])


async def survey_answers(api: httpx.AsyncClient, service_headers: dict[str, str]) -> dict[str, str]:
    questions = (await api.get("/api/products/liability/risk-questions", headers=service_headers)).json()
    return {q["code"]: "yes" for q in questions}


async def industry_code(api: httpx.AsyncClient, service_headers: dict[str, str]) -> str:
    industries = (await api.get("/api/products/liability/industries", headers=service_headers)).json()
    return str(next(i["industry_code"] for i in industries if "机械" in i["name_zh"]))


async def test_r_enr_2_fields_are_validated_again_by_the_backend(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-2")
    bad_id = farmer_application()
    bad_id["farmer"]["id_number"] = "110105194912310021"
    refused = await submit(api, headers, bad_id)
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "id_check_character"
    bad_bank = farmer_application()
    bad_bank["farmer"]["bank_account"] = "12ab"
    assert (await submit(api, headers, bad_bank)).json()["detail"]["code"] == "bank_account_format"
    ok = await submit(api, headers, farmer_application())
    assert ok.status_code == 200, ok.text
    premium = ok.json()["premium"]
    assert premium["total_fen"] == 60000 and premium["payable_fen"] == premium["breakdown"]["farmer_fen"]
    assert (
        sum(premium["breakdown"][k] for k in ("central_fen", "provincial_fen", "county_fen", "farmer_fen"))
        == 60000
    )


async def test_r_enr_4_disclosure_must_be_confirmed_for_the_current_version(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-4")
    unread = await submit(api, headers, farmer_application(disclosure_read=False))
    assert unread.json()["detail"]["code"] == "disclosure_not_confirmed"
    outdated = await submit(api, headers, farmer_application(disclosure_version="2025.9"))
    assert outdated.json()["detail"]["code"] == "disclosure_outdated"
    made = (await submit(api, headers, farmer_application())).json()
    detail = (await api.get(f"/api/applications/{made['id']}", headers=admin_headers)).json()
    assert detail["disclosure"]["version"] == "2026.1" and detail["disclosure"]["confirmed_at"]
    assert detail["signer"]["role"] == "insured"  # who confirmed: the bound account of the insured


async def test_r_enr_5_nobody_signs_for_another_without_evidence(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-5")
    relative = await submit(api, headers, farmer_application(signer={"role": "relative", "name": "李小明"}))
    assert relative.json()["detail"]["code"] == "signer_relation_missing"
    authorised = await submit(
        api, headers, farmer_application(signer={"role": "authorised", "name": "王代办"})
    )
    assert authorised.json()["detail"]["code"] == "authorisation_missing"
    upload = await api.post(
        "/api/bot/documents",
        headers=headers,
        data={"kind": "authorisation"},
        files={"file": ("a.png", io.BytesIO(PNG), "image/png")},
    )
    assert upload.status_code == 201
    signed = await submit(
        api,
        headers,
        farmer_application(
            signer={"role": "authorised", "name": "王代办", "authorisation_document_id": upload.json()["id"]}
        ),
    )
    assert signed.status_code == 200
    # Another person's authorisation photo is not evidence for this one.
    other = await identity(api, service_headers, "r-enr-5-other", phone="13900001111")
    stolen = await submit(
        api,
        other,
        farmer_application(
            signer={"role": "authorised", "name": "王代办", "authorisation_document_id": upload.json()["id"]}
        ),
    )
    assert stolen.json()["detail"]["code"] == "authorisation_missing"


async def test_r_enr_1_individual_enrollment_one_policy_per_insured_and_idempotent(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-1")
    body = farmer_application()
    first = (await submit(api, headers, body)).json()
    again = (await submit(api, headers, body)).json()
    assert first["id"] == again["id"]
    paid = await api.post(
        f"/api/bot/applications/{first['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    twice = await api.post(
        f"/api/bot/applications/{first['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    assert paid.json()["policy"]["number"] == twice.json()["policy"]["number"]
    assert len((await api.get("/api/bot/policies", headers=headers)).json()) == 1


async def test_r_enr_9_offline_payment_and_government_letter(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-9")
    application = (await submit(api, headers, farmer_application())).json()
    assert (await api.get("/api/bot/policies", headers=headers)).json() == []
    letter = await api.post(
        f"/api/applications/{application['id']}/offline-payment",
        headers=admin_headers,
        json={"method": "government_letter", "reference": "东农函〔2026〕12号"},
    )
    assert letter.json()["detail"]["code"] == "letter_needs_full_subsidy"  # the farmer pays a share here
    wrong = await api.post(
        f"/api/applications/{application['id']}/offline-payment",
        headers=admin_headers,
        json={"method": "bank_deduction", "reference": "BANK-1", "amount_fen": 1},
    )
    assert wrong.json()["detail"]["code"] == "amount_mismatch"
    paid = await api.post(
        f"/api/applications/{application['id']}/offline-payment",
        headers=admin_headers,
        json={"method": "bank_deduction", "reference": "BANK-2026-0001"},
    )
    assert paid.status_code == 200, paid.text
    policies = (await api.get("/api/bot/policies", headers=headers)).json()
    assert [p["number"] for p in policies] == [paid.json()["number"]]
    audit = (
        await api.get(
            "/api/staff/audit", headers=admin_headers, params={"action": "enrollment.confirm_payment"}
        )
    ).json()
    assert audit and audit[0]["detail"]["reference"] == "BANK-2026-0001"


async def test_r_enr_9_one_bank_transfer_pays_one_application(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    """A transfer reference recorded for one application is refused for another (it was a 500)."""
    first = await identity(api, service_headers, "r-enr-9-ref-1")
    second = await identity(api, service_headers, "r-enr-9-ref-2")
    applications = [(await submit(api, h, farmer_application())).json() for h in (first, second)]
    answers = [
        await api.post(
            f"/api/applications/{a['id']}/offline-payment",
            headers=admin_headers,
            json={"method": "bank_deduction", "reference": "BANK-2026-0042"},
        )
        for a in applications
    ]
    assert answers[0].status_code == 200, answers[0].text
    assert answers[1].status_code == 422 and answers[1].json()["detail"]["code"] == "payment_reference_used"
    assert (await api.get("/api/bot/policies", headers=second)).json() == []


async def test_r_enr_9_demo_payment_refused_when_another_provider_is_configured(
    api: httpx.AsyncClient, service_headers: dict[str, str], app
) -> None:
    headers = await identity(api, service_headers, "r-enr-9-demo")
    application = (await submit(api, headers, farmer_application())).json()
    app.state.settings = app.state.settings.model_copy(update={"payment_provider": "offline"})
    refused = await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    assert refused.json()["detail"]["code"] == "provider_not_available"
    assert (await api.get("/api/bot/policies", headers=headers)).json() == []


async def test_r_lia_4_and_r_lia_5_survey_required_and_inspection_due(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-lia-4")
    survey = await survey_answers(api, service_headers)
    code = await industry_code(api, service_headers)
    partial = dict(list(survey.items())[:-1])
    body = enterprise_application(partial)
    body["enterprise"]["industry_code"] = code
    refused = await submit(api, headers, body)
    assert refused.json()["detail"]["code"] == "risk_survey_incomplete"  # R-LIA-4
    body = enterprise_application(survey)
    body["enterprise"]["industry_code"] = code
    application = (await submit(api, headers, body)).json()
    assert application["status"] == "awaiting_payment"  # R-LIA-3: issued in real time once paid
    paid = await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    assert paid.json()["policy"]["number"].startswith("PL")
    from sqlmodel import select

    from backend.inspections.models import Inspection

    db = api._transport.app.state.db  # type: ignore[attr-defined]
    async with db.session() as session:
        inspection = (await session.exec(select(Inspection))).one()
    assert inspection.status == "due"  # R-LIA-5: at least one hazard inspection after enrollment
    assert timedelta(days=29) < inspection.due_at - utcnow() <= timedelta(days=30)


async def test_enterprise_gives_an_account_in_its_own_name_for_claim_payments(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "enterprise-account")
    survey = await survey_answers(api, service_headers)
    code = await industry_code(api, service_headers)
    missing = enterprise_application(survey)
    del missing["enterprise"]["bank_account"]
    assert (await submit(api, headers, missing)).status_code == 422  # no enterprise without an account
    other = enterprise_application(survey)
    other["enterprise"].update(industry_code=code, account_name="李建国")  # the legal representative's
    refused = await submit(api, headers, other)
    assert refused.json()["detail"]["code"] == "account_name_mismatch"
    assert refused.json()["detail"]["detail"] == {"company": "东莞安泰机械有限公司", "account_name": "李建国"}
    body = enterprise_application(survey)
    body["enterprise"].update(industry_code=code, account_name=" 东莞安泰机械有限公司 ")
    application = (await submit(api, headers, body)).json()
    paid = await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    terms = paid.json()["policy"]["terms"]
    assert terms["bank_name"] == "工商银行" and terms["bank_account"].endswith("5678")


async def test_r_enr_6_late_entry_only_main_crops_within_30_days_with_reason(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-6")
    identity_id = int(headers["X-Identity-Id"])

    form = await signed_form(api, admin_headers)

    def late(
        product: str, days: int, reason: str = "农户在外务工，投保资料当日未能录入系统"
    ) -> dict[str, Any]:
        application = own_phone(headers, farmer_application(product_code=product))
        if product == "sow":
            application["quantity"] = "1"
            application["farmer"]["ear_tags"] = [f"4401000000{secrets.randbelow(10**5):05d}"]
        return {
            "application": application,
            "enrolled_on": (utcnow() - timedelta(days=days)).isoformat(),
            "reason": reason,
            "payment_reference": "BANK-LATE-1",
            "identity_id": identity_id,
            "signed_form_document_id": form,
        }

    too_late = await api.post("/api/policies/late-entry", headers=admin_headers, json=late("rice", 31))
    assert too_late.json()["detail"]["code"] == "late_entry_too_late"
    not_main = await api.post("/api/policies/late-entry", headers=admin_headers, json=late("sow", 5))
    assert not_main.json()["detail"]["code"] == "late_entry_not_allowed"
    no_reason = await api.post(
        "/api/policies/late-entry", headers=admin_headers, json=late("rice", 5, "太晚了")
    )
    assert no_reason.status_code == 422  # a written reason of substance (10 characters or more)
    ok = await api.post("/api/policies/late-entry", headers=admin_headers, json=late("rice", 30))
    assert ok.status_code == 201, ok.text
    assert ok.json()["late_entry"] is True


async def test_r_enr_11_endorsement_requested_in_chat_approved_by_staff_with_e_endorsement(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-11")
    application = (await submit(api, headers, farmer_application())).json()
    policy = (
        await api.post(
            f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
        )
    ).json()["policy"]
    asked = await api.post(
        f"/api/bot/policies/{policy['id']}/endorsements",
        headers=headers,
        json={"field": "bank_account", "new_value": "6217000011112222333", "bank_name": "建设银行"},
    )
    assert asked.status_code == 200, asked.text
    endorsement = asked.json()
    assert endorsement["status"] == "requested" and "*" in endorsement["new_value_masked"]
    duplicate = await api.post(
        f"/api/bot/policies/{policy['id']}/endorsements",
        headers=headers,
        json={"field": "bank_account", "new_value": "6217000011112222444"},
    )
    assert duplicate.json()["detail"]["code"] == "endorsement_pending"
    approved = await api.post(
        f"/api/endorsements/{endorsement['id']}/approve",
        headers=admin_headers,
        json={"note": "资料齐全，同意"},
    )
    assert approved.status_code == 200 and approved.json()["document_id"]
    pdf = await api.get(f"/api/documents/{approved.json()['document_id']}", headers=admin_headers)
    assert pdf.content.startswith(b"%PDF") and pdf.headers["x-content-sha256"]
    updated = (await api.get(f"/api/bot/policies/{policy['id']}", headers=headers)).json()
    assert updated["terms"]["bank_account"].endswith("2333") and updated["terms"]["bank_name"] == "建设银行"
    again = await api.post(
        f"/api/endorsements/{endorsement['id']}/refuse", headers=admin_headers, json={"note": "重复操作"}
    )
    assert again.json()["detail"]["code"] == "endorsement_decided"


async def test_staff_see_only_their_region_and_farmers_only_their_own(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    owner = await identity(api, service_headers, "owner")
    application = (await submit(api, owner, farmer_application())).json()
    policy = (
        await api.post(
            f"/api/bot/applications/{application['id']}/payments", headers=owner, json={"provider": "demo"}
        )
    ).json()["policy"]
    stranger = await identity(api, service_headers, "stranger", phone="13900002222")
    assert (await api.get(f"/api/bot/policies/{policy['id']}", headers=stranger)).status_code == 404
    assert (await api.get(f"/api/bot/documents/{policy['document_id']}", headers=stranger)).status_code == 404
    body = {
        "username": "agent_bj",
        "password": "agent-pass-01",
        "role": "agent",
        "region_codes": ["110000000000"],
    }
    assert (await api.post("/api/staff/users", json=body, headers=admin_headers)).status_code == 201
    beijing = await login(api, "agent_bj", "agent-pass-01")
    assert (await api.get(f"/api/applications/{application['id']}", headers=beijing)).status_code == 404
    assert (await api.get("/api/applications", headers=beijing)).json() == []
    assert (await api.get(f"/api/documents/{policy['document_id']}", headers=beijing)).status_code == 404


@pytest.mark.parametrize("quantity", ["99.99", "100"])
async def test_r_enr_7_verification_threshold_at_100_mu(
    api: httpx.AsyncClient, service_headers: dict[str, str], quantity: str
) -> None:
    headers = await identity(api, service_headers, f"r-enr-7-{quantity}")
    application = (await submit(api, headers, farmer_application(quantity=quantity))).json()
    expected = "pending_verification" if quantity == "100" else "awaiting_payment"
    assert application["status"] == expected
    if quantity == "100":
        early = await api.post(
            f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
        )
        assert (
            early.json()["detail"]["code"] == "verification_pending"
        )  # no payment, no policy, before the check


async def test_telegram_verified_owner_detaches_an_unverified_web_chat_binding(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    """A web chat bound by a typed number before codes were required (unverified) loses it when the
    number's owner proves it."""
    opened = await api.post(
        "/api/bot/identities",
        headers=service_headers,
        json={"channel": "webchat", "external_id": "squatter", "address": "squatter"},
    )
    async with db.session() as session:  # as the releases before left such a chat
        person = Person(phone="13700001111")
        session.add(person)
        await session.flush()
        squatting = await session.get(ChatIdentity, opened.json()["id"])
        assert squatting is not None
        squatting.phone, squatting.person_id = "13700001111", person.id
        await session.commit()
    squatter = {**service_headers, "X-Tianbao-Identity": "webchat:squatter"}
    opened = await api.post(
        "/api/bot/identities",
        headers=service_headers,
        json={"channel": "telegram", "external_id": "9001", "address": "9001"},
    )
    assert opened.status_code == 200
    owner = {**service_headers, "X-Tianbao-Identity": "telegram:9001"}
    bound = await api.post("/api/bot/me/phone", headers=owner, json={"phone_number": "13700001111"})
    assert bound.status_code == 200
    detached = (await api.get("/api/bot/me", headers=squatter)).json()
    assert detached["person_id"] is None and detached["phone_verified"] is False


async def test_r_enr_9_a_paid_application_is_never_charged_again(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "no-double-charge")
    application = (await submit(api, headers, farmer_application())).json()
    paid = await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    assert paid.status_code == 200
    again = await api.post(
        f"/api/applications/{application['id']}/offline-payment",
        headers=admin_headers,
        json={"method": "bank_deduction", "reference": "BANK-DUP"},
    )
    assert again.json()["detail"]["code"] == "already_paid"


async def test_a_claim_idempotency_key_never_returns_another_persons_claim(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    from tests.backend.test_claims_reporting import paid_policy, report

    owner = await identity(api, service_headers, "key-owner")
    body = report((await paid_policy(api, owner))["id"])
    assert (await api.post("/api/bot/claims", headers=owner, json=body)).status_code == 200
    other = await identity(api, service_headers, "key-other")
    stolen = await api.post("/api/bot/claims", headers=other, json=body)
    assert stolen.json()["detail"]["code"] == "idempotency_key_taken"


async def test_r_enr_5_one_account_signs_as_insured_only_for_its_own_person(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-5-own")
    own = await submit(api, headers, farmer_application())
    assert own.status_code == 200, own.text  # the first insured, with the account's own phone
    assert (await submit(api, headers, farmer_application())).status_code == 200  # the same person again
    for other_id in (resident_id("44190019800101123"), resident_id("11010519700101456")):
        body = farmer_application()
        body["farmer"].update(name="李老汉", id_number=other_id)
        refused = await submit(api, headers, body)  # a second and a third person "as insured": no
        assert refused.json()["detail"]["code"] == "signer_not_insured"
        body = farmer_application(signer={"role": "relative", "name": "李四", "relation": "child"})
        body["farmer"].update(name="李老汉", id_number=other_id)
        relative = await submit(api, headers, body)
        assert relative.status_code == 200, relative.text
        detail = (await api.get(f"/api/applications/{relative.json()['id']}", headers=admin_headers)).json()
        assert detail["signer"] == {
            "role": "relative",
            "name": "李四",
            "relation": "child",
            "authorisation_document_id": None,
        }


async def test_r_enr_5_the_first_insured_must_give_the_accounts_own_phone(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-5-phone")
    body = farmer_application()
    body["farmer"]["phone"] = "13700002222"  # someone else's number: not the account's verified person
    refused = await submit(api, headers, body)
    assert refused.json()["detail"]["code"] == "signer_not_insured"
    assert (await submit(api, headers, farmer_application())).status_code == 200  # nothing was fixed before


async def test_r_enr_5_an_enterprise_signs_through_the_account_of_its_contact_phone(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "r-enr-5-enterprise")
    body = enterprise_application(await survey_answers(api, service_headers))
    body["enterprise"].update(industry_code=await industry_code(api, service_headers), phone="13700003333")
    refused = await submit(api, headers, body)
    assert refused.json()["detail"]["code"] == "signer_not_insured"


async def test_r_enr_5_staff_never_sign_a_late_entry_records_the_real_signer_and_evidence(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Any
) -> None:
    from backend.enrollment.models import Application, Policy

    holder = await identity(api, service_headers, "r-enr-5-late")
    assert (await submit(api, holder, farmer_application())).status_code == 200  # the account's own person

    def late(signer: dict[str, Any], form: int | None) -> dict[str, Any]:
        application = own_phone(holder, farmer_application(signer=signer))
        application["farmer"].update(name="李老汉", id_number=resident_id("44190019800101123"))
        body: dict[str, Any] = {
            "application": application,
            "enrolled_on": (utcnow() - timedelta(days=3)).isoformat(),
            "reason": "农户在外务工，投保资料当日未能录入系统",
            "payment_reference": "BANK-LATE-5",
            "identity_id": int(holder["X-Identity-Id"]),
        }
        if form is not None:
            body["signed_form_document_id"] = form
        return body

    url = "/api/policies/late-entry"
    relative = {"role": "relative", "name": "李四", "relation": "child"}
    assert (await api.post(url, headers=admin_headers, json=late(relative, None))).status_code == 422
    photo = await api.post(
        "/api/bot/documents",
        headers=holder,
        data={"kind": "authorisation"},
        files={"file": ("a.png", io.BytesIO(PNG), "image/png")},
    )
    not_a_form = await api.post(url, headers=admin_headers, json=late(relative, photo.json()["id"]))
    assert not_a_form.json()["detail"]["code"] == "signed_form_missing"
    form = await signed_form(api, admin_headers)
    as_insured = await api.post(url, headers=admin_headers, json=late({"role": "insured"}, form))
    assert as_insured.json()["detail"]["code"] == "signer_not_insured"  # not this account's person
    entered = await api.post(url, headers=admin_headers, json=late(relative, form))
    assert entered.status_code == 201, entered.text
    async with db.session() as session:
        policy = await session.get(Policy, entered.json()["id"])
        assert policy is not None
        application = await session.get(Application, policy.application_id)
        assert application is not None
    assert application.signer["role"] == "relative" and application.signer["name"] == "李四"
    assert application.signer["evidence_document_id"] == form
    assert application.signer["entered_by_staff_id"]  # who typed it in, never who signed
    reused = await api.post(url, headers=admin_headers, json=late(relative, form))
    assert reused.json()["detail"]["code"] == "signed_form_missing"  # one signed form, one enrollment


async def test_r_enr_5_the_underwriter_uploads_the_signed_form_of_a_late_entry_not_site_photos(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    body = {
        "username": "uw_late",
        "password": "uw-pass-0001",
        "role": "underwriter",
        "region_codes": ["441900000000"],
    }
    assert (await api.post("/api/staff/users", json=body, headers=admin_headers)).status_code == 201
    underwriter = await login(api, "uw_late", "uw-pass-0001")
    assert await signed_form(api, underwriter)
    headers = await identity(api, service_headers, "r-enr-5-uw")
    application = (await submit(api, headers, farmer_application(quantity="120"))).json()
    photo = await api.post(
        "/api/documents",
        headers=underwriter,
        data={"application_id": str(application["id"])},
        files={"file": ("site.png", io.BytesIO(PNG), "image/png")},
    )
    assert photo.status_code == 403 and photo.json()["detail"]["code"] == "forbidden"


async def authorisation_photo(api: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """The photo of a written authorisation, uploaded through the chat account (R-ENR-5 evidence)."""
    photo = await api.post(
        "/api/bot/documents",
        headers=headers,
        data={"kind": "authorisation"},
        files={"file": ("a.png", io.BytesIO(PNG), "image/png")},
    )
    assert photo.status_code == 201, photo.text
    return int(photo.json()["id"])


async def test_r_enr_5_one_account_signs_as_insured_for_one_credit_code_only(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    from tests.enroll_helpers import credit_code

    headers = await identity(api, service_headers, "r-enr-5-one-code")
    survey, code = await survey_answers(api, service_headers), await industry_code(api, service_headers)

    def company(credit: str, **signer: Any) -> dict[str, Any]:
        body = own_phone(headers, enterprise_application(survey, signer=signer or {"role": "insured"}))
        body["enterprise"].update(industry_code=code, credit_code=credit)
        return body

    own_code = own_numbers(headers["X-Tianbao-Identity"])[1]
    first = await submit(api, headers, company(own_code))
    assert first.status_code == 200, first.text  # the first company, with the account's own phone: bound
    assert (await submit(api, headers, company(own_code))).status_code == 200  # the same company again
    for other in (credit_code("91440300MA5F00001"), credit_code("91440300MA5F00002")):
        refused = await submit(api, headers, company(other))  # the same phone, any other credit code: no
        assert refused.json()["detail"]["code"] == "signer_not_insured"
        roles = await api.post(
            "/api/bot/signer-roles",
            headers=headers,
            json={
                "insured_type": "enterprise",
                "id_number": other,
                "phone": BOUND_PHONES[headers["X-Tianbao-Identity"]],
            },
        )
        assert roles.json()["roles"] == ["relative", "authorised"]
        evidence = await authorisation_photo(api, headers)
        authorised = await submit(
            api, headers, company(other, role="authorised", name="李建国", authorisation_document_id=evidence)
        )
        assert authorised.status_code == 200, authorised.text  # an authorised person, with the evidence
    cooperative = farmer_application()
    cooperative["farmer"].update(
        insured_type="organisation", name="东城水稻合作社", id_number=credit_code("93441900MA5F00003")
    )
    refused = await submit(api, headers, cooperative)  # an organisation through the farmer form: the same
    assert refused.json()["detail"]["code"] == "signer_not_insured"


async def test_r_enr_5_an_id_number_or_credit_code_is_bound_to_one_person_only(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Any
) -> None:
    from sqlalchemy.exc import IntegrityError

    from backend.people.models import Person
    from tests.enroll_helpers import credit_code

    first = await identity(api, service_headers, "r-enr-5-first")
    second = await identity(api, service_headers, "r-enr-5-second")
    typed = resident_id("44190019800101123")
    survey, code = await survey_answers(api, service_headers), await industry_code(api, service_headers)

    def farmer(headers: dict[str, str], **signer: Any) -> dict[str, Any]:
        body = own_phone(headers, farmer_application(signer=signer or {"role": "insured"}))
        body["farmer"]["id_number"] = typed
        return body

    def company(headers: dict[str, str]) -> dict[str, Any]:
        body = own_phone(headers, enterprise_application(survey))
        body["enterprise"].update(industry_code=code, credit_code=credit_code("91441900MA5F00004"))
        return body

    assert (await submit(api, first, farmer(first))).status_code == 200  # typed first: bound to the first
    assert (await submit(api, first, company(first))).status_code == 200
    zh = await submit(api, second, farmer(second))  # the same ID, the second account's own phone
    assert zh.json()["detail"]["code"] == "id_number_bound_elsewhere"
    assert "身份证号码已经由另一个账号" in zh.json()["detail"]["message"]
    en = await api.post(
        "/api/bot/applications", headers={**second, "Accept-Language": "en"}, json=farmer(second)
    )
    assert "already bound to another account" in en.json()["detail"]["message"]
    taken = await submit(api, second, company(second))
    assert taken.json()["detail"]["code"] == "credit_code_bound_elsewhere"
    assert "统一社会信用代码已经由另一个账号" in taken.json()["detail"]["message"]
    roles = await api.post(
        "/api/bot/signer-roles",
        headers=second,
        json={
            "insured_type": "farmer",
            "id_number": typed,
            "phone": BOUND_PHONES[second["X-Tianbao-Identity"]],
        },
    )
    assert roles.json()["roles"] == ["relative", "authorised"]  # the chat does not offer "myself"
    relative = await submit(api, second, farmer(second, role="relative", name="李四", relation="child"))
    assert relative.status_code == 200, relative.text  # a relative still signs for that person
    own = await submit(api, second, own_phone(second, farmer_application()))
    assert own.status_code == 200, own.text  # and nothing was bound to the second account on the way
    async with db.session() as session:  # the database itself refuses a second binding (a race)
        session.add(Person(phone="13700009999", id_number=typed))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_r_enr_5_a_late_entry_uses_only_a_signed_form_of_its_underwriter_or_region(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Any
) -> None:
    from backend.enrollment.models import Document

    async def staff(username: str, role: str, region: str) -> dict[str, str]:
        body = {"username": username, "password": "a-long-password-1", "role": role, "region_codes": [region]}
        assert (await api.post("/api/staff/users", json=body, headers=admin_headers)).status_code == 201
        return await login(api, username, "a-long-password-1")

    dongguan = await staff("uw_dongguan", "underwriter", "441900000000")
    colleague = await staff("uw_dongguan_2", "underwriter", "441900000000")
    guangzhou = await staff("uw_guangzhou", "underwriter", "440100000000")
    agent = await staff("agent_dongguan", "agent", "441900000000")
    holder = await identity(api, service_headers, "r-enr-5-late-form")

    def late(form: int) -> dict[str, Any]:
        return {
            "application": own_phone(holder, farmer_application()),
            "enrolled_on": (utcnow() - timedelta(days=3)).isoformat(),
            "reason": "农户在外务工，投保资料当日未能录入系统",
            "payment_reference": f"BANK-LATE-{form}",
            "identity_id": int(holder["X-Identity-Id"]),
            "signed_form_document_id": form,
        }

    by_agent = await api.post(
        "/api/documents",
        headers=agent,
        data={"kind": "signed_form"},
        files={"file": ("form.png", io.BytesIO(PNG), "image/png")},
    )
    assert by_agent.status_code == 403 and by_agent.json()["detail"]["code"] == "forbidden"
    url = "/api/policies/late-entry"
    for uploader in (guangzhou, admin_headers):  # another region's, or a national upload: not in scope
        refused = await api.post(url, headers=dongguan, json=late(await signed_form(api, uploader)))
        assert refused.json()["detail"]["code"] == "signed_form_not_in_scope", refused.text
        assert "不是您上传的" in refused.json()["detail"]["message"]
    own_form = await signed_form(api, dongguan)
    async with db.session() as session:
        document = await session.get(Document, own_form)
        assert document is not None and document.uploaded_by_staff_id is not None
    assert (
        await api.get(f"/api/documents/{own_form}", headers=dongguan)
    ).status_code == 200  # its uploader's
    for form in (own_form, await signed_form(api, colleague)):  # their own, or their region's colleague's
        entered = await api.post(url, headers=dongguan, json=late(form))
        assert entered.status_code == 201, entered.text

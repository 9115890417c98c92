"""Staff side of claims through the API: survey (R-CLM-6, -8, -9), documents (R-CLM-9), denial (R-CLM-10),
assessment (R-CLM-7, -11), the household's answer (R-CLM-14, -13), payment (R-CLM-12), region scope and
audit. Claims are inserted directly (the chat side that reports them is tested elsewhere) on policies made
through the enrollment API.

Until ``backend/routes.py`` includes them, the staff claim routers are mounted here on the app fixture.
"""

from __future__ import annotations

import io
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlmodel import col, select

from backend.claims import rules, workflow
from backend.claims.models import Claim, StaffAlert
from backend.db import Database, utcnow
from backend.enrollment.models import Document
from backend.outbox.models import OutboxMessage
from backend.staff.models import AuditLog
from tests.backend.test_enrollment_api import farmer_application, identity, submit
from tests.conftest import login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, resident_id

DONGGUAN = "441900000000"
BEIJING = "110000000000"
VILLAGE_A = "441900003001"
VILLAGE_B = "441900003002"
OWN_ACCOUNT = "6228480012345678901"


@pytest.fixture(autouse=True)
def mount_claim_routes(app: Any) -> None:
    """The lead engineer includes these routers in backend/routes.py; mount them here until then."""
    from backend.claims.staff_api import alerts_router, router

    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/claims/{claim_id}/assign" not in paths:
        app.include_router(router)
    if "/api/alerts" not in paths:
        app.include_router(alerts_router)


# --- helpers (also used by test_claims_jobs) --------------------------------------------------------------


async def staff_user(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    username: str,
    role: str,
    regions: tuple[str, ...] = (DONGGUAN,),
    full_name: str = "",
    phone: str | None = None,
) -> tuple[dict[str, str], int]:
    body = {
        "username": username,
        "password": f"{username}-pass-01",
        "role": role,
        "region_codes": list(regions),
        "full_name": full_name,
        "phone": phone,
    }
    created = await api.post("/api/staff/users", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    return await login(api, username, f"{username}-pass-01"), int(created.json()["id"])


async def paid_policy(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    external_id: str,
    phone: str = "13812345678",
    **farmer: Any,
) -> tuple[dict[str, str], dict[str, Any]]:
    """A chat identity and its issued rice policy (10 mu); ``farmer`` overrides the insured's answers."""
    headers = await identity(api, service_headers, external_id, phone=phone)
    body = farmer_application()
    body["farmer"].update(farmer)
    application = await submit(api, headers, body)
    assert application.status_code == 200, application.text
    paid = await api.post(
        f"/api/bot/applications/{application.json()['id']}/payments",
        headers=headers,
        json={"provider": "demo"},
    )
    assert paid.status_code == 200, paid.text
    return headers, paid.json()["policy"]


async def make_claim(
    db: Database,
    policy: dict[str, Any],
    headers: dict[str, str],
    *,
    reported_at: datetime | None = None,
    product_code: str | None = None,
    unit: str = "mu",
    lost_quantity: str = "5",
    cause: str = "typhoon",
    **fields: Any,
) -> int:
    """A claim as the chat side records it: survey due 24 h after the report (R-CLM-6)."""
    reported = reported_at or utcnow()
    async with db.session() as session:
        claim = Claim(
            number=f"CL{secrets.token_hex(6).upper()}",
            policy_id=policy["id"],
            product_code=product_code or policy["product_code"],
            identity_id=int(headers["X-Identity-Id"]),
            region_code=DONGGUAN_TOWNSHIP,
            county_code=DONGGUAN,
            insured_name=policy["insured_name"],
            cause=cause,
            loss_started_at=reported - timedelta(hours=2),
            lost_quantity=lost_quantity,
            unit=unit,
            estimated_amount_fen=300000,
            place_name="大塘围",
            reporter_name=policy["insured_name"],
            reporter_phone="13812345678",
            reported_at=reported,
            survey_due_at=rules.survey_due(reported),
            **fields,
        )
        session.add(claim)
        await session.commit()
        assert claim.id is not None
        return claim.id


async def load_claim(db: Database, claim_id: int) -> Claim:
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        return claim


async def notices(db: Database, claim_id: int) -> dict[str, OutboxMessage]:
    """The claim's chat notices by dedupe key suffix (``claim-<id>-<suffix>``)."""
    prefix = f"claim-{claim_id}-"
    async with db.session() as session:
        rows = (
            await session.exec(select(OutboxMessage).where(col(OutboxMessage.dedupe_key).startswith(prefix)))
        ).all()
    return {row.dedupe_key.removeprefix(prefix): row for row in rows}


async def audited(db: Database, claim_id: int) -> list[str]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(AuditLog)
                .where(AuditLog.target_type == "claim", AuditLog.target_id == str(claim_id))
                .order_by(col(AuditLog.id))
            )
        ).all()
    return [row.action for row in rows]


def survey_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "loss": "台风致水稻倒伏，约 5 亩",
        "cause": "台风",
        "covered": True,
        "surveyors": ["陈查勘", "刘查勘"],
        "loss_degree": "medium",
    }
    body.update(overrides)
    return body


def sample(village: str, loss_class: str, **overrides: Any) -> dict[str, Any]:
    point: dict[str, Any] = {
        "village_code": village,
        "loss_class": loss_class,
        "place": f"{village[-3:]}号田",
        "method": "random",
        "sample_size": 100,
        "lost_count": 40,
        "loss_degree": "40%",
    }
    point.update(overrides)
    return point


def crop_sampling(*classes: str) -> dict[str, Any]:
    return {
        "sampling": [sample(VILLAGE_A, c) for c in classes or ("medium",)],
        "sampling_signed_by": "李四",
    }


async def surveyed_claim(
    api: httpx.AsyncClient,
    db: Database,
    headers: dict[str, str],
    policy: dict[str, Any],
    adjuster: dict[str, str],
    **claim: Any,
) -> int:
    """A claim surveyed as covered (with the R-CLM-8 sampling rice needs)."""
    claim_id = await make_claim(db, policy, headers, **claim)
    body = (
        survey_body(**crop_sampling())
        if policy["product_code"] == "rice" and "product_code" not in claim
        else survey_body()
    )
    response = await api.post(f"/api/claims/{claim_id}/survey-report", headers=adjuster, json=body)
    assert response.status_code == 200, response.text
    return claim_id


async def agreed_claim(
    api: httpx.AsyncClient,
    db: Database,
    headers: dict[str, str],
    policy: dict[str, Any],
    adjuster: dict[str, str],
    amount_fen: int = 150000,
) -> int:
    claim_id = await surveyed_claim(api, db, headers, policy, adjuster)
    assessed = await api.post(
        f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": amount_fen}
    )
    assert assessed.status_code == 200, assessed.text
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        await workflow.confirm_settlement(
            session, claim, {"role": "insured", "identity_id": headers["X-Identity-Id"]}
        )
        await session.commit()
    return claim_id


def code_of(response: httpx.Response) -> str:
    return str(response.json()["detail"]["code"])


# --- R-CLM-6 ----------------------------------------------------------------------------------------------


async def test_r_clm_6_survey_after_24_hours_needs_a_reason_told_to_the_farmer(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, adjuster_id = await staff_user(api, admin_headers, "adj_r6", "adjuster", full_name="陈查勘")
    headers, policy = await paid_policy(api, service_headers, "r-clm-6")
    claim_id = await make_claim(db, policy, headers)
    due = (await load_claim(db, claim_id)).survey_due_at
    assert due is not None
    late = (due + timedelta(hours=6)).isoformat()
    refused = await api.post(f"/api/claims/{claim_id}/survey-schedule", headers=adjuster, json={"at": late})
    assert refused.status_code == 422 and code_of(refused) == "delay_reason_required"
    blank = await api.post(
        f"/api/claims/{claim_id}/survey-schedule", headers=adjuster, json={"at": late, "delay_reason": "  "}
    )
    assert code_of(blank) == "delay_reason_required"
    reason = "台风过境，通往大塘围的道路被淹"
    delayed = await api.post(
        f"/api/claims/{claim_id}/survey-schedule",
        headers=adjuster,
        json={"at": late, "delay_reason": reason, "remote": True},
    )
    assert delayed.status_code == 200, delayed.text
    claim = delayed.json()["claim"]
    assert claim["status"] == "survey_scheduled" and claim["remote_survey"] is True
    assert claim["survey_agreed_at"] is not None and claim["deadlines"]["survey"]["agreed_at"] is not None
    assert claim["adjuster_id"] == adjuster_id  # the adjuster who scheduled it, when none was assigned
    assert [e["kind"] for e in claim["timeline"]] == ["survey_delayed"]
    sent = await notices(db, claim_id)
    told = next(m for key, m in sent.items() if key.startswith("survey-"))
    assert reason in told.text and "视频查勘" in told.text
    local_time = workflow.documents.local(due + timedelta(hours=6))
    assert local_time.strftime("%m月%d日 %H:%M") in told.text  # the agreed time, in China time
    # Within the 24 hours no reason is needed; the farmer is told the time.
    other = await make_claim(db, policy, headers)
    on_time = await api.post(
        f"/api/claims/{other}/survey-schedule",
        headers=adjuster,
        json={"at": (utcnow() + timedelta(hours=3)).isoformat()},
    )
    assert on_time.status_code == 200, on_time.text
    assert on_time.json()["claim"]["survey_agreed_at"] is None
    assert any(
        m.text.startswith("理赔号") and "现场查勘" in m.text for m in (await notices(db, other)).values()
    )
    past = await api.post(
        f"/api/claims/{other}/survey-schedule",
        headers=adjuster,
        json={"at": (utcnow() - timedelta(hours=2)).isoformat()},
    )
    assert code_of(past) == "survey_time_in_past"


@pytest.mark.parametrize(
    ("product", "unit", "quantity", "joint"),
    [
        ("rice", "mu", "100", True),
        ("rice", "mu", "99.99", False),
        ("pig", "head", "20", True),
        ("pig", "head", "19", False),
        ("poultry", "bird", "10000", True),
        ("poultry", "bird", "9999", False),
    ],
)
async def test_r_clm_6_joint_survey_with_government_for_larger_events(
    api: httpx.AsyncClient,
    db: Database,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    product: str,
    unit: str,
    quantity: str,
    joint: bool,
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_joint", "adjuster")
    headers, policy = await paid_policy(api, service_headers, f"joint-{product}-{quantity}")
    claim_id = await make_claim(db, policy, headers, product_code=product, unit=unit, lost_quantity=quantity)
    at = (utcnow() + timedelta(hours=2)).isoformat()
    scheduled = await api.post(f"/api/claims/{claim_id}/survey-schedule", headers=adjuster, json={"at": at})
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["claim"]["joint_survey"] is joint
    assert (
        rules.joint_survey_needed("crop" if product == "rice" else "livestock", unit, Decimal(quantity))
        is joint
    )
    text = next(m.text for k, m in (await notices(db, claim_id)).items() if k.startswith("survey-"))
    assert ("政府" in text) is joint
    # Staff may decide otherwise explicitly.
    forced = await api.post(
        f"/api/claims/{claim_id}/survey-schedule",
        headers=adjuster,
        json={"at": at, "joint_with_government": not joint},
    )
    assert forced.json()["claim"]["joint_survey"] is (not joint)


# --- R-CLM-8 / R-CLM-9 survey report ------------------------------------------------------------------------


async def test_r_clm_8_crop_claims_need_a_sample_point_per_loss_class_in_every_village(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r8", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-8")
    claim_id = await make_claim(db, policy, headers)  # rice, a single household: sampling required
    url = f"/api/claims/{claim_id}/survey-report"
    missing = await api.post(url, headers=adjuster, json=survey_body())
    assert missing.status_code == 422 and code_of(missing) == "sampling_required"
    unsigned = await api.post(url, headers=adjuster, json=survey_body(sampling=[sample(VILLAGE_A, "medium")]))
    assert code_of(unsigned) == "sampling_unsigned"  # the record is signed by the insured
    impossible = await api.post(
        url,
        headers=adjuster,
        json=survey_body(sampling=[sample(VILLAGE_A, "medium", lost_count=120)], sampling_signed_by="李四"),
    )
    assert code_of(impossible) == "sampling_record_invalid"
    elsewhere = await api.post(
        url,
        headers=adjuster,
        json=survey_body(sampling=[sample("440300000001", "medium")], sampling_signed_by="李四"),
    )
    assert code_of(elsewhere) == "sampling_village_outside_claim"
    # Village A has light and heavy points; village B only light: B lacks a heavy point.
    uneven = [sample(VILLAGE_A, "light"), sample(VILLAGE_A, "heavy"), sample(VILLAGE_B, "light")]
    incomplete = await api.post(
        url,
        headers=adjuster,
        json=survey_body(sampling=uneven, sampling_signed_by="李四", loss_degree="light"),
    )
    assert code_of(incomplete) == "sampling_incomplete"
    assert incomplete.json()["detail"]["detail"] == {"village_code": VILLAGE_B, "missing": "heavy"}
    # The classes found (loss_classes) must each be sampled in each village.
    declared = await api.post(
        url,
        headers=adjuster,
        json=survey_body(
            sampling=[sample(VILLAGE_A, "light"), sample(VILLAGE_A, "heavy")],
            loss_classes=["light", "medium", "heavy"],
            sampling_signed_by="李四",
        ),
    )
    assert code_of(declared) == "sampling_incomplete"
    assert declared.json()["detail"]["detail"]["missing"] == "medium"
    # The claim's own loss degree is a class present too.
    own_degree = await api.post(
        url,
        headers=adjuster,
        json=survey_body(
            sampling=[sample(VILLAGE_A, "light")], sampling_signed_by="李四", loss_degree="heavy"
        ),
    )
    assert code_of(own_degree) == "sampling_incomplete"
    complete = [*uneven, sample(VILLAGE_B, "heavy")]
    done = await api.post(
        url,
        headers=adjuster,
        json=survey_body(sampling=complete, sampling_signed_by="李四", loss_degree="heavy"),
    )
    assert done.status_code == 200, done.text
    report = done.json()["claim"]["survey_report"]
    assert len(report["sampling"]) == 4 and all(s["signed_by"] == "李四" for s in report["sampling"])
    assert {"place", "method", "sample_size", "lost_count", "loss_degree"} <= set(report["sampling"][0])
    # Livestock needs no sampled yield measurement.
    pig = await make_claim(
        db, policy, headers, product_code="pig", unit="head", lost_quantity="3", cause="disease"
    )
    plain = await api.post(f"/api/claims/{pig}/survey-report", headers=adjuster, json=survey_body())
    assert plain.status_code == 200, plain.text


async def test_r_clm_9_survey_report_signed_by_surveyors_and_not_covered_suggests_denial(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r9", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-9-report")
    claim_id = await make_claim(db, policy, headers, product_code="pig", unit="head", lost_quantity="2")
    url = f"/api/claims/{claim_id}/survey-report"
    unsigned = await api.post(url, headers=adjuster, json=survey_body(surveyors=[" "]))
    assert code_of(unsigned) == "surveyors_required"
    report = await api.post(url, headers=adjuster, json=survey_body(covered=False, cause="饲养管理不当"))
    assert report.status_code == 200, report.text
    out = report.json()
    assert out["denial_suggested"] is True and out["claim"]["status"] == "surveyed"
    assert out["claim"]["survey_report"]["covered"] is False
    assert out["claim"]["surveyed_at"] is not None
    assert "surveyed" in await notices(db, claim_id)
    again = await api.post(url, headers=adjuster, json=survey_body())
    assert code_of(again) == "bad_status" and again.json()["detail"]["detail"]["status"] == "surveyed"
    not_covered = await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 100})
    assert code_of(not_covered) == "not_covered"


async def test_r_clm_9_documents_asked_once_all_at_once(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_docs", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-9-docs")
    claim_id = await surveyed_claim(api, db, headers, policy, adjuster)
    url = f"/api/claims/{claim_id}/documents-request"
    empty = await api.post(url, headers=adjuster, json={"items": [" "]})
    assert code_of(empty) == "items_required"
    items = ["身份证正反面照片", "银行卡照片", "村委会出具的受灾证明"]
    asked = await api.post(url, headers=adjuster, json={"items": [*items, "银行卡照片"]})
    assert asked.status_code == 200, asked.text
    claim = asked.json()["claim"]
    assert claim["status"] == "documents_requested" and claim["document_request"]["items"] == items
    again = await api.post(url, headers=adjuster, json={"items": ["户口本"]})
    assert again.status_code == 409 and code_of(again) == "documents_already_requested"
    sent = await notices(db, claim_id)
    assert "documents-requested" in sent
    assert all(item in sent["documents-requested"].text for item in items)  # one notice, every item
    # The chat side receives them: the claim returns to where it was, and cannot be asked again.
    async with db.session() as session:
        row = await session.get(Claim, claim_id)
        assert row is not None
        await workflow.documents_received(session, row)
        await workflow.documents_received(session, row)  # a second upload changes nothing
        await session.commit()
    detail = (await api.get(f"/api/claims/{claim_id}", headers=adjuster)).json()
    assert detail["status"] == "surveyed" and detail["document_request"]["fulfilled_at"] is not None
    assert [e["kind"] for e in detail["timeline"]].count("documents_received") == 1
    after = await api.post(url, headers=adjuster, json={"items": ["户口本"]})
    assert code_of(after) == "documents_already_requested"


# --- R-CLM-10 / R-CLM-7 denial ----------------------------------------------------------------------------


async def test_r_clm_10_denial_notice_pdf_to_chat(
    api: httpx.AsyncClient,
    db: Database,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r10", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-10")
    claim_id = await make_claim(db, policy, headers, cause="pests")
    url = f"/api/claims/{claim_id}/deny"
    assert code_of(await api.post(url, headers=adjuster, json={"reasons": []})) == "reasons_required"
    wrong = await api.post(url, headers=adjuster, json={"reasons": ["no_disposal_proof"]})
    assert code_of(wrong) == "reason_not_applicable"  # rice has no disposal proof to miss
    with caplog.at_level("WARNING"):
        denied = await api.post(
            url, headers=adjuster, json={"reasons": ["not_covered", "田间管理不善导致病虫害蔓延"]}
        )
    assert denied.status_code == 200, denied.text
    assert not [r for r in caplog.records if r.name.startswith("fpdf")]  # inside fpdf2's HTML subset
    out = denied.json()
    claim = out["claim"]
    assert claim["status"] == "denied" and claim["denial_reasons"] == [
        "not_covered",
        "田间管理不善导致病虫害蔓延",
    ]
    assert [a["purpose"] for a in claim["attachments"]] == ["denial_notice"]
    document_id = out["document_id"]
    assert claim["attachments"][0]["document_id"] == document_id
    message = (await notices(db, claim_id))["denied"]
    assert message.attachments == [
        {
            "kind": "document",
            "name": message.attachments[0]["name"],
            "url": f"/api/outbox/documents/{document_id}",
        }
    ]
    assert "田间管理不善" in message.text and "不属于保险责任" in message.text
    fetched = await api.get(message.attachments[0]["url"], headers=service_headers)  # the delivery worker
    assert fetched.status_code == 200 and fetched.content.startswith(b"%PDF")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(fetched.content)).pages).replace(
        "\xa0", " "
    )
    number = (await load_claim(db, claim_id)).number
    for expected in (
        "拒赔通知书",
        number,
        policy["number"],
        "李四",
        "田间管理不善导致病虫害蔓延",
        "田保示范保险公司",
    ):
        assert expected in text, expected
    assert "不属于保险合同约定的保险责任范围" in text  # the standard wording of "not_covered"
    assert "病虫害" in text  # the cause label
    async with db.session() as session:
        document = await session.get(Document, document_id)
        assert (
            document is not None and document.kind == "denial_notice" and document.policy_id == policy["id"]
        )
    again = await api.post(url, headers=adjuster, json={"reasons": ["not_covered"]})
    assert code_of(again) == "bad_status"
    assert "claims.deny" in await audited(db, claim_id)


async def test_r_clm_7_no_settlement_without_disposal_proof(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r7", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-7")
    dead_pigs: dict[str, Any] = {
        "product_code": "pig",
        "unit": "head",
        "lost_quantity": "3",
        "cause": "disease",
        "disposal_required": True,
    }
    claim_id = await surveyed_claim(api, db, headers, policy, adjuster, **dead_pigs)
    refused = await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 90000})
    assert refused.status_code == 422 and code_of(refused) == "disposal_proof_missing"
    # Without proof the claim is denied, with the reason stated.
    denied = await api.post(
        f"/api/claims/{claim_id}/deny", headers=adjuster, json={"reasons": ["no_disposal_proof"]}
    )
    assert denied.status_code == 200, denied.text
    assert "无害化处理" in (await notices(db, claim_id))["denied"].text
    # With proof, it is assessed.
    proven = await surveyed_claim(
        api, db, headers, policy, adjuster, **{**dead_pigs, "disposal_proven_at": utcnow()}
    )
    ok = await api.post(f"/api/claims/{proven}/assess", headers=adjuster, json={"amount_fen": 90000})
    assert ok.status_code == 200, ok.text
    # Nor can an agreed claim be paid if the proof is missing.
    async with db.session() as session:
        claim = await session.get(Claim, proven)
        assert claim is not None
        claim.disposal_proven_at = None
        session.add(claim)
        await session.commit()
        with pytest.raises(workflow.ClaimError) as refused_confirm:
            await workflow.confirm_settlement(session, claim, {"role": "insured"})
    assert refused_confirm.value.code == "disposal_proof_missing"


# --- R-CLM-11 ---------------------------------------------------------------------------------------------


async def test_r_clm_11_settlement_due_20_days_after_survey(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r11", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-11")
    pig = await surveyed_claim(
        api, db, headers, policy, adjuster, product_code="pig", unit="head", lost_quantity="2"
    )
    claim = await load_claim(db, pig)
    assert claim.surveyed_at is not None and claim.settlement_due_at == claim.surveyed_at + timedelta(days=20)
    # A main crop without a known harvest date: 20 days after the survey too.
    rice = await surveyed_claim(api, db, headers, policy, adjuster)
    claim = await load_claim(db, rice)
    assert claim.surveyed_at is not None and claim.settlement_due_at == claim.surveyed_at + timedelta(days=20)


async def test_r_clm_11_settlement_due_20_days_after_harvest_for_main_crops(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r11h", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-11-harvest")
    harvest = (utcnow() + timedelta(days=45)).replace(microsecond=0)
    rice = await make_claim(db, policy, headers)
    body = survey_body(**crop_sampling(), harvest_on=harvest.isoformat())
    assert (
        await api.post(f"/api/claims/{rice}/survey-report", headers=adjuster, json=body)
    ).status_code == 200
    assert (await load_claim(db, rice)).settlement_due_at == harvest + timedelta(days=20)
    # Not a main crop: the harvest date does not move the deadline.
    pig = await make_claim(db, policy, headers, product_code="pig", unit="head", lost_quantity="2")
    body = survey_body(harvest_on=harvest.isoformat())
    assert (
        await api.post(f"/api/claims/{pig}/survey-report", headers=adjuster, json=body)
    ).status_code == 200
    claim = await load_claim(db, pig)
    assert claim.surveyed_at is not None and claim.settlement_due_at == claim.surveyed_at + timedelta(days=20)


# --- R-CLM-14 / R-CLM-13 -----------------------------------------------------------------------------------


async def test_r_clm_14_household_confirms_or_objects_and_staff_assess_again(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r14", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-14")
    claim_id = await surveyed_claim(api, db, headers, policy, adjuster)
    too_much = await api.post(
        f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": policy["sum_insured_fen"] + 1}
    )
    assert code_of(too_much) == "amount_exceeds_sum_insured"
    assessed = await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 120000})
    assert assessed.status_code == 200 and assessed.json()["claim"]["status"] == "assessed"
    first = (await notices(db, claim_id))["assessed-1"]
    assert "1,200.00" in first.text
    assert first.buttons[0] == [
        {"text": "✅ 确认金额", "callback_data": f"clm:confirm:{claim_id}:120000"},
        {"text": "❗ 有异议", "callback_data": f"clm:object:{claim_id}:120000"},
    ]
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        with pytest.raises(workflow.ClaimError) as blank:
            await workflow.object_settlement(session, claim, "  ")
        assert blank.value.code == "objection_reason_required"
        await workflow.object_settlement(session, claim, "实际倒伏面积比核定的多两亩")
        await session.commit()
    detail = (await api.get(f"/api/claims/{claim_id}", headers=adjuster)).json()
    assert detail["status"] == "objected" and detail["objection"] == "实际倒伏面积比核定的多两亩"
    alerts = (await api.get("/api/alerts", headers=adjuster, params={"kind": "claim_objection"})).json()
    assert [a["claim_id"] for a in alerts] == [claim_id] and "多两亩" in alerts[0]["body"]
    # Staff assess again from "objected"; the household gets a new question.
    again = await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 160000})
    assert again.status_code == 200, again.text
    second = (await notices(db, claim_id))["assessed-2"]
    assert "1,600.00" in second.text and "复核" in second.text
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        for signer, code in (
            ({"role": "relative", "name": "李小明"}, "signer_relation_missing"),
            ({"role": "authorised", "name": "王代办"}, "authorisation_missing"),
            ({"role": "staff", "name": "陈查勘"}, "signer_invalid"),  # staff never sign for farmers
        ):
            with pytest.raises(workflow.ClaimError) as refused:
                await workflow.confirm_settlement(session, claim, signer)
            assert refused.value.code == code
        await workflow.confirm_settlement(
            session, claim, {"role": "relative", "name": "李小明", "relation": "child"}
        )
        await session.commit()
    detail = (await api.get(f"/api/claims/{claim_id}", headers=adjuster)).json()
    assert detail["status"] == "agreed" and detail["agreed_amount_fen"] == 160000
    assert detail["confirmation"]["relation"] == "child" and detail["confirmation"]["name"] == "李小明"
    assert "agreed-1" in await notices(db, claim_id)


async def test_r_clm_13_payment_due_10_days_after_agreement(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r13", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-13")
    claim_id = await surveyed_claim(api, db, headers, policy, adjuster)
    await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 80000})
    agreed_at = utcnow().replace(microsecond=0)
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        await workflow.confirm_settlement(session, claim, {"role": "insured"}, now=agreed_at)
        await session.commit()
    claim = await load_claim(db, claim_id)
    assert claim.agreed_at == agreed_at and claim.payment_due_at == agreed_at + timedelta(days=10)
    payment = (await api.get(f"/api/claims/{claim_id}", headers=adjuster)).json()["deadlines"]["payment"]
    assert payment["state"] == "on_time" and payment["met_at"] is None
    text = (await notices(db, claim_id))["agreed-1"].text
    assert workflow.documents.local(agreed_at + timedelta(days=10)).strftime(
        "%Y年%m月%d日"
    ) in text


# --- R-CLM-12 ---------------------------------------------------------------------------------------------


async def test_r_clm_12_payment_only_to_the_insureds_own_account(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r12", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_r12", "underwriter")
    await staff_user(api, admin_headers, "clerk_r12", "agent", full_name="张会计", phone="13700001111")
    headers, policy = await paid_policy(api, service_headers, "r-clm-12")
    _, neighbour = await paid_policy(
        api,
        service_headers,
        "r-clm-12-neighbour",
        phone="13900003333",
        name="王五",
        id_number=resident_id("44190019800101123"),
        bank_account="6217000011112222333",
    )
    claim_id = await agreed_claim(api, db, headers, policy, adjuster, amount_fen=150000)
    url = f"/api/claims/{claim_id}/payment"

    async def pay(**body: Any) -> httpx.Response:
        return await api.post(url, headers=underwriter, json={"reference": "TRF-2026-0001", **body})

    assert (await api.post(url, headers=adjuster, json={"reference": "x"})).status_code == 403
    assert code_of(await pay(amount_fen=149999)) == "amount_mismatch"
    for name in (
        "东城街道大塘村民委员会",
        "大塘村委会",
        "东城镇人民政府",
        "大塘股份经济合作社",
        "Datang Village Committee",
    ):
        refused = await pay(payee_name=name, account_number="6228000099998888777", explanation="代领")
        assert code_of(refused) == "payee_collective_account", name
    assert code_of(
        await pay(payee_name="张会计", account_number="6228000099998888777", explanation="代领")
    ) == ("payee_is_staff")
    assert code_of(await pay(account_number="13700001111", explanation="手机号收款")) == "payee_is_staff"
    assert neighbour["terms"]["bank_account"].endswith("2333")
    refused = await pay(account_number="6217000011112222333", explanation="邻居代收")
    assert code_of(refused) == "payee_other_insured"
    son = await pay(payee_name="李小明", account_number="6228000099998888777")
    assert code_of(son) == "payee_explanation_required"
    assert son.json()["detail"]["detail"] == {"differs": "name"}
    assert (await load_claim(db, claim_id)).status == "agreed"  # nothing was paid by the refusals
    # The insured's own account on the policy, by default.
    paid = await pay()
    assert paid.status_code == 200, paid.text
    claim = paid.json()["claim"]
    assert claim["status"] == "paid" and claim["paid_amount_fen"] == 150000
    assert claim["payment"]["payee_is_insured"] is True and claim["payment"]["payee_name"] == "李四"
    assert claim["payment"]["account_masked"] == "6228***********8901"
    assert claim["deadlines"]["payment"]["state"] == "met"
    text = (await notices(db, claim_id))["paid"].text
    assert "1,500.00" in text and "6228***********8901" in text and OWN_ACCOUNT not in text
    assert code_of(await pay()) == "bad_status"


async def test_r_clm_12_another_payee_with_explanation(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r12b", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-12-explained")
    claim_id = await agreed_claim(api, db, headers, policy, adjuster, amount_fen=50000)
    paid = await api.post(
        f"/api/claims/{claim_id}/payment",
        headers=admin_headers,
        json={
            "reference": "TRF-2",
            "payee_name": "李小明",
            "bank_name": "农村商业银行",
            "account_number": "6230000011112222",
            "explanation": "被保险人住院，经其书面授权由儿子李小明代收",
        },
    )
    assert paid.status_code == 200, paid.text
    payment = paid.json()["claim"]["payment"]
    assert payment["payee_is_insured"] is False and payment["explanation"].startswith("被保险人住院")
    assert payment["account_masked"] == "6230********2222"
    audit = [a for a in await audited(db, claim_id) if a == "claims.payment"]
    assert audit == ["claims.payment"]


# --- scope, roles, status, audit ----------------------------------------------------------------------------


async def test_staff_out_of_region_get_404_and_roles_are_enforced(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    beijing, _ = await staff_user(api, admin_headers, "adj_bj", "adjuster", regions=(BEIJING,))
    agent, _ = await staff_user(api, admin_headers, "agent_dg", "agent")
    _, beijing_adjuster = await staff_user(api, admin_headers, "adj_bj2", "adjuster", regions=(BEIJING,))
    adjuster, _ = await staff_user(api, admin_headers, "adj_dg", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "scope")
    claim_id = await make_claim(db, policy, headers)
    at = (utcnow() + timedelta(hours=1)).isoformat()
    for method, path, body in (
        ("GET", f"/api/claims/{claim_id}", None),
        ("POST", f"/api/claims/{claim_id}/assign", {"adjuster_id": beijing_adjuster}),
        ("POST", f"/api/claims/{claim_id}/survey-schedule", {"at": at}),
        ("POST", f"/api/claims/{claim_id}/survey-report", survey_body()),
        ("POST", f"/api/claims/{claim_id}/documents-request", {"items": ["身份证"]}),
        ("POST", f"/api/claims/{claim_id}/deny", {"reasons": ["not_covered"]}),
        ("POST", f"/api/claims/{claim_id}/assess", {"amount_fen": 100}),
    ):
        response = await api.request(method, path, headers=beijing, json=body)
        assert response.status_code == 404 and code_of(response) == "not_found", path
    assert (await api.get("/api/claims", headers=beijing)).json() == []
    assert [c["id"] for c in (await api.get("/api/claims", headers=agent)).json()] == [claim_id]
    forbidden = await api.post(f"/api/claims/{claim_id}/survey-schedule", headers=agent, json={"at": at})
    assert forbidden.status_code == 403  # agents do not survey
    out_of_region = await api.post(
        f"/api/claims/{claim_id}/assign", headers=adjuster, json={"adjuster_id": beijing_adjuster}
    )
    assert code_of(out_of_region) == "adjuster_out_of_region"
    _, agent_id = await staff_user(api, admin_headers, "agent_dg2", "agent")
    assert (
        code_of(
            await api.post(f"/api/claims/{claim_id}/assign", headers=adjuster, json={"adjuster_id": agent_id})
        )
        == "adjuster_not_found"
    )
    status = await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 100})
    assert status.status_code == 422 and status.json()["detail"] == {
        "code": "bad_status",
        "message": status.json()["detail"]["message"],
        "detail": {"status": "reported", "expected": "surveyed,objected"},
    }
    assert await audited(db, claim_id) == []  # refusals write nothing


async def test_every_staff_action_is_audited_and_the_farmer_told_of_each_status(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, adjuster_id = await staff_user(api, admin_headers, "adj_all", "adjuster", full_name="陈查勘")
    underwriter, _ = await staff_user(api, admin_headers, "uw_all", "underwriter")
    headers, policy = await paid_policy(api, service_headers, "audit-all")
    claim_id = await make_claim(db, policy, headers)
    base = f"/api/claims/{claim_id}"
    assigned = await api.post(f"{base}/assign", headers=admin_headers, json={"adjuster_id": adjuster_id})
    assert assigned.status_code == 200 and assigned.json()["claim"]["adjuster_id"] == adjuster_id
    at = (utcnow() + timedelta(hours=2)).isoformat()
    assert (await api.post(f"{base}/survey-schedule", headers=adjuster, json={"at": at})).status_code == 200
    report = survey_body(**crop_sampling())
    assert (await api.post(f"{base}/survey-report", headers=adjuster, json=report)).status_code == 200
    assert (
        await api.post(f"{base}/documents-request", headers=adjuster, json={"items": ["身份证"]})
    ).status_code == 200
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        await workflow.documents_received(session, claim)
        await session.commit()
    assert (await api.post(f"{base}/assess", headers=adjuster, json={"amount_fen": 70000})).status_code == 200
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        await workflow.confirm_settlement(session, claim, {"role": "insured"})
        await session.commit()
    paid = await api.post(f"{base}/payment", headers=underwriter, json={"reference": "TRF-9"})
    assert paid.status_code == 200, paid.text
    assert await audited(db, claim_id) == [
        "claims.assign",
        "claims.survey_schedule",
        "claims.survey_report",
        "claims.documents_request",
        "claims.assess",
        "claims.payment",
    ]
    kinds = [e["kind"] for e in paid.json()["claim"]["timeline"]]
    assert kinds == [
        "adjuster_assigned",
        "survey_scheduled",
        "surveyed",
        "documents_requested",
        "documents_received",
        "assessed",
        "agreed",
        "paid",
    ]
    sent = await notices(db, claim_id)
    for key in ("adjuster-", "survey-", "surveyed", "documents-requested", "assessed-1", "agreed-1", "paid"):
        assert any(k.startswith(key) for k in sent), key
    assert all(m.identity_id == int(headers["X-Identity-Id"]) for m in sent.values())
    assert "陈查勘" in next(m.text for k, m in sent.items() if k.startswith("adjuster-"))


async def test_alerts_are_listed_in_scope_newest_first_and_acknowledged_with_audit(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, adjuster_id = await staff_user(api, admin_headers, "adj_alerts", "adjuster")
    beijing, _ = await staff_user(api, admin_headers, "adj_alerts_bj", "adjuster", regions=(BEIJING,))
    viewer, _ = await staff_user(api, admin_headers, "viewer_dg", "viewer")
    async with db.session() as session:
        session.add(
            StaffAlert(
                kind="deadline_overdue",
                region_code=DONGGUAN_TOWNSHIP,
                title="old",
                dedupe_key="a1",
                created_at=utcnow() - timedelta(hours=1),
            )
        )
        session.add(
            StaffAlert(kind="deadline_due_soon", region_code=DONGGUAN_TOWNSHIP, title="new", dedupe_key="a2")
        )
        session.add(
            StaffAlert(kind="deadline_overdue", region_code="110101000000", title="bj", dedupe_key="a3")
        )
        await session.commit()
    listed = (await api.get("/api/alerts", headers=adjuster)).json()
    assert [a["title"] for a in listed] == ["new", "old"]
    assert [a["title"] for a in (await api.get("/api/alerts", headers=beijing)).json()] == ["bj"]
    first = listed[0]["id"]
    assert (await api.post(f"/api/alerts/{first}/ack", headers=beijing)).status_code == 404
    assert (await api.post(f"/api/alerts/{first}/ack", headers=viewer)).status_code == 403
    acked = await api.post(f"/api/alerts/{first}/ack", headers=adjuster)
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == adjuster_id
    assert (await api.post(f"/api/alerts/{first}/ack", headers=adjuster)).status_code == 200  # idempotent
    open_ = (await api.get("/api/alerts", headers=adjuster, params={"unacknowledged": True})).json()
    assert [a["title"] for a in open_] == ["old"]
    async with db.session() as session:
        audits = (await session.exec(select(AuditLog).where(AuditLog.action == "alerts.ack"))).all()
    assert [a.target_id for a in audits] == [str(first)]

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
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlmodel import col, select

from backend.alerts.models import StaffAlert
from backend.claims import rules, workflow
from backend.claims.models import Claim
from backend.db import Database, utcnow
from backend.enrollment.models import Document
from backend.outbox.models import OutboxMessage
from backend.staff.models import AuditLog
from tests.backend.test_enrollment_api import farmer_application, identity, signed_form, submit
from tests.conftest import STAFF_PASSWORD, login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, resident_id
from tests.images import unique_png

DONGGUAN = "441900000000"
BEIJING = "110000000000"
VILLAGE_A = "441900003001"
VILLAGE_B = "441900003002"
OWN_ACCOUNT = "6228480012345678901"


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
        "password": STAFF_PASSWORD,
        "role": role,
        "region_codes": list(regions),
        "full_name": full_name,
        "phone": phone,
    }
    created = await api.post("/api/staff/users", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    return await login(api, username, STAFF_PASSWORD), int(created.json()["id"])


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
    region_code = fields.pop("region_code", DONGGUAN_TOWNSHIP)
    async with db.session() as session:
        claim = Claim(
            number=f"CL{secrets.token_hex(6).upper()}",
            policy_id=policy["id"],
            product_code=product_code or policy["product_code"],
            identity_id=int(headers["X-Identity-Id"]),
            region_code=region_code,
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


def signed(record_id: int | None = None, **signer: Any) -> dict[str, Any]:
    """Samplers and the insured's signature, with the photo of the signed record (R-CLM-8, R-ENR-5)."""
    return {
        "samplers": ["陈查勘", "刘查勘"],
        "sampling_signer": {"role": "insured", "signed_record_document_id": record_id, **signer},
    }


SIGNED = signed()  # for the refusals decided before the signature is looked at


def crop_sampling(*classes: str, record_id: int | None = None) -> dict[str, Any]:
    found = list(classes or ("medium",))
    return {
        "sampling": [sample(VILLAGE_A, c) for c in found],
        "loss_villages": [{"village_code": VILLAGE_A, "loss_classes": found}],
        **signed(record_id),
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
        survey_body(**crop_sampling(record_id=await signed_form(api, adjuster)))
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
    reported = (await load_claim(db, claim_id)).reported_at
    due = (await load_claim(db, claim_id)).survey_due_at
    assert due == reported + timedelta(hours=24)  # the same day, at most 24 hours after the report
    late = (reported + timedelta(hours=24, minutes=1)).isoformat()
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
    local_time = workflow.documents.local(reported + timedelta(hours=24, minutes=1))
    assert local_time.strftime("%m月%d日 %H:%M") in told.text  # the agreed time, in China time
    # Within the 24 hours (up to the last minute) no reason is needed; the farmer is told the time.
    other = await make_claim(db, policy, headers)
    last_minute = (await load_claim(db, other)).reported_at + timedelta(hours=23, minutes=59)
    on_time = await api.post(
        f"/api/claims/{other}/survey-schedule", headers=adjuster, json={"at": last_minute.isoformat()}
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
        ("sow", "head", "20", True),  # breeding sows are large animals
        ("sow", "head", "19", False),
        ("dairy_cow", "head", "20", True),  # so are cattle
        ("pig", "head", "20", False),  # fattening pigs are not (their product does not say so)
        ("pig", "head", "500", False),
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
    text = next(m.text for k, m in (await notices(db, claim_id)).items() if k.startswith("survey-"))
    assert ("政府" in text) is joint
    # Staff may decide otherwise explicitly.
    forced = await api.post(
        f"/api/claims/{claim_id}/survey-schedule",
        headers=adjuster,
        json={"at": at, "joint_with_government": not joint},
    )
    assert forced.json()["claim"]["joint_survey"] is (not joint)


async def joint_flags(db: Database, claim_ids: list[int]) -> list[bool]:
    return [(await load_claim(db, c)).joint_survey for c in claim_ids]


async def link_to_new_event(api: httpx.AsyncClient, adjuster: dict[str, str], claim_ids: list[int]) -> int:
    made = await api.post(
        "/api/events",
        headers=adjuster,
        json={"name": "台风“海鸥”", "cause": "typhoon", "started_on": utcnow().date().isoformat()},
    )
    assert made.status_code == 201, made.text
    event_id = int(made.json()["id"])
    linked = await api.post(f"/api/events/{event_id}/claims", headers=adjuster, json={"claim_ids": claim_ids})
    assert linked.status_code == 200, linked.text
    return event_id


async def test_r_clm_6_joint_survey_threshold_is_per_event_not_per_claim(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_joint_event", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "joint-event")
    # Three households of one typhoon, 40 mu each: none reaches 100 mu, the event does (120 mu).
    rice = [await make_claim(db, policy, headers, lost_quantity="40") for _ in range(3)]
    event_id = await link_to_new_event(api, adjuster, rice[:2])
    assert not any(await joint_flags(db, rice[:2]))  # 80 mu: not yet
    linked = await api.post(f"/api/events/{event_id}/claims", headers=adjuster, json={"claim_ids": [rice[2]]})
    assert linked.status_code == 200, linked.text
    assert all(await joint_flags(db, rice))
    at = (utcnow() + timedelta(hours=2)).isoformat()
    scheduled = await api.post(f"/api/claims/{rice[0]}/survey-schedule", headers=adjuster, json={"at": at})
    assert scheduled.status_code == 200 and scheduled.json()["claim"]["joint_survey"] is True
    text = next(m.text for k, m in (await notices(db, rice[0])).items() if k.startswith("survey-"))
    assert "政府" in text
    # 12 + 8 sows in one event are 20 large animals; 15 + 10 fattening pigs are none.
    sows = [
        await make_claim(
            db, policy, headers, product_code="sow", unit="head", lost_quantity=n, cause="disease"
        )
        for n in ("12", "8")
    ]
    pigs = [
        await make_claim(
            db, policy, headers, product_code="pig", unit="head", lost_quantity=n, cause="disease"
        )
        for n in ("15", "10")
    ]
    await link_to_new_event(api, adjuster, sows)
    await link_to_new_event(api, adjuster, pigs)
    assert all(await joint_flags(db, sows))
    assert not any(await joint_flags(db, pigs))
    pig_survey = await api.post(f"/api/claims/{pigs[0]}/survey-schedule", headers=adjuster, json={"at": at})
    assert pig_survey.json()["claim"]["joint_survey"] is False


# --- R-CLM-8 / R-CLM-9 survey report ------------------------------------------------------------------------


async def test_r_clm_8_crop_claims_need_a_sample_point_per_loss_class_in_every_village(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r8", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-8")
    claim_id = await make_claim(db, policy, headers)  # rice, a single household: sampling required
    url = f"/api/claims/{claim_id}/survey-report"
    both = [
        {"village_code": VILLAGE_A, "loss_classes": ["light", "heavy"]},
        {"village_code": VILLAGE_B, "loss_classes": ["light", "heavy"]},
    ]

    async def refused(code: str, **body: Any) -> dict[str, str]:
        response = await api.post(url, headers=adjuster, json=survey_body(**body))
        assert response.status_code == 422 and code_of(response) == code, response.text
        detail: dict[str, str] = response.json()["detail"]["detail"]
        return detail

    await refused("sampling_required")
    one = [sample(VILLAGE_A, "medium")]
    await refused("sampling_samplers_required", sampling=one, sampling_signer={"role": "insured"})
    await refused("sampling_unsigned", sampling=one, samplers=["陈查勘"])  # signed by the insured too
    await refused("sampling_record_invalid", sampling=[sample(VILLAGE_A, "medium", lost_count=120)], **SIGNED)
    await refused("sampling_village_outside_claim", sampling=[sample("440300000001", "medium")], **SIGNED)
    # The claim is located to a township: the surveyor names the villages of the loss.
    await refused("loss_villages_required", sampling=one, **SIGNED)
    # A village of the loss without any sample point is refused, whatever was sampled elsewhere.
    only_a = [sample(VILLAGE_A, "light"), sample(VILLAGE_A, "heavy")]
    missed = await refused("sampling_village_missing", sampling=only_a, loss_villages=both, **SIGNED)
    assert missed == {"village_code": VILLAGE_B}
    # Village B has a light point but heavy loss too: it lacks a heavy point.
    uneven = [*only_a, sample(VILLAGE_B, "light")]
    lacking = await refused("sampling_incomplete", sampling=uneven, loss_villages=both, **SIGNED)
    assert lacking == {"village_code": VILLAGE_B, "missing": "heavy"}
    # A point in a village not named as a village of the loss is inconsistent.
    stray = [*only_a, sample(VILLAGE_B, "light")]
    await refused(
        "sampling_village_outside_loss",
        sampling=stray,
        loss_villages=[{"village_code": VILLAGE_A, "loss_classes": ["light", "heavy"]}],
        **SIGNED,
    )
    # R-ENR-5 for the insured's signature: a relative gives name and relation; an authorised person needs
    # the kept authorisation; nobody else signs.
    complete = [*uneven, sample(VILLAGE_B, "heavy")]
    body: dict[str, Any] = {"sampling": complete, "loss_villages": both, "samplers": ["陈查勘", "刘查勘"]}
    await refused("signer_name_missing", **body, sampling_signer={"role": "relative", "relation": "spouse"})
    await refused("signer_relation_missing", **body, sampling_signer={"role": "relative", "name": "王芳"})
    await refused("authorisation_missing", **body, sampling_signer={"role": "authorised", "name": "赵六"})
    # R-CLM-8: the adjuster posts the record, so no role is taken on its word: whoever signs, the photo of
    # the signed record is the evidence (a staff upload of kind signed_form), for the insured too.
    await refused("sampling_signature_missing", **body, sampling_signer={"role": "insured"})
    relative = {"role": "relative", "name": "王芳", "relation": "spouse"}
    await refused("sampling_signature_missing", **body, sampling_signer=relative)
    others = await signed_form(api, admin_headers)  # a form another staff member uploaded proves nothing here
    await refused(
        "sampling_signature_not_yours",
        **body,
        sampling_signer={**relative, "signed_record_document_id": others},
    )
    record_id = await signed_form(api, adjuster)
    signer = {**relative, "signed_record_document_id": record_id}
    done = await api.post(url, headers=adjuster, json=survey_body(**body, sampling_signer=signer))
    assert done.status_code == 200, done.text
    report = done.json()["claim"]["survey_report"]
    assert len(report["sampling"]) == 4 and all(s["signed_by"] == "王芳" for s in report["sampling"])
    assert {"place", "method", "sample_size", "lost_count", "loss_degree"} <= set(report["sampling"][0])
    assert report["sampling_record"] == {
        "villages": {VILLAGE_A: ["light", "heavy"], VILLAGE_B: ["light", "heavy"]},
        "samplers": ["陈查勘", "刘查勘"],
        "signer": {
            "role": "relative",
            "name": "王芳",
            "relation": "spouse",
            "authorisation_document_id": None,
            "signed_record_document_id": record_id,
        },
    }
    # Livestock needs no sampled yield measurement.
    pig = await make_claim(
        db, policy, headers, product_code="pig", unit="head", lost_quantity="3", cause="disease"
    )
    plain = await api.post(f"/api/claims/{pig}/survey-report", headers=adjuster, json=survey_body())
    assert plain.status_code == 200, plain.text


async def test_r_clm_8_a_claim_located_to_a_village_is_sampled_there_for_its_own_loss_class(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r8v", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-8-village")
    claim_id = await make_claim(db, policy, headers, region_code=VILLAGE_A)
    url = f"/api/claims/{claim_id}/survey-report"
    # Its own village is a village of the loss without being named; its loss degree (heavy) is present there.
    elsewhere = survey_body(sampling=[sample(VILLAGE_B, "heavy")], loss_degree="heavy", **SIGNED)
    response = await api.post(url, headers=adjuster, json=elsewhere)
    assert code_of(response) == "sampling_village_outside_loss"
    light_only = survey_body(sampling=[sample(VILLAGE_A, "light")], loss_degree="heavy", **SIGNED)
    response = await api.post(url, headers=adjuster, json=light_only)
    assert response.json()["detail"]["detail"] == {"village_code": VILLAGE_A, "missing": "heavy"}
    named_b = survey_body(
        sampling=[sample(VILLAGE_A, "heavy")],
        loss_villages=[{"village_code": VILLAGE_B, "loss_classes": ["medium"]}],
        loss_degree="heavy",
        **SIGNED,
    )
    response = await api.post(url, headers=adjuster, json=named_b)
    assert response.json()["detail"]["detail"] == {"village_code": VILLAGE_B}
    record = signed(await signed_form(api, adjuster))
    done = survey_body(sampling=[sample(VILLAGE_A, "heavy")], loss_degree="heavy", **record)
    response = await api.post(url, headers=adjuster, json=done)
    assert response.status_code == 200, response.text
    record = response.json()["claim"]["survey_report"]["sampling_record"]
    assert record["villages"] == {VILLAGE_A: ["heavy"]}
    assert record["signer"]["role"] == "insured" and record["signer"]["name"] == policy["insured_name"]


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


async def _send_disposal_evidence(
    api: httpx.AsyncClient, headers: dict[str, str], claim_id: int
) -> dict[str, Any]:
    """The farmer's upload in chat: a photo of the disposal, attached to the claim."""
    png = unique_png()
    uploaded = await api.post(
        "/api/bot/claims/media", headers=headers, files={"file": ("burial.png", io.BytesIO(png), "image/png")}
    )
    assert uploaded.status_code == 201, uploaded.text
    sent = await api.post(
        f"/api/bot/claims/{claim_id}/attachments",
        headers=headers,
        json={"purpose": "disposal", "document_ids": [uploaded.json()["id"]]},
    )
    assert sent.status_code == 200, sent.text
    result: dict[str, Any] = sent.json()
    return result


async def test_r_clm_7_an_upload_is_evidence_until_an_adjuster_confirms_it(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r7c", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_r7c", "underwriter")
    outsider, _ = await staff_user(api, admin_headers, "adj_r7bj", "adjuster", regions=(BEIJING,))
    headers, policy = await paid_policy(api, service_headers, "r-clm-7-confirm")
    dead_pigs: dict[str, Any] = {
        "product_code": "pig",
        "unit": "head",
        "lost_quantity": "3",
        "cause": "disease",
        "disposal_required": True,
    }
    claim_id = await surveyed_claim(api, db, headers, policy, adjuster, **dead_pigs)
    url = f"/api/claims/{claim_id}/disposal"
    nothing = await api.post(url, headers=adjuster, json={"decision": "confirm"})
    assert code_of(nothing) == "disposal_evidence_missing"  # nothing sent yet to confirm
    mine = await _send_disposal_evidence(api, headers, claim_id)
    assert mine["disposal_proven"] is False and mine["next_action"] == "disposal_under_review"
    refused = await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 90000})
    assert code_of(refused) == "disposal_proof_missing"  # the upload alone is not proof
    # Rejected with its reason: the farmer is told and asked again.
    assert (await api.post(url, headers=underwriter, json={"decision": "reject"})).status_code == 403
    assert (await api.post(url, headers=outsider, json={"decision": "confirm"})).status_code == 404
    no_reason = await api.post(url, headers=adjuster, json={"decision": "reject"})
    assert code_of(no_reason) == "reason_required"
    rejected = await api.post(url, headers=adjuster, json={"decision": "reject", "reason": "照片看不出深埋"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["claim"]["disposal_received_at"] is None
    told = (await notices(db, claim_id))["disposal-rejected-1"].text
    assert "照片看不出深埋" in told and "重新发送" in told
    again = (await api.get(f"/api/bot/claims/{claim_id}", headers=headers)).json()
    assert again["next_action"] == "send_disposal_proof"
    # Sent again, confirmed by the adjuster: now it is proof, the farmer is told, the claim is assessed.
    await _send_disposal_evidence(api, headers, claim_id)
    confirmed = await api.post(url, headers=adjuster, json={"decision": "confirm"})
    assert confirmed.status_code == 200, confirmed.text
    claim = confirmed.json()["claim"]
    assert claim["disposal_proven_at"] is not None and claim["disposal_confirmation"]["by"] == "adjuster"
    assert "无害化处理已由查勘员核实确认" in (await notices(db, claim_id))["disposal-confirmed"].text
    assert code_of(await api.post(url, headers=adjuster, json={"decision": "confirm"})) == (
        "disposal_already_confirmed"
    )
    assert {"claims.disposal_reject", "claims.disposal_confirm"} <= set(await audited(db, claim_id))
    ok = await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 90000})
    assert ok.status_code == 200, ok.text


async def test_r_clm_7_an_adjuster_records_the_vet_authoritys_confirmation(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r7v", "adjuster")
    headers, policy = await paid_policy(api, service_headers, "r-clm-7-vet")
    claim_id = await make_claim(
        db,
        policy,
        headers,
        product_code="pig",
        unit="head",
        lost_quantity="2",
        cause="disease",
        disposal_required=True,
    )
    url = f"/api/claims/{claim_id}/disposal"
    vet = {
        "decision": "confirm",
        "by": "vet",
        "vet_authority": "东城畜牧兽医站",
        "vet_person": "黄兽医",
        "vet_confirmed_at": (utcnow() - timedelta(hours=3)).isoformat(),
        "vet_document": "DG-WHH-2026-0117",
    }
    incomplete = await api.post(url, headers=adjuster, json={**vet, "vet_document": "", "vet_person": ""})
    assert code_of(incomplete) == "vet_confirmation_incomplete"
    assert incomplete.json()["detail"]["detail"] == {"missing": "person,document"}
    recorded = await api.post(url, headers=adjuster, json=vet)
    assert recorded.status_code == 200, recorded.text
    confirmation = recorded.json()["claim"]["disposal_confirmation"]
    assert confirmation["by"] == "vet" and confirmation["authority"] == "东城畜牧兽医站"
    assert confirmation["person"] == "黄兽医" and confirmation["document"] == "DG-WHH-2026-0117"
    assert "东城畜牧兽医站" in (await notices(db, claim_id))["disposal-confirmed"].text
    rice = await make_claim(db, policy, headers)
    assert code_of(await api.post(f"/api/claims/{rice}/disposal", headers=adjuster, json=vet)) == (
        "disposal_not_required"
    )


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
    body = survey_body(
        **crop_sampling(record_id=await signed_form(api, adjuster)), harvest_on=harvest.isoformat()
    )
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
    assert workflow.documents.local(agreed_at + timedelta(days=10)).strftime("%Y年%m月%d日") in text


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
    # A name says nothing about whose account it is: an unknown account is never paid on a free-text
    # explanation, whatever the name ("大塘村", "张 会计" ...): it needs a payee exception and a second approval.
    unknown = "6228000099998888777"
    for name in ("大塘村", "东城镇", "大塘村村务账户", "张 会计", "李小明"):
        refused = await pay(payee_name=name, account_number=unknown, explanation="代领")
        assert code_of(refused) == "payee_explanation_required", name
    entered = await api.post(
        f"/api/claims/{claim_id}/payee-exceptions",
        headers=underwriter,
        json={
            "payee_name": "张 会计",
            "bank_name": "农商银行",
            "account_number": unknown,
            "explanation": "代领",
        },
    )
    assert entered.status_code == 201, entered.text
    assert entered.json()["status"] == "pending" and entered.json()["account_masked"].endswith("8777")
    refused = await pay(payee_name="张 会计", account_number=unknown)
    assert code_of(refused) == "payee_second_approval_required"  # one staff member's word is not enough
    # Accounts known to staff (the registry) are refused whatever the name, even the insured's own.
    village_account = "6228 0000 1111 0000"
    registered = await api.post(
        "/api/payee-accounts",
        headers=underwriter,
        json={
            "account_number": village_account,
            "bank_name": "农商银行",
            "kind": "village_committee",
            "holder": "大塘村民委员会",
            "region_code": DONGGUAN_TOWNSHIP,
        },
    )
    assert registered.status_code == 201, registered.text
    refused = await pay(payee_name="李四", account_number="6228000011110000")
    assert code_of(refused) == "payee_account_registered"
    assert refused.json()["detail"]["detail"] == {"kind": "village_committee"}
    # A phone number is no bank account (12-30 digits): refused before any lookup; a staff member's bank
    # account is refused through the registry (kind "staff"). Another insured's account on file too.
    assert code_of(await pay(account_number="13700001111")) == "bank_account_format"
    assert neighbour["terms"]["bank_account"].endswith("2333")
    assert code_of(await pay(account_number="6217000011112222333")) == "payee_other_insured"
    # The insured's own account registered as an insured's account: refused for others, not for them.
    mine = {"account_number": OWN_ACCOUNT, "kind": "insured_other", "holder": "李四", "region_code": DONGGUAN}
    assert (await api.post("/api/payee-accounts", headers=underwriter, json=mine)).status_code == 201
    assert (await load_claim(db, claim_id)).status == "agreed"  # nothing was paid by the refusals
    # The insured's own account on the policy, by default, is paid directly.
    paid = await pay()
    assert paid.status_code == 200, paid.text
    claim = paid.json()["claim"]
    assert claim["status"] == "paid" and claim["paid_amount_fen"] == 150000
    assert claim["payment"]["payee_is_insured"] is True and claim["payment"]["payee_name"] == "李四"
    assert claim["payment"]["account_masked"] == "6228***********8901"
    assert claim["payment"]["approved_by"] is None
    assert claim["deadlines"]["payment"]["state"] == "met"
    text = (await notices(db, claim_id))["paid"].text
    assert "1,500.00" in text and "6228***********8901" in text and OWN_ACCOUNT not in text
    assert code_of(await pay()) == "bad_status"


async def test_r_clm_12_the_registry_refuses_an_account_whatever_the_payee_name(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r12r", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_r12r", "underwriter")
    beijing, _ = await staff_user(api, admin_headers, "uw_r12bj", "underwriter", regions=(BEIJING,))
    headers, policy = await paid_policy(api, service_headers, "r-clm-12-registry")
    claim_id = await agreed_claim(api, db, headers, policy, adjuster, amount_fen=50000)
    entries = {
        "6228000011110001": ("village_committee", "大塘村"),
        "6228000011110002": ("township", "东城镇"),
        "6228000011110003": ("village_committee", "大塘村村务账户"),
        "6228000011110004": ("staff", "张 会计"),
    }
    for account, (kind, holder) in entries.items():
        body = {"account_number": account, "kind": kind, "holder": holder, "region_code": DONGGUAN}
        outside = await api.post("/api/payee-accounts", headers=beijing, json=body)
        assert code_of(outside) == "outside_scope"  # scoped: staff keep their own region's registry
        made = await api.post("/api/payee-accounts", headers=adjuster, json=body)
        assert made.status_code == 201, made.text
    again = {"account_number": "6228000011110001", "kind": "township", "region_code": DONGGUAN}
    assert code_of(await api.post("/api/payee-accounts", headers=adjuster, json=again)) == (
        "payee_account_known"
    )
    listed = (await api.get("/api/payee-accounts", headers=underwriter)).json()
    assert len(listed) == 4 and all("*" in e["account_masked"] for e in listed)
    assert (await api.get("/api/payee-accounts", headers=beijing)).json() == []
    for account, (kind, _holder) in entries.items():
        # Under a harmless name, with an explanation: refused at entry, since the account is known.
        exception = {
            "payee_name": "李小明",
            "bank_name": "农商银行",
            "account_number": account,
            "explanation": "被保险人授权其子代收",
        }
        refused = await api.post(
            f"/api/claims/{claim_id}/payee-exceptions", headers=underwriter, json=exception
        )
        assert code_of(refused) == "payee_account_registered" and refused.json()["detail"]["detail"] == {
            "kind": kind
        }
    # Removing an entry is audited, and the account may then be entered as an exception.
    first = next(e for e in listed if e["holder"] == "大塘村")
    removed = await api.delete(f"/api/payee-accounts/{first['id']}", headers=adjuster)
    assert removed.status_code == 200, removed.text
    async with db.session() as session:
        actions = (
            await session.exec(select(AuditLog.action).where(AuditLog.target_type == "payee_account"))
        ).all()
    assert sorted(actions) == ["payees.register"] * 4 + ["payees.remove"]
    assert len((await api.get("/api/payee-accounts", headers=underwriter)).json()) == 3


async def test_r_clm_12_another_payee_needs_an_explanation_and_a_second_staff_approval(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r12b", "adjuster")
    first, _ = await staff_user(api, admin_headers, "uw_r12b1", "underwriter")
    second, second_id = await staff_user(api, admin_headers, "uw_r12b2", "underwriter")
    headers, policy = await paid_policy(api, service_headers, "r-clm-12-explained")
    claim_id = await agreed_claim(api, db, headers, policy, adjuster, amount_fen=50000)
    son = {
        "payee_name": "李小明",
        "bank_name": "农村商业银行",
        "account_number": "6230000011112222",
        "explanation": "被保险人住院，经其书面授权由儿子李小明代收",
    }
    url = f"/api/claims/{claim_id}/payee-exceptions"
    no_reason = await api.post(url, headers=first, json={**son, "explanation": " "})
    assert code_of(no_reason) == "payee_explanation_required"
    own = await api.post(url, headers=first, json={**son, "account_number": OWN_ACCOUNT})
    assert code_of(own) == "payee_is_insured_account"
    entered = (await api.post(url, headers=first, json=son)).json()
    assert code_of(await api.post(url, headers=first, json=son)) == "payee_exception_open"
    approve = f"{url}/{entered['id']}/approve"
    same = await api.post(approve, headers=first, json={})
    assert code_of(same) == "second_approver_required"  # not the user who entered it
    approved = await api.post(approve, headers=second, json={"note": "授权书已核对"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == second_id
    assert code_of(await api.post(approve, headers=second, json={})) == "payee_exception_decided"
    paid = await api.post(
        f"/api/claims/{claim_id}/payment",
        headers=first,
        json={"reference": "TRF-2", "account_number": "6230 0000 1111 2222"},
    )
    assert paid.status_code == 200, paid.text
    payment = paid.json()["claim"]["payment"]
    assert payment["payee_is_insured"] is False and payment["payee_name"] == "李小明"
    assert payment["explanation"].startswith("被保险人住院") and payment["approved_by"] == second_id
    assert payment["account_masked"] == "6230********2222"
    assert [e["status"] for e in paid.json()["claim"]["payee_exceptions"]] == ["used"]
    assert [a for a in await audited(db, claim_id) if "payee" in a or "payment" in a] == [
        "claims.payee_exception",
        "claims.payee_exception_approved",
        "claims.payment",
    ]


async def test_r_clm_12_a_refused_payee_exception_is_never_paid(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_r12c", "adjuster")
    first, _ = await staff_user(api, admin_headers, "uw_r12c1", "underwriter")
    second, _ = await staff_user(api, admin_headers, "uw_r12c2", "underwriter")
    headers, policy = await paid_policy(api, service_headers, "r-clm-12-refused")
    claim_id = await agreed_claim(api, db, headers, policy, adjuster, amount_fen=50000)
    body = {"payee_name": "大塘村", "bank_name": "农商银行", "account_number": "6230000099990000"}
    url = f"/api/claims/{claim_id}/payee-exceptions"
    entered = (await api.post(url, headers=first, json={**body, "explanation": "村里统一代领"})).json()
    refused = await api.post(f"{url}/{entered['id']}/refuse", headers=second, json={"note": "不得代领"})
    assert refused.json()["status"] == "refused"
    paid = await api.post(
        f"/api/claims/{claim_id}/payment",
        headers=first,
        json={"reference": "TRF-3", "account_number": body["account_number"]},
    )
    assert code_of(paid) == "payee_exception_not_approved"
    assert (await load_claim(db, claim_id)).status == "agreed"


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
    report = survey_body(**crop_sampling(record_id=await signed_form(api, adjuster)))
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


async def _statements(db: Database, call: Any) -> tuple[Any, int]:
    """Run ``call`` and count the SQL statements it sends."""
    from sqlalchemy import event

    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        result = await call()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    return result, len(seen)


async def test_payment_lists_run_no_query_per_row(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    """The registry list and a claim's payee exceptions / pre-payments cost the same whatever their count."""
    maintainer, _ = await staff_user(api, admin_headers, "adj_rows", "adjuster")

    async def register(n: int) -> None:
        body = {"account_number": f"62280000222200{n:02d}", "kind": "township", "region_code": DONGGUAN}
        assert (await api.post("/api/payee-accounts", headers=maintainer, json=body)).status_code == 201

    async def listing() -> httpx.Response:
        return await api.get("/api/payee-accounts", headers=maintainer)

    await register(1)
    one, with_one = await _statements(db, listing)
    for n in range(2, 7):
        await register(n)
    six, with_six = await _statements(db, listing)
    assert len(one.json()) == 1 and len(six.json()) == 6
    assert with_six == with_one


async def test_r_clm_12_account_numbers_are_bank_accounts_before_any_lookup(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    """The registry and the payee exceptions check the number as enrollment does (12-30 digits): a 35-digit
    number would not fit the column (a 500 on PostgreSQL) and "------" is no account at all."""
    adjuster, _ = await staff_user(api, admin_headers, "adj_r12fmt", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_r12fmt", "underwriter")
    headers, policy = await paid_policy(api, service_headers, "r-clm-12-format")
    claim_id = await agreed_claim(api, db, headers, policy, adjuster, amount_fen=50000)
    for number in ("6" * 35, "------"):
        body = {"account_number": number, "kind": "township", "region_code": DONGGUAN}
        refused = await api.post("/api/payee-accounts", headers=adjuster, json=body)
        assert refused.status_code == 422 and code_of(refused) == "bank_account_format", number
        exception = {
            "payee_name": "李小明",
            "bank_name": "农商银行",
            "account_number": number,
            "explanation": "代收",
        }
        refused = await api.post(
            f"/api/claims/{claim_id}/payee-exceptions", headers=underwriter, json=exception
        )
        assert refused.status_code == 422 and code_of(refused) == "bank_account_format", number
        paid = await api.post(
            f"/api/claims/{claim_id}/payment",
            headers=underwriter,
            json={"reference": "T", "account_number": number},
        )
        assert paid.status_code == 422 and code_of(paid) == "bank_account_format", number
    assert (await api.get("/api/payee-accounts", headers=adjuster)).json() == []
    assert (await load_claim(db, claim_id)).status == "agreed"


async def test_r_clm_12_the_policys_own_account_is_paid_whatever_kind_it_is_registered_as(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    """A cooperative's account is registered (its households are paid each on others' claims), yet the
    cooperative's own policy pays into it; any other policy's claim is refused."""
    adjuster, _ = await staff_user(api, admin_headers, "adj_r12coop", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_r12coop", "underwriter")
    headers, policy = await paid_policy(api, service_headers, "r-clm-12-coop")
    other_headers, other = await paid_policy(
        api,
        service_headers,
        "r-clm-12-coop-member",
        phone="13900004444",
        name="王五",
        id_number=resident_id("44190019800101123"),
        bank_account="6217000011112222444",
    )
    body = {
        "account_number": OWN_ACCOUNT,
        "kind": "cooperative",
        "holder": "大塘合作社",
        "region_code": DONGGUAN,
    }
    assert (await api.post("/api/payee-accounts", headers=adjuster, json=body)).status_code == 201
    other_claim = await agreed_claim(api, db, other_headers, other, adjuster, amount_fen=30000)
    exception = {
        "payee_name": "大塘合作社",
        "bank_name": "农商银行",
        "account_number": OWN_ACCOUNT,
        "explanation": "代收",
    }
    refused = await api.post(
        f"/api/claims/{other_claim}/payee-exceptions", headers=underwriter, json=exception
    )
    assert code_of(refused) == "payee_account_registered"
    claim_id = await agreed_claim(api, db, headers, policy, adjuster, amount_fen=50000)
    paid = await api.post(
        f"/api/claims/{claim_id}/payment", headers=underwriter, json={"reference": "TRF-C1"}
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["claim"]["payment"]["payee_is_insured"] is True


async def test_r_clm_12_the_registry_hides_the_kind_of_another_regions_account(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    dongguan, _ = await staff_user(api, admin_headers, "adj_r12dg", "adjuster")
    beijing, _ = await staff_user(api, admin_headers, "adj_r12bjk", "adjuster", regions=(BEIJING,))
    body = {
        "account_number": "6228000011119999",
        "kind": "staff",
        "holder": "张 会计",
        "region_code": DONGGUAN,
    }
    assert (await api.post("/api/payee-accounts", headers=dongguan, json=body)).status_code == 201
    again = await api.post("/api/payee-accounts", headers=beijing, json={**body, "region_code": BEIJING})
    assert code_of(again) == "payee_account_known" and again.json()["detail"]["detail"] == {}
    mine = await api.post("/api/payee-accounts", headers=dongguan, json={**body, "kind": "township"})
    assert code_of(mine) == "payee_account_known" and mine.json()["detail"]["detail"] == {"kind": "staff"}

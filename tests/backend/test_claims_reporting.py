"""The claim report through the API: ownership, validation, lateness, collective reports (R-CLM-1, -3, -4)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlmodel import select

from backend.claims.models import DocumentRequest
from backend.claims.schemas import ClaimOut
from backend.db import Database, utcnow
from backend.enrollment.models import Policy
from backend.staff.models import StaffUser
from messages import render
from tests.backend.test_claims_workflow import _statements
from tests.backend.test_enrollment_api import farmer_application, identity, submit
from tests.conftest import login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP


async def paid_policy(api: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    application = (await submit(api, headers, farmer_application(**overrides))).json()
    paid = await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    policy: dict[str, Any] = paid.json()["policy"]
    return policy


async def cover_began(db: Database, ago: timedelta, policy_id: int | None = None) -> None:
    """Move the start of the cover (of one policy, or of all) back: a loss must lie inside the cover, and
    a policy issued in a test begins the moment it is issued."""
    async with db.session() as session:
        query = select(Policy) if policy_id is None else select(Policy).where(Policy.id == policy_id)
        for policy in (await session.exec(query)).all():
            policy.starts_at = utcnow() - ago
            session.add(policy)
        await session.commit()


def report(policy_id: int, **overrides: Any) -> dict[str, Any]:
    """A loss report; by default the loss began now, just after the policy was issued (inside the cover)."""
    body: dict[str, Any] = {
        "idempotency_key": secrets.token_urlsafe(12),
        "policy_id": policy_id,
        "cause": "heavy_rain",
        "loss_started_at": utcnow().isoformat(),
        "lost_quantity": "4",
        "estimated_amount_yuan": "2000",
        "place_name": "大塘边",
        "reporter_name": "李四",
    }
    body.update(overrides)
    return body


async def test_r_clm_4_report_checks_every_field_and_is_idempotent(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    headers = await identity(api, service_headers, "clm-4")
    policy = await paid_policy(api, headers)
    future = report(policy["id"], loss_started_at=(utcnow() + timedelta(hours=2)).isoformat())
    assert (await api.post("/api/bot/claims", headers=headers, json=future)).json()["detail"][
        "code"
    ] == "loss_in_future"
    wrong_cause = report(policy["id"], cause="disease")
    refused = await api.post("/api/bot/claims", headers=headers, json=wrong_cause)
    assert refused.json()["detail"]["code"] == "cause_not_covered_by_product"
    too_much = report(policy["id"], lost_quantity="11")
    assert (await api.post("/api/bot/claims", headers=headers, json=too_much)).json()["detail"]["code"] == (
        "lost_more_than_insured"
    )
    body = report(policy["id"])
    first = (await api.post("/api/bot/claims", headers=headers, json=body)).json()
    again = (await api.post("/api/bot/claims", headers=headers, json=body)).json()
    assert first["id"] == again["id"] and first["number"].startswith("CL")
    assert first["timeline"][0]["kind"] == "reported" and first["next_action"] == "wait"


async def test_r_clm_1_late_at_and_around_24_hours(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    headers = await identity(api, service_headers, "clm-1")
    policy = await paid_policy(api, headers)
    await cover_began(db, timedelta(days=10), policy["id"])
    on_time = report(policy["id"], loss_started_at=(utcnow() - timedelta(hours=23, minutes=59)).isoformat())
    late = report(policy["id"], loss_started_at=(utcnow() - timedelta(hours=26)).isoformat())
    assert (await api.post("/api/bot/claims", headers=headers, json=on_time)).json()["late"] is False
    marked = (await api.post("/api/bot/claims", headers=headers, json=late)).json()
    assert marked["late"] is True and 115 <= marked["delay_minutes"] <= 121
    days_late = report(
        policy["id"], loss_started_at=(utcnow() - timedelta(days=4, hours=4, minutes=30)).isoformat()
    )
    marked = (await api.post("/api/bot/claims", headers=headers, json=days_late)).json()
    assert (marked["delay_days"], marked["delay_hours"]) == (3, 4)  # not "100 hours"


async def test_r_clm_1_a_loss_before_the_cover_began_or_after_it_ended_is_refused(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    headers = await identity(api, service_headers, "clm-1-cover")
    policy = await paid_policy(api, headers)
    before = report(policy["id"], loss_started_at="2025-01-01T02:00:00+00:00")
    refused = await api.post("/api/bot/claims", headers=headers, json=before)
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "loss_outside_cover"
    detail = refused.json()["detail"]["detail"]
    starts = datetime.fromisoformat(detail["starts_at"])
    assert abs(starts - datetime.fromisoformat(policy["starts_at"])) < timedelta(seconds=1)
    assert datetime.fromisoformat(detail["ends_at"]) == datetime.fromisoformat(policy["ends_at"])
    # A cover that has ended: a loss after its end is refused too, one inside it is taken.
    async with db.session() as session:
        row = await session.get(Policy, policy["id"])
        assert row is not None
        row.starts_at, row.ends_at = utcnow() - timedelta(days=30), utcnow() - timedelta(hours=2)
        session.add(row)
        await session.commit()
    after = report(policy["id"], loss_started_at=(utcnow() - timedelta(hours=1)).isoformat())
    assert (await api.post("/api/bot/claims", headers=headers, json=after)).json()["detail"][
        "code"
    ] == "loss_outside_cover"
    inside = report(policy["id"], loss_started_at=(utcnow() - timedelta(hours=3)).isoformat())
    assert (await api.post("/api/bot/claims", headers=headers, json=inside)).status_code == 200
    # An agent's collective report is held to the same cover.
    agent = {"username": "agent_cov", "password": "agent-pass-01", "role": "agent"}
    agent["region_codes"] = ["441900000000"]  # type: ignore[assignment]
    assert (await api.post("/api/staff/users", json=agent, headers=admin_headers)).status_code == 201
    collective = {
        "village_code": DONGGUAN_TOWNSHIP,
        "cause": "flood",
        "loss_started_at": (utcnow() - timedelta(minutes=30)).isoformat(),
        "households": [{"policy_id": policy["id"], "lost_quantity": "2"}],
    }
    agent_headers = await login(api, "agent_cov", "agent-pass-01")
    made = await api.post("/api/claims/collective", headers=agent_headers, json=collective)
    assert made.json()["detail"]["code"] == "loss_outside_cover"


def _late_claim(delay_minutes: int) -> ClaimOut:
    now = utcnow()
    return ClaimOut(
        id=1,
        number="CL202612010000001",
        kind="individual",
        status="reported",
        policy_id=1,
        product_code="rice",
        cause="flood",
        loss_started_at=now,
        lost_quantity="3",
        unit="mu",
        estimated_amount_fen=0,
        reported_at=now,
        late=True,
        delay_minutes=delay_minutes,
        survey_due_at=now,
        disposal_required=False,
        disposal_proven=False,
        assessed_amount_fen=None,
        agreed_amount_fen=None,
        paid_amount_fen=None,
        paid_at=None,
        next_action="wait",
    )


def test_r_clm_1_a_late_report_says_its_delay_in_days_and_hours() -> None:
    three_days_four_hours = _late_claim(3 * 24 * 60 + 4 * 60 + 7)
    zh = render("claims/reported", "zh-CN", claim=three_days_four_hours)
    assert "晚了 3 天 4 小时" in zh and "76" not in zh
    en = render("claims/reported", "en", claim=three_days_four_hours)
    assert "3 days 4 hours late" in en and "76" not in en
    assert "晚了 5 小时，" in render("claims/reported", "zh-CN", claim=_late_claim(5 * 60 + 2))
    assert "晚了 2 天，" in render("claims/reported", "zh-CN", claim=_late_claim(2 * 24 * 60 + 30))
    assert "晚了 20 分钟" in render("claims/reported", "zh-CN", claim=_late_claim(20))


async def test_farmers_see_only_their_own_claims(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    owner = await identity(api, service_headers, "clm-owner")
    policy = await paid_policy(api, owner)
    stranger = await identity(api, service_headers, "clm-stranger", phone="13900003333")
    on_foreign_policy = await api.post("/api/bot/claims", headers=stranger, json=report(policy["id"]))
    assert on_foreign_policy.status_code == 404
    claim = (await api.post("/api/bot/claims", headers=owner, json=report(policy["id"]))).json()
    assert (await api.get(f"/api/bot/claims/{claim['id']}", headers=stranger)).status_code == 404
    assert (await api.get("/api/bot/claims", headers=stranger)).json() == []


async def test_my_claims_runs_no_query_per_claim(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    """The bot's "my claims" list costs the same statements for 1 claim as for 5, and each claim still
    gets its own timeline and its own open document request."""
    headers = await identity(api, service_headers, "clm-rows")
    policy = await paid_policy(api, headers)

    async def reported() -> int:
        made = await api.post(
            "/api/bot/claims", headers=headers, json=report(policy["id"], lost_quantity="1")
        )
        assert made.status_code == 200, made.text
        return int(made.json()["id"])

    async def listing() -> httpx.Response:
        return await api.get("/api/bot/claims", headers=headers)

    first = await reported()
    await listing()  # the identity is now in the directory's cache for both counts
    one, with_one = await _statements(db, listing)
    others = [await reported() for _ in range(4)]
    async with db.session() as session:
        admin = (await session.exec(select(StaffUser).where(StaffUser.username == "admin"))).one()
        session.add(DocumentRequest(claim_id=others[1], items=["bank_card"], requested_by=admin.id or 0))
        await session.commit()
    five, with_five = await _statements(db, listing)
    assert len(one.json()) == 1 and len(five.json()) == 5
    assert with_five == with_one
    by_id = {claim["id"]: claim for claim in five.json()}
    assert by_id[others[1]]["documents_requested"] == ["bank_card"]
    assert all(by_id[c]["documents_requested"] == [] for c in (first, others[0], *others[2:]))
    assert all([e["kind"] for e in claim["timeline"]][:1] == ["reported"] for claim in five.json())


async def test_r_clm_3_agent_reports_for_many_households_of_one_village(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    first = await identity(api, service_headers, "clm-3-a")
    second = await identity(api, service_headers, "clm-3-b", phone="13900004444")
    policies = [await paid_policy(api, first), await paid_policy(api, second)]
    await cover_began(db, timedelta(days=2))
    agent = {
        "username": "agent_dg",
        "password": "agent-pass-01",
        "role": "agent",
        "region_codes": ["441900000000"],
    }
    assert (await api.post("/api/staff/users", json=agent, headers=admin_headers)).status_code == 201
    agent_headers = await login(api, "agent_dg", "agent-pass-01")
    body = {
        "village_code": DONGGUAN_TOWNSHIP,
        "cause": "flood",
        "loss_started_at": (utcnow() - timedelta(hours=5)).isoformat(),
        "households": [
            {"policy_id": p["id"], "lost_quantity": "5", "estimated_amount_yuan": "3000"} for p in policies
        ],
    }
    made = await api.post("/api/claims/collective", headers=agent_headers, json=body)
    assert made.status_code == 201, made.text
    assert len(made.json()["claims"]) == 2
    for headers in (first, second):
        mine = (await api.get("/api/bot/claims", headers=headers)).json()
        assert len(mine) == 1 and mine[0]["kind"] == "collective"
    audit = await api.get(
        "/api/staff/audit", headers=admin_headers, params={"action": "claims.collective_report"}
    )
    assert audit.json()[0]["actor"] == "agent_dg"
    beijing = {
        "username": "agent_bj2",
        "password": "agent-pass-01",
        "role": "agent",
        "region_codes": ["110000000000"],
    }
    await api.post("/api/staff/users", json=beijing, headers=admin_headers)
    outside = await api.post(
        "/api/claims/collective", headers=await login(api, "agent_bj2", "agent-pass-01"), json=body
    )
    assert outside.json()["detail"]["code"] == "outside_scope"


async def test_r_clm_14_an_old_confirm_button_does_not_confirm_a_new_amount(
    api: httpx.AsyncClient, service_headers: dict[str, str], db
) -> None:
    from sqlmodel import select

    from backend.claims.models import Claim

    headers = await identity(api, service_headers, "clm-14-stale")
    policy = await paid_policy(api, headers)
    claim = (await api.post("/api/bot/claims", headers=headers, json=report(policy["id"]))).json()
    async with db.session() as session:
        row = (await session.exec(select(Claim).where(Claim.id == claim["id"]))).one()
        row.status, row.assessed_amount_fen = "assessed", 90000  # re-assessed after the first notice
        session.add(row)
        await session.commit()
    stale = await api.post(
        f"/api/bot/claims/{claim['id']}/settlement",
        headers=headers,
        json={"answer": "confirm", "expected_amount_fen": 120000},
    )
    assert stale.json()["detail"]["code"] == "stale_assessment"
    fresh = await api.post(
        f"/api/bot/claims/{claim['id']}/settlement",
        headers=headers,
        json={"answer": "confirm", "expected_amount_fen": 90000},
    )
    assert fresh.status_code == 200 and fresh.json()["status"] == "agreed"

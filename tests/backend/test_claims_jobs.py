"""R-KPI-3: deadline states and the reminder job (survey within 24 h, payment within 10 days of agreement,
settlement plan within 20 days), at, just before and just after each limit; running twice sends nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlmodel import col, select

from backend.alerts.models import StaffAlert
from backend.claims import rules
from backend.claims.jobs import DeadlineReminderReport, claim_deadline_reminders
from backend.claims.models import Claim, ClaimEvent
from backend.db import Database, utcnow
from backend.outbox.models import OutboxMessage
from backend.settings import Settings
from tests.backend.test_claims_workflow import (
    load_claim,
    make_claim,
    notices,
    paid_policy,
    staff_user,
)
from tests.enroll_helpers import DONGGUAN_TOWNSHIP

SECOND = timedelta(seconds=1)


async def run(db: Database, settings: Settings, now: datetime) -> DeadlineReminderReport:
    async with db.session() as session:
        return await claim_deadline_reminders(session, now, settings=settings)


async def alerts(db: Database, claim_id: int) -> dict[str, StaffAlert]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(StaffAlert).where(StaffAlert.claim_id == claim_id).order_by(col(StaffAlert.id))
            )
        ).all()
    return {row.dedupe_key: row for row in rows}


def test_r_kpi_3_deadline_state_at_and_around_the_limits() -> None:
    due = datetime(2026, 11, 22, 8, 0).astimezone()
    tiny = timedelta(microseconds=1)
    assert rules.deadline_state(due, None, due - rules.DUE_SOON - tiny) == "on_time"
    assert rules.deadline_state(due, None, due - rules.DUE_SOON) == "due_soon"
    assert (
        rules.deadline_state(due, None, due) == "due_soon"
    )  # "within 24 hours": the limit itself is in time
    assert rules.deadline_state(due, None, due + tiny) == "overdue"
    assert rules.deadline_state(due, due + timedelta(days=3), due + timedelta(days=5)) == "met"
    assert rules.deadline_state(None, None, due) == "none"
    reported = due - timedelta(hours=24)
    assert rules.survey_due(reported) == due
    assert rules.payment_due(reported) == reported + timedelta(days=10)


async def test_r_kpi_3_deadline_states_and_reminders_at_and_around_limits(
    api: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    adjuster, adjuster_id = await staff_user(api, admin_headers, "adj_kpi", "adjuster", full_name="陈查勘")
    headers, policy = await paid_policy(api, service_headers, "r-kpi-3")
    reported = utcnow().replace(microsecond=0) - timedelta(hours=1)
    claim_id = await make_claim(db, policy, headers, reported_at=reported, adjuster_id=adjuster_id)
    due = reported + rules.SURVEY_WITHIN

    # Just before the reminder window: nothing.
    quiet = await run(db, settings, due - rules.DUE_SOON - SECOND)
    assert (quiet.due_soon, quiet.overdue, quiet.insured_told) == (0, 0, 0)
    assert await alerts(db, claim_id) == {}
    # At the start of the window: one reminder to the claim's region; twice is once.
    soon = await run(db, settings, due - rules.DUE_SOON)
    assert (soon.due_soon, soon.overdue) == (1, 0)
    assert (await run(db, settings, due - rules.DUE_SOON)).due_soon == 0
    at_limit = await run(db, settings, due)  # the limit itself is still in time
    assert (at_limit.due_soon, at_limit.overdue, at_limit.insured_told) == (0, 0, 0)
    reminded = await alerts(db, claim_id)
    assert list(reminded) == [f"claim-{claim_id}-survey-soon"]
    alert = reminded[f"claim-{claim_id}-survey-soon"]
    assert alert.kind == "deadline_due_soon" and alert.region_code == DONGGUAN_TOWNSHIP
    assert "陈查勘" in alert.body and (await load_claim(db, claim_id)).number in alert.title
    # One second late: escalated, and the farmer is told the survey is late, once.
    late = await run(db, settings, due + SECOND)
    assert (late.due_soon, late.overdue, late.insured_told) == (0, 1, 1)
    again = await run(db, settings, due + timedelta(hours=5))
    assert (again.due_soon, again.overdue, again.insured_told) == (0, 0, 0)
    escalated = await alerts(db, claim_id)
    assert escalated[f"claim-{claim_id}-survey-overdue"].kind == "deadline_overdue"
    sent = await notices(db, claim_id)
    assert list(sent) == ["survey-overdue"] and "很抱歉" in sent["survey-overdue"].text
    claim = await load_claim(db, claim_id)
    assert set(claim.reminders) == {"survey_due_soon", "survey_overdue", "survey_overdue_insured"}
    async with db.session() as session:
        kinds = (await session.exec(select(ClaimEvent.kind).where(ClaimEvent.claim_id == claim_id))).all()
    assert list(kinds) == ["survey_overdue"]
    # Staff see them in their region, newest first.
    listed = (await api.get("/api/alerts", headers=adjuster)).json()
    assert [a["kind"] for a in listed] == ["deadline_overdue", "deadline_due_soon"]


async def test_r_kpi_3_payment_within_10_days_is_reminded_and_escalated_without_telling_the_farmer(
    api: httpx.AsyncClient, db: Database, settings: Settings, service_headers: dict[str, str]
) -> None:
    headers, policy = await paid_policy(api, service_headers, "r-kpi-3-pay")
    now = utcnow().replace(microsecond=0)
    agreed = now - timedelta(days=9, hours=22)
    claim_id = await make_claim(
        db,
        policy,
        headers,
        reported_at=now - timedelta(days=15),
        status="agreed",
        surveyed_at=now - timedelta(days=14, hours=12),
        settlement_due_at=now - timedelta(days=1),
        assessed_at=now - timedelta(days=11),
        assessed_amount_fen=50000,
        agreed_amount_fen=50000,
        agreed_at=agreed,
        payment_due_at=rules.payment_due(agreed),
    )
    soon = await run(db, settings, now)  # 2 hours before the 10 days are up
    assert (soon.due_soon, soon.overdue, soon.insured_told) == (1, 0, 0)
    assert list(await alerts(db, claim_id)) == [f"claim-{claim_id}-payment-soon"]
    late = await run(db, settings, rules.payment_due(agreed) + SECOND)
    assert (late.due_soon, late.overdue, late.insured_told) == (0, 1, 0)
    assert (await run(db, settings, rules.payment_due(agreed) + timedelta(days=1))).overdue == 0
    assert list(await alerts(db, claim_id)) == [
        f"claim-{claim_id}-payment-soon",
        f"claim-{claim_id}-payment-overdue",
    ]
    assert await notices(db, claim_id) == {}  # only a late survey is told to the farmer


async def test_r_kpi_3_settlement_plan_and_closed_claims(
    api: httpx.AsyncClient, db: Database, settings: Settings, service_headers: dict[str, str]
) -> None:
    headers, policy = await paid_policy(api, service_headers, "r-kpi-3-settle")
    now = utcnow().replace(microsecond=0)
    surveyed = now - timedelta(days=20, hours=1)
    open_claim = await make_claim(
        db,
        policy,
        headers,
        reported_at=surveyed - timedelta(hours=5),
        status="surveyed",
        surveyed_at=surveyed,
        settlement_due_at=rules.settlement_due(surveyed, None, main_crop=False),
    )
    for status in ("denied", "paid"):  # closed claims are never reminded, whatever their timestamps
        await make_claim(db, policy, headers, reported_at=now - timedelta(days=30), status=status)
    report = await run(db, settings, now)
    assert (report.checked, report.overdue, report.insured_told) == (1, 1, 0)
    assert list(await alerts(db, open_claim)) == [f"claim-{open_claim}-settlement-overdue"]


async def test_r_kpi_3_an_agreed_survey_delay_moves_the_reminders(
    api: httpx.AsyncClient, db: Database, settings: Settings, service_headers: dict[str, str]
) -> None:
    """R-CLM-6: a delay explained to the reporter with an agreed time; the farmer hears of a late survey
    only when the agreed time passes."""
    headers, policy = await paid_policy(api, service_headers, "r-kpi-3-agreed")
    reported = utcnow().replace(microsecond=0) - timedelta(hours=30)
    agreed = reported + timedelta(hours=36)
    claim_id = await make_claim(
        db, policy, headers, reported_at=reported, status="survey_scheduled", survey_agreed_at=agreed
    )
    quiet = await run(db, settings, agreed - rules.DUE_SOON - SECOND)
    assert (quiet.due_soon, quiet.overdue, quiet.insured_told) == (0, 0, 0)
    late = await run(db, settings, agreed + SECOND)
    assert (late.overdue, late.insured_told) == (1, 1)
    assert list(await notices(db, claim_id)) == ["survey-overdue"]


async def test_r_kpi_3_deadlines_view_lists_overdue_and_due_soon_in_scope(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    adjuster, _ = await staff_user(api, admin_headers, "adj_view", "adjuster")
    beijing, _ = await staff_user(api, admin_headers, "adj_view_bj", "adjuster", regions=("110000000000",))
    headers, policy = await paid_policy(api, service_headers, "r-kpi-3-view")
    now = utcnow()
    on_time = await make_claim(db, policy, headers, reported_at=now - timedelta(hours=1))
    due_soon = await make_claim(db, policy, headers, reported_at=now - timedelta(hours=21))
    overdue = await make_claim(db, policy, headers, reported_at=now - timedelta(hours=25))
    met_late = await make_claim(
        db, policy, headers, reported_at=now - timedelta(hours=30), status="surveyed", surveyed_at=now
    )
    listed = {c["id"]: c for c in (await api.get("/api/claims", headers=adjuster)).json()}
    states = {
        cid: listed[cid]["deadlines"]["survey"]["state"] for cid in (on_time, due_soon, overdue, met_late)
    }
    assert states == {on_time: "on_time", due_soon: "due_soon", overdue: "overdue", met_late: "met"}
    assert listed[met_late]["deadlines"]["survey"]["late"] is True  # met, but after the 24 hours
    assert listed[on_time]["deadlines"]["payment"]["state"] == "none"
    only = await api.get("/api/claims", headers=adjuster, params={"deadline": "overdue"})
    assert [c["id"] for c in only.json()] == [overdue]
    soon = await api.get("/api/claims", headers=adjuster, params={"deadline": "due_soon"})
    assert [c["id"] for c in soon.json()] == [due_soon]
    by_status = await api.get("/api/claims", headers=adjuster, params={"status": "surveyed"})
    assert [c["id"] for c in by_status.json()] == [met_late]
    assert (await api.get("/api/claims", headers=beijing, params={"deadline": "overdue"})).json() == []
    bad = await api.get("/api/claims", headers=adjuster, params={"deadline": "someday"})
    assert bad.status_code == 422


async def test_reminders_reach_the_staff_alert_chat_once_when_configured(
    api: httpx.AsyncClient, db: Database, settings: Settings, service_headers: dict[str, str]
) -> None:
    headers, policy = await paid_policy(api, service_headers, "r-kpi-3-chat")
    reported = utcnow().replace(microsecond=0) - timedelta(hours=26)
    claim_id = await make_claim(db, policy, headers, reported_at=reported)
    configured = settings.model_copy(update={"staff_alert_address": "-1001234567"})
    await run(db, configured, utcnow())
    await run(db, configured, utcnow())
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage).where(OutboxMessage.address == "-1001234567"))).all()
    assert [r.dedupe_key for r in rows] == [f"alert-claim-{claim_id}-survey-overdue"]


async def test_the_job_runs_with_a_session_only_as_the_scheduler_calls_it(db: Database) -> None:
    for _ in range(2):
        async with db.session() as session:
            report = await claim_deadline_reminders(session)
        assert report == DeadlineReminderReport(checked=0, due_soon=0, overdue=0, insured_told=0)
    async with db.session() as session:
        assert (await session.exec(select(Claim))).all() == []

"""R-DIS-2 grades, R-DIS-3 reporting clocks and daily reports, R-DIS-4 green channel, R-DIS-5 branch
closures (issue 14, "Disaster events")."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from backend.alerts.models import StaffAlert
from backend.broadcasts.models import Broadcast
from backend.claims.catastrophe import grading
from backend.claims.catastrophe.grading import GRADE_I, GRADE_II, GRADE_III, grade_for
from backend.claims.catastrophe.jobs import event_daily_reports, event_report_clocks
from backend.claims.catastrophe.models import (
    DisasterEvent,
    EventDailyReport,
    EventGradeChange,
    EventReportDeadline,
)
from backend.db import Database, utcnow
from backend.outbox.models import OutboxMessage
from backend.security import hash_password
from backend.settings import Settings
from backend.staff.models import AuditLog, StaffUser
from messages import local_date, local_day_start
from tests.backend.test_claims_catastrophe import add_claims
from tests.backend.test_enrollment_api import farmer_application, identity, submit
from tests.conftest import login

YUAN = 100
DONGGUAN_TOWN = "441900003000"  # the policy fixture's region (东莞市 东城街道)
DONGGUAN = "441900000000"
ZHONGSHAN = "442000000000"  # its neighbour
PASSWORD = "Tb-events-7Qv!x9-long"
NOW = datetime(2026, 12, 4, 2, 0)

_EVENT = {"id": 7, "name": "台风“海鸥”", "grade": "I", "sensitive": True}
_CLOCK = {"event": _EVENT, "kind": "phone", "due_at": NOW, "staff": ["陈查勘", "admin"]}
_RESPONSE = SimpleNamespace(
    grade="II",
    sensitive=False,
    situation="农田受淹",
    progress="查勘中",
    problems="道路中断",
    measures="无人机查勘",
)
_FIGURES = {
    "claims": 3,
    "reported_fen": 150000,
    "surveyed": 1,
    "assessed_fen": 50000,
    "paid": 0,
    "paid_fen": 0,
    "prepaid_fen": 0,
    "denied": 0,
}
# Sample contexts of this feature's templates, for tests/test_messages.py.
TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    "events/report_due_title": _CLOCK,
    "events/report_due_body": _CLOCK,
    "events/report_overdue_title": _CLOCK,
    "events/report_overdue_body": {**_CLOCK, "staff": []},
    "events/daily_report": {
        "event": {"id": 7, "name": "台风“海鸥”", "cause": "typhoon", "region": "东莞市"},
        "response": _RESPONSE,
        "figures": _FIGURES,
        "money": {
            "reported_fen": "1500.00",
            "assessed_fen": "500.00",
            "paid_fen": "0.00",
            "prepaid_fen": "0.00",
        },
        "day": "2026-12-04",
        "generated_at": NOW,
    },
    "events/green_channel": {"event": {"id": 7, "name": "台风“海鸥”"}},
    "events/branch_closed": {"region_name": "东城街道", "reason": "台风停电"},
    "events/branch_reopened": {"region_name": "东城街道", "reason": ""},
    "events/branch_closed_help": {"closures": [SimpleNamespace(region_name="东城街道", closed_at=NOW)]},
}


@pytest.fixture
async def policy(api: httpx.AsyncClient, service_headers: dict[str, str]) -> dict[str, Any]:
    """One paid policy in 东莞 东城街道 (as ``test_claims_catastrophe``'s): the claims below hang on it."""
    headers = await identity(api, service_headers, "catastrophe-farmer", phone="13800000099")
    application = (await submit(api, headers, farmer_application())).json()
    paid = await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    result: dict[str, Any] = paid.json()["policy"]
    result["identity_id"] = int(headers["X-Identity-Id"])
    return result


async def staff(
    db: Database, api: httpx.AsyncClient, username: str, role: str, regions: list[str]
) -> dict[str, str]:
    async with db.session() as session:
        session.add(
            StaffUser(
                username=username,
                password_hash=hash_password(PASSWORD),
                full_name=username,
                role=role,
                region_codes=regions,
            )
        )
        await session.commit()
    return await login(api, username, PASSWORD)


async def event_with_claim(db: Database, policy: dict[str, Any], **fields: Any) -> tuple[int, int]:
    """A confirmed event holding one claim of the policy (东莞); returns (event id, claim id)."""
    async with db.session() as session:
        event = DisasterEvent(
            name="台风“海鸥”", cause="typhoon", started_on=utcnow() - timedelta(days=1), **fields
        )
        session.add(event)
        await session.commit()
        event_id = event.id or 0
    (claim_id,) = await add_claims(db, policy, (DONGGUAN_TOWN, "rice", 100_000 * YUAN), event_id=event_id)
    return event_id, claim_id


async def put_estimates(
    api: httpx.AsyncClient, headers: dict[str, str], event_id: int, **body: Any
) -> httpx.Response:
    payload = {"property_fen": 0, "casualty_fen": 0, "deaths": 0, **body}
    return await api.put(f"/api/events/{event_id}/estimates", headers=headers, json=payload)


async def deadlines(db: Database, event_id: int) -> dict[str, EventReportDeadline]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(EventReportDeadline).where(col(EventReportDeadline.event_id) == event_id)
            )
        ).all()
        return {d.kind: d for d in rows}


async def alerts(db: Database, kind: str) -> list[StaffAlert]:
    async with db.session() as session:
        return list((await session.exec(select(StaffAlert).where(col(StaffAlert.kind) == kind))).all())


async def audits(db: Database, action: str) -> list[AuditLog]:
    async with db.session() as session:
        return list((await session.exec(select(AuditLog).where(col(AuditLog.action) == action))).all())


async def outbox(db: Database, source_key: str) -> list[OutboxMessage]:
    """The messages of the system broadcast made for ``source_key`` (the fan-out goes through it)."""
    async with db.session() as session:
        broadcast = (
            await session.exec(select(Broadcast).where(col(Broadcast.source_key) == source_key))
        ).first()
        if broadcast is None:
            return []
        query = select(OutboxMessage).where(col(OutboxMessage.broadcast_id) == broadcast.id)
        return list((await session.exec(query)).all())


# --- R-DIS-2 grades ----------------------------------------------------------------------------------------

# (measure, limit of III, limit of II, limit of I) in the function's units: fen for money.
MEASURES = (
    ("property_fen", 10_000_000 * YUAN, 50_000_000 * YUAN, 1_000_000_000 * YUAN),
    ("casualty_fen", 5_000_000 * YUAN, 10_000_000 * YUAN, 20_000_000 * YUAN),
    ("deaths", 5, 10, 30),
)


def _grade(measure: str, value: int) -> str | None:
    figures = {"property_fen": 0, "casualty_fen": 0, "deaths": 0, measure: value}
    return grade_for(**figures)


@pytest.mark.parametrize(("measure", "iii", "ii", "i"), MEASURES)
def test_r_dis_2_each_limit_at_just_below_and_just_above(measure: str, iii: int, ii: int, i: int) -> None:
    """以上 includes the number, 以下 excludes it: at a limit the grade is reached, one below it is not."""
    assert _grade(measure, 0) is None
    assert _grade(measure, iii - 1) is None
    assert _grade(measure, iii) == GRADE_III
    assert _grade(measure, iii + 1) == GRADE_III
    assert _grade(measure, ii - 1) == GRADE_III
    assert _grade(measure, ii) == GRADE_II
    assert _grade(measure, ii + 1) == GRADE_II
    assert _grade(measure, i - 1) == GRADE_II
    assert _grade(measure, i) == GRADE_I
    assert _grade(measure, i + 1) == GRADE_I


def test_r_dis_2_the_highest_grade_any_measure_reaches_applies() -> None:
    assert grade_for(property_fen=10_000_000 * YUAN, casualty_fen=0, deaths=30) == GRADE_I
    assert grade_for(property_fen=1_000_000_000 * YUAN, casualty_fen=5_000_000 * YUAN, deaths=0) == GRADE_I
    assert grade_for(property_fen=10_000_000 * YUAN - 1, casualty_fen=10_000_000 * YUAN, deaths=4) == GRADE_II
    # each just below III: below III is no graded event, however many measures are close
    below = grade_for(property_fen=10_000_000 * YUAN - 1, casualty_fen=5_000_000 * YUAN - 1, deaths=4)
    assert below is None


async def test_r_dis_2_estimates_by_staff_regrade_the_event_and_every_change_is_recorded(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database, policy: dict[str, Any]
) -> None:
    event_id, _claim = await event_with_claim(db, policy)
    first = await put_estimates(api, admin_headers, event_id, property_fen=10_000_000 * YUAN, note="初报")
    assert first.status_code == 200, first.text
    assert first.json()["grade"] == "III" and first.json()["graded_at"] is not None
    second = await put_estimates(api, admin_headers, event_id, property_fen=10_000_000 * YUAN, deaths=10)
    assert second.json()["grade"] == "II"
    same = await put_estimates(api, admin_headers, event_id, property_fen=10_000_000 * YUAN, deaths=10)
    assert same.json()["grade"] == "II"
    lower = await put_estimates(api, admin_headers, event_id, property_fen=1, deaths=0)
    assert lower.json()["grade"] is None  # estimates can fall: the grade follows them
    history = (await api.get(f"/api/events/{event_id}/grade-history", headers=admin_headers)).json()
    assert [(h["old_grade"], h["new_grade"]) for h in history] == [(None, "III"), ("III", "II"), ("II", None)]
    assert history[1]["old_deaths"] == 0 and history[1]["new_deaths"] == 10
    assert history[0]["new_property_fen"] == 10_000_000 * YUAN and history[0]["note"] == "初报"
    assert all(h["staff_username"] == "admin" and h["at"] for h in history)
    assert len(await audits(db, "events.estimates")) == 3  # the same figures again record nothing


async def test_r_dis_2_money_is_whole_fen_and_never_negative(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database, policy: dict[str, Any]
) -> None:
    event_id, _claim = await event_with_claim(db, policy)
    assert (await put_estimates(api, admin_headers, event_id, property_fen=1.5)).status_code == 422
    assert (await put_estimates(api, admin_headers, event_id, deaths=-1)).status_code == 422
    async with db.session() as session:
        assert (await session.exec(select(EventGradeChange))).first() is None


async def test_r_dis_2_staff_of_another_region_are_refused(
    api: httpx.AsyncClient, db: Database, policy: dict[str, Any]
) -> None:
    event_id, _claim = await event_with_claim(db, policy)
    other = await staff(db, api, "adjuster_zs", "adjuster", [ZHONGSHAN])
    own = await staff(db, api, "adjuster_dg", "adjuster", [DONGGUAN])
    viewer = await staff(db, api, "viewer_dg", "viewer", [DONGGUAN])
    assert (await put_estimates(api, other, event_id, deaths=5)).status_code == 404
    assert (
        await api.post(f"/api/events/{event_id}/green-channel", headers=other, json={"on": True})
    ).status_code == 404
    assert (await api.get(f"/api/events/{event_id}/response", headers=other)).status_code == 404
    assert (await put_estimates(api, viewer, event_id, deaths=5)).status_code == 403
    assert (await put_estimates(api, own, event_id, deaths=5)).json()["grade"] == "III"
    # an event with no claims and no region is the whole country's: regional staff may not grade it
    async with db.session() as session:
        bare = DisasterEvent(name="地震", cause="other", started_on=utcnow())
        session.add(bare)
        await session.commit()
        bare_id = bare.id or 0
    refused = await put_estimates(api, own, bare_id, deaths=5)
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "outside_scope"


# --- R-DIS-3 reporting clocks -------------------------------------------------------------------------


async def test_r_dis_3_graded_event_reports_to_the_supervisor_within_2_hours(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    policy: dict[str, Any],
) -> None:
    event_id, _claim = await event_with_claim(db, policy)
    await staff(db, api, "adjuster_dg", "adjuster", [DONGGUAN])
    graded = await put_estimates(api, admin_headers, event_id, casualty_fen=5_000_000 * YUAN)
    assert graded.json()["grade"] == "III"
    clocks = await deadlines(db, event_id)
    assert set(clocks) == {"supervisor"}  # grade III: no phone or writing clock
    start = clocks["supervisor"].started_at
    assert clocks["supervisor"].due_at - start == timedelta(hours=2)
    async with db.session() as session:
        early = await event_report_clocks(session, settings, start + timedelta(minutes=89))
    assert (early.reminded, early.escalated) == (0, 0)
    async with db.session() as session:
        before = await event_report_clocks(session, settings, start + timedelta(minutes=91))
    assert (before.reminded, before.escalated) == (1, 0)
    async with db.session() as session:
        again = await event_report_clocks(session, settings, start + timedelta(minutes=100))
    assert (again.reminded, again.escalated) == (0, 0)  # reminded once
    (due,) = await alerts(db, "event_report_due")
    assert due.region_code.startswith("4419") and due.event_id == event_id
    assert "adjuster_dg" in due.body  # the responsible staff of the event's region are named
    async with db.session() as session:
        after = await event_report_clocks(session, settings, start + timedelta(hours=2, minutes=1))
    assert (after.reminded, after.escalated) == (0, 1)
    async with db.session() as session:
        twice = await event_report_clocks(session, settings, start + timedelta(hours=3))
    assert (twice.reminded, twice.escalated) == (0, 0)
    (overdue,) = await alerts(db, "event_report_overdue")
    assert overdue.region_code == "440000000000"  # escalated to the province's supervisors


async def test_r_dis_3_grade_i_by_phone_within_30_minutes_and_in_writing_within_1_hour(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    policy: dict[str, Any],
) -> None:
    event_id, _claim = await event_with_claim(db, policy)
    graded = await put_estimates(api, admin_headers, event_id, property_fen=1_000_000_000 * YUAN)
    assert graded.json()["grade"] == "I"
    clocks = await deadlines(db, event_id)
    start = clocks["phone"].started_at
    assert {k: d.due_at - start for k, d in clocks.items()} == {
        "phone": timedelta(minutes=30),
        "writing": timedelta(hours=1),
        "supervisor": timedelta(hours=2),
    }
    phoned = await api.post(
        f"/api/events/{event_id}/reports", headers=admin_headers, json={"kind": "phone", "note": "已电话报告"}
    )
    assert phoned.status_code == 200, phoned.text
    assert next(d for d in phoned.json()["deadlines"] if d["kind"] == "phone")["done_at"] is not None
    async with db.session() as session:
        run = await event_report_clocks(session, settings, start + timedelta(minutes=50))
    assert (run.reminded, run.escalated) == (1, 0)  # writing reminded (15 min before); phone done: nothing
    async with db.session() as session:
        late = await event_report_clocks(session, settings, start + timedelta(minutes=61))
    assert (late.reminded, late.escalated) == (0, 1)  # writing overdue
    keys = {a.dedupe_key for a in await alerts(db, "event_report_overdue")}
    assert keys == {f"event-{event_id}-writing-overdue"}  # reported by phone in time: no escalation
    assert len(await audits(db, "events.report")) == 1
    # recording again changes nothing; a report the event does not need is refused
    again = await api.post(f"/api/events/{event_id}/reports", headers=admin_headers, json={"kind": "phone"})
    assert again.status_code == 200 and len(await audits(db, "events.report")) == 1


async def test_r_dis_3_sensitive_event_gets_the_grade_i_clocks_and_an_upgrade_starts_them(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    policy: dict[str, Any],
) -> None:
    event_id, _claim = await event_with_claim(db, policy)
    await put_estimates(api, admin_headers, event_id, deaths=5)
    refused = await api.post(f"/api/events/{event_id}/reports", headers=admin_headers, json={"kind": "phone"})
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "report_not_required"
    assert set(await deadlines(db, event_id)) == {"supervisor"}
    await put_estimates(api, admin_headers, event_id, deaths=5, sensitive=True)
    clocks = await deadlines(db, event_id)
    assert set(clocks) == {"supervisor", "phone", "writing"}
    assert clocks["phone"].started_at > clocks["supervisor"].started_at  # from the moment it became sensitive
    other, _ = await event_with_claim(db, policy)
    await put_estimates(api, admin_headers, other, deaths=10)
    await put_estimates(api, admin_headers, other, deaths=30)  # upgraded to I
    assert set(await deadlines(db, other)) == {"supervisor", "phone", "writing"}
    assert grading.clocks_due(grade=None, sensitive=False) == ()


async def test_r_dis_3_daily_report_pdf_only_during_grade_i_or_ii_and_once_a_day(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    policy: dict[str, Any],
) -> None:
    event_id, _claim = await event_with_claim(db, policy)
    await add_claims(db, policy, (DONGGUAN_TOWN, "rice", 50_000 * YUAN), event_id=event_id)
    day = local_day_start(local_date(utcnow())) + timedelta(hours=12)  # noon: +15 min is the same day
    async with db.session() as session:
        assert await event_daily_reports(session, settings, day) == 0  # ungraded
    await put_estimates(api, admin_headers, event_id, deaths=5)
    async with db.session() as session:
        assert await event_daily_reports(session, settings, day) == 0  # grade III: no daily report
    await put_estimates(api, admin_headers, event_id, deaths=10)
    text = await api.put(
        f"/api/events/{event_id}/report-text",
        headers=admin_headers,
        json={"situation": "东城街道农田受淹", "measures": "无人机查勘"},
    )
    assert text.status_code == 200 and text.json()["situation"] == "东城街道农田受淹"
    async with db.session() as session:
        assert await event_daily_reports(session, settings, day) == 1
    async with db.session() as session:
        assert await event_daily_reports(session, settings, day + timedelta(minutes=15)) == 0  # once a day
    async with db.session() as session:
        assert await event_daily_reports(session, settings, day + timedelta(days=1)) == 1  # the next day
    listed = (await api.get(f"/api/events/{event_id}/daily-reports", headers=admin_headers)).json()
    assert len(listed) == 2 and listed[0]["grade"] == "II"
    assert listed[0]["figures"]["claims"] == 2 and listed[0]["figures"]["reported_fen"] == 150_000 * YUAN
    pdf = await api.get(listed[-1]["url"], headers=admin_headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    missing = await api.get(f"/api/events/{event_id}/daily-reports/2020-01-01", headers=admin_headers)
    assert missing.status_code == 422 and missing.json()["detail"]["code"] == "report_not_found"
    async with db.session() as session:
        assert len((await session.exec(select(EventDailyReport))).all()) == 2


# --- R-DIS-4 green channel -----------------------------------------------------------------------------


PREPAY = {
    "kind": "compensation",
    "amount_fen": 20_000,
    "payee_name": "李四",
    "payee_kind": "insured",
    "bank_name": "农业银行",
    "account_number": "6228480012345678901",
    "reason": "灾后先行预付",
}


async def test_r_dis_4_green_channel_documents_remote_survey_prepayment_and_farmers_told(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    policy: dict[str, Any],
) -> None:
    event_id, claim_id = await event_with_claim(db, policy)
    bot = {**service_headers, "X-Tianbao-Identity": "telegram:catastrophe-farmer"}
    before = (await api.get(f"/api/bot/claims/{claim_id}", headers=bot)).json()
    assert before["green_channel"] is False and before["remote_methods"] == ["video"]
    assert "village_certificate" in before["documents_needed"] and not before["prepayment_available"]
    at = (utcnow() + timedelta(hours=2)).isoformat()
    drone = {"at": at, "remote_method": "drone"}
    refused = await api.post(f"/api/claims/{claim_id}/survey-schedule", headers=admin_headers, json=drone)
    assert (
        refused.status_code == 422 and refused.json()["detail"]["code"] == "remote_method_green_channel_only"
    )
    no_prepay = await api.post(f"/api/claims/{claim_id}/prepayments", headers=admin_headers, json=PREPAY)
    assert no_prepay.json()["detail"]["code"] == "prepayment_liability_only"

    on = await api.post(f"/api/events/{event_id}/green-channel", headers=admin_headers, json={"on": True})
    assert on.status_code == 200 and on.json()["green_channel"] is True and on.json()["told"] == 1
    told = await outbox(db, f"event-{event_id}-green-channel")
    assert len(told) == 1 and "绿色通道" in told[0].text  # the insured farmer of the area, once
    during = (await api.get(f"/api/bot/claims/{claim_id}", headers=bot)).json()
    assert during["green_channel"] is True and during["prepayment_available"] is True
    assert during["documents_needed"] == ["loss_photos", "bank_card"]  # the shorter list
    assert len(during["documents_needed"]) < len(before["documents_needed"])
    assert during["remote_methods"] == ["video", "drone", "satellite"]
    scheduled = await api.post(f"/api/claims/{claim_id}/survey-schedule", headers=admin_headers, json=drone)
    assert scheduled.status_code == 200, scheduled.text
    prepaid = await api.post(f"/api/claims/{claim_id}/prepayments", headers=admin_headers, json=PREPAY)
    assert prepaid.status_code in (200, 201), prepaid.text
    assert (await api.get(f"/api/bot/claims/{claim_id}", headers=bot)).json()["remote_method"] == "drone"

    off = await api.post(f"/api/events/{event_id}/green-channel", headers=admin_headers, json={"on": False})
    assert off.json()["green_channel"] is False
    after = (await api.get(f"/api/bot/claims/{claim_id}", headers=bot)).json()
    assert after["green_channel"] is False and after["remote_methods"] == ["video"]
    again = await api.post(f"/api/events/{event_id}/green-channel", headers=admin_headers, json={"on": True})
    assert again.status_code == 200
    assert len(await outbox(db, f"event-{event_id}-green-channel")) == 1  # told once per event
    assert [a.detail["on"] for a in await audits(db, "events.green_channel")] == [True, False, True]


async def test_r_dis_4_claims_in_the_events_region_are_in_its_green_channel(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    policy: dict[str, Any],
) -> None:
    async with db.session() as session:
        event = DisasterEvent(
            name="东莞暴雨", cause="heavy_rain", started_on=utcnow() - timedelta(days=1), region_code=DONGGUAN
        )
        session.add(event)
        await session.commit()
        event_id = event.id or 0
    (unlinked,) = await add_claims(db, policy, (DONGGUAN_TOWN, "rice", 1000 * YUAN), cause="heavy_rain")
    bot = {**service_headers, "X-Tianbao-Identity": "telegram:catastrophe-farmer"}
    await api.post(f"/api/events/{event_id}/green-channel", headers=admin_headers, json={"on": True})
    claim = (await api.get(f"/api/bot/claims/{unlinked}", headers=bot)).json()
    assert claim["green_channel"] is True  # in the event's region, though linked to no event


# --- R-DIS-5 branch closures ---------------------------------------------------------------------------


async def test_r_dis_5_closure_is_told_once_and_so_is_the_reopening(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    policy: dict[str, Any],
) -> None:
    bot = {**service_headers, "X-Tianbao-Identity": "telegram:catastrophe-farmer"}
    assert (await api.get("/api/bot/branches/closed", headers=bot)).json() == []
    closed = await api.post(
        f"/api/branches/{DONGGUAN_TOWN}/close", headers=admin_headers, json={"reason": "台风停电"}
    )
    assert closed.status_code == 201, closed.text
    closure = closed.json()
    assert closure["told_closed"] == 1 and closure["region_name"]
    told = await outbox(db, f"branch-{closure['id']}-closed")
    assert len(told) == 1 and "在线" in told[0].text
    twice = await api.post(f"/api/branches/{DONGGUAN_TOWN}/close", headers=admin_headers, json={})
    assert twice.status_code == 422 and twice.json()["detail"]["code"] == "branch_already_closed"
    assert len(await outbox(db, f"branch-{closure['id']}-closed")) == 1
    mine = (await api.get("/api/bot/branches/closed", headers=bot)).json()
    assert [m["region_code"] for m in mine] == [DONGGUAN_TOWN]
    listed = (await api.get("/api/branches/closures?open=true", headers=admin_headers)).json()
    assert [c["id"] for c in listed] == [closure["id"]]

    reopened = await api.post(f"/api/branches/{DONGGUAN_TOWN}/reopen", headers=admin_headers)
    assert reopened.status_code == 200 and reopened.json()["told_reopened"] == 1
    assert len(await outbox(db, f"branch-{closure['id']}-reopened")) == 1
    assert (await api.get("/api/bot/branches/closed", headers=bot)).json() == []
    not_closed = await api.post(f"/api/branches/{DONGGUAN_TOWN}/reopen", headers=admin_headers)
    assert not_closed.status_code == 422 and not_closed.json()["detail"]["code"] == "branch_not_closed"
    assert [a.action for a in await audits(db, "branches.close")] == ["branches.close"]
    assert len(await audits(db, "branches.reopen")) == 1


async def test_r_dis_5_staff_of_another_region_cannot_close_its_branch(
    api: httpx.AsyncClient, db: Database, policy: dict[str, Any]
) -> None:
    other = await staff(db, api, "adjuster_zs", "adjuster", [ZHONGSHAN])
    refused = await api.post(f"/api/branches/{DONGGUAN_TOWN}/close", headers=other, json={})
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "outside_scope"
    unknown = await api.post("/api/branches/999999999999/close", headers=other, json={})
    assert unknown.json()["detail"]["code"] == "region_not_found"
    assert await audits(db, "branches.close") == []


async def test_r_dis_2_an_event_staff_open_for_their_area_is_graded_by_its_regional_staff(
    api: httpx.AsyncClient, db: Database
) -> None:
    own = await staff(db, api, "adjuster_dg", "adjuster", [DONGGUAN])
    other = await staff(db, api, "adjuster_zs", "adjuster", [ZHONGSHAN])
    body = {"name": "东莞暴雨", "cause": "heavy_rain", "started_on": "2026-12-01", "region_code": DONGGUAN}
    refused = await api.post("/api/events", headers=other, json=body)
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "outside_scope"
    unknown = await api.post("/api/events", headers=own, json={**body, "region_code": "999999999999"})
    assert unknown.json()["detail"]["code"] == "region_not_found"
    opened = await api.post("/api/events", headers=own, json=body)
    assert opened.status_code == 201 and opened.json()["region_code"] == DONGGUAN
    event_id = opened.json()["id"]
    assert (await put_estimates(api, own, event_id, deaths=30)).json()["grade"] == "I"
    assert (await put_estimates(api, other, event_id, deaths=5)).status_code == 403

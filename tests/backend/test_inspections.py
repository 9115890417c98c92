"""Safety inspections (R-LIA-5) through the API: every liability policy issued has an inspection; an
inspector and an appointment proposed to the enterprise, confirmed or moved; hazards recorded with photos
and deadlines; the report to the enterprise (PDF) and to the safety authority (a local fake server, retried
until accepted); reminders once; overdue hazards escalated; another enterprise and another region refused;
bad input answered with its reason."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlmodel import col, select

from backend.alerts.models import StaffAlert
from backend.db import Database, utcnow
from backend.enrollment.models import Document, Policy
from backend.inspections import jobs
from backend.inspections.models import Inspection, InspectionHazard
from backend.outbox.models import OutboxMessage
from backend.settings import Settings
from backend.staff.models import AuditLog
from messages import local_date
from tests.backend.test_claims_workflow import staff_user
from tests.backend.test_enrollment_api import (
    enterprise_application,
    identity,
    industry_code,
    submit,
    survey_answers,
)
from tests.enroll_helpers import DONGGUAN_TOWNSHIP
from tests.images import png

ZHONGSHAN = "442000000000"
WHEN = datetime(2026, 12, 20, 1, 30, tzinfo=UTC)
INSPECTION = SimpleNamespace(
    id=7,
    appointment_at=WHEN,
    due_at=WHEN,
    status="confirmed",
    reschedule_day="2026-12-22",
    reschedule_reason="设备检修停产",
)
HAZARD = SimpleNamespace(
    id=3,
    description="配电箱未上锁",
    severity="serious",
    advice="加锁并张贴警示",
    rectify_by=WHEN,
    status="open",
)
MY_INSPECTION = SimpleNamespace(
    id=7,
    policy_number="PL1",
    enterprise_name="东莞安泰机械有限公司",
    status="proposed",
    appointment_at=WHEN,
    inspector="张检查",
    reschedule_day="2026-12-22",
    hazards=[HAZARD],
)
REPORT = SimpleNamespace(
    number="YH202612200000007",
    policy_number="PL1",
    insurer_name="天保财产保险",
    enterprise_name="东莞安泰机械有限公司",
    credit_code="91350100M000100Y43",
    address="东城大道 88 号",
    inspector="张检查",
    inspected_at=WHEN,
    summary="整体良好，配电管理需加强。",
    hazards=[
        {"n": 1, "description": "配电箱未上锁", "severity": "major", "advice": "加锁", "rectify_by": WHEN}
    ],
)
TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    "inspections/appointment": {"i": INSPECTION, "policy_number": "PL1", "inspector": "张检查"},
    "inspections/reminder": {"i": INSPECTION, "policy_number": "PL1", "inspector": "张检查"},
    "inspections/report": {"i": INSPECTION, "policy_number": "PL1", "hazards": [HAZARD]},
    "inspections/rectify_reminder": {"i": INSPECTION, "policy_number": "PL1", "hazard": HAZARD, "n": 1},
    "inspections/confirmed": {"inspection": MY_INSPECTION},
    "inspections/already": {},
    "inspections/reschedule_prompt": {"inspection": MY_INSPECTION},
    "inspections/reschedule_received": {"inspection": MY_INSPECTION},
    "inspections/fix_prompt": {"hazard": HAZARD},
    "inspections/fixed": {"recorded": True},
    "inspections/not_found": {},
    "inspections/detail": {"inspection": MY_INSPECTION},
    "inspections/report_pdf": {"r": REPORT},
    **{
        f"inspections/staff_{name}_{part}": {
            "i": INSPECTION,
            "policy_number": "PL1",
            "enterprise": "东莞安泰机械有限公司",
            "inspector": "张检查",
            "hazard": HAZARD,
        }
        for name in ("reschedule", "reminder", "overdue", "hazard")
        for part in ("title", "body")
    },
}


# --- the world: an enterprise insured for work-safety liability ----------------------------------------


@dataclass
class Insured:
    bot: dict[str, str]  # the bot's headers acting for the enterprise's chat
    policy: dict[str, Any]
    inspection_id: int


async def liability_policy(api: httpx.AsyncClient, service_headers: dict[str, str], key: str) -> Insured:
    """An enterprise's chat that scanned, applied and paid: its policy is issued in real time (R-LIA-3)."""
    headers = await identity(api, service_headers, key)
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
    policy = paid.json()["policy"]
    mine = await api.get("/api/bot/inspections", headers=headers)
    assert mine.status_code == 200 and len(mine.json()) == 1, mine.text
    return Insured(headers, policy, int(mine.json()[0]["id"]))


async def inspector(
    api: httpx.AsyncClient, admin_headers: dict[str, str], name: str = "insp_uw"
) -> tuple[dict[str, str], int]:
    return await staff_user(api, admin_headers, name, "underwriter", full_name="张检查")


def later(**delta: float) -> str:
    return (utcnow() + timedelta(**delta)).isoformat()


async def hazard(
    api: httpx.AsyncClient,
    staff: dict[str, str],
    inspection_id: int,
    *,
    severity: str = "serious",
    rectify_by: str | None = None,
    photo: bytes | None = None,
    description: str = "配电箱未上锁",
) -> httpx.Response:
    files = {"file": ("hazard.png", io.BytesIO(photo), "image/png")} if photo is not None else None
    data = {
        "description": description,
        "severity": severity,
        "advice": "加锁并张贴警示标志",
        "rectify_by": rectify_by or later(days=10),
    }
    return await api.post(f"/api/inspections/{inspection_id}/hazards", headers=staff, data=data, files=files)


async def scheduled(
    api: httpx.AsyncClient, staff: dict[str, str], staff_id: int, insured: Insured, at: str | None = None
) -> dict[str, Any]:
    assigned = await api.post(
        f"/api/inspections/{insured.inspection_id}/inspector", headers=staff, json={"staff_user_id": staff_id}
    )
    assert assigned.status_code == 200, assigned.text
    proposed = await api.post(
        f"/api/inspections/{insured.inspection_id}/appointment",
        headers=staff,
        json={"at": at or later(days=3)},
    )
    assert proposed.status_code == 200, proposed.text
    answer: dict[str, Any] = proposed.json()
    return answer


async def outbox(db: Database, like: str = "") -> list[OutboxMessage]:
    async with db.session() as session:
        query = select(OutboxMessage).order_by(col(OutboxMessage.id))
        rows = list((await session.exec(query)).all())
    return [r for r in rows if like in r.dedupe_key]


async def alerts(db: Database, kind: str) -> list[StaffAlert]:
    async with db.session() as session:
        return list((await session.exec(select(StaffAlert).where(StaffAlert.kind == kind))).all())


# --- a fake safety authority on loopback ---------------------------------------------------------------


@dataclass
class FakeAuthority:
    url: str
    answers: list[int] = field(default_factory=list)  # status codes to answer, in order; then 201
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def authority() -> AsyncIterator[FakeAuthority]:
    fake = FakeAuthority(url="")

    async def receive(request: web.Request) -> web.Response:
        form = await request.post()
        report = form["report"]
        assert isinstance(report, web.FileField)
        fake.received.append(
            {
                "summary": json.loads(str(form["summary"])),
                "pdf": report.file.read(),
                "auth": request.headers.get("Authorization"),
                "key": request.headers.get("Idempotency-Key"),
            }
        )
        code = fake.answers.pop(0) if fake.answers else 201
        return web.json_response({"reference": f"AJ-{len(fake.received)}"}, status=code)

    app = web.Application()
    app.router.add_post("/feedback", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}/feedback"
    yield fake
    await runner.cleanup()


def with_authority(app: Any, fake: FakeAuthority) -> Settings:
    settings: Settings = app.state.settings.model_copy(
        update={"safety_authority_url": fake.url, "safety_authority_token": "s3cret"}
    )
    app.state.settings = settings
    return settings


# --- R-LIA-5 ---------------------------------------------------------------------------------------------


async def test_r_lia_5_every_liability_policy_issued_has_an_inspection_and_farm_cover_none(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    insured = await liability_policy(api, service_headers, "r-lia-5-every")
    second = await liability_policy(api, service_headers, "r-lia-5-every-2")
    async with db.session() as session:
        rows = (await session.exec(select(Inspection, Policy).join(Policy))).all()
    assert {p.id for _, p in rows} == {insured.policy["id"], second.policy["id"]}
    for inspection, policy in rows:
        assert inspection.status == "due" and inspection.region_code == policy.region_code
        assert timedelta(days=29) < inspection.due_at - policy.issued_at <= timedelta(days=30)


async def test_r_lia_5_report_reaches_the_enterprise_in_chat_and_the_authority(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    app: Any,
    authority: FakeAuthority,
) -> None:
    settings = with_authority(app, authority)
    insured = await liability_policy(api, service_headers, "r-lia-5-report")
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured)
    recorded = await hazard(api, staff, insured.inspection_id, photo=png(), severity="major")
    assert recorded.status_code == 201, recorded.text
    await hazard(api, staff, insured.inspection_id, description="消防通道堆放杂物", severity="general")
    done = await api.post(
        f"/api/inspections/{insured.inspection_id}/complete",
        headers=staff,
        json={"summary": "配电管理需加强"},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "done" and body["report_channel"] == "chat" and len(body["hazards"]) == 2
    assert body["authority_status"] == "pending"
    # the enterprise's chat gets the PDF with a "fixed" button per hazard
    (report,) = await outbox(db, f"inspection-{insured.inspection_id}-report")
    assert report.identity_id == int(insured.bot["X-Identity-Id"])
    assert "配电箱未上锁" in report.text and "重大隐患" in report.text
    assert [b["callback_data"] for row in report.buttons or [] for b in row] == [
        f"insp:fix:{h['id']}:0" for h in body["hazards"]
    ]
    url = (report.attachments or [])[0]["url"]
    async with db.session() as session:
        document = await session.get(Document, body["report_document_id"])
    assert document is not None and document.content.startswith(b"%PDF") and url.endswith(str(document.id))
    assert b"/Subtype /Image" in document.content  # the hazard's photo is in the report
    mine = await api.get(f"/api/bot/documents/{document.id}", headers=insured.bot)
    assert mine.status_code == 200 and mine.content == document.content
    # the authority: refused twice (down), then accepted; each attempt recorded, backoff between
    authority.answers = [503, 500]
    first = await _run_authority(db, settings)
    assert (first.attempted, first.accepted) == (1, 0)
    again = await _run_authority(db, settings)
    assert again.attempted == 0  # the backoff has not passed: nothing sent twice in a row
    for minutes in (2, 6):
        await _run_authority(db, settings, utcnow() + timedelta(minutes=minutes))
    assert len(authority.received) == 3
    sent = authority.received[-1]
    assert sent["pdf"] == document.content and sent["auth"] == "Bearer s3cret"
    assert sent["key"] == f"tianbao-{sent['summary']['report_number']}"
    assert sent["summary"]["enterprise"]["name"] == insured.policy["insured_name"]
    assert sent["summary"]["hazard_counts"] == {"major": 1, "general": 1}
    assert "phone" not in json.dumps(sent["summary"])
    view = (await api.get(f"/api/inspections/{insured.inspection_id}", headers=staff)).json()
    assert view["authority_status"] == "accepted" and view["authority_attempts"] == 3
    assert view["authority_reference"] == "AJ-3"
    attempts = [(h["status_code"], h["accepted"]) for h in view["history"] if h["step"] == "authority"]
    assert attempts == [(503, False), (500, False), (201, True)]  # every attempt recorded
    # accepted: never sent again
    assert (await _run_authority(db, settings, utcnow() + timedelta(days=1))).attempted == 0
    assert len(authority.received) == 3


async def _run_authority(
    db: Database, settings: Settings, now: datetime | None = None
) -> jobs.AuthorityReport:
    async with db.session() as session:
        return await jobs.send_to_authority(session, settings, now)


async def test_r_lia_5_summary_kept_until_an_authority_address_is_configured(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    app: Any,
    authority: FakeAuthority,
) -> None:
    insured = await liability_policy(api, service_headers, "r-lia-5-unconfigured")
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured)
    done = await api.post(
        f"/api/inspections/{insured.inspection_id}/complete", headers=staff, json={"summary": "良好"}
    )
    assert done.json()["authority_status"] == "unconfigured"
    assert (await _run_authority(db, app.state.settings)).attempted == 0
    settings = with_authority(app, authority)
    assert (await _run_authority(db, settings)).accepted == 1
    assert authority.received[0]["summary"]["hazards"] == []


async def test_r_lia_5_overdue_hazards_escalate_to_insurer_staff_once(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
) -> None:
    insured = await liability_policy(api, service_headers, "r-lia-5-overdue")
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured)
    made = await hazard(api, staff, insured.inspection_id, rectify_by=later(days=5))
    await api.post(
        f"/api/inspections/{insured.inspection_id}/complete", headers=staff, json={"summary": "需整改"}
    )
    hazard_id = made.json()["hazards"][0]["id"]
    soon = utcnow() + timedelta(days=4)  # inside the 48 h before the deadline
    reminded = await _reminders(db, settings, soon)
    assert reminded.rectifications == 1 and reminded.escalated == 0
    assert (await _reminders(db, settings, soon)).rectifications == 0  # once
    (notice,) = await outbox(db, f"hazard-{hazard_id}-reminder")
    assert (
        "整改" in notice.text and (notice.buttons or [])[0][0]["callback_data"] == f"insp:fix:{hazard_id}:0"
    )
    past = utcnow() + timedelta(days=6)
    assert (await _reminders(db, settings, past)).escalated == 1
    assert (await _reminders(db, settings, past)).escalated == 0
    (alert,) = await alerts(db, "hazard_overdue")
    assert alert.region_code == DONGGUAN_TOWNSHIP and "配电箱未上锁" in alert.body
    listed = await api.get("/api/alerts", params={"kind": "hazard_overdue"}, headers=staff)
    assert [a["id"] for a in listed.json()] == [alert.id]
    view = (await api.get(f"/api/inspections/{insured.inspection_id}", headers=staff)).json()
    assert view["hazards"][0]["escalated_at"] is not None


async def _reminders(db: Database, settings: Settings, now: datetime) -> jobs.ReminderReport:
    async with db.session() as session:
        return await jobs.inspection_reminders(session, settings, now)


async def test_r_lia_5_a_fixed_hazard_is_neither_reminded_nor_escalated(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
) -> None:
    insured = await liability_policy(api, service_headers, "r-lia-5-fixed")
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured)
    made = await hazard(api, staff, insured.inspection_id, rectify_by=later(days=5))
    await api.post(
        f"/api/inspections/{insured.inspection_id}/complete", headers=staff, json={"summary": "需整改"}
    )
    hazard_id = made.json()["hazards"][0]["id"]
    photo = await api.post(
        "/api/bot/inspections/media",
        headers=insured.bot,
        files={"file": ("f.png", io.BytesIO(png()), "image/png")},
    )
    assert photo.status_code == 201, photo.text
    fixed = await api.post(
        f"/api/bot/inspections/hazards/{hazard_id}/fixed",
        headers=insured.bot,
        json={"photo_document_id": photo.json()["id"], "note": "已加锁"},
    )
    assert fixed.status_code == 200 and fixed.json()["hazards"][0]["status"] == "fixed"
    assert fixed.json()["recorded"] is True
    twice = await api.post(
        f"/api/bot/inspections/hazards/{hazard_id}/fixed",
        headers=insured.bot,
        json={"photo_document_id": photo.json()["id"]},
    )
    assert twice.json()["recorded"] is False
    report = await _reminders(db, settings, utcnow() + timedelta(days=6))
    assert (report.rectifications, report.escalated) == (0, 0)
    # the region's staff open the photo the enterprise sent
    view = (await api.get(f"/api/inspections/{insured.inspection_id}", headers=staff)).json()
    assert view["hazards"][0]["fixed_note"] == "已加锁"
    opened = await api.get(f"/api/documents/{view['hazards'][0]['fixed_photo_document_id']}", headers=staff)
    assert opened.status_code == 200 and opened.content == png()


# --- the appointment ---------------------------------------------------------------------------------------


async def test_appointment_proposed_in_chat_and_confirmed_once(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    insured = await liability_policy(api, service_headers, "insp-confirm")
    staff, staff_id = await inspector(api, admin_headers)
    proposed = await scheduled(api, staff, staff_id, insured)
    assert proposed["status"] == "proposed" and proposed["appointment_round"] == 1
    assert proposed["inspector_name"] == "张检查"
    (notice,) = await outbox(db, f"inspection-{insured.inspection_id}-proposed-1")
    assert "张检查" in notice.text and notice.identity_id == int(insured.bot["X-Identity-Id"])
    buttons = [b["callback_data"] for row in notice.buttons or [] for b in row]
    assert buttons == [f"insp:ok:{insured.inspection_id}:1", f"insp:re:{insured.inspection_id}:1"]
    path = f"/api/bot/inspections/{insured.inspection_id}/confirm"
    confirmed = await api.post(path, headers=insured.bot, json={"round": 1})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["recorded"] is True
    assert (await api.post(path, headers=insured.bot, json={"round": 1})).json()["recorded"] is False
    # a new proposal: the old round's button records nothing, the new one does
    moved = await api.post(
        f"/api/inspections/{insured.inspection_id}/appointment", headers=staff, json={"at": later(days=5)}
    )
    assert moved.json()["status"] == "proposed" and moved.json()["appointment_round"] == 2
    stale = await api.post(path, headers=insured.bot, json={"round": 1})
    assert stale.json()["recorded"] is False and stale.json()["status"] == "proposed"
    assert (await api.post(path, headers=insured.bot, json={"round": 2})).json()["status"] == "confirmed"
    async with db.session() as session:
        audited = (
            await session.exec(select(AuditLog.action).where(AuditLog.target_type == "inspection"))
        ).all()
    assert sorted(audited) == ["inspection.appointment", "inspection.appointment", "inspection.inspector"]


async def test_reschedule_request_reaches_staff_who_propose_again(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    insured = await liability_policy(api, service_headers, "insp-resched")
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured)
    day = (local_date(utcnow()) + timedelta(days=9)).isoformat()
    asked = await api.post(
        f"/api/bot/inspections/{insured.inspection_id}/reschedule",
        headers=insured.bot,
        json={"reason": "那周设备检修停产", "proposed_day": day},
    )
    assert asked.status_code == 200 and asked.json()["status"] == "reschedule", asked.text
    queue = await api.get("/api/inspections", params={"status": "reschedule"}, headers=staff)
    (row,) = queue.json()
    assert (row["reschedule_day"], row["reschedule_reason"]) == (day, "那周设备检修停产")
    (alert,) = await alerts(db, "inspection_reschedule")
    assert day in alert.body and "设备检修" in alert.body
    again = await api.post(
        f"/api/inspections/{insured.inspection_id}/appointment", headers=staff, json={"at": later(days=9)}
    )
    assert again.json()["status"] == "proposed" and again.json()["appointment_round"] == 2
    assert len(await outbox(db, f"inspection-{insured.inspection_id}-proposed-2")) == 1


async def test_reminders_before_the_visit_reach_both_once(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
) -> None:
    insured = await liability_policy(api, service_headers, "insp-remind")
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured, at=later(hours=30))
    early = await _reminders(db, settings, utcnow())
    assert (early.appointments, early.inspectors) == (0, 0)  # more than 24 h ahead
    due = utcnow() + timedelta(hours=8)
    first = await _reminders(db, settings, due)
    assert (first.appointments, first.inspectors) == (1, 1)
    second = await _reminders(db, settings, due)
    assert (second.appointments, second.inspectors) == (0, 0)
    assert len(await outbox(db, f"inspection-{insured.inspection_id}-reminder-1")) == 1
    (alert,) = await alerts(db, "inspection_reminder")
    assert "张检查" in alert.body
    # a new time is a new round: reminded again
    await api.post(
        f"/api/inspections/{insured.inspection_id}/appointment", headers=staff, json={"at": later(hours=40)}
    )
    third = await _reminders(db, settings, utcnow() + timedelta(hours=20))
    assert (third.appointments, third.inspectors) == (1, 1)


async def test_an_enterprise_no_chat_reaches_is_texted_with_a_link(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    from backend.people.models import ChatIdentity

    insured = await liability_policy(api, service_headers, "insp-sms")
    async with db.session() as session:
        chat = await session.get(ChatIdentity, int(insured.bot["X-Identity-Id"]))
        assert chat is not None
        chat.stopped_at = utcnow()  # the enterprise blocked the bot
        session.add(chat)
        await session.commit()
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured)
    (text,) = await outbox(db, f"inspection-{insured.inspection_id}-proposed-1")
    assert text.channel == "sms" and "/s/" in text.text
    assert (text.template or {})["key"] == "inspection_appointment"


# --- who sees what ---------------------------------------------------------------------------------------


async def test_another_enterprise_is_refused_and_another_region_sees_nothing(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    insured = await liability_policy(api, service_headers, "insp-own")
    other = await liability_policy(api, service_headers, "insp-other")
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured)
    mine = f"/api/bot/inspections/{insured.inspection_id}"
    assert (await api.get(mine, headers=insured.bot)).status_code == 200
    for call in (
        api.get(mine, headers=other.bot),
        api.post(f"{mine}/confirm", headers=other.bot, json={"round": 1}),
        api.post(
            f"{mine}/reschedule", headers=other.bot, json={"reason": "不方便", "proposed_day": "2099-01-01"}
        ),
    ):
        refused = await call
        assert refused.status_code == 404 and refused.json()["detail"]["code"] == "not_found"
    assert [i["id"] for i in (await api.get("/api/bot/inspections", headers=other.bot)).json()] == [
        other.inspection_id
    ]
    neighbour, _ = await staff_user(api, admin_headers, "insp_zs", "underwriter", regions=(ZHONGSHAN,))
    assert (await api.get(f"/api/inspections/{insured.inspection_id}", headers=neighbour)).status_code == 404
    listed = await api.get("/api/inspections", headers=neighbour)
    assert listed.status_code == 200 and listed.json() == []
    far = await api.post(
        f"/api/inspections/{insured.inspection_id}/appointment", headers=neighbour, json={"at": later(days=2)}
    )
    assert far.status_code == 404
    viewer, _ = await staff_user(api, admin_headers, "insp_view", "viewer")
    seen = await api.get(f"/api/inspections/{insured.inspection_id}", headers=viewer)
    assert seen.status_code == 200 and "****" in seen.json()["enterprise_phone"]  # masked for a viewer
    written = await api.post(
        f"/api/inspections/{insured.inspection_id}/complete", headers=viewer, json={"summary": "x"}
    )
    assert written.status_code == 403 and written.json()["detail"]["code"] == "forbidden"
    # an inspector of another region, or of a role that does not inspect, cannot be named
    _, far_id = await staff_user(api, admin_headers, "insp_zs_uw", "underwriter", regions=(ZHONGSHAN,))
    _, agent_id = await staff_user(api, admin_headers, "insp_agent", "agent")
    for wrong in (far_id, agent_id):
        named = await api.post(
            f"/api/inspections/{insured.inspection_id}/inspector",
            headers=staff,
            json={"staff_user_id": wrong},
        )
        assert named.status_code == 422 and named.json()["detail"]["code"] == "inspection_inspector_invalid"
    team = await api.post(
        f"/api/inspections/{insured.inspection_id}/inspector",
        headers=staff,
        json={"team_name": "东莞安评技术服务队"},
    )
    assert team.json()["inspector_team"] == "东莞安评技术服务队" and team.json()["inspector_staff_id"] is None


async def test_another_enterprise_cannot_mark_a_hazard_fixed_or_use_anothers_photo(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    insured = await liability_policy(api, service_headers, "insp-fix-own")
    other = await liability_policy(api, service_headers, "insp-fix-other")
    staff, staff_id = await inspector(api, admin_headers)
    await scheduled(api, staff, staff_id, insured)
    hazard_id = (await hazard(api, staff, insured.inspection_id)).json()["hazards"][0]["id"]
    photos = {}
    for who in (insured, other):
        uploaded = await api.post(
            "/api/bot/inspections/media",
            headers=who.bot,
            files={"file": ("f.png", io.BytesIO(png()), "image/png")},
        )
        photos[who.inspection_id] = uploaded.json()["id"]
    path = f"/api/bot/inspections/hazards/{hazard_id}/fixed"
    refused = await api.post(path, headers=other.bot, json={"photo_document_id": photos[other.inspection_id]})
    assert refused.status_code == 404
    borrowed = await api.post(
        path, headers=insured.bot, json={"photo_document_id": photos[other.inspection_id]}
    )
    assert borrowed.status_code == 422 and borrowed.json()["detail"]["code"] == "hazard_photo_unknown"


# --- bad input -------------------------------------------------------------------------------------------


async def test_bad_input_is_refused_with_its_reason(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    insured = await liability_policy(api, service_headers, "insp-bad")
    staff, staff_id = await inspector(api, admin_headers)
    path = f"/api/inspections/{insured.inspection_id}"
    early = await api.post(f"{path}/appointment", headers=staff, json={"at": later(days=2)})
    assert early.json()["detail"]["code"] == "inspection_no_inspector"
    both = await api.post(
        f"{path}/inspector", headers=staff, json={"staff_user_id": staff_id, "team_name": "安评队"}
    )
    assert both.json()["detail"]["code"] == "inspection_inspector_required"
    await scheduled(api, staff, staff_id, insured)
    past = await api.post(
        f"{path}/appointment", headers={**staff, "Accept-Language": "en"}, json={"at": later(hours=-1)}
    )
    assert past.status_code == 422 and past.json()["detail"] == {
        "code": "inspection_time_past",
        "message": "The appointment must be later than now.",
        "detail": {},
    }
    naive = await api.post(f"{path}/appointment", headers=staff, json={"at": "2099-01-01T09:00:00"})
    assert naive.status_code == 422 and "timezone" in naive.text  # a time without its offset is ambiguous
    cases = [
        (dict(rectify_by=later(hours=-2)), 422, "hazard_deadline_past", "整改期限必须晚于现在"),
        (dict(severity="catastrophic"), 422, "hazard_severity_unknown", "general（一般）"),
        (dict(photo=b"GIF89a not really a picture"), 415, "not_an_image", "不是系统接受的照片"),
        (dict(description="   "), 422, "hazard_description_required", "请写明隐患情况"),
    ]
    for kwargs, code, name, text in cases:
        refused = await hazard(api, staff, insured.inspection_id, **kwargs)  # type: ignore[arg-type]
        assert refused.status_code == code, refused.text
        assert refused.json()["detail"]["code"] == name and text in refused.json()["detail"]["message"]
    async with db.session() as session:
        assert (await session.exec(select(InspectionHazard))).all() == []  # nothing half-stored
    day = await api.post(
        f"/api/bot/inspections/{insured.inspection_id}/reschedule",
        headers=insured.bot,
        json={"reason": "不方便", "proposed_day": local_date(utcnow()).isoformat()},
    )
    assert day.json()["detail"]["code"] == "inspection_day_past"
    await api.post(f"{path}/complete", headers=staff, json={"summary": "良好"})
    closed = await hazard(api, staff, insured.inspection_id)
    assert closed.json()["detail"]["code"] == "inspection_done"
    blank = await api.post(f"{path}/complete", headers=staff, json={"summary": ""})
    assert blank.status_code == 422


async def test_r_lia_5_a_follow_up_inspection_for_a_liability_policy_only(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    from tests.backend.test_claims_workflow import paid_policy

    insured = await liability_policy(api, service_headers, "insp-follow-up")
    staff, _ = await inspector(api, admin_headers)
    made = await api.post(
        "/api/inspections", headers=staff, json={"policy_id": insured.policy["id"], "due_at": later(days=60)}
    )
    assert made.status_code == 201 and made.json()["status"] == "due", made.text
    mine = await api.get("/api/bot/inspections", headers=insured.bot)
    assert sorted(i["id"] for i in mine.json()) == sorted([insured.inspection_id, made.json()["id"]])
    _, farm = await paid_policy(api, service_headers, "insp-follow-up-farmer")
    refused = await api.post(
        "/api/inspections", headers=staff, json={"policy_id": farm["id"], "due_at": later(days=9)}
    )
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "inspection_not_liability"
    neighbour, _ = await staff_user(api, admin_headers, "insp_zs_add", "adjuster", regions=(ZHONGSHAN,))
    far = await api.post(
        "/api/inspections",
        headers=neighbour,
        json={"policy_id": insured.policy["id"], "due_at": later(days=9)},
    )
    assert far.status_code == 404

"""Callback surveys after claim payments (R-CBK-1 to R-CBK-5): the daily draw at the 0.5 % edges and for
collective cases, its re-derivation, the due date, answers bound to the person, flags, the unreachable
path, the staff API in and out of region, and retention."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from backend.alerts.models import StaffAlert
from backend.callbacks import sampling, service
from backend.callbacks.models import Callback, CallbackPopulation, CallbackSample
from backend.claims.catastrophe.models import DisasterEvent
from backend.claims.models import Claim, ClaimPayment
from backend.db import Database, utcnow
from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity
from backend.settings import Settings
from backend.staff.models import AuditLog, StaffUser
from messages import local_date, local_day_start
from scheduler.registry import JOBS, JobContext
from tests.backend.test_claims_workflow import paid_policy, staff_user
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, own_numbers

ZHONGSHAN = "442000000000"
VILLAGE = "441900003001"

TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    **{
        f"callbacks/question_{q}": {
            "claim_number": "CL1",
            "amount_fen": 150000,
            "amount_wrong": q == "comment",
        }
        for q in ("received", "amount", "satisfaction", "comment", "done", "closed")
    },
    "callbacks/flagged": {"not_received": True},
    "callbacks/already": {},
    "callbacks/not_found": {},
    "callbacks_notice/ask": {"claim_number": "CL1", "amount_fen": 150000, "question": "到账了吗？"},
    "callbacks_notice/reminder": {"claim_number": "CL1", "amount_fen": 150000, "question": "到账了吗？"},
    "callbacks_notice/staff_flag_title": {"claim_number": "CL1"},
    "callbacks_notice/staff_flag_body": {
        "claim_number": "CL1",
        "callback": {"id": 7, "attempts": 1},
        "amount_fen": 150000,
        "reasons": ["not_received", "amount_differs"],
    },
    "callbacks_notice/staff_unreachable_title": {"claim_number": "CL1"},
    "callbacks_notice/staff_due_title": {"claim_number": "CL1"},
    "callbacks_notice/staff_due_body": {
        "claim_number": "CL1",
        "callback": {"id": 7, "due_at": datetime(2026, 12, 31, 2, 0, tzinfo=UTC)},
    },
    "callbacks_notice/staff_unreachable_body": {"claim_number": "CL1", "callback": {"id": 7, "attempts": 2}},
}


def tuned(settings: Settings, **values: Any) -> Settings:
    """The job's settings for a test: the draw at any hour (tests run at every hour of the day)."""
    return settings.model_copy(update={"callback_draw_hour": 0, **values})


async def admin_id(db: Database) -> int:
    async with db.session() as session:
        admin = (await session.exec(select(StaffUser).where(StaffUser.username == "admin"))).one()
    assert admin.id is not None
    return admin.id


async def paid_claims(
    db: Database,
    policy: dict[str, Any],
    count: int,
    *,
    kind: str = "individual",
    event_id: int | None = None,
    paid_at: datetime | None = None,
    amount_fen: int = 150000,
    region_code: str = VILLAGE,
) -> list[int]:
    """``count`` claims of ``policy`` paid at ``paid_at``, with their payment records (one multi-row
    insert each)."""
    paid = paid_at or utcnow() - timedelta(hours=1)
    payer = await admin_id(db)
    async with db.session() as session:
        claims = [
            Claim(
                number=f"CL{secrets.token_hex(6).upper()}",
                kind=kind,
                status="paid",
                policy_id=policy["id"],
                product_code=policy["product_code"],
                region_code=region_code,
                county_code="441900000000",
                insured_name=policy["insured_name"],
                cause="flood",
                loss_started_at=paid - timedelta(days=20),
                lost_quantity="2",
                unit="mu",
                reporter_name=policy["insured_name"],
                reporter_phone="13812345678",
                event_id=event_id,
                agreed_amount_fen=amount_fen,
                paid_amount_fen=amount_fen,
                paid_at=paid,
            )
            for _ in range(count)
        ]
        session.add_all(claims)
        await session.flush()
        session.add_all(
            ClaimPayment(
                claim_id=c.id or 0,
                amount_fen=amount_fen,
                payee_name=policy["insured_name"],
                bank_name="农业银行",
                account_number="6228480012345678901",
                payee_is_insured=True,
                reference=f"TRF{c.id}",
                paid_by=payer,
                paid_at=paid,
            )
            for c in claims
        )
        await session.commit()
        return [c.id or 0 for c in claims]


async def event(db: Database, name: str) -> int:
    async with db.session() as session:
        row = DisasterEvent(name=name, cause="flood", region_code=DONGGUAN_TOWNSHIP, started_on=utcnow())
        session.add(row)
        await session.commit()
        return row.id or 0


async def draw(db: Database, settings: Settings, now: datetime | None = None) -> service.DrawReport:
    async with db.session() as session:
        return await service.draw_daily_sample(session, settings, now)


async def follow_up(db: Database, settings: Settings, now: datetime) -> service.FollowUpReport:
    async with db.session() as session:
        return await service.follow_up(session, settings, now)


async def callbacks(db: Database) -> list[Callback]:
    async with db.session() as session:
        return list((await session.exec(select(Callback).order_by(col(Callback.id)))).all())


async def alerts(db: Database, kind: str) -> list[StaffAlert]:
    async with db.session() as session:
        return list((await session.exec(select(StaffAlert).where(StaffAlert.kind == kind))).all())


@pytest.fixture
async def insured(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> tuple[dict[str, str], dict[str, Any]]:
    return await paid_policy(api, service_headers, "cbk-farmer")


# --- R-CBK-2: the sample size ------------------------------------------------------------------------


def test_R_CBK_2_half_a_percent_rounded_up_at_the_edges() -> None:
    assert [sampling.required_overall(n, 5) for n in (0, 1, 199, 200, 201, 400, 401)] == [0, 1, 1, 1, 2, 2, 3]
    assert sampling.case_quota(2, 0, 3) == 2  # fewer than 3 households: all of them
    assert sampling.case_quota(5, 0, 3) == 3
    assert sampling.case_quota(6, 3, 3) == 0  # drawn on an earlier day
    assert sampling.case_quota(4, 2, 3) == 1


@pytest.mark.parametrize(("paid", "expected"), [(199, 1), (200, 1), (201, 2)])
async def test_R_CBK_2_the_daily_draw_takes_half_a_percent_of_those_paid(
    db: Database, settings: Settings, insured: tuple[dict[str, str], dict[str, Any]], paid: int, expected: int
) -> None:
    await paid_claims(db, insured[1], paid)
    report = await draw(db, tuned(settings))
    assert (report.population, report.drawn, report.new) == (paid, expected, True)
    assert len(await callbacks(db)) == expected
    async with db.session() as session:
        sample = (await session.exec(select(CallbackSample))).one()
        considered = (await session.exec(select(CallbackPopulation))).all()
    assert (sample.population_size, sample.required_overall, sample.sample_size) == (paid, expected, expected)
    assert len(considered) == paid and sum(p.drawn for p in considered) == expected


async def test_R_CBK_2_collective_cases_at_least_three_households_or_all(
    db: Database, settings: Settings, insured: tuple[dict[str, str], dict[str, Any]]
) -> None:
    policy = insured[1]
    small, large = await event(db, "小河决堤"), await event(db, "台风")
    two = await paid_claims(db, policy, 2, kind="collective", event_id=small)
    five = await paid_claims(db, policy, 5, kind="collective", event_id=large)
    await paid_claims(db, policy, 10)
    now = utcnow()
    report = await draw(db, tuned(settings), now)
    drawn = {c.claim_id for c in await callbacks(db)}
    assert set(two) <= drawn  # a case of 2 households: both
    assert len(drawn & set(five)) >= 3  # a case of 5: at least 3
    assert report.drawn == len(drawn) >= sampling.required_overall(17, 5)
    # The next day: one more household of the small case is paid; the large case needs no more
    third = await paid_claims(
        db, policy, 1, kind="collective", event_id=small, paid_at=now + timedelta(hours=2)
    )
    one_more_large = await paid_claims(
        db, policy, 1, kind="collective", event_id=large, paid_at=now + timedelta(hours=2)
    )
    await draw(db, tuned(settings), now + timedelta(days=1))
    async with db.session() as session:
        second = (await session.exec(select(CallbackSample).order_by(col(CallbackSample.id).desc()))).first()
    assert second is not None and second.case_quotas == {f"event:{small}": 1}
    drawn = {c.claim_id for c in await callbacks(db)}
    assert set(third) <= drawn and len(drawn & set(five + one_more_large)) >= 3


def test_R_CBK_2_a_collective_case_is_the_event_else_the_policy() -> None:
    assert sampling.case_key("collective", 7, 3) == "event:7"
    assert sampling.case_key("collective", None, 3) == "policy:3"
    assert sampling.case_key("individual", 7, 3) is None


async def test_R_CBK_2_seed_and_population_recorded_and_the_draw_rederived(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    insured: tuple[dict[str, str], dict[str, Any]],
) -> None:
    policy = insured[1]
    case = await paid_claims(db, policy, 4, kind="collective", event_id=await event(db, "冰雹"))
    ids = await paid_claims(db, policy, 450)
    report = await draw(db, tuned(settings))
    drawn = {c.claim_id for c in await callbacks(db)}
    # 3 of 454 at random (2.27 rounded up), then the case topped up to its 3 households
    assert len(drawn & set(case)) == 3 and 3 <= report.drawn <= 6
    checked = await api.get(f"/api/callbacks/samples/{report.sample_id}/rederive", headers=admin_headers)
    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert body["matches"] is True and body["recorded"] == body["derived"]
    assert body["population"] == sorted(body["population"]) and set(ids) <= set(body["population"])
    listed = (await api.get("/api/callbacks/samples", headers=admin_headers)).json()
    assert listed[0]["seed"] == body["seed"] and listed[0]["population_size"] == 454
    assert listed[0]["sample_size"] == report.drawn and listed[0]["required_overall"] == 3
    # Another seed (a record changed after the draw) no longer derives the recorded sample
    async with db.session() as session:
        sample = await session.get(CallbackSample, report.sample_id)
        assert sample is not None
        sample.seed = str(int(sample.seed) + 1)
        session.add(sample)
        await session.commit()
    tampered = (
        await api.get(f"/api/callbacks/samples/{report.sample_id}/rederive", headers=admin_headers)
    ).json()
    assert tampered["matches"] is False


# --- R-CBK-1: within a month; the daily job -----------------------------------------------------------


def test_R_CBK_1_due_one_month_after_payment() -> None:
    paid = datetime(2026, 1, 31, 8, 0).astimezone()
    assert sampling.one_month_after(paid).date().isoformat() == "2026-02-28"
    assert sampling.one_month_after(datetime(2028, 1, 31, 8, 0).astimezone()).day == 29
    assert (
        sampling.one_month_after(datetime(2026, 12, 15, 8, 0).astimezone()).date().isoformat() == "2027-01-15"
    )


async def test_R_CBK_1_no_payment_is_left_unsampled_past_its_due_date(
    db: Database, settings: Settings, insured: tuple[dict[str, str], dict[str, Any]]
) -> None:
    """The scheduler was down for a month: payments of 29 and 32 days ago were never considered. The next
    run still considers both (no look-back limit); a drawn one past its due date is asked at once and
    marked late."""
    now = utcnow()
    policy = insured[1]
    recent = await paid_claims(db, policy, 1, paid_at=now - timedelta(days=29))
    old = await paid_claims(db, policy, 1, paid_at=now - timedelta(days=32))
    await draw(db, tuned(settings, callback_sample_permille=1000), now)
    async with db.session() as session:
        paid = (await session.exec(select(Claim.id).where(Claim.status == "paid"))).all()
        considered = (await session.exec(select(CallbackPopulation.claim_id))).all()
    assert set(paid) == set(considered)
    rows = {c.claim_id: c for c in await callbacks(db)}
    assert rows[recent[0]].due_at == sampling.one_month_after(rows[recent[0]].paid_at)
    assert rows[recent[0]].due_at > now and not rows[recent[0]].late
    assert rows[old[0]].late and rows[old[0]].asked_at is not None
    # Nothing paid is ever outside a population once its due date has come
    assert all(c.asked_at is not None for c in rows.values())


async def test_R_CBK_1_staff_told_once_when_a_callback_nears_its_month_unanswered(
    db: Database, settings: Settings, insured: tuple[dict[str, str], dict[str, Any]]
) -> None:
    now = utcnow()
    callback = await one_callback(db, settings, insured[1], paid_at=now - timedelta(days=25))
    early = await follow_up(db, tuned(settings), callback.due_at - timedelta(days=3, seconds=1))
    assert early.due_soon == 0
    assert (await follow_up(db, tuned(settings), callback.due_at - timedelta(days=3))).due_soon == 1
    assert (await follow_up(db, tuned(settings), callback.due_at - timedelta(days=2))).due_soon == 0
    due = await alerts(db, "callback_due")
    assert len(due) == 1 and due[0].region_code == VILLAGE


async def test_R_CBK_1_the_daily_draw_runs_once_a_day_and_again_the_next(
    db: Database, settings: Settings, insured: tuple[dict[str, str], dict[str, Any]]
) -> None:
    now = utcnow()
    await paid_claims(db, insured[1], 3)
    first = await draw(db, tuned(settings), now)
    again = await draw(db, tuned(settings), now + timedelta(minutes=5))
    assert first.new and not again.new and again.sample_id == first.sample_id
    assert len(await callbacks(db)) == 1
    await paid_claims(db, insured[1], 2, paid_at=now + timedelta(minutes=10))
    nxt = await draw(db, tuned(settings), now + timedelta(days=1))
    assert nxt.new and nxt.population == 2  # only payments not considered before
    # Before the draw hour (local time) nothing is drawn; from it on, the day's draw runs once
    day_after = local_day_start(local_date(now) + timedelta(days=2))
    await paid_claims(db, insured[1], 1, paid_at=now + timedelta(minutes=20))
    early = await draw(
        db, settings.model_copy(update={"callback_draw_hour": 9}), day_after + timedelta(hours=8)
    )
    assert not early.new and early.sample_id is None
    on_time = await draw(
        db, settings.model_copy(update={"callback_draw_hour": 9}), day_after + timedelta(hours=9)
    )
    assert on_time.new and on_time.population == 1


# --- answers (R-CBK-1, R-CBK-4) ----------------------------------------------------------------------


async def one_callback(db: Database, settings: Settings, policy: dict[str, Any], **claim: Any) -> Callback:
    await paid_claims(db, policy, 1, **claim)
    await draw(db, tuned(settings))
    return (await callbacks(db))[-1]


async def answer(
    api: httpx.AsyncClient, headers: dict[str, str], callback_id: int, question: str, value: str
) -> httpx.Response:
    return await api.post(
        f"/api/bot/callbacks/{callback_id}/answers",
        headers=headers,
        json={"question": question, "value": value},
    )


async def test_R_CBK_1_answers_bound_to_the_person_and_a_second_tap_records_once(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    db: Database,
    settings: Settings,
    insured: tuple[dict[str, str], dict[str, Any]],
) -> None:
    headers, policy = insured
    callback = await one_callback(db, settings, policy)
    other, _ = await paid_policy(
        api, service_headers, "cbk-other", phone="13912345678", id_number=own_numbers("cbk-other")[0]
    )
    refused = await answer(api, other, callback.id or 0, "received", "y")
    assert refused.status_code == 404
    assert (await api.get(f"/api/bot/callbacks/{callback.id}", headers=other)).status_code == 404
    first = await answer(api, headers, callback.id or 0, "received", "y")
    assert first.status_code == 200 and first.json()["next_question"] == "amount" and first.json()["recorded"]
    twice = await answer(api, headers, callback.id or 0, "received", "n")  # an old button, or a second tap
    assert twice.json()["recorded"] is False and twice.json()["received"] is True
    assert (await answer(api, headers, callback.id or 0, "amount", "y")).json()[
        "next_question"
    ] == "satisfaction"
    assert (await answer(api, headers, callback.id or 0, "satisfaction", "6")).status_code == 422
    assert (await answer(api, headers, callback.id or 0, "satisfaction", "4")).json()[
        "next_question"
    ] == "comment"
    done = await answer(api, headers, callback.id or 0, "skip", "0")
    assert done.json()["next_question"] == "done"
    row = (await callbacks(db))[-1]
    assert (row.received, row.amount_correct, row.satisfaction, row.comment_skipped) == (True, True, 4, True)
    assert row.status == "answered" and row.flagged_at is None
    assert [h["step"] for h in row.history].count("answer_received") == 1


async def test_R_CBK_4_not_received_flags_at_once_with_the_records_for_the_region(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    insured: tuple[dict[str, str], dict[str, Any]],
) -> None:
    headers, policy = insured
    callback = await one_callback(db, settings, policy)
    answered = await answer(api, headers, callback.id or 0, "received", "n")
    assert answered.json()["next_question"] == "satisfaction"  # the amount is not asked
    await answer(api, headers, callback.id or 0, "received", "n")  # a second tap: one alert
    flags = await alerts(db, "callback_flag")
    assert len(flags) == 1 and flags[0].region_code == VILLAGE and flags[0].claim_id == callback.claim_id
    adjuster, _ = await staff_user(api, admin_headers, "cbk_adj", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "cbk_uw", "underwriter")
    neighbour, _ = await staff_user(api, admin_headers, "cbk_zs", "adjuster", regions=(ZHONGSHAN,))
    queue = (await api.get("/api/callbacks", params={"flagged": True}, headers=adjuster)).json()
    assert [c["id"] for c in queue] == [callback.id] and queue[0]["flag_reasons"] == ["not_received"]
    assert (await api.get("/api/callbacks", params={"flagged": True}, headers=neighbour)).json() == []
    assert (await api.get(f"/api/callbacks/{callback.id}", headers=neighbour)).status_code == 404
    detail = (await api.get(f"/api/callbacks/{callback.id}", headers=adjuster)).json()
    assert detail["claim"]["paid_amount_fen"] == 150000 and detail["payment"]["reference"].startswith("TRF")
    assert detail["payment"]["account_number"] == "6228***********8901"  # adjusters do not pay
    paying = (await api.get(f"/api/callbacks/{callback.id}", headers=underwriter)).json()
    assert paying["payment"]["account_number"] == "6228480012345678901"
    assert (
        await api.post(f"/api/callbacks/{callback.id}/resolve", headers=underwriter, json={"note": "x"})
    ).status_code == 403
    resolved = await api.post(
        f"/api/callbacks/{callback.id}/resolve", headers=adjuster, json={"note": "银行退票，已重新支付"}
    )
    assert resolved.status_code == 200 and resolved.json()["flag_resolved_at"]
    async with db.session() as session:
        actions = (
            await session.exec(select(AuditLog.action).where(AuditLog.target_type == "callback"))
        ).all()
    assert "callback.view" in actions and "callback.resolve" in actions


async def test_R_CBK_4_a_different_amount_flags_the_case(
    api: httpx.AsyncClient, db: Database, settings: Settings, insured: tuple[dict[str, str], dict[str, Any]]
) -> None:
    headers, policy = insured
    callback = await one_callback(db, settings, policy)
    await answer(api, headers, callback.id or 0, "received", "y")
    await answer(api, headers, callback.id or 0, "amount", "n")
    row = (await callbacks(db))[-1]
    assert row.flag_reasons == ["amount_differs"] and row.flagged_at is not None
    assert len(await alerts(db, "callback_flag")) == 1


# --- R-CBK-3: reminder, unreachable, re-confirm, remarks ---------------------------------------------


async def test_R_CBK_3_reminder_then_unreachable_then_recontact_then_remarks(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    insured: tuple[dict[str, str], dict[str, Any]],
) -> None:
    headers, policy = insured
    job = tuned(settings)
    async with db.session() as session:  # the farmer's chat blocked the bot: no chat reaches them
        chat = await session.get(ChatIdentity, int(headers["X-Identity-Id"]))
        assert chat is not None
        chat.stopped_at = utcnow()
        await session.commit()
    callback = await one_callback(db, settings, policy)
    assert callback.channel == "sms"
    asked = callback.asked_at
    assert asked is not None
    async with db.session() as session:
        texts = (await session.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms"))).all()
    assert any(t.template and t.template["key"] == "callback_ask" for t in texts)
    assert await follow_up(db, job, asked + timedelta(hours=47)) == service.FollowUpReport(0, 0)
    assert await follow_up(db, job, asked + timedelta(hours=48, seconds=1)) == service.FollowUpReport(1, 0)
    assert await follow_up(db, job, asked + timedelta(hours=49)) == service.FollowUpReport(0, 0)
    assert await follow_up(db, job, asked + timedelta(hours=96, seconds=2)) == service.FollowUpReport(0, 1)
    row = (await callbacks(db))[-1]
    assert row.status == "unreachable" and len(await alerts(db, "callback_unreachable")) == 1
    agent, _ = await staff_user(api, admin_headers, "cbk_agent", "agent")
    queue = (await api.get("/api/callbacks", params={"status": "unreachable"}, headers=agent)).json()
    assert [c["id"] for c in queue] == [row.id] and queue[0]["phone"] == "13812345678"  # agents call
    early = await api.post(f"/api/callbacks/{row.id}/close", headers=agent, json={"remarks": "空号"})
    assert early.status_code == 422 and early.json()["detail"]["code"] == "callback_recontact_first"
    taken = await api.post(
        f"/api/callbacks/{row.id}/contact", headers=agent, json={"phone": "13812345678", "confirm": True}
    )
    assert taken.status_code == 200 and taken.json()["status"] == "asked" and taken.json()["attempts"] == 2
    again = (await callbacks(db))[-1]
    assert again.asked_at is not None
    await follow_up(db, job, again.asked_at + timedelta(hours=48, seconds=1))
    await follow_up(db, job, again.asked_at + timedelta(hours=96, seconds=2))
    assert len(await alerts(db, "callback_unreachable")) == 2
    closed = await api.post(
        f"/api/callbacks/{row.id}/close", headers=agent, json={"remarks": "号码停机，村委会告知已外出务工"}
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["remarks"] == "号码停机，村委会告知已外出务工"
    async with db.session() as session:
        audited = (await session.exec(select(AuditLog).where(AuditLog.target_type == "callback"))).all()
    assert {a.action for a in audited} >= {"callback.contact", "callback.close"}


async def test_R_CBK_3_a_new_phone_held_by_another_person_is_refused(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    insured: tuple[dict[str, str], dict[str, Any]],
) -> None:
    callback = await one_callback(db, settings, insured[1])
    async with db.session() as session:
        row = await session.get(Callback, callback.id)
        assert row is not None
        row.status = "unreachable"
        session.add(row)
        await session.commit()
    await paid_policy(
        api, service_headers, "cbk-holder", phone="13912345678", id_number=own_numbers("cbk-holder")[0]
    )
    refused = await api.post(
        f"/api/callbacks/{callback.id}/contact", headers=admin_headers, json={"phone": "13912345678"}
    )
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "callback_phone_taken"
    changed = await api.post(
        f"/api/callbacks/{callback.id}/contact", headers=admin_headers, json={"phone": "13712345678"}
    )
    assert changed.status_code == 200


async def test_staff_take_the_answers_on_the_phone(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    insured: tuple[dict[str, str], dict[str, Any]],
) -> None:
    callback = await one_callback(db, settings, insured[1])
    viewer, _ = await staff_user(api, admin_headers, "cbk_view", "viewer")
    body = {"received": True, "amount_correct": False, "satisfaction": 2, "comment": "只到账1000元"}
    assert (
        await api.post(f"/api/callbacks/{callback.id}/answers", headers=viewer, json=body)
    ).status_code == 403
    done = await api.post(f"/api/callbacks/{callback.id}/answers", headers=admin_headers, json=body)
    assert done.status_code == 200 and done.json()["channel"] == "phone"
    assert done.json()["flag_reasons"] == ["amount_differs"]


# --- rates --------------------------------------------------------------------------------------------


async def test_response_rates_by_village_and_period(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    insured: tuple[dict[str, str], dict[str, Any]],
) -> None:
    headers, policy = insured
    await paid_claims(db, policy, 3)
    await draw(db, tuned(settings, callback_sample_permille=1000))
    first = (await callbacks(db))[0]
    await answer(api, headers, first.id or 0, "received", "y")
    await answer(api, headers, first.id or 0, "amount", "y")
    rates = (await api.get("/api/callbacks/rates", headers=admin_headers)).json()
    assert len(rates) == 1 and rates[0]["region_code"] == VILLAGE
    assert (rates[0]["sampled"], rates[0]["answered"]) == (3, 1) and rates[0][
        "response_rate"
    ] == pytest.approx(0.3333)
    county = (await api.get("/api/callbacks/rates", params={"level": 4}, headers=admin_headers)).json()
    assert county[0]["region_code"] == "441900000000"
    neighbour, _ = await staff_user(api, admin_headers, "cbk_zs_v", "viewer", regions=(ZHONGSHAN,))
    assert (await api.get("/api/callbacks/rates", headers=neighbour)).json() == []
    assert (await api.get("/api/callbacks", headers=neighbour)).json() == []
    samples = (await api.get("/api/callbacks/samples", headers=neighbour)).json()
    assert samples[0]["in_scope"] == 0
    regional = await api.get(f"/api/callbacks/samples/{samples[0]['id']}/rederive", headers=neighbour)
    assert regional.status_code == 403


# --- R-CBK-5: retention ------------------------------------------------------------------------------


async def age(db: Database, sample_ids: Sequence[int], days: int) -> None:
    async with db.session() as session:
        for sample_id in sample_ids:
            sample = await session.get(CallbackSample, sample_id)
            assert sample is not None
            sample.drawn_at = utcnow() - timedelta(days=days)
            session.add(sample)
        await session.commit()


async def test_R_CBK_5_records_kept_a_year_and_an_earlier_deletion_refused(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    insured: tuple[dict[str, str], dict[str, Any]],
) -> None:
    await paid_claims(db, insured[1], 2)
    report = await draw(db, tuned(settings))
    assert report.sample_id is not None
    await age(db, [report.sample_id], 364)
    refused = await api.delete(f"/api/callbacks/samples/{report.sample_id}", headers=admin_headers)
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "callback_kept"
    assert "一年" in refused.json()["detail"]["message"] or "year" in refused.json()["detail"]["message"]
    async with db.session() as session:
        assert await service.purge_expired(session, settings) == 0
    assert len(await callbacks(db)) == 1
    adjuster, _ = await staff_user(api, admin_headers, "cbk_del", "adjuster")
    await age(db, [report.sample_id], 367)
    assert (
        await api.delete(f"/api/callbacks/samples/{report.sample_id}", headers=adjuster)
    ).status_code == 403
    deleted = await api.delete(f"/api/callbacks/samples/{report.sample_id}", headers=admin_headers)
    assert deleted.status_code == 200 and deleted.json()["callbacks"] == 1
    assert await callbacks(db) == []


async def test_R_CBK_5_the_purge_job_removes_only_draws_older_than_the_retention(
    db: Database, settings: Settings, insured: tuple[dict[str, str], dict[str, Any]]
) -> None:
    now = utcnow()
    await paid_claims(db, insured[1], 1, paid_at=now - timedelta(days=2))
    old = await draw(db, tuned(settings), now - timedelta(days=1))
    await paid_claims(db, insured[1], 1)
    new = await draw(db, tuned(settings), now)
    assert old.sample_id and new.sample_id
    await age(db, [old.sample_id], 367)
    async with db.session() as session:
        assert await service.purge_expired(session, settings) == 1
    async with db.session() as session:
        left = (await session.exec(select(CallbackSample.id))).all()
    assert left == [new.sample_id]
    assert settings.callback_retention_days >= 365
    with pytest.raises(ValueError):
        settings.model_validate({**settings.model_dump(), "callback_retention_days": 300})


async def test_R_CBK_1_the_scheduler_runs_the_callback_jobs_and_a_second_run_does_nothing(
    db: Database, settings: Settings, insured: tuple[dict[str, str], dict[str, Any]]
) -> None:
    await paid_claims(db, insured[1], 3)
    context = JobContext(settings=tuned(settings))
    jobs = {job.id: job for job in JOBS if job.id.startswith("callback-")}
    assert set(jobs) == {"callback-sampling", "callback-follow-up", "callback-retention"}
    for _ in range(2):
        for job in jobs.values():
            async with db.session() as session:
                await job.function(session, context)
    assert len(await callbacks(db)) == 1
    async with db.session() as session:
        assert len((await session.exec(select(CallbackSample))).all()) == 1

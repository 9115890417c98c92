"""Broadcasts: audiences (region, product, subject, geometry, lists, earlier broadcasts), exclusions, one
message per person, texts rendered once per variant, four eyes, send now or later, pause/resume/cancel,
resend the failed, progress, acknowledgements, staff scope, township areas (R-DIS-1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from backend.broadcasts import fanout, service
from backend.broadcasts.errors import BroadcastError
from backend.broadcasts.jobs import broadcast_fan_out
from backend.broadcasts.models import Broadcast, BroadcastRecipient, BroadcastVariant
from backend.broadcasts.schemas import AudienceSpec, Exclusions
from backend.db import Database, utcnow
from backend.enrollment.collective.models import CollectiveEnrollment, PolicyHousehold
from backend.outbox.models import OutboxMessage
from backend.outbox.service import claim_batch, enqueue
from backend.outbox.sms.models import SmsLink, SmsNumber
from backend.people.models import ChatIdentity, Person
from backend.settings import Settings
from backend.staff.models import AuditLog
from tests.backend.test_claims_workflow import staff_user
from tests.broadcast_helpers import DONGGUAN_A, DONGGUAN_B, ZHONGSHAN, insured, regions, text_content

# Templates staff compose from (messages/<locale>/broadcasts/), with their contexts (tests/test_messages.py).
TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    "broadcasts/renewal_reminder": {"product_name": "水稻", "ends_on": "12月31日"},
    "broadcasts/weather_watch": {"event": "强降雨", "when": "明天下午"},
}

SQUARE = {  # around 东城街道 (synthetic): 113.70-113.80 E, 23.00-23.10 N
    "type": "Polygon",
    "coordinates": [[[113.70, 23.00], [113.80, 23.00], [113.80, 23.10], [113.70, 23.10], [113.70, 23.00]]],
}


async def outbox_of(db: Database, broadcast_id: int) -> list[OutboxMessage]:
    async with db.session() as session:
        rows = await session.exec(
            select(OutboxMessage).where(col(OutboxMessage.broadcast_id) == broadcast_id)
        )
        return list(rows.all())


async def recipients_of(db: Database, broadcast_id: int) -> list[BroadcastRecipient]:
    async with db.session() as session:
        query = select(BroadcastRecipient).where(col(BroadcastRecipient.broadcast_id) == broadcast_id)
        return list((await session.exec(query)).all())


async def system_send(
    db: Database, audience: AudienceSpec, key: str, kind: str = "warning", **kw: Any
) -> Broadcast:
    async with db.session() as session:
        return await service.send_system_broadcast(
            session,
            kind=kind,
            content=kw.pop("content", text_content()),
            audience=audience,
            source_key=key,
            **kw,
        )


def people_of(rows: list[OutboxMessage] | list[BroadcastRecipient]) -> set[str]:
    return {r.address for r in rows}


# --- audiences -------------------------------------------------------------------------------------------


async def test_r_dis_1_warning_reaches_the_insured_of_the_area_with_advice_for_what_they_insure(
    db: Database,
) -> None:
    """R-DIS-1: the insured in the affected area get the risk reminder before the disaster, with the
    advice for what each insures; texts go where no chat reaches; people outside get nothing."""
    async with db.session() as session:
        _, chat_b, _ = await insured(session, product="banana")
        both, chat_both, _ = await insured(session, product="banana")
        await insured(session, product="pig", person=both)
        _, chat_pig, _ = await insured(session, product="pig", region=DONGGUAN_B)
        texted, _, _ = await insured(session, product="rice", chat=False)
        _, outside, _ = await insured(session, region=ZHONGSHAN)
    content = text_content(
        banana=("香蕉请立桩加固。", "Prop the bananas."), livestock=("生猪请转移到高处。", "Move pigs up.")
    )
    broadcast = await system_send(db, regions("441900"), "cap:r-dis-1", content=content)
    rows = {r.address: r for r in await outbox_of(db, broadcast.id or 0)}
    assert chat_b and chat_both and chat_pig and outside
    assert set(rows) == {chat_b.address, chat_both.address, chat_pig.address, f"+86{texted.phone}"}
    assert "立桩" in rows[chat_b.address].text and "高处" not in rows[chat_b.address].text
    assert "立桩" in rows[chat_both.address].text and "高处" in rows[chat_both.address].text
    assert "高处" in rows[chat_pig.address].text and "立桩" not in rows[chat_pig.address].text
    sms = rows[f"+86{texted.phone}"]
    assert sms.kind == "warning" and sms.template and sms.template["key"] == "broadcast_warning"
    async with db.session() as session:
        link = (await session.exec(select(SmsLink).where(col(SmsLink.person_id) == texted.id))).one()
    assert link.target == f"broadcast:{broadcast.id}" and link.token in sms.text
    assert sms.template["params"][-1] == link.token


async def test_texts_are_rendered_once_per_variant_not_per_recipient(db: Database) -> None:
    async with db.session() as session:
        for _ in range(6):
            await insured(session, product="banana")
        for _ in range(4):
            await insured(session, product="rice")
        await insured(session, product="rice", locale="en")
    content = text_content(banana=("香蕉请立桩。", "Prop the bananas."))
    broadcast = await system_send(db, regions("4419"), "once-per-variant", content=content)
    async with db.session() as session:
        query = select(BroadcastVariant).where(col(BroadcastVariant.broadcast_id) == broadcast.id)
        variants = {(v.variant, v.locale, v.channel) for v in (await session.exec(query)).all()}
    assert variants == {(1, "zh-CN", "chat"), (0, "zh-CN", "chat"), (0, "en", "chat")}
    assert len(await outbox_of(db, broadcast.id or 0)) == 11


async def test_audience_by_product_subject_and_status(db: Database) -> None:
    async with db.session() as session:
        _, rice, _ = await insured(session, product="rice")
        _, sow, _ = await insured(session, product="sow")
        _, pig, _ = await insured(session, product="pig")
        _, lapsed, _ = await insured(session, product="pig", status="cancelled")
    by_product = await system_send(db, AudienceSpec(product_codes=["rice"]), "by-product")
    livestock = await system_send(db, AudienceSpec(subject_types=["livestock"]), "by-subject")
    cancelled = await system_send(
        db, AudienceSpec(product_codes=["pig"], policy_statuses=["cancelled"]), "cancelled"
    )
    assert rice and sow and pig and lapsed
    assert people_of(await outbox_of(db, by_product.id or 0)) == {rice.address}
    assert people_of(await outbox_of(db, livestock.id or 0)) == {sow.address, pig.address}
    assert people_of(await outbox_of(db, cancelled.id or 0)) == {lapsed.address}


async def test_region_at_any_level(db: Database) -> None:
    async with db.session() as session:
        _, a, _ = await insured(session, region=DONGGUAN_A)
        _, b, _ = await insured(session, region=DONGGUAN_B)
    township = await system_send(db, regions("441900003000"), "township")
    prefix = await system_send(db, regions("44"), "province-prefix")
    assert a and b
    assert people_of(await outbox_of(db, township.id or 0)) == {a.address}
    assert people_of(await outbox_of(db, prefix.id or 0)) == {a.address, b.address}


async def test_a_farmer_in_two_audiences_gets_one_message(db: Database) -> None:
    async with db.session() as session:
        farmer, chat, _ = await insured(session, product="rice")
        await insured(session, product="banana", person=farmer)
    audience = AudienceSpec(
        region_codes=["441900"], product_codes=["rice", "banana"], person_ids=[farmer.id or 0]
    )
    broadcast = await system_send(db, audience, "two-audiences")
    rows = await outbox_of(db, broadcast.id or 0)
    assert chat and [r.address for r in rows] == [chat.address]
    assert len(await recipients_of(db, broadcast.id or 0)) == 1


async def test_geometry_gps_points_inside_and_township_areas_for_items_without_one(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    area = {
        "type": "Polygon",
        "coordinates": [[[113.0, 22.0], [113.5, 22.0], [113.5, 22.5], [113.0, 22.5], [113.0, 22.0]]],
    }
    far = {"type": "Polygon", "coordinates": [[[100.0, 30.0], [100.5, 30.0], [100.5, 30.5], [100.0, 30.0]]]}
    features = [
        {"type": "Feature", "properties": {"code": "441900004000"}, "geometry": area},  # meets the square? no
        {"type": "Feature", "properties": {"code": "441900003000"}, "geometry": SQUARE},
        {"type": "Feature", "properties": {"code": "442000001000"}, "geometry": far},
        {"type": "Feature", "properties": {"code": "12"}, "geometry": SQUARE},
    ]
    imported = await api.post(
        "/api/regions/areas", headers=admin_headers, json={"type": "FeatureCollection", "features": features}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["accepted"] == 3 and imported.json()["rejected"][0]["feature"] == "3"
    async with db.session() as session:
        _, inside, _ = await insured(session, region=DONGGUAN_B, lat=23.05, lon=113.75)  # GPS inside
        _, outside, _ = await insured(session, region=DONGGUAN_A, lat=23.50, lon=113.75)  # GPS outside
        _, no_gps_in, _ = await insured(session, region=DONGGUAN_A)  # no point: 东城's area meets it
        _, no_gps_out, _ = await insured(session, region=DONGGUAN_B)  # no point: its township's does not
    circle = {  # a small "circle" as a polygon around (113.75, 23.05)
        "type": "Polygon",
        "coordinates": [
            [[113.74, 23.04], [113.76, 23.04], [113.76, 23.06], [113.74, 23.06], [113.74, 23.04]]
        ],
    }
    broadcast = await system_send(db, AudienceSpec(geometry=circle), "geometry")
    assert inside and outside and no_gps_in and no_gps_out
    assert people_of(await outbox_of(db, broadcast.id or 0)) == {inside.address, no_gps_in.address}
    sized = await api.post(
        "/api/broadcasts/audience-size", headers=admin_headers, json={"audience": {"geometry": circle}}
    )
    assert sized.status_code == 200 and sized.json()["people"] == 2


async def test_geometry_refused_with_the_reason(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for geometry, code in (
        ({"type": "Point", "coordinates": [113.0, 23.0]}, "geometry_type"),
        ({"type": "Polygon", "coordinates": [[[1, 2]]]}, "geometry_invalid"),
        ({"type": "Polygon", "coordinates": [[[500, 2], [501, 2], [501, 3], [500, 2]]]}, "geometry_invalid"),
    ):
        answer = await api.post(
            "/api/broadcasts/audience-size", headers=admin_headers, json={"audience": {"geometry": geometry}}
        )
        assert answer.status_code == 422 and answer.json()["detail"]["code"] == code, answer.text


async def test_households_of_collective_policies_and_enterprises_are_reached(db: Database) -> None:
    async with db.session() as session:
        organiser, _, group_policy = await insured(session, product="rice", chat=False, phone=False)
        household_person, household_chat, _ = await insured(session, region=ZHONGSHAN, product="pig")
        _, enterprise_chat, _ = await insured(session, product="work_safety_liability")
        enrollment = CollectiveEnrollment(
            application_id=group_policy.application_id,
            policy_id=group_policy.id,
            product_code="rice",
            region_code=DONGGUAN_A,
            organiser_kind="village_committee",
            organiser_name="大塘村",
            status="issued",
            list_sha256="x" * 64,
            list_filename="list.csv",
            household_count=1,
            uploaded_by=1,
        )
        session.add(enrollment)
        await session.flush()
        session.add(
            PolicyHousehold(
                collective_id=enrollment.id or 0,
                line=2,
                person_id=household_person.id or 0,
                name="王五",
                id_number="11010519491231002X",
                product_code="rice",
                quantity="5",
                village_code=DONGGUAN_A,
                bank_name="农行",
                bank_account="6228480012345678901",
                sum_insured_fen=1,
                premium_total_fen=1,
                farmer_fen=1,
            )
        )
        await session.commit()
    rice = await system_send(db, AudienceSpec(region_codes=["441900"], product_codes=["rice"]), "households")
    assert household_chat and enterprise_chat and organiser
    addresses = people_of(await outbox_of(db, rice.id or 0))
    assert household_chat.address in addresses  # a household of the village's collective policy
    liability = await system_send(db, AudienceSpec(subject_types=["liability"]), "enterprises")
    assert people_of(await outbox_of(db, liability.id or 0)) == {enterprise_chat.address}


# --- exclusions ------------------------------------------------------------------------------------------


async def test_exclusions_stopped_chats_td_numbers_recent_same_kind_and_listed_people(db: Database) -> None:
    async with db.session() as session:
        stopped, _, _ = await insured(session, stopped=True)  # blocked the bot: texted instead
        td, _, _ = await insured(session, chat=False)  # replied TD
        nothing, _, _ = await insured(session, chat=False, phone=False)  # no chat, no phone
        skipped, skipped_chat, _ = await insured(session)
        _, kept, _ = await insured(session)
        session.add(SmsNumber(phone=f"+86{td.phone}", bulk_stopped_at=utcnow(), stop_source="reply"))
        await session.commit()
    audience = AudienceSpec(region_codes=["441900"], exclusions=Exclusions(person_ids=[skipped.id or 0]))
    message = await system_send(db, audience, "staff-1", kind="staff_message")
    rows = await outbox_of(db, message.id or 0)
    assert kept and skipped_chat
    assert people_of(rows) == {kept.address, f"+86{stopped.phone}"}
    reasons = {r.person_id: r.reason for r in await recipients_of(db, message.id or 0)}
    assert reasons[td.id or 0] == "sms_stopped" and reasons[nothing.id or 0] == "unreachable"
    assert (skipped.id or 0) not in reasons
    warning = await system_send(db, regions("441900"), "warning-td")  # a warning still texts the TD number
    assert f"+86{td.phone}" in people_of(await outbox_of(db, warning.id or 0))
    recent = AudienceSpec(region_codes=["441900"], exclusions=Exclusions(same_kind_within_hours=6))
    again = await system_send(db, recent, "staff-2", kind="staff_message")
    reasons = {r.person_id: r.reason for r in await recipients_of(db, again.id or 0)}
    assert reasons[stopped.id or 0] == "recent_same_kind" and reasons[skipped.id or 0] is None
    assert people_of(await outbox_of(db, again.id or 0)) == {skipped_chat.address}


async def test_from_broadcast_ids_all_clear_goes_to_those_who_got_the_alert(db: Database) -> None:
    async with db.session() as session:
        _, first, _ = await insured(session, region=DONGGUAN_A)
    alert = await system_send(db, regions("441900003"), "cap:alert")
    async with db.session() as session:
        await insured(session, region=DONGGUAN_A)  # insured after the alert: not told it is over
    clear = await system_send(db, AudienceSpec(from_broadcast_ids=[alert.id or 0]), "cap:alert:clear")
    assert first and people_of(await outbox_of(db, clear.id or 0)) == {first.address}


async def test_source_key_makes_one_broadcast(db: Database) -> None:
    async with db.session() as session:
        await insured(session)
    first = await system_send(db, regions("441900"), "cap:same")
    second = await system_send(db, regions("441900"), "cap:same")
    assert first.id == second.id and len(await outbox_of(db, first.id or 0)) == 1
    async with db.session() as session:
        count = (await session.exec(select(func.count()).select_from(Broadcast))).one()
    assert count == 1


async def test_empty_audience_and_bad_content_refused(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(BroadcastError) as empty:
            await service.create_broadcast(
                session, kind="warning", content=text_content(), audience=AudienceSpec(), actor=None
            )
        assert empty.value.code == "audience_empty"
        content = text_content()
        content.locales["zh-CN"].chat = content.locales["zh-CN"].chat.model_copy(
            update={"text": None, "template": "broadcasts/no_such_template"}
        )
        with pytest.raises(BroadcastError) as bad:
            await service.create_broadcast(
                session, kind="warning", content=content, audience=regions("44"), actor=None
            )
        assert bad.value.code == "broadcast_content_invalid"


async def test_resolution_in_ranges_carried_on_by_the_job(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fan-out bigger than one range commits each range; the job carries on after "send" answered
    (and after a restart), and a run twice sends nobody twice."""
    monkeypatch.setattr(fanout, "FIRST_CHUNK", 2)
    monkeypatch.setattr(fanout, "CHUNK", 3)
    monkeypatch.setattr(service, "INLINE_SECONDS", -1.0)  # answer after the first range
    async with db.session() as session:
        for _ in range(10):
            await insured(session)
    broadcast = await system_send(db, regions("441900"), "ranges")
    early = len(await outbox_of(db, broadcast.id or 0))
    async with db.session() as session:
        while (await broadcast_fan_out(session, settings))["written"]:
            pass
        await broadcast_fan_out(session, settings)
        refreshed = await session.get(Broadcast, broadcast.id)
    assert refreshed is not None and refreshed.resolved_at is not None
    rows = await outbox_of(db, broadcast.id or 0)
    assert early < 10 and len(rows) == 10 and len(people_of(rows)) == 10
    assert refreshed.recipient_count == 10


# --- the staff API: four eyes, sending, pause, resume, cancel, resend, progress ------------------------


def body(audience: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "staff_message",
        "content": {
            "locales": {
                "zh-CN": {"chat": {"text": "明天有大风，请加固大棚。"}},
                "en": {"chat": {"text": "Strong wind tomorrow: secure the greenhouses."}},
            }
        },
        "audience": audience or {"region_codes": ["441900"]},
        **extra,
    }


async def two_staff(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    first, _ = await staff_user(api, admin_headers, "bc_writer", "underwriter")
    second, _ = await staff_user(api, admin_headers, "bc_checker", "adjuster")
    return first, second


async def test_four_eyes_above_the_threshold_a_second_staff_member_approves(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    settings.broadcast_approval_threshold = 2
    async with db.session() as session:
        for _ in range(3):
            await insured(session)
    writer, checker = await two_staff(api, admin_headers)
    sized = await api.post(
        "/api/broadcasts/audience-size", headers=writer, json={"audience": body()["audience"]}
    )
    assert sized.json() == {"people": 3, "threshold": 2, "needs_approval": True}
    created = await api.post("/api/broadcasts", headers=writer, json=body())
    assert created.status_code == 201, created.text
    bid = created.json()["id"]
    submitted = await api.post(f"/api/broadcasts/{bid}/submit", headers=writer)
    assert submitted.json()["status"] == "awaiting_approval" and submitted.json()["audience_size"] == 3
    too_early = await api.post(f"/api/broadcasts/{bid}/send", headers=writer)
    assert too_early.status_code == 422 and too_early.json()["detail"]["code"] == "broadcast_status"
    own = await api.post(f"/api/broadcasts/{bid}/approve", headers=writer)
    assert own.status_code == 403 and own.json()["detail"]["code"] == "approver_is_creator"
    approved = await api.post(f"/api/broadcasts/{bid}/approve", headers=checker)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    sent = await api.post(f"/api/broadcasts/{bid}/send", headers=writer)
    assert sent.json()["status"] == "sending" and sent.json()["recipient_count"] == 3
    async with db.session() as session:
        actions = (
            await session.exec(select(AuditLog.action).where(col(AuditLog.target_type) == "broadcast"))
        ).all()
    assert {"broadcast.create", "broadcast.submit", "broadcast.approve", "broadcast.start"} <= set(actions)


async def test_at_or_below_the_threshold_the_creator_sends(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    settings.broadcast_approval_threshold = 2
    async with db.session() as session:
        for _ in range(2):
            await insured(session)
    writer, _ = await two_staff(api, admin_headers)
    bid = (await api.post("/api/broadcasts", headers=writer, json=body())).json()["id"]
    assert (await api.post(f"/api/broadcasts/{bid}/submit", headers=writer)).json()["status"] == "approved"
    assert (await api.post(f"/api/broadcasts/{bid}/send", headers=writer)).json()["status"] == "sending"
    assert len(await outbox_of(db, bid)) == 2


async def test_send_at_a_time_started_by_the_scheduler(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    async with db.session() as session:
        await insured(session)
    writer, _ = await two_staff(api, admin_headers)
    bid = (await api.post("/api/broadcasts", headers=writer, json=body())).json()["id"]
    await api.post(f"/api/broadcasts/{bid}/submit", headers=writer)
    past = await api.post(
        f"/api/broadcasts/{bid}/send",
        headers=writer,
        json={"send_at": (utcnow() - timedelta(minutes=1)).isoformat()},
    )
    assert past.status_code == 422 and past.json()["detail"]["code"] == "send_at_past"
    later = utcnow() + timedelta(hours=1)
    scheduled = await api.post(
        f"/api/broadcasts/{bid}/send", headers=writer, json={"send_at": later.isoformat()}
    )
    assert scheduled.json()["status"] == "approved"
    async with db.session() as session:
        assert await service.start_due(session, settings=settings) == 0
        assert await service.start_due(session, settings=settings, now=later + timedelta(seconds=1)) == 1
    assert len(await outbox_of(db, bid)) == 1


async def test_pause_holds_resume_sends_cancel_drops(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with db.session() as session:
        for _ in range(3):
            await insured(session)
        await enqueue(
            session=session, channel="webchat", address="someone-else", text="别的消息", dedupe_key="other"
        )
        await session.commit()
    writer, _ = await two_staff(api, admin_headers)
    bid = (await api.post("/api/broadcasts", headers=writer, json=body())).json()["id"]
    await api.post(f"/api/broadcasts/{bid}/submit", headers=writer)
    await api.post(f"/api/broadcasts/{bid}/send", headers=writer)
    paused = await api.post(f"/api/broadcasts/{bid}/pause", headers=writer)
    assert paused.json()["status"] == "paused"
    async with db.session() as session:
        claimed = await claim_batch(session=session, worker_id="w", limit=100, lease_seconds=60)
    assert [m.address for m in claimed] == ["someone-else"]  # other messages are untouched
    assert {m.status for m in await outbox_of(db, bid)} == {"held"}
    progress = (await api.get(f"/api/broadcasts/{bid}/progress", headers=writer)).json()
    assert progress["held"] == 3 and progress["queued"] == 0
    resumed = await api.post(f"/api/broadcasts/{bid}/resume", headers=writer)
    assert resumed.json()["status"] == "sending"
    async with db.session() as session:
        first = await claim_batch(session=session, worker_id="w", limit=1, lease_seconds=60)
    assert len(first) == 1 and first[0].broadcast_id == bid
    cancelled = await api.post(f"/api/broadcasts/{bid}/cancel", headers=writer)
    assert cancelled.json()["status"] == "cancelled"
    left = await outbox_of(db, bid)
    assert [m.status for m in left] == ["sending"]  # the one already with a worker; the queued dropped
    again = await api.post(f"/api/broadcasts/{bid}/resume", headers=writer)
    assert again.status_code == 422


async def test_resend_failed_and_progress_figures(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    async with db.session() as session:
        for _ in range(4):
            await insured(session)
    writer, _ = await two_staff(api, admin_headers)
    bid = (await api.post("/api/broadcasts", headers=writer, json=body(ack_button=True))).json()["id"]
    await api.post(f"/api/broadcasts/{bid}/submit", headers=writer)
    await api.post(f"/api/broadcasts/{bid}/send", headers=writer)
    rows = sorted(await outbox_of(db, bid), key=lambda m: m.id or 0)
    now = utcnow()
    async with db.session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == rows[0].id)
            .values(status="sent", sent_at=now)
        )
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == rows[1].id)
            .values(status="delivered", sent_at=now)
        )
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == rows[2].id)
            .values(status="failed", next_attempt_at=None, last_error="chat not found")
        )
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == rows[3].id)
            .values(status="stopped", next_attempt_at=None)
        )
        await session.commit()
    progress = (await api.get(f"/api/broadcasts/{bid}/progress", headers=writer)).json()
    assert (progress["sent"], progress["delivered"], progress["failed"], progress["stopped"]) == (1, 1, 1, 1)
    assert progress["failed_reasons"] == {"chat not found": 1} and progress["recipients"] == 4
    assert progress["rate_per_second"] == round(2 / 60, 2) and progress["queued"] == 0
    assert progress["ack_by_region"] == [
        {"region_code": "441900003000", "recipients": 4, "acked": 0, "rate": 0.0}
    ]
    async with db.session() as session:
        assert await service.finish_done(session) == 1
    resent = await api.post(f"/api/broadcasts/{bid}/resend-failed", headers=writer)
    assert resent.json() == {"requeued": 1}
    after = (await api.get(f"/api/broadcasts/{bid}/progress", headers=writer)).json()
    assert after["status"] == "sending" and after["queued"] == 1 and after["failed"] == 0


async def test_staff_of_another_region_refused_and_audience_clipped_to_own_regions(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with db.session() as session:
        _, dongguan, _ = await insured(session, product="rice")
        _, zhongshan, _ = await insured(session, product="rice", region=ZHONGSHAN)
    writer, _ = await two_staff(api, admin_headers)
    neighbour, _ = await staff_user(
        api, admin_headers, "bc_zhongshan", "underwriter", regions=("442000000000",)
    )
    named = await api.post("/api/broadcasts", headers=neighbour, json=body())
    assert named.status_code == 403 and named.json()["detail"]["code"] == "outside_scope"
    bid = (await api.post("/api/broadcasts", headers=writer, json=body({"product_codes": ["rice"]}))).json()[
        "id"
    ]
    for path in ("", "/progress"):
        assert (await api.get(f"/api/broadcasts/{bid}{path}", headers=neighbour)).status_code == 404
    assert (await api.post(f"/api/broadcasts/{bid}/submit", headers=neighbour)).status_code == 404
    await api.post(f"/api/broadcasts/{bid}/submit", headers=writer)
    await api.post(f"/api/broadcasts/{bid}/send", headers=writer)
    assert dongguan and zhongshan
    assert people_of(await outbox_of(db, bid)) == {dongguan.address}  # clipped to 东莞


async def test_preview_in_both_languages_for_a_sample_recipient(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    content = body()["content"]
    content["locales"]["zh-CN"]["sections"] = {"greenhouse": {"text": "大棚请加固压膜。"}}
    content["locales"]["en"]["sections"] = {"greenhouse": {"text": "Weigh down greenhouse film."}}
    answer = await api.post(
        "/api/broadcasts/preview",
        headers=admin_headers,
        json={"kind": "warning", "content": content, "subjects": ["greenhouse"], "ack_button": True},
    )
    assert answer.status_code == 200, answer.text
    zh, en = answer.json()["texts"]
    assert "大棚请加固压膜" in zh["chat"] and "greenhouse film" in en["chat"]
    assert zh["buttons"][0][0]["text"] == "收到" and en["buttons"][0][0]["text"] == "Got it"
    assert "/s/" in zh["sms"] and "/s/" in en["sms"]
    plain = await api.post(
        "/api/broadcasts/preview", headers=admin_headers, json={"kind": "warning", "content": content}
    )
    assert "压膜" not in plain.json()["texts"][0]["chat"]


async def test_audience_size_writes_nothing(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with db.session() as session:
        for _ in range(3):
            await insured(session)
    sized = await api.post(
        "/api/broadcasts/audience-size", headers=admin_headers, json={"audience": {"region_codes": ["44"]}}
    )
    assert sized.json()["people"] == 3
    async with db.session() as session:
        assert (await session.exec(select(func.count()).select_from(BroadcastRecipient))).one() == 0
        assert (await session.exec(select(func.count()).select_from(OutboxMessage))).one() == 0


# --- acknowledgements ------------------------------------------------------------------------------------


async def test_ack_recorded_once_and_another_persons_tap_refused(
    db: Database, api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    async with db.session() as session:
        _, mine, _ = await insured(session)
        stranger = Person(name="路人", phone="13700000001")
        session.add(stranger)
        await session.commit()
    broadcast = await system_send(db, regions("441900"), "cap:ack", ack_button=True)
    assert mine is not None
    headers = {**service_headers, "X-Tianbao-Identity": f"webchat:{mine.external_id}"}
    first = await api.post(f"/api/bot/broadcasts/{broadcast.id}/ack", headers=headers)
    second = await api.post(f"/api/bot/broadcasts/{broadcast.id}/ack", headers=headers)
    assert first.json()["first"] is True and second.json()["first"] is False
    assert first.json()["acked_at"] == second.json()["acked_at"]
    async with db.session() as session:
        session.add(
            ChatIdentity(
                channel="webchat",
                external_id="not-a-recipient",
                address="not-a-recipient",
                person_id=stranger.id,
                phone=stranger.phone,
                phone_verified_at=utcnow(),
            )
        )
        await session.commit()
    other = {**service_headers, "X-Tianbao-Identity": "webchat:not-a-recipient"}
    refused = await api.post(f"/api/bot/broadcasts/{broadcast.id}/ack", headers=other)
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "broadcast_not_yours"
    acked = [r for r in await recipients_of(db, broadcast.id or 0) if r.acked_at is not None]
    assert len(acked) == 1


async def test_composed_from_a_template_in_both_languages(
    db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with db.session() as session:
        _, zh, _ = await insured(session)
        _, en, _ = await insured(session, locale="en")
    watch = {"template": "broadcasts/weather_watch"}
    content = {
        "locales": {
            "zh-CN": {"chat": {**watch, "params": {"event": "强降雨", "when": "明天下午"}}},
            "en": {"chat": {**watch, "params": {"event": "Heavy rain", "when": "tomorrow afternoon"}}},
        }
    }
    preview = await api.post(
        "/api/broadcasts/preview", headers=admin_headers, json={"kind": "warning", "content": content}
    )
    assert "防灾提醒：强降雨" in preview.json()["texts"][0]["chat"]
    created = await api.post(
        "/api/broadcasts", headers=admin_headers, json={**body(), "kind": "warning", "content": content}
    )
    bid = created.json()["id"]
    await api.post(f"/api/broadcasts/{bid}/submit", headers=admin_headers)
    await api.post(f"/api/broadcasts/{bid}/send", headers=admin_headers)
    rows = {r.address: r.text for r in await outbox_of(db, bid)}
    assert zh and en and "强降雨" in rows[zh.address] and "Heavy rain" in rows[en.address]
    missing = {"locales": {"zh-CN": {"chat": {**watch, "params": {"event": "大风"}}}}}
    refused = await api.post("/api/broadcasts", headers=admin_headers, json={**body(), "content": missing})
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "broadcast_content_invalid"


async def test_pause_holds_retries_too(db: Database) -> None:
    async with db.session() as session:
        for _ in range(2):
            await insured(session)
    broadcast = await system_send(db, regions("441900"), "pause-retry")
    first = (await outbox_of(db, broadcast.id or 0))[0]
    async with db.session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == first.id)
            .values(status="failed", next_attempt_at=utcnow(), last_error="timeout")
        )
        await session.commit()
        await service.pause_broadcast(session, broadcast_id=broadcast.id or 0, actor=None)
    assert {m.status for m in await outbox_of(db, broadcast.id or 0)} == {"held"}


async def test_one_runner_at_a_time_resolves_a_broadcast(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "send" request and the scheduler's job never move the cursor over the same ranges: whoever
    holds the fan-out lease resolves; the other finds nothing to do until it lapses."""
    monkeypatch.setattr(service, "INLINE_SECONDS", -1.0)
    monkeypatch.setattr(fanout, "FIRST_CHUNK", 1)
    async with db.session() as session:
        for _ in range(3):
            await insured(session)
    broadcast = await system_send(db, regions("441900"), "lease")
    async with db.session() as session:
        row = await session.get(Broadcast, broadcast.id)
        assert row is not None
        row.fanout_lease_until = utcnow() + timedelta(minutes=1)  # another runner is on it
        await session.commit()
        assert await service.continue_fan_out(session, row, settings=settings) == 0
        row.fanout_lease_until = utcnow() - timedelta(seconds=1)  # it died: the lease lapsed
        await session.commit()
        assert await service.continue_fan_out(session, row, settings=settings) == 2
        assert row.recipient_count == 3 and row.fanout_lease_until is None

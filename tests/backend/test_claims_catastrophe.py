"""R-CLM-5 catastrophe: an event affecting more than two counties, or one county with an estimated loss
of 5 million CNY or more for crops or 2 million CNY or more for livestock (以上 includes the number)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlmodel import col, func, select

from backend.alerts.models import StaffAlert
from backend.claims.catastrophe import service as catastrophe
from backend.claims.catastrophe.models import DisasterEvent
from backend.claims.index import service as index
from backend.claims.index.schemas import ReadingIn
from backend.claims.models import Claim, ClaimEvent
from backend.db import Database, utcnow
from backend.outbox.models import OutboxMessage
from backend.settings import Settings
from messages import render
from tests.backend.test_enrollment_api import farmer_application, identity, submit
from tests.conftest import login

DONGGUAN = "441900003000"  # county 441900 (东莞市 counts as its own county)
LIWAN = "440103001000"  # 广州市 荔湾区
LUOHU = "440303001000"  # 深圳市 罗湖区
FURONG = "430102001000"  # 湖南 长沙市 芙蓉区: another province
MILLION_YUAN = 1_000_000 * 100  # in fen


_EVENT = {"id": 7, "name": "台风“海鸥”", "candidate": True, "cause": "typhoon", "started_on": "2026-11-20"}
_ALERT = {
    "event": _EVENT,
    "reasons": [
        {"code": "more_than_two_counties", "county_code": "", "county_name": "", "counties": 3},
        {
            "code": "crop_loss",
            "county_code": "441900000000",
            "county_name": "东莞市",
            "amount_yuan": "5000000.00",
            "threshold_yuan": "5000000.00",
        },
        {
            "code": "livestock_loss",
            "county_code": "440103000000",
            "county_name": "荔湾区",
            "amount_yuan": "2000000.00",
            "threshold_yuan": "2000000.00",
        },
    ],
    "counties": [
        {
            "code": "441900000000",
            "name": "东莞市",
            "claims": 3,
            "crop_yuan": "5000000.00",
            "livestock_yuan": "0.00",
        }
    ],
    "county_count": 3,
    "claim_count": 5,
}
# Sample contexts of this feature's templates, for tests/test_messages.py (``SAMPLES.update(...)``).
TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    "claims_notice/event_linked": {
        "claim": SimpleNamespace(id=1, number="CL202611220000001"),
        "event": _EVENT,
    },
    "alerts/catastrophe_title": _ALERT,
    "alerts/catastrophe_body": _ALERT,
    "alerts/event_auto_name": {
        "county_name": "东莞市",
        "county_code": "441900000000",
        "cause": "typhoon",
        "started_on": "2026-11-20",
    },
}


@pytest.fixture
def alerting(settings: Settings) -> Settings:
    return settings.model_copy(update={"staff_alert_address": "-100200300"})


@pytest.fixture
async def policy(api: httpx.AsyncClient, service_headers: dict[str, str]) -> dict[str, Any]:
    """One real policy: the claims below hang on it (the catastrophe rule reads the claims' own fields)."""
    headers = await identity(api, service_headers, "catastrophe-farmer", phone="13800000099")
    application = (await submit(api, headers, farmer_application())).json()
    paid = await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    result: dict[str, Any] = paid.json()["policy"]
    result["identity_id"] = int(headers["X-Identity-Id"])
    return result


async def add_claims(
    db: Database, policy: dict[str, Any], *specs: tuple[str, str, int], **extra: Any
) -> list[int]:
    """Claims inserted directly: (region code, product code, estimated loss in fen)."""
    loss_started_at: datetime = extra.pop("loss_started_at", utcnow() - timedelta(days=1))
    async with db.session() as session:
        claims = [
            Claim(
                number=f"T{secrets.token_hex(6)}",
                policy_id=policy["id"],
                product_code=product,
                identity_id=policy["identity_id"],
                region_code=region,
                county_code=region[:6] + "000000",
                insured_name="李四",
                cause=extra.get("cause", "typhoon"),
                loss_started_at=loss_started_at,
                lost_quantity="1",
                unit="mu",
                estimated_amount_fen=amount,
                reporter_name="李四",
                reporter_phone="13800000099",
                **{k: v for k, v in extra.items() if k != "cause"},
            )
            for region, product, amount in specs
        ]
        session.add_all(claims)
        await session.commit()
        return [c.id or 0 for c in claims]


async def new_event(db: Database, cause: str = "typhoon") -> int:
    async with db.session() as session:
        event = DisasterEvent(name="台风“海鸥”", cause=cause, started_on=utcnow() - timedelta(days=2))
        session.add(event)
        await session.commit()
        return event.id or 0


async def link_and_evaluate(
    db: Database, settings: Settings, event_id: int, claim_ids: list[int]
) -> list[str]:
    async with db.session() as session:
        event = await session.get(DisasterEvent, event_id)
        assert event is not None
        for claim_id in claim_ids:
            claim = await session.get(Claim, claim_id)
            assert claim is not None
            await catastrophe.link_to_event(session, settings, claim, event_id)
        reasons = await catastrophe.evaluate_event(session, settings, event)
        await session.commit()
        return reasons


async def event_row(db: Database, event_id: int) -> DisasterEvent:
    async with db.session() as session:
        event = await session.get(DisasterEvent, event_id)
        assert event is not None
        return event


async def test_r_clm_5_more_than_two_counties(
    db: Database, settings: Settings, policy: dict[str, Any]
) -> None:
    event = await new_event(db)
    two = await add_claims(
        db, policy, (DONGGUAN, "rice", 100_00), (LIWAN, "rice", 100_00), (LIWAN, "pig", 50_00)
    )
    assert await link_and_evaluate(db, settings, event, two) == []
    assert (await event_row(db, event)).catastrophe is False
    third = await add_claims(db, policy, (LUOHU, "rice", 1))
    assert await link_and_evaluate(db, settings, event, third) == ["more_than_two_counties"]
    raised = await event_row(db, event)
    assert raised.catastrophe and raised.raised_at is not None
    assert raised.catastrophe_reasons == ["more_than_two_counties"]


async def test_r_clm_5_county_crop_loss_at_5_million(
    db: Database, settings: Settings, policy: dict[str, Any]
) -> None:
    below = await new_event(db)
    # 4,999,999.99 CNY of crops (field crops, weather-index orchards and greenhouses all count as crops).
    ids = await add_claims(
        db,
        policy,
        (DONGGUAN, "rice", 3 * MILLION_YUAN),
        (DONGGUAN, "lychee", MILLION_YUAN),
        (DONGGUAN, "greenhouse", MILLION_YUAN - 1),
    )
    assert await link_and_evaluate(db, settings, below, ids) == []
    at = await new_event(db)
    ids = await add_claims(
        db,
        policy,
        (DONGGUAN, "rice", 3 * MILLION_YUAN),
        (DONGGUAN, "lychee", MILLION_YUAN),
        (DONGGUAN, "greenhouse", MILLION_YUAN),
    )
    assert await link_and_evaluate(db, settings, at, ids) == ["crop_loss:441900000000"]
    assert (await event_row(db, at)).catastrophe is True
    assert (await event_row(db, below)).catastrophe is False


async def test_r_clm_5_county_livestock_loss_at_2_million(
    db: Database, settings: Settings, policy: dict[str, Any]
) -> None:
    below = await new_event(db, "disease")
    ids = await add_claims(
        db,
        policy,
        (LIWAN, "pig", 2 * MILLION_YUAN - 1),
        (LIWAN, "rice", 5 * MILLION_YUAN - 1),
        cause="disease",
    )
    assert await link_and_evaluate(db, settings, below, ids) == []  # crops and livestock are not added up
    at = await new_event(db, "disease")
    ids = await add_claims(
        db, policy, (LIWAN, "pig", MILLION_YUAN), (LIWAN, "sow", MILLION_YUAN), cause="disease"
    )
    assert await link_and_evaluate(db, settings, at, ids) == ["livestock_loss:440103000000"]
    # Denied claims (outside the cover) and liability accidents do not count.
    ignored = await new_event(db, "disease")
    ids = await add_claims(db, policy, (LIWAN, "pig", 3 * MILLION_YUAN), cause="disease", status="denied")
    ids += await add_claims(
        db, policy, (LUOHU, "work_safety_liability", 3 * MILLION_YUAN), (DONGGUAN, "pig", 1)
    )
    assert await link_and_evaluate(db, settings, ignored, ids) == []


async def test_r_clm_5_raising_alerts_staff_once_and_tells_each_claimant_once(
    db: Database, alerting: Settings, policy: dict[str, Any]
) -> None:
    event = await new_event(db)
    ids = await add_claims(db, policy, (DONGGUAN, "rice", 1), (LIWAN, "rice", 1), (LUOHU, "rice", 1))
    denied = await add_claims(db, policy, (LUOHU, "rice", 1), status="denied")
    for _ in range(3):
        assert await link_and_evaluate(db, alerting, event, ids + denied) == ["more_than_two_counties"]
    late = await add_claims(db, policy, (DONGGUAN, "corn", 1))
    await link_and_evaluate(db, alerting, event, late)
    async with db.session() as session:
        [alert] = (await session.exec(select(StaffAlert))).all()
        assert alert.kind == "catastrophe" and alert.event_id == event
        assert alert.dedupe_key == f"event-{event}-catastrophe" and alert.region_code == "440000000000"
        assert "大灾" in alert.title and "超过两个县" in alert.body
        sent = (await session.exec(select(OutboxMessage).where(OutboxMessage.address == "-100200300"))).all()
        assert len(sent) == 1
        told = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).endswith(f"-event-{event}-linked"))
            )
        ).all()
        assert sorted(m.dedupe_key for m in told) == sorted(
            f"claim-{i}-event-{event}-linked" for i in ids + late
        )
        assert all("台风“海鸥”" in m.text for m in told)
        timeline = (
            await session.exec(select(ClaimEvent.claim_id).where(ClaimEvent.kind == "event_linked"))
        ).all()
        assert sorted(timeline) == sorted(ids + late)  # once each; the denied claim is not told


async def reported(db: Database, settings: Settings, claim_id: int) -> DisasterEvent | None:
    """What the reporting service does after a new claim, in its own transaction."""
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        event = await catastrophe.after_claim_reported(session, settings, claim)
        await session.commit()
        return event


async def event_of(db: Database, claim_id: int) -> int | None:
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        return claim.event_id


async def test_r_clm_5_a_county_loss_threshold_raises_a_candidate_automatically(
    db: Database, settings: Settings, policy: dict[str, Any]
) -> None:
    old = await add_claims(
        db, policy, (DONGGUAN, "rice", MILLION_YUAN), loss_started_at=utcnow() - timedelta(days=8)
    )
    other_cause = await add_claims(db, policy, (DONGGUAN, "rice", MILLION_YUAN), cause="flood")
    [alone] = await add_claims(db, policy, (DONGGUAN, "rice", 5 * MILLION_YUAN - 1))
    assert await reported(db, settings, alone) is None  # one claim below the thresholds is no event yet
    # It never commits: the reporting service's transaction decides.
    async with db.session() as session:
        claim = await session.get(Claim, alone)
        assert claim is not None
        more = Claim(**{**claim.model_dump(exclude={"id", "number"}), "number": "T-rollback"})
        session.add(more)
        await session.flush()
        assert await catastrophe.after_claim_reported(session, settings, more) is not None
        await session.rollback()
    assert await _count(db, DisasterEvent) == 0
    [cent] = await add_claims(db, policy, (DONGGUAN, "lychee", 1))
    event = await reported(db, settings, cent)
    assert event is not None and event.status == "candidate" and event.region_code == "441900000000"
    assert event.catastrophe and event.catastrophe_reasons == ["crop_loss:441900000000"]  # 以上: 5,000,000.00
    assert event.name.startswith("东莞市台风")
    assert await event_of(db, alone) == event.id
    assert await event_of(db, old[0]) is None and await event_of(db, other_cause[0]) is None
    [later] = await add_claims(db, policy, (DONGGUAN, "corn", 100))
    joined = await reported(db, settings, later)
    assert joined is not None and joined.id == event.id  # a later claim joins the candidate
    assert await _count(db, DisasterEvent) == 1


GUANGZHOU = ("440103001000", "440104001000", "440106001000")  # 荔湾区, 越秀区, 天河区: one city


async def test_r_clm_5_claims_of_neighbouring_counties_form_a_candidate_of_more_than_two_counties(
    db: Database, alerting: Settings, policy: dict[str, Any]
) -> None:
    [first] = await add_claims(db, policy, (GUANGZHOU[0], "rice", 100_00))
    assert await reported(db, alerting, first) is None
    [second] = await add_claims(
        db, policy, (GUANGZHOU[1], "rice", 100_00), loss_started_at=utcnow() - timedelta(days=3)
    )
    candidate = await reported(db, alerting, second)
    assert candidate is not None and candidate.status == "candidate" and not candidate.catastrophe
    assert candidate.region_code == "440100000000"  # the smallest division holding its counties
    assert await event_of(db, first) == candidate.id
    # Another province (长沙 芙蓉区), another cause, or a loss more than 3 days outside the window: not
    # neighbours.
    [changsha] = await add_claims(db, policy, (FURONG, "rice", 100_00))
    [flood] = await add_claims(db, policy, (GUANGZHOU[2], "rice", 100_00), cause="flood")
    [weeks] = await add_claims(
        db, policy, (GUANGZHOU[2], "rice", 100_00), loss_started_at=utcnow() - timedelta(days=10)
    )
    for claim_id in (changsha, flood, weeks):
        assert await reported(db, alerting, claim_id) is None
    assert (await event_row(db, candidate.id or 0)).catastrophe is False
    [third] = await add_claims(db, policy, (GUANGZHOU[2], "corn", 100_00))
    raised = await reported(db, alerting, third)
    assert raised is not None and raised.id == candidate.id
    assert raised.catastrophe and raised.catastrophe_reasons == ["more_than_two_counties"]
    [fourth] = await add_claims(db, policy, (GUANGZHOU[2], "rice", 100_00))
    await reported(db, alerting, fourth)
    async with db.session() as session:
        alerts = (await session.exec(select(StaffAlert))).all()
    assert [(a.kind, a.event_id) for a in alerts] == [("catastrophe", candidate.id)]  # raised once
    assert "确认或拆分" in alerts[0].body and alerts[0].region_code == "440100000000"


async def test_r_clm_5_grouping_is_set_based_not_a_query_per_claim(
    db: Database, settings: Settings, policy: dict[str, Any]
) -> None:
    from sqlalchemy import event as sa_event

    async def statements(count: int, cause: str) -> int:
        # One county, small losses: nothing is raised, so no claimant is told (telling is one notice each).
        ids = await add_claims(db, policy, *[(GUANGZHOU[0], "rice", 100) for _ in range(count)], cause=cause)
        seen: list[str] = []

        def count_statement(*args: Any) -> None:
            seen.append(str(args[2]))

        sync_engine = db.engine.sync_engine
        async with db.session() as session:
            claims = list((await session.exec(select(Claim).where(col(Claim.id).in_(ids)))).all())
            sa_event.listen(sync_engine, "before_cursor_execute", count_statement)
            try:
                await catastrophe.after_claims_reported(session, settings, claims)
                await session.commit()
            finally:
                sa_event.remove(sync_engine, "before_cursor_execute", count_statement)
        assert len({await event_of(db, i) for i in ids}) == 1  # all in one candidate
        return len(seen)

    few = await statements(3, "hail")
    many = await statements(30, "drought")
    # The claims are linked in bulk: the number of statements does not grow with the number of claims.
    assert many <= few + 3, (few, many)


async def test_r_clm_5_index_payouts_count_towards_a_county_catastrophe(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database, settings: Settings
) -> None:
    headers = await identity(api, service_headers, "catastrophe-lychee", phone="13800000098")
    body = farmer_application(product_code="lychee", quantity="10")
    application = (await submit(api, headers, body)).json()
    paid = await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    lychee = {**paid.json()["policy"], "identity_id": int(headers["X-Identity-Id"])}
    # 4,995,000 CNY of wind losses already reported in the county; the index payout adds 6,000 CNY (20 %).
    await add_claims(db, lychee, (DONGGUAN, "lychee", 4_995_000 * 100), cause="wind")
    reading = ReadingIn(
        township_code=DONGGUAN, peril="wind", value="10", observed_on=index.china_today().isoformat()
    )
    async with db.session() as session:
        report = await index.record_readings(session, None, [reading], "test", settings=settings)
    assert report.payouts == 1 and report.payout_total_fen == 600_000
    async with db.session() as session:
        [event] = (await session.exec(select(DisasterEvent))).all()
        assert event.catastrophe and event.cause == "wind"
        counted = (
            await session.exec(select(func.count()).select_from(Claim).where(Claim.event_id == event.id))
        ).one()
    assert counted == 2


async def _count(db: Database, table: Any) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(table))).one())


async def test_r_clm_5_events_api_links_claims_in_scope_and_is_audited(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database, policy: dict[str, Any]
) -> None:
    made = await api.post(
        "/api/events",
        headers=admin_headers,
        json={"name": "台风“海鸥”", "cause": "typhoon", "started_on": "2026-01-05"},
    )
    assert made.status_code == 201, made.text
    event_id = made.json()["id"]
    unknown = await api.post(
        "/api/events",
        headers=admin_headers,
        json={"name": "x", "cause": "meteor", "started_on": "2026-01-05"},
    )
    assert unknown.status_code == 422 and unknown.json()["detail"]["code"] == "unknown_cause"
    future = (utcnow() + timedelta(days=3)).date().isoformat()
    ahead = await api.post(
        "/api/events", headers=admin_headers, json={"name": "x", "cause": "typhoon", "started_on": future}
    )
    assert ahead.json()["detail"]["code"] == "started_in_future"

    for username, role, region in (
        ("gz-adjuster", "adjuster", "440100000000"),
        ("sz-viewer", "viewer", "440300000000"),
    ):
        body = {"username": username, "password": "a-long-password-1", "role": role, "region_codes": [region]}
        assert (await api.post("/api/staff/users", json=body, headers=admin_headers)).status_code == 201
    guangzhou = await login(api, "gz-adjuster", "a-long-password-1")
    shenzhen = await login(api, "sz-viewer", "a-long-password-1")
    assert (
        await api.post(
            "/api/events",
            headers=shenzhen,
            json={"name": "x", "cause": "typhoon", "started_on": "2026-01-05"},
        )
    ).status_code == 403

    gz_claims = await add_claims(
        db, policy, (LIWAN, "rice", 2 * MILLION_YUAN), (LIWAN, "rice", 3 * MILLION_YUAN)
    )
    [dg_claim] = await add_claims(db, policy, (DONGGUAN, "rice", 100))
    outside = await api.post(
        f"/api/events/{event_id}/claims", headers=guangzhou, json={"claim_ids": [*gz_claims, dg_claim]}
    )
    assert outside.status_code == 404 and outside.json()["detail"]["code"] == "claim_not_found"
    linked = await api.post(
        f"/api/events/{event_id}/claims", headers=guangzhou, json={"claim_ids": gz_claims}
    )
    assert linked.status_code == 200, linked.text
    detail = linked.json()
    assert detail["catastrophe"] is True and detail["reasons_now"] == ["crop_loss:440103000000"]
    assert detail["counties"] == [
        {
            "county_code": "440103000000",
            "claims": 2,
            "crop_fen": 5 * MILLION_YUAN,
            "crop_yuan": "5000000.00",
            "livestock_fen": 0,
            "livestock_yuan": "0.00",
            "crop_threshold_reached": True,
            "livestock_threshold_reached": False,
        }
    ]
    admin_link = await api.post(
        f"/api/events/{event_id}/claims", headers=admin_headers, json={"claim_ids": [dg_claim]}
    )
    assert admin_link.json()["county_count"] == 2
    # Regional staff see their own claims and counties only; Shenzhen sees no event with a claim of theirs.
    mine = (await api.get(f"/api/events/{event_id}", headers=guangzhou)).json()
    assert [c["id"] for c in mine["claims"]] == gz_claims and [
        c["county_code"] for c in mine["counties"]
    ] == ["440103000000"]
    assert mine["county_count"] == 2 and mine["claim_count"] == 3
    assert (await api.get(f"/api/events/{event_id}", headers=shenzhen)).status_code == 404
    assert event_id not in [e["id"] for e in (await api.get("/api/events", headers=shenzhen)).json()]
    assert [
        e["id"]
        for e in (await api.get("/api/events", headers=guangzhou, params={"catastrophe": True})).json()
    ] == [event_id]

    other = (
        await api.post(
            "/api/events",
            headers=admin_headers,
            json={"name": "y", "cause": "flood", "started_on": "2026-01-06"},
        )
    ).json()
    moved = await api.post(
        f"/api/events/{other['id']}/claims", headers=admin_headers, json={"claim_ids": [gz_claims[0]]}
    )
    assert moved.status_code == 409 and moved.json()["detail"]["code"] == "claim_in_other_event"
    evaluated = await api.post(f"/api/events/{event_id}/evaluate", headers=guangzhou)
    assert evaluated.status_code == 200 and evaluated.json()["reasons_now"] == ["crop_loss:440103000000"]

    audit = (await api.get("/api/staff/audit", headers=admin_headers, params={"limit": 50})).json()
    actions = [a["action"] for a in audit if a["action"].startswith("events.")]
    assert actions.count("events.create") == 2 and actions.count("events.link_claims") == 2
    assert "events.evaluate" in actions


async def test_r_clm_5_staff_confirm_or_split_a_candidate_in_scope_with_audit(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    policy: dict[str, Any],
) -> None:
    ids = await add_claims(db, policy, *[(county, "rice", 100_00) for county in GUANGZHOU])
    for claim_id in ids:
        await reported(db, settings, claim_id)
    candidate_id = await event_of(db, ids[0])
    assert candidate_id is not None
    body = {
        "username": "gz-adj",
        "password": "a-long-password-1",
        "role": "adjuster",
        "region_codes": ["440100000000"],
    }
    assert (await api.post("/api/staff/users", json=body, headers=admin_headers)).status_code == 201
    guangzhou = await login(api, "gz-adj", "a-long-password-1")
    listed = (await api.get("/api/events", headers=guangzhou, params={"status": "candidate"})).json()
    assert [(e["id"], e["status"], e["catastrophe"]) for e in listed] == [(candidate_id, "candidate", True)]
    # 天河 was another storm: split it off into an event of its own.
    everything = await api.post(
        f"/api/events/{candidate_id}/split", headers=guangzhou, json={"claim_ids": ids}
    )
    assert everything.status_code == 409 and everything.json()["detail"]["code"] == "split_takes_every_claim"
    [dg] = await add_claims(db, policy, (DONGGUAN, "rice", 1))
    foreign = await api.post(f"/api/events/{candidate_id}/split", headers=guangzhou, json={"claim_ids": [dg]})
    assert foreign.status_code == 404
    split = await api.post(
        f"/api/events/{candidate_id}/split",
        headers=guangzhou,
        json={"claim_ids": [ids[2]], "name": "天河冰雹"},
    )
    assert split.status_code == 200, split.text
    other = split.json()
    assert other["status"] == "confirmed" and other["name"] == "天河冰雹" and other["claim_count"] == 1
    assert await event_of(db, ids[2]) == other["id"] and await event_of(db, ids[0]) == candidate_id
    left = (await api.get(f"/api/events/{candidate_id}", headers=guangzhou)).json()
    assert left["county_count"] == 2 and left["catastrophe"] is True  # a raised event stays raised
    # A split claim is not grouped back when a neighbour is reported.
    [later] = await add_claims(db, policy, (GUANGZHOU[2], "rice", 100_00))
    await reported(db, settings, later)
    assert await event_of(db, ids[2]) == other["id"]
    confirmed = await api.post(f"/api/events/{candidate_id}/confirm", headers=guangzhou)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["confirmed_by"] is not None
    again = await api.post(f"/api/events/{candidate_id}/confirm", headers=guangzhou)
    assert again.status_code == 200
    audit = (await api.get("/api/staff/audit", headers=admin_headers, params={"limit": 50})).json()
    actions = [a["action"] for a in audit if a["action"].startswith("events.")]
    assert actions.count("events.split") == 1 and actions.count("events.confirm") == 1


async def test_r_clm_5_three_counties_in_two_cities_of_one_province_are_one_candidate(
    db: Database, alerting: Settings, policy: dict[str, Any]
) -> None:
    """A typhoon over 荔湾, 越秀 (广州) and 罗湖 (深圳): one disaster of more than two counties, not a
    candidate per city each below the threshold."""
    ids = await add_claims(db, policy, *[(c, "rice", 100_00) for c in (GUANGZHOU[0], GUANGZHOU[1], LUOHU)])
    for claim_id in ids:
        await reported(db, alerting, claim_id)
    events = {await event_of(db, claim_id) for claim_id in ids}
    assert len(events) == 1 and None not in events
    event = await event_row(db, events.pop() or 0)
    assert event.status == "candidate" and event.region_code == "440000000000"  # widened to the province
    assert event.catastrophe and event.catastrophe_reasons == ["more_than_two_counties"]


async def test_r_clm_5_regional_staff_confirm_only_a_candidate_all_of_whose_claims_they_cover(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    policy: dict[str, Any],
) -> None:
    ids = await add_claims(db, policy, (GUANGZHOU[0], "rice", 100_00), (GUANGZHOU[1], "rice", 100_00))
    for claim_id in ids:
        await reported(db, settings, claim_id)
    candidate_id = await event_of(db, ids[0])
    assert candidate_id is not None
    # A claim of 东莞 in the same candidate: outside the Guangzhou adjuster's region.
    await add_claims(db, policy, (DONGGUAN, "rice", 100_00), event_id=candidate_id)
    body = {
        "username": "gz-adj-5",
        "password": "a-long-password-1",
        "role": "adjuster",
        "region_codes": ["440100000000"],
    }
    assert (await api.post("/api/staff/users", json=body, headers=admin_headers)).status_code == 201
    guangzhou = await login(api, "gz-adj-5", "a-long-password-1")
    refused = await api.post(f"/api/events/{candidate_id}/confirm", headers=guangzhou)
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "outside_scope"
    assert (await event_row(db, candidate_id)).status == "candidate"
    confirmed = await api.post(f"/api/events/{candidate_id}/confirm", headers=admin_headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_catastrophe_templates_render_with_their_samples(locale: str) -> None:
    for key, sample in TEMPLATE_SAMPLES.items():
        ext = "txt" if key.startswith("alerts/") else "html"
        assert render(key, locale, ext=ext, **sample).strip()

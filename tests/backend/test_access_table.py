"""Every staff route, every role, in its own region, a neighbour's and nationwide (issue 11).

``ACCESS`` declares, per route, the roles it lets through and how region scope applies; the expected
outcome of each (role, scope) is derived from it by ``expected``. A route added without an entry fails
``test_every_staff_route_has_an_access_entry``. Each route's request targets a real object seeded in
region A (东莞市); staff of region B (中山市, its neighbour) must not reach it, national staff must.

Outcomes: ``allowed`` (the route did its work or refused on the merits: any answer but 401/403/404, no
5xx, no request-validation 422, so the body really reached the scope check), ``hidden`` (a list: 200, and
region A's object absent), ``403`` and ``404``.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from backend.alerts.models import StaffAlert
from backend.callbacks.models import Callback, CallbackSample
from backend.claims.catastrophe.models import DisasterEvent
from backend.claims.models import ClaimAttachment, ClaimPayment
from backend.claims.payees.models import PayeeAccount, PayeeException
from backend.db import Database, utcnow
from backend.enrollment.models import Policy
from backend.security import hash_password
from backend.staff.models import Role, StaffUser
from tests.backend.test_claims_reporting import cover_began
from tests.backend.test_claims_workflow import make_claim, paid_policy, survey_body
from tests.backend.test_enrollment_api import farmer_application, submit
from tests.conftest import login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP
from tests.routes import all_routes

REGION_A = "441900000000"  # 东莞市 (no counties: its townships are its county-level units)
REGION_B = "442000000000"  # 中山市, its neighbour
VILLAGE_A = "441900003001"
ROLES = tuple(r.value for r in Role)
SCOPES: dict[str, list[str]] = {"A": [REGION_A], "B": [REGION_B], "N": []}
PASSWORD = "Tb-access-7Qv!x9-long"  # long and uncommon, for every password rule


def png() -> bytes:
    """A real 1×1 image (the upload checks open images, not just their first bytes)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1, 1), (0, 128, 0)).save(out, format="PNG")
    return out.getvalue()


# --- the seeded world: one of everything in region A --------------------------------------------------


@dataclass
class World:
    api: httpx.AsyncClient
    db: Database
    admin: dict[str, str]
    farmer: dict[str, str]
    policy: dict[str, Any]
    pending_application_id: int
    claim_id: int
    photo_id: int
    endorsement_id: int
    campaign_id: int
    alert_id: int
    payee_exception_id: int
    event_id: int
    staff_a_id: int
    payee_account_id: int = 0
    callback_id: int = 0  # a callback survey of region A (backend/callbacks/) and its draw
    closure_id: int = 0  # a branch closure of region A (R-DIS-5), made on first use
    sample_id: int = 0
    publicity: dict[str, int] = field(default_factory=dict)  # seeded on first use (publicity_ids)
    warning_id: int = 0  # an official warning naming region A (backend/alerts/warnings/)
    collective_id: int = 0
    broadcast_id: int = 0  # a draft broadcast of region A (backend/broadcasts/), seeded on first use
    inspection_id: int = 0  # a safety inspection of region A (backend/inspections/, R-LIA-5)
    headers: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    ids: dict[tuple[str, str], int] = field(default_factory=dict)

    async def fresh_claim(self) -> int:
        return await make_claim(self.db, self.policy, self.farmer)

    async def fresh_event(self) -> tuple[int, int]:
        """A candidate event holding a fresh claim of region A (split and confirm change their event)."""
        claim_id = await self.fresh_claim()
        async with self.db.session() as session:
            event = DisasterEvent(name="台风", cause="typhoon", started_on=utcnow(), status="candidate")
            session.add(event)
            await session.flush()
            from backend.claims.models import Claim

            claim = await session.get(Claim, claim_id)
            assert claim is not None and event.id is not None
            claim.event_id = event.id
            session.add(claim)
            await session.commit()
            return event.id, claim_id

    async def fresh_callback(self) -> tuple[int, int]:
        """A callback of a paid claim of region A, with its payment record and its draw."""
        claim_id = await self.fresh_claim()
        async with self.db.session() as session:
            policy = await session.get(Policy, self.policy["id"])
            assert policy is not None
            session.add(
                ClaimPayment(
                    claim_id=claim_id,
                    amount_fen=150000,
                    payee_name=policy.insured_name,
                    bank_name="农业银行",
                    account_number="6228480012345678901",
                    payee_is_insured=True,
                    reference="TRF-ACCESS",
                    paid_by=self.staff_a_id,
                )
            )
            sample = CallbackSample(
                drawn_on=f"T{secrets.token_hex(4)}",
                seed="1",
                permille=5,
                households_per_case=3,
                population_size=1,
                required_overall=1,
                sample_size=1,
            )
            session.add(sample)
            await session.flush()
            callback = Callback(
                sample_id=sample.id or 0,
                drawn_on=sample.drawn_on,
                claim_id=claim_id,
                policy_id=policy.id or 0,
                person_id=policy.person_id,
                region_code=DONGGUAN_TOWNSHIP,
                amount_fen=150000,
                paid_at=utcnow(),
                due_at=utcnow() + timedelta(days=30),
            )
            session.add(callback)
            await session.commit()
            assert callback.id is not None and sample.id is not None
            return callback.id, sample.id

    async def fresh_payee_account(self) -> int:
        async with self.db.session() as session:
            entry = PayeeAccount(
                account_number=f"62220{secrets.randbelow(10**12):012d}",
                bank_name="农村信用社",
                kind="village_committee",
                holder="大塘村委会",
                region_code=VILLAGE_A,
                created_by=self.staff_a_id,
            )
            session.add(entry)
            await session.commit()
            assert entry.id is not None
            return entry.id


async def make_principal(
    db: Database, api: httpx.AsyncClient, role: str, scope: str
) -> tuple[int, dict[str, str]]:
    """A staff account inserted directly: national non-admins cannot be made through the API."""
    username = f"{role}_{scope.lower()}"
    async with db.session() as session:
        user = StaffUser(
            username=username,
            password_hash=hash_password(PASSWORD),
            full_name=username,
            role=role,
            region_codes=SCOPES[scope],
            phone="13900000000",
        )
        session.add(user)
        await session.commit()
        assert user.id is not None
        user_id = user.id
    return user_id, await login(api, username, PASSWORD)


async def seed_world(
    api: httpx.AsyncClient, db: Database, admin: dict[str, str], service: dict[str, str]
) -> World:
    farmer, policy = await paid_policy(api, service, "access-farmer")
    await cover_began(db, timedelta(days=5))
    big = await submit(api, farmer, farmer_application(quantity="150"))  # R-ENR-7: verification needed
    assert big.status_code == 200 and big.json()["status"] == "pending_verification", big.text
    claim_id = await make_claim(db, policy, farmer)
    media = await api.post(
        "/api/bot/claims/media", headers=farmer, files={"file": ("scene.png", io.BytesIO(png()), "image/png")}
    )
    assert media.status_code == 201, media.text
    photo_id = int(media.json()["id"])
    endorsement = await api.post(
        f"/api/bot/policies/{policy['id']}/endorsements",
        headers=farmer,
        json={"field": "bank_account", "new_value": "6228480099998888777", "reason": "换卡"},
    )
    assert endorsement.status_code == 200, endorsement.text
    campaign = await api.post(
        "/api/campaigns", headers=admin, json={"product_code": "rice", "region_code": DONGGUAN_TOWNSHIP}
    )
    assert campaign.status_code == 201, campaign.text
    staff_a_id, _ = await make_principal(db, api, "agent", "A")
    async with db.session() as session:
        session.add(ClaimAttachment(claim_id=claim_id, document_id=photo_id, purpose="scene"))
        exception = PayeeException(
            claim_id=claim_id,
            payee_name="李四之子",
            bank_name="农业银行",
            account_number="6228481111222233334",
            explanation="户主住院",
            entered_by=staff_a_id,
        )
        session.add(exception)
        alert = StaffAlert(
            kind="insured_message",
            region_code=DONGGUAN_TOWNSHIP,
            title="留言",
            body="请回电",
            claim_id=claim_id,
            identity_id=int(farmer["X-Identity-Id"]),
            dedupe_key=f"access-{secrets.token_hex(4)}",
        )
        session.add(alert)
        await session.commit()
        assert alert.id is not None and exception.id is not None
        alert_id, exception_id = alert.id, exception.id
    world = World(
        api=api,
        db=db,
        admin=admin,
        farmer=farmer,
        policy=policy,
        pending_application_id=int(big.json()["id"]),
        claim_id=claim_id,
        photo_id=photo_id,
        endorsement_id=int(endorsement.json()["id"]),
        campaign_id=int(campaign.json()["id"]),
        alert_id=alert_id,
        payee_exception_id=exception_id,
        event_id=0,
        staff_a_id=staff_a_id,
    )
    world.event_id, _ = await world.fresh_event()
    world.payee_account_id = await world.fresh_payee_account()
    world.callback_id, world.sample_id = await world.fresh_callback()
    await publicity_ids(world)
    world.collective_id = await _collective_of_region_a(api, admin)
    world.warning_id = await _warning_of_region_a(db)
    world.inspection_id = await _inspection_of_region_a(world)
    return world


async def _warning_of_region_a(db: Database) -> int:
    from backend.alerts.warnings.models import CapWarning

    async with db.session() as session:
        row = CapWarning(
            sender="gd-weather@cma.cn",
            identifier=f"access-{secrets.token_hex(4)}",
            sent=utcnow(),
            status="Actual",
            msg_type="Alert",
            scope="Public",
            event="台风",
            hazard="typhoon",
            severity="Severe",
            state="pending",
            region_codes=[REGION_A],
            expires=utcnow() + timedelta(days=1),
            raw_xml="<alert/>",
        )
        session.add(row)
        await session.commit()
        return row.id or 0


async def _inspection_of_region_a(world: World) -> int:
    """An inspection of region A with a team named (the appointment route then works on the merits)."""
    from backend.inspections.models import Inspection
    from backend.people.models import Enterprise

    async with world.db.session() as session:
        enterprise = Enterprise(
            name="东莞安泰机械有限公司",
            credit_code="91350100MA0ACCESS1",
            legal_representative="李建国",
            phone="13900001111",
            industry_code="machinery",
            region_code=DONGGUAN_TOWNSHIP,
        )
        session.add(enterprise)
        await session.flush()
        inspection = Inspection(
            policy_id=world.policy["id"],
            enterprise_id=enterprise.id or 0,
            region_code=DONGGUAN_TOWNSHIP,
            due_at=utcnow() + timedelta(days=30),
            inspector_team="安评技术服务队",
        )
        session.add(inspection)
        await session.commit()
        assert inspection.id is not None
        return inspection.id


async def _collective_of_region_a(api: httpx.AsyncClient, admin: dict[str, str]) -> int:
    from tests.collective_helpers import household, list_csv, upload

    created = await upload(api, admin, list_csv([household(7001)]))
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def add_principals(
    world: World, roles: tuple[str, ...], scopes: tuple[str, ...] = tuple(SCOPES)
) -> None:
    for role in roles:
        for scope in scopes:
            if role == "agent" and scope == "A":
                world.headers[(role, scope)] = await login(world.api, "agent_a", PASSWORD)
                world.ids[(role, scope)] = world.staff_a_id
                continue
            world.ids[(role, scope)], world.headers[(role, scope)] = await make_principal(
                world.db, world.api, role, scope
            )


async def publicity_ids(world: World) -> dict[str, int]:
    """Region A's publicity notices (a draft, a checked one, an open one with its archive record and an
    objection), inserted directly once: the routes' own tests build them through the API."""
    if world.publicity:
        return world.publicity

    from backend.enrollment.documents import store_document
    from backend.publicity.archive import service as archive
    from backend.publicity.models import NoticeObjection, PublicityNotice
    from backend.publicity.sources import columns_of

    now = utcnow()
    fields = {name: "-" for name in columns_of("claims_payout")}
    async with world.db.session() as session:
        made: dict[str, PublicityNotice] = {}
        for status in ("draft", "checked", "open"):
            notice = PublicityNotice(
                number=f"PN{secrets.token_hex(6)}",
                kind="claims_payout",
                status=status,
                region_code=DONGGUAN_TOWNSHIP,
                region_name="东城街道",
                rows=[{"person_id": None, "fields": fields}],
                version=1 if status == "open" else 0,
                public_token=secrets.token_urlsafe(18),
                created_by=world.staff_a_id,
                checked_by_name=None if status == "draft" else "张主任",
                checked_at=None if status == "draft" else now,
                opened_at=now if status == "open" else None,
                closes_at=now + timedelta(hours=72) if status == "open" else None,
            )
            session.add(notice)
            made[status] = notice
        await session.flush()
        record = await archive.append(
            session,
            notice_id=made["open"].id or 0,
            version=1,
            record_kind="publication",
            payload={"villages": [DONGGUAN_TOWNSHIP]},
            html="<p>公示</p>",
            pdf=b"%PDF-1.4",
        )
        photo = await store_document(
            session=session,
            kind="publicity_objection",
            filename="p.png",
            content=png(),
            content_type="image/png",
        )
        objection = NoticeObjection(
            notice_id=made["open"].id or 0,
            version=1,
            identity_id=int(world.farmer["X-Identity-Id"]),
            photo_document_id=photo.id,
            reason="金额不对",
            due_at=now + timedelta(days=3),
        )
        session.add(objection)
        await session.commit()
        world.publicity = {
            "draft": made["draft"].id or 0,
            "checked": made["checked"].id or 0,
            "open": made["open"].id or 0,
            "record": record.id or 0,
            "objection": objection.id or 0,
        }
    return world.publicity


# --- the declared table -----------------------------------------------------------------------------------

Scope = Literal["open", "object", "list", "named", "rows", "national"]
Outcome = Literal["allowed", "hidden", "rejected", "403", "404"]


@dataclass(frozen=True)
class Access:
    """Who passes a route: ``roles`` (admin always), and how region scope applies:

    - ``open``: reference data and one's own account, the same in every region;
    - ``object``: region A's object; outside A it does not exist (404);
    - ``list``: a list; outside A it is answered without region A's rows;
    - ``create``: a new thing in region A named in the body; outside A refused (403 ``outside_scope``);
    - ``rows``: a batch of rows of region A (villages, station readings); outside A each row is refused
      (``outside_scope``) and the batch is answered (200) with nothing accepted;
    - ``national``: whole-country data (the catalogue, rate tables): national staff only (403).
    """

    roles: frozenset[str]
    scope: Scope
    marker: Callable[[World], str] | None = None  # a list's row of region A, as text in the answer


ALL = frozenset(ROLES)
ADMIN = frozenset({"admin"})
ADJUSTER = frozenset({"adjuster"})
UNDERWRITER = frozenset({"underwriter"})


def _r(*roles: str) -> frozenset[str]:
    return frozenset(roles)


def _claim_marker(w: World) -> str:
    return f'"id":{w.claim_id},'


ACCESS: dict[str, Access] = {
    # staff accounts (backend/staff): admin only, and a regional admin manages only the staff of its region
    "GET /api/staff/me": Access(ALL, "open"),
    "GET /api/staff/users": Access(ADMIN, "list", lambda w: f'"id":{w.staff_a_id},'),
    "POST /api/staff/users": Access(ADMIN, "named"),
    "PATCH /api/staff/users/{user_id}": Access(ADMIN, "object"),
    "POST /api/staff/users/{user_id}/unlock": Access(ADMIN, "object"),
    "GET /api/staff/audit": Access(ADMIN, "open"),
    # reference data
    "GET /api/regions/search": Access(ALL, "open"),
    "GET /api/regions/{code}": Access(ALL, "open"),
    "GET /api/regions/{code}/children": Access(ALL, "open"),
    "GET /api/regions/{code}/path": Access(ALL, "open"),
    "POST /api/regions/villages/import": Access(_r("underwriter", "agent"), "rows"),
    "GET /api/products": Access(ALL, "open"),
    "GET /api/products/liability/industries": Access(ALL, "open"),
    "GET /api/products/liability/risk-questions": Access(ALL, "open"),
    "GET /api/products/{code}": Access(ALL, "open"),
    "POST /api/products/{code}/quote": Access(ALL, "open"),
    # the catalogue and rate tables are the whole country's: national scope only (issue 11)
    "PUT /api/products/liability/industries/{code}": Access(UNDERWRITER, "national"),
    "PATCH /api/products/{code}": Access(UNDERWRITER, "national"),
    # QR campaigns (R-LIA-3)
    "POST /api/campaigns": Access(_r("underwriter", "agent"), "named"),
    "GET /api/campaigns": Access(ALL, "list", lambda w: f'"id":{w.campaign_id},'),
    "GET /api/campaigns/{campaign_id}": Access(ALL, "object"),
    "GET /api/campaigns/{campaign_id}/qr.png": Access(ALL, "object"),
    "GET /api/campaigns/{campaign_id}/qr.svg": Access(ALL, "object"),
    "POST /api/campaigns/{campaign_id}/deactivate": Access(_r("underwriter", "agent"), "object"),
    "GET /api/campaigns/{campaign_id}/scans": Access(ALL, "object"),
    # enrollment
    "GET /api/applications": Access(ALL, "list", lambda w: f'"id":{w.pending_application_id},'),
    "GET /api/applications/{application_id}": Access(ALL, "object"),
    # a verification photo of region A's application (the underwriter uploads only signed forms)
    "POST /api/documents": Access(_r("agent", "adjuster"), "object"),
    "GET /api/documents/{document_id}": Access(ALL, "object"),
    "POST /api/applications/{application_id}/verification": Access(_r("agent", "adjuster"), "object"),
    "POST /api/applications/{application_id}/offline-payment": Access(UNDERWRITER, "object"),
    "POST /api/policies/late-entry": Access(UNDERWRITER, "named"),
    "GET /api/policies": Access(ALL, "list", lambda w: f'"id":{w.policy["id"]},'),
    "GET /api/policies/{policy_id}": Access(ALL, "object"),
    "GET /api/endorsements": Access(ALL, "list", lambda w: f'"id":{w.endorsement_id},'),
    "POST /api/endorsements/{endorsement_id}/approve": Access(UNDERWRITER, "object"),
    "POST /api/endorsements/{endorsement_id}/refuse": Access(UNDERWRITER, "object"),
    # claims
    "POST /api/claims/collective": Access(_r("agent", "adjuster"), "named"),
    "GET /api/claims": Access(ALL, "list", _claim_marker),
    "GET /api/claims/{claim_id}": Access(ALL, "object"),
    "POST /api/claims/{claim_id}/assign": Access(ADJUSTER, "object"),
    "POST /api/claims/{claim_id}/survey-schedule": Access(ADJUSTER, "object"),
    "POST /api/claims/{claim_id}/survey-report": Access(ADJUSTER, "object"),
    "POST /api/claims/{claim_id}/documents-request": Access(ADJUSTER, "object"),
    "POST /api/claims/{claim_id}/deny": Access(ADJUSTER, "object"),
    "POST /api/claims/{claim_id}/disposal": Access(ADJUSTER, "object"),
    "POST /api/claims/{claim_id}/assess": Access(ADJUSTER, "object"),
    "POST /api/claims/{claim_id}/payment": Access(UNDERWRITER, "object"),
    "POST /api/claims/{claim_id}/prepayments": Access(UNDERWRITER, "object"),
    "POST /api/claims/{claim_id}/payee-exceptions": Access(UNDERWRITER, "object"),
    "POST /api/claims/{claim_id}/payee-exceptions/{exception_id}/{decision}": Access(UNDERWRITER, "object"),
    "GET /api/payee-accounts": Access(
        _r("underwriter", "adjuster"), "list", lambda w: f'"id":{w.payee_account_id},'
    ),
    "POST /api/payee-accounts": Access(_r("underwriter", "adjuster"), "named"),
    "DELETE /api/payee-accounts/{account_id}": Access(_r("underwriter", "adjuster"), "object"),
    # alerts
    "GET /api/alerts": Access(ALL, "list", lambda w: f'"id":{w.alert_id},'),
    "POST /api/alerts/{alert_id}/ack": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/alerts/{alert_id}/reply": Access(_r("underwriter", "adjuster", "agent"), "object"),
    # index insurance
    "POST /api/index/readings": Access(_r("underwriter", "adjuster"), "rows"),
    "POST /api/index/readings/csv": Access(_r("underwriter", "adjuster"), "rows"),
    "GET /api/index/payouts": Access(ALL, "named"),
    # disaster events (R-CLM-5)
    "POST /api/events": Access(_r("adjuster", "underwriter"), "open"),
    "GET /api/events": Access(ALL, "list", lambda w: f'"id":{w.event_id},'),
    "GET /api/events/{event_id}": Access(ALL, "object"),
    "POST /api/events/{event_id}/claims": Access(_r("adjuster", "underwriter"), "object"),
    "POST /api/events/{event_id}/confirm": Access(_r("adjuster", "underwriter"), "object"),
    "POST /api/events/{event_id}/split": Access(_r("adjuster", "underwriter"), "object"),
    "POST /api/events/{event_id}/evaluate": Access(_r("adjuster", "underwriter"), "object"),
    # disaster events: grades, reporting, daily reports, green channel (R-DIS-2 to R-DIS-4)
    "GET /api/events/{event_id}/response": Access(ALL, "object"),
    "PUT /api/events/{event_id}/estimates": Access(_r("adjuster", "underwriter"), "object"),
    "GET /api/events/{event_id}/grade-history": Access(ALL, "object"),
    "POST /api/events/{event_id}/reports": Access(_r("adjuster", "underwriter"), "object"),
    "PUT /api/events/{event_id}/report-text": Access(_r("adjuster", "underwriter"), "object"),
    "GET /api/events/{event_id}/daily-reports": Access(ALL, "object"),
    "GET /api/events/{event_id}/daily-reports/{report_date}": Access(ALL, "object"),
    "POST /api/events/{event_id}/green-channel": Access(_r("adjuster", "underwriter"), "object"),
    # branch closures (R-DIS-5)
    "GET /api/branches/closures": Access(ALL, "list", lambda w: f'"id":{w.closure_id},'),
    "POST /api/branches/{region_code}/close": Access(_r("adjuster", "underwriter"), "named"),
    "POST /api/branches/{region_code}/reopen": Access(_r("adjuster", "underwriter"), "named"),
    # callback surveys (R-CBK-1 to R-CBK-5)
    "GET /api/callbacks": Access(ALL, "list", lambda w: f'"id":{w.callback_id},'),
    "GET /api/callbacks/samples": Access(ALL, "open"),
    "GET /api/callbacks/samples/{sample_id}/rederive": Access(ALL, "national"),
    "DELETE /api/callbacks/samples/{sample_id}": Access(ADMIN, "national"),
    "GET /api/callbacks/rates": Access(ALL, "list", lambda w: f'"region_code":"{DONGGUAN_TOWNSHIP}"'),
    "GET /api/callbacks/{callback_id}": Access(ALL, "object"),
    "POST /api/callbacks/{callback_id}/contact": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/callbacks/{callback_id}/answers": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/callbacks/{callback_id}/close": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/callbacks/{callback_id}/resolve": Access(ADJUSTER, "object"),
    # publicity notices (R-PUB-1..4): writers are the roles that publish (claims, underwriting, village agent)
    "POST /api/publicity/notices": Access(_r("underwriter", "adjuster", "agent"), "named"),
    "GET /api/publicity/notices": Access(ALL, "list", lambda w: f'"id":{w.publicity["open"]},'),
    "GET /api/publicity/notices/{notice_id}": Access(ALL, "object"),
    "POST /api/publicity/notices/{notice_id}/check": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/publicity/notices/{notice_id}/open": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/publicity/notices/{notice_id}/corrections": Access(
        _r("underwriter", "adjuster", "agent"), "object"
    ),
    "POST /api/publicity/notices/{notice_id}/board-photos": Access(
        _r("underwriter", "adjuster", "agent"), "object"
    ),
    "GET /api/publicity/notices/{notice_id}/archive": Access(ALL, "object"),
    "GET /api/publicity/archive/verify": Access(ALL, "open"),
    "GET /api/publicity/archive/{record_id}/verify": Access(ALL, "object"),
    "GET /api/publicity/archive/{record_id}/{part}": Access(ALL, "object"),
    "GET /api/publicity/objections": Access(ALL, "list", lambda w: f'"id":{w.publicity["objection"]},'),
    "GET /api/publicity/objections/{objection_id}/photo": Access(ALL, "object"),
    "POST /api/publicity/objections/{objection_id}/answer": Access(
        _r("underwriter", "adjuster", "agent"), "object"
    ),
    # collective enrollment (R-ENR-1): the village's agent or the region's underwriters upload
    "GET /api/collective/template": Access(ALL, "open"),
    "POST /api/collective/lists/check": Access(_r("agent", "underwriter"), "named"),
    "POST /api/collective/lists/report": Access(_r("agent", "underwriter"), "named"),
    "POST /api/collective/lists": Access(_r("agent", "underwriter"), "named"),
    "GET /api/collective/{collective_id}": Access(ALL, "object"),
    "GET /api/collective/{collective_id}/households": Access(ALL, "object"),
    "POST /api/collective/{collective_id}/organiser-confirmation": Access(
        _r("agent", "underwriter"), "object"
    ),
    "POST /api/collective/{collective_id}/payment": Access(UNDERWRITER, "object"),
    "POST /api/collective/{collective_id}/households/{household_id}/objection-answer": Access(
        _r("agent", "underwriter"), "object"
    ),
    "POST /api/collective/{collective_id}/cancel": Access(_r("agent", "underwriter"), "object"),
    # official warnings (CAP 1.2, R-DIS-1): any uploads (a feed's warnings are the country's), region-scoped reads
    "POST /api/warnings": Access(_r("underwriter", "adjuster"), "open"),
    "GET /api/warnings": Access(ALL, "list", lambda w: f'"id":{w.warning_id},'),
    "GET /api/warnings/{warning_id}": Access(ALL, "object"),
    "POST /api/warnings/{warning_id}/approve": Access(_r("underwriter", "adjuster"), "object"),
    # safety inspections (R-LIA-5): every role reads, the inspecting roles (underwriter, adjuster) write
    "GET /api/inspections": Access(ALL, "list", lambda w: f'"id":{w.inspection_id},'),
    "POST /api/inspections": Access(_r("underwriter", "adjuster"), "object"),
    "GET /api/inspections/{inspection_id}": Access(ALL, "object"),
    "POST /api/inspections/{inspection_id}/inspector": Access(_r("underwriter", "adjuster"), "object"),
    "POST /api/inspections/{inspection_id}/appointment": Access(_r("underwriter", "adjuster"), "object"),
    "POST /api/inspections/{inspection_id}/hazards": Access(_r("underwriter", "adjuster"), "object"),
    "POST /api/inspections/{inspection_id}/complete": Access(_r("underwriter", "adjuster"), "object"),
    # delivery
    "GET /api/outbox": Access(ADMIN, "open"),
    "GET /api/outbox/stats": Access(ADMIN, "open"),
    # broadcasts (issue 14): writers compose and send inside their regions; a second pair of eyes approves
    "POST /api/broadcasts/audience-size": Access(ALL, "named"),
    "POST /api/broadcasts/preview": Access(ALL, "open"),
    "POST /api/broadcasts": Access(_r("underwriter", "adjuster", "agent"), "named"),
    "GET /api/broadcasts": Access(ALL, "list", lambda w: f'"id":{w.broadcast_id},'),
    "GET /api/broadcasts/{broadcast_id}": Access(ALL, "object"),
    "GET /api/broadcasts/{broadcast_id}/progress": Access(ALL, "object"),
    "POST /api/broadcasts/{broadcast_id}/submit": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/broadcasts/{broadcast_id}/approve": Access(_r("underwriter", "adjuster"), "object"),
    "POST /api/broadcasts/{broadcast_id}/send": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/broadcasts/{broadcast_id}/pause": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/broadcasts/{broadcast_id}/resume": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/broadcasts/{broadcast_id}/cancel": Access(_r("underwriter", "adjuster", "agent"), "object"),
    "POST /api/broadcasts/{broadcast_id}/resend-failed": Access(
        _r("underwriter", "adjuster", "agent"), "object"
    ),
    "POST /api/regions/areas": Access(UNDERWRITER, "rows"),
}

# Outside region A (B, the neighbour), by how the route's scope applies.
OUTSIDE: dict[Scope, Outcome] = {
    "open": "allowed",
    "object": "404",
    "list": "hidden",
    "named": "403",
    "rows": "rejected",
    "national": "403",
}


def expected(route: str, role: str, scope: str) -> Outcome:
    access = ACCESS[route]
    if role != "admin" and role not in access.roles:
        return "403"
    if scope == "N" or access.scope == "open":
        return "allowed"
    if scope == "A":
        return "403" if access.scope == "national" else "allowed"
    return OUTSIDE[access.scope]


# --- requests: what each route is asked, on region A's object ----------------------------------------------


@dataclass
class Call:
    path: str
    json: Any = None
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    content: bytes | None = None  # a raw body (a CAP XML document)


def _csv(text: str) -> dict[str, Any]:
    return {"file": ("data.csv", io.BytesIO(text.encode()), "text/csv")}


async def _call(route: str, w: World) -> Call:
    at = (utcnow() + timedelta(hours=2)).isoformat()
    c = w.claim_id
    match route:
        case "GET /api/staff/me" | "GET /api/staff/users" | "GET /api/outbox" | "GET /api/outbox/stats":
            return Call(route.split(" ")[1])
        case "GET /api/staff/audit":
            return Call("/api/staff/audit", params={"limit": 5})
        case "POST /api/staff/users":
            name = f"made_{secrets.token_hex(4)}"
            return Call(
                "/api/staff/users",
                json={"username": name, "password": PASSWORD, "role": "viewer", "region_codes": [REGION_A]},
            )
        case "PATCH /api/staff/users/{user_id}":
            return Call(f"/api/staff/users/{w.staff_a_id}", json={"full_name": "东莞代理"})
        case "POST /api/staff/users/{user_id}/unlock":
            return Call(f"/api/staff/users/{w.staff_a_id}/unlock")
        case "GET /api/regions/search":
            return Call("/api/regions/search", params={"q": "东城"})
        case "GET /api/regions/{code}" | "GET /api/regions/{code}/children" | "GET /api/regions/{code}/path":
            return Call(route.split(" ")[1].replace("{code}", REGION_A))
        case "POST /api/regions/villages/import":
            rows = f"code,name,township_code\n441900003901,新村{secrets.token_hex(2)},{DONGGUAN_TOWNSHIP}\n"
            return Call("/api/regions/villages/import", files=_csv(rows), data={"county_code": REGION_A})
        case (
            "GET /api/products"
            | "GET /api/products/liability/industries"
            | "GET /api/products/liability/risk-questions"
        ):
            return Call(route.split(" ")[1])
        case "GET /api/products/{code}":
            return Call("/api/products/rice")
        case "POST /api/products/{code}/quote":
            return Call("/api/products/rice/quote", json={"quantity": "10"})
        case "PUT /api/products/liability/industries/{code}":
            return Call(
                "/api/products/liability/industries/mining",
                json={"name_zh": "采矿", "name_en": "Mining", "base_rate": "0.01"},
            )
        case "PATCH /api/products/{code}":
            return Call("/api/products/rice", json={"name_en": "Rice"})
        case "POST /api/campaigns":
            return Call("/api/campaigns", json={"product_code": "rice", "region_code": DONGGUAN_TOWNSHIP})
        case "GET /api/campaigns":
            return Call("/api/campaigns")
        case (
            "GET /api/campaigns/{campaign_id}"
            | "GET /api/campaigns/{campaign_id}/qr.png"
            | "GET /api/campaigns/{campaign_id}/qr.svg"
            | "GET /api/campaigns/{campaign_id}/scans"
            | "POST /api/campaigns/{campaign_id}/deactivate"
        ):
            return Call(route.split(" ")[1].replace("{campaign_id}", str(w.campaign_id)))
        case "GET /api/applications":
            return Call("/api/applications")
        case "GET /api/applications/{application_id}":
            return Call(f"/api/applications/{w.pending_application_id}")
        case "POST /api/documents":
            return Call(
                "/api/documents",
                data={"kind": "verification_photo", "application_id": str(w.pending_application_id)},
                files={"file": ("site.png", io.BytesIO(png()), "image/png")},
            )
        case "GET /api/documents/{document_id}":
            return Call(f"/api/documents/{w.photo_id}")
        case "POST /api/applications/{application_id}/verification":
            return Call(
                f"/api/applications/{w.pending_application_id}/verification",
                json={
                    "record": "现场核验，地块与申报一致",
                    "passed": True,
                    "photo_document_ids": [w.photo_id],
                    "land_rights_evidence": "承包合同",
                },
            )
        case "POST /api/applications/{application_id}/offline-payment":
            return Call(
                f"/api/applications/{w.pending_application_id}/offline-payment",
                json={"method": "bank_deduction", "reference": f"TR{secrets.token_hex(4)}"},
            )
        case "POST /api/policies/late-entry":
            return Call(
                "/api/policies/late-entry",
                json={
                    "application": farmer_application(),
                    "enrolled_on": (utcnow() - timedelta(days=3)).isoformat(),
                    "reason": "村里集中投保，纸质投保单补录入系统",
                    "payment_reference": f"TR{secrets.token_hex(4)}",
                    "identity_id": int(w.farmer["X-Identity-Id"]),
                    "signed_form_document_id": w.photo_id,
                },
            )
        case (
            "GET /api/policies"
            | "GET /api/endorsements"
            | "GET /api/claims"
            | "GET /api/alerts"
            | "GET /api/events"
            | "GET /api/payee-accounts"
        ):
            return Call(route.split(" ")[1])
        case "GET /api/policies/{policy_id}":
            return Call(f"/api/policies/{w.policy['id']}")
        case (
            "POST /api/endorsements/{endorsement_id}/approve"
            | "POST /api/endorsements/{endorsement_id}/refuse"
        ):
            return Call(
                route.split(" ")[1].replace("{endorsement_id}", str(w.endorsement_id)),
                json={"note": "核对无误"},
            )
        case "POST /api/claims/collective":
            return Call(
                "/api/claims/collective",
                json={
                    "village_code": VILLAGE_A,
                    "cause": "typhoon",
                    "loss_started_at": (utcnow() - timedelta(hours=3)).isoformat(),
                    "households": [{"policy_id": w.policy["id"], "lost_quantity": "2"}],
                },
            )
        case "GET /api/claims/{claim_id}":
            return Call(f"/api/claims/{c}")
        case "POST /api/claims/{claim_id}/assign":
            return Call(f"/api/claims/{c}/assign", json={"adjuster_id": w.ids.get(("adjuster", "A"), 0)})
        case "POST /api/claims/{claim_id}/survey-schedule":
            return Call(f"/api/claims/{c}/survey-schedule", json={"at": at})
        case "POST /api/claims/{claim_id}/survey-report":
            return Call(f"/api/claims/{c}/survey-report", json=survey_body())
        case "POST /api/claims/{claim_id}/documents-request":
            return Call(f"/api/claims/{c}/documents-request", json={"items": ["身份证"]})
        case "POST /api/claims/{claim_id}/deny":
            return Call(f"/api/claims/{await w.fresh_claim()}/deny", json={"reasons": ["not_covered"]})
        case "POST /api/claims/{claim_id}/disposal":
            return Call(f"/api/claims/{c}/disposal", json={"decision": "confirm", "by": "adjuster"})
        case "POST /api/claims/{claim_id}/assess":
            return Call(f"/api/claims/{c}/assess", json={"amount_fen": 100000})
        case "POST /api/claims/{claim_id}/payment":
            return Call(f"/api/claims/{c}/payment", json={"reference": f"PAY{secrets.token_hex(4)}"})
        case "POST /api/claims/{claim_id}/prepayments":
            return Call(
                f"/api/claims/{c}/prepayments",
                json={
                    "kind": "medical",
                    "amount_fen": 1000,
                    "payee_name": "李四",
                    "payee_kind": "injured",
                    "bank_name": "农业银行",
                    "account_number": "6228480012345678901",
                    "reason": "住院",
                },
            )
        case "POST /api/claims/{claim_id}/payee-exceptions":
            return Call(
                f"/api/claims/{c}/payee-exceptions",
                json={
                    "payee_name": "李四之子",
                    "bank_name": "农业银行",
                    "account_number": "6228482222333344445",
                    "explanation": "户主住院",
                },
            )
        case "POST /api/claims/{claim_id}/payee-exceptions/{exception_id}/{decision}":
            return Call(
                f"/api/claims/{c}/payee-exceptions/{w.payee_exception_id}/approve", json={"note": "同意"}
            )
        case "POST /api/payee-accounts":
            return Call(
                "/api/payee-accounts",
                json={
                    "account_number": f"62221{secrets.randbelow(10**12):012d}",
                    "kind": "village_committee",
                    "region_code": VILLAGE_A,
                },
            )
        case "DELETE /api/payee-accounts/{account_id}":
            return Call(f"/api/payee-accounts/{await w.fresh_payee_account()}")
        case "POST /api/alerts/{alert_id}/ack":
            return Call(f"/api/alerts/{w.alert_id}/ack")
        case "POST /api/alerts/{alert_id}/reply":
            return Call(f"/api/alerts/{w.alert_id}/reply", json={"text": "已收到，稍后联系您"})
        case "POST /api/index/readings":
            return Call(
                "/api/index/readings",
                json=[
                    {
                        "township_code": DONGGUAN_TOWNSHIP,
                        "peril": "wind",
                        "value": "6",
                        "observed_on": utcnow().date().isoformat(),
                    }
                ],
            )
        case "POST /api/index/readings/csv":
            day = utcnow().date().isoformat()
            return Call(
                "/api/index/readings/csv",
                files=_csv(f"township_code,peril,value,observed_on\n{DONGGUAN_TOWNSHIP},wind,6,{day}\n"),
            )
        case "GET /api/index/payouts":
            return Call("/api/index/payouts", params={"region": DONGGUAN_TOWNSHIP})
        case "POST /api/events":
            return Call(
                "/api/events",
                json={"name": "台风山竹", "cause": "typhoon", "started_on": utcnow().date().isoformat()},
            )
        case "GET /api/events/{event_id}":
            return Call(f"/api/events/{w.event_id}")
        case "POST /api/events/{event_id}/claims":
            return Call(f"/api/events/{w.event_id}/claims", json={"claim_ids": [await w.fresh_claim()]})
        case "POST /api/events/{event_id}/confirm" | "POST /api/events/{event_id}/evaluate":
            event_id, _ = await w.fresh_event()
            return Call(route.split(" ")[1].replace("{event_id}", str(event_id)))
        case "POST /api/events/{event_id}/split":
            event_id, claim_id = await w.fresh_event()
            return Call(f"/api/events/{event_id}/split", json={"claim_ids": [claim_id]})
        case "GET /api/callbacks" | "GET /api/callbacks/samples" | "GET /api/callbacks/rates":
            return Call(route.split(" ")[1])
        case "GET /api/callbacks/samples/{sample_id}/rederive" | "DELETE /api/callbacks/samples/{sample_id}":
            return Call(route.split(" ")[1].replace("{sample_id}", str(w.sample_id)))
        case "GET /api/callbacks/{callback_id}":
            return Call(f"/api/callbacks/{w.callback_id}")
        case "POST /api/callbacks/{callback_id}/contact":
            return Call(f"/api/callbacks/{w.callback_id}/contact", json={"confirm": True})
        case "POST /api/callbacks/{callback_id}/answers":
            return Call(
                f"/api/callbacks/{w.callback_id}/answers", json={"received": True, "amount_correct": True}
            )
        case "POST /api/callbacks/{callback_id}/close":
            return Call(f"/api/callbacks/{w.callback_id}/close", json={"remarks": "电话停机"})
        case "POST /api/callbacks/{callback_id}/resolve":
            return Call(f"/api/callbacks/{w.callback_id}/resolve", json={"note": "已核实"})
    if route.startswith(
        (
            "GET /api/events/",
            "PUT /api/events/",
            "POST /api/events/",
            "GET /api/branches",
            "POST /api/branches",
        )
    ):
        return await _disaster_call(route, w)
    if route.startswith(("GET /api/publicity", "POST /api/publicity")):
        return await _publicity_call(route, w)
    if route.startswith(("GET /api/collective", "POST /api/collective")):
        return _collective_call(route, w)
    if route.startswith(("GET /api/warnings", "POST /api/warnings")):
        return _warning_call(route, w)
    if route.startswith(("GET /api/broadcasts", "POST /api/broadcasts", "POST /api/regions/areas")):
        return await _broadcast_call(route, w)
    if route.startswith(("GET /api/inspections", "POST /api/inspections")):
        return _inspection_call(route, w)
    raise AssertionError(f"no request for {route}: add one to _call")


def _warning_call(route: str, w: World) -> Call:
    from tests.backend.test_cap_parsing import cap_xml

    if route == "POST /api/warnings":
        return Call("/api/warnings", content=cap_xml(identifier=f"access-{secrets.token_hex(4)}"))
    return Call(route.split(" ")[1].replace("{warning_id}", str(w.warning_id)))


async def _daily_report_of(w: World, day: str) -> None:
    """Region A's event's daily report of ``day`` (R-DIS-3), once: the download route then answers 200."""
    from sqlmodel import select

    from backend.claims.catastrophe.models import EventDailyReport
    from backend.enrollment.documents import store_document

    async with w.db.session() as session:
        found = await session.exec(
            select(EventDailyReport).where(
                EventDailyReport.event_id == w.event_id, EventDailyReport.report_date == day
            )
        )
        if found.first() is not None:
            return
        document = await store_document(
            session=session, kind="event_daily_report", filename=f"{day}.pdf", content=b"%PDF-1.4\n"
        )
        session.add(
            EventDailyReport(event_id=w.event_id, report_date=day, grade="II", document_id=document.id or 0)
        )
        await session.commit()


async def _disaster_call(route: str, w: World) -> Call:
    """R-DIS-2 to R-DIS-5 routes on region A's event (a claim of region A) and branch."""
    path = route.split(" ")[1].replace("{event_id}", str(w.event_id))
    match route:
        case "PUT /api/events/{event_id}/estimates":
            return Call(path, json={"property_fen": 0, "casualty_fen": 0, "deaths": 5})
        case "POST /api/events/{event_id}/reports":
            return Call(path, json={"kind": "supervisor"})
        case "PUT /api/events/{event_id}/report-text":
            return Call(path, json={"situation": "农田受淹"})
        case "GET /api/events/{event_id}/daily-reports/{report_date}":
            await _daily_report_of(w, "2026-12-01")
            return Call(path.replace("{report_date}", "2026-12-01"))
        case "POST /api/events/{event_id}/green-channel":
            return Call(path, json={"on": True})
        case "GET /api/branches/closures":
            if not w.closure_id:
                from backend.claims.catastrophe.models import BranchClosure

                async with w.db.session() as session:
                    closure = BranchClosure(region_code=VILLAGE_A, reason="台风")
                    session.add(closure)
                    await session.commit()
                    w.closure_id = closure.id or 0
            return Call(path)
        case "POST /api/branches/{region_code}/close":
            return Call(path.replace("{region_code}", DONGGUAN_TOWNSHIP), json={"reason": "台风停电"})
        case "POST /api/branches/{region_code}/reopen":
            return Call(path.replace("{region_code}", DONGGUAN_TOWNSHIP))
    return Call(path)


async def _broadcast_call(route: str, w: World) -> Call:
    """Region A's broadcast (a draft, created by agent A, inserted directly once)."""
    from backend.broadcasts.models import Broadcast

    content = {"locales": {"zh-CN": {"chat": {"text": "明天有大风，请加固大棚。"}}}}
    audience = {"region_codes": [VILLAGE_A]}
    if not w.broadcast_id:
        async with w.db.session() as session:
            broadcast = Broadcast(
                kind="staff_message",
                content=content,
                audience=audience,
                scope_regions=[REGION_A],
                created_by=w.staff_a_id,
            )
            session.add(broadcast)
            await session.commit()
            w.broadcast_id = broadcast.id or 0
    path = route.split(" ")[1].replace("{broadcast_id}", str(w.broadcast_id))
    match route:
        case "POST /api/broadcasts/audience-size":
            return Call(path, json={"audience": audience})
        case "POST /api/broadcasts/preview":
            return Call(path, json={"kind": "staff_message", "content": content})
        case "POST /api/broadcasts":
            return Call(path, json={"kind": "staff_message", "content": content, "audience": audience})
        case "POST /api/regions/areas":
            square = [[[113.7, 23.0], [113.8, 23.0], [113.8, 23.1], [113.7, 23.1], [113.7, 23.0]]]
            feature = {
                "type": "Feature",
                "properties": {"code": DONGGUAN_TOWNSHIP},
                "geometry": {"type": "Polygon", "coordinates": square},
            }
            return Call(path, json={"type": "FeatureCollection", "features": [feature]})
    return Call(path)


def _inspection_call(route: str, w: World) -> Call:
    path = route.split(" ")[1].replace("{inspection_id}", str(w.inspection_id))
    soon = (utcnow() + timedelta(days=3)).isoformat()
    match route:
        case "POST /api/inspections":  # region A's policy (a farmer's: refused on the merits inside A)
            return Call(path, json={"policy_id": w.policy["id"], "due_at": soon})
        case "POST /api/inspections/{inspection_id}/inspector":
            return Call(path, json={"team_name": "安评技术服务队"})
        case "POST /api/inspections/{inspection_id}/appointment":
            return Call(path, json={"at": soon})
        case "POST /api/inspections/{inspection_id}/hazards":
            return Call(path, data={"description": "配电箱未上锁", "severity": "serious", "rectify_by": soon})
        case "POST /api/inspections/{inspection_id}/complete":
            return Call(path, json={"summary": "配电管理需加强"})
    return Call(path)


async def _publicity_call(route: str, w: World) -> Call:
    ids = await publicity_ids(w)
    path = route.split(" ")[1]
    match route:
        case "POST /api/publicity/notices":
            return Call(path, json={"kind": "claims_payout", "region_code": DONGGUAN_TOWNSHIP})
        case "POST /api/publicity/notices/{notice_id}/check":
            return Call(
                path.replace("{notice_id}", str(ids["draft"])),
                data={"checked_by_name": "张主任"},
                files={"file": ("stamp.png", io.BytesIO(png()), "image/png")},
            )
        case "POST /api/publicity/notices/{notice_id}/open":
            return Call(path.replace("{notice_id}", str(ids["checked"])))
        case "POST /api/publicity/notices/{notice_id}/corrections":
            body = {"row_index": 0, "fields": {"payout_amount": "10.00"}}
            return Call(path.replace("{notice_id}", str(ids["open"])), json=body)
        case "POST /api/publicity/notices/{notice_id}/board-photos":
            files = {"file": ("board.png", io.BytesIO(png()), "image/png")}
            return Call(path.replace("{notice_id}", str(ids["open"])), files=files)
        case "GET /api/publicity/objections/{objection_id}/photo":
            return Call(path.replace("{objection_id}", str(ids["objection"])))
        case "POST /api/publicity/objections/{objection_id}/answer":
            return Call(path.replace("{objection_id}", str(ids["objection"])), json={"answer": "已核实无误"})
    path = path.replace("{notice_id}", str(ids["open"])).replace("{record_id}", str(ids["record"]))
    return Call(path.replace("{part}", "html"))


def _collective_call(route: str, w: World) -> Call:
    from tests.collective_helpers import AREA, household, list_csv

    one = {
        "file": ("list.csv", io.BytesIO(list_csv([household(7002 + secrets.randbelow(5000))])), "text/csv")
    }
    form = {"product_code": "rice", "region_code": AREA}
    organiser = {"organiser_kind": "village_committee", "organiser_name": "大塘村民委员会"}
    path = route.split(" ")[1].replace("{collective_id}", str(w.collective_id))
    match route:
        case "GET /api/collective/template":
            return Call(path, params={"product_code": "rice"})
        case "POST /api/collective/lists/check" | "POST /api/collective/lists/report":
            return Call(path, data=form, files=one)
        case "POST /api/collective/lists":
            return Call(path, data={**form, **organiser}, files=one)
        case "POST /api/collective/{collective_id}/organiser-confirmation":
            stamp = {"file": ("stamp.png", io.BytesIO(png()), "image/png")}
            return Call(
                path, data={"confirmed_by_name": "李村长", "confirmed_by_title": "村委会主任"}, files=stamp
            )
        case "POST /api/collective/{collective_id}/payment":
            return Call(path, json={"method": "bank_deduction", "reference": f"TR{secrets.token_hex(4)}"})
        case "POST /api/collective/{collective_id}/households/{household_id}/objection-answer":
            return Call(path.replace("{household_id}", "1"), json={"answer": "核实无误"})
    return Call(path)


# --- the routes -------------------------------------------------------------------------------------------


def _dependency_names(dependant: Any) -> set[str]:
    names: set[str] = set()
    for dep in dependant.dependencies:
        names.add(getattr(dep.call, "__name__", ""))
        names |= _dependency_names(dep)
    return names


def staff_routes(app: FastAPI) -> list[str]:
    """``METHOD path`` of every route a staff token opens (not the bot's or the delivery workers')."""
    found = []
    for route in all_routes(app):
        if not (isinstance(route, APIRoute) and route.path.startswith("/api/")):
            continue
        if {"current_staff", "staff_or_service"} & _dependency_names(route.dependant):
            found += [f"{method} {route.path}" for method in sorted((route.methods or set()) - {"HEAD"})]
    return found


def outcome_of(response: httpx.Response, access: Access, world: World) -> str:
    if response.status_code in (401, 403, 404):
        detail = response.json().get("detail")
        if isinstance(detail, dict) and not detail.get("message"):
            return f"{response.status_code} without a text"  # a refusal says why, in the staff's language
        return str(response.status_code)
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    if response.status_code == 422 and isinstance(response.json().get("detail"), list):
        return f"request invalid: {response.text[:300]}"  # the table's request is wrong, not the route
    if access.scope == "rows" and response.status_code == 200:
        body = response.json()
        refused = body["rejected"] and all(r["reason"] == "outside_scope" for r in body["rejected"])
        return "rejected" if body["accepted"] == 0 and refused else "allowed"
    if access.scope == "list" and access.marker is not None:
        if response.status_code != 200:
            return f"list answered {response.status_code}"
        return "allowed" if access.marker(world) in response.text.replace(" ", "") else "hidden"
    return "allowed"


def test_every_staff_route_has_an_access_entry(app: FastAPI) -> None:
    routes = set(staff_routes(app))
    assert len(routes) > 50  # the walk found the included routers
    assert routes - set(ACCESS) == set(), "a staff route without an entry in ACCESS: declare who may use it"
    assert set(ACCESS) - routes == set(), "an entry in ACCESS for a route that no longer exists"


@pytest.mark.parametrize("role", ROLES)
async def test_role_against_every_staff_route_in_own_neighbour_and_national_scope(
    role: str,
    api: httpx.AsyncClient,
    db: Database,
    app: FastAPI,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
) -> None:
    world = await seed_world(api, db, admin_headers, service_headers)
    await add_principals(world, tuple(dict.fromkeys(("adjuster", role))))
    wrong: list[str] = []
    for route in staff_routes(app):
        method = route.split(" ")[0]
        for scope in SCOPES:
            call = await _call(route, world)
            response = await api.request(
                method,
                call.path,
                headers=world.headers[(role, scope)],
                json=call.json,
                data=call.data,
                files=call.files,
                params=call.params,
                content=call.content,
            )
            got = outcome_of(response, ACCESS[route], world)
            want = expected(route, role, scope)
            if got != want:
                wrong.append(
                    f"{route} as {role} in {scope}: expected {want}, got {got} {response.text[:200]}"
                )
    assert not wrong, "\n".join(wrong)


async def test_loss_photos_follow_the_claims_scope(
    api: httpx.AsyncClient, db: Database, admin_headers: dict[str, str], service_headers: dict[str, str]
) -> None:
    """A farmer's loss photo has no policy or application of its own: whoever sees the claim (any role,
    in the claim's region) downloads it; the neighbouring county gets 404, as for the claim itself."""
    world = await seed_world(api, db, admin_headers, service_headers)
    await add_principals(world, ("adjuster", "viewer"))
    path = f"/api/documents/{world.photo_id}"
    for who in (("adjuster", "A"), ("viewer", "A"), ("adjuster", "N")):
        response = await api.get(path, headers=world.headers[who])
        assert response.status_code == 200, (who, response.text)
        assert response.content == png() and response.headers["content-type"] == "image/png"
    for who in (("adjuster", "B"), ("viewer", "B")):
        assert (await api.get(path, headers=world.headers[who])).status_code == 404
        claim = await api.get(f"/api/claims/{world.claim_id}", headers=world.headers[who])
        assert claim.status_code == 404
    unattached = await api.post(
        "/api/bot/claims/media",
        headers=world.farmer,
        files={"file": ("x.png", io.BytesIO(png()), "image/png")},
    )
    # a photo attached to no claim yet is the farmer's alone: regional staff do not see it
    hidden = await api.get(
        f"/api/documents/{unattached.json()['id']}", headers=world.headers[("adjuster", "A")]
    )
    assert hidden.status_code == 404

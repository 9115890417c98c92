"""R-LIA-3 scan-to-insure (码上保): QR campaigns, their signed deep-link payloads, scans and scopes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import random
import re
import string
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import httpx
import pytest
import segno
from sqlmodel import col, func, select

from backend.db import Database, utcnow
from backend.enrollment.campaigns import (
    QR_BORDER,
    QR_SCALE,
    PayloadError,
    make_payload,
    qr_code,
    read_payload,
    resolve_scan,
)
from backend.enrollment.models import QrCampaign, QrScan
from backend.products.models import Product
from backend.settings import Settings
from backend.staff.models import AuditLog
from tests.conftest import SERVICE_TOKEN, STAFF_PASSWORD, login

DONGCHENG = "110101000000"  # 北京市东城区
XICHENG = "110102000000"  # 北京市西城区
DONGHUAMEN = "110101001000"  # 东华门街道, inside 东城区
DEEP_LINK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ALPHABET = string.ascii_letters + string.digits + "_-"
SECRET = "secret-key-for-payload-tests"


# --- fixtures and helpers --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _products(db: Database) -> None:
    """The campaign products, inserted when the catalogue loader has not put them there."""
    rows = [
        ("rice", "agricultural", "crop", "水稻", "Rice", "mu"),
        (
            "work_safety_liability",
            "liability",
            "liability",
            "安全生产责任保险",
            "Work-safety liability",
            "person",
        ),
        ("retired_cover", "agricultural", "crop", "停售产品", "Retired cover", "mu"),
    ]
    async with db.session() as session:
        for code, kind, category, name_zh, name_en, unit in rows:
            product = await session.get(Product, code)
            if product is None:
                product = Product(
                    code=code, kind=kind, category=category, name_zh=name_zh, name_en=name_en, unit=unit
                )
            product.active = code != "retired_cover"
            session.add(product)
        await session.commit()


async def make_staff(
    api: httpx.AsyncClient, admin_headers: dict[str, str], username: str, role: str, regions: list[str]
) -> tuple[int, dict[str, str]]:
    body = {"username": username, "password": STAFF_PASSWORD, "role": role, "region_codes": regions}
    created = await api.post("/api/staff/users", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    return created.json()["id"], await login(api, username, STAFF_PASSWORD)


async def open_identity(api: httpx.AsyncClient, external_id: str) -> tuple[int, dict[str, str]]:
    body = {"channel": "webchat", "external_id": external_id, "address": external_id}
    opened = await api.post(
        "/api/bot/identities", json=body, headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
    )
    assert opened.status_code == 200, opened.text
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-Tianbao-Identity": f"webchat:{external_id}"}
    return opened.json()["id"], headers


async def create_campaign(api: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("product_code", "rice")
    response = await api.post("/api/campaigns", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def scan_count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(QrScan))).one())


async def audit_rows(db: Database, action: str) -> list[AuditLog]:
    async with db.session() as session:
        query = select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))
        return list((await session.exec(query)).all())


def png_modules(png: bytes) -> list[list[bool]]:
    """Read a QR PNG back into its module matrix (dark = True), quiet zone included."""
    image_module = pytest.importorskip("PIL.Image")
    image = image_module.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    assert width == height and width % QR_SCALE == 0
    size = width // QR_SCALE
    half = QR_SCALE // 2
    return [
        [image.getpixel((x * QR_SCALE + half, y * QR_SCALE + half)) < 128 for x in range(size)]
        for y in range(size)
    ]


def expected_modules(link: str) -> list[list[bool]]:
    qr = segno.make(link, error="m", micro=False, boost_error=False)
    assert qr.error == "M" and not qr.is_micro
    matrix = [[bool(v) for v in row] for row in qr.matrix]
    blank = [False] * (len(matrix) + 2 * QR_BORDER)
    edge = [False] * QR_BORDER
    return (
        [list(blank) for _ in range(QR_BORDER)]
        + [edge + row + edge for row in matrix]
        + [list(blank) for _ in range(QR_BORDER)]
    )


# --- the signed payload ----------------------------------------------------------------------------------


def test_r_lia_3_payload_roundtrip_fits_telegram_deep_links() -> None:
    rng = random.Random(3)
    ids = [*range(1, 3000), *(2**n - 1 for n in range(1, 64)), *(2**n for n in range(1, 63))]
    ids += [rng.randrange(1, 2**63) for _ in range(2000)]
    for campaign_id in ids:
        payload = make_payload(campaign_id, SECRET)
        assert DEEP_LINK.match(payload), payload
        assert len(payload) <= 64
        assert read_payload(payload, SECRET) == campaign_id
    with pytest.raises(ValueError):
        make_payload(0, SECRET)


def test_r_lia_3_payload_from_another_secret_is_tampered() -> None:
    payload = make_payload(42, "another-secret")
    with pytest.raises(PayloadError) as refused:
        read_payload(payload, SECRET)
    assert refused.value.code == "tampered"


def test_r_lia_3_any_changed_character_is_tampered_or_malformed() -> None:
    outside = ["!", " ", ".", "=", "+", "/", "é", "中", "\n"]
    for campaign_id in (1, 35, 36, 1234, 987654321, 2**62 + 17):
        payload = make_payload(campaign_id, SECRET)
        for position, original in enumerate(payload):
            for replacement in [*ALPHABET, *outside]:
                if replacement == original:
                    continue
                changed = payload[:position] + replacement + payload[position + 1 :]
                with pytest.raises(PayloadError) as refused:
                    read_payload(changed, SECRET)
                assert refused.value.code in {"tampered", "malformed"}, (changed, refused.value.code)
        for broken in ("", payload[:-1], payload + "A", payload.upper(), "x" * 65, payload + "_" * 30):
            with pytest.raises(PayloadError) as refused:
                read_payload(broken, SECRET)
            assert refused.value.code in {"tampered", "malformed"}


def test_r_lia_3_payload_key_is_derived_not_the_raw_secret() -> None:
    payload = make_payload(1, SECRET)
    tag = payload.split("_", 1)[1]
    raw = hmac.new(SECRET.encode(), b"q:1", hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(raw[:18]).decode() != tag


# --- creating campaigns and their QR codes ---------------------------------------------------------------


async def test_r_lia_3_admin_creates_campaign_with_payload_links_and_qr_codes(
    api: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    agent_id, _ = await make_staff(api, admin_headers, "agent_dc", "agent", [DONGCHENG])
    campaign = await create_campaign(
        api, admin_headers, region_code=DONGHUAMEN, agent_id=agent_id, title="东华门水稻 2025"
    )
    payload = campaign["payload"]
    assert DEEP_LINK.match(payload)
    assert read_payload(payload, settings.secret_key) == campaign["id"]
    assert campaign["telegram_link"] == f"https://t.me/{settings.bot_username}?start={payload}"
    assert campaign["webchat_link"] == f"{settings.public_url}/chat?start={payload}"
    assert campaign["agent_id"] == agent_id and campaign["region_code"] == DONGHUAMEN
    assert campaign["active"] is True

    png = await api.get(f"/api/campaigns/{campaign['id']}/qr.png", headers=admin_headers)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and len(png.content) > 200
    assert png_modules(png.content) == expected_modules(campaign["telegram_link"])
    assert qr_code(campaign["telegram_link"]).error == "M"

    web_png = await api.get(
        f"/api/campaigns/{campaign['id']}/qr.png", headers=admin_headers, params={"target": "webchat"}
    )
    assert png_modules(web_png.content) == expected_modules(campaign["webchat_link"])

    svg = await api.get(f"/api/campaigns/{campaign['id']}/qr.svg", headers=admin_headers)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.text)
    assert root.tag.endswith("svg")
    assert (
        await api.get(
            f"/api/campaigns/{campaign['id']}/qr.svg", headers=admin_headers, params={"target": "nope"}
        )
    ).status_code == 422

    fetched = await api.get(f"/api/campaigns/{campaign['id']}", headers=admin_headers)
    assert fetched.status_code == 200 and fetched.json()["payload"] == payload
    listed = await api.get("/api/campaigns", headers=admin_headers)
    assert [c["id"] for c in listed.json()] == [campaign["id"]]


async def test_r_lia_3_refused_creations_name_the_reason_and_write_nothing(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    agent_id, _ = await make_staff(api, admin_headers, "agent_dc", "agent", [DONGCHENG])
    adjuster_id, _ = await make_staff(api, admin_headers, "adjuster_dc", "adjuster", [DONGCHENG])
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"product_code": "no_such_product"}, 422, "unknown_product"),
        ({"product_code": "retired_cover"}, 422, "unknown_product"),
        ({"product_code": "rice", "region_code": "990000000000"}, 422, "unknown_region"),
        ({"product_code": "rice", "agent_id": adjuster_id}, 422, "unknown_agent"),
        ({"product_code": "rice", "agent_id": 99999}, 422, "unknown_agent"),
        ({"product_code": "rice", "region_code": XICHENG, "agent_id": agent_id}, 422, "agent_outside_region"),
        ({"product_code": "rice", "expires_at": past}, 422, "expiry_in_past"),
    ]
    for body, status_code, code in cases:
        response = await api.post("/api/campaigns", json=body, headers=admin_headers)
        assert response.status_code == status_code, (body, response.text)
        assert response.json()["detail"]["code"] == code
        assert response.json()["detail"]["message"]
    naive = await api.post(
        "/api/campaigns",
        json={"product_code": "rice", "expires_at": "2099-01-01T00:00:00"},
        headers=admin_headers,
    )
    assert naive.status_code == 422  # a time without its zone is ambiguous
    async with db.session() as session:
        assert (await session.exec(select(func.count()).select_from(QrCampaign))).one() == 0
    assert await audit_rows(db, "campaigns.create") == []


async def test_r_lia_3_agent_cannot_create_or_see_another_countys_campaign(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    agent_id, agent = await make_staff(api, admin_headers, "agent_dc", "agent", [DONGCHENG])
    _, viewer = await make_staff(api, admin_headers, "viewer_dc", "viewer", [DONGCHENG])

    outside = await api.post(
        "/api/campaigns", json={"product_code": "rice", "region_code": XICHENG}, headers=agent
    )
    assert outside.status_code == 403 and outside.json()["detail"]["code"] == "outside_scope"
    nowhere = await api.post("/api/campaigns", json={"product_code": "rice"}, headers=agent)
    assert nowhere.status_code == 403 and nowhere.json()["detail"]["code"] == "outside_scope"

    own = await create_campaign(api, agent, region_code=DONGHUAMEN)
    assert own["agent_id"] == agent_id  # an agent's own poster is attributed to them
    xicheng = await create_campaign(api, admin_headers, region_code=XICHENG)
    national = await create_campaign(api, admin_headers)

    assert [c["id"] for c in (await api.get("/api/campaigns", headers=agent)).json()] == [own["id"]]
    assert [c["id"] for c in (await api.get("/api/campaigns", headers=viewer)).json()] == [own["id"]]
    admin_ids = {c["id"] for c in (await api.get("/api/campaigns", headers=admin_headers)).json()}
    assert admin_ids == {own["id"], xicheng["id"], national["id"]}

    for hidden in (xicheng["id"], national["id"], 99999):
        for suffix in ("", "/qr.png", "/qr.svg", "/scans"):
            response = await api.get(f"/api/campaigns/{hidden}{suffix}", headers=agent)
            assert response.status_code == 404, (hidden, suffix)
            assert response.json()["detail"]["code"] == "not_found"
        refused = await api.post(f"/api/campaigns/{hidden}/deactivate", headers=agent)
        assert refused.status_code == 404
    assert (await api.get(f"/api/campaigns/{own['id']}", headers=agent)).status_code == 200

    # A viewer sees the campaigns of their county but may not create or stop them.
    assert (await api.get(f"/api/campaigns/{own['id']}/qr.png", headers=viewer)).status_code == 200
    assert (
        await api.post("/api/campaigns", json={"product_code": "rice"}, headers=viewer)
    ).status_code == 403
    assert (await api.post(f"/api/campaigns/{own['id']}/deactivate", headers=viewer)).status_code == 403


async def test_r_lia_3_create_and_deactivate_are_audited(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    _, agent = await make_staff(api, admin_headers, "agent_dc", "agent", [DONGCHENG])
    campaign = await create_campaign(api, agent, region_code=DONGCHENG, product_code="work_safety_liability")
    stopped = await api.post(f"/api/campaigns/{campaign['id']}/deactivate", headers=admin_headers)
    assert stopped.status_code == 200 and stopped.json()["active"] is False
    again = await api.post(f"/api/campaigns/{campaign['id']}/deactivate", headers=admin_headers)
    assert again.status_code == 200 and again.json()["active"] is False

    created = await audit_rows(db, "campaigns.create")
    assert [(a.actor, a.target_type, a.target_id) for a in created] == [
        ("agent_dc", "qr_campaign", str(campaign["id"]))
    ]
    assert created[0].detail["product_code"] == "work_safety_liability"
    assert created[0].detail["region_code"] == DONGCHENG
    deactivated = await audit_rows(db, "campaigns.deactivate")
    assert [(a.actor, a.target_id) for a in deactivated] == [("admin", str(campaign["id"]))]


async def test_r_lia_3_campaign_routes_need_a_caller(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    campaign = await create_campaign(api, admin_headers)
    cid = campaign["id"]
    anonymous = [
        ("POST", "/api/campaigns"),
        ("GET", "/api/campaigns"),
        ("GET", f"/api/campaigns/{cid}"),
        ("GET", f"/api/campaigns/{cid}/qr.png"),
        ("GET", f"/api/campaigns/{cid}/qr.svg"),
        ("GET", f"/api/campaigns/{cid}/scans"),
        ("POST", f"/api/campaigns/{cid}/deactivate"),
        ("POST", "/api/bot/scans"),
    ]
    for method, path in anonymous:
        assert (await api.request(method, path)).status_code == 401, (method, path)
    # Staff tokens do not speak for a chat identity, and the service token alone is not staff.
    staff_scan = await api.post(
        "/api/bot/scans", json={"payload": campaign["payload"]}, headers=admin_headers
    )
    assert staff_scan.status_code == 401
    service_list = await api.get("/api/campaigns", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
    assert service_list.status_code == 401


# --- scans -----------------------------------------------------------------------------------------------


async def test_r_lia_3_valid_scan_records_campaign_agent_identity_and_time(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    agent_id, _ = await make_staff(api, admin_headers, "agent_dc", "agent", [DONGCHENG])
    campaign = await create_campaign(
        api,
        admin_headers,
        region_code=DONGHUAMEN,
        agent_id=agent_id,
        expires_at=(utcnow() + timedelta(days=30)).isoformat(),
    )
    identity_id, bot = await open_identity(api, "visitor-1")

    before = utcnow()
    scanned = await api.post("/api/bot/scans", json={"payload": campaign["payload"]}, headers=bot)
    after = utcnow()
    assert scanned.status_code == 200, scanned.text
    assert scanned.json() == {
        "campaign_id": campaign["id"],
        "product_code": "rice",
        "region_code": DONGHUAMEN,
        "agent_id": agent_id,
    }
    async with db.session() as session:
        scans = list((await session.exec(select(QrScan))).all())
    assert len(scans) == 1
    scan = scans[0]
    assert (scan.campaign_id, scan.identity_id, scan.agent_id) == (campaign["id"], identity_id, agent_id)
    assert scan.scanned_at.tzinfo is not None and before <= scan.scanned_at <= after

    second = await api.post("/api/bot/scans", json={"payload": campaign["payload"]}, headers=bot)
    assert second.status_code == 200
    stats = await api.get(f"/api/campaigns/{campaign['id']}/scans", headers=admin_headers)
    assert stats.status_code == 200
    assert stats.json()["count"] == 2 and len(stats.json()["last"]) == 2
    assert stats.json()["last"][0]["identity_id"] == identity_id


async def test_r_lia_3_refused_scans_name_the_reason_and_write_nothing(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database, settings: Settings
) -> None:
    _, bot = await open_identity(api, "visitor-2")
    live = await create_campaign(api, admin_headers, region_code=DONGCHENG)
    ending = await create_campaign(
        api, admin_headers, region_code=DONGCHENG, expires_at=(utcnow() + timedelta(hours=1)).isoformat()
    )
    stopped = await create_campaign(api, admin_headers, region_code=DONGCHENG)
    assert (
        await api.post(f"/api/campaigns/{stopped['id']}/deactivate", headers=admin_headers)
    ).status_code == 200
    async with db.session() as session:
        row = await session.get(QrCampaign, ending["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
        await session.commit()

    last = live["payload"][-1]
    cases = {
        "tampered": live["payload"][:-1] + ("A" if last != "A" else "B"),
        "malformed": "not-a-campaign",
        "unknown": make_payload(99999, settings.secret_key),
        "expired": ending["payload"],
        "inactive": stopped["payload"],
    }
    for code, payload in cases.items():
        response = await api.post("/api/bot/scans", json={"payload": payload}, headers=bot)
        assert response.status_code == 422, (code, response.text)
        assert response.json()["detail"]["code"] == code
        assert response.json()["detail"]["message"]
    too_long = await api.post("/api/bot/scans", json={"payload": "q" * 100}, headers=bot)
    assert too_long.status_code == 422 and too_long.json()["detail"]["code"] == "malformed"
    assert await scan_count(db) == 0


async def test_r_lia_3_scan_of_a_withdrawn_product_is_inactive(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database, settings: Settings
) -> None:
    identity_id, _ = await open_identity(api, "visitor-3")
    campaign = await create_campaign(api, admin_headers, region_code=DONGCHENG)
    async with db.session() as session:
        product = await session.get(Product, "rice")
        assert product is not None
        product.active = False
        session.add(product)
        await session.commit()
    async with db.session() as session:
        with pytest.raises(PayloadError) as refused:
            await resolve_scan(
                session=session,
                payload=campaign["payload"],
                secret=settings.secret_key,
                identity_id=identity_id,
            )
    assert refused.value.code == "inactive"
    assert await scan_count(db) == 0

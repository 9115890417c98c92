"""Staff authentication, roles, region scopes and the audit trail."""

from __future__ import annotations

import re

import httpx

from backend.security import StaffPrincipal, significant_prefix
from tests.conftest import ADMIN_PASSWORD, login
from tests.routes import all_routes


async def test_token_with_right_password_and_refusal_with_wrong(api: httpx.AsyncClient) -> None:
    ok = await api.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert ok.status_code == 200 and ok.json()["token_type"] == "bearer"
    wrong = await api.post("/api/auth/token", data={"username": "admin", "password": "nope-nope-nope"})
    assert wrong.status_code == 401


async def test_routes_are_authenticated_by_default(api: httpx.AsyncClient, app) -> None:
    open_paths = {"/healthz", "/api/auth/token", "/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"}
    checked = 0
    for route in all_routes(app):
        path = re.sub(r"\{[^}]+\}", "1", getattr(route, "path", ""))
        methods: set[str] = getattr(route, "methods", set()) or set()
        if path in open_paths or not path.startswith("/api"):
            continue
        for method in methods - {"HEAD", "OPTIONS"}:
            checked += 1
            response = await api.request(method, path)
            assert response.status_code == 401, (
                f"{method} {path} answered {response.status_code} without a token"
            )
    assert checked > 80  # the walk reached the included routers' routes


async def test_admin_creates_scoped_staff_and_the_write_is_audited(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {
        "username": "adj_dg",
        "password": "adjuster-pass-1",
        "role": "adjuster",
        "region_codes": ["441900000000"],
        "phone": "13812345678",
    }
    created = await api.post("/api/staff/users", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert created.json()["phone_masked"] == "138****5678"
    audit = await api.get("/api/staff/audit", headers=admin_headers, params={"action": "staff.create"})
    entries = [e for e in audit.json() if e["detail"].get("username") == "adj_dg"]
    assert entries and entries[0]["actor"] == "admin"
    assert "adjuster-pass-1" not in str(audit.json())


async def test_non_admin_cannot_manage_staff(api: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    body = {
        "username": "viewer1",
        "password": "viewer-pass-1",
        "role": "viewer",
        "region_codes": ["110000000000"],
    }
    assert (await api.post("/api/staff/users", json=body, headers=admin_headers)).status_code == 201
    viewer = await login(api, "viewer1", "viewer-pass-1")
    assert (await api.get("/api/staff/users", headers=viewer)).status_code == 403
    assert (await api.get("/api/staff/me", headers=viewer)).json()["role"] == "viewer"


async def test_staff_without_region_scope_is_refused(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"username": "agent0", "password": "agent-pass-01", "role": "agent", "region_codes": []}
    response = await api.post("/api/staff/users", json=body, headers=admin_headers)
    assert response.status_code == 422 and response.json()["detail"]["code"] == "region_scope_required"
    assert "辖区" in response.json()["detail"]["message"]  # the staff member's language, from messages/


async def test_a_taken_username_is_a_conflict_named_in_the_callers_language(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {
        "username": "agent1",
        "password": "agent-pass-01",
        "role": "agent",
        "region_codes": ["110101000000"],
    }
    assert (await api.post("/api/staff/users", json=body, headers=admin_headers)).status_code == 201
    again = await api.post("/api/staff/users", json=body, headers={**admin_headers, "Accept-Language": "en"})
    assert again.status_code == 409 and again.json()["detail"]["code"] == "username_taken"
    assert again.json()["detail"]["message"] == "the username agent1 is taken"


async def test_disabled_account_token_stops_working(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {
        "username": "agent1",
        "password": "agent-pass-01",
        "role": "agent",
        "region_codes": ["441900000000"],
    }
    user_id = (await api.post("/api/staff/users", json=body, headers=admin_headers)).json()["id"]
    agent = await login(api, "agent1", "agent-pass-01")
    assert (await api.get("/api/staff/me", headers=agent)).status_code == 200
    await api.patch(f"/api/staff/users/{user_id}", json={"active": False}, headers=admin_headers)
    assert (await api.get("/api/staff/me", headers=agent)).status_code == 401


def test_region_scope_covers_children_only() -> None:
    dongguan = StaffPrincipal(user_id=1, username="a", role="agent", region_codes=("441900000000",))
    assert significant_prefix("441900000000") == "4419"
    assert significant_prefix("110101001000") == "110101001"
    assert dongguan.covers_region("441900003000")
    assert not dongguan.covers_region("442000001000")
    guangdong = StaffPrincipal(user_id=2, username="b", role="agent", region_codes=("440000000000",))
    assert guangdong.covers_region("441900003000") and not guangdong.covers_region("110101001000")
    national = StaffPrincipal(user_id=3, username="c", role="admin")
    assert national.covers_region("110101001000")


async def test_bot_service_token_cannot_use_staff_routes(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    assert (await api.get("/api/staff/users", headers=service_headers)).status_code == 401


async def test_bot_identity_routes_need_service_token_and_identity(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    opened = await api.post(
        "/api/bot/identities",
        headers=service_headers,
        json={"channel": "telegram", "external_id": "42", "address": "42", "language_code": "en"},
    )
    assert opened.status_code == 200 and opened.json()["locale"] == "en"
    assert (await api.get("/api/bot/me", headers=admin_headers)).status_code == 401
    assert (await api.get("/api/bot/me", headers=service_headers)).status_code == 400
    me = await api.get("/api/bot/me", headers={**service_headers, "X-Tianbao-Identity": "telegram:42"})
    assert me.json()["external_id"] == "42"
    unknown = await api.get("/api/bot/me", headers={**service_headers, "X-Tianbao-Identity": "telegram:43"})
    assert unknown.status_code == 404

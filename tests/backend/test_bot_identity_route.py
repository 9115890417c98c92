"""The /start route parses its own token and body: it must refuse and document exactly as a FastAPI
body parameter and the service-token dependency would."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response

from backend.deps import RequestRoute

BODY = {"channel": "webchat", "external_id": "route-1", "address": "route-1", "first_name": "王"}


async def test_open_identity_needs_the_service_token(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for headers in ({}, admin_headers, {"Authorization": "Basic c2VydmljZQ=="}):
        refused = await api.post("/api/bot/identities", json=BODY, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json() == {"detail": "service token required"}


async def test_open_identity_refuses_a_bad_body_as_fastapi_does(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    wrong = await api.post("/api/bot/identities", json={**BODY, "channel": "sms"}, headers=service_headers)
    assert wrong.status_code == 422
    [error] = wrong.json()["detail"]
    assert error["loc"] == ["body", "channel"] and error["type"] == "string_pattern_mismatch"
    missing = await api.post("/api/bot/identities", json={"channel": "webchat"}, headers=service_headers)
    assert missing.status_code == 422
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {
        ("body", "external_id"),
        ("body", "address"),
    }
    garbled = await api.post(
        "/api/bot/identities",
        content=b'{"channel": ',
        headers={**service_headers, "content-type": "application/json"},
    )
    assert garbled.status_code == 422 and garbled.json()["detail"][0]["type"] == "json_invalid"
    accepted = await api.post("/api/bot/identities", json=BODY, headers=service_headers)
    assert accepted.status_code == 200 and accepted.json()["external_id"] == "route-1"


async def test_open_identity_is_documented_with_its_body_answer_and_security(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    operation = schema["paths"]["/api/bot/identities"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["channel", "external_id", "address"]
    assert set(body["properties"]) == {"channel", "external_id", "address", "first_name", "language_code"}
    assert operation["security"] == [{"OAuth2PasswordBearer": []}]
    assert "OAuth2PasswordBearer" in schema["components"]["securitySchemes"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/IdentityOut"}


async def _endpoint(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")


async def _dependency() -> None:
    return None


def test_a_request_route_refuses_dependencies_it_would_skip() -> None:
    """A RequestRoute calls its endpoint as it is: a dependency on the route, or one given where its
    router is included (an auth check, say), would never run, so building such a route fails."""
    on_route = APIRouter()
    with pytest.raises(TypeError, match="no dependencies"):
        on_route.add_api_route(
            "/x",
            _endpoint,
            methods=["POST"],
            dependencies=[Depends(_dependency)],
            route_class_override=RequestRoute,
        )
    included = APIRouter()
    included.add_api_route("/x", _endpoint, methods=["POST"], route_class_override=RequestRoute)
    app = FastAPI()
    with pytest.raises(TypeError, match="no dependencies"):
        app.include_router(included, dependencies=[Depends(_dependency)])
        app.openapi()  # included routes may be built lazily

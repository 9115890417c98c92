"""Bad input gets a clear 4xx, never a 500 (issue 11): JSON only Python accepts, ids past their column,
bodies past their cap, paging past its limit, and error bodies that never echo the input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DataError

from backend.edge import strict_json_error
from backend.errors import MAX_ERRORS

JSON = {"content-type": "application/json"}
STAFF_BODY = (
    b'{"username":"abc","password":"Wheat-Harvest-7391-rain","full_name":%s,"role":"admin","national":true}'
)
RESULT_BODY = b'{"worker_id":"w","results":[{"id":1,"outcome":"retry","retry_after":%s}]}'
IDENTITY_BODY = b'{"channel":"webchat","external_id":%s,"address":"a"}'


def _json_refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "json_invalid" and error["loc"] == ["body"]


@pytest.mark.parametrize("value", [b'"\\ud800"', b'"x\\uDFFFy"', b'"\xed\xa0\x80"'])
async def test_an_unpaired_surrogate_in_a_body_parameter_is_a_422(
    api: httpx.AsyncClient, admin_headers: dict[str, str], value: bytes
) -> None:
    # Before: UnicodeEncodeError in the database driver, a 500.
    response = await api.post(
        "/api/staff/users", content=STAFF_BODY % value, headers={**admin_headers, **JSON}
    )
    _json_refused(response)


@pytest.mark.parametrize("value", [b'"\\ud800"', b'"\xed\xa0\x80"'])
async def test_an_unpaired_surrogate_on_the_start_route_is_a_422(
    api: httpx.AsyncClient, service_headers: dict[str, str], value: bytes
) -> None:
    """The hand-parsed route every /start takes (``json_body``); raw surrogate bytes were a 500."""
    response = await api.post(
        "/api/bot/identities", content=IDENTITY_BODY % value, headers={**service_headers, **JSON}
    )
    _json_refused(response)


@pytest.mark.parametrize(
    "value",
    [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1E+400", b"1" + b"0" * 400 + b".5"],
)
async def test_nan_and_infinity_are_a_422(
    api: httpx.AsyncClient, service_headers: dict[str, str], value: bytes
) -> None:
    # Before: NaN was a 500 (the response encoder), Infinity was accepted as a retry delay.
    response = await api.post(
        "/api/outbox/results", content=RESULT_BODY % value, headers={**service_headers, **JSON}
    )
    _json_refused(response)


def test_the_strict_check_passes_what_json_allows() -> None:
    assert not strict_json_error(b'{"name":"NaN is a word","emoji":"\\ud83d\\ude00","zh":"\\u4e2d"}')
    assert not strict_json_error('{"name":"王"}'.encode())
    assert not strict_json_error(b'{"broken": ')  # malformed JSON is the route's own 422, with a position
    assert strict_json_error(b'{"a":[1,NaN]}')
    assert strict_json_error(b'{"a":1e400}')
    assert not strict_json_error(b'{"a":1e300,"b":"e+999 in a text"}')


async def test_a_surrogate_pair_is_one_character_and_accepted(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api.post(
        "/api/staff/users", content=STAFF_BODY % b'"\\ud83c\\udf3e"', headers={**admin_headers, **JSON}
    )
    assert response.status_code == 201, response.text
    assert response.json()["full_name"] == "\N{EAR OF RICE}"


@pytest.mark.parametrize("claim_id", ["2147483648", "9223372036854775808", "99999999999999999999", "0"])
async def test_an_id_past_its_column_is_a_422(
    api: httpx.AsyncClient, admin_headers: dict[str, str], claim_id: str
) -> None:
    # Before: 2^63 and up was an OverflowError from SQLite (500); 2^31 one from PostgreSQL's int4.
    response = await api.get(f"/api/claims/{claim_id}", headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "claim_id"]


async def test_an_id_in_a_body_is_bounded_too(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    body = b'{"worker_id":"w","results":[{"id":9223372036854775808,"outcome":"sent"}]}'
    response = await api.post("/api/outbox/results", content=body, headers={**service_headers, **JSON})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "results", 0, "id"]


async def test_a_value_the_database_refuses_is_a_422_in_the_callers_language(app: FastAPI) -> None:
    """The net under the bounds: any value the schema let through and the driver refused."""

    @app.get("/test/overflow")
    async def overflow() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    @app.get("/test/data-error")
    async def data_error() -> None:
        raise DataError("INSERT ...", {}, Exception("value out of int32 range"))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for path in ("/test/overflow", "/test/data-error"):
            response = await client.get(path, headers={"accept-language": "en"})
            assert response.status_code == 422, response.text
            assert response.json()["detail"]["code"] == "value_out_of_range"
            assert response.json()["detail"]["message"] == "a value is out of the allowed range"


@pytest.mark.parametrize(
    "path",
    [
        "/api/staff/audit?limit=-1",
        "/api/staff/audit?limit=0",
        "/api/staff/audit?limit=1001",
        "/api/outbox?limit=-1",
    ],
)
async def test_paging_past_its_limits_is_a_422(
    api: httpx.AsyncClient, admin_headers: dict[str, str], path: str
) -> None:
    # Before: limit=-1 was LIMIT -1, every row, past the 1,000-row cap.
    response = await api.get(path, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_a_validation_error_never_echoes_the_input(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    big = "x" * 40_000  # five of them: under the body cap, each far past its field's limit
    response = await api.post(
        "/api/staff/users",
        json={"username": big, "password": big, "full_name": big, "role": big, "region_codes": [big]},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert len(response.content) < 4_000, len(response.content)
    for error in response.json()["detail"]:
        assert set(error) == {"type", "loc", "msg"}


async def test_a_validation_error_lists_a_bounded_number_of_errors(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    results = [{"id": "x", "outcome": "?"} for _ in range(500)]
    response = await api.post(
        "/api/outbox/results", json={"worker_id": "w", "results": results}, headers=service_headers
    )
    assert response.status_code == 422
    assert len(response.json()["detail"]) == MAX_ERRORS


async def test_a_body_declared_past_the_cap_is_refused_before_it_is_read(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        for _ in range(100):
            read += 1
            yield b"x" * 1_000_000

    headers = {**admin_headers, **JSON, "content-length": str(100_000_000), "accept-language": "zh-CN"}
    response = await api.post("/api/staff/users", content=body(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["detail"]["code"] == "body_too_large"
    assert "262144" in response.json()["detail"]["message"] and "请求" in response.json()["detail"]["message"]
    assert read <= 1  # refused on the header (httpx may have pulled the first chunk)
    assert len(response.content) < 1_000


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"]
)
async def test_a_streamed_body_past_the_cap_is_refused_as_it_streams(
    api: httpx.AsyncClient, admin_headers: dict[str, str], content_type: str
) -> None:
    read = 0

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal read
        for _ in range(100):
            read += 1
            yield b"x" * 100_000

    headers = {**admin_headers, "content-type": content_type, "accept-language": "en"}
    response = await api.post("/api/staff/users", content=body(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["detail"]["message"] == "the request body is too large (at most 262144 bytes)"
    assert read < 10


async def test_an_upload_past_the_upload_cap_is_refused_and_one_under_it_reaches_the_route(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    big = b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024)
    response = await api.post(
        "/api/bot/documents", files={"file": ("a.jpg", big, "image/jpeg")}, headers=service_headers
    )
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "body_too_large"
    # A file over the JSON cap but under the upload cap is the route's to judge (its own 10 MB limit).
    small = b"\xff\xd8\xff" + b"\0" * (1024 * 1024)
    response = await api.post(
        "/api/bot/documents", files={"file": ("a.jpg", small, "image/jpeg")}, headers=service_headers
    )
    assert response.status_code != 413, response.text


async def test_a_household_list_of_100000_rows_fits_its_larger_cap_and_nothing_else_does(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """A 100,000-row CSV list is about 11 MB: past the general upload cap, inside the list routes' own."""
    big = b"x" * (12 * 1024 * 1024)
    listed = await api.post(
        "/api/collective/lists/check",
        data={"product_code": "rice", "region_code": "441900003000"},
        files={"file": ("list.xlsx", big)},
        headers=admin_headers,
    )
    # The route reads it and says what is wrong with it (one field of 12 MB is no list), never a 500.
    assert listed.status_code == 422 and listed.json()["detail"]["code"] == "list_unreadable", listed.text
    past = await api.post(
        "/api/collective/lists/check",
        data={"product_code": "rice", "region_code": "441900003000"},
        files={"file": ("list.xlsx", b"x" * (33 * 1024 * 1024))},
        headers=admin_headers,
    )
    assert past.status_code == 413 and past.json()["detail"]["code"] == "body_too_large"
    # Without a staff token the list routes take no more than any upload: anonymous 12 MB bodies stop here.
    anonymous = await api.post(
        "/api/collective/lists/check",
        data={"product_code": "rice", "region_code": "441900003000"},
        files={"file": ("list.xlsx", big)},
        headers={"Authorization": "Bearer forged.token.here"},
    )
    assert anonymous.status_code == 413 and anonymous.json()["detail"]["code"] == "body_too_large"


async def test_every_operation_declares_the_error_bodies_it_sends(app: FastAPI) -> None:
    schema = app.openapi()
    assert set(schema["components"]["schemas"]["ErrorOut"]["properties"]) == {"detail"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code in ("401", "403", "404", "409", "413", "422"):
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)

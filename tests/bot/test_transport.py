"""The two ways a backend call travels: straight into the ASGI app, or over HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, File, Form, Header, Request, UploadFile
from fastapi.responses import StreamingResponse

from bot.client import BackendClient, BackendError
from bot.transport import BackendUnavailable, HttpTransport, InProcessTransport


def _echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request, x_probe: str = Header(default="")) -> dict[str, object]:
        return {
            "query": dict(request.query_params.multi_items()),
            "body": await request.json(),
            "probe": x_probe,
            "host": request.headers["host"],
        }

    @app.post("/upload")
    async def upload(file: UploadFile = File(...), kind: str = Form(...)) -> dict[str, object]:
        data = await file.read()
        return {"name": file.filename, "type": file.content_type, "size": len(data), "kind": kind}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for part in (b"ab", b"cd", b"ef"):
                yield part

        return StreamingResponse(chunks(), media_type="application/pdf", headers={"X-Part": "3"})

    @app.get("/boom")
    async def boom() -> None:
        raise LookupError("app bug")

    return app


async def test_in_process_call_carries_query_json_and_headers() -> None:
    transport = InProcessTransport(_echo_app())
    reply = await transport.send(
        "POST",
        "/echo?a=1",
        headers={"X-Probe": "yes"},
        json={"name": "王大明"},
        params={"b": "2"},
    )
    assert reply.status_code == 200
    assert reply.json() == {
        "query": {"a": "1", "b": "2"},
        "body": {"name": "王大明"},
        "probe": "yes",
        "host": "backend",
    }
    assert reply.headers["content-type"] == "application/json"


async def test_in_process_upload_is_real_multipart() -> None:
    transport = InProcessTransport(_echo_app())
    reply = await transport.send(
        "POST",
        "/upload",
        headers={},
        files={"file": ("photo.jpg", b"\xff\xd8" + b"0" * 1000, "image/jpeg")},
        data={"kind": "authorisation"},
    )
    assert reply.json() == {"name": "photo.jpg", "type": "image/jpeg", "size": 1002, "kind": "authorisation"}


async def test_in_process_streamed_body_is_collected_whole() -> None:
    reply = await InProcessTransport(_echo_app()).send("GET", "/stream", headers={})
    assert reply.content == b"abcdef" and reply.headers["x-part"] == "3"


async def test_an_app_error_reaches_the_caller_as_it_does_with_httpx() -> None:
    with pytest.raises(LookupError):
        await InProcessTransport(_echo_app()).send("GET", "/boom", headers={})


async def test_refusals_become_backend_errors_with_their_code(app) -> None:
    client = BackendClient.for_app(app, service_token="wrong-token")
    with pytest.raises(BackendError) as refused:
        await client.region_children("110000000000")
    assert refused.value.status == 401


async def test_an_unreachable_backend_is_unavailable_not_a_crash() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = HttpTransport(f"http://127.0.0.1:{port}", timeout=2.0)
    try:
        with pytest.raises(BackendUnavailable):
            await transport.send("GET", "/healthz", headers={})
    finally:
        await transport.close()

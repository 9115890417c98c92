"""How a backend call travels: over HTTP to ``TIANBAO_BACKEND_URL``, or straight into the ASGI app.

Embedded (``tianbao serve``) the backend lives in the same process. httpx's ``ASGITransport`` would
work there too, but the httpx client machinery around it (request and URL models, header merging,
cookies, auth and redirect hooks, response streams) costs about 0.3 ms a call on these machines, more
than FastAPI's own routing, validation and serialisation. Every chat step makes a backend call, so the
in-process transport speaks ASGI to the app directly. The request still goes through the whole app:
middleware, routing, authentication, validation, exception handlers and response models; only the
client side is leaner.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel

Params = Mapping[str, Any] | None
Files = Mapping[str, tuple[str, bytes, str]] | None
FormData = Mapping[str, str] | None
Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class BackendUnavailable(Exception):
    """The backend could not be reached (network, timeout, 5xx)."""


@dataclass(frozen=True)
class BackendReply:
    """The part of an HTTP response the bot reads: status, headers (lower-case names) and body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class BackendTransport(Protocol):
    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        params: Params = None,
        files: Files = None,
        data: FormData = None,
    ) -> BackendReply:
        """One request; ``json`` is a JSON-able value or a pydantic model (sent as its JSON)."""
        ...

    async def close(self) -> None: ...


class HttpTransport:
    """A backend in another process, reached over HTTP."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        params: Params = None,
        files: Files = None,
        data: FormData = None,
    ) -> BackendReply:
        content: bytes | None = None
        if isinstance(json, BaseModel):
            content, json = json_bytes(json), None
            headers = {**headers, "content-type": "application/json"}
        try:
            response = await self.http.request(
                method,
                path,
                headers=headers,
                json=json,
                content=content,
                params=params,
                files=files,
                data=data,
            )
        except httpx.HTTPError as exc:
            raise BackendUnavailable(str(exc)) from exc
        return BackendReply(response.status_code, response.headers, response.content)

    async def close(self) -> None:
        await self.http.aclose()


class InProcessTransport:
    """The backend app in this process, called through ASGI with no socket and no HTTP client.

    Exceptions the app raises propagate to the caller, as they do with httpx's ASGI transport.
    """

    def __init__(self, app: AsgiApp, *, host: str = "backend") -> None:
        self.app = app
        self.host = host.encode()

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        params: Params = None,
        files: Files = None,
        data: FormData = None,
    ) -> BackendReply:
        path, _, query = path.partition("?")
        if params:
            query = "&".join(filter(None, (query, urlencode(params, doseq=True))))
        body, content_type = _encode_body(method, path, json=json, files=files, data=data)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": _raw_headers(self.host, headers, body, content_type),
            "server": (self.host.decode(), 80),
            "client": ("127.0.0.1", 0),
        }
        response = _ResponseCollector()
        await self.app(scope, _single_body(body), response.on_message)
        return response.reply()

    async def close(self) -> None:
        return None


def _encode_body(
    method: str, path: str, *, json: Any, files: Files, data: FormData
) -> tuple[bytes, str | None]:
    if files or data:
        # Multipart is rare (photo uploads): let httpx encode it rather than keep a second encoder.
        request = httpx.Request(method, f"http://backend{path}", files=files, data=data)
        return request.read(), request.headers.get("content-type")
    if json is None:
        return b"", None
    return json_bytes(json), "application/json"


def json_bytes(value: Any) -> bytes:
    """A request body: a pydantic model serialises itself (one step, in Rust), anything else by json."""
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode()
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _raw_headers(
    host: bytes, headers: Mapping[str, str], body: bytes, content_type: str | None
) -> list[tuple[bytes, bytes]]:
    raw = [(b"host", host), (b"content-length", str(len(body)).encode())]
    if content_type:
        raw.append((b"content-type", content_type.encode()))
    raw.extend((name.lower().encode(), value.encode()) for name, value in headers.items())
    return raw


def _single_body(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class _ResponseCollector:
    def __init__(self) -> None:
        self.status = 500
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []

    async def on_message(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in message.get("headers", [])
            }
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    def reply(self) -> BackendReply:
        return BackendReply(self.status, self.headers, b"".join(self.chunks))

"""The edge of the HTTP app: what a request body may be before any route sees it.

A pure ASGI middleware (a ``BaseHTTPMiddleware`` would cost a task and a stream per request, on the route
every ``/start`` takes), in front of every route, the web chat's included:

- **size**: a JSON (or form, or any non-multipart) body is capped at ``max_json_body_bytes``, a multipart
  upload at ``max_upload_body_bytes`` (never below the web chat's upload limit plus the form's overhead),
  or more on the few routes given a larger limit (household lists: ``household_list_max_bytes``).
  A declared ``Content-Length`` past the cap is refused before a byte is read; a body without one
  (chunked) is counted as it streams and refused once it passes. Each route still checks its own file
  limit, which may be lower: this cap only keeps a 100 MB body out of memory.
- **JSON Python accepts and nothing else does**: ``NaN``, ``Infinity`` and unpaired surrogates
  (``"\\ud800"``) parse with ``json.loads`` (FastAPI's body parser) and then fail deep inside, in a database
  driver or a response encoder, as a 500. They are refused here with a 422. The check is a few byte
  searches on the happy path; only a body containing one of the suspect sequences is parsed again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import BodyTooLarge, refusal_response

# The multipart framing around a file: boundaries, part headers and the other form fields.
MULTIPART_OVERHEAD = 64 * 1024

# Byte sequences without which a JSON text holds no NaN, no infinity and no unpaired surrogate (escaped
# ``\uD8xx``-``\uDFxx``, or raw UTF-8 ``ED A0``-``ED BF``, which ``json.loads`` decodes with surrogatepass).
_SUSPECT = (b"NaN", b"Infinity", b"\\ud", b"\\uD", b"\xed")
# A number too big for a float (``1e400``, or 310 digits) parses to an infinity: the same refusal.
_HUGE_NUMBER = re.compile(rb"[eE]\+?\d{3,}|\d{309,}")
STRICT_JSON_MESSAGE = (
    "JSON must not contain NaN, Infinity, a number too big for a float or an unpaired surrogate"
)


def too_large(accept_language: str | None, limit: int) -> JSONResponse:
    return refusal_response("body_too_large", accept_language, {"limit": str(limit)}, 413)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(text)
    return value


def strict_json_error(body: bytes) -> bool:
    """True when ``body`` is JSON that holds NaN, an infinity or an unpaired surrogate."""
    if not any(suspect in body for suspect in _SUSPECT) and not _HUGE_NUMBER.search(body):
        return False
    try:
        value = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        return True
    except ValueError as exc:  # a JSONDecodeError is left to the route's own answer (with a position)
        return not isinstance(exc, json.JSONDecodeError)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class EdgeLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        json_limit: int,
        upload_limit: int,
        large_uploads: tuple[tuple[str, int], ...] = (),
        staff_token: Callable[[str], bool] = lambda _token: False,
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        # (path prefix, multipart limit): the few staff routes whose files are bigger by nature (household
        # lists). The larger limit is only for a request with a valid staff token: the form is read before
        # the route's own check, and 32 MB bodies from anyone would be a cheap way to load the server.
        self.large_uploads = large_uploads
        self.staff_token = staff_token

    def _upload_limit(self, path: str, authorization: str) -> int:
        for prefix, limit in self.large_uploads:
            if path.startswith(prefix) and self.staff_token(authorization.removeprefix("Bearer ").strip()):
                return max(limit, self.upload_limit)
        return self.upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = b""
        content_length: int | None = None
        language: str | None = None
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = int(value) if value.isdigit() else None
            elif name == b"accept-language":
                language = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        multipart = content_type[:10].lower() == b"multipart/"
        limit = self._upload_limit(scope.get("path", ""), authorization) if multipart else self.json_limit
        if content_length is not None and content_length > limit:
            await too_large(language, limit)(scope, receive, send)
            return
        if _is_json(content_type):
            await self._json(scope, receive, send, limit, language)
            return
        try:
            await self.app(scope, _counted(receive, limit), send)
        except BodyTooLarge as exc:  # raised outside a route (a route's own is answered by the handler)
            await too_large(language, exc.limit)(scope, receive, send)

    async def _json(
        self, scope: Scope, receive: Receive, send: Send, limit: int, language: str | None
    ) -> None:
        """Read the (small) JSON body whole, check it, and hand it to the app as one message."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay(None, message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_large(language, limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if strict_json_error(body):
            error = {"type": "json_invalid", "loc": ["body"], "msg": STRICT_JSON_MESSAGE}
            await _unprocessable([error])(scope, receive, send)
            return
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay(whole, None, receive), send)


def _unprocessable(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=422)


def _replay(first: Message | None, other: Message | None, receive: Receive) -> Receive:
    """A receive that gives ``first`` (or ``other``) once, then what the client sends next."""
    pending = first or other

    async def replayed() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replayed


def _counted(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
        return message

    return counted

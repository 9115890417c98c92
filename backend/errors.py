"""Every refusal becomes an HTTP answer here, in the one shape the OpenAPI publishes (:class:`ErrorOut`).

Services raise a :class:`backend.refusals.Refusal` (``EnrollmentError``, ``ClaimError``) with a code; the
body is ``{"detail": {"code", "message", "detail"}}``, the message the code's text in the caller's language
(``Accept-Language``, default zh-CN). The bot reads the code and renders its own message; routes just call
the services. Invalid requests answer FastAPI's list of errors, without the input they were given (a
100 MB body came back whole in its 422); a value the database cannot hold (an id past its column's
range) is a 422, not a 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from backend.refusals import Refusal, refusal_message
from messages import normalize_locale

log = logging.getLogger(__name__)

# A validation answer lists at most this many errors, each message cut to MAX_MESSAGE characters: a
# list of 100,000 bad items must not come back as 100,000 errors.
MAX_ERRORS = 20
MAX_MESSAGE = 200


class BodyTooLarge(HTTPException):
    """A request body streamed past its cap (``backend/edge.py``). An ``HTTPException``, so FastAPI's
    body reader passes it on (it turns any other error into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=status.HTTP_413_CONTENT_TOO_LARGE, detail="request body too large")
        self.limit = limit


class RefusalOut(BaseModel):
    code: str
    message: str
    detail: dict[str, str]


class ValidationErrorOut(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ErrorOut(BaseModel):
    """Every error body: a refusal, FastAPI's list of validation errors, or a plain text (401, 404)."""

    detail: RefusalOut | list[ValidationErrorOut] | str


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden (role or region)",
    404: "Not found (or outside the caller's region)",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Unsupported file type",
    422: "Invalid request or refused by a rule",
    429: "Too many requests",
}
# Declared on the app, so every operation publishes the bodies these handlers really send.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text} for code, text in _DESCRIPTIONS.items()
}

CONFLICTS = frozenset(
    {
        "documents_already_requested",
        "already_paid",
        "claim_in_other_event",
        "split_takes_every_claim",
        "username_taken",
    }
)
FORBIDDEN = frozenset({"forbidden", "outside_scope", "approver_is_creator", "broadcast_not_yours"})
NOT_FOUND = frozenset({"not_found", "claim_not_found"})
UNSUPPORTED = frozenset({"not_an_image", "not_media"})


def status_for(code: str) -> int:
    if code in NOT_FOUND:
        return status.HTTP_404_NOT_FOUND
    if code in FORBIDDEN:
        return status.HTTP_403_FORBIDDEN
    if code in CONFLICTS:
        return status.HTTP_409_CONFLICT
    if code in UNSUPPORTED:
        return status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    return status.HTTP_422_UNPROCESSABLE_CONTENT


def refusal_response(
    code: str, accept_language: str | None, detail: dict[str, str], status_code: int
) -> JSONResponse:
    message = refusal_message(code, normalize_locale(accept_language), detail)
    return JSONResponse({"detail": {"code": code, "message": message, "detail": detail}}, status_code)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    return refusal_response(
        exc.code, request.headers.get("accept-language"), exc.detail, status_for(exc.code)
    )


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's errors as published: type, location and message, never the input or its context."""
    return [
        {
            "type": str(error.get("type", "")),
            "loc": [part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", ""))[:MAX_MESSAGE],
        }
        for error in list(errors)[:MAX_ERRORS]
    ]


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": validation_errors(exc.errors())}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refused (PostgreSQL: an int4 past 2,147,483,647, a text past its column;
    SQLite: an integer past 2^63-1): bad input the schema let through, not a fault of the server."""
    log.warning("database refused a value: %s", str(exc).splitlines()[0][:MAX_MESSAGE])
    return refusal_response("value_out_of_range", request.headers.get("accept-language"), {}, 422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer, except that a ``{"code", "message"}`` detail (routes raise a few) takes the
    refusal's whole shape: its ``detail`` object, and the code's text when the route gave none."""
    assert isinstance(exc, HTTPException)
    if not isinstance(exc.detail, dict) or "code" not in exc.detail:
        return await http_exception_handler(request, exc)
    code = str(exc.detail["code"])
    message = str(exc.detail.get("message") or "") or refusal_message(
        code, normalize_locale(request.headers.get("accept-language")), {}
    )
    extra = {str(k): str(v) for k, v in dict(exc.detail.get("detail") or {}).items()}
    body = {"detail": {"code": code, "message": message, "detail": extra}}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


async def _too_large(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLarge)
    return refusal_response(
        "body_too_large",
        request.headers.get("accept-language"),
        {"limit": str(exc.limit)},
        status.HTTP_413_CONTENT_TOO_LARGE,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(Refusal, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(DataError, _out_of_range)
    app.add_exception_handler(OverflowError, _out_of_range)

"""Domain refusals become HTTP answers in one place: ``{"detail": {"code", "message", "detail"}}``.

Services raise ``EnrollmentError`` or ``ClaimError`` with a code the bot turns into the user's message;
routes just call the services."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from backend.claims.errors import ClaimError
from backend.claims.staff_api import MESSAGES as CLAIM_MESSAGES
from backend.enrollment.service import EnrollmentError

CONFLICTS = frozenset({"documents_already_requested", "already_paid"})


def status_for(code: str) -> int:
    if code == "not_found":
        return status.HTTP_404_NOT_FOUND
    if code == "forbidden":
        return status.HTTP_403_FORBIDDEN
    if code in CONFLICTS:
        return status.HTTP_409_CONFLICT
    return status.HTTP_422_UNPROCESSABLE_CONTENT


def _answer(code: str, message: str, detail: dict[str, str]) -> JSONResponse:
    body = {"detail": {"code": code, "message": message, "detail": detail}}
    return JSONResponse(body, status_code=status_for(code))


async def _enrollment_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EnrollmentError)
    return _answer(exc.code, str(exc), exc.detail)


async def _claim_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClaimError)
    return _answer(exc.code, CLAIM_MESSAGES.get(exc.code, exc.code), exc.detail)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EnrollmentError, _enrollment_refused)
    app.add_exception_handler(ClaimError, _claim_refused)

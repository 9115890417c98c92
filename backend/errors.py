"""Domain refusals become HTTP answers in one place: ``{"detail": {"code", "message", "detail"}}``.

Services raise a :class:`backend.refusals.Refusal` (``EnrollmentError``, ``ClaimError``) with a code; the
message is the code's text in the caller's language (``Accept-Language``, default zh-CN). The bot reads the
code and renders its own message; routes just call the services."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from backend.refusals import Refusal, refusal_message
from messages import normalize_locale

CONFLICTS = frozenset(
    {
        "documents_already_requested",
        "already_paid",
        "claim_in_other_event",
        "split_takes_every_claim",
        "username_taken",
    }
)
FORBIDDEN = frozenset({"forbidden", "outside_scope"})
NOT_FOUND = frozenset({"not_found", "claim_not_found"})


def status_for(code: str) -> int:
    if code in NOT_FOUND:
        return status.HTTP_404_NOT_FOUND
    if code in FORBIDDEN:
        return status.HTTP_403_FORBIDDEN
    if code in CONFLICTS:
        return status.HTTP_409_CONFLICT
    return status.HTTP_422_UNPROCESSABLE_CONTENT


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    locale = normalize_locale(request.headers.get("accept-language"))
    message = refusal_message(exc.code, locale, exc.detail)
    body = {"detail": {"code": exc.code, "message": message, "detail": exc.detail}}
    return JSONResponse(body, status_code=status_for(exc.code))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Refusal, _refused)

"""The provider's callbacks (delivery receipts, replies such as "TD") and, with the log provider, the
local page of every text sent (``/dev/sms``). Tencent signs neither callback, so their URLs carry a secret
derived from the secret key (``Settings.sms_receipt_token``): the URLs to configure in Tencent's console
are ``<public url>/sms/tencent/<token>/status`` and ``.../reply``."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from backend.settings import Settings
from bot.channels.sms.log import FILE_NAME, read_log
from bot.channels.sms.provider import mask_phone
from bot.channels.sms.tencent import (
    CALLBACK_OK,
    SmsCallbackError,
    parse_reply_callback,
    parse_status_callback,
)
from bot.client import BackendClient, BackendError, BackendUnavailable
from messages import normalize_locale, render

log = logging.getLogger(__name__)


def build_callback_router(backend: BackendClient, settings: Settings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    expected = settings.sms_receipt_token()

    def check(token: str) -> None:
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise HTTPException(status.HTTP_404_NOT_FOUND)

    @router.post("/sms/tencent/{token}/status")
    async def status_callback(token: str, request: Request) -> JSONResponse:
        check(token)
        try:
            receipts = parse_status_callback(await request.body())
        except SmsCallbackError as exc:
            return JSONResponse({"result": 1, "errmsg": str(exc)[:200]}, status_code=400)
        body = [
            {
                "external_message_id": r.serial_id,
                "delivered": r.delivered,
                "reason": None if r.delivered else f"{r.code} {r.description}".strip()[:200],
                "at": r.received_at.isoformat() if r.received_at else None,
            }
            for r in receipts
        ]
        return await _forward(backend.report_sms_receipts(body))

    @router.post("/sms/tencent/{token}/reply")
    async def reply_callback(token: str, request: Request) -> JSONResponse:
        check(token)
        try:
            reply = parse_reply_callback(await request.body())
        except SmsCallbackError as exc:
            return JSONResponse({"result": 1, "errmsg": str(exc)[:200]}, status_code=400)
        if not reply.unsubscribe:
            log.info("SMS reply from %s kept in the log only", mask_phone(reply.phone))
            return JSONResponse(CALLBACK_OK)
        return await _forward(backend.stop_sms_bulk(phone=reply.phone, source="reply"))

    return router


async def _forward(call: Awaitable[object]) -> JSONResponse:
    """Tencent resends a callback that was not answered OK: a backend that is away gets it again later."""
    try:
        await call
    except (BackendUnavailable, BackendError) as exc:
        log.warning("SMS callback not recorded: %s", exc)
        return JSONResponse({"result": 1, "errmsg": "not recorded, send again"}, status_code=503)
    return JSONResponse(CALLBACK_OK)


LINK_TOKEN = r"^[A-Za-z0-9]{1,12}$"


def build_link_router() -> APIRouter:
    """``/s/<token>``, the short link in a text: it opens the web chat, which asks the backend what the
    link opens for that chat (``/start s_<token>``); nothing is decided here, so a forwarded link opens
    nothing in someone else's chat."""
    router = APIRouter(include_in_schema=False)

    @router.get("/s/{token}")
    async def open_link(token: Annotated[str, Path(pattern=LINK_TOKEN)]) -> RedirectResponse:
        return RedirectResponse(f"/chat?start=s_{token}", status_code=status.HTTP_302_FOUND)

    return router


def build_dev_router(settings: Settings) -> APIRouter:
    """``/dev/sms``: the texts the log provider kept, newest first (one-time codes included). Mounted only
    with the log provider outside production, where nothing leaves the machine."""
    router = APIRouter(include_in_schema=False)

    @router.get("/dev/sms", response_class=HTMLResponse)
    async def dev_sms(request: Request, lang: str | None = None) -> HTMLResponse:
        locale = normalize_locale(lang or request.headers.get("accept-language"))
        texts = [
            {"at": sms.at, "phone": mask_phone(sms.phone), "template_id": sms.template_id, "text": sms.text}
            | {"params": sms.params}
            for sms in reversed(read_log(settings.var_dir / FILE_NAME, limit=200))
        ]
        return HTMLResponse(render("pages/dev_sms", locale, texts=texts, sign_name=settings.sms_sign_name))

    return router

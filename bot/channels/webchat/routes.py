"""HTTP routes of the web chat channel and the /chat page."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol

from aiogram import Bot, Dispatcher
from aiogram.fsm.context import FSMContext
from aiogram.types import Update
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field, model_validator

from backend import images
from backend.files import content_disposition
from backend.images import video_type_of
from backend.throttle import MemoryAttemptStore, client_ip
from bot.channels.webchat import updates
from bot.channels.webchat.access import COOKIE_NAME, ChatGrant, WebChatSessions, new_chat_id
from bot.channels.webchat.events import LIFETIME_SECONDS, chat_stream
from bot.channels.webchat.limits import LimitExceeded, WebChatGuard, WebChatLimits
from bot.channels.webchat.session import WebChatSession, capture_replies
from bot.channels.webchat.store import (
    CHAT_ID_PATTERN,
    CLIENT_ID_PATTERN,
    StoredFile,
    WebChatMessage,
    numeric_id,
)
from messages import labels_for, normalize_locale, render

PAGE_DIR = Path(__file__).resolve().parent.parent / "webchat_page"
# How long a resend waits for the answer another process is giving to the same input.
IN_PROGRESS_WAIT_SECONDS = 30.0
IN_PROGRESS_POLL_SECONDS = 0.25
ChatId = Annotated[str, PathParam(pattern=CHAT_ID_PATTERN, min_length=1, max_length=64)]


class ContactIn(BaseModel):
    phone_number: str = Field(min_length=3, max_length=32)


class LocationIn(BaseModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class WebChatInput(BaseModel):
    text: str | None = Field(default=None, min_length=1, max_length=4096)
    callback_data: str | None = Field(default=None, min_length=1, max_length=64)
    contact: ContactIn | None = None
    location: LocationIn | None = None
    message_id: int | None = Field(default=None, description="the message whose button was tapped")
    client_id: str | None = Field(
        default=None,
        pattern=CLIENT_ID_PATTERN,
        description="the page's id of this input: a resend with it is answered, never run twice",
    )
    first_name: str | None = Field(default=None, max_length=64)
    language_code: str | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _exactly_one_input(self) -> WebChatInput:
        given = [name for name in ("text", "callback_data", "contact", "location") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("send exactly one of text, callback_data, contact, location")
        return self


class WebChatMessageOut(BaseModel):
    id: int
    text: str
    buttons: list[list[dict[str, str]]]
    keyboard: list[list[dict[str, Any]]] | None
    document: dict[str, str] | None
    photo: dict[str, str] | None
    edited: bool


class RepliesOut(BaseModel):
    replies: list[WebChatMessageOut]


class MessagesOut(BaseModel):
    messages: list[WebChatMessageOut]


class ChatOut(BaseModel):
    chat_id: str
    new: bool = Field(description="the server made this chat now (the page starts it with /start)")


def _out(messages: list[WebChatMessage]) -> list[WebChatMessageOut]:
    return [WebChatMessageOut(**m.to_json()) for m in messages]


class MediaWanted(Protocol):
    """The form runner's answer to "does the current question take a file?" (``bot.forms.engine``)."""

    async def media_wanted(self, state: FSMContext) -> frozenset[str]: ...


class WebChatChannel:
    """Feeds browser input to the dispatcher and answers with what the bot said.

    Every input is counted against the web chat limits first (``limits.py``); a file is kept only
    while the chat's current question takes one, and only once Pillow has decoded it whole."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        session: WebChatSession,
        *,
        limits: WebChatLimits,
        guard: WebChatGuard | None = None,
        sessions: WebChatSessions | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.session = session
        self.limits = limits
        self.guard = guard if guard is not None else WebChatGuard(MemoryAttemptStore(), limits)
        self.max_upload_bytes = limits.max_upload_bytes
        # Without the settings' secret (a benchmark's bare channel), sessions last as long as the process.
        self.sessions = sessions if sessions is not None else WebChatSessions(secrets.token_urlsafe(32))
        self.stream_lifetime = LIFETIME_SECONDS  # an event stream's; the browser reconnects after it
        # One input of a chat at a time in this process, so a resend waits for the first try's answer.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def erase_chat(self, chat_id: str) -> None:
        """Ending the chat's device: what its browser could still read (the transcript, its files, an
        unfinished form) is deleted; the session cookie then names an empty chat bound to no one."""
        await self.session.store.erase(chat_id)
        await self.session.files.erase(chat_id)
        number = numeric_id(chat_id)
        await self.dispatcher.fsm.get_context(self.bot, chat_id=number, user_id=number).clear()

    def _lock(self, chat_id: str) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        return lock

    async def once(
        self,
        chat_id: str,
        client_id: str | None,
        locale: str,
        run: Callable[[], Awaitable[list[WebChatMessage]]],
    ) -> list[WebChatMessage]:
        """Run an input once per client id: a resend (the answer was lost on a flaky network) gets the
        first run's replies again, as they are now, and never reaches the dispatcher."""
        if client_id is None:  # an API client that does not resend
            return await run()
        store = self.session.store
        async with self._lock(chat_id):
            waited = 0.0
            while (seen := await store.claim_input(chat_id, client_id)) is not None:
                if seen.reply_ids is not None:
                    return await self._replies(chat_id, seen.reply_ids)
                if waited >= IN_PROGRESS_WAIT_SECONDS:  # another process is still at it
                    raise refusal(status.HTTP_409_CONFLICT, "input_in_progress", locale)
                await asyncio.sleep(IN_PROGRESS_POLL_SECONDS)
                waited += IN_PROGRESS_POLL_SECONDS
            try:
                replies = await run()
            except BaseException:
                await store.release_input(chat_id, client_id)  # refused or failed: a retry runs it
                raise
            await store.finish_input(chat_id, client_id, [reply.id for reply in replies])
            return replies

    async def _replies(self, chat_id: str, reply_ids: Sequence[int]) -> list[WebChatMessage]:
        found = [await self.session.store.get(chat_id, number) for number in reply_ids]
        return [message for message in found if message is not None]

    async def feed(self, chat_id: str, update: Update, first_name: str | None = None) -> list[WebChatMessage]:
        with capture_replies(chat_id) as replies:
            await self.dispatcher.feed_update(
                self.bot, update, webchat_id=chat_id, webchat_first_name=first_name
            )
        return list(replies)

    async def admit(self, chat_id: str, address: str | None, locale: str) -> None:
        """Count one input of the chat and the address; 429 past a limit. A chat the bot has not
        spoken in yet (here or, per the store, in another process) is a new chat of the address."""
        new_chat = not self.session.knows(chat_id) and not await self.session.store.exists(chat_id)
        try:
            await self.guard.message(chat_id, address, new_chat=new_chat)
        except LimitExceeded as exceeded:
            raise too_many(exceeded, locale) from exceeded

    async def handle_input(
        self, chat_id: str, body: WebChatInput, *, address: str | None = None, locale: str | None = None
    ) -> list[WebChatMessage]:
        locale = locale or normalize_locale(body.language_code)
        await self.admit(chat_id, address, locale)
        return await self.once(chat_id, body.client_id, locale, lambda: self._run_input(chat_id, body))

    async def _run_input(self, chat_id: str, body: WebChatInput) -> list[WebChatMessage]:
        number = self.session.register_chat(chat_id)
        who: dict[str, Any] = {
            "first_name": body.first_name,
            "language_code": body.language_code,
            "bot": self.bot,
        }
        if body.text is not None:
            update = updates.text_update(number, body.text, **who)
        elif body.callback_data is not None:
            origin = await self._button_origin(chat_id, body.callback_data, body.message_id)
            update = updates.callback_update(number, body.callback_data, origin, **who)
        elif body.contact is not None:
            update = updates.contact_update(number, body.contact.phone_number, **who)
        else:
            assert body.location is not None
            update = updates.location_update(number, body.location.latitude, body.location.longitude, **who)
        return await self.feed(chat_id, update, body.first_name)

    async def _button_origin(self, chat_id: str, data: str, message_id: int | None) -> WebChatMessage | None:
        if message_id is not None:
            return await self.session.store.get(chat_id, message_id)
        recent = await self.session.store.after(chat_id, 0, limit=10_000)
        for message in reversed(recent):
            if any(b.get("callback_data") == data for row in message.buttons for b in row):
                return message
        return None

    async def handle_photo(
        self,
        chat_id: str,
        upload: UploadFile,
        caption: str | None,
        locale: str,
        language_code: str | None,
        *,
        address: str | None = None,
        client_id: str | None = None,
    ) -> list[WebChatMessage]:
        """Refused, with nothing written, unless the current question takes this kind of file, the
        file decodes, and the chat's and the address's upload limits have room for it."""
        await self.admit(chat_id, address, locale)

        async def run() -> list[WebChatMessage]:
            return await self._run_photo(chat_id, upload, caption, locale, language_code, address)

        return await self.once(chat_id, client_id, locale, run)

    async def _run_photo(
        self,
        chat_id: str,
        upload: UploadFile,
        caption: str | None,
        locale: str,
        language_code: str | None,
        address: str | None,
    ) -> list[WebChatMessage]:
        data = await self._read_limited(upload, locale)
        number = numeric_id(chat_id)
        wanted = await self.media_wanted(number)
        if not wanted:  # before decoding: most refusals cost no Pillow work
            raise refusal(status.HTTP_409_CONFLICT, "upload_not_expected", locale)
        video_type = video_type_of(data)  # the claim steps take videos as evidence too
        if video_type is None or "video" not in wanted:
            await self._check_photo(data, locale)
        try:
            await self.guard.upload(chat_id, address, len(data))
        except LimitExceeded as exceeded:
            raise too_many(exceeded, locale) from exceeded
        self.session.register_chat(chat_id)
        token = await self.session.files.save(chat_id, upload.filename or "photo.jpg", data)
        update = updates.media_update(
            number,
            token,
            len(data),
            caption,
            video_type=video_type,
            first_name=None,
            language_code=language_code,
            bot=self.bot,
        )
        return await self.feed(chat_id, update)

    async def media_wanted(self, number: int) -> frozenset[str]:
        """What the chat's current question takes, from its conversation (FSM) state."""
        runner: MediaWanted | None = self.dispatcher.get("runner")
        if runner is None:
            return frozenset()
        state = self.dispatcher.fsm.get_context(self.bot, chat_id=number, user_id=number)
        return await runner.media_wanted(state)

    async def _check_photo(self, data: bytes, locale: str) -> None:
        """The photo decoded whole under the pixel limit (``backend/images.py``), else 415 or 422."""
        try:
            await images.checked_image(data, max_pixels=self.limits.max_image_pixels)
        except images.ImageRefused as refused:
            if refused.code == "not_an_image":
                raise refusal(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "not_an_image", locale) from refused
            megapixels = refused.detail.get("max_megapixels", "")  # the limit that applied
            raise refusal(
                status.HTTP_422_UNPROCESSABLE_CONTENT, refused.code, locale, max_megapixels=megapixels
            ) from refused

    async def _read_limited(self, upload: UploadFile, locale: str) -> bytes:
        data = await upload.read(self.max_upload_bytes + 1)
        if len(data) > self.max_upload_bytes:
            limit_mb = self.max_upload_bytes // (1024 * 1024)
            raise refusal(status.HTTP_413_CONTENT_TOO_LARGE, "file_too_large", locale, limit_mb=limit_mb)
        return data


def refusal(
    status_code: int, code: str, locale: str, *, headers: dict[str, str] | None = None, **ctx: Any
) -> HTTPException:
    """The API's error shape (``{"detail": {"code", "message", "detail"}}``), its message the template
    ``webchat/<code>`` in the chat's language: the page shows it under the user's message."""
    message = render(f"webchat/{code}", locale, ext="txt", **ctx)
    detail = {"code": code, "message": message, "detail": {k: str(v) for k, v in ctx.items()}}
    return HTTPException(status_code, detail=detail, headers=headers)


def too_many(exceeded: LimitExceeded, locale: str) -> HTTPException:
    wait = exceeded.retry_after
    return refusal(
        status.HTTP_429_TOO_MANY_REQUESTS,
        exceeded.code,
        locale,
        headers={"Retry-After": str(wait)},
        retry_after=wait,
        minutes=-(-wait // 60),
    )


def file_response(stored: StoredFile) -> Response:
    """The file with its name (both RFC 6266 forms, as the API's downloads), the type guessed from it."""
    media_type = mimetypes.guess_type(stored.name)[0] or "application/octet-stream"
    headers = {"content-disposition": content_disposition(stored.name)}
    return Response(stored.data, media_type=media_type, headers=headers)


def request_locale(request: Request, explicit: str | None = None) -> str:
    return normalize_locale(explicit or request.headers.get("accept-language"))


def set_session_cookie(response: Response, request: Request, sessions: WebChatSessions, chat_id: str) -> None:
    """HttpOnly (no script reads it), SameSite=Lax (no other site's form posts with it), Secure over
    https (a proxy's ``X-Forwarded-Proto`` counts where uvicorn trusts the proxy)."""
    response.set_cookie(
        COOKIE_NAME,
        sessions.issue(chat_id),
        max_age=sessions.max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def session_of(request: Request, sessions: WebChatSessions) -> ChatGrant | None:
    return sessions.read(request.cookies.get(COOKIE_NAME))


def build_router(channel: WebChatChannel) -> APIRouter:
    router = APIRouter(tags=["webchat"])
    page_env = Environment(loader=FileSystemLoader(str(PAGE_DIR)), autoescape=select_autoescape(["html"]))
    sessions = channel.sessions

    def checked(request: Request, chat_id: str) -> ChatGrant:
        """The request's session names this chat, else 403 in the user's language: the chat id in the
        address is no key."""
        grant = session_of(request, sessions)
        if grant is None or grant.chat_id != chat_id:
            raise refusal(status.HTTP_403_FORBIDDEN, "session_required", request_locale(request))
        return grant

    async def chat_session(chat_id: ChatId, request: Request, response: Response) -> ChatGrant:
        """Every chat route's guard; renews the cookie (at most daily) so a chat in use never lapses."""
        grant = checked(request, chat_id)
        if grant.due_for_renewal(time.time()):
            set_session_cookie(response, request, sessions, chat_id)
        return grant

    # A default, not an Annotated alias: the module's postponed annotations are resolved at module level.
    session = Depends(chat_session)

    @router.post("/webchat/api/chats", response_model=ChatOut)
    async def open_chat(request: Request, response: Response) -> ChatOut:
        """The browser's chat: the one its session names, else a new one the server picks."""
        grant = session_of(request, sessions)
        chat_id, new = (grant.chat_id, False) if grant is not None else (new_chat_id(), True)
        set_session_cookie(response, request, sessions, chat_id)
        return ChatOut(chat_id=chat_id, new=new)

    @router.post("/webchat/api/{chat_id}/messages", response_model=RepliesOut)
    async def post_message(
        chat_id: ChatId, body: WebChatInput, request: Request, _: ChatGrant = session
    ) -> RepliesOut:
        locale = request_locale(request, body.language_code)
        replies = await channel.handle_input(chat_id, body, address=client_ip(request), locale=locale)
        return RepliesOut(replies=_out(replies))

    @router.post("/webchat/api/{chat_id}/photos", response_model=RepliesOut)
    async def post_photo(
        chat_id: ChatId,
        request: Request,
        file: Annotated[UploadFile, File()],
        _: ChatGrant = session,
        caption: Annotated[str | None, Form(max_length=1024)] = None,
        language_code: Annotated[str | None, Form(max_length=16)] = None,
        client_id: Annotated[str | None, Form(pattern=CLIENT_ID_PATTERN)] = None,
    ) -> RepliesOut:
        locale = request_locale(request, language_code)
        replies = await channel.handle_photo(
            chat_id, file, caption, locale, language_code, address=client_ip(request), client_id=client_id
        )
        return RepliesOut(replies=_out(replies))

    @router.get("/webchat/api/{chat_id}/messages", response_model=MessagesOut)
    async def get_messages(
        chat_id: ChatId, _: ChatGrant = session, after: Annotated[int, Query(ge=0)] = 0
    ) -> MessagesOut:
        return MessagesOut(messages=_out(await channel.session.store.after(chat_id, after)))

    @router.get("/webchat/api/{chat_id}/events", include_in_schema=False)
    async def get_events(
        chat_id: ChatId,
        request: Request,
        _: ChatGrant = session,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> StreamingResponse:
        """New messages as server-sent events; a reconnect's Last-Event-ID resumes after that number."""
        resume = request.headers.get("last-event-id", "")
        start = max(after, int(resume)) if resume.isdigit() else after
        stream = chat_stream(
            channel.session.store,
            channel.session.events,
            chat_id,
            start,
            request.is_disconnected,
            lifetime=channel.stream_lifetime,
        )
        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}  # nginx: pass it through
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    @router.get("/webchat/files/{chat_id}/{token}")
    async def get_file(chat_id: ChatId, token: str, _: ChatGrant = session) -> Response:
        found = await channel.session.files.load(chat_id, token)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
        return file_response(found)

    @router.get("/chat/manifest.webmanifest", include_in_schema=False)
    async def manifest(request: Request, lang: str | None = None) -> Response:
        """ "Add to home screen": the chat as an app, named in the page's language, icons served by us."""
        locale = request_locale(request, lang)
        return Response(
            json.dumps(web_manifest(locale), ensure_ascii=False),
            media_type="application/manifest+json",
            headers={"cache-control": "public, max-age=86400"},
        )

    @router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page(request: Request, lang: str | None = None) -> HTMLResponse:
        """The page, with its chat: the session's, else a new one (its cookie set here, so the first
        message needs no extra round trip on a slow network)."""
        locale = request_locale(request, lang)
        grant = session_of(request, sessions)
        chat_id, new = (grant.chat_id, False) if grant is not None else (new_chat_id(), True)
        template = page_env.get_template("chat.html")
        page = template.render(
            labels=labels_for("webchat", locale),
            lang=locale,
            static_base="/chat/static",
            chat_id=chat_id,
            chat_new=new,
        )
        response = HTMLResponse(page, headers={"cache-control": "no-store"})
        set_session_cookie(response, request, sessions, chat_id)
        return response

    return router


def web_manifest(locale: str) -> dict[str, Any]:
    labels = labels_for("webchat", locale)
    static = "/chat/static"
    return {
        "name": labels["app_name"],
        "short_name": labels["app_short_name"],
        "lang": locale,
        "start_url": f"/chat?lang={locale}",
        "scope": "/chat",
        "display": "standalone",
        "background_color": "#eef3ef",
        "theme_color": "#0f766e",
        "icons": [
            {"src": f"{static}/icon.svg", "sizes": "any", "type": "image/svg+xml"},
            {"src": f"{static}/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": f"{static}/icon-512.png", "sizes": "512x512", "type": "image/png"},
        ],
    }


def mount_static(app: Any) -> None:
    app.mount("/chat/static", StaticFiles(directory=str(PAGE_DIR)), name="webchat-static")

"""HTTP routes of the web chat channel and the /chat page."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field, model_validator

from bot.channels.webchat import updates
from bot.channels.webchat.session import WebChatSession, capture_replies
from bot.channels.webchat.store import CHAT_ID_PATTERN, StoredFile, WebChatMessage
from messages import labels_for, normalize_locale, render

PAGE_DIR = Path(__file__).resolve().parent.parent / "webchat_page"
ChatId = Annotated[str, PathParam(pattern=CHAT_ID_PATTERN, min_length=1, max_length=64)]
_IMAGE_SIGNATURES: tuple[bytes, ...] = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"RIFF",
    b"BM",
)
# ISO base media files are boxes; the "ftyp" box names the brand. Only these are videos: HEIC, AVIF and M4A
# share the container but are not.
_QUICKTIME_BRANDS = frozenset({b"qt  "})
_MP4_BRANDS = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso4",
        b"iso5",
        b"iso6",
        b"mp41",
        b"mp42",
        b"avc1",
        b"M4V ",
        b"3gp4",
        b"3gp5",
        b"dash",
    }
)


def video_type_of(data: bytes) -> str | None:
    """``video/mp4`` or ``video/quicktime`` for an MP4/MOV file, else None."""
    if data[4:8] != b"ftyp":
        return None
    brand = data[8:12]
    if brand in _QUICKTIME_BRANDS:
        return "video/quicktime"
    return "video/mp4" if brand in _MP4_BRANDS else None


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


def _out(messages: list[WebChatMessage]) -> list[WebChatMessageOut]:
    return [WebChatMessageOut(**m.to_json()) for m in messages]


class WebChatChannel:
    """Feeds browser input to the dispatcher and answers with what the bot said."""

    def __init__(
        self, dispatcher: Dispatcher, bot: Bot, session: WebChatSession, *, max_upload_bytes: int
    ) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.session = session
        self.max_upload_bytes = max_upload_bytes

    async def feed(self, chat_id: str, update: Update, first_name: str | None = None) -> list[WebChatMessage]:
        with capture_replies(chat_id) as replies:
            await self.dispatcher.feed_update(
                self.bot, update, webchat_id=chat_id, webchat_first_name=first_name
            )
        return list(replies)

    async def handle_input(self, chat_id: str, body: WebChatInput) -> list[WebChatMessage]:
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
        self, chat_id: str, upload: UploadFile, caption: str | None, locale: str, language_code: str | None
    ) -> list[WebChatMessage]:
        data = await self._read_limited(upload, locale)
        video_type = video_type_of(data)  # the claim steps take videos as evidence too
        if not data.startswith(_IMAGE_SIGNATURES) and video_type is None:
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                detail={"code": "not_an_image", "message": render("webchat/not_an_image", locale, ext="txt")},
            )
        number = self.session.register_chat(chat_id)
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

    async def _read_limited(self, upload: UploadFile, locale: str) -> bytes:
        data = await upload.read(self.max_upload_bytes + 1)
        if len(data) > self.max_upload_bytes:
            limit_mb = self.max_upload_bytes // (1024 * 1024)
            message = render("webchat/file_too_large", locale, ext="txt", limit_mb=limit_mb)
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                detail={"code": "file_too_large", "message": message},
            )
        return data


def file_response(stored: StoredFile) -> Response:
    """The file with its name, as FileResponse sent it (a download name, the type guessed from it)."""
    media_type = mimetypes.guess_type(stored.name)[0] or "application/octet-stream"
    quoted = quote(stored.name)
    disposition = (
        f'attachment; filename="{stored.name}"'
        if quoted == stored.name
        else f"attachment; filename*=utf-8''{quoted}"
    )
    return Response(stored.data, media_type=media_type, headers={"content-disposition": disposition})


def request_locale(request: Request, explicit: str | None = None) -> str:
    return normalize_locale(explicit or request.headers.get("accept-language"))


def build_router(channel: WebChatChannel) -> APIRouter:
    router = APIRouter(tags=["webchat"])
    page_env = Environment(loader=FileSystemLoader(str(PAGE_DIR)), autoescape=select_autoescape(["html"]))

    @router.post("/webchat/api/{chat_id}/messages", response_model=RepliesOut)
    async def post_message(chat_id: ChatId, body: WebChatInput) -> RepliesOut:
        return RepliesOut(replies=_out(await channel.handle_input(chat_id, body)))

    @router.post("/webchat/api/{chat_id}/photos", response_model=RepliesOut)
    async def post_photo(
        chat_id: ChatId,
        request: Request,
        file: Annotated[UploadFile, File()],
        caption: Annotated[str | None, Form(max_length=1024)] = None,
        language_code: Annotated[str | None, Form(max_length=16)] = None,
    ) -> RepliesOut:
        locale = request_locale(request, language_code)
        replies = await channel.handle_photo(chat_id, file, caption, locale, language_code)
        return RepliesOut(replies=_out(replies))

    @router.get("/webchat/api/{chat_id}/messages", response_model=MessagesOut)
    async def get_messages(chat_id: ChatId, after: Annotated[int, Query(ge=0)] = 0) -> MessagesOut:
        return MessagesOut(messages=_out(await channel.session.store.after(chat_id, after)))

    @router.get("/webchat/files/{chat_id}/{token}")
    async def get_file(chat_id: ChatId, token: str) -> Response:
        found = await channel.session.files.load(chat_id, token)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
        return file_response(found)

    @router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page(request: Request, lang: str | None = None) -> HTMLResponse:
        locale = request_locale(request, lang)
        template = page_env.get_template("chat.html")
        page = template.render(labels=labels_for("webchat", locale), lang=locale, static_base="/chat/static")
        return HTMLResponse(page)

    return router


def mount_static(app: Any) -> None:
    app.mount("/chat/static", StaticFiles(directory=str(PAGE_DIR)), name="webchat-static")

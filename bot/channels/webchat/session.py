"""An aiogram session that turns the bot's API calls into web chat messages instead of HTTPS requests.

Handlers call ``message.answer(...)`` exactly as on Telegram; this session stores the message for the
browser and answers with the object Telegram would have returned. While the web chat route feeds one
update, every message and edit for that chat is also captured, so the route can answer with them.
"""

from __future__ import annotations

import html
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, methods
from aiogram.client.default import Default
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import (
    ForceReply,
    InlineKeyboardMarkup,
    InputFile,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.channels.webchat.events import ChatEvents
from bot.channels.webchat.store import WebChatFileStore, WebChatMessage, WebChatStore, file_url, numeric_id

WEBCHAT_BOT_TOKEN = "1:webchat"
WEBCHAT_BOT_ID = 1


@dataclass
class _Capture:
    chat_id: str
    replies: list[WebChatMessage] = field(default_factory=list)

    def record(self, chat_id: str, message: WebChatMessage) -> None:
        if chat_id != self.chat_id:
            return
        # An edit of a message already captured replaces it in place, keeping the order of first sending.
        for index, existing in enumerate(self.replies):
            if existing.id == message.id:
                self.replies[index] = message
                return
        self.replies.append(message)


_capture: ContextVar[_Capture | None] = ContextVar("webchat_capture", default=None)


@contextmanager
def capture_replies(chat_id: str) -> Iterator[list[WebChatMessage]]:
    """Collect every message the bot sends or edits in ``chat_id`` inside this block."""
    capture = _Capture(chat_id)
    token = _capture.set(capture)
    try:
        yield capture.replies
    finally:
        _capture.reset(token)


Handler = Callable[[Bot, Any], Coroutine[Any, Any, Any]]


class WebChatSession(BaseSession):
    def __init__(
        self, store: WebChatStore, files: WebChatFileStore, *, bot_username: str = "TianbaoBot"
    ) -> None:
        super().__init__()
        self.store = store
        self.files = files
        self.bot_username = bot_username
        self.events = ChatEvents()  # the chat pages' event streams open in this process
        # Reverse of numeric_id() for chats seen in this process: handlers answer to int chat ids.
        self._chat_ids: dict[int, str] = {}
        self._handlers: dict[type[TelegramMethod[Any]], Handler] = {
            methods.GetMe: self._get_me,
            methods.SendMessage: self._send_message,
            methods.EditMessageText: self._edit_message_text,
            methods.EditMessageReplyMarkup: self._edit_reply_markup,
            methods.SendDocument: self._send_document,
            methods.SendPhoto: self._send_photo,
            methods.GetFile: self._get_file,
            methods.AnswerCallbackQuery: _true,
            methods.SendChatAction: _true,
            methods.SetMyCommands: _true,
            methods.DeleteWebhook: _true,
        }

    def knows(self, chat_id: str) -> bool:
        """Whether this process has fed the chat an update (so it has begun)."""
        return numeric_id(chat_id) in self._chat_ids

    def register_chat(self, chat_id: str) -> int:
        number = numeric_id(chat_id)
        self._chat_ids[number] = chat_id
        return number

    def chat_key(self, chat_id: int | str) -> str:
        if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
            return chat_id
        number = int(chat_id)
        if number not in self._chat_ids:
            raise TelegramBadRequest(
                method=methods.SendMessage(chat_id=number, text="-"), message="chat not found"
            )
        return self._chat_ids[number]

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        handler = self._handlers.get(type(method))
        if handler is None:
            raise TelegramBadRequest(
                method=method, message=f"{type(method).__name__} is not available in web chat"
            )
        result = await handler(bot, method)
        response = _response_type(method.__returning__).model_validate(
            {"ok": True, "result": result}, context={"bot": bot}
        )
        return response.result  # type: ignore[return-value]

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        token = url.rsplit("/", 1)[-1]
        stored = await self.files.load_token(token)
        if stored is None:
            raise FileNotFoundError(token)
        data = stored.data
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    # --- methods ------------------------------------------------------------------------------------
    async def _get_me(self, _bot: Bot, _method: methods.GetMe) -> dict[str, Any]:
        return {"id": WEBCHAT_BOT_ID, "is_bot": True, "first_name": "Tianbao", "username": self.bot_username}

    async def _send_message(self, bot: Bot, method: methods.SendMessage) -> dict[str, Any]:
        chat = self.chat_key(method.chat_id)
        text = _as_html(bot, method.text, method.parse_mode)
        stored = await self._append(chat, WebChatMessage(0, text, *_markup(method.reply_markup)))
        return self._message_json(method.chat_id, stored, text=method.text)

    async def _edit_message_text(self, bot: Bot, method: methods.EditMessageText) -> dict[str, Any] | bool:
        if method.chat_id is None or method.message_id is None:
            raise TelegramBadRequest(method=method, message="web chat edits need chat_id and message_id")
        chat = self.chat_key(method.chat_id)
        current = await self._existing(chat, method.message_id, method)
        buttons, _keyboard = _markup(method.reply_markup)
        text = _as_html(bot, method.text or "", method.parse_mode)
        edited = replace(current, text=text, buttons=buttons, edited=True)
        await self._replace(chat, edited)
        return self._message_json(method.chat_id, edited, text=method.text or "")

    async def _edit_reply_markup(self, _bot: Bot, method: methods.EditMessageReplyMarkup) -> dict[str, Any]:
        if method.chat_id is None or method.message_id is None:
            raise TelegramBadRequest(method=method, message="web chat edits need chat_id and message_id")
        chat = self.chat_key(method.chat_id)
        current = await self._existing(chat, method.message_id, method)
        buttons, _keyboard = _markup(method.reply_markup)
        edited = replace(current, buttons=buttons, edited=True)
        await self._replace(chat, edited)
        return self._message_json(method.chat_id, edited, text=current.text)

    async def _send_document(self, bot: Bot, method: methods.SendDocument) -> dict[str, Any]:
        chat = self.chat_key(method.chat_id)
        name, url = await self._store_file(bot, chat, method.document, default_name="document.pdf")
        caption = _as_html(bot, method.caption or "", method.parse_mode)
        message = WebChatMessage(
            0, caption, *_markup(method.reply_markup), document={"name": name, "url": url}
        )
        stored = await self._append(chat, message)
        payload = self._message_json(method.chat_id, stored, text=None)
        payload["document"] = {
            "file_id": url.rsplit("/", 1)[-1],
            "file_unique_id": url[-16:],
            "file_name": name,
        }
        return payload

    async def _send_photo(self, bot: Bot, method: methods.SendPhoto) -> dict[str, Any]:
        chat = self.chat_key(method.chat_id)
        _name, url = await self._store_file(bot, chat, method.photo, default_name="photo.jpg")
        caption = _as_html(bot, method.caption or "", method.parse_mode)
        stored = await self._append(
            chat, WebChatMessage(0, caption, *_markup(method.reply_markup), photo={"url": url})
        )
        payload = self._message_json(method.chat_id, stored, text=None)
        file_id = url.rsplit("/", 1)[-1]
        payload["photo"] = [{"file_id": file_id, "file_unique_id": file_id[-16:], "width": 1, "height": 1}]
        return payload

    async def _get_file(self, _bot: Bot, method: methods.GetFile) -> dict[str, Any]:
        stored = await self.files.load_token(method.file_id)
        if stored is None:
            raise TelegramBadRequest(method=method, message="file not found")
        return {
            "file_id": method.file_id,
            "file_unique_id": method.file_id[-16:],
            "file_size": len(stored.data),
            "file_path": method.file_id,
        }

    # --- helpers ------------------------------------------------------------------------------------
    async def _append(self, chat: str, message: WebChatMessage) -> WebChatMessage:
        stored = await self.store.append(chat, message)
        self.events.publish(chat, stored)
        capture = _capture.get()
        if capture is not None:
            capture.record(chat, stored)
        return stored

    async def _replace(self, chat: str, message: WebChatMessage) -> None:
        await self.store.replace(chat, message)
        self.events.publish(chat, message)
        capture = _capture.get()
        if capture is not None:
            capture.record(chat, message)

    async def _existing(self, chat: str, message_id: int, method: TelegramMethod[Any]) -> WebChatMessage:
        current = await self.store.get(chat, message_id)
        if current is None:
            raise TelegramBadRequest(method=method, message="message to edit not found")
        return current

    async def _store_file(
        self, bot: Bot, chat: str, file: InputFile | str, *, default_name: str
    ) -> tuple[str, str]:
        if isinstance(file, str):
            if file.startswith(("http://", "https://", "/")):
                return file.rsplit("/", 1)[-1] or default_name, file
            stored = await self.files.load_token(file)
            if stored is None:
                raise TelegramBadRequest(method=methods.GetFile(file_id=file), message="file not found")
            return default_name, file_url(stored.chat_id, file)
        data = b"".join([chunk async for chunk in file.read(bot)])
        name = file.filename or default_name
        token = await self.files.save(chat, name, data)
        return name, file_url(chat, token)

    def _message_json(
        self, chat_id: int | str, message: WebChatMessage, *, text: str | None
    ) -> dict[str, Any]:
        number = chat_id if isinstance(chat_id, int) else numeric_id(str(chat_id))
        payload: dict[str, Any] = {
            "message_id": message.id,
            "date": int(datetime.now(UTC).timestamp()),
            "chat": {"id": number, "type": "private"},
            "from": {"id": WEBCHAT_BOT_ID, "is_bot": True, "first_name": "Tianbao"},
        }
        if text is not None:
            payload["text"] = text
        return payload


# pydantic keeps parametrised generics only weakly, so ``Response[Message]`` built afresh per call is
# rebuilt (schema and validator) every few hundred messages: a tenth of a /start. Keep one per type.
_RESPONSE_TYPES: dict[Any, type[Response[Any]]] = {}


def _response_type(returning: Any) -> type[Response[Any]]:
    response_type = _RESPONSE_TYPES.get(returning)
    if response_type is None:
        response_type = _RESPONSE_TYPES[returning] = Response[returning]
    return response_type


async def _true(_bot: Bot, _method: Any) -> bool:
    return True


def _as_html(bot: Bot, text: str, parse_mode: str | Default | None) -> str:
    """Web chat always shows HTML; a message sent as plain text is escaped so it shows literally."""
    mode = bot.default[parse_mode.name] if isinstance(parse_mode, Default) else parse_mode
    # ParseMode is a str enum: compare its value (str() of it is "ParseMode.HTML" on Python 3.11).
    value = getattr(mode, "value", mode)
    return text if isinstance(value, str) and value.upper() == "HTML" else html.escape(text)


def _markup(
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply | None,
) -> tuple[list[list[dict[str, str]]], list[list[dict[str, Any]]] | None]:
    """(inline buttons, reply keyboard): a removed keyboard is [], an untouched one None."""
    if isinstance(markup, InlineKeyboardMarkup):
        rows = [
            [_inline_button(b.text, b.callback_data, b.url) for b in row] for row in markup.inline_keyboard
        ]
        return rows, None
    if isinstance(markup, ReplyKeyboardMarkup):
        keyboard = [
            [
                {
                    "text": b.text,
                    "request_contact": bool(b.request_contact),
                    "request_location": bool(b.request_location),
                }
                for b in row
            ]
            for row in markup.keyboard
        ]
        return [], keyboard
    if isinstance(markup, ReplyKeyboardRemove):
        return [], []
    return [], None


def _inline_button(text: str, callback_data: str | None, url: str | None) -> dict[str, str]:
    if url:
        return {"text": text, "url": url}
    return {"text": text, "callback_data": callback_data or ""}

"""A faithful fake of Telegram's Bot API HTTP server, for tests.

It listens on loopback and speaks the real wire protocol, so aiogram's real ``AiohttpSession``
talks to it unchanged::

    async with FakeTelegramServer() as server:
        session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
        bot = Bot(server.token, session=session)
        await bot.send_message(42, "hi")
        assert server.sent_messages(42)[0].params["text"] == "hi"

What it models (see the individual methods for details):

* ``/bot{token}/{method}`` with JSON, urlencoded and multipart bodies (GET or POST; the query string
  is merged in), method names case-insensitive like the real server, 401 for a wrong token and
  404 for an unknown method; ``/file/bot{token}/{file_path}`` serves the bytes of known files.
* Typed parameters: multipart values arrive as strings and are coerced per parameter name,
  JSON-serialized objects (``reply_markup``, ``entities``, ``commands``...) are decoded, and
  ``attach://`` references as well as direct uploads become :class:`UploadedFile` values.
* HTML ``parse_mode`` is parsed like Telegram does: tags are stripped into entities (UTF-16
  offsets) and malformed markup answers ``400 Bad Request: can't parse entities: ...``.
  Markdown and MarkdownV2 text is passed through unparsed.
* Long polling ``getUpdates`` with ``offset``/``limit``/``timeout``/``allowed_updates``, the
  409 conflicts (a second poller, or a webhook being set), webhook bookkeeping.
* Flood control (per chat, global, per group) answering 429 with ``retry_after``, forced
  failures, and blocked chats answering 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import mimetypes
import re
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "BotAPIError",
    "Call",
    "EntityParseError",
    "FakeTelegramServer",
    "RateLimits",
    "StoredFile",
    "UploadedFile",
    "WebhookState",
    "parse_html",
]

JSONDict = dict[str, Any]
MethodHandler = Callable[[JSONDict], Any]

BLOCKED_DESCRIPTION: Final = "Forbidden: bot was blocked by the user"
QUERY_INVALID: Final = "Bad Request: query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
WRONG_FILE: Final = "Bad Request: wrong file identifier/HTTP URL specified"

#: Methods that count as "sending a message" for flood control.
RATE_LIMITED_METHODS: Final = frozenset({"sendMessage", "sendDocument", "sendPhoto", "sendInvoice"})
#: Methods returned by :meth:`FakeTelegramServer.sent_messages`.
SENT_MESSAGE_METHODS: Final = frozenset({"sendMessage", "sendDocument", "sendPhoto", "editMessageText"})

MAX_TEXT_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES: Final = 20 * 1024 * 1024

# Update types that getUpdates delivers when allowed_updates was never specified.
_NOT_DELIVERED_BY_DEFAULT: Final = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_INT_FIELDS: Final = frozenset(
    {
        "from_chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "reply_to_message_id",
        "max_connections",
        "cache_time",
        "user_id",
        "message_thread_id",
        "max_tip_amount",
        "subscription_period",
    }
)
_BOOL_FIELDS: Final = frozenset(
    {
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "show_alert",
        "ok",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "has_spoiler",
        "disable_content_type_detection",
        "is_flexible",
        "need_name",
        "need_phone_number",
        "need_email",
        "need_shipping_address",
        "send_phone_number_to_provider",
        "send_email_to_provider",
        "allow_paid_broadcast",
        "show_caption_above_media",
        "revoke_messages",
    }
)
_JSON_FIELDS: Final = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "prices",
        "link_preview_options",
        "reply_parameters",
        "suggested_tip_amounts",
        "media",
    }
)
_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_SECRET_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")
_BOT_COMMAND_IN_TEXT_RE: Final = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")
_INT_RE: Final = re.compile(r"^-?\d+$")


# --------------------------------------------------------------------------------------------------
# Public value types
# --------------------------------------------------------------------------------------------------


class BotAPIError(Exception):
    """An error answer of the Bot API (``{"ok": false, "error_code": ..., "description": ...}``).

    Raise it from a handler registered with :meth:`FakeTelegramServer.register_method`.
    """

    def __init__(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def body(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.error_code, "description": self.description}
        parameters: JSONDict = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            body["parameters"] = parameters
        return body


def _bad_request(text: str) -> BotAPIError:
    return BotAPIError(400, f"Bad Request: {text}")


def _too_many_requests(retry_after: int) -> BotAPIError:
    return BotAPIError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


class EntityParseError(ValueError):
    """Raised by :func:`parse_html` with the text Telegram puts after "can't parse entities: "."""


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request (``attach://`` reference or direct upload)."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


class Call(tuple[str, JSONDict]):
    """One request received by the fake: a ``(method, params)`` tuple with extra attributes.

    ``status`` is None while the request is being processed (e.g. a pending long poll), then the
    HTTP status; ``response`` is the JSON body sent back. Compares equal to a plain tuple.
    """

    status: int | None
    response: JSONDict | None
    received_at: float  # time.monotonic() when the request arrived (benchmarks time deliveries by it)

    def __new__(cls, method: str, params: JSONDict) -> Call:
        self = super().__new__(cls, (method, params))
        self.status = None
        self.response = None
        self.received_at = time.monotonic()
        return self

    @property
    def method(self) -> str:
        return self[0]

    @property
    def params(self) -> JSONDict:
        return self[1]

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def result(self) -> Any:
        """The ``result`` of a successful call (e.g. the Message dict), else None."""
        return self.response.get("result") if self.response and self.response.get("ok") else None

    @property
    def error_code(self) -> int | None:
        return self.response.get("error_code") if self.response else None

    @property
    def description(self) -> str | None:
        return self.response.get("description") if self.response else None


@dataclass
class RateLimits:
    """Flood-control settings, applied to :data:`RATE_LIMITED_METHODS`.

    Each limit is a token bucket: ``*_burst`` messages may go at once, then tokens refill at the
    sustained rate. The defaults follow Telegram's published limits (1 msg/s per chat with a
    small burst, 30 msg/s overall, 20 msg/min per group).
    """

    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    global_per_second: float = 30.0
    global_burst: int = 30
    # Messages sent with ``allow_paid_broadcast`` skip the free 30/s for a budget of their own (Telegram:
    # "up to 1000 messages per second ... for a fee"); the per-chat limit still applies.
    paid_per_second: float = 1000.0
    paid_burst: int = 1000
    group_per_minute: float = 20.0
    group_burst: int = 20


@dataclass
class StoredFile:
    """A file known to the fake (uploaded by the bot, registered by a test, or sent by URL)."""

    file_id: str
    file_unique_id: str
    file_path: str
    kind: str  # "documents" | "photos" | ...
    content: bytes | None
    file_size: int | None
    file_name: str | None = None
    mime_type: str | None = None

    def as_file(self) -> JSONDict:
        """The Bot API ``File`` object."""
        out: JSONDict = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.file_size is not None:
            out["file_size"] = self.file_size
        out["file_path"] = self.file_path
        return out

    def as_document(self) -> JSONDict:
        out: JSONDict = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.file_name:
            out["file_name"] = self.file_name
        if self.mime_type:
            out["mime_type"] = self.mime_type
        if self.file_size is not None:
            out["file_size"] = self.file_size
        return out


@dataclass
class WebhookState:
    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    ip_address: str | None = None


@dataclass
class _ForcedFailure:
    method: str  # lower-cased method name or "*"
    error: BotAPIError
    remaining: int
    chat_id: int | str | None


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int
    byte_offset: int


@dataclass
class _ApiResult:
    result: Any
    description: str | None = None


class _TokenBucket:
    def __init__(self, rate_per_second: float, capacity: float, now: float) -> None:
        self.rate = rate_per_second
        self.capacity = max(1.0, float(capacity))
        self.tokens = self.capacity
        self.updated = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


# --------------------------------------------------------------------------------------------------
# Text helpers (entities use UTF-16 code unit offsets, like Telegram)
# --------------------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_HTML_TAG_TYPES: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE: Final = re.compile(r"&(#[xX][0-9a-fA-F]{1,8}|#[0-9]{1,8}|[a-zA-Z]{2,8});")


def _decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the HTML entity at ``text[pos]`` (which is '&'): (decoded, consumed) or None."""
    match = _HTML_ENTITY_RE.match(text, pos)
    if match is None:
        return None
    name = match.group(1)
    if name.startswith("#"):
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code), match.end() - pos
    decoded = _NAMED_ENTITIES.get(name)
    if decoded is None:
        return None  # Telegram keeps unknown named entities literally
    return decoded, match.end() - pos


def _decode_attribute(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&" and (decoded := _decode_html_entity(value, i)) is not None:
            out.append(decoded[0])
            i += decoded[1]
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into (plain text, entities), raising :class:`EntityParseError`.

    Mirrors the Bot API rules: only the documented tags are allowed, ``&lt; &gt; &amp; &quot;`` and
    numeric entities are decoded, a bare ``<`` is an unsupported start tag, tags must nest.
    """
    out: list[str] = []
    out_len = 0
    stack: list[_OpenTag] = []
    entities: list[JSONDict] = []
    n = len(text)
    byte_pos = 0  # UTF-8 byte offset of text[i], maintained incrementally
    i = 0

    def bytes_of(start: int, end: int) -> int:
        return len(text[start:end].encode("utf-8"))

    while i < n:
        char = text[i]
        if char == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                out_len += utf16_len(decoded[0])
                byte_pos += bytes_of(i, i + decoded[1])
                i += decoded[1]
                continue
        if char != "<":
            out.append(char)
            out_len += utf16_len(char)
            byte_pos += bytes_of(i, i + 1)
            i += 1
            continue

        begin, begin_bytes = i, byte_pos
        i += 1
        if i < n and text[i] == "/":
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {begin_bytes}")
            i += 1
            name_start = i
            while i < n and text[i] != ">" and not text[i].isspace():
                i += 1
            end_name = text[name_start:i].lower()
            open_tag = stack[-1]
            if end_name and end_name != open_tag.name:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {begin_bytes}, expected "</{open_tag.name}>", '
                    f'found "</{end_name}>"'
                )
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {begin_bytes}")
            i += 1
            byte_pos = begin_bytes + bytes_of(begin, i)
            stack.pop()
            language = open_tag.attrs.get("class", "")
            if (
                open_tag.name == "code"
                and stack
                and stack[-1].name == "pre"
                and stack[-1].offset == open_tag.offset
                and language.startswith("language-")
            ):
                stack[-1].attrs["_language"] = language[len("language-") :]
                continue
            length = out_len - open_tag.offset
            if length > 0 and (entity := _html_entity(open_tag, length)) is not None:
                entities.append(entity)
            continue

        name_start = i
        while i < n and text[i] != ">" and not text[i].isspace():
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin_bytes}")
        name = text[name_start:i].lower()
        if name not in _HTML_TAG_TYPES:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {begin_bytes}')
        attrs: dict[str, str] = {}
        while True:
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_bytes}")
            if text[i] == ">":
                i += 1
                break
            attr_start = i
            while i < n and (text[i].isascii() and (text[i].isalnum() or text[i] in "-_")):
                i += 1
            attr = text[attr_start:i].lower()
            if not attr:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {begin_bytes}'
                )
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_bytes}")
            if text[i] != "=":
                attrs[attr] = ""  # valueless attribute, e.g. <blockquote expandable>
                continue
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_bytes}")
            if text[i] in "'\"":
                quote = text[i]
                end = text.find(quote, i + 1)
                if end == -1:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin_bytes}")
                raw_value = text[i + 1 : end]
                i = end + 1
            else:
                value_start = i
                while i < n and text[i].isascii() and (text[i].isalnum() or text[i] in ".-"):
                    i += 1
                raw_value = text[value_start:i]
            attrs[attr] = _decode_attribute(raw_value)
        byte_pos = begin_bytes + bytes_of(begin, i)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin_bytes}')
        stack.append(_OpenTag(name=name, attrs=attrs, offset=out_len, byte_offset=begin_bytes))

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _html_entity(tag: _OpenTag, length: int) -> JSONDict | None:
    entity: JSONDict = {"type": _HTML_TAG_TYPES[tag.name], "offset": tag.offset, "length": length}
    if tag.name == "a":
        href = tag.attrs.get("href", "")
        if not href:
            return None
        user = re.match(r"^tg://user\?id=(\d+)$", href)
        if user is not None:
            entity["type"] = "text_mention"
            entity["user"] = {"id": int(user.group(1)), "is_bot": False, "first_name": "User"}
        else:
            entity["url"] = href
    elif tag.name == "pre":
        if tag.attrs.get("_language"):
            entity["language"] = tag.attrs["_language"]
    elif tag.name == "blockquote":
        if "expandable" in tag.attrs:
            entity["type"] = "expandable_blockquote"
    elif tag.name == "tg-emoji":
        emoji_id = tag.attrs.get("emoji-id")
        if not emoji_id:
            return None
        entity["custom_emoji_id"] = emoji_id
    return entity


def _strip_text(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Trim surrounding whitespace as Telegram does, clipping entity ranges accordingly."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    new_len = utf16_len(stripped)
    clipped: list[JSONDict] = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(new_len, entity["offset"] + entity["length"] - lead)
        if end > start:
            clipped.append({**entity, "offset": start, "length": end - start})
    return stripped, clipped


def bot_command_entities(text: str) -> list[JSONDict]:
    """``bot_command`` entities the Telegram client/server attaches to a user's message text."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group(0))}
        for m in _BOT_COMMAND_IN_TEXT_RE.finditer(text)
    ]


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG/JPEG/GIF/WebP image, or None if the bytes aren't one."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width) & 0x3FFF, int(height) & 0x3FFF
        if chunk == b"VP8L":
            b = data[21:25]
            width = 1 + (((b[1] & 0x3F) << 8) | b[0])
            height = 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
            return width, height
        return None
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:
                i += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (segment_length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + segment_length
    return None


def _update_type(update: JSONDict) -> str | None:
    return next((key for key in update if key != "update_id"), None)


def _is_http_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


class _Unset:
    pass


_UNSET: Final = _Unset()


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


class FakeTelegramServer:
    """The fake Bot API server; use as ``async with FakeTelegramServer() as server: ...``.

    :param token: the only token accepted; the bot id is the part before ':'.
    :param rate_limits: True for Telegram's default limits, a :class:`RateLimits` for custom
        ones, False/None to disable flood control. Can be reassigned at runtime.
    :param strict_query_ids: answerCallbackQuery/answerPreCheckoutQuery only accept ids of
        queries pushed/delivered through this fake (like Telegram, which only knows queries it
        sent), and only once.
    :param strict_images: sendPhoto uploads must be real PNG/JPEG/GIF/WebP images
        (``400 Bad Request: IMAGE_PROCESS_FAILED`` otherwise); with False a non-image gets 1x1.
    :param clock: monotonic clock used for flood control (inject one for deterministic tests).
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        *,
        bot_username: str = "tianbao_test_bot",
        bot_first_name: str = "Tianbao Test Bot",
        rate_limits: bool | RateLimits | None = True,
        strict_query_ids: bool = True,
        strict_images: bool = True,
        first_update_id: int = 1,
        host: str = "127.0.0.1",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError(f"token must look like '<bot id>:<secret>', got {token!r}")
        self.token = token
        self.bot_id = int(bot_id)
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.rate_limits: RateLimits | None = None
        if isinstance(rate_limits, RateLimits):
            self.rate_limits = rate_limits
        elif rate_limits:
            self.rate_limits = RateLimits()
        self.strict_query_ids = strict_query_ids
        self.strict_images = strict_images
        self.host = host
        self._clock = clock

        self.calls: list[Call] = []
        self.webhook = WebhookState()
        self.commands: dict[str, list[JSONDict]] = {}  # key: json of (scope, language_code)
        self.files: dict[str, StoredFile] = {}  # by file_id
        self.callback_answers: dict[str, JSONDict] = {}  # callback_query_id -> answer params
        self.pre_checkout_answers: dict[str, JSONDict] = {}
        self.chat_actions: list[tuple[int | str, str]] = []

        self._updates: list[JSONDict] = []
        self._next_update_id = first_update_id
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._updates_changed = asyncio.Event()
        self._calls_changed = asyncio.Event()
        self._closing = False

        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._last_message_id: dict[int, int] = {}
        self._users: dict[int, JSONDict] = {}
        self._username_chats: dict[str, int] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._photo_groups: dict[str, list[JSONDict]] = {}
        self._file_counter = 0
        self._open_queries: set[str] = set()
        self._query_counter = 0

        self._forced: list[_ForcedFailure] = []
        self._chat_failures: dict[int | str, BotAPIError] = {}
        self._chat_buckets: dict[int | str, _TokenBucket] = {}
        self._group_buckets: dict[int | str, _TokenBucket] = {}
        self._global_bucket: _TokenBucket | None = None
        self._paid_bucket: _TokenBucket | None = None

        self._methods: dict[str, tuple[str, MethodHandler]] = {}
        for name, handler in {
            "getMe": self._get_me,
            "logOut": self._returns_true,
            "close": self._returns_true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
            "sendInvoice": self._send_invoice,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
        }.items():
            self.register_method(name, handler)

        self._app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        self._app.router.add_route("*", r"/bot{token:[^/]+}/{method:[^/]+}", self._handle_api)
        self._app.router.add_get(r"/file/bot{token:[^/]+}/{file_path:.+}", self._handle_file)
        self._app.router.add_route("*", r"/{tail:.*}", self._handle_not_found)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ---------------------------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` — pass to ``TelegramAPIServer.from_base``."""
        if self.port is None:
            raise RuntimeError("FakeTelegramServer is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._closing = False
        self._runner = web.AppRunner(self._app, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, shutdown_timeout=1.0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        self._closing = True
        self._signal_updates()  # release pending long polls
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegramServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def register_method(self, name: str, handler: MethodHandler) -> None:
        """Add (or replace) a Bot API method. ``handler(params)`` (sync or async) returns the
        ``result`` or raises :class:`BotAPIError`. Matching is case-insensitive like Telegram's."""
        self._methods[name.lower()] = (name, handler)

    # ------------------------------------------------------------------------------ call log API

    def calls_to(self, method: str) -> list[Call]:
        """All calls of ``method`` (successful or not), in order."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def sent_messages(self, chat_id: int | str | None = None) -> list[Call]:
        """Successful sendMessage/sendDocument/sendPhoto/editMessageText calls, in order,
        optionally only those addressed to ``chat_id``."""
        return [
            call
            for call in self.calls
            if call.method in SENT_MESSAGE_METHODS
            and call.ok
            and (chat_id is None or call.params.get("chat_id") == chat_id)
        ]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """``text``/``caption`` parameters (as sent, markup included) of :meth:`sent_messages`."""
        texts: list[str] = []
        for call in self.sent_messages(chat_id):
            value = call.params.get("text", call.params.get("caption"))
            if isinstance(value, str):
                texts.append(value)
        return texts

    def clear_calls(self) -> None:
        self.calls.clear()

    async def wait_for_call(
        self,
        method: str,
        *,
        chat_id: int | str | None = None,
        count: int = 1,
        predicate: Callable[[Call], bool] | None = None,
        wait_seconds: float = 5.0,
    ) -> Call:
        """Wait until the ``count``-th matching call has arrived and return it.

        A call is visible as soon as the request arrives (``status`` is None while a long poll
        is still pending). Raises AssertionError listing the calls seen on timeout.
        """
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            matches = [
                call
                for call in self.calls_to(method)
                if (chat_id is None or call.params.get("chat_id") == chat_id)
                and (predicate is None or predicate(call))
            ]
            if len(matches) >= count:
                return matches[count - 1]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [(call.method, call.status) for call in self.calls]
                raise AssertionError(f"no {count}x {method} call within {wait_seconds}s; calls: {seen}")
            changed = self._calls_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    # ---------------------------------------------------------------------------- failure control

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        *,
        chat_id: int | str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ("*" = any method), optionally only those
        for ``chat_id``, fail with ``error_code``. For 429 ``retry_after`` defaults to 1 and the
        description to Telegram's ``"Too Many Requests: retry after N"``."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = {
                400: "Bad Request",
                401: "Unauthorized",
                403: BLOCKED_DESCRIPTION,
                404: "Not Found",
                409: "Conflict",
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(error_code, "Error")
        error = BotAPIError(error_code, description, retry_after=retry_after)
        self._forced.append(
            _ForcedFailure(
                method="*" if method == "*" else method.lower(), error=error, remaining=times, chat_id=chat_id
            )
        )

    def fail_chat(self, chat_id: int | str, error_code: int, description: str) -> None:
        """Every call addressed to ``chat_id`` fails with this error until :meth:`unblock_chat`."""
        self._chat_failures[chat_id] = BotAPIError(error_code, description)

    def block_chat(self, chat_id: int | str, description: str = BLOCKED_DESCRIPTION) -> None:
        """The user blocked the bot: every call to ``chat_id`` answers 403 ``description``."""
        self.fail_chat(chat_id, 403, description)

    def unblock_chat(self, chat_id: int | str) -> None:
        self._chat_failures.pop(chat_id, None)

    # ---------------------------------------------------------------------------- updates (input)

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    def push_update(self, update: JSONDict) -> JSONDict:
        """Queue an Update for getUpdates (assigning ``update_id`` if missing) and wake pollers."""
        update = self._prepare_update(update)
        self._updates.append(update)
        self._signal_updates()
        return update

    async def deliver_webhook(
        self,
        url: str,
        update: JSONDict,
        secret_token: str | _Unset | None = _UNSET,
    ) -> int:
        """POST ``update`` to ``url`` like Telegram does and return the HTTP status.

        ``secret_token`` defaults to the one set with setWebhook; pass None to send no
        ``X-Telegram-Bot-Api-Secret-Token`` header.
        """
        update = self._prepare_update(update)
        token = self.webhook.secret_token if isinstance(secret_token, _Unset) else secret_token
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=json.dumps(update, ensure_ascii=False).encode(), headers=headers) as resp,
        ):
            await resp.read()
            return resp.status

    def user(
        self,
        user_id: int,
        first_name: str = "Test",
        language_code: str | None = "zh-hans",
        *,
        last_name: str | None = None,
        username: str | None = None,
    ) -> JSONDict:
        """Build (and remember, for chat objects) a Telegram User."""
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return user

    def user_message(
        self,
        chat_id: int,
        text: str,
        user_id: int | None = None,
        first_name: str = "Test",
        language_code: str = "zh-hans",
        *,
        username: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSONDict:
        """An Update with a text message from a user; bot commands get ``bot_command`` entities."""
        message = self._user_message_base(chat_id, user_id, first_name, language_code, username)
        message["text"] = text
        entities = bot_command_entities(text)
        if entities:
            message["entities"] = entities
        if reply_to_message_id is not None:
            replied = self._messages.get((chat_id, reply_to_message_id))
            if replied is not None:
                message["reply_to_message"] = replied
        return {"message": self._store(message)}

    def contact_message(
        self,
        chat_id: int,
        phone_number: str,
        user_id: int | None = None,
        first_name: str = "Test",
        language_code: str = "zh-hans",
        *,
        contact_user_id: int | _Unset | None = _UNSET,
        last_name: str | None = None,
    ) -> JSONDict:
        """An Update where the user shares a contact (by default their own, as a
        ``request_contact`` keyboard button does: ``contact.user_id == from.id``)."""
        message = self._user_message_base(chat_id, user_id, first_name, language_code, None)
        contact: JSONDict = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        owner = message["from"]["id"] if isinstance(contact_user_id, _Unset) else contact_user_id
        if owner is not None:
            contact["user_id"] = owner
        message["contact"] = contact
        return {"message": self._store(message)}

    def document_message(
        self,
        chat_id: int,
        content: bytes,
        file_name: str,
        mime_type: str | None = None,
        user_id: int | None = None,
        *,
        caption: str | None = None,
        first_name: str = "Test",
        language_code: str = "zh-hans",
    ) -> JSONDict:
        """An Update with a document sent by the user; the file is downloadable via getFile."""
        stored = self.add_file(content, file_name=file_name, mime_type=mime_type)
        message = self._user_message_base(chat_id, user_id, first_name, language_code, None)
        message["document"] = stored.as_document()
        if caption:
            message["caption"] = caption
        return {"message": self._store(message)}

    def photo_message(
        self,
        chat_id: int,
        content: bytes,
        user_id: int | None = None,
        *,
        caption: str | None = None,
        first_name: str = "Test",
        language_code: str = "zh-hans",
    ) -> JSONDict:
        """An Update with a photo (list of PhotoSize) sent by the user; raises ValueError if
        ``content`` is not an image."""
        size = _image_size(content)
        if size is None:
            raise ValueError("content is not a PNG/JPEG/GIF/WebP image")
        message = self._user_message_base(chat_id, user_id, first_name, language_code, None)
        message["photo"] = self._store_photo(content, size)
        if caption:
            message["caption"] = caption
        return {"message": self._store(message)}

    def callback_query(
        self,
        chat_id: int,
        data: str,
        message_id: int,
        user_id: int | None = None,
        first_name: str = "Test",
        language_code: str = "zh-hans",
    ) -> JSONDict:
        """An Update where the user pressed an inline button with ``data`` on message
        ``message_id`` (the stored message is embedded if the fake knows it)."""
        user = self._user_for(chat_id, user_id, first_name, language_code, None)
        message = self._messages.get((chat_id, message_id)) or {
            "message_id": message_id,
            "from": self._bot_user(),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        query: JSONDict = {
            "id": self._new_query_id(),
            "from": user,
            "message": message,
            "chat_instance": str(abs(hash((self.bot_id, chat_id))) % 10**19),
            "data": data,
        }
        return {"callback_query": query}

    def pre_checkout_query(
        self,
        user_id: int,
        invoice_payload: str,
        total_amount: int,
        currency: str = "XTR",
        first_name: str = "Test",
        language_code: str = "zh-hans",
    ) -> JSONDict:
        """An Update asking the bot to confirm a checkout (answer with answerPreCheckoutQuery)."""
        query: JSONDict = {
            "id": self._new_query_id(),
            "from": self.user(user_id, first_name, language_code),
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": invoice_payload,
        }
        return {"pre_checkout_query": query}

    def successful_payment_message(
        self,
        chat_id: int,
        invoice_payload: str,
        total_amount: int,
        currency: str = "XTR",
        user_id: int | None = None,
        *,
        telegram_payment_charge_id: str | None = None,
        provider_payment_charge_id: str = "",
    ) -> JSONDict:
        """An Update with the service message Telegram sends after a successful payment."""
        message = self._user_message_base(chat_id, user_id, "Test", "zh-hans", None)
        message["successful_payment"] = {
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": invoice_payload,
            "telegram_payment_charge_id": telegram_payment_charge_id or f"stxFAKE{secrets.token_hex(12)}",
            "provider_payment_charge_id": provider_payment_charge_id,
        }
        return {"message": self._store(message)}

    # ------------------------------------------------------------------------------- state access

    def add_file(
        self,
        content: bytes | None,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        kind: str = "documents",
    ) -> StoredFile:
        """Register a file (e.g. one a user sent) so getFile and the download route know it."""
        self._file_counter += 1
        extension = ""
        if file_name and "." in file_name:
            extension = file_name.rsplit(".", 1)[1].lower()
        elif kind == "photos":
            extension = "jpg"
        path = f"{kind}/file_{self._file_counter}" + (f".{extension}" if extension else "")
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        prefix = {"documents": "BQACAgIAAxkBAA", "photos": "AgACAgIAAxkBAA"}.get(kind, "CQACAgIAAxkBAA")
        stored = StoredFile(
            file_id=prefix + secrets.token_urlsafe(45),
            file_unique_id="AQAD" + secrets.token_urlsafe(10),
            file_path=path,
            kind=kind,
            content=content,
            file_size=len(content) if content is not None else None,
            file_name=file_name,
            mime_type=mime_type,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[path] = stored
        return stored

    def get_message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """Current state of a message (reflects edits; None once deleted or if unknown)."""
        return self._messages.get((chat_id, message_id))

    def chat_history(self, chat_id: int) -> list[JSONDict]:
        """All known, non-deleted messages of a chat (user's and bot's), by message_id."""
        return [msg for (cid, _), msg in sorted(self._messages.items()) if cid == chat_id]

    # ------------------------------------------------------------------------------ HTTP plumbing

    @staticmethod
    def _json(body: JSONDict, status: int = 200) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(body, ensure_ascii=False).encode(),
            content_type="application/json",
        )

    async def _handle_not_found(self, request: web.Request) -> web.Response:
        return self._json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._json(BotAPIError(401, "Unauthorized").body(), 401)
        stored = self._files_by_path.get(request.match_info["file_path"])
        if stored is None or stored.content is None:
            return self._json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        return web.Response(body=stored.content, content_type=stored.mime_type or "application/octet-stream")

    async def _handle_api(self, request: web.Request) -> web.Response:
        raw_method = request.match_info["method"]
        entry = self._methods.get(raw_method.lower())
        method = entry[0] if entry else raw_method
        try:
            params = await self._read_params(request)
        except BotAPIError as exc:
            call = self._record(method, {})
            return self._finish(call, exc.body(), exc.error_code)
        call = self._record(method, params)
        try:
            if request.match_info["token"] != self.token:
                raise BotAPIError(401, "Unauthorized")
            if entry is None:
                raise BotAPIError(404, "Not Found: method not found")
            self._check_forced_failure(method, params)
            self._check_chat_failure(params)
            if method in RATE_LIMITED_METHODS:
                self._check_rate_limits(params)
            result = entry[1](params)
            if inspect.isawaitable(result):
                result = await result
        except BotAPIError as exc:
            return self._finish(call, exc.body(), exc.error_code)
        except asyncio.CancelledError:
            self._finish(call, {"ok": False, "error_code": 499, "description": "client went away"}, 499)
            raise
        body: JSONDict = {"ok": True}
        if isinstance(result, _ApiResult):
            body["result"] = result.result
            if result.description is not None:
                body["description"] = result.description
        else:
            body["result"] = result
        return self._finish(call, body, 200)

    def _record(self, method: str, params: JSONDict) -> Call:
        call = Call(method, params)
        self.calls.append(call)
        self._signal_calls()
        return call

    def _finish(self, call: Call, body: JSONDict, status: int) -> web.Response:
        call.status = status
        call.response = body
        self._signal_calls()
        return self._json(body, status)

    def _signal_calls(self) -> None:
        event, self._calls_changed = self._calls_changed, asyncio.Event()
        event.set()

    def _signal_updates(self) -> None:
        event, self._updates_changed = self._updates_changed, asyncio.Event()
        event.set()

    async def _read_params(self, request: web.Request) -> JSONDict:
        params: JSONDict = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                raw = await request.read()
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        raise _bad_request("can't parse JSON encoded request") from exc
                    if not isinstance(body, dict):
                        raise _bad_request("can't parse JSON encoded request")
                    params.update(body)
            elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
                try:
                    form = await request.post()
                except web.HTTPRequestEntityTooLarge as exc:
                    raise BotAPIError(413, "Request Entity Too Large") from exc
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = UploadedFile(
                            filename=value.filename,
                            content=value.file.read(),
                            content_type=value.content_type,
                        )
                    else:
                        params[key] = value
        params = {key: self._coerce(key, value) for key, value in params.items()}
        used: set[str] = set()
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                ref = value[len("attach://") :]
                if ref in files:
                    params[key] = files[ref]
                    used.add(ref)
        for key, uploaded in files.items():
            if key not in used and not isinstance(params.get(key), str | int):
                params[key] = uploaded
        return params

    @staticmethod
    def _coerce(key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if key == "chat_id":
            return int(value) if _INT_RE.match(value) else value
        if key in _INT_FIELDS:
            if not _INT_RE.match(value.strip()):
                raise _bad_request(f"invalid {key} specified")
            return int(value)
        if key in _BOOL_FIELDS:
            lowered = value.strip().lower()
            if lowered in ("true", "1"):
                return True
            if lowered in ("false", "0", ""):
                return False
            raise _bad_request(f"invalid {key} specified")
        if key in _JSON_FIELDS:
            try:
                return json.loads(value)
            except ValueError as exc:
                what = "reply keyboard markup" if key == "reply_markup" else key
                raise _bad_request(f"can't parse {what} JSON object") from exc
        return value

    # ------------------------------------------------------------------------- checks before call

    def _check_forced_failure(self, method: str, params: JSONDict) -> None:
        for forced in self._forced:
            if forced.method not in ("*", method.lower()):
                continue
            if forced.chat_id is not None and params.get("chat_id") != forced.chat_id:
                continue
            forced.remaining -= 1
            if forced.remaining <= 0:
                self._forced.remove(forced)
            raise forced.error

    def _check_chat_failure(self, params: JSONDict) -> None:
        chat_id = params.get("chat_id")
        if chat_id is not None and chat_id in self._chat_failures:
            raise self._chat_failures[chat_id]

    def _check_rate_limits(self, params: JSONDict) -> None:
        limits = self.rate_limits
        chat_id = params.get("chat_id")
        if limits is None or chat_id is None:
            return
        now = self._clock()
        buckets: list[_TokenBucket] = []
        if params.get("allow_paid_broadcast") in (True, "true", "True"):
            if self._paid_bucket is None:
                self._paid_bucket = _TokenBucket(limits.paid_per_second, limits.paid_burst, now)
            buckets.append(self._paid_bucket)
        else:
            if self._global_bucket is None:
                self._global_bucket = _TokenBucket(limits.global_per_second, limits.global_burst, now)
            buckets.append(self._global_bucket)
        chat_bucket = self._chat_buckets.get(chat_id)
        if chat_bucket is None:
            chat_bucket = _TokenBucket(limits.per_chat_per_second, limits.per_chat_burst, now)
            self._chat_buckets[chat_id] = chat_bucket
        buckets.append(chat_bucket)
        if isinstance(chat_id, int) and chat_id < 0:
            group_bucket = self._group_buckets.get(chat_id)
            if group_bucket is None:
                group_bucket = _TokenBucket(limits.group_per_minute / 60.0, limits.group_burst, now)
                self._group_buckets[chat_id] = group_bucket
            buckets.append(group_bucket)
        wait = max(bucket.wait_time(now) for bucket in buckets)
        if wait > 0:
            raise _too_many_requests(max(1, math.ceil(wait)))
        for bucket in buckets:
            bucket.take()

    # -------------------------------------------------------------------------------- model bits

    def _bot_user(self) -> JSONDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _resolve_chat_id(self, params: JSONDict) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        if isinstance(chat_id, bool):
            raise _bad_request("chat not found")
        if isinstance(chat_id, int):
            return chat_id
        if isinstance(chat_id, str) and re.match(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$", chat_id):
            name = chat_id[1:].lower()
            if name not in self._username_chats:
                self._username_chats[name] = -1000000000000 - len(self._username_chats) - 1
            return self._username_chats[name]
        raise _bad_request("chat not found")

    def _chat(self, chat_id: int) -> JSONDict:
        if chat_id > 0:
            chat: JSONDict = {"id": chat_id}
            user = self._users.get(chat_id)
            chat["first_name"] = user["first_name"] if user else "Test"
            if user and user.get("last_name"):
                chat["last_name"] = user["last_name"]
            if user and user.get("username"):
                chat["username"] = user["username"]
            chat["type"] = "private"
            return chat
        for name, known in self._username_chats.items():
            if known == chat_id:
                return {"id": chat_id, "title": name, "username": name, "type": "channel"}
        if chat_id <= -1000000000000:
            return {"id": chat_id, "title": "Test Supergroup", "type": "supergroup"}
        return {"id": chat_id, "title": "Test Group", "type": "group"}

    def _next_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _store(self, message: JSONDict) -> JSONDict:
        key = (message["chat"]["id"], message["message_id"])
        self._messages[key] = message
        if message["message_id"] > self._last_message_id.get(key[0], 0):
            self._last_message_id[key[0]] = message["message_id"]
        return message

    def _user_for(
        self,
        chat_id: int,
        user_id: int | None,
        first_name: str,
        language_code: str | None,
        username: str | None,
    ) -> JSONDict:
        if user_id is None:
            user_id = chat_id if chat_id > 0 else 1000001
        known = self._users.get(user_id)
        if known is not None and known.get("first_name") == first_name and username is None:
            return dict(known)
        return dict(self.user(user_id, first_name, language_code, username=username))

    def _user_message_base(
        self,
        chat_id: int,
        user_id: int | None,
        first_name: str,
        language_code: str | None,
        username: str | None,
    ) -> JSONDict:
        user = self._user_for(chat_id, user_id, first_name, language_code, username)
        return {
            "message_id": self._next_message_id(chat_id),
            "from": user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }

    def _new_bot_message(self, chat_id: int, params: JSONDict) -> JSONDict:
        message: JSONDict = {
            "message_id": 0,  # assigned after validation by _commit_bot_message
            "from": self._bot_user(),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        reply_to = params.get("reply_to_message_id")
        reply_parameters = params.get("reply_parameters")
        allow_without = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id")
            allow_without = allow_without or bool(reply_parameters.get("allow_sending_without_reply"))
        if reply_to is not None:
            replied = self._messages.get((chat_id, int(reply_to)))
            if replied is not None:
                message["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
            elif not allow_without:
                raise _bad_request("message to be replied not found")
        return message

    def _commit_bot_message(self, message: JSONDict) -> JSONDict:
        message["message_id"] = self._next_message_id(message["chat"]["id"])
        return self._store(message)

    def _new_query_id(self) -> str:
        self._query_counter += 1
        query_id = str(4_000_000_000_000_000_000 + self.bot_id * 1000 + self._query_counter)
        self._open_queries.add(query_id)
        return query_id

    def _prepare_update(self, update: JSONDict) -> JSONDict:
        update = dict(update)
        if _update_type(update) is None:
            raise ValueError("an Update needs exactly one payload field besides update_id")
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        for key in ("callback_query", "pre_checkout_query", "shipping_query", "inline_query"):
            query = update.get(key)
            if isinstance(query, dict) and "id" in query:
                self._open_queries.add(str(query["id"]))
        for key in ("message", "edited_message", "channel_post"):
            message = update.get(key)
            if isinstance(message, dict) and "chat" in message and "message_id" in message:
                self._store(message)
        return update

    def _text_and_entities(
        self, params: JSONDict, text_key: str, entities_key: str
    ) -> tuple[str | None, list[JSONDict]]:
        text = params.get(text_key)
        if text is None:
            return None, []
        if not isinstance(text, str):
            text = str(text)
        entities = params.get(entities_key)
        if isinstance(entities, list):
            return _strip_text(text, [e for e in entities if isinstance(e, dict)])
        parse_mode = params.get("parse_mode")
        if isinstance(parse_mode, str) and parse_mode.lower() == "html":
            try:
                plain, parsed = parse_html(text)
            except EntityParseError as exc:
                raise _bad_request(f"can't parse entities: {exc}") from exc
            return _strip_text(plain, parsed)
        return _strip_text(text, [])

    def _apply_caption(self, message: JSONDict, params: JSONDict) -> None:
        caption, entities = self._text_and_entities(params, "caption", "caption_entities")
        if caption:
            if utf16_len(caption) > MAX_CAPTION_LENGTH:
                raise _bad_request("message caption is too long")
            message["caption"] = caption
            if entities:
                message["caption_entities"] = entities

    @staticmethod
    def _inline_markup(params: JSONDict) -> JSONDict | None:
        """Validate reply_markup; return it if it is an inline keyboard (the only kind Telegram
        echoes back in the Message)."""
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
                raise _bad_request("can't parse reply keyboard markup JSON object")
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request(
                'can\'t parse inline keyboard button: field "inline_keyboard" must be an Array'
            )
        actions = (
            "url",
            "callback_data",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad_request(
                        'can\'t parse inline keyboard button: Field "text" must be of type String'
                    )
                if not any(key in button for key in actions):
                    raise _bad_request(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not (1 <= len(str(data).encode("utf-8")) <= 64):
                    raise _bad_request("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not str(url).startswith(("http://", "https://", "tg://")):
                    raise _bad_request("BUTTON_URL_INVALID")
        return {"inline_keyboard": rows}

    def _input_file(self, params: JSONDict, key: str, kind: str) -> StoredFile | list[JSONDict]:
        """Resolve an InputFile parameter: upload, file_id, or HTTP URL. Photos resolve to sizes."""
        value = params.get(key)
        if value is None or value == "":
            raise _bad_request(f"there is no {key} in the request")
        if isinstance(value, UploadedFile):
            if not value.content:
                raise _bad_request("file must be non-empty")
            if kind == "photos":
                size = _image_size(value.content)
                if size is None:
                    if self.strict_images:
                        raise _bad_request("IMAGE_PROCESS_FAILED")
                    size = (1, 1)
                width, height = size
                if width + height > 10000 or max(width, height) > 20 * max(1, min(width, height)):
                    raise _bad_request("PHOTO_INVALID_DIMENSIONS")
                return self._store_photo(value.content, size)
            content_type = value.content_type
            mime = mimetypes.guess_type(value.filename)[0]
            if mime is None and content_type and content_type != "application/octet-stream":
                mime = content_type
            return self.add_file(
                value.content, file_name=value.filename, mime_type=mime or "application/octet-stream"
            )
        if not isinstance(value, str):
            raise _bad_request(f"there is no {key} in the request")
        if value.startswith("attach://"):
            raise _bad_request(WRONG_FILE.removeprefix("Bad Request: "))
        if _is_http_url(value):
            name = urlsplit(value).path.rsplit("/", 1)[-1] or None
            if kind == "photos":
                return self._store_photo(None, (800, 600))
            return self.add_file(None, file_name=name, kind=kind)
        if value in self._photo_groups:
            if kind != "photos":
                raise _bad_request(f"can't use file of type Photo as {kind[:-1].capitalize()}")
            return self._photo_groups[value]
        stored = self.files.get(value)
        if stored is None:
            raise _bad_request(WRONG_FILE.removeprefix("Bad Request: "))
        if kind == "photos":
            raise _bad_request(f"can't use file of type {stored.kind[:-1].capitalize()} as Photo")
        return stored

    def _store_photo(self, content: bytes | None, size: tuple[int, int]) -> list[JSONDict]:
        width, height = size
        longest = max(width, height)
        dims: list[tuple[int, int]] = []
        for limit in (90, 320, 800, 1280, 2560):
            if longest > limit:
                scale = limit / longest
                dims.append((max(1, round(width * scale)), max(1, round(height * scale))))
            else:
                dims.append((width, height))
                break
        total_area = dims[-1][0] * dims[-1][1]
        sizes: list[JSONDict] = []
        for w, h in dims:
            stored = self.add_file(content, kind="photos")
            if content is not None:
                stored.file_size = max(1, len(content) * w * h // max(1, total_area))
            photo_size: JSONDict = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": w,
                "height": h,
            }
            if stored.file_size is not None:
                photo_size["file_size"] = stored.file_size
            sizes.append(photo_size)
        for photo_size in sizes:
            self._photo_groups[photo_size["file_id"]] = sizes
        return sizes

    # ----------------------------------------------------------------------------- method handlers

    async def _returns_true(self, params: JSONDict) -> bool:
        return True

    async def _get_me(self, params: JSONDict) -> JSONDict:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _select_updates(self, limit: int) -> list[JSONDict]:
        allowed = self._allowed_updates
        selected: list[JSONDict] = []
        for update in self._updates:
            kind = _update_type(update)
            if allowed is None and kind in _NOT_DELIVERED_BY_DEFAULT:
                continue
            if allowed is not None and kind not in allowed:
                continue
            selected.append(update)
            if len(selected) >= limit:
                break
        return selected

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self.webhook.url:
            raise BotAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        limit = min(100, max(1, int(params.get("limit") or 100)))
        timeout = max(0, int(params.get("timeout") or 0))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed] or None

        self._poll_generation += 1
        generation = self._poll_generation
        self._signal_updates()  # an older pending poll gets terminated with 409

        if isinstance(offset, int):
            if offset < 0:
                self._updates = self._updates[offset:]
            else:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise BotAPIError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._select_updates(limit)
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                return batch
            changed = self._updates_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _set_webhook(self, params: JSONDict) -> _ApiResult:
        url = params.get("url") or ""
        if not isinstance(url, str):
            raise _bad_request("bad webhook: invalid URL")
        if not url:
            return await self._delete_webhook(params)
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not parts.hostname:
            raise _bad_request("bad webhook: invalid URL host specified")
        if parts.port not in (None, 80, 88, 443, 8443):
            raise _bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.match(str(secret)):
            raise _bad_request("secret token contains unallowed characters")
        max_connections = int(params.get("max_connections") or 40)
        if not 1 <= max_connections <= 100:
            raise _bad_request("bad webhook: invalid max_connections")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed] or None
        already = self.webhook.url == url
        self.webhook = WebhookState(
            url=url,
            secret_token=str(secret) if secret is not None else None,
            max_connections=max_connections,
            allowed_updates=self._allowed_updates,
            ip_address=params.get("ip_address"),
        )
        return _ApiResult(True, "Webhook is already set" if already else "Webhook was set")

    async def _delete_webhook(self, params: JSONDict) -> _ApiResult:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        was_set = bool(self.webhook.url)
        self.webhook = WebhookState()
        return _ApiResult(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.ip_address:
                info["ip_address"] = self.webhook.ip_address
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
        return info

    @staticmethod
    def _commands_key(params: JSONDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    async def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        normalized: list[JSONDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("can't parse BotCommand")
            name = str(command.get("command", "")).removeprefix("/")
            description = str(command.get("description", "")).strip()
            if not _COMMAND_RE.match(name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            normalized.append({"command": name, "description": description})
        self.commands[self._commands_key(params)] = normalized
        return True

    async def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return self.commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: JSONDict) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _send_message(self, params: JSONDict) -> JSONDict:
        chat_id = self._resolve_chat_id(params)
        text, entities = self._text_and_entities(params, "text", "entities")
        if not text:
            raise _bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        markup = self._inline_markup(params)
        message = self._new_bot_message(chat_id, params)
        message["text"] = text
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        return self._commit_bot_message(message)

    def _message_to_edit(self, params: JSONDict) -> JSONDict | None:
        """The stored message addressed by chat_id+message_id, or None for inline messages."""
        if params.get("inline_message_id"):
            return None
        chat_id = self._resolve_chat_id(params)
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        message = self._messages.get((chat_id, int(message_id)))
        if message is None:
            raise _bad_request("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _bad_request("message can't be edited")
        return message

    async def _edit_message_text(self, params: JSONDict) -> JSONDict | bool:
        text, entities = self._text_and_entities(params, "text", "entities")
        if not text:
            raise _bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        markup = self._inline_markup(params)
        message = self._message_to_edit(params)
        if message is None:
            return True
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        if (
            message.get("text") == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == markup
        ):
            raise _bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        message["text"] = text
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    async def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict | bool:
        markup = self._inline_markup(params)
        message = self._message_to_edit(params)
        if message is None:
            return True
        if message.get("reply_markup") == markup:
            raise _bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    async def _delete_message(self, params: JSONDict) -> bool:
        chat_id = self._resolve_chat_id(params)
        message_id = params.get("message_id")
        if message_id is None or self._messages.pop((chat_id, int(message_id)), None) is None:
            raise _bad_request("message to delete not found")
        return True

    def _answer_query(self, query_id: Any, store: dict[str, JSONDict], params: JSONDict) -> None:
        if query_id is None or query_id == "":
            raise _bad_request("QUERY_ID_INVALID")
        query_id = str(query_id)
        if self.strict_query_ids:
            if query_id not in self._open_queries:
                raise _bad_request(QUERY_INVALID.removeprefix("Bad Request: "))
            self._open_queries.discard(query_id)
        store[query_id] = params

    async def _answer_callback_query(self, params: JSONDict) -> bool:
        text = params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        self._answer_query(params.get("callback_query_id"), self.callback_answers, params)
        return True

    async def _answer_pre_checkout_query(self, params: JSONDict) -> bool:
        if "ok" not in params:
            raise _bad_request('parameter "ok" is required')
        if params["ok"] is False and not params.get("error_message"):
            raise _bad_request("ERROR_MESSAGE_EMPTY")
        self._answer_query(params.get("pre_checkout_query_id"), self.pre_checkout_answers, params)
        return True

    async def _send_document(self, params: JSONDict) -> JSONDict:
        chat_id = self._resolve_chat_id(params)
        markup = self._inline_markup(params)
        message = self._new_bot_message(chat_id, params)
        self._apply_caption(message, params)
        stored = self._input_file(params, "document", "documents")
        assert isinstance(stored, StoredFile)
        message["document"] = stored.as_document()
        if markup is not None:
            message["reply_markup"] = markup
        return self._commit_bot_message(message)

    async def _send_photo(self, params: JSONDict) -> JSONDict:
        chat_id = self._resolve_chat_id(params)
        markup = self._inline_markup(params)
        message = self._new_bot_message(chat_id, params)
        self._apply_caption(message, params)
        sizes = self._input_file(params, "photo", "photos")
        assert isinstance(sizes, list)
        message["photo"] = sizes
        if params.get("has_spoiler"):
            message["has_media_spoiler"] = True
        if markup is not None:
            message["reply_markup"] = markup
        return self._commit_bot_message(message)

    async def _send_chat_action(self, params: JSONDict) -> bool:
        chat_id = self._resolve_chat_id(params)
        action = params.get("action")
        if action not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        self.chat_actions.append((chat_id, str(action)))
        return True

    async def _get_file(self, params: JSONDict) -> JSONDict:
        file_id = params.get("file_id")
        if not file_id:
            raise _bad_request("file_id not specified")
        stored = self.files.get(str(file_id))
        if stored is None:
            raise _bad_request("invalid file_id")
        if stored.file_size is not None and stored.file_size > MAX_DOWNLOAD_BYTES:
            raise _bad_request("file is too big")
        return stored.as_file()

    async def _send_invoice(self, params: JSONDict) -> JSONDict:
        chat_id = self._resolve_chat_id(params)
        title = str(params.get("title") or "")
        description = str(params.get("description") or "")
        payload = str(params.get("payload") or "")
        currency = str(params.get("currency") or "")
        if not 1 <= len(title) <= 32:
            raise _bad_request("INVOICE_TITLE_INVALID" if title else "title is empty")
        if not 1 <= len(description) <= 255:
            raise _bad_request("INVOICE_DESCRIPTION_INVALID" if description else "description is empty")
        if not 1 <= len(payload.encode("utf-8")) <= 128:
            raise _bad_request("PAYLOAD_INVALID" if payload else "payload is empty")
        if not re.match(r"^[A-Z]{3}$", currency):
            raise _bad_request("CURRENCY_INVALID")
        prices = params.get("prices")
        if not isinstance(prices, list) or not prices:
            raise _bad_request("can't parse prices JSON object")
        total = 0
        for price in prices:
            if (
                not isinstance(price, dict)
                or not isinstance(price.get("amount"), int)
                or not price.get("label")
            ):
                raise _bad_request("can't parse prices JSON object")
            total += price["amount"]
        if currency == "XTR":
            if params.get("provider_token"):
                raise _bad_request("PROVIDER_TOKEN_INVALID")
            if len(prices) != 1:
                raise _bad_request("STARS_INVOICE_INVALID")
        elif not params.get("provider_token"):
            raise _bad_request("PAYMENT_PROVIDER_INVALID")
        if total <= 0:
            raise _bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        markup = self._inline_markup(params)
        message = self._new_bot_message(chat_id, params)
        message["invoice"] = {
            "title": title,
            "description": description,
            "start_parameter": str(params.get("start_parameter") or ""),
            "currency": currency,
            "total_amount": total,
        }
        message["reply_markup"] = markup or {
            "inline_keyboard": [[{"text": f"Pay {total} {currency}", "pay": True}]]
        }
        return self._commit_bot_message(message)

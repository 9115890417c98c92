"""How much one web chat, and one client address, may send (docs/operations.md "Web chat limits").

The web chat needs no account, so without limits anyone could open 2,000 chats in four seconds or
send ten 10 MB photos in half a second, all kept. Four fixed-window counts, each per chat and per client
address where it makes sense:

- messages (texts, taps, contacts, locations and uploads alike) per minute;
- uploads kept per hour, and their bytes per hour;
- new chats per address per hour (a chat is new until the bot has said something in it).

The counts live in Redis when ``TIANBAO_REDIS_URL`` is set, so every bot replica shares them, else in
the process (``backend/throttle.py``, the stores staff sign-in counts with). A message is counted even
when refused, so a flood stays refused; an upload is counted only once it is kept, and an upload the
limits refuse gives back what it took.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.settings import Settings
from backend.throttle import AttemptStore

MINUTE = 60
HOUR = 3600
KEY_PREFIX = "tianbao:webchat-limit:"


@dataclass(frozen=True)
class WebChatLimits:
    messages_per_minute: int
    messages_per_minute_per_address: int
    uploads_per_hour: int
    uploads_per_hour_per_address: int
    upload_bytes_per_hour: int
    upload_bytes_per_hour_per_address: int
    new_chats_per_hour_per_address: int
    max_upload_bytes: int
    max_image_pixels: int

    @classmethod
    def of(cls, settings: Settings) -> WebChatLimits:
        return cls(
            messages_per_minute=settings.webchat_messages_per_minute,
            messages_per_minute_per_address=settings.webchat_messages_per_minute_per_address,
            uploads_per_hour=settings.webchat_uploads_per_hour,
            uploads_per_hour_per_address=settings.webchat_uploads_per_hour_per_address,
            upload_bytes_per_hour=settings.webchat_upload_bytes_per_hour,
            upload_bytes_per_hour_per_address=settings.webchat_upload_bytes_per_hour_per_address,
            new_chats_per_hour_per_address=settings.webchat_new_chats_per_hour_per_address,
            max_upload_bytes=settings.webchat_max_upload_bytes,
            max_image_pixels=settings.max_image_pixels,
        )


class LimitExceeded(Exception):
    """``code`` names the refusal (and its template ``webchat/<code>``); ``retry_after`` is in seconds."""

    def __init__(self, code: str, retry_after: int) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = max(retry_after, 1)


@dataclass(frozen=True)
class _Count:
    key: str
    seconds: int
    limit: int
    amount: int = 1


class WebChatGuard:
    def __init__(self, store: AttemptStore, limits: WebChatLimits, prefix: str = KEY_PREFIX) -> None:
        self.store = store
        self.limits = limits
        self.prefix = prefix

    def _key(self, kind: str, who: str) -> str:
        return f"{self.prefix}{kind}:{who}"

    async def message(self, chat_id: str, address: str | None, *, new_chat: bool) -> None:
        """Count one input; :class:`LimitExceeded` when the chat or the address is over its limit."""
        limits, place = self.limits, address or "unknown"
        if new_chat:
            await self._within(
                "too_many_new_chats",
                [_Count(self._key("chats", place), HOUR, limits.new_chats_per_hour_per_address)],
            )
        await self._within(
            "too_many_messages",
            [
                _Count(self._key("messages", chat_id), MINUTE, limits.messages_per_minute),
                _Count(self._key("messages-address", place), MINUTE, limits.messages_per_minute_per_address),
            ],
        )

    async def upload(self, chat_id: str, address: str | None, size: int) -> None:
        """Count one upload about to be kept; refused (and given back) past a count or a byte limit."""
        limits, place = self.limits, address or "unknown"
        await self._within(
            "too_many_uploads",
            [
                _Count(self._key("uploads", chat_id), HOUR, limits.uploads_per_hour),
                _Count(self._key("uploads-address", place), HOUR, limits.uploads_per_hour_per_address),
            ],
            give_back=True,
        )
        try:
            await self._within(
                "upload_bytes_exceeded",
                [
                    _Count(self._key("bytes", chat_id), HOUR, limits.upload_bytes_per_hour, size),
                    _Count(
                        self._key("bytes-address", place),
                        HOUR,
                        limits.upload_bytes_per_hour_per_address,
                        size,
                    ),
                ],
                give_back=True,
            )
        except LimitExceeded:
            for key in (self._key("uploads", chat_id), self._key("uploads-address", place)):
                await self.store.release(key)
            raise

    async def _within(self, code: str, counts: list[_Count], *, give_back: bool = False) -> None:
        """Add every count; past any limit, refuse with the longest wait among those exceeded."""
        over: list[_Count] = []
        for count in counts:
            if await self.store.hit(count.key, count.seconds, count.amount) > count.limit:
                over.append(count)
        if not over:
            return
        waits = [await self.store.seconds_left(count.key) or count.seconds for count in over]
        if give_back:
            for count in counts:
                await self.store.release(count.key, count.amount)
        raise LimitExceeded(code, max(waits))

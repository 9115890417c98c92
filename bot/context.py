"""Who is talking, on which channel, in which language: resolved once per update for every handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from backend.people.schemas import IdentityOpen, IdentityOut
from bot.client import BackendClient, IdentityKey
from messages import normalize_locale

WEBCHAT = "webchat"
TELEGRAM = "telegram"


@dataclass
class ChatContext:
    """Lazy: the identity is fetched (or taken from the cache) only when a handler asks for it."""

    key: IdentityKey
    address: str
    first_name: str | None
    language_code: str | None
    backend: BackendClient
    default_locale: str
    _identity: IdentityOut | None = None

    async def identity(self) -> IdentityOut | None:
        if self._identity is None:
            self._identity = await self.backend.identity(self.key)
        return self._identity

    async def open(self) -> IdentityOut:
        """/start: create or refresh the identity (the one backend call of that step)."""
        self._identity = await self.backend.open_identity(
            IdentityOpen(
                channel=self.key.channel,
                external_id=self.key.external_id,
                address=self.address,
                first_name=self.first_name,
                language_code=self.language_code,
            )
        )
        return self._identity

    async def ensure(self) -> IdentityOut:
        """The identity, opening one for a user who never pressed /start (e.g. typed first)."""
        return await self.identity() or await self.open()

    def remember(self, identity: IdentityOut) -> None:
        self._identity = identity

    async def locale(self) -> str:
        cached = self._identity or self.backend.identities.get(self.key)
        if cached is not None:
            return cached.locale
        return normalize_locale(self.language_code, default=self.default_locale)


class ChatContextMiddleware(BaseMiddleware):
    def __init__(self, backend: BackendClient, default_locale: str) -> None:
        self.backend = backend
        self.default_locale = default_locale

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        chat = data.get("event_chat")
        if user is None:
            return await handler(event, data)
        webchat_id: str | None = data.get("webchat_id")
        first_name: str | None = user.first_name
        if webchat_id is not None:
            key, address = IdentityKey(WEBCHAT, webchat_id), webchat_id
            # A browser may not tell us a name; aiogram's User needs one, so the update carries a
            # placeholder and the real (possibly absent) name travels beside it.
            first_name = data.get("webchat_first_name")
        else:
            key, address = IdentityKey(TELEGRAM, str(user.id)), str(chat.id if chat else user.id)
        data["ctx"] = ChatContext(
            key=key,
            address=address,
            first_name=first_name,
            language_code=user.language_code,
            backend=self.backend,
            default_locale=self.default_locale,
        )
        return await handler(event, data)

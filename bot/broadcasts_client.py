"""The bot's broadcast routes, through the backend client's one request path (auth, errors, identity)."""

from __future__ import annotations

from typing import Any

from backend.broadcasts.schemas import AckOut, BroadcastChatOut
from bot.client import BackendClient, IdentityKey


class BroadcastCalls:
    def __init__(self, backend: BackendClient, key: IdentityKey) -> None:
        self.backend, self.key = backend, key

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self.backend.request(method, path, identity=self.key, **kwargs)

    async def ack(self, broadcast_id: int) -> AckOut:
        return AckOut.model_validate(await self._call("POST", f"/api/bot/broadcasts/{broadcast_id}/ack"))

    async def view(self, broadcast_id: int, locale: str) -> BroadcastChatOut:
        data = await self._call("GET", f"/api/bot/broadcasts/{broadcast_id}", params={"locale": locale})
        return BroadcastChatOut.model_validate(data)

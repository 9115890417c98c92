"""The optional Redis connection (FSM storage, rate limits, scheduler locks)."""

from __future__ import annotations

from typing import Literal

from redis.asyncio import Redis


class RedisHandle:
    """A lazily opened Redis client, or nothing when Redis is not configured."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Redis | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def client(self) -> Redis:
        if not self.url:
            raise RuntimeError("Redis is not configured (TIANBAO_REDIS_URL)")
        if self._client is None:
            self._client = Redis.from_url(self.url)
        return self._client

    async def state(self) -> Literal["ok", "error", "disabled"]:
        if not self.enabled:
            return "disabled"
        try:
            await self.client().ping()
            return "ok"
        except Exception:
            return "error"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

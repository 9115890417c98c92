"""The bot's only way into the system of record: HTTP calls to the backend API.

Embedded, the calls go through an in-process ASGI transport (no socket); standalone, over HTTP to
``TIANBAO_BACKEND_URL``. Either way the bot authenticates with the service token and names the chat
identity it acts for. The identity is cached briefly because every update needs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from backend.outbox.schemas import DeliveryResult, OutboxItem
from backend.people.schemas import IdentityOpen, IdentityOut

IDENTITY_HEADER = "X-Tianbao-Identity"


class BackendError(Exception):
    """The backend refused a request; ``code`` names a message template when the user can fix it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BackendUnavailable(Exception):
    """The backend could not be reached (network, timeout, 5xx)."""


@dataclass(frozen=True)
class IdentityKey:
    channel: str
    external_id: str

    @property
    def header(self) -> str:
        return f"{self.channel}:{self.external_id}"


class IdentityCache:
    """A small TTL cache: the identity (locale, phone state, menu) is read on every update."""

    def __init__(self, ttl_seconds: float, max_entries: int = 50_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[IdentityKey, tuple[float, IdentityOut]] = {}

    def get(self, key: IdentityKey) -> IdentityOut | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if time.monotonic() - stored_at > self.ttl:
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: IdentityKey, value: IdentityOut) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; a cold cache only costs one call per user
        self._entries[key] = (time.monotonic(), value)

    def drop(self, key: IdentityKey) -> None:
        self._entries.pop(key, None)


class BackendClient:
    def __init__(
        self, http: httpx.AsyncClient, *, service_token: str, identity_cache_seconds: float = 30.0
    ) -> None:
        self.http = http
        self.service_token = service_token
        self.identities = IdentityCache(identity_cache_seconds)

    @classmethod
    def for_app(cls, app: Any, *, service_token: str, identity_cache_seconds: float = 30.0) -> BackendClient:
        transport = httpx.ASGITransport(app=app)
        http = httpx.AsyncClient(transport=transport, base_url="http://backend", timeout=30.0)
        return cls(http, service_token=service_token, identity_cache_seconds=identity_cache_seconds)

    @classmethod
    def for_url(cls, url: str, *, service_token: str, identity_cache_seconds: float = 30.0) -> BackendClient:
        http = httpx.AsyncClient(base_url=url, timeout=30.0)
        return cls(http, service_token=service_token, identity_cache_seconds=identity_cache_seconds)

    async def close(self) -> None:
        await self.http.aclose()

    def _headers(self, identity: IdentityKey | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.service_token}"}
        if identity is not None:
            headers[IDENTITY_HEADER] = identity.header
        return headers

    async def _request(
        self,
        method: str,
        path: str,
        *,
        identity: IdentityKey | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        try:
            response = await self.http.request(
                method, path, json=json, params=params, headers=self._headers(identity)
            )
        except httpx.HTTPError as exc:
            raise BackendUnavailable(str(exc)) from exc
        if response.status_code >= 500:
            raise BackendUnavailable(f"{response.status_code} from {path}")
        if response.status_code >= 400:
            raise _backend_error(response)
        return response.json()

    # identities -------------------------------------------------------------------------------------
    async def open_identity(self, request: IdentityOpen) -> IdentityOut:
        data = await self._request("POST", "/api/bot/identities", json=request.model_dump())
        identity = IdentityOut.model_validate(data)
        self.identities.put(IdentityKey(request.channel, request.external_id), identity)
        return identity

    async def identity(self, key: IdentityKey) -> IdentityOut | None:
        """The cached identity, or the backend's; None when the user never started the bot."""
        cached = self.identities.get(key)
        if cached is not None:
            return cached
        try:
            data = await self._request("GET", "/api/bot/me", identity=key)
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise
        identity = IdentityOut.model_validate(data)
        self.identities.put(key, identity)
        return identity

    async def choose_locale(self, key: IdentityKey, locale: str) -> IdentityOut:
        data = await self._request("POST", "/api/bot/me/locale", identity=key, json={"locale": locale})
        return self._remember(key, data)

    async def bind_phone(self, key: IdentityKey, phone_number: str) -> IdentityOut:
        data = await self._request(
            "POST", "/api/bot/me/phone", identity=key, json={"phone_number": phone_number}
        )
        return self._remember(key, data)

    def _remember(self, key: IdentityKey, data: Any) -> IdentityOut:
        identity = IdentityOut.model_validate(data)
        self.identities.put(key, identity)
        return identity

    # delivery ---------------------------------------------------------------------------------------
    async def claim_outbox(self, *, worker_id: str, limit: int, channels: list[str]) -> list[OutboxItem]:
        data = await self._request(
            "POST", "/api/outbox/claim", json={"worker_id": worker_id, "limit": limit, "channels": channels}
        )
        return [OutboxItem.model_validate(item) for item in data]

    async def report_outbox(self, *, worker_id: str, results: list[DeliveryResult]) -> int:
        payload = {"worker_id": worker_id, "results": [r.model_dump(mode="json") for r in results]}
        data = await self._request("POST", "/api/outbox/results", json=payload)
        return int(data["updated"])


def _backend_error(response: httpx.Response) -> BackendError:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    if isinstance(detail, dict):
        return BackendError(
            response.status_code, str(detail.get("code", "error")), str(detail.get("message", ""))
        )
    return BackendError(response.status_code, "error", str(detail))

"""The bot's publicity routes, through the backend client's one request path (auth, errors, identity).
A feature client of its own (``BackendClient.request`` and ``send`` are the shared primitives)."""

from __future__ import annotations

from typing import Any

from backend.publicity.schemas import NoticeOut, ObjectionOut
from bot.client import BackendClient, IdentityKey


class PublicityCalls:
    def __init__(self, backend: BackendClient, key: IdentityKey) -> None:
        self.backend, self.key = backend, key

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        return await self.backend.request(method, path, identity=self.key, json=json)

    async def notices(self) -> list[NoticeOut]:
        return [NoticeOut.model_validate(n) for n in await self._call("GET", "/api/bot/publicity/notices")]

    async def notice(self, notice_id: int) -> NoticeOut:
        return NoticeOut.model_validate(await self._call("GET", f"/api/bot/publicity/notices/{notice_id}"))

    async def by_token(self, token: str) -> NoticeOut:
        return NoticeOut.model_validate(await self._call("GET", f"/api/bot/publicity/by-token/{token}"))

    async def object_to(
        self, notice_id: int, reason: str, photo_document_id: int | None = None
    ) -> ObjectionOut:
        body = {"reason": reason, "photo_document_id": photo_document_id}
        data = await self._call("POST", f"/api/bot/publicity/notices/{notice_id}/objections", json=body)
        return ObjectionOut.model_validate(data)

    async def upload_photo(self, data: bytes) -> int:
        """A photo for an objection, stored by the backend (decoded whole, SHA-256); its document id."""
        response = await self.backend.send(
            "POST",
            "/api/bot/publicity/media",
            identity=self.key,
            files={"file": ("photo.jpg", data, "image/jpeg")},
        )
        return int(response.json()["id"])

"""The bot's inspection routes (R-LIA-5), through the backend client's one request path (auth, errors,
identity). A feature client of its own (``BackendClient.request`` and ``send`` are the shared primitives)."""

from __future__ import annotations

from typing import Any

from backend.inspections.schemas import MyInspectionOut
from bot.client import BackendClient, IdentityKey

BASE = "/api/bot/inspections"


class InspectionCalls:
    def __init__(self, backend: BackendClient, key: IdentityKey) -> None:
        self.backend, self.key = backend, key

    async def _call(self, method: str, path: str, json: Any = None) -> MyInspectionOut:
        data = await self.backend.request(method, path, identity=self.key, json=json)
        return MyInspectionOut.model_validate(data)

    async def inspection(self, inspection_id: int) -> MyInspectionOut:
        return await self._call("GET", f"{BASE}/{inspection_id}")

    async def confirm(self, inspection_id: int, round_: int) -> MyInspectionOut:
        return await self._call("POST", f"{BASE}/{inspection_id}/confirm", {"round": round_})

    async def reschedule(self, inspection_id: int, reason: str, day: str) -> MyInspectionOut:
        body = {"reason": reason, "proposed_day": day}
        return await self._call("POST", f"{BASE}/{inspection_id}/reschedule", body)

    async def fixed(self, hazard_id: int, photo_document_id: int) -> MyInspectionOut:
        body = {"photo_document_id": photo_document_id}
        return await self._call("POST", f"{BASE}/hazards/{hazard_id}/fixed", body)

    async def upload_photo(self, data: bytes) -> int:
        """A photo of a fixed hazard, stored by the backend (decoded whole, SHA-256); its document id."""
        response = await self.backend.send(
            "POST", f"{BASE}/media", identity=self.key, files={"file": ("photo.jpg", data, "image/jpeg")}
        )
        return int(response.json()["id"])

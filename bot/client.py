"""The bot's only way into the system of record: HTTP calls to the backend API.

Embedded, the calls go through an in-process ASGI transport (no socket); standalone, over HTTP to
``TIANBAO_BACKEND_URL``. Either way the bot authenticates with the service token and names the chat
identity it acts for. The identity is cached briefly because every update needs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from backend.alerts.schemas import MessageIn, MessageOut
from backend.callbacks.schemas import CallbackOut
from backend.claims.schemas import ClaimOut, ClaimReportIn
from backend.enrollment.schemas import (
    ApplicationOut,
    ApplicationSubmit,
    EndorsementOut,
    EndorsementRequest,
    PaymentStartOut,
    PolicyOut,
    TelegramPaymentIn,
)
from backend.outbox.schemas import DeliveryResult, OutboxItem
from backend.outbox.sms.schemas import LinkOut
from backend.people.schemas import DeviceEndedOut, DeviceOut, IdentityOpen, IdentityOut
from backend.phone_codes.schemas import CodeSentOut
from bot.transport import (
    BackendReply,
    BackendTransport,
    BackendUnavailable,
    HttpTransport,
    InProcessTransport,
)

IDENTITY_HEADER = "X-Tianbao-Identity"


class BackendError(Exception):
    """The backend refused a request; ``code`` names a message template when the user can fix it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail: dict[str, Any] = {}


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
        self, transport: BackendTransport, *, service_token: str, identity_cache_seconds: float = 30.0
    ) -> None:
        self.transport = transport
        self.service_token = service_token
        self.identities = IdentityCache(identity_cache_seconds)

    @classmethod
    def for_app(cls, app: Any, *, service_token: str, identity_cache_seconds: float = 30.0) -> BackendClient:
        return cls(
            InProcessTransport(app),
            service_token=service_token,
            identity_cache_seconds=identity_cache_seconds,
        )

    @classmethod
    def for_url(cls, url: str, *, service_token: str, identity_cache_seconds: float = 30.0) -> BackendClient:
        return cls(
            HttpTransport(url), service_token=service_token, identity_cache_seconds=identity_cache_seconds
        )

    async def close(self) -> None:
        await self.transport.close()

    def _headers(self, identity: IdentityKey | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.service_token}"}
        if identity is not None:
            headers[IDENTITY_HEADER] = identity.header
        return headers

    async def send(
        self, method: str, path: str, *, identity: IdentityKey | None = None, **body: Any
    ) -> BackendReply:
        """One call; a 5xx is "unavailable", any other refusal a :class:`BackendError`. Public for the
        features' own client modules (``bot/publicity_client.py``), as ``request`` is."""
        response = await self.transport.send(method, path, headers=self._headers(identity), **body)
        if response.status_code >= 500:
            raise BackendUnavailable(f"{response.status_code} from {path}")
        if response.status_code >= 400:
            raise _backend_error(response)
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        identity: IdentityKey | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = await self.send(method, path, identity=identity, json=json, params=params)
        return None if response.status_code == 204 else response.json()

    async def download(self, path: str) -> bytes:
        """A file the backend serves to the service token (outbox attachments)."""
        return (await self.send("GET", path)).content

    # identities -------------------------------------------------------------------------------------
    async def open_identity(self, request: IdentityOpen) -> IdentityOut:
        response = await self.send("POST", "/api/bot/identities", json=request)
        identity = IdentityOut.model_validate_json(response.content)
        self.identities.put(IdentityKey(request.channel, request.external_id), identity)
        return identity

    async def identity(self, key: IdentityKey) -> IdentityOut | None:
        """The cached identity, or the backend's; None when the user never started the bot."""
        cached = self.identities.get(key)
        if cached is not None:
            return cached
        try:
            response = await self.send("GET", "/api/bot/me", identity=key)
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise
        identity = IdentityOut.model_validate_json(response.content)
        self.identities.put(key, identity)
        return identity

    async def choose_locale(self, key: IdentityKey, locale: str) -> IdentityOut:
        data = await self.request("POST", "/api/bot/me/locale", identity=key, json={"locale": locale})
        return self._remember(key, data)

    async def bind_phone(self, key: IdentityKey, phone_number: str) -> IdentityOut:
        data = await self.request(
            "POST", "/api/bot/me/phone", identity=key, json={"phone_number": phone_number}
        )
        return self._remember(key, data)

    async def send_phone_code(self, key: IdentityKey, phone_number: str | None = None) -> CodeSentOut:
        """Text a one-time code to ``phone_number`` (or the chat's bound number) for this chat."""
        data = await self.request(
            "POST", "/api/bot/me/phone/code", identity=key, json={"phone_number": phone_number}
        )
        return CodeSentOut.model_validate(data)

    async def verify_phone_code(self, key: IdentityKey, code: str) -> IdentityOut:
        data = await self.request("POST", "/api/bot/me/phone/verify", identity=key, json={"code": code})
        return self._remember(key, data)

    async def devices(self, key: IdentityKey) -> list[DeviceOut]:
        data = await self.request("GET", "/api/bot/me/devices", identity=key)
        return [DeviceOut.model_validate(item) for item in data]

    async def end_device(self, key: IdentityKey, device_id: int) -> DeviceEndedOut:
        data = await self.request("POST", f"/api/bot/me/devices/{device_id}/end", identity=key)
        return DeviceEndedOut.model_validate(data)

    async def open_link(self, key: IdentityKey, token: str) -> LinkOut:
        """What a text's short link opens in this chat (``backend.outbox.sms.service.open_link``)."""
        data = await self.request("POST", "/api/bot/links/open", identity=key, json={"token": token})
        return LinkOut.model_validate(data)

    def _remember(self, key: IdentityKey, data: Any) -> IdentityOut:
        identity = IdentityOut.model_validate(data)
        self.identities.put(key, identity)
        return identity

    # reference data (service token only) ------------------------------------------------------------
    async def region_children(self, code: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self.request("GET", f"/api/regions/{code}/children")
        return data

    async def region(self, code: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("GET", f"/api/regions/{code}")
        return data

    async def search_regions(
        self, q: str, *, under: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"q": q, "limit": limit}
        if under:
            params["under"] = under
        data: list[dict[str, Any]] = await self.request("GET", "/api/regions/search", params=params)
        return data

    async def products(self, kind: str | None = None) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self.request(
            "GET", "/api/products", params={"kind": kind} if kind else None
        )
        return data

    async def product(self, code: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("GET", f"/api/products/{code}")
        return data

    async def industries(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self.request("GET", "/api/products/liability/industries")
        return data

    async def risk_questions(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self.request("GET", "/api/products/liability/risk-questions")
        return data

    async def quote(self, product_code: str, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("POST", f"/api/products/{product_code}/quote", json=body)
        return data

    # enrollment, acting for one identity --------------------------------------------------------------
    async def scan(self, key: IdentityKey, payload: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "POST", "/api/bot/scans", identity=key, json={"payload": payload}
        )
        return data

    async def submit_application(self, key: IdentityKey, body: ApplicationSubmit) -> ApplicationOut:
        data = await self.request(
            "POST", "/api/bot/applications", identity=key, json=body.model_dump(mode="json")
        )
        return ApplicationOut.model_validate(data)

    async def my_applications(self, key: IdentityKey) -> list[ApplicationOut]:
        data = await self.request("GET", "/api/bot/applications", identity=key)
        return [ApplicationOut.model_validate(item) for item in data]

    async def signer_roles(self, key: IdentityKey, insured: dict[str, str]) -> list[str]:
        """R-ENR-5: the signer roles the backend accepts for this insured through this account."""
        data = await self.request("POST", "/api/bot/signer-roles", identity=key, json=insured)
        return list(data["roles"])

    async def taken_ear_tags(self, key: IdentityKey, tags: list[str]) -> list[str]:
        data = await self.request("POST", "/api/bot/ear-tags/check", identity=key, json={"tags": tags})
        return list(data["taken"])

    async def start_payment(self, key: IdentityKey, application_id: int, provider: str) -> PaymentStartOut:
        data = await self.request(
            "POST",
            f"/api/bot/applications/{application_id}/payments",
            identity=key,
            json={"provider": provider},
        )
        return PaymentStartOut.model_validate(data)

    async def telegram_precheck(self, key: IdentityKey, body: TelegramPaymentIn) -> None:
        await self.request(
            "POST", "/api/bot/payments/telegram/precheck", identity=key, json=body.model_dump()
        )

    async def telegram_paid(self, key: IdentityKey, body: TelegramPaymentIn) -> PolicyOut:
        data = await self.request("POST", "/api/bot/payments/telegram", identity=key, json=body.model_dump())
        return PolicyOut.model_validate(data)

    async def my_policies(self, key: IdentityKey) -> list[PolicyOut]:
        data = await self.request("GET", "/api/bot/policies", identity=key)
        return [PolicyOut.model_validate(item) for item in data]

    async def my_policy(self, key: IdentityKey, policy_id: int) -> PolicyOut:
        return PolicyOut.model_validate(
            await self.request("GET", f"/api/bot/policies/{policy_id}", identity=key)
        )

    async def document(self, key: IdentityKey, document_id: int) -> tuple[str, bytes]:
        response = await self.send("GET", f"/api/bot/documents/{document_id}", identity=key)
        disposition = response.headers.get("content-disposition", "")
        name = disposition.split("''", 1)[-1] if "''" in disposition else f"document-{document_id}.pdf"
        return name, response.content

    async def upload_authorisation(self, key: IdentityKey, data: bytes) -> int:
        response = await self.send(
            "POST",
            "/api/bot/documents",
            identity=key,
            files={"file": ("authorisation.jpg", data, "image/jpeg")},
            data={"kind": "authorisation"},
        )
        return int(response.json()["id"])

    async def request_endorsement(
        self, key: IdentityKey, policy_id: int, body: EndorsementRequest
    ) -> EndorsementOut:
        data = await self.request(
            "POST", f"/api/bot/policies/{policy_id}/endorsements", identity=key, json=body.model_dump()
        )
        return EndorsementOut.model_validate(data)

    # claims -----------------------------------------------------------------------------------------
    async def leave_message(self, key: IdentityKey, body: MessageIn) -> MessageOut:
        """Free text for the staff of the insured's region; a resend of the same update is one message."""
        data = await self.request(
            "POST", "/api/bot/messages", identity=key, json=body.model_dump(mode="json")
        )
        return MessageOut.model_validate(data)

    async def report_claim(self, key: IdentityKey, body: ClaimReportIn) -> ClaimOut:
        data = await self.request("POST", "/api/bot/claims", identity=key, json=body.model_dump(mode="json"))
        return ClaimOut.model_validate(data)

    async def my_claims(self, key: IdentityKey) -> list[ClaimOut]:
        return [
            ClaimOut.model_validate(c) for c in await self.request("GET", "/api/bot/claims", identity=key)
        ]

    async def my_callback(self, key: IdentityKey, callback_id: int) -> CallbackOut:
        return CallbackOut.model_validate(
            await self.request("GET", f"/api/bot/callbacks/{callback_id}", identity=key)
        )

    async def answer_callback(
        self, key: IdentityKey, callback_id: int, question: str, value: str
    ) -> CallbackOut:
        body = {"question": question, "value": value}
        data = await self.request(
            "POST", f"/api/bot/callbacks/{callback_id}/answers", identity=key, json=body
        )
        return CallbackOut.model_validate(data)

    async def my_claim(self, key: IdentityKey, claim_id: int) -> ClaimOut:
        return ClaimOut.model_validate(await self.request("GET", f"/api/bot/claims/{claim_id}", identity=key))

    async def upload_claim_media(
        self, key: IdentityKey, data: bytes, filename: str, content_type: str
    ) -> int:
        response = await self.send(
            "POST", "/api/bot/claims/media", identity=key, files={"file": (filename, data, content_type)}
        )
        return int(response.json()["id"])

    async def add_claim_evidence(
        self, key: IdentityKey, claim_id: int, purpose: str, ids: list[int]
    ) -> ClaimOut:
        data = await self.request(
            "POST",
            f"/api/bot/claims/{claim_id}/attachments",
            identity=key,
            json={"purpose": purpose, "document_ids": ids},
        )
        return ClaimOut.model_validate(data)

    async def answer_settlement(
        self,
        key: IdentityKey,
        claim_id: int,
        answer: str,
        reason: str | None,
        expected_amount_fen: int | None = None,
    ) -> ClaimOut:
        data = await self.request(
            "POST",
            f"/api/bot/claims/{claim_id}/settlement",
            identity=key,
            json={"answer": answer, "reason": reason, "expected_amount_fen": expected_amount_fen},
        )
        return ClaimOut.model_validate(data)

    async def index_status(self, key: IdentityKey, policy_id: int) -> dict[str, Any]:
        data: dict[str, Any] = await self.request(
            "GET", "/api/bot/index/status", identity=key, params={"policy_id": policy_id}
        )
        return data

    # delivery ---------------------------------------------------------------------------------------
    async def claim_outbox(self, *, worker_id: str, limit: int, channels: list[str]) -> list[OutboxItem]:
        data = await self.request(
            "POST", "/api/outbox/claim", json={"worker_id": worker_id, "limit": limit, "channels": channels}
        )
        return [OutboxItem.model_validate(item) for item in data]

    async def report_outbox(self, *, worker_id: str, results: list[DeliveryResult]) -> int:
        payload = {"worker_id": worker_id, "results": [r.model_dump(mode="json") for r in results]}
        data = await self.request("POST", "/api/outbox/results", json=payload)
        return int(data["updated"])

    async def report_sms_receipts(self, receipts: list[dict[str, Any]]) -> int:
        """The provider's delivery receipts: ``{external_message_id, delivered, reason, at}`` each."""
        data = await self.request("POST", "/api/outbox/sms/receipts", json={"receipts": receipts})
        return int(data["updated"])

    async def stop_sms_bulk(self, *, phone: str, source: str) -> None:
        await self.request("POST", "/api/outbox/sms/stops", json={"phone": phone, "source": source})


def _backend_error(response: BackendReply) -> BackendError:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    if isinstance(detail, dict):
        error = BackendError(
            response.status_code, str(detail.get("code", "error")), str(detail.get("message", ""))
        )
        fields = detail.get("detail")
        if isinstance(fields, dict):
            error.detail = fields  # the refusal's fields (``tries_left``), for the bot's own texts
        return error
    return BackendError(response.status_code, "error", str(detail))

"""The SMS provider interface: one batch in (a template, its parameters, up to N numbers), one result per
number out. Providers: ``log`` (the embedded default, nothing leaves the machine) and ``tencent``.

In mainland China a text can only go out through a template the provider has approved, under an approved
signature name (签名), so a batch names the provider's template id and carries the template's parameters
in order; the provider renders the text. Every number of a batch gets the same text. A result's outcome is
the outbox's own ``Outcome``, so the delivery worker reports it unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field, SecretStr

from backend.outbox.schemas import Outcome

__all__ = [
    "MAX_NUMBERS_PER_CALL",
    "Outcome",
    "SmsBatch",
    "SmsProvider",
    "SmsProviderSettings",
    "SmsReceipt",
    "SmsReply",
    "SmsResult",
    "mask_phone",
    "normalize_phone",
    "sms_segments",
]

# Tencent's SendSms takes at most 200 numbers per call.
MAX_NUMBERS_PER_CALL = 200

# A mainland mobile number: 11 digits starting with 1, then a second digit 3-9.
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_phone(raw: str) -> str:
    """E.164 (``+8613800138000``) from the forms people and Tencent write: ``13800138000``,
    ``86 138-0013-8000``, ``0086...``, ``+86...``, full-width digits. Raises ValueError otherwise."""
    text = unicodedata.normalize("NFKC", raw).strip()
    digits = re.sub(r"[\s\-()]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if _MAINLAND_MOBILE.match(digits):
        return "+86" + digits
    if digits.startswith("86") and _MAINLAND_MOBILE.match(digits[2:]):
        return "+" + digits
    if digits.startswith("+86"):
        if _MAINLAND_MOBILE.match(digits[3:]):
            return digits
        raise ValueError(f"not a mainland mobile number: {raw!r}")
    if _E164.match(digits):
        return digits
    raise ValueError(f"not a phone number: {raw!r}")


def mask_phone(phone: str) -> str:
    """``+86138****8000``: enough to tell numbers apart in a log, not enough to call one."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:-8] + "****" + phone[-4:]


def sms_segments(text: str) -> int:
    """How many parts (and fees) a mainland text takes: 70 characters fit one, a longer one goes in
    parts of 67 (the rest carries the part header). The signature 【...】 counts as text."""
    length = len(text)
    return 1 if length <= 70 else -(-length // 67)


@dataclass(frozen=True, slots=True)
class SmsBatch:
    """One template sent with the same parameters to several numbers (E.164, distinct).

    ``session_context`` is echoed by Tencent in each result (up to 512 bytes; e.g. the outbox ids).
    ``text`` is the text as rendered locally: shown by the log provider and kept in records, never sent
    (the provider renders its approved template itself).
    """

    template_id: str
    sign_name: str
    params: tuple[str, ...]
    phones: tuple[str, ...]
    session_context: str = ""
    text: str | None = None

    def __post_init__(self) -> None:
        if not self.template_id:
            raise ValueError("template_id is required")
        if not self.phones:
            raise ValueError("a batch needs at least one number")
        if len(set(self.phones)) != len(self.phones):
            # Two copies of one number in a call would text that person twice.
            raise ValueError("a batch must not name a number twice")
        if len(self.session_context.encode("utf-8")) >= 512:
            raise ValueError("session_context must be under 512 bytes")

    @classmethod
    def build(
        cls,
        *,
        template_id: str,
        sign_name: str,
        params: Sequence[str],
        phones: Sequence[str],
        session_context: str = "",
        text: str | None = None,
    ) -> SmsBatch:
        return cls(
            template_id=template_id,
            sign_name=sign_name,
            params=tuple(str(p) for p in params),
            phones=tuple(phones),
            session_context=session_context,
            text=text,
        )


@dataclass(frozen=True, slots=True)
class SmsResult:
    """What became of one number of a batch.

    ``code``/``message`` are the provider's own (``Ok``, ``LimitExceeded.PhoneNumberThirtySecondLimit``,
    ``HTTP 502``...). ``retry_after`` is set when the provider's rule says how long to wait. ``account_wide``
    marks a cause that is the account's, not the number's (balance, credentials, request rate): every
    other message of the channel would meet it too, so the worker may hold the whole channel.
    """

    phone: str
    outcome: Outcome
    serial_id: str | None = None
    code: str = ""
    message: str = ""
    retry_after: float | None = None
    account_wide: bool = False
    fee: int = 0

    @property
    def error(self) -> str | None:
        """The reason to record on the outbox row, None when sent."""
        if self.outcome is Outcome.SENT:
            return None
        return f"{self.code}: {self.message}"[:500] if self.message else self.code[:500]


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    """A delivery receipt (回执): the carrier's word on whether the text reached the phone."""

    phone: str
    serial_id: str
    delivered: bool
    code: str  # the carrier's status code, e.g. DELIVRD
    description: str
    received_at: datetime | None  # when the phone got it (aware), None when the provider gave no time


@dataclass(frozen=True, slots=True)
class SmsReply:
    """A text a person sent back (上行). ``unsubscribe`` is set for TD, T, N, 退订 and the like: the number
    is then stopped for bulk, never for one-time codes or the notices the law requires."""

    phone: str
    text: str
    sign_name: str
    extend: str
    received_at: datetime
    unsubscribe: bool = field(default=False)


class SmsProvider(Protocol):
    async def send(self, batch: SmsBatch) -> list[SmsResult]:
        """One result per number of ``batch``, in the batch's order. Never raises for a provider or network
        failure: those are results (``retry``/``failed``)."""
        ...

    async def aclose(self) -> None: ...


class SmsProviderSettings(BaseModel):
    """The SMS provider's settings; the backend's settings map ``TIANBAO_SMS_*`` onto this model."""

    provider: Literal["log", "tencent"] = "log"
    # Tencent Cloud API key (访问密钥) and the SMS application (SdkAppId) the templates belong to.
    secret_id: str = ""
    secret_key: SecretStr = SecretStr("")
    sdk_app_id: str = ""
    sign_name: str = ""
    region: str = "ap-guangzhou"
    endpoint: str = "https://sms.tencentcloudapi.com"
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_numbers_per_call: int = Field(default=MAX_NUMBERS_PER_CALL, ge=1, le=MAX_NUMBERS_PER_CALL)
    # Numbers per second the account may send (its contracted rate): one bucket for every worker when
    # ``redis_url`` is set (``RedisNumberPacer``), else this process's own.
    rate_per_second: float = Field(default=200.0, gt=0)
    redis_url: str = ""
    # One call spends at most this share of a second's budget, so calls stay small and regular and network
    # jitter never makes the provider see more than its rate in any one-second window.
    burst_seconds: float = Field(default=0.25, gt=0, le=1.0)
    # Calls of one batch in flight at once: the rate holds even when a round trip is longer than a pace step.
    max_calls_in_flight: int = Field(default=4, ge=1, le=64)
    # The log provider: where the JSON-lines file goes and how many texts the in-memory ring keeps.
    log_dir: Path = Path("./var")
    log_ring_size: int = Field(default=1000, ge=1)

    @property
    def numbers_per_call(self) -> int:
        """Numbers in one provider call: the provider's cap, or the pace step when that is smaller."""
        step = max(1, int(self.rate_per_second * self.burst_seconds))
        return min(self.max_numbers_per_call, step)

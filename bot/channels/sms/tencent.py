"""Tencent Cloud SMS over its documented HTTP API (API 3.0, ``SendSms`` version 2021-01-11), with httpx.

A call carries one template, its parameters and up to 200 numbers, signed with TC3-HMAC-SHA256
(``tc3.py``). Tencent answers either ``Response.Error`` (the whole request refused: every number of the
call gets that code) or ``Response.SendStatusSet`` (one status per number). Every code maps to an outbox
outcome by the rules in ``RULES`` below; the reasons for each choice are written next to it.

Also here: the parsers for Tencent's two callbacks, the delivery receipt (短信下发状态通知, a JSON list) and
the reply (短信回复, one JSON object), which the backend's callback endpoint feeds. Tencent does not sign
its callbacks, so that endpoint must be unguessable (a secret in its path) and answer ``CALLBACK_OK``.

A timeout leaves a call's fate unknown: Tencent may have sent the texts. The numbers are reported
``retry`` (a lost notice is worse than a rare second copy) with the code ``Timeout`` so the record says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from backend.outbox.schemas import Outcome
from bot.channels.sms import tc3
from bot.channels.sms.pacing import NumberPacer, Pacer
from bot.channels.sms.provider import (
    SmsBatch,
    SmsProviderSettings,
    SmsReceipt,
    SmsReply,
    SmsResult,
    mask_phone,
    normalize_phone,
)

log = logging.getLogger(__name__)

SERVICE: Final = "sms"
ACTION: Final = "SendSms"
VERSION: Final = "2021-01-11"
CONTENT_TYPE: Final = "application/json; charset=utf-8"
# Tencent's day (daily limits, the 8:00-22:00 window for marketing texts) is Beijing time.
CHINA_TIME: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
# What the callback endpoint answers Tencent when it took the report (otherwise Tencent sends it again).
CALLBACK_OK: Final = {"result": 0, "errmsg": "OK"}
# An account-wide wait at most this long is waited out by the pacer; a longer one holds the provider:
# every send answers ``retry`` at once, without a call, until it has passed.
INLINE_PAUSE_SECONDS: Final = 5.0


# ------------------------------------------------------------------------------------- code → outcome

RetryAfter = float | Callable[[float], float] | None


@dataclass(frozen=True)
class Rule:
    outcome: Outcome
    retry_after: RetryAfter = None  # seconds, or a function of the wall clock (seconds to a local time)
    account_wide: bool = False

    def seconds(self, now: float) -> float | None:
        return self.retry_after(now) if callable(self.retry_after) else self.retry_after


def until_local(hour: int) -> Callable[[float], float]:
    """Seconds from ``now`` to the next ``hour``:00 Beijing time."""

    def wait(now: float) -> float:
        local = datetime.fromtimestamp(now, CHINA_TIME)
        target = local.replace(hour=hour, minute=0, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
        return (target - local).total_seconds()

    return wait


SENT = Rule(Outcome.SENT)
FAILED = Rule(Outcome.FAILED)
# The account's configuration is wrong (key, app id, IP allow-list, suspension). The message itself is
# fine, so it is kept for when an operator has fixed the settings: failing it would silently drop notices
# the law requires. The outbox's attempt limit ends it if nobody does.
CONFIGURATION = Rule(Outcome.RETRY, 300.0, account_wide=True)
# The SMS package is empty or the account in arrears: same reasoning, until finance tops it up.
NO_BALANCE = Rule(Outcome.RETRY, 600.0, account_wide=True)
# Too many requests for the account: back off for a moment and pace on.
TOO_FAST = Rule(Outcome.RETRY, 1.0, account_wide=True)
# The account's daily quota is spent; it renews at midnight Beijing time.
ACCOUNT_DAY_SPENT = Rule(Outcome.RETRY, until_local(0), account_wide=True)
# Tencent's side failed; nothing wrong with the message. No wait given: the outbox backoff applies.
PROVIDER_TROUBLE = Rule(Outcome.RETRY)

RULES: Final[dict[str, Rule]] = {
    "Ok": SENT,
    # The person unsubscribed (回复TD退订) or is on the carrier's do-not-disturb list: stop, like a user who
    # blocked the bot. The backend then keeps the number out of bulk.
    "FailedOperation.PhoneNumberInBlacklist": Rule(Outcome.STOPPED),
    # Per-number frequency limits (defaults 1 per 30 s for the same content, 5 an hour, 10 a day). The number
    # is fine, it is just too soon; wait out the window rather than spend a call to hit it again.
    "LimitExceeded.PhoneNumberThirtySecondLimit": Rule(Outcome.RETRY, 30.0),
    "LimitExceeded.DeliveryFrequencyLimit": Rule(Outcome.RETRY, 30.0),
    "LimitExceeded.PhoneNumberOneHourLimit": Rule(Outcome.RETRY, 3600.0),
    # The number's daily cap renews at midnight. A notice is still worth having tomorrow; a one-time code
    # is not, and the outbox drops those past their validity, so retrying here is safe for both.
    "LimitExceeded.PhoneNumberDailyLimit": Rule(Outcome.RETRY, until_local(0)),
    # This very text already reached this number the day's maximum number of times: one more copy
    # (today or tomorrow) is a duplicate, not a delivery. Failed, with Tencent's reason on record.
    "LimitExceeded.PhoneNumberSameContentDailyLimit": FAILED,
    # Marketing templates may only go 08:00-22:00 Beijing time.
    "FailedOperation.MarketingSendTimeConstraint": Rule(Outcome.RETRY, until_local(8)),
    # The number itself is wrong: no retry will change that.
    "InvalidParameterValue.IncorrectPhoneNumber": FAILED,
    "FailedOperation.PhoneNumberParseFail": FAILED,
    "LimitExceeded.AppCountryOrRegionInBlacklist": FAILED,
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone": FAILED,
    "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone": FAILED,
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": FAILED,
    # The message as composed will never pass (template or signature not approved, parameters that do not
    # fit the template): retrying sends the same refused request. Failed; staff see the reason.
    "FailedOperation.TemplateIncorrectOrUnapproved": FAILED,
    "FailedOperation.TemplateUnapprovedOrNotExist": FAILED,
    "FailedOperation.TemplateIdNotExist": FAILED,
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": FAILED,
    "FailedOperation.SignatureIncorrectOrUnapproved": FAILED,
    "FailedOperation.MissingSignature": FAILED,
    "FailedOperation.ContainSensitiveWord": FAILED,
    "InvalidParameterValue.ContentLengthLimit": FAILED,
    "InvalidParameterValue.TemplateParameterLengthLimit": FAILED,
    "InvalidParameterValue.TemplateParameterFormatError": FAILED,
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": FAILED,
    # Our own request is malformed (more than 200 numbers, missing fields): a bug to fix, not to repeat.
    "LimitExceeded.PhoneNumberCountLimit": FAILED,
    "MissingParameter.EmptyPhoneNumberSet": FAILED,
    "FailedOperation.JsonParseFail": FAILED,
    "FailedOperation.FailResolvePacket": FAILED,
    "InvalidParameter": FAILED,
    "InvalidParameterValue": FAILED,
    "MissingParameter": FAILED,
    "FailedOperation.InsufficientBalanceInSmsPackage": NO_BALANCE,
    "UnauthorizedOperation.ServiceSuspendDueToArrears": NO_BALANCE,
    "RequestLimitExceeded": TOO_FAST,
    "LimitExceeded.GlobalSmsSendingRateLimit": TOO_FAST,
    "LimitExceeded.AppDailyLimit": ACCOUNT_DAY_SPENT,
    "LimitExceeded.DailyLimit": ACCOUNT_DAY_SPENT,
    "LimitExceeded.AppMainlandChinaDailyLimit": ACCOUNT_DAY_SPENT,
    "LimitExceeded.AppGlobalDailyLimit": ACCOUNT_DAY_SPENT,
    "LimitExceeded.AppCountryOrRegionDailyLimit": ACCOUNT_DAY_SPENT,
    # Our clock and Tencent's differ by more than 5 minutes: every request fails until the clock is fixed.
    "AuthFailure.SignatureExpire": Rule(Outcome.RETRY, 60.0, account_wide=True),
    "InvalidParameterValue.SdkAppIdNotExist": CONFIGURATION,
    "FailedOperation.OtherError": PROVIDER_TROUBLE,
}
# Codes not listed above, by their documented family.
PREFIX_RULES: Final[tuple[tuple[str, Rule], ...]] = (
    ("InternalError", PROVIDER_TROUBLE),
    ("RequestLimitExceeded", TOO_FAST),
    ("AuthFailure", CONFIGURATION),
    ("UnauthorizedOperation", CONFIGURATION),
    ("LimitExceeded", Rule(Outcome.RETRY, 60.0)),
)


def rule_for(code: str) -> Rule:
    rule = RULES.get(code)
    if rule is not None:
        return rule
    for prefix, family_rule in PREFIX_RULES:
        if code == prefix or code.startswith(prefix + "."):
            return family_rule
    return FAILED  # an unknown refusal: retrying blind would repeat it


# ------------------------------------------------------------------------------------------ the adapter


class TencentSmsProvider:
    """``SmsProvider`` for Tencent Cloud SMS. One object per process: its pacer is the process's budget.

    ``client`` and ``clock`` (wall clock, for the signature's timestamp) are for tests.
    """

    def __init__(
        self,
        settings: SmsProviderSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
    ) -> None:
        if not (settings.secret_id and settings.secret_key.get_secret_value() and settings.sdk_app_id):
            raise ValueError("the tencent SMS provider needs secret_id, secret_key and sdk_app_id")
        self.settings = settings
        self._url = httpx.URL(settings.endpoint)
        self._host = self._url.netloc.decode("ascii")
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)
        self._own_client = client is None
        self._clock = clock
        self.numbers_per_call = settings.numbers_per_call
        self.pacer: Pacer = pacer or NumberPacer(settings.rate_per_second, burst=self.numbers_per_call)
        self._held_until = 0.0  # monotonic
        self._held_code = ""
        self._held_message = ""
        self.calls = 0  # provider calls made, for figures and tests

    async def __aenter__(self) -> TencentSmsProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
        await self.pacer.aclose()

    async def send(self, batch: SmsBatch) -> list[SmsResult]:
        chunks = [
            batch.phones[i : i + self.numbers_per_call]
            for i in range(0, len(batch.phones), self.numbers_per_call)
        ]
        results: list[list[SmsResult]] = [[] for _ in chunks]
        in_flight = asyncio.Semaphore(self.settings.max_calls_in_flight)
        async with asyncio.TaskGroup() as group:
            for index, chunk in enumerate(chunks):
                await in_flight.acquire()
                held = self._held_results(chunk)
                if held is None:
                    await self.pacer.acquire(len(chunk))
                    held = self._held_results(chunk)  # a hold may have begun while this call waited
                if held is not None:
                    results[index] = held
                    in_flight.release()
                    continue
                group.create_task(self._run_call(batch, chunk, results, index, in_flight))
        return [result for chunk_results in results for result in chunk_results]

    async def _run_call(
        self,
        batch: SmsBatch,
        phones: Sequence[str],
        results: list[list[SmsResult]],
        index: int,
        in_flight: asyncio.Semaphore,
    ) -> None:
        try:
            results[index] = await self._call(batch, phones)
        finally:
            in_flight.release()
        self._note_account_wide(results[index])

    # ----------------------------------------------------------------------------- account-wide holds

    def _held_results(self, phones: Sequence[str]) -> list[SmsResult] | None:
        remaining = self._held_until - time.monotonic()
        if remaining <= 0:
            return None
        return [
            SmsResult(
                phone=phone,
                outcome=Outcome.RETRY,
                code=self._held_code,
                message=self._held_message,
                retry_after=remaining,
                account_wide=True,
            )
            for phone in phones
        ]

    def _note_account_wide(self, results: Sequence[SmsResult]) -> None:
        worst = max(
            (r for r in results if r.account_wide and r.outcome is Outcome.RETRY),
            key=lambda r: r.retry_after or 0.0,
            default=None,
        )
        if worst is None:
            return
        wait = worst.retry_after or INLINE_PAUSE_SECONDS
        if wait <= INLINE_PAUSE_SECONDS:
            self.pacer.pause(wait)
            return
        until = time.monotonic() + wait
        if until > self._held_until:
            log.warning(
                "sms: tencent refused the account (%s: %s); holding sends for %.0f s",
                worst.code,
                worst.message,
                wait,
            )
            self._held_until, self._held_code, self._held_message = until, worst.code, worst.message

    # -------------------------------------------------------------------------------------- one call

    def signed_request(
        self, batch: SmsBatch, phones: Sequence[str], timestamp: int
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body of one SendSms call, signed for ``timestamp``."""
        payload: dict[str, Any] = {
            "PhoneNumberSet": list(phones),
            "SmsSdkAppId": self.settings.sdk_app_id,
            "TemplateId": batch.template_id,
            "SignName": batch.sign_name or self.settings.sign_name,
            "TemplateParamSet": list(batch.params),
        }
        if batch.session_context:
            payload["SessionContext"] = batch.session_context
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": ACTION,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.settings.region,
        }
        signature = tc3.sign(
            secret_id=self.settings.secret_id,
            secret_key=self.settings.secret_key.get_secret_value(),
            service=SERVICE,
            timestamp=timestamp,
            headers=headers,
            payload=body,
        )
        headers["Authorization"] = signature.authorization
        return headers, body

    async def _call(self, batch: SmsBatch, phones: Sequence[str]) -> list[SmsResult]:
        headers, body = self.signed_request(batch, phones, int(self._clock()))
        self.calls += 1
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException:
            return _all(
                phones, "Timeout", "no answer in time: the texts may or may not have gone", PROVIDER_TROUBLE
            )
        except httpx.HTTPError as exc:
            return _all(phones, "NetworkError", f"{type(exc).__name__}: {exc}"[:300], PROVIDER_TROUBLE)
        if response.status_code >= 500:
            return _all(phones, f"HTTP {response.status_code}", response.reason_phrase, PROVIDER_TROUBLE)
        try:
            answer = response.json()["Response"]
        except (ValueError, KeyError, TypeError):
            return _all(
                phones, f"HTTP {response.status_code}", "not a Tencent Cloud API answer", PROVIDER_TROUBLE
            )
        return self._results(phones, answer)

    def _results(self, phones: Sequence[str], answer: Any) -> list[SmsResult]:
        now = self._clock()
        error = answer.get("Error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            log.info("sms: tencent refused a call of %d numbers: %s %s", len(phones), code, message)
            return _all(phones, code, message, rule_for(code), now)
        statuses = answer.get("SendStatusSet") if isinstance(answer, dict) else None
        if not isinstance(statuses, list):
            return _all(phones, "BadAnswer", "neither Error nor SendStatusSet", PROVIDER_TROUBLE, now)
        by_phone = {_phone_key(str(s.get("PhoneNumber", ""))): s for s in statuses if isinstance(s, dict)}
        results = []
        for index, phone in enumerate(phones):
            status = by_phone.get(_phone_key(phone))
            if status is None and len(statuses) == len(phones) and isinstance(statuses[index], dict):
                status = statuses[
                    index
                ]  # Tencent wrote the number in another form; the order is the request's
            if status is None:
                results.append(
                    _one(phone, "MissingStatus", "no status for this number", PROVIDER_TROUBLE, now)
                )
                continue
            code, message = str(status.get("Code", "")), str(status.get("Message", ""))
            result = _one(phone, code, message, rule_for(code), now)
            serial = str(status.get("SerialNo") or "") or None
            fee = status.get("Fee")
            results.append(
                SmsResult(
                    phone=phone,
                    outcome=result.outcome,
                    serial_id=serial,
                    code=code,
                    message=message,
                    retry_after=result.retry_after,
                    account_wide=result.account_wide,
                    fee=fee if isinstance(fee, int) else 0,
                )
            )
            if result.outcome is not Outcome.SENT:
                log.info("sms: %s not sent: %s %s", mask_phone(phone), code, message)
        return results


def _phone_key(phone: str) -> str:
    try:
        return normalize_phone(phone)
    except ValueError:
        return phone


def _one(phone: str, code: str, message: str, rule: Rule, now: float | None = None) -> SmsResult:
    return SmsResult(
        phone=phone,
        outcome=rule.outcome,
        code=code,
        message=message,
        retry_after=rule.seconds(time.time() if now is None else now),
        account_wide=rule.account_wide,
    )


def _all(
    phones: Sequence[str], code: str, message: str, rule: Rule, now: float | None = None
) -> list[SmsResult]:
    return [_one(phone, code, message, rule, now) for phone in phones]


# ------------------------------------------------------------------------------------------ callbacks


class SmsCallbackError(ValueError):
    """The body is not a Tencent SMS callback; the endpoint answers 400."""


class _StatusReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_receive_time: str = ""
    nationcode: str = "86"
    mobile: str
    report_status: Literal["SUCCESS", "FAIL"]
    errmsg: str = ""
    description: str = ""
    sid: str


class _ReplyReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    extend: str = ""
    mobile: str
    nationcode: str = "86"
    sign: str = ""
    text: str
    time: int


_STATUS_REPORTS = TypeAdapter(list[_StatusReport])
_REPLY_REPORT = TypeAdapter(_ReplyReport)

# Replies that mean "stop texting me", after width folding, upper-casing and dropping spaces and punctuation.
UNSUBSCRIBE_WORDS: Final = frozenset(
    {"TD", "T", "N", "退订", "退", "TD退订", "退订TD", "取消订阅", "STOP", "UNSUBSCRIBE"}
)
_NOT_WORD = re.compile(r"[\W_]+")


def is_unsubscribe(text: str) -> bool:
    folded = _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).upper())
    # "退订" anywhere ("请退订", "我要退订") counts too: a missed opt-out is a complaint, a wrong one is not.
    return folded in UNSUBSCRIBE_WORDS or "退订" in folded


def _decode(body: bytes | str | Any) -> Any:
    if isinstance(body, bytes | str):
        try:
            return json.loads(body)
        except ValueError as exc:
            raise SmsCallbackError(f"not JSON: {exc}") from exc
    return body


def _callback_phone(nationcode: str, mobile: str) -> str:
    mobile = mobile.strip()
    candidates = [mobile] if mobile.startswith("+") else [f"+{nationcode.strip() or '86'}{mobile}", mobile]
    for candidate in candidates:
        try:
            return normalize_phone(candidate)
        except ValueError:
            continue
    return mobile


def _receive_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TIME)
    except ValueError:
        return None


def parse_status_callback(body: bytes | str | Any) -> list[SmsReceipt]:
    """Tencent's delivery receipts: a JSON list of ``{user_receive_time, nationcode, mobile, report_status,
    errmsg, description, sid}``; ``sid`` is the SerialNo the send returned."""
    data = _decode(body)
    if isinstance(data, dict):
        data = [data]  # one report sent bare: accept it like the list of one it means
    try:
        reports = _STATUS_REPORTS.validate_python(data)
    except ValidationError as exc:
        raise SmsCallbackError(str(exc)) from exc
    return [
        SmsReceipt(
            phone=_callback_phone(report.nationcode, report.mobile),
            serial_id=report.sid,
            delivered=report.report_status == "SUCCESS",
            code=report.errmsg,
            description=report.description,
            received_at=_receive_time(report.user_receive_time),
        )
        for report in reports
    ]


def parse_reply_callback(body: bytes | str | Any) -> SmsReply:
    """Tencent's reply callback: ``{extend, mobile, nationcode, sign, text, time}``, time in Unix seconds."""
    try:
        report = _REPLY_REPORT.validate_python(_decode(body))
    except ValidationError as exc:
        raise SmsCallbackError(str(exc)) from exc
    return SmsReply(
        phone=_callback_phone(report.nationcode, report.mobile),
        text=report.text,
        sign_name=report.sign,
        extend=report.extend,
        received_at=datetime.fromtimestamp(report.time, UTC),
        unsubscribe=is_unsubscribe(report.text),
    )

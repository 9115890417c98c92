"""A faithful fake of Tencent Cloud SMS (API 3.0, ``SendSms`` 2021-01-11), for tests and benchmarks.

It listens on loopback and speaks the real wire protocol, so the real adapter talks to it unchanged::

    async with FakeTencentSms() as fake:
        provider = TencentSmsProvider(fake.settings())
        results = await provider.send(SmsBatch.build(template_id="100001", sign_name="田保", ...))
        assert fake.sent[0].phone == "+8613800138000"

What it models (see the methods for details):

* TC3-HMAC-SHA256 checked from the raw request, by its own code (not the adapter's): a wrong key or a
  tampered body answers ``AuthFailure.SignatureFailure``, a timestamp more than 5 minutes off
  ``AuthFailure.SignatureExpire``, an unknown SecretId ``AuthFailure.SecretIdNotFound``, a malformed
  header ``AuthFailure.InvalidAuthorization``. Like Tencent, API errors come with HTTP 200.
* The SendSms body: SmsSdkAppId, TemplateId, SignName, TemplateParamSet, PhoneNumberSet (1-200 numbers,
  all mainland or all international); whole-request problems answer ``Response.Error``.
* Approved templates with their text (``{1}``, ``{2}``... as Tencent writes them) and approved signature
  names; per number a ``SendStatusSet`` entry (SerialNo, PhoneNumber, Fee, SessionContext, Code, Message,
  IsoCode) with Tencent's codes: invalid number, unapproved template or signature, parameter count or
  length, blacklist (a reply of TD puts the number there), per-number frequency (same content within 30 s,
  5 an hour, 10 a day by default), balance (in fee units: a long text costs one per 67 characters).
* An overall rate in numbers per second (a token bucket): a call beyond it answers
  ``RequestLimitExceeded`` for the whole call and sends nothing.
* Fault injection for the next calls: an HTTP 5xx, an API error, or a hang (the client times out), with
  or without the texts having gone out.
* Records every call and every accepted text; posts delivery receipts and replies to a callback URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import aiohttp
from aiohttp import web

__all__ = [
    "Call",
    "FakeTencentSms",
    "FrequencyLimits",
    "SentSms",
    "SmsTemplate",
]

JSONDict = dict[str, Any]

ACTION: Final = "SendSms"
VERSION: Final = "2021-01-11"
SERVICE: Final = "sms"
REGIONS: Final = frozenset({"ap-guangzhou", "ap-beijing", "ap-nanjing", "ap-singapore"})
MAX_NUMBERS: Final = 200
MAX_SKEW_SECONDS: Final = 300
CHINA_TIME: Final = timezone(timedelta(hours=8))

_AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z0-9]+)/tc3_request,"
    r" SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
_MAINLAND = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
_INTERNATIONAL = re.compile(r"^\+([1-9]\d{6,14})$")
_PLACEHOLDER = re.compile(r"\{(\d+)\}")


# --------------------------------------------------------------------------------------------------
# Public value types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsTemplate:
    """A body template as registered in Tencent's console: ``text`` with ``{1}``, ``{2}``... placeholders."""

    template_id: str
    text: str
    approved: bool = True
    # Tencent's per-variable character limit (accounts opened since 2024 default to 6 for some types).
    max_param_length: int | None = None

    @property
    def param_count(self) -> int:
        return len(set(_PLACEHOLDER.findall(self.text)))

    def render(self, params: Sequence[str]) -> str:
        return _PLACEHOLDER.sub(lambda m: params[int(m.group(1)) - 1], self.text)


@dataclass
class FrequencyLimits:
    """Tencent's default per-number limits (控制台 > 频率限制): None switches one off."""

    same_content_seconds: float | None = 30.0  # one text of the same content per number per 30 s
    per_hour: int | None = 5
    per_day: int | None = 10
    same_content_per_day: int | None = None


@dataclass(frozen=True)
class SentSms:
    """One text the fake accepted (what the person's phone would receive)."""

    serial_no: str
    phone: str  # E.164
    template_id: str
    sign_name: str
    params: tuple[str, ...]
    text: str  # 【sign】 + the rendered template, as delivered
    fee: int
    session_context: str
    at: float  # wall clock
    call_index: int  # index into FakeTencentSms.calls


@dataclass
class Call:
    """One HTTP request received. ``status``/``response`` are filled in when it was answered."""

    headers: dict[str, str]
    body: bytes
    received_at: float
    status: int | None = None
    response: JSONDict | None = None

    @property
    def error_code(self) -> str | None:
        error = (self.response or {}).get("Response", {}).get("Error")
        return error.get("Code") if isinstance(error, dict) else None

    @property
    def statuses(self) -> list[JSONDict]:
        return list((self.response or {}).get("Response", {}).get("SendStatusSet", []))

    @property
    def payload(self) -> JSONDict:
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


class _ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class _Fault:
    kind: str  # "http" | "error" | "hang"
    remaining: int
    status: int = 500
    code: str = ""
    message: str = ""
    seconds: float = 0.0
    deliver: bool = False


@dataclass
class _NumberHistory:
    sends: deque[float] = field(default_factory=deque)  # wall times, last 24 h
    by_content: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------

DEFAULT_TEMPLATES: Final = (
    SmsTemplate("100001", "您的验证码为{1}，{2}分钟内有效，请勿泄露。", max_param_length=6),
    SmsTemplate("100002", "您的理赔案件{1}状态已更新为{2}，详情请查看{3}"),
    SmsTemplate("100003", "【预警】{1}发布{2}，请做好防范。"),
)


class FakeTencentSms:
    """The fake SMS API; use as ``async with FakeTencentSms() as fake: ...``.

    :param balance: fee units left in the SMS package (None: unlimited).
    :param numbers_per_second: the overall rate (None: unlimited); ``rate_burst`` numbers may go at once
        (default: one second's worth).
    :param frequency: per-number limits (None: none).
    :param clock: wall clock, for the signature's age and the frequency windows.
    :param monotonic: clock of the rate bucket.
    """

    def __init__(
        self,
        *,
        secret_id: str = "AKIDTianbaoFakeSecretId0000000000000",
        secret_key: str = "TianbaoFakeSecretKey000000000000",
        sdk_app_id: str = "1400000001",
        sign_names: Iterable[str] = ("田保",),
        templates: Iterable[SmsTemplate] = DEFAULT_TEMPLATES,
        balance: int | None = None,
        numbers_per_second: float | None = None,
        rate_burst: float | None = None,
        frequency: FrequencyLimits | None = None,
        blacklist: Iterable[str] = (),
        host: str = "127.0.0.1",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_names = set(sign_names)
        self.templates = {t.template_id: t for t in templates}
        self.balance = balance
        self.frequency = frequency if frequency is not None else FrequencyLimits()
        self.blacklist = {self._mainland_or_none(p) or p for p in blacklist}
        self.host = host
        self._clock = clock
        self._monotonic = monotonic

        self.numbers_per_second = numbers_per_second
        self.rate_burst = rate_burst if rate_burst is not None else (numbers_per_second or 0.0)
        self._tokens = self.rate_burst
        self._tokens_at = monotonic()

        self.calls: list[Call] = []
        self.sent: list[SentSms] = []
        self._reported: set[str] = set()  # serial numbers whose receipt was posted
        self._history: dict[str, _NumberHistory] = defaultdict(_NumberHistory)
        self._faults: list[_Fault] = []
        self._serial = 0

        self._app = web.Application()
        self._app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ---------------------------------------------------------------------------------- lifecycle

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` — the adapter's ``endpoint`` setting."""
        if self.port is None:
            raise RuntimeError("FakeTencentSms is not started")
        return f"http://{self.host}:{self.port}"

    def settings_values(self, **overrides: Any) -> JSONDict:
        """Values for ``SmsProviderSettings`` that reach this fake (the caller builds the model, so the fake
        imports nothing of the code under test)."""
        values: JSONDict = {
            "provider": "tencent",
            "secret_id": self.secret_id,
            "secret_key": self.secret_key,
            "sdk_app_id": self.sdk_app_id,
            "sign_name": next(iter(sorted(self.sign_names)), ""),
            "endpoint": self.endpoint,
        }
        values.update(overrides)
        return values

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, shutdown_timeout=1.0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTencentSms:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----------------------------------------------------------------------------- fault injection

    def fail_next(self, status: int = 500, *, times: int = 1) -> None:
        """The next ``times`` calls answer HTTP ``status`` with a non-API body (a gateway failing)."""
        self._faults.append(_Fault("http", times, status=status))

    def error_next(self, code: str, message: str = "injected", *, times: int = 1) -> None:
        """The next ``times`` calls answer ``Response.Error`` with ``code`` and send nothing."""
        self._faults.append(_Fault("error", times, code=code, message=message))

    def hang_next(self, seconds: float = 30.0, *, deliver: bool = False, times: int = 1) -> None:
        """The next ``times`` calls get no answer for ``seconds``. With ``deliver`` the texts go out first
        (Tencent sent them, the answer was lost); without, nothing is sent if the client gives up."""
        self._faults.append(_Fault("hang", times, seconds=seconds, deliver=deliver))

    def _take_fault(self) -> _Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        return fault

    # ---------------------------------------------------------------------------------- records

    def texts_to(self, phone: str) -> list[SentSms]:
        key = self._mainland_or_none(phone) or phone
        return [sms for sms in self.sent if sms.phone == key]

    def count_by_phone(self) -> Counter[str]:
        return Counter(sms.phone for sms in self.sent)

    def numbers_texted_twice(self) -> list[str]:
        return [phone for phone, count in self.count_by_phone().items() if count > 1]

    # -------------------------------------------------------------------------------- callbacks out

    async def post_status_callbacks(
        self,
        url: str,
        texts: Sequence[SentSms] | None = None,
        *,
        delivered: bool = True,
        errmsg: str | None = None,
        description: str | None = None,
    ) -> int:
        """POST delivery receipts for ``texts`` (default: every text not reported yet) as one JSON list,
        like Tencent, and return the HTTP status."""
        chosen = [t for t in self.sent if t.serial_no not in self._reported] if texts is None else list(texts)
        body = [
            {
                "user_receive_time": datetime.fromtimestamp(self._clock(), CHINA_TIME).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                "nationcode": "86",
                "mobile": t.phone.removeprefix("+86"),
                "report_status": "SUCCESS" if delivered else "FAIL",
                "errmsg": errmsg or ("DELIVRD" if delivered else "MK:0001"),
                "description": description or ("用户短信送达成功" if delivered else "用户短信接收失败"),
                "sid": t.serial_no,
            }
            for t in chosen
        ]
        self._reported.update(t.serial_no for t in chosen)
        return await self._post(url, body)

    async def post_reply(self, url: str, phone: str, text: str, *, sign: str | None = None) -> int:
        """A person replies ``text``; TD and the like also put the number on the blacklist, as Tencent's
        unsubscribe handling does."""
        e164 = self._mainland_or_none(phone) or phone
        if _is_unsubscribe_reply(text):
            self.blacklist.add(e164)
        body = {
            "extend": "",
            "mobile": e164.removeprefix("+86"),
            "nationcode": "86",
            "sign": sign if sign is not None else next(iter(sorted(self.sign_names)), ""),
            "text": text,
            "time": int(self._clock()),
        }
        return await self._post(url, body)

    @staticmethod
    async def _post(url: str, body: Any) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url,
                data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            await response.read()
            return response.status

    # ---------------------------------------------------------------------------------- handling

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        call = Call(headers=dict(request.headers), body=body, received_at=self._clock())
        self.calls.append(call)
        request_id = str(uuid.uuid4())
        fault = self._take_fault()
        if fault is not None and fault.kind == "http":
            call.status = fault.status
            return web.Response(status=fault.status, text="<html><body>502 Bad Gateway</body></html>")
        if fault is not None and fault.kind == "hang" and not fault.deliver:
            await asyncio.sleep(fault.seconds)  # cancelled when the client gives up: nothing is sent
        try:
            if request.method != "POST":
                raise _ApiError("InvalidParameter", "only POST with a JSON body is served by this fake")
            self._check_headers(request)
            self._check_signature(request, body)
            if fault is not None and fault.kind == "error":
                raise _ApiError(fault.code, fault.message)
            result: JSONDict = {"SendStatusSet": self._send_sms(self._payload(body), len(self.calls) - 1)}
        except _ApiError as exc:
            result = {"Error": {"Code": exc.code, "Message": exc.message}}
        result["RequestId"] = request_id
        call.status, call.response = 200, {"Response": result}
        if fault is not None and fault.kind == "hang" and fault.deliver:
            await asyncio.sleep(fault.seconds)  # the texts went; the answer is what gets lost
        return web.json_response(call.response, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    @staticmethod
    def _check_headers(request: web.Request) -> None:
        action = request.headers.get("X-TC-Action", "")
        if not action:
            raise _ApiError("MissingParameter", "The request is missing a required parameter `Action`.")
        if action != ACTION:
            raise _ApiError("InvalidAction", f"The requested action `{action}` does not exist.")
        version = request.headers.get("X-TC-Version", "")
        if version != VERSION:
            raise _ApiError(
                "NoSuchVersion", f"The requested version `{version}` of service `sms` does not exist."
            )
        region = request.headers.get("X-TC-Region", "")
        if not region:
            raise _ApiError("MissingParameter", "The request is missing a required parameter `Region`.")
        if region not in REGIONS:
            raise _ApiError("UnsupportedRegion", f"The `{region}` region is not supported.")
        if not request.headers.get("Content-Type", "").lower().startswith("application/json"):
            raise _ApiError("InvalidParameter", "Content-Type must be application/json for a JSON body.")

    def _check_signature(self, request: web.Request, body: bytes) -> None:
        match = _AUTHORIZATION.match(request.headers.get("Authorization", ""))
        if match is None:
            raise _ApiError(
                "AuthFailure.InvalidAuthorization", "Authorization is not a TC3-HMAC-SHA256 header."
            )
        if match["id"] != self.secret_id:
            raise _ApiError(
                "AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that it is correct."
            )
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            raise _ApiError(
                "MissingParameter", "The request is missing a required parameter `Timestamp`."
            ) from None
        if abs(self._clock() - timestamp) > MAX_SKEW_SECONDS:
            raise _ApiError(
                "AuthFailure.SignatureExpire",
                f"Signature expire. Now:{int(self._clock())} RequestTimestamp:{timestamp} "
                "Timestamp and server time cannot differ by more than five minutes.",
            )
        signed = match["headers"].split(";")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if (
            match["service"] != SERVICE
            or match["date"] != date
            or signed != sorted(signed)
            or not {"content-type", "host"} <= set(signed)
            or any(name not in request.headers for name in signed)
        ):
            raise _ApiError(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )
        # Rebuilt from what arrived: the raw header values and the raw body bytes.
        canonical_headers = "".join(f"{name}:{request.headers[name].strip().lower()}\n" for name in signed)
        canonical = "\n".join(
            [
                request.method,
                request.path,
                request.query_string,
                canonical_headers,
                ";".join(signed),
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/{SERVICE}/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = ("TC3" + self.secret_key).encode()
        for part in (date, SERVICE, "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            raise _ApiError(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )

    @staticmethod
    def _payload(body: bytes) -> JSONDict:
        try:
            payload = json.loads(body)
        except ValueError:
            raise _ApiError("FailedOperation.JsonParseFail", "Failed to parse the JSON body.") from None
        if not isinstance(payload, dict):
            raise _ApiError("FailedOperation.JsonParseFail", "The JSON body must be an object.")
        return payload

    # ------------------------------------------------------------------------------- SendSms itself

    def _send_sms(self, payload: JSONDict, call_index: int) -> list[JSONDict]:
        app_id = payload.get("SmsSdkAppId")
        if not app_id:
            raise _ApiError("MissingParameter", "The request is missing a required parameter `SmsSdkAppId`.")
        if app_id != self.sdk_app_id:
            raise _ApiError("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist.")
        template_id = payload.get("TemplateId")
        if not isinstance(template_id, str) or not template_id:
            raise _ApiError("MissingParameter", "The request is missing a required parameter `TemplateId`.")
        phones = payload.get("PhoneNumberSet")
        params = payload.get("TemplateParamSet", [])
        sign_name = payload.get("SignName", "")
        context = payload.get("SessionContext", "")
        if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
            raise _ApiError("InvalidParameter", "PhoneNumberSet must be an array of strings.")
        if not phones:
            raise _ApiError("MissingParameter.EmptyPhoneNumberSet", "The PhoneNumberSet is empty.")
        if len(phones) > MAX_NUMBERS:
            raise _ApiError("LimitExceeded.PhoneNumberCountLimit", "The number of phone numbers exceeds 200.")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise _ApiError("InvalidParameter", "TemplateParamSet must be an array of strings.")
        if not isinstance(sign_name, str) or not isinstance(context, str) or len(context.encode()) >= 512:
            raise _ApiError(
                "InvalidParameter", "SignName and SessionContext must be strings (context < 512 bytes)."
            )
        mainland = [self._mainland_or_none(p) is not None for p in phones]
        # A number written with another country code is international; a malformed +86 one is still domestic.
        international = [
            not m and not p.strip().startswith(("+86", "0086")) and self._international_or_none(p) is not None
            for p, m in zip(phones, mainland, strict=True)
        ]
        if any(mainland) and any(international):
            raise _ApiError(
                "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
                "The PhoneNumberSet contains both domestic and international numbers.",
            )
        self._take_rate(len(phones))
        return [
            self._one_number(phone, template_id, sign_name, params, context, call_index) for phone in phones
        ]

    def _take_rate(self, numbers: int) -> None:
        if self.numbers_per_second is None:
            return
        now = self._monotonic()
        self._tokens = min(self.rate_burst, self._tokens + (now - self._tokens_at) * self.numbers_per_second)
        self._tokens_at = now
        if self._tokens < numbers:
            raise _ApiError("RequestLimitExceeded", "The number of requests exceeds the frequency limit.")
        self._tokens -= numbers

    def _one_number(
        self, raw: str, template_id: str, sign_name: str, params: list[str], context: str, call_index: int
    ) -> JSONDict:
        phone = self._mainland_or_none(raw)
        status: JSONDict = {
            "SerialNo": "",
            "PhoneNumber": phone or raw,
            "Fee": 0,
            "SessionContext": context,
            "Code": "Ok",
            "Message": "send success",
            "IsoCode": "CN" if phone else "",
        }
        try:
            if phone is None:
                raise _ApiError("InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number")
            template = self.templates.get(template_id)
            if template is None or not template.approved:
                raise _ApiError(
                    "FailedOperation.TemplateIncorrectOrUnapproved",
                    "template is not approved or request content does not match the approved template content",
                )
            if sign_name not in self.sign_names:
                raise _ApiError(
                    "FailedOperation.SignatureIncorrectOrUnapproved",
                    "signature format is incorrect or signature is not approved",
                )
            if len(params) != template.param_count:
                raise _ApiError(
                    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                    "request content does not match the approved template content",
                )
            if template.max_param_length is not None and any(
                len(p) > template.max_param_length for p in params
            ):
                raise _ApiError(
                    "InvalidParameterValue.TemplateParameterLengthLimit", "single parameter too long"
                )
            if phone in self.blacklist:
                raise _ApiError("FailedOperation.PhoneNumberInBlacklist", "phone number in blacklist")
            text = f"【{sign_name}】{template.render(params)}"
            self._check_frequency(phone, text)
            fee = 1 if len(text) <= 70 else -(-len(text) // 67)
            if self.balance is not None and self.balance < fee:
                raise _ApiError(
                    "FailedOperation.InsufficientBalanceInSmsPackage", "insufficient balance in SMS package"
                )
        except _ApiError as exc:
            status.update(Code=exc.code, Message=exc.message)
            return status
        if self.balance is not None:
            self.balance -= fee
        self._serial += 1
        serial = f"{self._serial % 10000:04d}:{secrets.randbelow(10**28):028d}"
        now = self._clock()
        history = self._history[phone]
        history.sends.append(now)
        history.by_content[text].append(now)
        self.sent.append(
            SentSms(serial, phone, template_id, sign_name, tuple(params), text, fee, context, now, call_index)
        )
        status.update(SerialNo=serial, Fee=fee)
        return status

    def _check_frequency(self, phone: str, text: str) -> None:
        limits = self.frequency
        now = self._clock()
        history = self._history[phone]
        while history.sends and history.sends[0] <= now - 86400:
            history.sends.popleft()
        same = history.by_content[text]
        while same and same[0] <= now - 86400:
            same.popleft()
        if limits.same_content_seconds is not None and same and now - same[-1] < limits.same_content_seconds:
            raise _ApiError(
                "LimitExceeded.PhoneNumberThirtySecondLimit",
                "the number of SMS messages sent from a single mobile number within 30 seconds exceeds the upper limit",
            )
        if limits.same_content_per_day is not None and len(same) >= limits.same_content_per_day:
            raise _ApiError(
                "LimitExceeded.PhoneNumberSameContentDailyLimit",
                "the number of SMS messages with the same content sent to a single number exceeds the upper limit",
            )
        if limits.per_hour is not None and sum(1 for t in history.sends if t > now - 3600) >= limits.per_hour:
            raise _ApiError(
                "LimitExceeded.PhoneNumberOneHourLimit",
                "the number of SMS messages sent to a single mobile number within 1 hour exceeds the upper limit",
            )
        midnight = datetime.fromtimestamp(now, CHINA_TIME).replace(hour=0, minute=0, second=0, microsecond=0)
        today = sum(1 for t in history.sends if t >= midnight.timestamp())  # a natural day, Beijing time
        if limits.per_day is not None and today >= limits.per_day:
            raise _ApiError(
                "LimitExceeded.PhoneNumberDailyLimit",
                "the number of SMS messages sent to a single mobile number within 1 day exceeds the upper limit",
            )

    @staticmethod
    def _mainland_or_none(raw: str) -> str | None:
        match = _MAINLAND.match(raw.strip())
        return f"+86{match.group(1)}" if match else None

    @staticmethod
    def _international_or_none(raw: str) -> str | None:
        match = _INTERNATIONAL.match(raw.strip())
        return raw.strip() if match else None


_UNSUBSCRIBE: Final = frozenset({"TD", "T", "N", "退订", "TD退订", "退订TD"})


def _is_unsubscribe_reply(text: str) -> bool:
    folded = re.sub(r"[\W_]+", "", text).upper()
    return folded in _UNSUBSCRIBE or "退订" in folded

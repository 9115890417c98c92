"""The SMS provider layer: the real Tencent adapter against the fake Tencent SMS API on loopback, the TC3
signature against Tencent's published example and the official SDK, the callbacks, and the log provider."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from backend.outbox.schemas import Outcome
from bot.channels.sms import (
    LogSmsProvider,
    NumberPacer,
    SmsBatch,
    SmsCallbackError,
    SmsProviderSettings,
    TencentSmsProvider,
    build_provider,
    is_unsubscribe,
    normalize_phone,
    parse_reply_callback,
    parse_status_callback,
    read_log,
    sms_segments,
    tc3,
)
from bot.channels.sms.tencent import CHINA_TIME, rule_for
from tests.fakes.tencent_sms import FakeTencentSms, FrequencyLimits, SmsTemplate

SIGN = "田保"
CODE_TEMPLATE = "100001"  # 您的验证码为{1}，{2}分钟内有效，请勿泄露。
CLAIM_TEMPLATE = "100002"  # 您的理赔案件{1}状态已更新为{2}，详情请查看{3}
PHONE_A, PHONE_B, PHONE_C = "+8613800138000", "+8613900139000", "+8615000150000"


def code_batch(*phones: str, code: str = "123456", context: str = "") -> SmsBatch:
    return SmsBatch.build(
        template_id=CODE_TEMPLATE, sign_name=SIGN, params=[code, "5"], phones=phones, session_context=context
    )


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+86137{n:08d}" for n in range(start, start + count)]


def provider_for(fake: FakeTencentSms, **overrides: Any) -> TencentSmsProvider:
    values = {"rate_per_second": 100_000.0, **overrides}  # unpaced unless a test is about pacing
    clock = values.pop("clock", time.time)
    return TencentSmsProvider(SmsProviderSettings(**fake.settings_values(**values)), clock=clock)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTencentSms]:
    async with FakeTencentSms() as server:
        yield server


@pytest.fixture
async def provider(fake: FakeTencentSms) -> AsyncIterator[TencentSmsProvider]:
    async with provider_for(fake) as sms:
        yield sms


# ------------------------------------------------------------------------------------------ signature

# Tencent's worked example for TC3-HMAC-SHA256 (cloud.tencent.com/document/api/213/30654): CVM
# DescribeInstances at 1551113065 with the example's redacted key, which the page signs literally.
DOC_PAYLOAD = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'


def test_signature_matches_tencents_published_example() -> None:
    signed = tc3.sign(
        secret_id="AKID********************************",
        secret_key="*" * 32,
        service="cvm",
        timestamp=1551113065,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Host": "cvm.tencentcloudapi.com",
            "X-TC-Action": "DescribeInstances",
        },
        payload=DOC_PAYLOAD.encode(),
        signed_headers=("content-type", "host", "x-tc-action"),
    )
    assert signed.canonical_request.endswith(
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    assert signed.string_to_sign == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
    )
    assert signed.signature == "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
    assert signed.authorization == (
        "TC3-HMAC-SHA256 Credential=AKID********************************/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host;x-tc-action, "
        "Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
    )


def test_signature_matches_the_official_sdk_for_fixed_inputs() -> None:
    """The vector was produced by tencentcloud-sdk-python-common 3.1's signer (``SmsClient.
    _build_req_with_tc3_signature`` with ``time.time`` fixed): the SDK's body bytes, headers and time."""
    body = (
        '{"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400000001", "TemplateId": "100001", '
        '"SignName": "\\u7530\\u4fdd", "TemplateParamSet": ["123456", "5"]}'
    )
    signed = tc3.sign(
        secret_id="AKIDfixed",
        secret_key="fixed-secret-key",
        service="sms",
        timestamp=1767225600,
        headers={"Content-Type": "application/json", "Host": "sms.tencentcloudapi.com"},
        payload=body.encode(),
    )
    assert signed.authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDfixed/2026-01-01/sms/tc3_request, SignedHeaders=content-type;host, "
        "Signature=422f8859ff03bb1c18861472b66ccd0ee01fadda1b07af085a80e2a5557ab397"
    )


def test_adapter_request_is_signed_as_the_official_sdk_signs_it() -> None:
    """The adapter's own bytes and headers for a fixed time, signed by the SDK's canonicalisation."""
    abstract_client = pytest.importorskip("tencentcloud.common.abstract_client")
    request_module = pytest.importorskip("tencentcloud.common.http.request")
    settings = SmsProviderSettings(
        provider="tencent", secret_id="AKIDfixed", secret_key="fixed-secret-key", sdk_app_id="1400000001"
    )
    adapter = TencentSmsProvider(settings, client=httpx.AsyncClient())
    headers, body = adapter.signed_request(code_batch(PHONE_A, context="outbox:7"), [PHONE_A], 1767225600)
    request = request_module.RequestInternal("sms.tencentcloudapi.com", "POST", "/")
    request.header.update({k: v for k, v in headers.items() if k != "Authorization"})
    request.data = body.decode()
    client = abstract_client.AbstractClient.__new__(abstract_client.AbstractClient)
    sdk_signature = client._get_tc3_signature({}, request, "2026-01-01", "sms", "fixed-secret-key")
    assert headers["Authorization"].endswith(f"Signature={sdk_signature}")
    assert headers["X-TC-Action"] == "SendSms" and headers["X-TC-Version"] == "2021-01-11"
    assert headers["X-TC-Region"] == "ap-guangzhou" and headers["X-TC-Timestamp"] == "1767225600"
    assert json.loads(body) == {
        "PhoneNumberSet": [PHONE_A],
        "SmsSdkAppId": "1400000001",
        "TemplateId": CODE_TEMPLATE,
        "SignName": SIGN,
        "TemplateParamSet": ["123456", "5"],
        "SessionContext": "outbox:7",
    }


async def test_signature_accepted_and_the_text_goes_out(
    fake: FakeTencentSms, provider: TencentSmsProvider
) -> None:
    [result] = await provider.send(code_batch(PHONE_A, context="outbox:42"))
    assert result.outcome is Outcome.SENT and result.code == "Ok" and result.error is None
    [sms] = fake.sent
    assert result.serial_id == sms.serial_no and result.fee == 1
    assert (sms.phone, sms.text, sms.session_context) == (
        PHONE_A,
        "【田保】您的验证码为123456，5分钟内有效，请勿泄露。",
        "outbox:42",
    )
    assert fake.calls[0].statuses[0]["SessionContext"] == "outbox:42"


async def test_wrong_key_is_refused_and_holds_the_account(fake: FakeTencentSms) -> None:
    async with provider_for(fake, secret_key="not-the-key") as wrong:
        results = await wrong.send(code_batch(PHONE_A, PHONE_B))
        assert {r.code for r in results} == {"AuthFailure.SignatureFailure"}
        # Configuration, not the message: kept for when the key is fixed, and every other message waits too.
        assert all(r.outcome is Outcome.RETRY and r.account_wide and r.retry_after == 300 for r in results)
        again = await wrong.send(code_batch(PHONE_C))
    assert again[0].outcome is Outcome.RETRY and again[0].code == "AuthFailure.SignatureFailure"
    assert len(fake.calls) == 1 and fake.sent == []  # the held provider did not call again


async def test_unknown_secret_id_and_old_timestamp_are_refused(fake: FakeTencentSms) -> None:
    async with provider_for(fake, secret_id="AKIDsomeoneelse") as stranger:
        [unknown] = await stranger.send(code_batch(PHONE_A))
    assert unknown.code == "AuthFailure.SecretIdNotFound" and unknown.outcome is Outcome.RETRY
    async with provider_for(fake, clock=lambda: time.time() - 600) as slow_clock:
        [expired] = await slow_clock.send(code_batch(PHONE_A))
    assert expired.code == "AuthFailure.SignatureExpire"
    assert expired.outcome is Outcome.RETRY and expired.account_wide and expired.retry_after == 60
    assert fake.sent == []


async def test_fake_refuses_a_body_changed_after_signing(
    fake: FakeTencentSms, provider: TencentSmsProvider
) -> None:
    headers, body = provider.signed_request(code_batch(PHONE_A), [PHONE_A], int(time.time()))
    tampered = body.replace(b"123456", b"654321")
    async with httpx.AsyncClient() as client:
        answer = (await client.post(fake.endpoint, content=tampered, headers=headers)).json()
        assert answer["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
        answer = (await client.post(fake.endpoint, content=body, headers=headers)).json()
    assert answer["Response"]["SendStatusSet"][0]["Code"] == "Ok"


async def test_fake_validates_the_sendsms_body(fake: FakeTencentSms, provider: TencentSmsProvider) -> None:
    async def answer(batch: SmsBatch) -> dict[str, Any]:
        headers, body = provider.signed_request(batch, batch.phones, int(time.time()))
        async with httpx.AsyncClient() as client:
            return (await client.post(fake.endpoint, content=body, headers=headers)).json()["Response"]

    too_many = SmsBatch.build(
        template_id=CODE_TEMPLATE, sign_name=SIGN, params=["1", "5"], phones=numbers(201)
    )
    assert (await answer(too_many))["Error"]["Code"] == "LimitExceeded.PhoneNumberCountLimit"
    mixed = code_batch(PHONE_A, "+85291234567")
    assert (await answer(mixed))["Error"][
        "Code"
    ] == "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"
    assert fake.sent == []
    async with provider_for(fake, sdk_app_id="1400999999") as other_app:
        [result] = await other_app.send(code_batch(PHONE_A))
    assert (result.code, result.outcome, result.account_wide) == (
        "InvalidParameterValue.SdkAppIdNotExist",
        Outcome.RETRY,
        True,
    )


# ------------------------------------------------------------------------------ per-number outcomes


async def test_mixed_batch_gets_one_result_per_number_in_order(
    fake: FakeTencentSms, provider: TencentSmsProvider
) -> None:
    fake.blacklist.add(PHONE_C)
    results = await provider.send(code_batch(PHONE_A, "+861234", PHONE_C))
    assert [r.phone for r in results] == [PHONE_A, "+861234", PHONE_C]
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.STOPPED]
    assert results[1].code == "InvalidParameterValue.IncorrectPhoneNumber" and results[1].serial_id is None
    assert results[2].code == "FailedOperation.PhoneNumberInBlacklist"
    assert results[2].error == "FailedOperation.PhoneNumberInBlacklist: phone number in blacklist"
    assert [s.phone for s in fake.sent] == [PHONE_A]


async def test_template_or_signature_not_approved_fails(
    fake: FakeTencentSms, provider: TencentSmsProvider
) -> None:
    fake.templates["100009"] = SmsTemplate("100009", "尚未审核{1}", approved=False)
    cases = {
        "FailedOperation.TemplateIncorrectOrUnapproved": SmsBatch.build(
            template_id="100009", sign_name=SIGN, params=["x"], phones=[PHONE_A]
        ),
        "FailedOperation.SignatureIncorrectOrUnapproved": SmsBatch.build(
            template_id=CODE_TEMPLATE, sign_name="别人的签名", params=["1", "5"], phones=[PHONE_A]
        ),
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": SmsBatch.build(
            template_id=CODE_TEMPLATE, sign_name=SIGN, params=["1"], phones=[PHONE_A]
        ),
        "InvalidParameterValue.TemplateParameterLengthLimit": code_batch(PHONE_A, code="12345678"),
    }
    for code, batch in cases.items():
        [result] = await provider.send(batch)
        assert (result.code, result.outcome, result.retry_after) == (code, Outcome.FAILED, None)
    assert fake.sent == []


async def test_balance_runs_out(fake: FakeTencentSms) -> None:
    fake.balance = 2
    async with provider_for(fake) as provider:
        results = await provider.send(code_batch(PHONE_A, PHONE_B, PHONE_C))
        assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT, Outcome.RETRY]
        empty = results[2]
        assert empty.code == "FailedOperation.InsufficientBalanceInSmsPackage"
        assert empty.account_wide and empty.retry_after == 600
        # Until the package is topped up nothing is tried: the next batch answers retry without a call.
        [held] = await provider.send(code_batch("+8618600186000"))
    assert held.outcome is Outcome.RETRY and held.code == empty.code and 590 < (held.retry_after or 0) <= 600
    assert len(fake.calls) == 1 and fake.balance == 0 and len(fake.sent) == 2


async def test_long_text_costs_one_fee_per_part(fake: FakeTencentSms, provider: TencentSmsProvider) -> None:
    link = "https://tb.example.cn/c/" + "x" * 60
    [result] = await provider.send(
        SmsBatch.build(
            template_id=CLAIM_TEMPLATE, sign_name=SIGN, params=["LP2026001", "已结案", link], phones=[PHONE_A]
        )
    )
    assert result.outcome is Outcome.SENT
    assert result.fee == sms_segments(fake.sent[0].text) == 2


async def test_frequency_limits_answer_retry_with_their_window() -> None:
    async with (
        FakeTencentSms(frequency=FrequencyLimits(per_hour=3, per_day=None)) as fake,
        provider_for(fake) as sms,
    ):
        assert (await sms.send(code_batch(PHONE_A)))[0].outcome is Outcome.SENT
        [again] = await sms.send(code_batch(PHONE_A))  # same content within 30 s
        assert (again.outcome, again.code, again.retry_after) == (
            Outcome.RETRY,
            "LimitExceeded.PhoneNumberThirtySecondLimit",
            30.0,
        )
        assert not again.account_wide
        for code in ("111111", "222222"):  # other content goes, up to the hourly cap
            assert (await sms.send(code_batch(PHONE_A, code=code)))[0].outcome is Outcome.SENT
        [hourly] = await sms.send(code_batch(PHONE_A, code="333333"))
        assert (hourly.outcome, hourly.code, hourly.retry_after) == (
            Outcome.RETRY,
            "LimitExceeded.PhoneNumberOneHourLimit",
            3600.0,
        )
        assert (await sms.send(code_batch(PHONE_B)))[
            0
        ].outcome is Outcome.SENT  # other numbers are unaffected
    assert len(fake.texts_to(PHONE_A)) == 3


async def test_daily_limit_waits_for_midnight_and_same_content_daily_fails() -> None:
    limits = FrequencyLimits(same_content_seconds=None, per_hour=None, per_day=1, same_content_per_day=None)
    now = time.time()
    async with FakeTencentSms(frequency=limits) as fake, provider_for(fake, clock=lambda: now) as sms:
        await sms.send(code_batch(PHONE_A))
        [daily] = await sms.send(code_batch(PHONE_A, code="999999"))
    assert (daily.outcome, daily.code) == (Outcome.RETRY, "LimitExceeded.PhoneNumberDailyLimit")
    due = datetime.fromtimestamp(now + (daily.retry_after or 0), CHINA_TIME)
    assert (due.hour, due.minute, due.second) == (0, 0, 0) and 0 < (daily.retry_after or 0) <= 86400

    limits = FrequencyLimits(same_content_seconds=None, per_hour=None, per_day=None, same_content_per_day=1)
    async with FakeTencentSms(frequency=limits) as fake, provider_for(fake) as sms:
        await sms.send(code_batch(PHONE_A))
        [same] = await sms.send(code_batch(PHONE_A))
    # The same text already reached the number: another copy is a duplicate, not a delivery.
    assert (same.outcome, same.code) == (Outcome.FAILED, "LimitExceeded.PhoneNumberSameContentDailyLimit")


# ------------------------------------------------------------------------------ whole-call failures


async def test_http_5xx_is_retried(fake: FakeTencentSms, provider: TencentSmsProvider) -> None:
    fake.fail_next(502)
    results = await provider.send(code_batch(PHONE_A, PHONE_B))
    assert [(r.outcome, r.code) for r in results] == [(Outcome.RETRY, "HTTP 502")] * 2
    assert not results[0].account_wide and fake.sent == []
    assert all(r.outcome is Outcome.SENT for r in await provider.send(code_batch(PHONE_A, PHONE_B)))


async def test_timeout_is_retried(fake: FakeTencentSms) -> None:
    async with provider_for(fake, timeout_seconds=0.3) as provider:
        fake.hang_next(5.0)
        started = time.monotonic()
        [lost] = await provider.send(code_batch(PHONE_A))
        assert time.monotonic() - started < 2.0
        assert (lost.outcome, lost.code) == (Outcome.RETRY, "Timeout")
        await asyncio.sleep(0.1)
        assert fake.sent == []  # Tencent never processed it
        # The other way a timeout ends: the texts went and only the answer was lost. Still retry (a lost
        # notice is worse than a second copy), and the record says the outcome was unknown.
        fake.hang_next(5.0, deliver=True)
        [unknown] = await provider.send(code_batch(PHONE_B))
    assert (unknown.outcome, unknown.code) == (Outcome.RETRY, "Timeout")
    assert "may or may not" in unknown.message and [s.phone for s in fake.sent] == [PHONE_B]


async def test_network_error_is_retried() -> None:
    async with FakeTencentSms() as fake:
        values = fake.settings_values()
    settings = SmsProviderSettings(**values)  # the fake is closed: nothing listens there any more
    async with TencentSmsProvider(settings) as provider:
        [result] = await provider.send(code_batch(PHONE_A))
    assert (result.outcome, result.code) == (Outcome.RETRY, "NetworkError")


async def test_a_whole_request_error_applies_to_every_number(
    fake: FakeTencentSms, provider: TencentSmsProvider
) -> None:
    fake.error_next("InternalError.Timeout", "请求下发短信超时")
    results = await provider.send(code_batch(PHONE_A, PHONE_B, PHONE_C))
    assert [(r.phone, r.outcome, r.code) for r in results] == [
        (phone, Outcome.RETRY, "InternalError.Timeout") for phone in (PHONE_A, PHONE_B, PHONE_C)
    ]


async def test_request_limit_exceeded_is_retried_and_pauses_the_pacer() -> None:
    async with FakeTencentSms(numbers_per_second=10) as fake, provider_for(fake) as provider:
        results = await provider.send(
            SmsBatch.build(template_id=CODE_TEMPLATE, sign_name=SIGN, params=["1", "5"], phones=numbers(30))
        )
        assert {(r.outcome, r.code, r.retry_after, r.account_wide) for r in results} == {
            (Outcome.RETRY, "RequestLimitExceeded", 1.0, True)
        }
        started = time.monotonic()
        [result] = await provider.send(code_batch(PHONE_A))
    assert result.outcome is Outcome.SENT and time.monotonic() - started >= 0.9  # waited out the pause


async def test_more_than_200_numbers_go_in_several_calls(
    fake: FakeTencentSms, provider: TencentSmsProvider
) -> None:
    phones = numbers(450)
    results = await provider.send(
        SmsBatch.build(template_id=CODE_TEMPLATE, sign_name=SIGN, params=["1", "5"], phones=phones)
    )
    assert [r.phone for r in results] == phones and all(r.outcome is Outcome.SENT for r in results)
    # The calls go concurrently, so they may reach the provider in any order.
    assert sorted((len(call.payload["PhoneNumberSet"]) for call in fake.calls), reverse=True) == [
        200,
        200,
        50,
    ]
    assert len({r.serial_id for r in results}) == 450 and fake.numbers_texted_twice() == []


async def test_paced_sender_stays_within_the_providers_rate() -> None:
    async with (
        FakeTencentSms(numbers_per_second=200) as fake,
        provider_for(fake, rate_per_second=200) as provider,
    ):
        phones = numbers(500)
        started = time.monotonic()
        results = await provider.send(
            SmsBatch.build(template_id=CODE_TEMPLATE, sign_name=SIGN, params=["1", "5"], phones=phones)
        )
        elapsed = time.monotonic() - started
    assert all(r.outcome is Outcome.SENT for r in results)
    assert all(call.error_code is None for call in fake.calls)
    assert max(len(call.payload["PhoneNumberSet"]) for call in fake.calls) == 50  # a quarter second's worth
    assert 2.0 <= elapsed < 4.0  # (500 - 50) / 200 s


async def test_pacer_pause_holds_every_sender() -> None:
    pacer = NumberPacer(1000, burst=100)
    await pacer.acquire(100)
    pacer.pause(0.3)
    started = time.monotonic()
    await pacer.acquire(1)
    assert time.monotonic() - started >= 0.29


def test_unlisted_codes_follow_their_family() -> None:
    assert rule_for("InternalError.SomethingNew").outcome is Outcome.RETRY
    assert rule_for("RequestLimitExceeded.IPLimitExceeded").account_wide
    assert rule_for("UnauthorizedOperation.RequestIpNotInWhitelist").outcome is Outcome.RETRY
    assert rule_for("LimitExceeded.SomethingNew").retry_after == 60.0
    assert rule_for("FailedOperation.SomethingNew").outcome is Outcome.FAILED
    assert rule_for("Ok").outcome is Outcome.SENT


# ------------------------------------------------------------------------------------------ callbacks


@pytest.fixture
async def callback_sink() -> AsyncIterator[tuple[str, list[Any]]]:
    """A stand-in for our callback endpoint: records the bodies Tencent posts, answers like ours will."""
    bodies: list[Any] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        return web.json_response({"result": 0, "errmsg": "OK"})

    app = web.Application()
    app.router.add_post("/sms/callback", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/sms/callback", bodies
    await runner.cleanup()


async def test_delivery_receipts_parse(
    fake: FakeTencentSms, provider: TencentSmsProvider, callback_sink: tuple[str, list[Any]]
) -> None:
    url, bodies = callback_sink
    results = await provider.send(code_batch(PHONE_A, PHONE_B))
    assert await fake.post_status_callbacks(url, fake.sent[:1]) == 200
    assert await fake.post_status_callbacks(url, delivered=False, errmsg="MK:0005", description="空号") == 200
    [delivered] = parse_status_callback(json.dumps(bodies[0]).encode())
    [undelivered] = parse_status_callback(json.dumps(bodies[1], ensure_ascii=False))
    assert (delivered.phone, delivered.serial_id, delivered.delivered, delivered.code) == (
        PHONE_A,
        results[0].serial_id,
        True,
        "DELIVRD",
    )
    assert delivered.received_at is not None and delivered.received_at.utcoffset() == timedelta(hours=8)
    assert abs(delivered.received_at.timestamp() - time.time()) < 5
    assert (undelivered.phone, undelivered.serial_id, undelivered.delivered) == (
        PHONE_B,
        results[1].serial_id,
        False,
    )
    assert (undelivered.code, undelivered.description) == ("MK:0005", "空号")


def test_receipt_from_tencents_documented_example() -> None:
    body = (
        '[{"user_receive_time": "2015-10-17 08:03:04", "nationcode": "86", "mobile": "13800138000", '
        '"report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功", "sid": "xxxxxxx"}]'
    )
    [receipt] = parse_status_callback(body)
    assert receipt.received_at == datetime(2015, 10, 17, 8, 3, 4, tzinfo=CHINA_TIME)
    assert (receipt.phone, receipt.serial_id, receipt.delivered) == (PHONE_A, "xxxxxxx", True)
    for bad in (
        b"not json",
        b'[{"mobile": "13800138000"}]',
        b'[{"report_status": "MAYBE", "mobile": "1", "sid": "s"}]',
    ):
        with pytest.raises(SmsCallbackError):
            parse_status_callback(bad)


async def test_td_reply_unsubscribes_and_then_the_number_is_stopped(
    fake: FakeTencentSms, provider: TencentSmsProvider, callback_sink: tuple[str, list[Any]]
) -> None:
    url, bodies = callback_sink
    await provider.send(code_batch(PHONE_A))
    assert await fake.post_reply(url, PHONE_A, "TD") == 200
    assert await fake.post_reply(url, PHONE_B, "好的，谢谢") == 200
    unsubscribe, chat = (parse_reply_callback(json.dumps(body, ensure_ascii=False)) for body in bodies)
    assert (unsubscribe.phone, unsubscribe.unsubscribe, unsubscribe.sign_name) == (PHONE_A, True, SIGN)
    assert abs(unsubscribe.received_at.timestamp() - time.time()) < 5
    assert (chat.phone, chat.text, chat.unsubscribe) == (PHONE_B, "好的，谢谢", False)
    [stopped] = await provider.send(code_batch(PHONE_A, code="654321"))
    assert stopped.outcome is Outcome.STOPPED


def test_unsubscribe_words() -> None:
    for text in (
        "TD",
        "td",
        " T ",
        "n",
        "ＴＤ",
        "退订",
        "TD退订",
        "回复TD退订",
        "请退订。",
        "STOP",
        "取消订阅",
    ):
        assert is_unsubscribe(text), text
    for text in ("好的", "No thanks", "TDD", "理赔进度", "1"):
        assert not is_unsubscribe(text), text
    reply = parse_reply_callback(
        b'{"extend": "", "mobile": "13800138000", "nationcode": "86", "sign": "\xe7\x94\xb0\xe4\xbf\x9d", "text": "N", "time": 1457336869}'
    )
    assert reply.unsubscribe and reply.received_at.timestamp() == 1457336869
    with pytest.raises(SmsCallbackError):
        parse_reply_callback(b'{"mobile": "13800138000"}')


# ------------------------------------------------------------------------------- batches and phones


def test_phone_numbers_normalise_to_e164() -> None:
    for raw in (
        "13800138000",
        "+8613800138000",
        "8613800138000",
        "008613800138000",
        "138-0013-8000",
        "１３８００１３８０００",
    ):
        assert normalize_phone(raw) == PHONE_A, raw
    assert normalize_phone("+85291234567") == "+85291234567"
    for raw in ("12345", "+8612800138000", "phone", ""):
        with pytest.raises(ValueError):
            normalize_phone(raw)


def test_a_batch_refuses_a_number_twice_and_settings_cap_the_call() -> None:
    with pytest.raises(ValueError):
        code_batch(PHONE_A, PHONE_A)
    with pytest.raises(ValueError):
        SmsBatch.build(template_id=CODE_TEMPLATE, sign_name=SIGN, params=[], phones=[])
    with pytest.raises(ValueError):
        SmsProviderSettings(max_numbers_per_call=201)
    assert SmsProviderSettings(rate_per_second=200).numbers_per_call == 50
    assert SmsProviderSettings(rate_per_second=10_000).numbers_per_call == 200
    assert sms_segments("字" * 70) == 1 and sms_segments("字" * 71) == 2 and sms_segments("字" * 135) == 3


# --------------------------------------------------------------------------------------- log provider


async def test_log_provider_keeps_every_text_and_sends_nothing(tmp_path: Path) -> None:
    provider = build_provider(SmsProviderSettings(log_dir=tmp_path, log_ring_size=3))
    assert isinstance(provider, LogSmsProvider)
    batch = SmsBatch.build(
        template_id=CODE_TEMPLATE,
        sign_name=SIGN,
        params=["246810", "5"],
        phones=[PHONE_A, PHONE_B],
        session_context="outbox:1",
        text="【田保】您的验证码为246810，5分钟内有效，请勿泄露。",
    )
    results = await provider.send(batch)
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert all(r.serial_id and r.serial_id.startswith("log:") for r in results)
    assert len({r.serial_id for r in results}) == 2
    await provider.send(code_batch(PHONE_C))
    await provider.send(code_batch("+8618600186000"))
    # The ring keeps the newest three; the file keeps all four, readable by another process.
    assert [s.phone for s in provider.recent()] == [PHONE_B, PHONE_C, "+8618600186000"]
    assert [s.phone for s in provider.recent(1)] == ["+8618600186000"]
    from_file = read_log(tmp_path / "sms.log.jsonl")
    assert [s.phone for s in from_file] == [PHONE_A, PHONE_B, PHONE_C, "+8618600186000"]
    assert from_file[0].text == batch.text and from_file[0].params == ["246810", "5"]
    assert from_file[0].session_context == "outbox:1" and from_file[0].serial_id == results[0].serial_id


async def test_log_file_survives_concurrent_batches_and_a_torn_line(tmp_path: Path) -> None:
    provider = LogSmsProvider(directory=tmp_path / "nested", ring_size=1000)
    batches = [code_batch(*numbers(20, start=i * 20), code=f"{i:06d}") for i in range(10)]
    await asyncio.gather(*(provider.send(batch) for batch in batches))
    path = tmp_path / "nested" / "sms.log.jsonl"
    with path.open("a", encoding="utf-8") as file:
        file.write(
            '{"at": "2026-01-01T00:00:00+00:00", "serial_id": "log:x", "pho'
        )  # a process killed mid-write
    entries = read_log(path, limit=1000)
    assert len(entries) == 200 and len({e.phone for e in entries}) == 200
    assert [e.phone for e in read_log(path, limit=2)] == [e.phone for e in entries[-2:]]
    assert read_log(tmp_path / "missing.jsonl") == []

"""SMS end to end (issue 12): an outbox text goes through the delivery worker and the real Tencent adapter to
the fake provider on loopback, and the provider's callbacks (receipts, a TD reply) come back through our
endpoints to the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from backend.db import Database
from backend.outbox.models import OutboxMessage
from backend.outbox.sms import service as sms
from backend.settings import Settings
from bot.server import build_embedded_app
from messages.sms import provider_registrations
from tests.fakes.tencent_sms import FakeTencentSms, SmsTemplate

PHONE = "13812345678"


def registered(site: str) -> tuple[list[SmsTemplate], dict[str, str]]:
    """Every template as a deployment registers it with the provider, and the ids it was given."""
    registrations = provider_registrations(site)
    ids = {key: str(n) for n, (key, _text) in enumerate(registrations, start=100)}
    return [SmsTemplate(template_id=ids[key], text=text) for key, text in registrations], ids


@pytest.fixture
async def provider_and_app(settings: Settings, db: Database) -> AsyncIterator[tuple[FakeTencentSms, Any]]:
    templates, ids = registered(settings.public_url)
    async with FakeTencentSms(templates=templates, blacklist=["13900000000"]) as fake:
        values = fake.settings_values()
        tencent = settings.model_copy(
            update={
                "embedded_worker": False,
                "embedded_scheduler": False,
                "sms_provider": "tencent",
                "tencent_sms_secret_id": values["secret_id"],
                "tencent_sms_secret_key": values["secret_key"],
                "tencent_sms_app_id": values["sdk_app_id"],
                "tencent_sms_endpoint": fake.endpoint,
                "sms_template_ids": ids,
            }
        )
        app = build_embedded_app(tencent, db=db)
        yield fake, app
        await app.state.bot_runtime.close()


async def _queue(
    db: Database, settings: Settings, phone: str, dedupe: str, key: str = "otp", **values: str
) -> None:
    async with db.session() as session:
        await sms.enqueue_sms(
            session=session,
            phone=phone,
            key=key,
            locale="zh-CN",
            values=values,
            dedupe_key=dedupe,
        )
        await session.commit()


async def _row(db: Database, dedupe: str) -> OutboxMessage:
    async with db.session() as session:
        return (
            await session.exec(select(OutboxMessage).where(col(OutboxMessage.dedupe_key) == dedupe))
        ).one()


async def test_a_text_reaches_the_provider_and_its_receipt_marks_it_delivered(
    provider_and_app: tuple[FakeTencentSms, Any], db: Database, settings: Settings
) -> None:
    fake, app = provider_and_app
    await _queue(db, settings, PHONE, "code-1", code="482913")
    await _queue(db, settings, "13900000000", "code-2", code="123456")  # a number on the blacklist
    worker = app.state.bot_runtime.delivery_worker(worker_id="sms-worker")
    assert await worker.run_once() == 2
    [text] = fake.texts_to("+86" + PHONE)
    assert text.params == ("482913",) and text.sign_name == "田保" and "482913" in text.text
    sent = await _row(db, "code-1")
    assert sent.status == "sent" and sent.external_message_id == text.serial_no
    blocked = await _row(db, "code-2")
    assert blocked.status == "stopped" and "Blacklist" in (blocked.last_error or "")

    token = app.state.bot_runtime.settings.sms_receipt_token()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = [
            {
                "user_receive_time": "2026-12-02 10:00:00",
                "nationcode": "86",
                "mobile": PHONE,
                "report_status": "SUCCESS",
                "errmsg": "DELIVRD",
                "description": "用户短信送达成功",
                "sid": text.serial_no,
            }
        ]
        answer = await client.post(f"/sms/tencent/{token}/status", json=body)
        assert answer.status_code == 200 and answer.json() == {"result": 0, "errmsg": "OK"}
        wrong = await client.post("/sms/tencent/guessed-token/status", json=body)
        assert wrong.status_code == 404
        garbage = await client.post(f"/sms/tencent/{token}/status", content=b"not json")
        assert garbage.status_code == 400
    delivered = await _row(db, "code-1")
    assert delivered.status == "delivered" and delivered.delivered_at is not None


async def test_a_failed_receipt_keeps_the_providers_reason(
    provider_and_app: tuple[FakeTencentSms, Any], db: Database, settings: Settings
) -> None:
    fake, app = provider_and_app
    await _queue(
        db, settings, PHONE, "claim-1", "claim_update", claim="CL20261202001", status="赔款已支付", token="t1"
    )
    assert await app.state.bot_runtime.delivery_worker(worker_id="w").run_once() == 1
    token = app.state.bot_runtime.settings.sms_receipt_token()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        [text] = fake.texts_to("+86" + PHONE)
        body = [
            {
                "user_receive_time": "2026-12-02 10:00:00",
                "nationcode": "86",
                "mobile": PHONE,
                "report_status": "FAIL",
                "errmsg": "MK:0001",
                "description": "用户关机",
                "sid": text.serial_no,
            }
        ]
        assert (await client.post(f"/sms/tencent/{token}/status", json=body)).status_code == 200
    failed = await _row(db, "claim-1")
    assert failed.status == "failed" and "MK:0001" in (failed.last_error or "")


async def test_a_provider_error_is_retried_and_a_refused_template_fails(
    provider_and_app: tuple[FakeTencentSms, Any], db: Database, settings: Settings
) -> None:
    fake, app = provider_and_app
    fake.fail_next(502)
    await _queue(db, settings, PHONE, "code-1", code="111111")
    assert await app.state.bot_runtime.delivery_worker(worker_id="w").run_once() == 1
    retried = await _row(db, "code-1")
    assert retried.status == "failed" and retried.next_attempt_at is not None  # waiting for its retry
    fake.error_next("FailedOperation.TemplateIncorrectOrUnapproved")
    await _queue(db, settings, "13700001111", "code-2", code="222222")
    assert await app.state.bot_runtime.delivery_worker(worker_id="w").run_once() == 1
    refused = await _row(db, "code-2")
    assert refused.status == "failed" and refused.next_attempt_at is None
    assert "TemplateIncorrectOrUnapproved" in (refused.last_error or "")


async def test_a_td_reply_stops_bulk_texts_to_that_number(
    provider_and_app: tuple[FakeTencentSms, Any], db: Database, settings: Settings
) -> None:
    _fake, app = provider_and_app
    await _queue(db, settings, PHONE, "bulk-1", "message", token="abc123")
    token = app.state.bot_runtime.settings.sms_receipt_token()
    transport = httpx.ASGITransport(app=app)
    reply = {
        "extend": "",
        "mobile": PHONE,
        "nationcode": "86",
        "sign": "田保",
        "text": "TD",
        "time": 1764640000,
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.post(f"/sms/tencent/{token}/reply", json=reply)
        assert answer.status_code == 200
        chat = await client.post(f"/sms/tencent/{token}/reply", json={**reply, "text": "谢谢"})
        assert chat.status_code == 200  # a reply that is not an unsubscribe is only logged
    assert (await _row(db, "bulk-1")).status == "stopped"
    await _queue(db, settings, PHONE, "code-1", code="123456")
    assert (await _row(db, "code-1")).status == "queued"


async def test_the_log_provider_keeps_texts_on_the_machine_and_shows_them(
    chat_client: httpx.AsyncClient, embedded: Any, db: Database, settings: Settings
) -> None:
    await _queue(db, settings, PHONE, "code-1", code="654321")
    assert await embedded.state.bot_runtime.delivery_worker(worker_id="w").run_once() == 1
    assert (await _row(db, "code-1")).status == "sent"
    page = await chat_client.get("/dev/sms")
    assert page.status_code == 200 and "654321" in page.text
    assert "+86138****5678" in page.text and PHONE not in page.text  # others may see the screen
    english = await chat_client.get("/dev/sms?lang=en")
    assert "Texts on this machine" in english.text

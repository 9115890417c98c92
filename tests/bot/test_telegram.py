"""Telegram through the real aiohttp session against the fake Bot API server on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlmodel import select

from backend.db import Database
from backend.outbox import service
from backend.outbox.models import OutboxMessage, OutboxStatus, Priority
from backend.people.models import ChatIdentity
from backend.settings import Settings
from bot.server import build_embedded_app
from bot.telegram_keeper import Backoff, TelegramHealth, retry_forever
from tests.fakes.telegram_server import FakeTelegramServer, RateLimits
from tests.harness import ChatUser

CHAT = 5551234


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(rate_limits=False) as server:
        yield server


def _telegram_settings(settings: Settings, server: FakeTelegramServer, **extra: object) -> Settings:
    values: dict[str, object] = {
        "bot_token": server.token,
        "telegram_api_base": server.base_url,
        "embedded_worker": False,
        "embedded_scheduler": False,
    }
    values.update(extra)
    return settings.model_copy(update=values)


async def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _sent_after(server: FakeTelegramServer, count: int) -> list[str]:
    await server.wait_for_call("sendMessage", chat_id=CHAT, count=count, wait_seconds=10)
    return server.sent_texts(chat_id=CHAT)


async def test_polling_answers_start_and_buttons(
    settings: Settings, db: Database, telegram: FakeTelegramServer
) -> None:
    app = build_embedded_app(_telegram_settings(settings, telegram), db=db)
    async with app.router.lifespan_context(app):
        telegram.push_update(telegram.user_message(CHAT, "/start", user_id=CHAT, first_name="李四"))
        texts = await _sent_after(telegram, 1)
        assert "李四" in texts[0] and "田保" in texts[0]
        menu = telegram.sent_messages(chat_id=CHAT)[0]
        buttons = menu.params["reply_markup"]["inline_keyboard"]
        help_data = next(b["callback_data"] for row in buttons for b in row if "帮助" in b["text"])
        message_id = menu.result["message_id"]
        telegram.push_update(telegram.callback_query(CHAT, help_data, message_id, user_id=CHAT))
        texts = await _sent_after(telegram, 2)
        assert "使用帮助" in texts[1]
        await telegram.wait_for_call("answerCallbackQuery")


async def test_english_telegram_user_is_answered_in_english(
    settings: Settings, db: Database, telegram: FakeTelegramServer
) -> None:
    app = build_embedded_app(_telegram_settings(settings, telegram), db=db)
    async with app.router.lifespan_context(app):
        telegram.push_update(
            telegram.user_message(CHAT, "/start", user_id=CHAT, first_name="Ann", language_code="en")
        )
        texts = await _sent_after(telegram, 1)
        assert texts[0].startswith("Hello, Ann")


async def test_delivery_honours_retry_after_and_marks_blocked_user_stopped(
    settings: Settings, db: Database, telegram: FakeTelegramServer
) -> None:
    app = build_embedded_app(_telegram_settings(settings, telegram, embedded_polling=False), db=db)
    runtime = app.state.bot_runtime
    async with db.session() as session:
        session.add(ChatIdentity(channel="telegram", external_id=str(CHAT), address=str(CHAT)))
        session.add(ChatIdentity(channel="telegram", external_id="777", address="777"))
        await session.commit()
        await service.enqueue(
            session=session,
            channel="telegram",
            address=str(CHAT),
            text="第一条",
            dedupe_key="a",
            priority=Priority.REPLY,
        )
        await service.enqueue(
            session=session, channel="telegram", address="777", text="给已屏蔽的人", dedupe_key="b"
        )
        await session.commit()
    telegram.fail_next("sendMessage", 429, retry_after=1, chat_id=CHAT)
    telegram.block_chat(777)
    worker = runtime.delivery_worker(worker_id="tg-worker")
    assert await worker.run_once() == 2
    assert telegram.sent_texts(chat_id=CHAT) == ["第一条"]  # the 429 was waited out, then sent once
    rejected = [c for c in telegram.calls_to("sendMessage") if c.error_code == 429]
    assert len(rejected) == 1
    async with db.session() as session:
        rows = {r.address: r for r in (await session.exec(select(OutboxMessage))).all()}
        blocked = (await session.exec(select(ChatIdentity).where(ChatIdentity.address == "777"))).one()
    assert rows[str(CHAT)].status == OutboxStatus.SENT
    assert rows["777"].status == OutboxStatus.STOPPED and "blocked" in (rows["777"].last_error or "")
    assert blocked.stopped_at is not None
    await runtime.close()


async def test_delivery_respects_per_chat_rate_limit(settings: Settings, db: Database) -> None:
    # Telegram allows about 1/s per chat; the fake allows a little more so that scheduling jitter on a
    # loaded machine is not mistaken for the gate sending too fast. The pacing itself is asserted below.
    limits = RateLimits(per_chat_per_second=1.25, per_chat_burst=1, global_per_second=30.0, global_burst=30)
    async with FakeTelegramServer(rate_limits=limits) as server:
        app = build_embedded_app(_telegram_settings(settings, server, embedded_polling=False), db=db)
        runtime = app.state.bot_runtime
        async with db.session() as session:
            for n in range(3):
                await service.enqueue(
                    session=session,
                    channel="telegram",
                    address=str(CHAT),
                    text=f"第{n}条",
                    dedupe_key=f"k{n}",
                )
            await session.commit()
        worker = runtime.delivery_worker(worker_id="paced")
        started = asyncio.get_running_loop().time()
        await worker.run_once()
        elapsed = asyncio.get_running_loop().time() - started
        assert server.sent_texts(chat_id=CHAT) == ["第0条", "第1条", "第2条"]  # in order, none lost
        assert not [c for c in server.calls_to("sendMessage") if c.error_code == 429], "the gate avoided 429s"
        assert elapsed >= 1.8  # three messages to one chat at 1/s
        await runtime.close()


async def _webhook_client(settings: Settings, db: Database, server: FakeTelegramServer):
    configured = _telegram_settings(
        settings, server, webhook_url="https://bot.example.cn", webhook_secret="s3cret"
    )
    return build_embedded_app(configured, db=db)


async def test_webhook_checks_secret_rejects_malformed_body_and_keeps_serving(
    settings: Settings, db: Database, telegram: FakeTelegramServer
) -> None:
    app = await _webhook_client(settings, db, telegram)
    async with app.router.lifespan_context(app):
        await _until(lambda: app.state.bot_runtime.telegram_health.state == "ok")
        assert telegram.webhook.url == "https://bot.example.cn/telegram/webhook"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            update = telegram.user_message(CHAT, "/start", user_id=CHAT)
            update["update_id"] = 1
            wrong = await client.post(
                "/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}
            )
            assert wrong.status_code == 403
            missing = await client.post("/telegram/webhook", json=update)
            assert missing.status_code == 403
            malformed = await client.post(
                "/telegram/webhook",
                content=b"{not json",
                headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"},
            )
            assert malformed.status_code == 400
            not_an_update = await client.post(
                "/telegram/webhook", json={"hello": 1}, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
            )
            assert not_an_update.status_code == 400
            assert telegram.sent_texts(chat_id=CHAT) == []
            good = await client.post(
                "/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
            )
            assert good.status_code == 200
            assert "田保" in telegram.sent_texts(chat_id=CHAT)[0]


async def test_r_enr_9_telegram_payments_invoice_precheckout_and_policy(
    settings: Settings, db: Database, telegram: FakeTelegramServer
) -> None:
    from tests.backend.test_enrollment_api import farmer_application

    configured = _telegram_settings(
        settings, telegram, payment_provider="telegram", telegram_payment_provider_token="284685063:TEST:abc"
    )
    app = build_embedded_app(configured, db=db)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            service = {"Authorization": f"Bearer {configured.service_token}"}
            await api.post(
                "/api/bot/identities",
                headers=service,
                json={"channel": "telegram", "external_id": str(CHAT), "address": str(CHAT)},
            )
            headers = {**service, "X-Tianbao-Identity": f"telegram:{CHAT}"}
            await api.post("/api/bot/me/phone", headers=headers, json={"phone_number": "13812345678"})
            application = (
                await api.post("/api/bot/applications", headers=headers, json=farmer_application())
            ).json()
        telegram.push_update(telegram.callback_query(CHAT, f"pay:{application['id']}", 1, user_id=CHAT))
        params = (await telegram.wait_for_call("sendInvoice", chat_id=CHAT, wait_seconds=10)).params
        assert params["currency"] == "CNY" and params["provider_token"] == "284685063:TEST:abc"
        amount = application["premium"]["payable_fen"]
        telegram.push_update(telegram.pre_checkout_query(CHAT, params["payload"], amount, currency="CNY"))
        await telegram.wait_for_call("answerPreCheckoutQuery", wait_seconds=10)
        assert [answer["ok"] for answer in telegram.pre_checkout_answers.values()] == [True]
        async with db.session() as session:
            assert (await session.exec(select(OutboxMessage))).all() == []  # no policy before payment
        telegram.push_update(
            telegram.successful_payment_message(CHAT, params["payload"], amount, currency="CNY", user_id=CHAT)
        )
        texts = await _sent_after(telegram, 1)
        assert "已生效" in texts[-1]
        worker = app.state.bot_runtime.delivery_worker(worker_id="pay-worker")
        assert await worker.run_once() == 1
        document = telegram.calls_to("sendDocument")[-1]
        assert document.ok and document.params["document"].content.startswith(b"%PDF")


def _first_path(route: Any) -> str:
    """A route's path; an included router's: its prefix and its first route's path."""
    router = getattr(route, "original_router", None)
    return f"{router.prefix}{_first_path(router.routes[0])}" if router is not None else route.path


async def test_chat_routes_are_matched_before_the_api_routes(
    settings: Settings, db: Database, telegram: FakeTelegramServer
) -> None:
    """FastAPI tries routes in order: every web chat message, chat-page poll and Telegram webhook call
    was matched against all the API's routes first, ~200 µs a request."""
    app = await _webhook_client(settings, db, telegram)
    paths = [_first_path(route) for route in app.router.routes]
    first_api = min(i for i, path in enumerate(paths) if path.startswith("/api/"))
    chat = [i for i, path in enumerate(paths) if path.startswith(("/webchat/", "/telegram/", "/chat"))]
    assert len(chat) >= 3 and max(chat) < first_api, paths
    await app.state.bot_runtime.close()


# --- Telegram that keeps running ---------------------------------------------------------------------
FAST = Backoff(first=0.05, factor=2.0, cap=0.2, jitter=0.0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _healthz(app: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/healthz")
    assert response.status_code == 200, response.text  # Telegram retrying never fails the process
    body: dict[str, Any] = response.json()
    return body


async def test_polling_retries_a_failing_get_me_until_telegram_answers(
    settings: Settings, db: Database, telegram: FakeTelegramServer, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.fail_next("getMe", 502, times=3)
    app = build_embedded_app(_telegram_settings(settings, telegram), db=db)
    app.state.bot_runtime.telegram_backoff = FAST
    with caplog.at_level(logging.WARNING, logger="bot.telegram_keeper"):
        async with app.router.lifespan_context(app):
            assert (await _healthz(app))["telegram"] == "retrying"
            await _until(lambda: app.state.bot_runtime.telegram_health.state == "ok")
            assert (await _healthz(app))["telegram"] == "ok"
            telegram.push_update(telegram.user_message(CHAT, "/start", user_id=CHAT, first_name="李四"))
            assert "李四" in (await _sent_after(telegram, 1))[0]
    assert [call.ok for call in telegram.calls_to("getMe")][:4] == [False, False, False, True]
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 3 and all("Bad Gateway" in f for f in failures)  # one line per failure
    assert [f.split("retrying in ")[1].split(" (")[0] for f in failures] == ["0.05 s", "0.1 s", "0.2 s"]


async def test_polling_outlives_a_failing_get_updates(
    settings: Settings, db: Database, telegram: FakeTelegramServer
) -> None:
    app = build_embedded_app(_telegram_settings(settings, telegram), db=db)
    app.state.bot_runtime.telegram_backoff = FAST
    async with app.router.lifespan_context(app):
        await _until(lambda: app.state.bot_runtime.telegram_health.state == "ok")
        telegram.fail_next("getUpdates", 502, times=2)
        telegram.push_update(telegram.user_message(CHAT, "/start", user_id=CHAT, first_name="李四"))
        assert "李四" in (await _sent_after(telegram, 1))[0]
        # Health says ok again once a getUpdates answers. A connection the 502s left broken can fail the
        # call after the one that brought the update, and the next call then long-polls: a second update
        # makes it answer.
        telegram.push_update(telegram.user_message(CHAT, "/start", user_id=CHAT, first_name="李四"))
        await _sent_after(telegram, 2)
        await _until(lambda: app.state.bot_runtime.telegram_health.state == "ok")


async def test_webhook_mode_serves_web_chat_while_telegram_is_unreachable(
    settings: Settings, db: Database
) -> None:
    unreachable = settings.model_copy(
        update={
            "bot_token": "123456:TEST",
            "telegram_api_base": f"http://127.0.0.1:{_closed_port()}",
            "webhook_url": "https://bot.example.cn",
            "embedded_worker": False,
            "embedded_scheduler": False,
        }
    )
    app = build_embedded_app(unreachable, db=db)
    app.state.bot_runtime.telegram_backoff = FAST
    async with app.router.lifespan_context(app):  # used to raise here: the process never started
        await asyncio.sleep(0.3)  # several attempts
        health = await _healthz(app)
        assert health["telegram"] == "retrying" and health["status"] == "ok"
        user = ChatUser(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t"), "offline-user"
        )
        replies = await user.say("/start")
        assert "田保" in replies[0].text


async def test_webhook_registration_is_retried_until_telegram_takes_it(
    settings: Settings, db: Database, telegram: FakeTelegramServer
) -> None:
    telegram.fail_next("setWebhook", 502, times=2)
    app = await _webhook_client(settings, db, telegram)
    app.state.bot_runtime.telegram_backoff = FAST
    async with app.router.lifespan_context(app):
        await _until(lambda: app.state.bot_runtime.telegram_health.state == "ok")
        assert telegram.webhook.url == "https://bot.example.cn/telegram/webhook"
        assert len(telegram.calls_to("setWebhook")) == 3
        assert (await _healthz(app))["telegram"] == "ok"


async def test_healthz_says_disabled_without_a_bot_token(settings: Settings, db: Database) -> None:
    app = build_embedded_app(settings.model_copy(update={"embedded_worker": False}), db=db)
    async with app.router.lifespan_context(app):
        assert (await _healthz(app))["telegram"] == "disabled"


async def test_retry_waits_grow_to_the_cap_and_each_failure_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []
    outcomes = iter([ConnectionError("down")] * 6 + [None])

    async def attempt() -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    health = TelegramHealth(enabled=True)
    backoff = Backoff(first=1.0, factor=2.0, cap=10.0, jitter=0.0)
    with caplog.at_level(logging.WARNING, logger="bot.telegram_keeper"):
        await retry_forever("connection", attempt, health, backoff, sleep=sleep)
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert len(caplog.records) == 6 and health.state == "ok"
    assert [backoff.step(n) for n in range(1, 7)] == [1, 2, 3, 4, 5, 5]

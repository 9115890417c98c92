"""Process assembly: the all-in-one embedded server, and the separate bot process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from backend.app import create_app
from backend.db import Database
from backend.settings import Settings
from bot.client import BackendClient
from bot.delivery.worker import DRAIN_SECONDS
from bot.runtime import BotRuntime, build_runtime
from bot.telegram_keeper import keep_polling, keep_webhook
from scheduler.runner import SchedulerRunner

log = logging.getLogger(__name__)


def build_embedded_app(settings: Settings, *, db: Database | None = None) -> FastAPI:
    """API, web chat, Telegram, delivery worker and scheduler in one process (``tianbao serve``)."""
    database = db or Database(settings)
    app = create_app(settings, db=database)
    backend = BackendClient.for_app(
        app, service_token=settings.service_token, identity_cache_seconds=settings.identity_cache_seconds
    )
    runtime = build_runtime(settings, backend, db=database)
    runtime.mount(app)
    _add_root_redirect(app)
    app.state.bot_runtime = runtime
    app.state.health_probes["telegram"] = lambda: runtime.telegram_health.state
    scheduler = (
        SchedulerRunner(database, redis_url=settings.redis_url) if settings.embedded_scheduler else None
    )
    _wrap_lifespan(app, runtime, scheduler=scheduler, with_worker=settings.embedded_worker)
    return app


def build_bot_app(settings: Settings) -> FastAPI:
    """The bot alone (``tianbao bot``): web chat and Telegram, talking to the API over HTTP."""
    backend = BackendClient.for_url(
        settings.backend_url or f"http://{settings.host}:8000",
        service_token=settings.service_token,
        identity_cache_seconds=settings.identity_cache_seconds,
    )
    runtime = build_runtime(settings, backend)
    app = FastAPI(title="Tianbao bot", docs_url=None, redoc_url=None)
    runtime.mount(app)
    _add_root_redirect(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        # Telegram retrying is reported, not fatal: the web chat this process serves works without it.
        return {"status": "ok", "telegram": runtime.telegram_health.state}

    app.state.bot_runtime = runtime
    _wrap_lifespan(app, runtime, scheduler=None, with_worker=False)
    return app


def _add_root_redirect(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/chat")


def _wrap_lifespan(
    app: FastAPI, runtime: BotRuntime, *, scheduler: SchedulerRunner | None, with_worker: bool
) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(the_app: FastAPI) -> AsyncIterator[Any]:
        async with inner(the_app) as state:
            tasks: list[asyncio.Task[None]] = []
            worker = runtime.delivery_worker() if with_worker else None
            delivering = asyncio.create_task(worker.run_forever(), name="delivery-worker") if worker else None
            if delivering is not None:
                tasks.append(delivering)
            if scheduler is not None:
                scheduler.start()
            tasks.extend(await _start_telegram(runtime))
            try:
                yield state
            finally:
                if worker is not None and delivering is not None:
                    worker.stop()  # the sends in flight finish and are recorded before anything closes
                    await asyncio.wait({delivering}, timeout=DRAIN_SECONDS + 2)
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                if scheduler is not None:
                    await scheduler.shutdown()
                await runtime.close()

    app.router.lifespan_context = lifespan


async def _start_telegram(runtime: BotRuntime) -> list[asyncio.Task[None]]:
    """Polling or webhook registration in the background, retrying until Telegram answers: the
    process (web chat, API, delivery) starts at once, whether Telegram is reachable or not."""
    bot, settings = runtime.telegram_bot, runtime.settings
    health, backoff = runtime.telegram_health, runtime.telegram_backoff
    if bot is None:
        return []
    if settings.webhook_url:
        keeper = keep_webhook(runtime.dispatcher, bot, settings, health, backoff)
        return [asyncio.create_task(keeper, name="telegram-webhook")]
    if not settings.embedded_polling:
        health.disable()  # this process sends to Telegram (delivery) but receives nothing from it
        return []
    return [
        asyncio.create_task(keep_polling(runtime.dispatcher, bot, health, backoff), name="telegram-polling")
    ]

"""Health endpoint and the settings profiles."""

from __future__ import annotations

import gc
import json
import re
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.db import Database
from backend.settings import Settings


async def test_healthz_reports_database_and_disabled_redis(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok" and body["database_backend"] == "sqlite"
    assert body["redis"] == "disabled"


async def test_healthz_degrades_when_redis_is_unreachable(settings: Settings, db) -> None:
    from backend.app import create_app

    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}), db=db)
    app.state.redis.url = "redis://127.0.0.1:1/0"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"] == "error"


def test_embedded_defaults_need_no_setup(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.as_posix()}/tianbao.db"
    assert settings.redis_url == "" and settings.payment_provider == "demo"
    assert settings.secret_key and "secret_key" in settings.generated_secrets


def test_production_refuses_missing_secret_demo_payments_and_memory_storage() -> None:
    with pytest.raises(ValueError, match="production profile refused") as refused:
        Settings(profile="production")
    message = str(refused.value)
    assert "TIANBAO_SECRET_KEY" in message
    assert "TIANBAO_INSURER_HOTLINE" in message
    assert "demo payment provider" in message
    assert "memory FSM storage" in message
    assert "SQLite" in message


def test_production_accepts_a_complete_configuration() -> None:
    settings = Settings(
        profile="production",
        secret_key="k" * 40,
        service_token="s" * 40,
        payment_provider="offline",
        redis_url="redis://127.0.0.1:6379/0",
        database_url="postgresql+asyncpg://u@h/db",
        insurer_hotline="95599-1234",
    )
    assert settings.generated_secrets == set()  # the webhook secret is derived from the secret key
    assert settings.derived_webhook_secret and settings.webhook_secret


def test_bot_replicas_sharing_the_secret_key_agree_on_the_webhook_secret() -> None:
    """Several bot replicas without TIANBAO_WEBHOOK_SECRET each invented one, so all but one answered 403."""
    one, two = (Settings(secret_key="k" * 40, service_token="s") for _ in range(2))
    assert one.webhook_secret == two.webhook_secret
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", one.webhook_secret)  # what Telegram accepts
    assert Settings(secret_key="other" * 8, service_token="s").webhook_secret != one.webhook_secret
    assert Settings(secret_key="k" * 40, webhook_secret="set").webhook_secret == "set"


def test_embedded_secrets_are_made_once_and_kept_private_in_var(tmp_path: Path) -> None:
    """Printed QR codes and staff tokens died at every restart: each start made a new secret key."""
    first = Settings(var_dir=tmp_path)
    first.keep_generated_secrets()
    stored = tmp_path / "secrets.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    again = Settings(var_dir=tmp_path)  # the next start
    again.keep_generated_secrets()
    assert (again.secret_key, again.service_token, again.webhook_secret) == (
        first.secret_key,
        first.service_token,
        first.webhook_secret,
    )
    assert json.loads(stored.read_text())["secret_key"] == first.secret_key
    explicit = Settings(var_dir=tmp_path, secret_key="from-the-environment")
    explicit.keep_generated_secrets()
    assert explicit.secret_key == "from-the-environment"  # the environment always wins
    assert json.loads(stored.read_text())["secret_key"] == first.secret_key


async def test_startup_heap_is_frozen_while_the_app_runs_and_released_at_shutdown(app: Any) -> None:
    """A full garbage collection must not walk what startup built (it paused the process ~500 ms)."""
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000  # modules, schemas, routes, templates, regions
    assert gc.get_freeze_count() == 0


async def test_startup_heap_freezing_can_be_turned_off(settings: Settings, db: Database) -> None:
    app = create_app(settings.model_copy(update={"gc_freeze_after_startup": False}), db=db)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0

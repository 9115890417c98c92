"""Shared fixtures. The schema and reference data are built once per run into a template SQLite file
(real Alembic migrations, real region import) and copied for each test, so every test starts clean."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from backend.app import create_app
from backend.bootstrap import bootstrap
from backend.db import Database
from backend.people.directory import IdentityDirectory
from backend.settings import Settings
from tests.harness import ChatUser, with_sessions

ADMIN_PASSWORD = "chief-of-staff-test-2026"
# A password the staff password rule accepts, for staff accounts the tests make (never their username).
STAFF_PASSWORD = "staff-test-passphrase-7"
SERVICE_TOKEN = "service-token-for-tests"
SECRET_KEY = "secret-key-for-tests-0123456789abcdef"

REQUIRE_INTEGRATION = os.environ.get("TIANBAO_REQUIRE_INTEGRATION") == "1"
POSTGRES_URL = os.environ.get(
    "TIANBAO_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TIANBAO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


UNLIMITED_WEBCHAT: dict[str, int] = {
    "webchat_messages_per_minute": 1_000_000,
    "webchat_messages_per_minute_per_address": 1_000_000,
    "webchat_uploads_per_hour": 1_000_000,
    "webchat_uploads_per_hour_per_address": 1_000_000,
    "webchat_upload_bytes_per_hour": 1 << 40,
    "webchat_upload_bytes_per_hour_per_address": 1 << 40,
    "webchat_new_chats_per_hour_per_address": 1_000_000,
}


def make_settings(var_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "var_dir": var_dir,
        "database_url": f"sqlite+aiosqlite:///{(var_dir / 'tianbao.db').as_posix()}",
        "admin_password": ADMIN_PASSWORD,
        "service_token": SERVICE_TOKEN,
        "secret_key": SECRET_KEY,
        "redis_url": "",
        "bot_token": "",
        # A test talks faster than any person: a whole enrollment in a second, hundreds of chats from
        # one address. The web chat limits' own tests (tests/bot/test_webchat_limits.py) set them low.
        **UNLIMITED_WEBCHAT,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    var_dir = tmp_path_factory.mktemp("template")
    settings = make_settings(var_dir)

    async def build() -> None:
        db = Database(settings)
        await bootstrap(db, settings)
        await db.dispose()

    asyncio.run(build())
    return var_dir / "tianbao.db"


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Settings:
    shutil.copy(template_db, tmp_path / "tianbao.db")
    return make_settings(tmp_path)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture
def directory(db: Database) -> IdentityDirectory:
    """The identity directory as the embedded app builds it (memory cache, write-behind sightings)."""
    return IdentityDirectory.for_app(db, None, ttl_seconds=600)


@pytest.fixture
async def app(settings: Settings, db: Database):
    return create_app(settings, db=db)


@pytest.fixture
async def api(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def login(api: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await api.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def admin_headers(api: httpx.AsyncClient) -> dict[str, str]:
    return await login(api, "admin", ADMIN_PASSWORD)


@pytest.fixture
def service_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {SERVICE_TOKEN}"}


def integration_unavailable(reason: str) -> None:
    """Integration tests skip with a visible reason locally, and fail in CI where they are required."""
    if REQUIRE_INTEGRATION:
        pytest.fail(f"integration service required in CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture
async def embedded(settings: Settings, db: Database):
    """The all-in-one app (API + web chat + bot) as `tianbao serve` builds it, without background tasks."""
    from bot.server import build_embedded_app

    test_settings = settings.model_copy(update={"embedded_worker": False, "embedded_scheduler": False})
    app = build_embedded_app(test_settings, db=db)
    yield app
    await app.state.bot_runtime.close()


@pytest.fixture
async def chat_client(embedded) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=embedded)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        # Signed in to whichever chat a request names, as its own browser would be (tests/harness.py);
        # tests of the refusal use a client of their own.
        yield with_sessions(client)


@pytest.fixture
def farmer(chat_client: httpx.AsyncClient) -> ChatUser:
    return ChatUser(chat_client, "farmer-wang")

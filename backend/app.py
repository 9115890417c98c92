"""The FastAPI application factory: the system of record's HTTP face."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline

from backend.db import Database
from backend.edge import MULTIPART_OVERHEAD, EdgeLimits
from backend.errors import ERROR_RESPONSES, install_error_handlers
from backend.people.directory import IdentityDirectory
from backend.redis import RedisHandle
from backend.routes import include_routers
from backend.security import decode_access_token
from backend.settings import Settings, get_settings

VERSION = "0.1.0"
DOCS_STATIC_URL = "/docs-static"
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def freeze_startup_heap() -> None:
    """Move every object alive now out of the cyclic collector's sight, for good.

    What startup built lives as long as the process, yet a full collection walks all of it: with the
    region tree and every schema loaded that is ~550,000 objects and ~500 ms in which no update is
    answered. Frozen, a full collection walks only what the process made since (~90 ms measured).
    Reference counting still frees what is dropped later; only cycles among frozen objects stay.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.configure_messages()
    database = db or Database(settings)
    redis = RedisHandle(settings.redis_url)
    identities = IdentityDirectory.for_app(
        database,
        redis.client() if redis.enabled else None,
        ttl_seconds=settings.identity_directory_seconds,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        identities.presence.start()
        if settings.gc_freeze_after_startup:
            freeze_startup_heap()
        yield
        if settings.gc_freeze_after_startup:
            gc.unfreeze()  # a process that builds apps again (tests, benchmarks) frees what it drops
        await identities.presence.stop()
        await redis.close()
        if db is None:  # only dispose what this app created
            await database.dispose()

    # /docs and /redoc with Swagger UI and ReDoc served from the installed package (fastapi-offline),
    # not a CDN: the embedded default must work on a machine with no internet.
    app = FastAPIOffline(
        static_url=DOCS_STATIC_URL,
        title="Tianbao API",
        version=VERSION,
        description="Tianbao (田保): enrollment, claims, publicity, callbacks and alerts for insurers.",
        lifespan=lifespan,
        telemetry=None if settings.telemetry else TELEMETRY_OFF,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.redis = redis
    app.state.identities = identities
    # Parts of the process that are not the backend's (the embedded bot's Telegram) add their state.
    app.state.health_probes = {}
    include_routers(app)
    install_error_handlers(app)
    app.add_middleware(
        EdgeLimits,
        json_limit=settings.max_json_body_bytes,
        upload_limit=max(
            settings.max_upload_body_bytes, settings.webchat_max_upload_bytes + MULTIPART_OVERHEAD
        ),
        large_uploads=(("/api/collective/lists", settings.household_list_max_bytes + MULTIPART_OVERHEAD),),
        staff_token=lambda token: decode_access_token(token, secret=settings.secret_key) is not None,
    )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        database_state = "ok" if await database.ping() else "error"
        redis_state = await redis.state()
        healthy = database_state == "ok" and redis_state in ("ok", "disabled")
        body = {
            "status": "ok" if healthy else "degraded",
            "version": VERSION,
            "database": database_state,
            "database_backend": "sqlite" if database.is_sqlite else "postgresql",
            "redis": redis_state,
            **{name: probe() for name, probe in app.state.health_probes.items()},
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    return app

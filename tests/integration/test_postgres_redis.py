"""The production stack's guarantees on real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlmodel import func, select

from backend.app import create_app
from backend.db import Database, utcnow
from backend.direct_writes import AsyncpgDirectWriter, PreparedWrite
from backend.outbox import service
from backend.outbox.models import OutboxMessage, OutboxStatus
from backend.people import service as people_service
from backend.people.models import ChatIdentity
from backend.regions.models import Region
from backend.settings import Settings
from bot.client import BackendClient
from bot.runtime import build_runtime
from bot.server import build_embedded_app
from scheduler.registry import JobSpec
from scheduler.runner import SchedulerRunner
from tests.conftest import ADMIN_PASSWORD
from tests.fakes.telegram_server import FakeTelegramServer
from tests.harness import ChatUser

pytestmark = pytest.mark.integration


async def test_same_migrations_and_first_run_on_postgresql(pg_settings: Settings, pg_db: Database) -> None:
    app = build_embedded_app(
        pg_settings.model_copy(update={"embedded_worker": False, "embedded_scheduler": False}), db=pg_db
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        health = (await client.get("/healthz")).json()
        assert health == {**health, "status": "ok", "database_backend": "postgresql", "redis": "ok"}
        token = await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert token.status_code == 200
    async with pg_db.session() as session:
        townships = (
            await session.exec(select(func.count()).select_from(Region).where(Region.level == 4))
        ).one()
    assert townships > 41_000
    await app.state.bot_runtime.close()


def _runtime_app(settings: Settings, db: Database):
    return build_embedded_app(
        settings.model_copy(update={"embedded_worker": False, "embedded_scheduler": False}), db=db
    )


async def test_fsm_state_survives_a_dispatcher_restart_with_redis(
    pg_settings: Settings, pg_db: Database
) -> None:
    first = _runtime_app(pg_settings, pg_db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as client:
        user = ChatUser(client, "restart-user")
        await user.say("/start")
        await user.tap("绑定手机号")  # the conversation now waits for a shared contact
    await first.state.bot_runtime.close()

    # A new process: new dispatcher, new storage object, same Redis.
    second = _runtime_app(pg_settings, pg_db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as client:
        user = ChatUser(client, "restart-user")
        # Not a number (web chat takes a typed number: it texts it a code), so the waiting step answers.
        replies = await user.say("我的手机")
        assert "不要直接输入号码" in replies[0].text, "the waiting state was lost in the restart"
        history = await user.history()
        assert len(history) >= 3, "the web chat transcript lives in Redis too"
    await second.state.bot_runtime.close()


async def test_two_delivery_workers_never_send_a_message_twice(
    pg_settings: Settings, pg_db: Database
) -> None:
    recipients = [str(700_000 + n) for n in range(240)]
    async with pg_db.session() as session:
        await service.enqueue_many(
            session=session,
            rows=[
                {"channel": "telegram", "address": a, "text": f"预警 {a}", "dedupe_key": "warning-1"}
                for a in recipients
            ],
        )
        # A repeat of the same fan-out is deduplicated by the database.
        await service.enqueue_many(
            session=session,
            rows=[
                {"channel": "telegram", "address": a, "text": f"预警 {a}", "dedupe_key": "warning-1"}
                for a in recipients
            ],
        )
        await session.commit()

    async with FakeTelegramServer(rate_limits=False) as server:
        settings = pg_settings.model_copy(
            update={
                "bot_token": server.token,
                "telegram_api_base": server.base_url,
                "telegram_global_rate": "100000/second",
                "delivery_batch_size": 15,
            }
        )
        app = _runtime_app(settings, pg_db)
        workers = []
        runtimes = []
        for name in ("worker-a", "worker-b"):
            backend = BackendClient.for_app(app, service_token=settings.service_token)
            runtime = build_runtime(settings, backend)
            runtimes.append(runtime)
            workers.append(runtime.delivery_worker(worker_id=name))

        async def drain(worker) -> int:
            total = 0
            while claimed := await worker.run_once():
                total += claimed
            return total

        claimed_a, claimed_b = await asyncio.gather(*(drain(w) for w in workers))
        sends = Counter(c.params["chat_id"] for c in server.calls_to("sendMessage") if c.ok)
        for runtime in runtimes:
            await runtime.close()
        await app.state.bot_runtime.close()

    assert claimed_a + claimed_b == len(recipients)
    assert claimed_a > 0 and claimed_b > 0, "both workers took part"
    assert len(sends) == len(recipients) and set(sends.values()) == {1}
    async with pg_db.session() as session:
        statuses = Counter((await session.exec(select(OutboxMessage.status))).all())
    assert statuses == {OutboxStatus.SENT.value: len(recipients)}


async def test_scheduler_lock_gives_one_runner_per_job_across_processes(
    pg_settings: Settings, pg_db: Database
) -> None:
    runs: list[str] = []

    async def slow_job(_session: object) -> str:
        runs.append("ran")
        await asyncio.sleep(0.3)
        return "done"

    from apscheduler.triggers.interval import IntervalTrigger

    spec = JobSpec(
        id="it-slow-job", trigger=IntervalTrigger(seconds=60), function=slow_job, description="test"
    )
    first = SchedulerRunner(pg_db, redis_url=pg_settings.redis_url, jobs=(spec,))
    second = SchedulerRunner(pg_db, redis_url=pg_settings.redis_url, jobs=(spec,))
    results = await asyncio.gather(first.run_job(spec), second.run_job(spec))
    assert sorted(results, key=str) == [None, "done"]  # one ran, the other was skipped
    assert runs == ["ran"]
    # Released afterwards: the next tick runs again.
    assert await second.run_job(spec) == "done"
    await first.shutdown()
    await second.shutdown()


async def test_rate_limit_is_shared_between_workers_through_redis(redis_url: str) -> None:
    from bot.delivery.ratelimit import RateGate

    first = RateGate(redis_url=redis_url, chat_rate="1/second", namespace="it-gate")
    second = RateGate(redis_url=redis_url, chat_rate="1/second", namespace="it-gate")
    assert await first.acquire("123", timeout=1)
    assert not await second.acquire("123", timeout=0.5), "the other worker saw the chat's slot taken"
    assert await second.acquire("456", timeout=0.5), "another chat is free"


async def test_enrollment_resumes_after_a_restart_with_redis(pg_settings: Settings, pg_db: Database) -> None:
    first = _runtime_app(pg_settings, pg_db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as client:
        user = ChatUser(client, "restart-farmer")
        await user.say("/start")
        await user.tap("我要投保")
        await user.tap("农户投保")
        await user.tap("水稻")
        await user.tap("普通农户")
        await user.say("李四")
    await first.state.bot_runtime.close()

    second = _runtime_app(pg_settings, pg_db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as client:
        user = ChatUser(client, "restart-farmer")
        replies = await user.say("11010519491231002X")  # the next answer, straight after the restart
        assert "手机号" in user.text(), "the form lost its place in the restart"
        replies = await user.tap("上一步")
        assert "身份证" in replies[-1].text
    await second.state.bot_runtime.close()


async def test_identity_directory_is_shared_by_api_replicas_through_redis(
    pg_settings: Settings, pg_db: Database
) -> None:
    """Two API processes on one Redis: a language chosen through one is what /start shows on the other,
    and the PostgreSQL upsert (first contact, change, stop and return) behaves as on SQLite."""
    replica_a, replica_b = create_app(pg_settings, db=pg_db), create_app(pg_settings, db=pg_db)
    headers = {"Authorization": f"Bearer {pg_settings.service_token}"}
    body = {
        "channel": "telegram",
        "external_id": "42",
        "address": "42",
        "first_name": "Li",
        "language_code": "zh",
    }
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=replica_a), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=replica_b), base_url="http://b") as b,
    ):
        first = (await a.post("/api/bot/identities", json=body, headers=headers)).json()
        assert first["locale"] == "zh-CN"
        assert await replica_a.state.identities.cache.get(("telegram", "42")) is not None
        chosen = await b.post(
            "/api/bot/me/locale",
            json={"locale": "en"},
            headers={**headers, "X-Tianbao-Identity": "telegram:42"},
        )
        assert chosen.status_code == 200, chosen.text
        again = (await a.post("/api/bot/identities", json=body, headers=headers)).json()
        assert again["locale"] == "en" and again["id"] == first["id"]
        async with pg_db.session() as session:
            await people_service.mark_stopped(
                session=session, directory=replica_b.state.identities, channel="telegram", address="42"
            )
            await session.commit()
        await a.post("/api/bot/identities", json=body, headers=headers)
    async with pg_db.session() as session:
        stored = (await session.exec(select(ChatIdentity).where(ChatIdentity.external_id == "42"))).one()
    assert stored.stopped_at is None and stored.locale == "en" and stored.locale_chosen


async def test_direct_writes_on_postgresql_are_the_orm_rows_and_all_or_nothing(pg_db: Database) -> None:
    """The first-contact upsert run on the asyncpg connection: times keep their instant, a batch with
    a failing statement leaves nothing behind, and the pooled connection is fit for the next batch."""
    assert isinstance(pg_db.direct, AsyncpgDirectWriter)
    upsert = PreparedWrite.compile(
        people_service._upsert_statement("postgresql", follow_locale=True), pg_db.engine.dialect
    )
    seen = utcnow() - timedelta(minutes=2)

    def values(external_id: str | None) -> dict[str, object]:
        return {
            "p_channel": "webchat",
            "p_external_id": external_id,
            "p_address": "pg-direct",
            "p_first_name": None,
            "p_locale": "en",
            "p_now": seen,
        }

    [row] = await pg_db.direct.write([(upsert, values("pg-direct-1"))])
    with pytest.raises(Exception, match="null value"):
        await pg_db.direct.write([(upsert, values("pg-direct-2")), (upsert, values(None))])
    [again] = await pg_db.direct.write([(upsert, values("pg-direct-1"))])
    async with pg_db.session() as session:
        stored = (await session.exec(select(ChatIdentity).where(ChatIdentity.address == "pg-direct"))).all()
    assert [s.external_id for s in stored] == ["pg-direct-1"]
    assert stored[0].id == row["id"] == again["id"]
    assert stored[0].last_seen_at == seen and stored[0].locale == "en"

"""A warning to many Telegram chats through the whole product, against the fake Bot API's flood control.

    python -m benchmarks.warning_delivery [--recipients N] [--paid] [--probes P] [--kill-at F]

``tianbao serve`` as it runs embedded (API, bot with Telegram polling, delivery worker, one process) on a
SQLite file, its Telegram pointed at the fake Bot API on loopback, which enforces Telegram's limits: 30
messages/s overall (burst 30), 1/s per chat (burst 3), and, for messages sent with ``allow_paid_broadcast``,
1,000/s; past a limit it answers 429 with ``retry_after``. ``N`` outbox rows of one warning (bulk priority,
kind ``warning``) are queued set-based for ``N`` chats, then:

* **throughput**: from the first to the last message the fake accepted, against the budget (30/s, or
  1,000/s with ``--paid``, which sets ``TIANBAO_ALLOW_PAID_BROADCAST``): aim >= 95 %;
* **exactly once**: every chat got the warning once (none missed, none twice);
* **replies**: while the warning goes out, ``P`` other users send ``/start`` (spread over the run); the time
  from the update reaching the fake's ``getUpdates`` queue to the bot's answer arriving at the fake, p50 /
  p99 / max: aim p99 < 1 s;
* **429s**: how many sends the fake refused (the worker's own limiter should keep this near 0).

``--workers W`` runs W delivery workers as processes of their own (``tianbao worker``, the API over HTTP,
on SQLite or ``--postgres-url``, the rate gate shared through ``--redis-url``), as production scales out.
``--kill-at F`` SIGKILLs a worker when a fraction ``F`` of the warning has been sent, then starts another:
every chat still gets the warning, duplicates at most one per chat and ``--parallel`` in all
(docs/architecture.md, "the bound"). Results: docs/benchmarks.md ("Warning delivery").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from sqlalchemy import insert

from backend.app import create_app
from backend.bootstrap import bootstrap
from backend.db import Database, utcnow
from backend.outbox.jobs import delivery_housekeeping
from backend.outbox.models import MessageKind, OutboxMessage, OutboxStatus, Priority
from backend.people.models import ChatIdentity
from backend.settings import Settings
from bot.server import build_embedded_app
from tests.fakes.telegram_server import FakeTelegramServer, RateLimits

AIM_SHARE = 0.95
AIM_REPLY_P99 = 1.0
FIRST_CHAT = 9_000_000_001
PROBE_CHAT = 8_000_000_001
SERVICE_TOKEN = "bench-service-token"
SECRET_KEY = "bench-secret-key-0123456789abcdef"
WARNING_TEXT = "【台风预警】东莞市气象台发布台风橙色预警：请加固大棚、给香蕉树打桩，牲畜转移到高处。"


@dataclass
class Figures:
    recipients: int
    budget: float
    first_at: float = 0.0
    last_at: float = 0.0
    delivered: Counter[int] = field(default_factory=Counter)
    refused: int = 0
    reply_latencies: list[float] = field(default_factory=list)
    kills: int = 0

    @property
    def rate(self) -> float:
        span = self.last_at - self.first_at
        return (len(self.delivered) - 1) / span if span > 0 else 0.0

    @property
    def missing(self) -> int:
        return self.recipients - len(self.delivered)

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.delivered.values() if count > 1)


def make_settings(
    var_dir: Path, server: FakeTelegramServer, *, paid: bool, worker: bool, parallel: int
) -> Settings:
    return Settings(
        _env_file=None,
        var_dir=var_dir,
        database_url=f"sqlite+aiosqlite:///{(var_dir / 'tianbao.db').as_posix()}",
        redis_url="",
        bot_token=server.token,
        telegram_api_base=server.base_url,
        allow_paid_broadcast=paid,
        admin_password="bench-chief-passphrase",
        service_token=SERVICE_TOKEN,
        secret_key=SECRET_KEY,
        embedded_worker=worker,
        delivery_max_parallel_chats=parallel,
        delivery_batch_size=min(500, max(50, parallel * 2)),
        embedded_scheduler=worker,  # delivery-housekeeping hands a retried message back to the queue
        embedded_polling=True,
    )


async def queue_warning(db: Database, recipients: int) -> None:
    """The warning's outbox rows and their chats, set-based (as the broadcast writes them)."""
    now = utcnow()
    chats = [FIRST_CHAT + n for n in range(recipients)]
    async with db.session() as session:
        for start in range(0, recipients, 2000):
            batch = chats[start : start + 2000]
            await session.execute(
                insert(ChatIdentity),
                [
                    {
                        "channel": "telegram",
                        "external_id": str(chat),
                        "address": str(chat),
                        "locale": "zh-CN",
                        "locale_chosen": False,
                        "created_at": now,
                        "last_seen_at": now,
                    }
                    for chat in batch
                ],
            )
            await session.execute(
                insert(OutboxMessage),
                [
                    {
                        "channel": "telegram",
                        "address": str(chat),
                        "text": WARNING_TEXT,
                        "parse_mode": "HTML",
                        "buttons": [[{"text": "收到", "callback_data": "bench:ack"}]],
                        "attachments": [],
                        "priority": int(Priority.BULK),
                        "kind": MessageKind.WARNING.value,
                        "dedupe_key": "bench-warning",
                        "status": OutboxStatus.QUEUED.value,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for chat in batch
                ],
            )
        await session.commit()


def warning_sends(server: FakeTelegramServer) -> list[tuple[int, float, bool]]:
    """(chat, when, accepted) of every sendMessage of the warning the fake received so far."""
    return [
        (int(call.params["chat_id"]), call.received_at, call.ok)
        for call in server.calls_to("sendMessage")
        if call.status is not None and int(call.params["chat_id"]) >= FIRST_CHAT
    ]


async def probe_replies(server: FakeTelegramServer, figures: Figures, probes: int, spread: float) -> None:
    """Users who write to the bot while the warning goes out: how long until their answer arrives."""

    async def one(n: int) -> None:
        await asyncio.sleep(spread * (n + 0.5) / probes)
        chat = PROBE_CHAT + n
        pushed = time.monotonic()
        server.push_update(server.user_message(chat, "/start", user_id=chat, first_name="李四"))
        answer = await server.wait_for_call(
            "sendMessage", chat_id=chat, predicate=lambda call: call.ok, wait_seconds=60
        )
        figures.reply_latencies.append(answer.received_at - pushed)

    await asyncio.gather(*(one(n) for n in range(probes)))


async def wait_delivered(server: FakeTelegramServer, figures: Figures, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sends = warning_sends(server)
        if len({chat for chat, _at, ok in sends if ok}) >= figures.recipients:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # anything sent twice arrives now or not at all
    sends = warning_sends(server)
    accepted = [(chat, at) for chat, at, ok in sends if ok]
    figures.delivered = Counter(chat for chat, _at in accepted)
    figures.refused = sum(1 for _chat, _at, ok in sends if not ok)
    if os.environ.get("BENCH_DEBUG"):
        refused = [c for c in server.calls_to("sendMessage") if c.status is not None and not c.ok]
        for call in refused[:10]:
            print("refused", call.params["chat_id"], call.description, f"{call.received_at:.3f}")
    if accepted:
        figures.first_at = min(at for _chat, at in accepted)
        figures.last_at = max(at for _chat, at in accepted)


async def run_embedded(args: argparse.Namespace, var_dir: Path) -> Figures:
    budget = 1000.0 if args.paid else 30.0
    figures = Figures(recipients=args.recipients, budget=budget)
    async with FakeTelegramServer(rate_limits=RateLimits()) as server:
        settings = make_settings(var_dir, server, paid=args.paid, worker=True, parallel=args.parallel)
        db = Database(settings)
        await bootstrap(db, settings)
        await queue_warning(db, args.recipients)
        app = build_embedded_app(settings, db=db)
        expected = args.recipients / (budget * AIM_SHARE)
        async with app.router.lifespan_context(app):
            probes = asyncio.create_task(probe_replies(server, figures, args.probes, spread=expected * 0.8))
            await wait_delivered(server, figures, seconds=expected * 2 + 60)
            await probes
        await db.dispose()
    return figures


async def run_workers(args: argparse.Namespace, var_dir: Path) -> Figures:
    """``--workers W`` delivery workers, each its own ``tianbao worker`` process, against the API over
    HTTP (uvicorn in this process, on SQLite or ``--postgres-url``), the rate gate shared through
    ``--redis-url`` when given. With ``--kill-at F`` the first worker is SIGKILLed once a fraction ``F``
    of the warning is out, and another started in its place."""
    budget = 1000.0 if args.paid else 30.0
    figures = Figures(recipients=args.recipients, budget=budget)
    async with FakeTelegramServer(rate_limits=RateLimits()) as server:
        settings = make_settings(var_dir, server, paid=args.paid, worker=False, parallel=args.parallel)
        settings = settings.model_copy(
            update={
                "embedded_polling": False,
                # Short leases only where a worker is killed (its messages come back sooner).
                "delivery_lease_seconds": 8 if args.kill_at else 60,
                "redis_url": args.redis_url,
                "database_url": await _fresh_postgres(args.postgres_url)
                if args.postgres_url
                else settings.database_url,
            }
        )
        db = Database(settings)
        await bootstrap(db, settings)
        await queue_warning(db, args.recipients)
        port = _free_port()
        api = uvicorn.Server(uvicorn.Config(create_app(settings, db=db), port=port, log_level="warning"))
        serving = asyncio.create_task(api.serve())
        env = _worker_env(
            var_dir,
            server,
            port,
            paid=args.paid,
            parallel=args.parallel,
            redis_url=args.redis_url,
            lease=settings.delivery_lease_seconds,
        )
        housekeeping = asyncio.create_task(_housekeeping(db))
        workers = [await _start_worker(env) for _ in range(args.workers)]
        if args.kill_at:
            await server.wait_for_call(
                "sendMessage",
                count=int(args.recipients * args.kill_at),
                predicate=lambda call: call.ok and int(call.params["chat_id"]) >= FIRST_CHAT,
                wait_seconds=args.recipients,
            )
            workers[0].send_signal(signal.SIGKILL)
            await workers[0].wait()
            figures.kills = 1
            workers[0] = await _start_worker(env)
        await wait_delivered(server, figures, seconds=args.recipients / (budget * AIM_SHARE) * 2 + 60)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await worker.wait()
        housekeeping.cancel()
        api.should_exit = True
        await serving
        await db.dispose()
    return figures


async def _fresh_postgres(url: str) -> str:
    """Drop and recreate the benchmark's database (its name must contain "bench")."""
    import asyncpg

    base, _, name = url.rpartition("/")
    if "bench" not in name:
        raise SystemExit(f"--postgres-url must name a database with 'bench' in it, not {name!r}")
    admin = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url


async def _housekeeping(db: Database) -> None:
    """The scheduler's delivery-housekeeping job: a dead worker's leases come back."""
    while True:
        async with db.session() as session:
            await delivery_housekeeping(session=session)
        await asyncio.sleep(0.5)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker_env(
    var_dir: Path,
    server: FakeTelegramServer,
    port: int,
    *,
    paid: bool,
    parallel: int,
    redis_url: str,
    lease: int,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANBAO_")}
    env.update(
        TIANBAO_VAR_DIR=str(var_dir),
        TIANBAO_SERVICE_TOKEN=SERVICE_TOKEN,
        TIANBAO_SECRET_KEY=SECRET_KEY,
        TIANBAO_BACKEND_URL=f"http://127.0.0.1:{port}",
        TIANBAO_BOT_TOKEN=server.token,
        TIANBAO_TELEGRAM_API_BASE=server.base_url,
        TIANBAO_DELIVERY_LEASE_SECONDS=str(lease),
        TIANBAO_ALLOW_PAID_BROADCAST="true" if paid else "false",
        TIANBAO_DELIVERY_MAX_PARALLEL_CHATS=str(parallel),
        TIANBAO_DELIVERY_BATCH_SIZE=str(min(500, max(50, parallel * 2))),
        TIANBAO_REDIS_URL=redis_url,
    )
    return env


async def _start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "worker", env=env, stdout=asyncio.subprocess.DEVNULL
    )


def report(args: argparse.Namespace, figures: Figures) -> bool:
    share = figures.rate / figures.budget
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    mode = "paid broadcast (1,000/s)" if args.paid else "free (30/s)"
    print(f"recipients: {figures.recipients}, budget: {mode}")
    print(
        f"delivered: {len(figures.delivered)} chats in {figures.last_at - figures.first_at:.1f} s: "
        f"{figures.rate:.1f}/s = {share:.1%} of the budget (aim >= {AIM_SHARE:.0%})"
    )
    print(f"missing: {figures.missing}, sent twice: {figures.duplicates}, refused (429): {figures.refused}")
    ok = figures.missing == 0
    if figures.kills:
        bound = min(args.parallel, figures.recipients)
        worst = max(figures.delivered.values(), default=0)
        print(f"kills: {figures.kills}; duplicates allowed: <= 1 per chat and <= {bound} in all")
        ok = ok and worst <= 2 and figures.duplicates <= bound
    else:
        ok = ok and figures.duplicates == 0 and share >= AIM_SHARE
    if figures.reply_latencies:
        latencies = sorted(figures.reply_latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"replies while it ran: {len(latencies)}: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms (aim p99 < {AIM_REPLY_P99:.0f} s)"
        )
        ok = ok and p99 < AIM_REPLY_P99
    print("aim met" if ok else "AIM NOT MET")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--paid", action="store_true", help="TIANBAO_ALLOW_PAID_BROADCAST: 1,000/s")
    parser.add_argument("--probes", type=int, default=40, help="users writing while the warning goes out")
    parser.add_argument(
        "--parallel", type=int, default=30, help="TIANBAO_DELIVERY_MAX_PARALLEL_CHATS (the crash bound)"
    )
    parser.add_argument("--kill-at", type=float, default=0.0, help="SIGKILL a worker at this fraction")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: embedded, one process)")
    parser.add_argument(
        "--postgres-url",
        default="",
        help="with --workers: e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench_warning",
    )
    parser.add_argument("--redis-url", default="", help="with --workers: the rate gate shared in Redis")
    args = parser.parse_args()
    if args.kill_at and not args.workers:
        args.workers = 1
    with tempfile.TemporaryDirectory(prefix="tianbao-bench-") as tmp:
        run = run_workers if args.workers else run_embedded
        if args.workers:
            args.probes = 0  # replies are measured embedded, where the bot answers them
        figures = asyncio.run(run(args, Path(tmp)))
    sys.exit(0 if report(args, figures) else 1)


if __name__ == "__main__":
    main()

"""/start throughput: the full Tianbao stack against a bare aiogram echo bot, measured in the same run.

    python -m benchmarks.bench_start [--updates N] [--users U] [--stack embedded|postgres|both]
                                     [--concurrency C] [--runs R] [--profile]

Both sides are fed the same kind of web chat updates through the same ``WebChatChannel.feed`` and the
same ``WebChatSession`` bot (no network), so the ratio isolates what Tianbao adds to a bare dispatcher:
its middleware, FSM storage and event isolation, the backend call over the in-process ASGI transport,
the FastAPI route, the identity upsert in the database, template rendering and the inline keyboard.

Everything runs in one process on one asyncio event loop. Results and how to read them:
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import platform
import pstats
import resource
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import asyncpg
from aiogram import Dispatcher, Router
from aiogram.filters import CommandStart
from aiogram.types import Message, Update
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from backend.bootstrap import bootstrap
from backend.db import Database
from backend.settings import Settings
from bot.channels.webchat.routes import WebChatChannel
from bot.channels.webchat.store import WebChatMessage
from bot.channels.webchat.updates import text_update
from bot.runtime import BotRuntime
from bot.server import build_embedded_app

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_tianbao"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
STACKS: dict[str, tuple[str, ...]] = {
    "embedded": ("embedded",),
    "postgres": ("postgres",),
    "both": ("embedded", "postgres"),
}
STACK_PARTS = {
    "embedded": "SQLite file (aiosqlite), memory FSM storage + SimpleEventIsolation, memory web chat store",
    "postgres": "PostgreSQL (asyncpg), Redis FSM storage + RedisEventIsolation, Redis web chat store",
}
PROFILE_UPDATES = 1000
FIRST_NAME = "王大明"
LANGUAGE_CODE = "zh-CN"
WARM_UP_USERS = 100
AIM_SLOWDOWN = 10.0
AIM_UPDATES_PER_SECOND = 1000.0
PACKAGES = ("aiogram", "fastapi", "starlette", "httpx", "pydantic", "sqlalchemy", "sqlmodel", "jinja2")
DRIVERS = ("aiosqlite", "asyncpg", "redis")

Item = tuple[str, Update]
Replies = list[WebChatMessage]
Runner = Callable[[WebChatChannel, Sequence[Item]], Awaitable[list[Replies]]]
Check = Callable[[list[Replies], int], None]


class BenchmarkError(RuntimeError):
    """A side answered something other than what it should: its figures would mean nothing."""


# --- the two sides ----------------------------------------------------------------------------------
def make_settings(var_dir: Path, *, database_url: str = "", redis_url: str = "") -> Settings:
    """Embedded-profile settings without background tasks; ``.env`` is ignored so runs are comparable."""
    return Settings(
        _env_file=None,
        var_dir=var_dir,
        database_url=database_url or f"sqlite+aiosqlite:///{(var_dir / 'tianbao.db').as_posix()}",
        redis_url=redis_url,
        bot_token="",
        admin_password="bench-chief-passphrase",
        service_token="bench-service-token",
        secret_key="bench-secret-key-0123456789abcdef",
        embedded_worker=False,
        embedded_scheduler=False,
        embedded_polling=False,
    )


def bare_dispatcher() -> Dispatcher:
    """The baseline: aiogram's defaults (memory storage, no event isolation) and one echo handler."""
    router = Router(name="echo")

    @router.message(CommandStart())
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


@dataclass
class Stack:
    name: str
    runtime: BotRuntime
    tianbao: WebChatChannel
    bare: WebChatChannel


@asynccontextmanager
async def open_stack(name: str, settings: Settings) -> AsyncIterator[Stack]:
    """Migrate and seed the database (not timed), then build the app as ``tianbao serve`` does."""
    db = Database(settings)
    try:
        started = time.perf_counter()
        await bootstrap(db, settings)
        print(f"[{name}] {STACK_PARTS[name]}")
        print(
            f"[{name}] bootstrap (migrations + regions + admin, not timed): "
            f"{time.perf_counter() - started:.1f} s"
        )
        app = build_embedded_app(settings, db=db)
        runtime: BotRuntime = app.state.bot_runtime
        bare = WebChatChannel(
            bare_dispatcher(),
            runtime.webchat_bot,
            runtime.webchat_session,
            limits=runtime.webchat.limits,
        )
        async with app.router.lifespan_context(app):
            yield Stack(name=name, runtime=runtime, tianbao=runtime.webchat, bare=bare)
    finally:
        await db.dispose()


# --- workload -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    first: list[Item]  # the first /start of each new user (identity INSERT)
    repeat: list[Item]  # returning users (identity UPDATE), round-robin: a wave never holds a user twice


def start_item(channel: WebChatChannel, chat_id: str) -> Item:
    """What ``WebChatChannel.handle_input`` builds for a browser's "/start": an update already bound
    to the web chat bot (both sides share that bot, so neither pays aiogram's re-binding round trip)."""
    number = channel.session.register_chat(chat_id)
    update = text_update(
        number, "/start", first_name=FIRST_NAME, language_code=LANGUAGE_CODE, bot=channel.bot
    )
    return chat_id, update


def make_workload(channel: WebChatChannel, prefix: str, users: int, total: int) -> Workload:
    chat_ids = [f"{prefix}-{n:05d}" for n in range(users)]
    first = [start_item(channel, chat_id) for chat_id in chat_ids]
    repeat = [start_item(channel, chat_ids[n % users]) for n in range(total - users)]
    return Workload(first=first, repeat=repeat)


async def feed_sequential(channel: WebChatChannel, items: Sequence[Item]) -> list[Replies]:
    return [await channel.feed(chat_id, update, FIRST_NAME) for chat_id, update in items]


def feed_concurrent(concurrency: int) -> Runner:
    """Waves of ``concurrency`` updates in flight at once (asyncio.gather), one wave after another."""

    async def run(channel: WebChatChannel, items: Sequence[Item]) -> list[Replies]:
        replies: list[Replies] = []
        for start in range(0, len(items), concurrency):
            wave = items[start : start + concurrency]
            replies.extend(await asyncio.gather(*(channel.feed(c, u, FIRST_NAME) for c, u in wave)))
        return replies

    return run


def check_tianbao(replies: list[Replies], expected: int) -> None:
    """Every /start must be answered with one message carrying the main menu (an error reply has none)."""
    bad = [r for r in replies if len(r) != 1 or not r[0].buttons]
    if len(replies) != expected or bad:
        sample = bad[0] if bad else None
        raise BenchmarkError(f"tianbao: {len(bad)} of {expected} /start not answered with a menu: {sample}")


def check_bare(replies: list[Replies], expected: int) -> None:
    bad = [r for r in replies if len(r) != 1 or r[0].text != "/start"]
    if len(replies) != expected or bad:
        raise BenchmarkError(f"bare: {len(bad)} of {expected} /start not echoed: {bad[0] if bad else None}")


# --- measurement ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    seconds: float
    cpu_seconds: float  # process CPU time, all threads (aiosqlite runs SQLite in a worker thread)

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.seconds + other.seconds, self.cpu_seconds + other.cpu_seconds)


async def timed(runner: Runner, channel: WebChatChannel, items: Sequence[Item], check: Check) -> Timing:
    cpu_started, started = time.process_time(), time.perf_counter()
    replies = await runner(channel, items)
    timing = Timing(time.perf_counter() - started, time.process_time() - cpu_started)
    check(replies, len(items))
    return timing


@dataclass
class Result:
    stack: str
    mode: str
    workload: str
    updates: int
    tianbao: list[Timing] = field(default_factory=list)
    bare: list[Timing] = field(default_factory=list)

    @staticmethod
    def _median(timings: list[Timing]) -> Timing:
        return Timing(
            statistics.median(t.seconds for t in timings), statistics.median(t.cpu_seconds for t in timings)
        )

    @property
    def tianbao_median(self) -> Timing:
        return self._median(self.tianbao)

    @property
    def bare_median(self) -> Timing:
        return self._median(self.bare)

    @property
    def tianbao_rate(self) -> float:
        return self.updates / self.tianbao_median.seconds

    @property
    def bare_rate(self) -> float:
        return self.updates / self.bare_median.seconds

    @property
    def slowdown(self) -> float:
        """How many times slower than bare aiogram (bare updates/s divided by Tianbao updates/s)."""
        return self.bare_rate / self.tianbao_rate


def modes(concurrency: int) -> dict[str, Runner]:
    return {"sequential": feed_sequential, f"concurrent {concurrency}": feed_concurrent(concurrency)}


async def warm_up(stack: Stack, runners: dict[str, Runner], users: int) -> None:
    """Import-time caches, templates, SQL compilation, connection pools: filled before anything is timed."""
    for index, runner in enumerate(runners.values()):
        for side, channel, check in (("t", stack.tianbao, check_tianbao), ("b", stack.bare, check_bare)):
            work = make_workload(channel, f"w{index}{side}", users, 2 * users)
            await timed(runner, channel, work.first + work.repeat, check)


async def measure_mode(stack: Stack, mode: str, runner: Runner, args: argparse.Namespace) -> list[Result]:
    users, total = args.users, args.updates
    first = Result(stack.name, mode, "first /start", users)
    repeat = Result(stack.name, mode, "repeat /start", total - users)
    mixed = Result(stack.name, mode, "mixed", total)
    for run in range(args.runs):
        tag = f"{stack.name[0]}{mode[0]}{run}"
        sides = (
            ("tianbao", stack.tianbao, make_workload(stack.tianbao, f"t{tag}", users, total), check_tianbao),
            ("bare", stack.bare, make_workload(stack.bare, f"b{tag}", users, total), check_bare),
        )
        for side, channel, work, check in sides:
            first_time = await timed(runner, channel, work.first, check)
            repeat_time = await timed(runner, channel, work.repeat, check) if work.repeat else Timing(0, 0)
            getattr(first, side).append(first_time)
            getattr(repeat, side).append(repeat_time)
            getattr(mixed, side).append(first_time + repeat_time)
        print(f"[{stack.name}] {mode}: run {run + 1}/{args.runs} done")
    return [first, repeat, mixed] if repeat.updates else [first]


async def measure_stack(stack: Stack, args: argparse.Namespace) -> list[Result]:
    runners = modes(args.concurrency)
    await warm_up(stack, runners, min(WARM_UP_USERS, args.users))
    results: list[Result] = []
    for mode, runner in runners.items():
        results.extend(await measure_mode(stack, mode, runner, args))
    return results


async def profile_stack(stack: Stack, args: argparse.Namespace) -> str:
    """cProfile of one sequential pass of the full stack, same mix of new and returning users."""
    updates = min(args.updates, PROFILE_UPDATES)
    users = max(1, round(updates * args.users / args.updates))
    work = make_workload(stack.tianbao, f"p{stack.name[0]}", users, updates)
    profiler = cProfile.Profile()
    profiler.enable()
    await feed_sequential(stack.tianbao, work.first + work.repeat)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    for order in ("tottime", "cumulative"):
        stream.write(f"\n--- top 15 by {order} ---\n")
        stats.sort_stats(order).print_stats(15)
    text = stream.getvalue()
    paths = sysconfig.get_paths()
    for prefix in (paths["purelib"] + "/", paths["stdlib"] + "/", str(Path.cwd()) + "/", sys.prefix + "/"):
        text = text.replace(prefix, "")
    title = f"cProfile: {stack.name}, sequential, {updates} updates ({users} new users), event-loop thread"
    return f"\n===== {title} =====\n{text.strip()}\n"


# --- services ---------------------------------------------------------------------------------------------
async def prepare_postgres(url: str) -> str:
    """Drop and recreate the benchmark database (Alembic then builds the schema); returns the version."""
    target = make_url(url)
    name = target.database or ""
    admin = target.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=3)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def prepare_redis(url: str) -> str:
    """Empty the benchmark's Redis database (FSM state, web chat transcripts); returns the version."""
    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.flushdb()
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await client.aclose()


async def settings_for(name: str, var_dir: Path, args: argparse.Namespace) -> Settings | None:
    if name == "embedded":
        return make_settings(var_dir)
    name = make_url(args.postgres_url).database or ""
    if "bench" not in name:
        raise BenchmarkError(f"refusing to drop database {name!r}: its name must contain 'bench'")
    try:
        postgres = await prepare_postgres(args.postgres_url)
    except Exception as exc:
        print(f"SKIPPED postgres stack: PostgreSQL unreachable at {args.postgres_url}: {exc!r}")
        return None
    try:
        redis = await prepare_redis(args.redis_url)
    except Exception as exc:
        print(f"SKIPPED postgres stack: Redis unreachable at {args.redis_url}: {exc!r}")
        return None
    print(
        f"[postgres] PostgreSQL {postgres} ({args.postgres_url}, recreated), "
        f"Redis {redis} ({args.redis_url}, flushed)"
    )
    return make_settings(var_dir, database_url=args.postgres_url, redis_url=args.redis_url)


# --- output -------------------------------------------------------------------------------------------------
def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return found.stdout.strip()


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def describe_machine(args: argparse.Namespace) -> str:
    packages = ", ".join(f"{name} {_version(name)}" for name in PACKAGES + DRIVERS)
    return "\n".join(
        [
            f"date:     {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"command:  python -m benchmarks.bench_start {' '.join(sys.argv[1:])}".rstrip(),
            f"machine:  {_cpu_model()}, nproc {len(os.sched_getaffinity(0))}, {platform.platform()}",
            f"python:   {platform.python_implementation()} {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, event loop {type(asyncio.get_running_loop()).__name__}",
            f"packages: {packages}",
            f"code:     commit {_commit()}; load average at start {load_average()} (1/5/15 min)",
            f"workload: {args.updates} /start per run = {args.users} new users + "
            f"{args.updates - args.users} repeats; median of {args.runs} runs; "
            f"concurrent mode = waves of {args.concurrency} via asyncio.gather",
        ]
    )


def format_table(results: list[Result]) -> str:
    header = (
        f"{'stack':<9} {'mode':<13} {'workload':<13} {'updates':>7} | {'tianbao s':>9} {'upd/s':>6} "
        f"{'cpu%':>5} {'upd/cpu-s':>9} | {'bare s':>7} {'upd/s':>6} | {'x slower':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        t, b = r.tianbao_median, r.bare_median
        lines.append(
            f"{r.stack:<9} {r.mode:<13} {r.workload:<13} {r.updates:>7} | {t.seconds:>9.3f} "
            f"{r.tianbao_rate:>6.0f} {100 * t.cpu_seconds / t.seconds:>4.0f}% "
            f"{r.updates / t.cpu_seconds:>9.0f} | {b.seconds:>7.3f} {r.bare_rate:>6.0f} | {r.slowdown:>7.1f}x"
        )
    return "\n".join(lines)


def format_verdict(results: list[Result]) -> str:
    """The aim, judged on the whole workload (the last row) of each stack and mode."""
    overall = {(r.stack, r.mode): r for r in results}
    lines = [
        f"aim: within {AIM_SLOWDOWN:.0f}x of bare aiogram, >= {AIM_UPDATES_PER_SECOND:.0f} upd/s on one core"
    ]
    for (stack, mode), r in overall.items():
        ratio_ok = "met" if r.slowdown <= AIM_SLOWDOWN else "NOT met"
        rate_ok = "met" if r.tianbao_rate >= AIM_UPDATES_PER_SECOND else "NOT met"
        lines.append(
            f"  {stack} / {mode}: {r.slowdown:.1f}x slower than bare ({ratio_ok}); "
            f"{r.tianbao_rate:.0f} upd/s ({rate_ok})"
        )
    return "\n".join(lines)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --- entry point ------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_start",
        description="Updates per second for /start: the full Tianbao stack against bare aiogram.",
    )
    parser.add_argument("--updates", type=int, default=3000, help="/start updates per run (default 3000)")
    parser.add_argument("--users", type=int, default=1000, help="distinct new users per run (default 1000)")
    parser.add_argument("--stack", choices=sorted(STACKS), default="embedded")
    parser.add_argument("--concurrency", type=int, default=50, help="updates in flight (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is shown (default 3)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile top 15 of the full stack")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="dropped and recreated!")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="this Redis database is flushed!")
    args = parser.parse_args(argv)
    for name in ("updates", "users", "concurrency", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    args.users = min(args.users, args.updates)
    return args


async def run(args: argparse.Namespace) -> None:
    print(describe_machine(args))
    results: list[Result] = []
    profiles: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tianbao-bench-") as tmp:
        for name in STACKS[args.stack]:
            settings = await settings_for(name, Path(tmp) / name, args)
            if settings is None:
                continue
            async with open_stack(name, settings) as stack:
                results.extend(await measure_stack(stack, args))
                if args.profile:
                    profiles.append(await profile_stack(stack, args))
    if results:
        print()
        print(format_table(results))
        print()
        print(format_verdict(results))
    print(
        f"\npeak RSS: {peak_rss_mib():.0f} MiB (whole process, both sides, all stacks); "
        f"load average at end {load_average()}"
    )
    for text in profiles:
        print(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

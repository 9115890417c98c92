"""A real `tianbao worker` killed with SIGKILL mid-delivery, again and again (issue 11).

The backend API over HTTP on a SQLite file (uvicorn in the test's process), the fake Bot API on loopback, 1,000 messages queued in random
order to 60 Telegram chats. Each worker is a process of its own running `tianbao worker` (``bot.cli.main``)
over HTTP; it is forked from a launcher that made the imports once (a start is 6-17 s of imports on a busy
2-core machine, and seven of them would be most of the test). It is killed at random points (right after the fake
answered a send, when a result is most likely unrecorded) and another started; the test plays the scheduler's
``delivery-housekeeping`` job every 0.2 s, so the dead worker's leases (8 s here) come back. It asserts the
bound docs/architecture.md promises:

* after each kill, the messages Telegram received that the backend has not recorded as sent (the ones that
  will be sent again) number at most one per recipient and at most ``MAX_PARALLEL_CHATS`` in total;
* in the end nothing is missing, and every duplicate is one of those: per recipient at most one per kill,
  in total at most ``MAX_PARALLEL_CHATS`` per kill.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from sqlmodel import select

from backend.app import create_app
from backend.db import Database
from backend.outbox import service
from backend.outbox.jobs import delivery_housekeeping
from backend.outbox.models import OutboxMessage, OutboxStatus, Priority
from backend.settings import Settings
from bot.delivery.worker import MAX_PARALLEL_CHATS
from tests.conftest import SECRET_KEY, SERVICE_TOKEN
from tests.fakes.telegram_server import FakeTelegramServer

RECIPIENTS = 60
MESSAGES = 1000
KILLS = 6
LEASE_SECONDS = 8  # the worker skips a send with less than 5 s of lease left (LEASE_SAFETY)
FIRST_CHAT = 7_000_001
START_SECONDS = 120  # a start takes a second or two; a shared 2-core machine can make it much more
DELIVERY_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(var_dir: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANBAO_")}
    env.update(
        TIANBAO_VAR_DIR=str(var_dir),
        TIANBAO_SERVICE_TOKEN=SERVICE_TOKEN,
        TIANBAO_SECRET_KEY=SECRET_KEY,
        TIANBAO_DELIVERY_LEASE_SECONDS=str(LEASE_SECONDS),
        TIANBAO_GC_FREEZE_AFTER_STARTUP="false",
    )
    env.update({f"TIANBAO_{k.upper()}": v for k, v in values.items()})
    return env


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
        await process.wait()


# Imports what `tianbao worker` needs once, then on "spawn" forks a child that runs the command (the same
# ``bot.cli.main`` the script runs) and prints its pid; on "reap PID" waits for that child.
LAUNCHER = """
import os, sys
import bot.cli, bot.runtime, bot.client
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    if command == "spawn":
        pid = os.fork()
        if pid == 0:
            os.dup2(2, 1)  # the log, not the launcher's answers
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            code = 1
            try:
                bot.cli.main(["worker", "--heartbeat", arg])
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            finally:
                os._exit(code)
        print(pid, flush=True)
    elif command == "reap":
        print(os.waitpid(int(arg), 0)[1], flush=True)
"""


class Workers:
    """Starts `tianbao worker` processes and kills them with SIGKILL, as in a crash or an OOM kill."""

    def __init__(self, launcher: asyncio.subprocess.Process, var_dir: Path) -> None:
        self.launcher = launcher
        self.var_dir = var_dir
        self.pid: int | None = None

    async def _ask(self, line: str) -> int:
        assert self.launcher.stdin is not None and self.launcher.stdout is not None
        self.launcher.stdin.write(f"{line}\n".encode())
        await self.launcher.stdin.drain()
        answer = await asyncio.wait_for(self.launcher.stdout.readline(), START_SECONDS)
        if not answer:
            raise AssertionError(f"the worker launcher died:\n{self.log()}")
        return int(answer)

    async def start(self) -> None:
        self.pid = await self._ask(f"spawn {self.var_dir / 'worker.heartbeat'}")

    async def kill(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            await self._ask(f"reap {self.pid}")
            self.pid = None

    def log(self) -> str:
        return (self.var_dir / "worker.log").read_text(errors="replace")[-3000:]


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[uvicorn.Server]:
    """The backend API over HTTP on loopback (uvicorn, in this process: it has made the imports)."""
    app = create_app(
        settings.model_copy(
            update={"delivery_lease_seconds": LEASE_SECONDS, "gc_freeze_after_startup": False}
        )
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        assert not serving.done() and time.monotonic() < deadline, "the API did not start"
        await asyncio.sleep(0.05)
    try:
        yield server
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def workers(
    tmp_path: Path, api: uvicorn.Server, telegram: FakeTelegramServer
) -> AsyncIterator[Workers]:
    env = _environment(
        tmp_path,
        backend_url=f"http://127.0.0.1:{api.config.port}",
        bot_token=telegram.token,
        telegram_api_base=telegram.base_url,
        telegram_global_rate="10000/second",
        telegram_chat_rate="10000/second",
        delivery_poll_seconds="0.1",
    )
    with (tmp_path / "worker.log").open("ab") as log:
        launcher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LAUNCHER,
            env=env,
            cwd=tmp_path,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    running = Workers(launcher, tmp_path)
    try:
        yield running
    finally:
        await running.kill()
        await _kill(launcher)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    # Flood control off here and generous rates in the worker: the test is about crashes, not pacing.
    async with FakeTelegramServer(rate_limits=False) as server:
        yield server


async def _queue(db: Database, rng: random.Random) -> dict[str, int]:
    """MESSAGES texts to RECIPIENTS chats in random order (so a claimed batch holds several messages
    for some chats); returns each text's chat."""
    chats = [FIRST_CHAT + i for i in range(RECIPIENTS)]
    plan = [chats[n % RECIPIENTS] for n in range(MESSAGES)]
    rng.shuffle(plan)
    rows = [
        {
            "channel": "telegram",
            "address": str(chat),
            "text": f"通知 {n}",
            "dedupe_key": f"crash-{n}",
            "priority": int(Priority.NOTICE),
            "parse_mode": None,
        }
        for n, chat in enumerate(plan)
    ]
    async with db.session() as session:
        await service.enqueue_many(session=session, rows=rows)
        await session.commit()
    return {f"通知 {n}": chat for n, chat in enumerate(plan)}


async def _housekeeping(db: Database) -> None:
    """The scheduler's delivery-housekeeping job, run every 0.2 s instead of every 10 s."""
    while True:
        async with db.session() as session:
            await delivery_housekeeping(session=session)
        await asyncio.sleep(0.2)


async def _statuses(db: Database) -> dict[str, str]:
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage.text, OutboxMessage.status))).all()
    return {text: status for text, status in rows}


async def _settle(api: uvicorn.Server, telegram: FakeTelegramServer) -> None:
    """Let what the dead worker had already written be answered: a send it wrote whole reaches the fake,
    a report it wrote whole is applied (counting either as unrecorded would be wrong)."""
    await asyncio.sleep(0.3)
    deadline = time.monotonic() + START_SECONDS
    # Polling: requests of another process have no event to wait on.
    while api.server_state.tasks or any(call.status is None for call in telegram.calls):
        assert time.monotonic() < deadline, "requests of the dead worker still open"
        await asyncio.sleep(0.05)


def _received(telegram: FakeTelegramServer) -> Counter[str]:
    """How many times the fake Bot API accepted each text."""
    return Counter(telegram.sent_texts())


async def _wait_for_sends(telegram: FakeTelegramServer, count: int, workers: Workers) -> None:
    deadline = time.monotonic() + START_SECONDS
    while len(telegram.sent_messages()) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count} sends within {START_SECONDS} s:\n{workers.log()}")
        await asyncio.sleep(0.002)


async def test_a_worker_killed_again_and_again_loses_nothing_and_duplicates_within_the_bound(
    db: Database, api: uvicorn.Server, telegram: FakeTelegramServer, workers: Workers
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    chat_of = await _queue(db, rng)
    housekeeping = asyncio.create_task(_housekeeping(db))
    # Sends Telegram accepted that no kill has been charged with yet; a kill is charged with the ones it
    # left unrecorded (the backend does not hold them as sent, so they will be sent again).
    charged: Counter[str] = Counter()
    per_kill: list[int] = []
    try:
        for kill in range(KILLS):
            await workers.start()
            await _wait_for_sends(telegram, len(telegram.sent_messages()) + rng.randint(20, 120), workers)
            await asyncio.sleep(rng.uniform(0, 0.02))
            await workers.kill()
            await _settle(api, telegram)
            received, statuses = _received(telegram), await _statuses(db)
            unrecorded = +Counter(  # + drops the zeros
                {
                    text: n - charged[text]
                    for text, n in received.items()
                    if statuses[text] != OutboxStatus.SENT
                }
            )
            charged.update(unrecorded)
            per_chat = Counter(chat_of[text] for text in unrecorded.elements())
            per_kill.append(sum(per_chat.values()))
            where = f"kill {kill + 1} of {KILLS} (seed {seed})"
            assert all(n <= 1 for n in per_chat.values()), f"{where}: unrecorded per chat {per_chat}"
            assert per_kill[-1] <= MAX_PARALLEL_CHATS, f"{where}: {per_kill[-1]} unrecorded"

        await workers.start()
        deadline = time.monotonic() + DELIVERY_SECONDS
        while set((await _statuses(db)).values()) != {OutboxStatus.SENT}:
            assert time.monotonic() < deadline, f"{Counter((await _statuses(db)).values())}\n{workers.log()}"
            await asyncio.sleep(0.2)
    finally:
        housekeeping.cancel()
        await workers.kill()

    received = _received(telegram)
    assert set(received) == set(chat_of), "messages missing"
    duplicates = +Counter({text: n - 1 for text, n in received.items()})
    per_recipient = Counter(chat_of[text] for text in duplicates.elements())
    where = f"seed {seed}, unrecorded per kill {per_kill}, duplicates {sum(duplicates.values())}"
    print(where)  # shown with -s: what this run's kills left
    # Every duplicate is a send a kill left unrecorded: nothing else sends twice.
    assert not duplicates - charged, where
    assert max(per_recipient.values(), default=0) <= KILLS, where
    assert sum(per_recipient.values()) <= KILLS * MAX_PARALLEL_CHATS, where

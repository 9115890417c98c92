"""A restart of `tianbao serve` (embedded default, SQLite) loses nothing a web chat user saw or said
(issue 10, item 10): the transcript, its PDF, and a half-done enrollment are all there after a kill,
and the numbering goes on from where it was, so the page shows new messages below the old ones."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, SECRET_KEY, SERVICE_TOKEN
from tests.enroll_helpers import VALID_ID, walk_region
from tests.harness import ChatUser, Reply

PORT = 8108  # this suite's port (never 8000)
BASE_URL = f"http://127.0.0.1:{PORT}"
START_SECONDS = 240  # a start takes seconds, but a shared 2-core machine can make it a minute


class Server:
    """`tianbao serve --port 8108` in a subprocess, on a var directory that outlives it."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.log = var_dir / "serve.log"

    def command(self) -> list[str]:
        script = Path(sys.executable).with_name("tianbao")
        if script.exists():
            return [str(script), "serve", "--port", str(PORT)]
        return [sys.executable, "-m", "bot.cli", "serve", "--port", str(PORT)]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIANBAO_")}
        env.update(
            TIANBAO_VAR_DIR=str(self.var_dir),
            TIANBAO_ADMIN_PASSWORD=ADMIN_PASSWORD,
            TIANBAO_SERVICE_TOKEN=SERVICE_TOKEN,
            TIANBAO_SECRET_KEY=SECRET_KEY,
        )
        return env

    def spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            return subprocess.Popen(
                self.command(), env=self.environment(), cwd=self.var_dir, stdout=log, stderr=log
            )

    async def start(self) -> None:
        self.process = self.spawn()
        deadline = time.monotonic() + START_SECONDS
        async with httpx.AsyncClient(base_url=BASE_URL) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"tianbao serve did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: nothing gets to flush or shut down cleanly, as in a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path, template_db: Path) -> Iterator[Server]:
    shutil.copy(template_db, tmp_path / "tianbao.db")  # migrated and loaded: a start takes seconds
    running = Server(tmp_path)
    yield running
    running.kill()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=BASE_URL, timeout=60) as http:
        yield http


async def _enroll_to_the_quantity_question(user: ChatUser, phone: str) -> list[Reply]:
    await user.say("/start")
    await user.tap("我要投保")
    await user.tap("农户投保")
    await user.tap("水稻")
    await user.tap("普通农户")
    await user.say("李四")
    await user.say(VALID_ID)
    return await user.share_proved_contact(phone)


async def _paid_policy_pdf(user: ChatUser) -> Reply:
    await _enroll_to_the_quantity_question(user, "13812345678")
    await user.say("10")
    await walk_region(user, "广东省", "东莞市", "东城街道")
    await user.tap("跳过")  # no GPS
    await user.tap("农业银行")
    await user.say("6228480012345678901")
    await user.tap("继续")
    await user.tap("我已阅读并同意")
    await user.tap("我本人")
    await user.tap("确认提交")
    await user.tap("去缴费")
    for _ in range(300):  # the e-policy comes through the outbox and the embedded delivery worker
        documents = [m for m in await user.history() if m.document]
        if documents:
            return documents[0]
        await asyncio.sleep(0.1)
    raise AssertionError("the e-policy PDF never reached the chat")


async def test_a_killed_server_restarts_with_history_files_and_half_done_forms(
    server: Server, client: httpx.AsyncClient
) -> None:
    await server.start()
    insured = ChatUser(client, "restart-insured", first_name="李四")
    pdf = await _paid_policy_pdf(insured)
    halfway = ChatUser(client, "restart-halfway", first_name="李四")
    asked = await _enroll_to_the_quantity_question(halfway, "13912345678")
    assert "亩" in " ".join(r.text for r in asked)  # the question the farmer has not answered yet
    seen = {user.chat_id: await user.history() for user in (insured, halfway)}

    server.kill()
    await server.start()

    for user in (insured, halfway):
        assert await user.history() == seen[user.chat_id]  # every message, its buttons and edits
    document = await client.get((pdf.document or {})["url"])
    assert document.status_code == 200 and document.content.startswith(b"%PDF")
    replies = await halfway.say("10")  # the answer to the question asked before the restart
    assert "所在地" in replies[-1].text and "北京市" in replies[-1].button_texts()
    last_before = max(m.id for m in seen[halfway.chat_id])
    assert min(r.id for r in replies) > last_before

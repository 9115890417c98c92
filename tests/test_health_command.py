"""`tianbao health worker|scheduler`: the container health checks of the processes with no HTTP port
(docker-compose.yml). Green only while that process's own loop is alive and doing its work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from backend.settings import Settings
from bot import cli
from bot.client import BackendUnavailable
from bot.heartbeat import Heartbeat, check


def _health(kind: str, path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, ["health", kind, "--heartbeat", str(path), *extra])
    return result.exit_code, result.output


def test_a_fresh_heartbeat_is_healthy_and_a_stale_or_missing_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "worker.heartbeat"
    assert _health("worker", path)[0] == 1 and "no heartbeat" in _health("worker", path)[1]
    Heartbeat(path, clock=lambda: 1_000.0).beat()
    assert check(path, 60, now=1_030.0).healthy
    stale = check(path, 60, now=1_061.0)
    assert not stale.healthy and "61 s ago" in stale.detail
    assert _health("worker", path)[0] == 1  # written long ago (by the fake clock)
    Heartbeat(path).beat()
    code, output = _health("worker", path)
    assert code == 0 and "alive" in output
    path.write_text("garbage")
    assert _health("scheduler", path)[0] == 1


async def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_the_worker_beats_only_while_its_rounds_reach_the_backend(
    embedded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "worker.heartbeat"
    worker = embedded.state.bot_runtime.delivery_worker(worker_id="health-test")
    worker.poll_seconds = 0.02
    worker.on_round = Heartbeat(path).beat
    running = asyncio.create_task(worker.run_forever())
    try:
        await _until(path.exists)
        assert _health("worker", path)[0] == 0
        path.unlink()

        async def unreachable(**_kwargs: Any) -> list[Any]:
            raise BackendUnavailable("connection refused")

        monkeypatch.setattr(worker.backend, "claim_outbox", unreachable)
        await asyncio.sleep(0.2)  # several rounds, none of which reached the backend
        assert not path.exists() and _health("worker", path)[0] == 1
    finally:
        worker.stop()
        await running


async def test_the_scheduler_command_beats_while_running_and_clears_on_stop(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scheduler.heartbeat"
    stops: list[Callable[[], None]] = []
    monkeypatch.setattr(cli, "_stop_on_signals", stops.append)  # no signal handlers in a test
    running = asyncio.create_task(cli._run_scheduler(settings, Heartbeat(path)))
    await _until(path.exists)
    assert _health("scheduler", path)[0] == 0
    stops[0]()  # SIGTERM
    await running
    assert _health("scheduler", path)[0] == 1  # stopped on purpose: not alive any more

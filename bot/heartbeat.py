"""Heartbeat files: how a process with no HTTP port (the delivery worker, the scheduler) tells a
container health check that it is alive and doing its work (``tianbao health worker|scheduler``).

The API's /healthz says nothing about them: a worker whose loop died, or a scheduler that stopped,
left the old compose checks green. Each process writes the time to a file of its own when its loop
completes a round; the check reads how old that is.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KINDS = ("worker", "scheduler")
# A worker's round can take as long as its lease (a batch to rate-limited chats); the scheduler beats
# every 10 s. Older than this, the process is stuck or gone.
DEFAULT_MAX_AGE_SECONDS = {"worker": 120.0, "scheduler": 60.0}


def default_path(kind: str) -> Path:
    """Per container (each has its own /tmp): two workers must never share one file, or a live one
    would hide a dead one; the shared files volume is therefore the wrong place."""
    return Path(tempfile.gettempdir()) / f"tianbao-{kind}.heartbeat"


@dataclass
class Heartbeat:
    path: Path
    clock: Callable[[], float] = time.time

    def beat(self) -> None:
        """Write the time atomically: a check never reads half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        partial.write_text(f"{self.clock():.3f}\n", encoding="ascii")
        partial.replace(self.path)

    def clear(self) -> None:
        """A process that stops on purpose is not alive: the check must not see an old beat as fresh."""
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    detail: str


def check(path: Path, max_age_seconds: float, *, now: float | None = None) -> HealthReport:
    try:
        beaten_at = float(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return HealthReport(False, f"no heartbeat at {path}: not started, or stopped")
    except ValueError:
        return HealthReport(False, f"unreadable heartbeat at {path}")
    age = (time.time() if now is None else now) - beaten_at
    if age > max_age_seconds:
        return HealthReport(False, f"last heartbeat {age:.0f} s ago (limit {max_age_seconds:.0f} s)")
    return HealthReport(True, f"alive: last heartbeat {max(age, 0):.1f} s ago")


async def beat_while(alive: Callable[[], bool], heartbeat: Heartbeat, every_seconds: float) -> None:
    """Beat every ``every_seconds`` for as long as ``alive()`` says so (run as a task; cancel it)."""
    while True:
        if alive():
            heartbeat.beat()
        await asyncio.sleep(every_seconds)

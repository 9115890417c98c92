"""The log provider, the embedded default: nothing leaves the machine.

Each text is written to the log, kept in a bounded in-memory ring (newest last) and appended to a JSON-lines
file (``<log_dir>/sms.log.jsonl``), so a local page for staff can show every text, one-time codes included,
even from another process. Every number is reported ``sent`` with a local serial id (``log:...``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.outbox.schemas import Outcome
from bot.channels.sms.provider import SmsBatch, SmsResult, mask_phone

log = logging.getLogger(__name__)

FILE_NAME = "sms.log.jsonl"
SERIAL_PREFIX = "log:"


@dataclass(frozen=True, slots=True)
class LoggedSms:
    at: str  # ISO 8601, UTC
    serial_id: str
    phone: str
    template_id: str
    sign_name: str
    params: list[str]
    text: str | None
    session_context: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoggedSms:
        return cls(
            at=str(data["at"]),
            serial_id=str(data["serial_id"]),
            phone=str(data["phone"]),
            template_id=str(data["template_id"]),
            sign_name=str(data.get("sign_name", "")),
            params=[str(p) for p in data.get("params", [])],
            text=None if data.get("text") is None else str(data["text"]),
            session_context=str(data.get("session_context", "")),
        )


class LogSmsProvider:
    def __init__(
        self,
        *,
        directory: Path | str = Path("./var"),
        ring_size: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(directory) / FILE_NAME
        self._ring: deque[LoggedSms] = deque(maxlen=ring_size)
        self._clock = clock
        # Appends go through one thread at a time, so lines of concurrent batches never interleave.
        self._write_lock = asyncio.Lock()

    async def send(self, batch: SmsBatch) -> list[SmsResult]:
        at = datetime.fromtimestamp(self._clock(), UTC).isoformat()
        entries = [
            LoggedSms(
                at=at,
                serial_id=f"{SERIAL_PREFIX}{uuid.uuid4().hex}",
                phone=phone,
                template_id=batch.template_id,
                sign_name=batch.sign_name,
                params=list(batch.params),
                text=batch.text,
                session_context=batch.session_context,
            )
            for phone in batch.phones
        ]
        lines = "".join(json.dumps(asdict(entry), ensure_ascii=False) + "\n" for entry in entries)
        async with self._write_lock:
            await asyncio.to_thread(self._append, lines)
        self._ring.extend(entries)
        for entry in entries:
            # The text itself goes to the log: in the embedded default this is how a newcomer reads a code.
            log.info(
                "sms (log provider) to %s, template %s %s: %s",
                mask_phone(entry.phone),
                entry.template_id,
                entry.params,
                entry.text if entry.text is not None else "-",
            )
        return [
            SmsResult(phone=entry.phone, outcome=Outcome.SENT, serial_id=entry.serial_id, code="Ok", fee=0)
            for entry in entries
        ]

    def _append(self, lines: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(lines)

    def recent(self, limit: int | None = None) -> list[LoggedSms]:
        """Texts sent by this process, oldest first, at most ``limit`` (the newest)."""
        items = list(self._ring)
        return items if limit is None else items[-limit:] if limit > 0 else []

    async def aclose(self) -> None:
        return None


def read_log(path: Path | str, limit: int = 200) -> list[LoggedSms]:
    """The newest ``limit`` texts of a log file, oldest first; a line that does not parse is skipped (a
    process killed mid-write leaves half a line)."""
    file = Path(path)
    if not file.exists():
        return []
    tail: deque[LoggedSms] = deque(maxlen=max(limit, 0))
    with file.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                tail.append(LoggedSms.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue
    return list(tail)

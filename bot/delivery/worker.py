"""The delivery worker: claim due outbox messages through the API, send them, report each outcome.

Embedded it runs inside ``tianbao serve``; ``tianbao worker`` runs it alone, several copies at once.
Messages to one chat go in order, one at a time; different chats go in parallel within the rate limits.
A chat's next message is sent only once the backend has acknowledged the last one's result (one reporter
batches the results of all chats), so a worker killed at any point leaves at most one sent-but-unrecorded
message per chat in flight, at most ``MAX_PARALLEL_CHATS`` in all: the duplicates its leases' expiry can
cause (tests/bot/test_delivery_crash.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from backend.outbox.schemas import DeliveryResult, OutboxItem, Outcome
from bot.client import BackendClient, BackendError, BackendUnavailable
from bot.delivery.ratelimit import OUTBOX_SEND, Lane, RateGate, lane_of

log = logging.getLogger(__name__)

# A send this close to the lease's end is left for the next claimant rather than risking a double send.
LEASE_SAFETY = timedelta(seconds=5)
# A flood-wait this short is waited out in place; a longer one sends the message back to the queue.
INLINE_RETRY_LIMIT = 5.0
# Recipients a worker sends to at once: also the most messages a crash of the worker can leave sent but
# unrecorded (one per chat in flight), so the most it can duplicate.
MAX_PARALLEL_CHATS = 30
# A report the backend could not take is tried again this many times in all, after 0.5 s, 1 s, ...
# On stop, how long the sends in flight may take to finish before they are cancelled.
DRAIN_SECONDS = 10.0
REPORT_ATTEMPTS = 3
REPORT_RETRY_SECONDS = 0.5


class Sender(Protocol):
    async def __call__(self, item: OutboxItem) -> DeliveryResult: ...


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def inline_markup(buttons: list[list[dict[str, str]]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    rows = [
        [
            InlineKeyboardButton(text=b["text"], url=b["url"])
            if b.get("url")
            else InlineKeyboardButton(text=b["text"], callback_data=b.get("callback_data", "-"))
            for b in row
        ]
        for row in buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


class BotSender:
    """Sends an outbox item through one aiogram Bot (Telegram, or the web chat session)."""

    def __init__(self, bot: Bot, backend: BackendClient, gate: RateGate | None) -> None:
        self.bot = bot
        self.backend = backend
        self.gate = gate

    async def __call__(self, item: OutboxItem) -> DeliveryResult:
        lane = lane_of(item.priority)
        # No longer than the lease allows: a slot that comes after it would send a message another worker
        # (or this one, claiming again) may be sending too.
        wait = 120.0 if item.claimed_until is None else _lease_left(item) - LEASE_SAFETY.total_seconds()
        if self.gate is not None and not await self.gate.acquire(
            item.address, lane=lane, timeout=max(wait, 0)
        ):
            return DeliveryResult(id=item.id, outcome=Outcome.RETRY, error="rate limit slot not available")
        outbox_send = OUTBOX_SEND.set(True)  # this send took its slot above: the reply lane leaves it alone
        try:
            return await self._send_with_flood_wait(item)
        except TelegramForbiddenError as exc:
            return DeliveryResult(id=item.id, outcome=Outcome.STOPPED, error=exc.message[:500])
        except (TelegramBadRequest, TelegramNotFound) as exc:
            return DeliveryResult(id=item.id, outcome=Outcome.FAILED, error=exc.message[:500])
        except TelegramRetryAfter as exc:
            if self.gate is not None:
                self.gate.pause(exc.retry_after, lane)
            return DeliveryResult(
                id=item.id, outcome=Outcome.RETRY, error=exc.message[:500], retry_after=exc.retry_after
            )
        except (TelegramNetworkError, TelegramServerError, BackendUnavailable, OSError) as exc:
            return DeliveryResult(id=item.id, outcome=Outcome.RETRY, error=str(exc)[:500])
        finally:
            OUTBOX_SEND.reset(outbox_send)

    async def _send_with_flood_wait(self, item: OutboxItem) -> DeliveryResult:
        try:
            return await self._send(item)
        except TelegramRetryAfter as exc:
            if exc.retry_after > INLINE_RETRY_LIMIT:
                raise
            if self.gate is not None:
                self.gate.pause(exc.retry_after, lane_of(item.priority))
            await asyncio.sleep(exc.retry_after)
            return await self._send(item)

    async def _send(self, item: OutboxItem) -> DeliveryResult:
        markup = inline_markup(item.buttons)
        attachment = item.attachments[0] if item.attachments else None
        # Paid broadcast (1,000/s, charged per message) only for fan-outs, and only when configured.
        paid = (
            True
            if self.gate is not None and self.gate.paid_bulk and lane_of(item.priority) is Lane.BULK
            else None
        )
        if attachment is None:
            sent = await self.bot.send_message(
                chat_id=_chat_id(item.address),
                text=item.text,
                parse_mode=item.parse_mode,
                reply_markup=markup,
                allow_paid_broadcast=paid,
            )
        else:
            data = await self._fetch(attachment["url"])
            file = BufferedInputFile(data, filename=attachment.get("name", "file"))
            if attachment.get("kind") == "photo":
                sent = await self.bot.send_photo(
                    _chat_id(item.address),
                    file,
                    caption=item.text or None,
                    parse_mode=item.parse_mode,
                    reply_markup=markup,
                    allow_paid_broadcast=paid,
                )
            else:
                sent = await self.bot.send_document(
                    _chat_id(item.address),
                    file,
                    caption=item.text or None,
                    parse_mode=item.parse_mode,
                    reply_markup=markup,
                    allow_paid_broadcast=paid,
                )
        return DeliveryResult(id=item.id, outcome=Outcome.SENT, external_message_id=str(sent.message_id))

    async def _fetch(self, url: str) -> bytes:
        try:
            return await self.backend.download(url)
        except BackendError as exc:
            raise BackendUnavailable(f"attachment {url}: {exc.status}") from exc


def _chat_id(address: str) -> int | str:
    return int(address) if address.lstrip("-").isdigit() else address


class DeliveryWorker:
    def __init__(
        self,
        backend: BackendClient,
        senders: dict[str, Sender],
        *,
        worker_id: str | None = None,
        batch_size: int = 50,
        poll_seconds: float = 0.5,
        max_parallel_chats: int = MAX_PARALLEL_CHATS,
        report_retry_seconds: float = REPORT_RETRY_SECONDS,
    ) -> None:
        self.backend = backend
        self.senders = senders
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.max_parallel_chats = max_parallel_chats
        self._parallel = asyncio.Semaphore(max_parallel_chats)
        self.report_retry_seconds = report_retry_seconds
        self._stopping = asyncio.Event()
        # Called after every round that reached the backend (a container health check's heartbeat).
        self.on_round: Callable[[], None] | None = None

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run_forever(self) -> None:
        """Deliver until stopped, claiming more while chats are in flight: a slow chat or a flood-wait
        holds up only its own recipient, never the batch it came in (``_Pipeline``)."""
        log.info("delivery worker %s started for %s", self.worker_id, sorted(self.senders))
        async with Reporter(
            self.backend, self.worker_id, retry_seconds=self.report_retry_seconds
        ) as reporter:
            pipeline = _Pipeline(self, reporter)
            try:
                while not self._stopping.is_set():
                    try:
                        claimed = await pipeline.refill()
                        if self.on_round is not None:
                            self.on_round()
                    except BackendUnavailable as exc:
                        log.warning("delivery: backend unavailable: %s", exc)
                        claimed = 0
                    except Exception:
                        log.exception("delivery claim failed")
                        claimed = 0
                    await pipeline.wait(idle=not claimed, stopping=self._stopping, seconds=self.poll_seconds)
            finally:
                # Stopped or cancelled: the chats end while the reporter still records their results.
                self._stopping.set()
                await asyncio.shield(pipeline.drain())

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many messages were claimed."""
        items = await self.backend.claim_outbox(
            worker_id=self.worker_id, limit=self.batch_size, channels=sorted(self.senders)
        )
        if not items:
            return 0
        async with Reporter(
            self.backend, self.worker_id, retry_seconds=self.report_retry_seconds
        ) as reporter:
            outcomes = await asyncio.gather(
                *(self._deliver_chat(chat_items, reporter) for chat_items in _by_recipient(items).values()),
                return_exceptions=True,  # every chat ends its own way; none is cut off mid-send
            )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return len(items)

    async def _deliver_chat(self, items: list[OutboxItem], reporter: Reporter) -> None:
        """One recipient's messages, in order. Each result is recorded before the next send, so a crash
        leaves at most this chat's one message in flight unrecorded (sent again when its lease expires)."""
        async with self._parallel:
            for index, item in enumerate(items):
                if _lease_too_short(item):
                    return  # leave the rest: the lease runs out and the scheduler hands them on
                result = await self.senders[item.channel](item)
                if result.outcome is Outcome.STOPPED:
                    rest = [
                        DeliveryResult(
                            id=other.id, outcome=Outcome.STOPPED, error="recipient stopped the bot"
                        )
                        for other in items[index + 1 :]
                    ]
                    await reporter.record([result, *rest])
                    return
                await reporter.record([result])  # raises if the backend did not take it: stop here


class _Pipeline:
    """The claimed messages of a running worker: chats in flight (each its own task, its messages in
    order, one at a time, each result acknowledged before the next send) and chats waiting for a slot.
    At most ``max_parallel_chats`` chats are in flight, so a crash still leaves at most that many sends
    unrecorded, one per chat. It claims again once the waiting messages fall below half a batch."""

    def __init__(self, worker: DeliveryWorker, reporter: Reporter) -> None:
        self.worker = worker
        self.reporter = reporter
        self.waiting: OrderedDict[tuple[str, str], list[OutboxItem]] = OrderedDict()
        self.active: dict[tuple[str, str], list[OutboxItem]] = {}
        self.held: dict[int, OutboxItem] = {}  # every claimed message not yet sent or given back, by id
        self.tasks: set[asyncio.Task[None]] = set()
        self.freed = asyncio.Event()

    def _queued(self) -> int:
        return sum(len(items) for items in self.waiting.values())

    async def refill(self) -> int:
        """Claim when the waiting messages run low, then start every chat a slot allows."""
        claimed = 0
        # At most one round of chats waits claimed: a deeper queue would outlast short leases (its tail
        # claimed again and again, never sent).
        depth = min(self.worker.batch_size, self.worker.max_parallel_chats)
        room = depth - self._queued()
        if room >= max(depth // 2, 1):
            items = await self.worker.backend.claim_outbox(
                worker_id=self.worker.worker_id, limit=room, channels=sorted(self.worker.senders)
            )
            claimed = len(items)
            self._hold(items)
        self._start_chats()
        return claimed

    def _hold(self, items: list[OutboxItem]) -> None:
        fresh = []
        for item in items:
            known = self.held.get(item.id)
            if known is not None:  # its lease ran out while it waited here, and came back to us: one copy
                known.claimed_until = item.claimed_until
                continue
            self.held[item.id] = item
            fresh.append(item)
        for key, chat_items in _by_recipient(fresh).items():
            if key in self.active:  # its task takes them after the one in flight
                self.active[key].extend(chat_items)
            else:
                self.waiting.setdefault(key, []).extend(chat_items)

    def _start_chats(self) -> None:
        while self.waiting and len(self.active) < self.worker.max_parallel_chats:
            key, items = self.waiting.popitem(last=False)
            self.active[key] = items
            task = asyncio.create_task(self._chat(key))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _chat(self, key: tuple[str, str]) -> None:
        items = self.active[key]
        try:
            while items and not self.worker.stopping:
                item = items.pop(0)
                if _lease_too_short(item):
                    items.insert(0, item)
                    return  # leave the rest: the lease runs out and the scheduler hands them on
                result = await self.worker.senders[item.channel](item)
                if result.outcome is Outcome.STOPPED:
                    rest = [_stopped(other) for other in items]
                    items.clear()
                    await self._record([result, *rest])
                    return
                await self._record([result])
            if items:  # stopping: give the rest back now rather than at the end of their leases
                back, items[:] = list(items), []
                await self._record([_given_back(other) for other in back])
        except Exception:  # the backend did not take a result: this chat's leases run out and come back
            log.exception("delivery to %s stopped", key[0])
        finally:
            for left in items:
                self.held.pop(left.id, None)
            del self.active[key]
            self.freed.set()

    async def _record(self, results: list[DeliveryResult]) -> None:
        await self.reporter.record(results)
        for result in results:
            self.held.pop(result.id, None)

    async def wait(self, *, idle: bool, stopping: asyncio.Event, seconds: float) -> None:
        """Start waiting chats at once while slots are free; otherwise wait for a slot to free (a chat
        ended), and while any slot is free claim again after ``seconds`` at the latest (a message for a
        new chat may have come). An empty outbox is polled, not claimed again for every chat that ends."""
        full = len(self.active) >= self.worker.max_parallel_chats
        if self.waiting and not full:
            return
        self.freed.clear()
        waiters = [asyncio.ensure_future(stopping.wait())]
        # Every slot taken: only a chat ending changes anything (waiting for nothing else would hang).
        if self.active and (full or self.waiting or not idle):
            waiters.append(asyncio.ensure_future(self.freed.wait()))
        timeout = None if full else seconds
        _done, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()

    async def drain(self, seconds: float = DRAIN_SECONDS) -> None:
        """On stop: the sends in flight finish and are recorded, the messages not begun are given back;
        a send still waiting for its slot after ``seconds`` is cancelled (its lease brings it back)."""
        if not self.tasks:
            return
        _done, pending = await asyncio.wait(set(self.tasks), timeout=seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _given_back(item: OutboxItem) -> DeliveryResult:
    return DeliveryResult(id=item.id, outcome=Outcome.RETRY, error="worker stopping", retry_after=0)


def _stopped(item: OutboxItem) -> DeliveryResult:
    return DeliveryResult(id=item.id, outcome=Outcome.STOPPED, error="recipient stopped the bot")


class Reporter:
    """Records results for every chat of a batch, one ``report_outbox`` call at a time (group commit):
    results that arrive while a call is out go together in the next one, so a batch of 30 chats costs
    a few calls per round of sends, not 30. ``record`` returns once the backend acknowledged."""

    def __init__(
        self,
        backend: BackendClient,
        worker_id: str,
        *,
        attempts: int = REPORT_ATTEMPTS,
        retry_seconds: float = REPORT_RETRY_SECONDS,
    ) -> None:
        self.backend = backend
        self.worker_id = worker_id
        self.attempts = attempts
        self.retry_seconds = retry_seconds
        self._pending: list[tuple[list[DeliveryResult], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reporter:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, waiter in self._pending:  # nobody waits for these any more (the chats have ended)
            waiter.cancel()

    async def record(self, results: list[DeliveryResult]) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((results, waiter))
        self._wake.set()
        await waiter

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await self._report([result for results, _ in batch for result in results])
            except Exception as exc:
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(exc)
            else:
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_result(None)

    async def _report(self, results: list[DeliveryResult]) -> None:
        """A blip of the backend is retried: reporting twice is harmless (only held leases are applied)
        and every send of these chats waits for it."""
        for attempt in range(1, self.attempts + 1):
            try:
                await self.backend.report_outbox(worker_id=self.worker_id, results=results)
                return
            except BackendUnavailable:
                if attempt == self.attempts:
                    raise
                log.warning("delivery: report failed (attempt %d), retrying", attempt)
                await asyncio.sleep(self.retry_seconds * attempt)


def _by_recipient(items: list[OutboxItem]) -> OrderedDict[tuple[str, str], list[OutboxItem]]:
    groups: OrderedDict[tuple[str, str], list[OutboxItem]] = OrderedDict()
    for item in items:
        groups.setdefault((item.channel, item.address), []).append(item)
    return groups


def _lease_left(item: OutboxItem) -> float:
    assert item.claimed_until is not None
    until = item.claimed_until if item.claimed_until.tzinfo else item.claimed_until.replace(tzinfo=UTC)
    return (until - datetime.now(UTC)).total_seconds()


def _lease_too_short(item: OutboxItem) -> bool:
    if item.claimed_until is None:
        return False
    until = item.claimed_until if item.claimed_until.tzinfo else item.claimed_until.replace(tzinfo=UTC)
    return datetime.now(UTC) + LEASE_SAFETY > until

"""Delivery through the real worker into web chat: pushed notifications reach the browser."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlmodel import select

from backend.db import Database
from backend.outbox import service
from backend.outbox.models import OutboxMessage, OutboxStatus, Priority
from backend.outbox.schemas import DeliveryResult, OutboxItem, Outcome
from backend.people.models import ChatIdentity
from backend.people.service import mark_stopped
from bot.delivery.worker import DeliveryWorker
from bot.transport import BackendUnavailable
from tests.harness import ChatUser


async def _identity(db: Database, external_id: str) -> ChatIdentity:
    async with db.session() as session:
        query = select(ChatIdentity).where(ChatIdentity.external_id == external_id)
        return (await session.exec(query)).one()


async def test_pushed_notification_appears_in_web_chat_history(
    embedded, db: Database, farmer: ChatUser
) -> None:
    welcome = (await farmer.say("/start"))[0]
    identity = await _identity(db, farmer.chat_id)
    async with db.session() as session:
        await service.enqueue_for_identity(
            session=session,
            identity=identity,
            text="<b>您的保单已生效</b>",
            dedupe_key="policy-7-issued",
            priority=Priority.REPLY,
            buttons=[[{"text": "查看", "callback_data": "m:help"}]],
        )
        await session.commit()
    worker = embedded.state.bot_runtime.delivery_worker(worker_id="test-worker")
    assert await worker.run_once() == 1
    pushed = await farmer.history(after=welcome.id)
    assert [m.text for m in pushed] == ["<b>您的保单已生效</b>"]
    assert pushed[0].buttons == [[{"text": "查看", "callback_data": "m:help"}]]
    async with db.session() as session:
        row = (await session.exec(select(OutboxMessage))).one()
    assert row.status == OutboxStatus.SENT and row.external_message_id == str(pushed[0].id)
    # Tapping the pushed button works like any other button.
    replies = await farmer.tap("查看", pushed)
    assert "使用帮助" in replies[0].text


async def test_stopped_user_comes_back_on_start(embedded, db: Database, farmer: ChatUser) -> None:
    await farmer.say("/start")
    async with db.session() as session:
        await mark_stopped(
            session=session, directory=embedded.state.identities, channel="webchat", address=farmer.chat_id
        )
        await session.commit()
    assert (await _identity(db, farmer.chat_id)).stopped_at is not None
    await farmer.say("/start")
    assert (await _identity(db, farmer.chat_id)).stopped_at is None


async def test_worker_with_nothing_due_claims_nothing(embedded) -> None:
    worker = embedded.state.bot_runtime.delivery_worker(worker_id="idle")
    assert await worker.run_once() == 0


# The worker's loop on its own (a scripted backend and sender): what it sends when, and what it reports.


def _item(item_id: int, address: str, *, lease_seconds: float = 60) -> OutboxItem:
    return OutboxItem(
        id=item_id,
        channel="telegram",
        address=address,
        text=f"m{item_id}",
        parse_mode=None,
        buttons=[],
        attachments=[],
        priority=int(Priority.NOTICE),
        attempts=1,
        claimed_until=datetime.now(UTC) + timedelta(seconds=lease_seconds),
    )


class ScriptedBackend:
    """Hands out one batch, then nothing; logs every report and what happened when."""

    def __init__(self, items: list[OutboxItem], *, failures: int = 0) -> None:
        self.items = items
        self.failures = failures  # this many report calls fail first (the backend is away)
        self.reports: list[list[DeliveryResult]] = []
        self.events: list[tuple[str, int]] = []  # ("send" | "acked", message id)

    async def claim_outbox(self, *, worker_id: str, limit: int, channels: list[str]) -> list[OutboxItem]:
        batch, self.items = self.items, []
        return batch

    async def report_outbox(self, *, worker_id: str, results: list[DeliveryResult]) -> int:
        await asyncio.sleep(0.01)  # a round trip: sends that finish meanwhile wait for the next call
        if self.failures:
            self.failures -= 1
            raise BackendUnavailable("503 from /api/outbox/results")
        self.reports.append(results)
        self.events.extend(("acked", r.id) for r in results)
        return len(results)


class ScriptedSender:
    def __init__(self, backend: ScriptedBackend, outcomes: dict[int, Outcome] | None = None) -> None:
        self.backend = backend
        self.outcomes = outcomes or {}

    async def __call__(self, item: OutboxItem) -> DeliveryResult:
        self.backend.events.append(("send", item.id))
        return DeliveryResult(id=item.id, outcome=self.outcomes.get(item.id, Outcome.SENT))


def _worker(backend: ScriptedBackend, sender: ScriptedSender) -> DeliveryWorker:
    return DeliveryWorker(
        backend,  # type: ignore[arg-type]
        {"telegram": sender},
        worker_id="scripted",
        report_retry_seconds=0.01,
    )


async def test_each_result_is_acknowledged_before_the_next_send_to_that_chat() -> None:
    """What a crash can duplicate is what was sent and not yet recorded: one message per chat at most."""
    chats = [str(7_000 + c) for c in range(10)]
    items = [_item(i * 10 + c + 1, chat) for i in range(3) for c, chat in enumerate(chats)]
    backend = ScriptedBackend(items)
    assert await _worker(backend, ScriptedSender(backend)).run_once() == 30
    for chat in chats:
        ids = [item.id for item in items if item.address == chat]
        for earlier, later in pairwise(ids):
            assert backend.events.index(("acked", earlier)) < backend.events.index(("send", later))
    # One call per round of sends for all ten chats, not one per message.
    assert [len(results) for results in backend.reports] == [10, 10, 10]


async def test_a_stopped_recipient_stops_the_rest_of_its_messages() -> None:
    items = [_item(1, "7001"), _item(2, "7002"), _item(3, "7001"), _item(4, "7001"), _item(5, "7002")]
    backend = ScriptedBackend(items)
    await _worker(backend, ScriptedSender(backend, {1: Outcome.STOPPED})).run_once()
    assert sorted(i for kind, i in backend.events if kind == "send") == [1, 2, 5]
    outcomes = {r.id: r.outcome for results in backend.reports for r in results}
    assert outcomes == {
        1: Outcome.STOPPED,
        3: Outcome.STOPPED,
        4: Outcome.STOPPED,
        2: Outcome.SENT,
        5: Outcome.SENT,
    }


async def test_a_backend_blip_is_retried_and_delivery_goes_on() -> None:
    items = [_item(1, "7001"), _item(2, "7001")]
    backend = ScriptedBackend(items, failures=1)
    assert await _worker(backend, ScriptedSender(backend)).run_once() == 2
    assert [kind for kind, _ in backend.events] == ["send", "acked", "send", "acked"]


async def test_a_result_the_backend_never_takes_stops_that_chat() -> None:
    """Sending on would pile up sent-but-unrecorded messages, each one a duplicate when the lease ends."""
    items = [_item(1, "7001"), _item(2, "7001"), _item(3, "7002")]
    backend = ScriptedBackend(items, failures=100)
    with pytest.raises(BackendUnavailable):
        await _worker(backend, ScriptedSender(backend)).run_once()
    assert sorted(i for kind, i in backend.events if kind == "send") == [1, 3]
    assert backend.reports == []


async def test_a_message_whose_lease_is_nearly_over_is_left_for_the_next_claimant() -> None:
    items = [_item(1, "7001"), _item(2, "7001", lease_seconds=1), _item(3, "7001")]
    backend = ScriptedBackend(items)
    await _worker(backend, ScriptedSender(backend)).run_once()
    assert backend.events == [("send", 1), ("acked", 1)]


# --- the running worker: chats in flight while more are claimed --------------------------------------------


class SlowChatSender(ScriptedSender):
    """One chat's send hangs (a slow network, a long flood-wait); the others are instant."""

    def __init__(self, backend: ScriptedBackend, slow: str, release: asyncio.Event) -> None:
        super().__init__(backend)
        self.slow = slow
        self.release = release

    async def __call__(self, item: OutboxItem) -> DeliveryResult:
        if item.address == self.slow:
            await self.release.wait()
        return await super().__call__(item)


class RefillingBackend(ScriptedBackend):
    """Hands out the messages a claim at a time, ``limit`` at most, as the outbox does."""

    async def claim_outbox(self, *, worker_id: str, limit: int, channels: list[str]) -> list[OutboxItem]:
        batch, self.items = self.items[:limit], self.items[limit:]
        return batch


async def test_a_slow_chat_holds_up_only_itself_while_the_worker_claims_and_sends_the_rest() -> None:
    items = [_item(1, "7000")] + [_item(n + 2, str(7001 + n)) for n in range(120)]
    backend = RefillingBackend(items)
    release = asyncio.Event()
    worker = DeliveryWorker(
        backend,  # type: ignore[arg-type]
        {"telegram": SlowChatSender(backend, "7000", release)},
        worker_id="pipelined",
        batch_size=20,
        poll_seconds=0.05,
        max_parallel_chats=5,
    )
    running = asyncio.create_task(worker.run_forever())
    for _ in range(200):  # the other 120 chats go out, claims after the first batch included
        if sum(1 for kind, _ in backend.events if kind == "acked") >= 120:
            break
        await asyncio.sleep(0.02)
    acked = {i for kind, i in backend.events if kind == "acked"}
    assert acked == set(range(2, 122)) and 1 not in acked
    release.set()
    for _ in range(100):
        if ("acked", 1) in backend.events:
            break
        await asyncio.sleep(0.02)
    worker.stop()
    await running
    assert ("acked", 1) in backend.events


async def test_the_running_worker_sends_one_message_per_chat_at_a_time_and_at_most_its_parallel_chats() -> (
    None
):
    """The crash bound holds for the pipelined worker: one unrecorded send per chat, ``max`` in all."""
    items = [_item(i * 40 + c + 1, str(7100 + c)) for i in range(3) for c in range(40)]
    backend = RefillingBackend(items)
    in_flight: set[str] = set()
    worst = 0

    class CountingSender(ScriptedSender):
        async def __call__(self, item: OutboxItem) -> DeliveryResult:
            nonlocal worst
            assert item.address not in in_flight  # never two sends of one chat at once
            in_flight.add(item.address)
            worst = max(worst, len(in_flight))
            await asyncio.sleep(0.005)
            in_flight.discard(item.address)
            return await super().__call__(item)

    worker = DeliveryWorker(
        backend,  # type: ignore[arg-type]
        {"telegram": CountingSender(backend)},
        worker_id="bounded",
        batch_size=50,
        poll_seconds=0.05,
        max_parallel_chats=8,
    )
    running = asyncio.create_task(worker.run_forever())
    for _ in range(300):
        if sum(1 for kind, _ in backend.events if kind == "acked") >= len(items):
            break
        await asyncio.sleep(0.02)
    worker.stop()
    await running
    assert sorted(i for kind, i in backend.events if kind == "acked") == [
        item.id for item in sorted(items, key=lambda i: i.id)
    ]
    assert 1 < worst <= 8
    for chat in {item.address for item in items}:
        ids = [item.id for item in items if item.address == chat]
        for earlier, later in pairwise(ids):
            assert backend.events.index(("acked", earlier)) < backend.events.index(("send", later))


class PacedSender(ScriptedSender):
    """Every send takes ``seconds`` (a chat at Telegram's 1/s, say)."""

    def __init__(self, backend: ScriptedBackend, seconds: float) -> None:
        super().__init__(backend)
        self.seconds = seconds

    async def __call__(self, item: OutboxItem) -> DeliveryResult:
        await asyncio.sleep(self.seconds)
        return await super().__call__(item)


def _pipelined(backend: ScriptedBackend, sender: ScriptedSender, **options: Any) -> DeliveryWorker:
    return DeliveryWorker(
        backend,  # type: ignore[arg-type]
        {"telegram": sender},
        worker_id="pipelined",
        poll_seconds=0.05,
        report_retry_seconds=0.01,
        **options,
    )


async def _until(condition: Callable[[], bool], seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_a_message_for_a_new_chat_is_claimed_while_one_busy_chat_sends_its_many() -> None:
    backend = RefillingBackend([_item(n, "7000") for n in range(1, 6)])
    worker = _pipelined(backend, PacedSender(backend, 0.2))
    running = asyncio.create_task(worker.run_forever())
    await asyncio.sleep(0.1)
    backend.items.append(_item(99, "7999"))  # arrives while 7000's five take a second
    await _until(lambda: ("acked", 99) in backend.events)
    assert ("send", 5) not in backend.events[: backend.events.index(("acked", 99))]  # not after all five
    worker.stop()
    await running


async def test_a_message_claimed_again_after_its_lease_ran_out_here_is_sent_once() -> None:
    first = _item(1, "7000")
    backend = RefillingBackend([first, _item(2, "7000"), _item(3, "7000")])
    worker = _pipelined(backend, PacedSender(backend, 0.15))
    running = asyncio.create_task(worker.run_forever())
    await asyncio.sleep(0.05)
    backend.items.append(_item(3, "7000"))  # message 3's lease expired while it waited: claimed again
    await _until(lambda: ("acked", 3) in backend.events)
    await asyncio.sleep(0.3)
    worker.stop()
    await running
    assert [i for kind, i in backend.events if kind == "send"] == [1, 2, 3]


async def test_on_stop_the_send_in_flight_is_recorded_and_the_rest_given_back_at_once() -> None:
    backend = RefillingBackend([_item(n, "7000") for n in range(1, 5)])
    worker = _pipelined(backend, PacedSender(backend, 0.2))
    running = asyncio.create_task(worker.run_forever())
    await asyncio.sleep(0.1)  # message 1 is being sent
    running.cancel()  # the embedded server's shutdown cancels the worker task
    with contextlib.suppress(asyncio.CancelledError):
        await running
    outcomes = {r.id: (r.outcome, r.retry_after) for results in backend.reports for r in results}
    assert outcomes[1] == (Outcome.SENT, None)  # sent, and recorded: no duplicate after a restart
    assert {outcomes[n] for n in (2, 3, 4)} == {(Outcome.RETRY, 0)}  # back in the queue, not after 60 s


async def test_with_every_slot_taken_and_the_outbox_empty_the_worker_goes_on_when_a_chat_ends() -> None:
    """A claim that finds nothing while every slot is busy must still wake when one frees (it hung: a
    dead worker's messages, due again when its leases ran out, were never claimed)."""
    backend = RefillingBackend([_item(n, str(7200 + n)) for n in range(1, 4)])
    released = {str(7200 + n): asyncio.Event() for n in range(1, 5)}

    class HeldSender(ScriptedSender):
        async def __call__(self, item: OutboxItem) -> DeliveryResult:
            await released[item.address].wait()
            return await super().__call__(item)

    worker = _pipelined(backend, HeldSender(backend), max_parallel_chats=2, batch_size=4)
    running = asyncio.create_task(worker.run_forever())
    await asyncio.sleep(0.2)  # chats 1 and 2 in flight, 3 waiting
    released["7201"].set()  # 1 ends: 3 takes its slot, the claim then finds nothing, every slot busy
    await asyncio.sleep(0.3)
    backend.items.append(_item(4, "7204"))  # a dead worker's lease runs out: its message is due again
    for event in released.values():
        event.set()
    await _until(lambda: ("acked", 4) in backend.events)
    worker.stop()
    await running

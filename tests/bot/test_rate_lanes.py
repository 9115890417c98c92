"""Telegram's budget shared by two lanes (bot/delivery/ratelimit.py): a fan-out never holds up a person's
own conversation, a flood-wait on bulk does not pause replies, and paid broadcast is a budget of its own.
Against the fake Bot API: the bulk worker never provokes a 429, and bulk messages carry
``allow_paid_broadcast`` exactly when it is configured."""

from __future__ import annotations

import asyncio
import time

from backend.outbox.models import Priority
from backend.outbox.schemas import OutboxItem, Outcome
from backend.settings import Settings
from bot.channels.telegram import make_telegram_bot
from bot.delivery.ratelimit import Lane, RateGate, ReplyGateMiddleware, lane_of
from bot.delivery.worker import BotSender
from tests.fakes.telegram_server import FakeTelegramServer, RateLimits


def test_outbox_priorities_map_to_lanes() -> None:
    assert lane_of(int(Priority.REPLY)) is Lane.REPLY
    # Notices come many at once (a collective list's households): they leave the reserve to replies.
    assert lane_of(int(Priority.NOTICE)) is Lane.NOTICE
    assert lane_of(int(Priority.BULK)) is Lane.BULK


async def test_bulk_stops_short_of_the_budget_so_a_reply_finds_a_slot_at_once() -> None:
    gate = RateGate(global_rate="10/second")
    granted = [await gate.acquire(f"{n}", lane=Lane.BULK, timeout=0.05) for n in range(12)]
    assert granted.count(True) == 9  # one of ten left for replies
    started = time.monotonic()
    assert await gate.acquire("555", lane=Lane.REPLY, timeout=0.5)
    assert time.monotonic() - started < 0.1
    assert not await gate.acquire("556", lane=Lane.REPLY, timeout=0.05)  # the whole budget is spent


async def test_every_reply_takes_a_slot_from_bulk() -> None:
    gate = RateGate(global_rate="10/second")
    for n in range(3):
        assert await gate.acquire(f"r{n}", lane=Lane.REPLY, timeout=0.05)
    granted = [await gate.acquire(f"b{n}", lane=Lane.BULK, timeout=0.05) for n in range(10)]
    assert granted.count(True) == 6  # 9 for bulk, less the 3 replies


async def test_a_flood_wait_on_bulk_does_not_pause_replies() -> None:
    gate = RateGate()
    gate.pause(30, Lane.BULK)
    started = time.monotonic()
    assert await gate.acquire("555", lane=Lane.REPLY, timeout=1)
    assert time.monotonic() - started < 0.1
    assert not await gate.acquire("556", lane=Lane.BULK, timeout=0.2)


async def test_notices_leave_the_reserve_to_replies_even_with_paid_broadcast() -> None:
    gate = RateGate(global_rate="10/second", paid_rate="1000/second")
    granted = [await gate.acquire(f"{n}", lane=Lane.NOTICE, timeout=0.05) for n in range(12)]
    assert granted.count(True) == 9  # notices go out free (no allow_paid_broadcast): the free budget
    assert await gate.acquire("555", lane=Lane.REPLY, timeout=0.05)


async def test_paid_broadcast_is_a_budget_of_its_own_and_leaves_the_free_one_to_replies() -> None:
    gate = RateGate(global_rate="10/second", paid_rate="1000/second")
    granted = [await gate.acquire(f"{n}", lane=Lane.BULK, timeout=0.05) for n in range(50)]
    assert all(granted)
    replies = [await gate.acquire(f"r{n}", lane=Lane.REPLY, timeout=0.05) for n in range(10)]
    assert all(replies)


async def test_concurrent_senders_never_overshoot_the_budget() -> None:
    gate = RateGate(global_rate="20/second")
    results = await asyncio.gather(*(gate.acquire(f"{n}", lane=Lane.BULK, timeout=0.3) for n in range(60)))
    assert results.count(True) == 19


def _item(item_id: int, chat: int, priority: Priority) -> OutboxItem:
    return OutboxItem(
        id=item_id + 1,
        channel="telegram",
        address=str(chat),
        text=f"预警 {item_id}",
        parse_mode=None,
        buttons=[],
        attachments=[],
        priority=int(priority),
        attempts=1,
        claimed_until=None,
    )


async def test_bulk_is_sent_as_paid_broadcast_only_when_configured_and_replies_never(
    settings: Settings,
) -> None:
    async with FakeTelegramServer(rate_limits=RateLimits()) as server:
        configured = settings.model_copy(
            update={"bot_token": server.token, "telegram_api_base": server.base_url}
        )
        bot = make_telegram_bot(configured)
        try:
            paid = BotSender(bot, None, gate=RateGate(paid_rate="1000/second"))  # type: ignore[arg-type]
            free = BotSender(bot, None, gate=RateGate())  # type: ignore[arg-type]
            # 60 bulk messages at once through the paid budget: past the free 30/s, and no 429.
            results = await asyncio.gather(*(paid(_item(n, 6_000_000 + n, Priority.BULK)) for n in range(60)))
            assert {r.outcome for r in results} == {Outcome.SENT}
            assert (await paid(_item(99, 6_100_000, Priority.NOTICE))).outcome is Outcome.SENT
            assert (await free(_item(98, 6_200_000, Priority.BULK))).outcome is Outcome.SENT
        finally:
            await bot.session.close()
        flags = {
            call.params["chat_id"]: call.params.get("allow_paid_broadcast")
            for call in server.calls_to("sendMessage")
        }
        assert all(flags[6_000_000 + n] is True for n in range(60))
        assert flags[6_100_000] is None and flags[6_200_000] is None
        assert all(call.ok for call in server.calls_to("sendMessage"))


async def test_a_handlers_answer_waits_for_its_reply_slot_and_the_outbox_send_is_not_counted_twice(
    settings: Settings,
) -> None:
    async with FakeTelegramServer(rate_limits=RateLimits()) as server:
        configured = settings.model_copy(
            update={"bot_token": server.token, "telegram_api_base": server.base_url}
        )
        bot = make_telegram_bot(configured)
        gate = RateGate(global_rate="5/second")
        bot.session.middleware(ReplyGateMiddleware(gate, wait_seconds=2))
        try:
            sender = BotSender(bot, None, gate=gate)  # type: ignore[arg-type]
            for n in range(4):  # bulk takes its 4 of 5
                assert (await sender(_item(n, 6_300_000 + n, Priority.BULK))).outcome is Outcome.SENT
            started = time.monotonic()
            await bot.send_message(6_400_000, "您好")  # a handler's answer: the reserved slot, at once
            assert time.monotonic() - started < 0.3
            await bot.send_message(6_400_001, "您好")  # the budget spent: it waits for the window
            assert time.monotonic() - started > 0.5
        finally:
            await bot.session.close()
        assert all(call.ok for call in server.calls_to("sendMessage"))

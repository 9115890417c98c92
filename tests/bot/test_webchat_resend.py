"""Flaky networks (issue 12): every input carries the page's client id; a resend after a dropped
connection is answered with the same replies and never reaches the dispatcher twice."""

from __future__ import annotations

import asyncio
import io

import httpx
from fastapi import FastAPI

from tests.bot.test_webchat_limits import ask_for_a_photo
from tests.harness import ChatUser
from tests.images import png


async def _post(user: ChatUser, client_id: str, **body: object) -> httpx.Response:
    payload = {**body, "client_id": client_id, "language_code": "zh-CN"}
    return await user.client.post(f"/webchat/api/{user.chat_id}/messages", json=payload)


async def test_a_resent_text_is_answered_again_not_run_again(farmer: ChatUser) -> None:
    first = await _post(farmer, "start-0000000000001", text="/start")
    assert first.status_code == 200 and first.json()["replies"]
    count = len(await farmer.history())
    again = await _post(farmer, "start-0000000000001", text="/start")
    assert again.status_code == 200
    assert again.json() == first.json(), "the same replies"
    assert len(await farmer.history()) == count, "the dispatcher was not fed again"
    other = await _post(farmer, "start-0000000000002", text="/start")
    assert len(await farmer.history()) > count, "a new client id is a new input"
    assert other.json()["replies"][0]["id"] > first.json()["replies"][-1]["id"]


async def test_a_resend_while_the_first_try_still_runs_waits_for_its_answer(farmer: ChatUser) -> None:
    await farmer.say("/start")
    count = len(await farmer.history())
    tries = await asyncio.gather(*[_post(farmer, "race-000000000000001", text="你好") for _ in range(3)])
    assert [t.status_code for t in tries] == [200, 200, 200]
    assert tries[0].json() == tries[1].json() == tries[2].json()
    answered = len(await farmer.history()) - count
    assert answered == len(tries[0].json()["replies"]), "fed once: one answer in the chat"


async def test_a_tap_resent_is_taken_once(farmer: ChatUser) -> None:
    replies = await farmer.say("/start")
    menu = next(r for r in reversed(replies) if r.buttons)
    button = menu.buttons[0][0]
    body = {"callback_data": button["callback_data"], "message_id": menu.id}
    first = await _post(farmer, "tap-00000000000000001", **body)
    count = len(await farmer.history())
    second = await _post(farmer, "tap-00000000000000001", **body)
    assert second.json() == first.json()
    assert len(await farmer.history()) == count


async def test_a_refused_input_is_not_remembered_as_answered(embedded: FastAPI, farmer: ChatUser) -> None:
    """An upload refused (no question takes it) is released: the retry, once a question asks for a
    photo, is run, not answered with the refusal's empty replies."""
    await farmer.say("/start")

    async def send_photo() -> httpx.Response:
        return await farmer.client.post(
            f"/webchat/api/{farmer.chat_id}/photos",
            files={"file": ("field.png", io.BytesIO(png()), "image/png")},
            data={"client_id": "photo-0000000000000001"},
        )

    refused = await send_photo()
    assert refused.status_code == 409
    await ask_for_a_photo(embedded, farmer.chat_id)
    kept = await send_photo()
    assert kept.status_code == 200 and kept.json()["replies"]
    again = await send_photo()
    assert again.json() == kept.json(), "the same photo resent is not counted twice"


async def test_a_client_id_must_look_like_one(farmer: ChatUser) -> None:
    response = await _post(farmer, "short", text="你好")
    assert response.status_code == 422

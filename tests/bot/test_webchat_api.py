"""The web chat HTTP contract: validation, uploads, files."""

from __future__ import annotations

import io

import httpx
import pytest
from fastapi import FastAPI

from tests.bot.test_webchat_limits import ask_for_a_photo
from tests.harness import ChatUser
from tests.images import png

PNG = png()  # a real image: uploads are decoded whole


@pytest.mark.parametrize("bad_id", ["has space", "x" * 65, "semi;colon", "中文"])
async def test_invalid_chat_id_is_422(chat_client: httpx.AsyncClient, bad_id: str) -> None:
    response = await chat_client.post(f"/webchat/api/{bad_id}/messages", json={"text": "/start"})
    assert response.status_code in (404, 422) if "/" in bad_id else response.status_code == 422


async def test_body_needs_exactly_one_input(chat_client: httpx.AsyncClient) -> None:
    both = await chat_client.post("/webchat/api/abc/messages", json={"text": "hi", "callback_data": "x"})
    assert both.status_code == 422
    neither = await chat_client.post("/webchat/api/abc/messages", json={"first_name": "x"})
    assert neither.status_code == 422


async def test_a_photo_no_question_asked_for_gets_a_clear_answer_not_silence(farmer: ChatUser) -> None:
    await farmer.say("/start")
    response = await farmer.client.post(
        f"/webchat/api/{farmer.chat_id}/photos",
        files={"file": ("field.png", io.BytesIO(PNG), "image/png")},
        data={"caption": "稻田"},
    )
    # No conversation is waiting for a photo: it is not kept, and the page shows why (issue 11).
    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "upload_not_expected"
    assert response.json()["detail"]["message"]


async def test_photo_upload_reaches_the_bot_where_a_question_asks_for_one(
    embedded: FastAPI, farmer: ChatUser
) -> None:
    await farmer.say("/start")
    await ask_for_a_photo(embedded, farmer.chat_id)
    response = await farmer.client.post(
        f"/webchat/api/{farmer.chat_id}/photos",
        files={"file": ("field.png", io.BytesIO(PNG), "image/png")},
        data={"caption": "稻田"},
    )
    assert response.status_code == 200
    assert response.json()["replies"], "the question answers the photo"


async def test_oversized_photo_is_refused_with_clear_message(chat_client: httpx.AsyncClient) -> None:
    big = PNG + b"\x00" * (10 * 1024 * 1024)
    response = await chat_client.post(
        "/webchat/api/abc/photos",
        files={"file": ("big.png", io.BytesIO(big), "image/png")},
        headers={"Accept-Language": "zh-CN"},
    )
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "file_too_large"
    assert "10 MB" in response.json()["detail"]["message"]


async def test_non_image_upload_is_refused(embedded: FastAPI, chat_client: httpx.AsyncClient) -> None:
    await ChatUser(chat_client, "abc").say("/start")
    await ask_for_a_photo(embedded, "abc")
    response = await chat_client.post(
        "/webchat/api/abc/photos",
        files={"file": ("a.txt", io.BytesIO(b"hello"), "text/plain")},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 415
    assert "not an image" in response.json()["detail"]["message"]


async def test_chat_page_is_served_in_chinese_by_default(chat_client: httpx.AsyncClient) -> None:
    response = await chat_client.get("/chat")
    assert response.status_code == 200
    assert "田保" in response.text and 'lang="zh-CN"' in response.text

"""Photos and videos in a form: the largest Telegram size, an album in one step (one "received N"
message that counts up), videos and files, and the SHA-256 of each file shown to staff."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from aiogram.types import Document, Message, PhotoSize, Video
from sqlmodel import select

from backend.claims.models import Claim
from backend.db import Database
from bot.channels.webchat.routes import video_type_of
from bot.forms.claim import MediaStep
from bot.forms.engine import Form, Io, Media
from bot.routers.forms import largest, media_of
from tests.backend.test_claims_reporting import cover_began
from tests.bot.test_claims_chat import PNG, _report_rice_loss
from tests.enroll_helpers import insured_in_chat
from tests.harness import ChatUser, Reply


def _size(file_id: str, width: int, height: int) -> PhotoSize:
    return PhotoSize(file_id=file_id, file_unique_id=file_id, width=width, height=height)


def test_the_largest_photo_size_is_kept_whatever_the_order() -> None:
    sizes = [_size("big", 1280, 960), _size("thumb", 90, 68), _size("mid", 320, 240)]
    assert largest(sizes).file_id == "big"


def _message(**fields: Any) -> Message:
    base = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}
    return Message.model_validate({**base, **fields})


def test_videos_and_files_are_media_with_their_type_and_album() -> None:
    video = Video(file_id="v1", file_unique_id="v1", width=1, height=1, duration=3, mime_type="video/mp4")
    assert media_of(_message(video=video, media_group_id="g1")) == Media("v1", "video/mp4", "g1")
    file = Document(file_id="d1", file_unique_id="d1", mime_type="image/jpeg")
    assert media_of(_message(document=file)) == Media("d1", "image/jpeg", None)
    pdf = Document(file_id="d2", file_unique_id="d2", mime_type="application/pdf")
    assert media_of(_message(document=pdf)) is None


class _Bot:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.edits: list[tuple[int, str]] = []

    async def download(self, file_id: str) -> io.BytesIO:
        return io.BytesIO(PNG)

    async def send_message(self, chat_id: int, text: str, reply_markup: Any = None) -> Any:
        self.sent.append(text)
        return SimpleNamespace(message_id=100 + len(self.sent))

    async def edit_message_text(self, *, text: str, chat_id: int, message_id: int, reply_markup: Any) -> None:
        self.edits.append((message_id, text))


class _Backend:
    def __init__(self) -> None:
        self.uploads: list[str] = []

    async def upload_claim_media(self, key: Any, data: bytes, filename: str, content_type: str) -> int:
        self.uploads.append(content_type)
        return len(self.uploads)


async def test_an_album_is_taken_in_one_step_with_one_message_counting_up() -> None:
    bot, backend = _Bot(), _Backend()
    io_ = Io(
        message=cast(Any, None),
        bot=cast(Any, bot),
        locale="zh-CN",
        backend=cast(Any, backend),
        identity=cast(Any, None),
        chat_id=1,
    )
    step = MediaStep("claim_photos", when=lambda f: True)
    form = Form(flow="claim", step="claim_photos")
    for n in range(3):
        await step.on_photo(io_, form, Media(f"p{n}", "", album="album-1"))
    await step.on_photo(io_, form, Media("v", "video/mp4"))  # a video on its own, after the album
    assert await step.on_pick(io_, form, "done") == [1, 2, 3, 4]
    assert len(bot.sent) == 2  # one for the album, one for the video
    assert [message_id for message_id, _ in bot.edits] == [101, 101]
    assert "3" in bot.edits[-1][1]
    assert backend.uploads == ["image/png", "image/png", "image/png", "video/mp4"]


async def test_staff_see_the_sha256_of_each_claim_photo(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    grower = ChatUser(chat_client, "media-1", first_name="李四")
    await insured_in_chat(grower, api, service_headers)
    await cover_began(db, timedelta(days=5))
    await _report_rice_loss(grower)
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
    detail = (await api.get(f"/api/claims/{claim.id}", headers=admin_headers)).json()
    scene = [a for a in detail["attachments"] if a["purpose"] == "scene"]
    assert [a["sha256"] for a in scene] == [hashlib.sha256(PNG).hexdigest()]
    assert scene[0]["content_type"] == "image/png"


MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


async def test_web_chat_takes_a_video_where_the_claim_asks_for_photos_or_video(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    grower = ChatUser(chat_client, "media-2", first_name="李四")
    await insured_in_chat(grower, api, service_headers)
    await cover_began(db, timedelta(days=5))
    await grower.say("报案")
    await grower.tap("暴雨")
    await grower.say("今天0点")
    await grower.tap("刚刚结束")
    await grower.say("3")
    await grower.say("3500")
    await grower.tap("跳过")
    await grower.say("村东头大塘边")
    response = await chat_client.post(
        f"/webchat/api/{grower.chat_id}/photos", files={"file": ("loss.mp4", io.BytesIO(MP4), "video/mp4")}
    )
    assert response.status_code == 200, response.text
    assert "1" in response.json()["replies"][-1]["text"]  # received: one file
    await grower.tap("照片发完了", [Reply(**r) for r in response.json()["replies"]])
    await grower.tap("是我本人")
    await grower.tap("确认提交")
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
    detail = (await api.get(f"/api/claims/{claim.id}", headers=admin_headers)).json()
    assert [(a["content_type"], a["sha256"]) for a in detail["attachments"]] == [
        ("video/mp4", hashlib.sha256(MP4).hexdigest())
    ]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"\x00\x00\x00\x18ftypisom", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
        (b"\x00\x00\x00\x18ftypheic", None),  # an iPhone photo: same container, not a video
        (b"\x00\x00\x00\x1cftypavif", None),
        (b"\x00\x00\x00\x20ftypM4A ", None),  # audio
        (b"BM not a video at all", None),
    ],
)
def test_only_mp4_and_mov_brands_are_taken_as_video(head: bytes, expected: str | None) -> None:
    assert video_type_of(head + b"\x00" * 32) == expected

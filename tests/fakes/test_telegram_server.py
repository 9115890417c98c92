"""Tests of the fake Bot API server, driven by a real aiogram Bot over a real AiohttpSession."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    LabeledPrice,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from aiohttp import web

from tests.fakes.telegram_server import (
    BLOCKED_DESCRIPTION,
    FakeTelegramServer,
    RateLimits,
    UploadedFile,
    parse_html,
)

CHAT = 424242


@asynccontextmanager
async def make_bot(server: FakeTelegramServer, token: str | None = None) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    bot = Bot(token or server.token, session=session)
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(rate_limits=False) as srv:
        yield srv


@pytest.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    async with make_bot(server) as b:
        yield b


def tiny_png(width: int = 2, height: int = 3) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------------ basics


async def test_get_me(server: FakeTelegramServer, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot is True
    assert me.username == "tianbao_test_bot"
    assert server.calls == [("getMe", {})]
    assert server.calls[0].ok


async def test_send_message_returns_message_with_inline_keyboard(
    server: FakeTelegramServer, bot: Bot
) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="投保", callback_data="buy:1")]]
    )
    first = await bot.send_message(CHAT, "你好", reply_markup=keyboard)
    second = await bot.send_message(CHAT, "again")

    assert isinstance(first, Message)
    assert first.text == "你好"
    assert first.chat.id == CHAT and first.chat.type == "private"
    assert first.from_user is not None and first.from_user.id == 123456 and first.from_user.is_bot
    assert first.reply_markup is not None
    assert first.reply_markup.model_dump(exclude_none=True) == keyboard.model_dump(exclude_none=True)
    assert first.date.timestamp() > 0
    assert second.message_id == first.message_id + 1
    assert second.reply_markup is None

    sent = server.sent_messages(CHAT)
    assert [call.params["text"] for call in sent] == ["你好", "again"]
    # multipart fields arrive as strings; the fake decodes them like Telegram does
    assert sent[0].params["chat_id"] == CHAT
    assert sent[0].params["reply_markup"] == {
        "inline_keyboard": [[{"text": "投保", "callback_data": "buy:1"}]]
    }
    assert server.sent_texts(CHAT) == ["你好", "again"]
    assert server.sent_messages(999) == []


async def test_reply_keyboard_is_recorded_but_not_echoed(server: FakeTelegramServer, bot: Bot) -> None:
    keyboard = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="分享手机号", request_contact=True)]], resize_keyboard=True
    )
    message = await bot.send_message(CHAT, "请分享手机号", reply_markup=keyboard)
    assert message.reply_markup is None  # Telegram only echoes inline keyboards
    params = server.sent_messages(CHAT)[0].params
    assert params["reply_markup"]["keyboard"][0][0] == {"text": "分享手机号", "request_contact": True}


async def test_html_parse_mode_is_parsed_into_entities(server: FakeTelegramServer, bot: Bot) -> None:
    message = await bot.send_message(
        CHAT, "<b>保单</b> &lt;A&gt; <a href='https://x.cn'>链接</a>", parse_mode="HTML"
    )
    assert message.text == "保单 <A> 链接"
    assert message.entities is not None
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("bold", 0, 2), ("text_link", 7, 2)]
    assert message.entities[1].url == "https://x.cn"

    with pytest.raises(TelegramBadRequest) as exc_info:
        await bot.send_message(CHAT, "price < 5", parse_mode="HTML")
    assert "can't parse entities: Unsupported start tag" in exc_info.value.message
    with pytest.raises(TelegramBadRequest, match="Can't find end tag corresponding to start tag"):
        await bot.send_message(CHAT, "<b>open", parse_mode="HTML")
    assert len(server.sent_messages(CHAT)) == 1


def test_parse_html_offsets_are_utf16_and_pre_language() -> None:
    text, entities = parse_html('😀<i>x</i><pre><code class="language-python">y</code></pre>')
    assert text == "😀xy"
    assert entities == [
        {"type": "italic", "offset": 2, "length": 1},
        {"type": "pre", "offset": 3, "length": 1, "language": "python"},
    ]


async def test_empty_and_too_long_text_are_rejected(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, "   ")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "x", reply_markup=keyboard)


# ----------------------------------------------------------------------------------- error answers


async def test_forced_429_raises_retry_after(server: FakeTelegramServer, bot: Bot) -> None:
    server.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as exc_info:
        await bot.send_message(CHAT, "hi")
    assert exc_info.value.retry_after == 7
    assert server.calls[-1].status == 429
    assert server.calls[-1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    # only once
    message = await bot.send_message(CHAT, "hi")
    assert message.text == "hi"
    assert len(server.sent_messages(CHAT)) == 1


async def test_fail_next_times_and_chat_filter(server: FakeTelegramServer, bot: Bot) -> None:
    server.fail_next("sendMessage", 502, "Bad Gateway", times=2, chat_id=1)
    await bot.send_message(2, "other chat is fine")
    for _ in range(2):
        with pytest.raises(Exception, match="Bad Gateway"):
            await bot.send_message(1, "x")
    assert (await bot.send_message(1, "x")).text == "x"


async def test_per_chat_rate_limit_yields_429() -> None:
    limits = RateLimits(per_chat_per_second=1.0, per_chat_burst=2)
    async with FakeTelegramServer(rate_limits=limits) as server, make_bot(server) as bot:
        await bot.send_message(CHAT, "1")
        await bot.send_message(CHAT, "2")
        with pytest.raises(TelegramRetryAfter) as exc_info:
            await bot.send_message(CHAT, "3")
        assert exc_info.value.retry_after == 1
        assert "Too Many Requests: retry after 1" in exc_info.value.message
        # other chats have their own budget
        assert (await bot.send_message(CHAT + 1, "elsewhere")).text == "elsewhere"
        assert [c.params["text"] for c in server.sent_messages(CHAT)] == ["1", "2"]
        await asyncio.sleep(1.05)
        assert (await bot.send_message(CHAT, "3")).text == "3"


async def test_group_and_global_rate_limits_with_fake_clock() -> None:
    clock = FakeClock()
    limits = RateLimits(per_chat_per_second=100, per_chat_burst=100, global_per_second=30, global_burst=30)
    async with FakeTelegramServer(rate_limits=limits, clock=clock) as server, make_bot(server) as bot:
        group = -100123
        for i in range(20):
            await bot.send_message(group, f"g{i}")
        with pytest.raises(TelegramRetryAfter) as exc_info:
            await bot.send_message(group, "one too many")
        assert exc_info.value.retry_after == 3  # 20 per minute → one token every 3 s
        clock.now += 3
        await bot.send_message(group, "after waiting")

        clock.now += 1  # refill the global bucket
        for chat in range(1, 31):
            await bot.send_message(chat, "broadcast")
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(31, "broadcast")
        assert len(server.sent_messages()) == 21 + 30


async def test_rate_limits_can_be_switched_off(server: FakeTelegramServer, bot: Bot) -> None:
    for i in range(40):
        await bot.send_message(CHAT, str(i))
    assert len(server.sent_messages(CHAT)) == 40


async def test_blocked_chat_raises_forbidden(server: FakeTelegramServer, bot: Bot) -> None:
    server.block_chat(CHAT)
    with pytest.raises(TelegramForbiddenError) as exc_info:
        await bot.send_message(CHAT, "hi")
    assert exc_info.value.message == "Forbidden: bot was blocked by the user" == BLOCKED_DESCRIPTION
    with pytest.raises(TelegramForbiddenError):
        await bot.send_document(CHAT, BufferedInputFile(b"x", "a.txt"))
    assert server.calls[-1].response == {"ok": False, "error_code": 403, "description": BLOCKED_DESCRIPTION}
    assert (await bot.send_message(CHAT + 1, "others fine")).chat.id == CHAT + 1
    server.unblock_chat(CHAT)
    assert (await bot.send_message(CHAT, "back")).text == "back"


async def test_wrong_token_is_unauthorized(server: FakeTelegramServer) -> None:
    async with make_bot(server, token="999:WRONG") as bot:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await bot.get_me()
    assert server.calls[-1].status == 401
    assert server.calls[-1].response == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_method_and_raw_http_bodies(server: FakeTelegramServer) -> None:
    base = f"{server.base_url}/bot{server.token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/noSuchMethod", json={}) as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        # JSON body, with reply_markup given as a JSON string as some clients do
        body = {
            "chat_id": "7",
            "text": "json",
            "reply_markup": '{"inline_keyboard": [[{"text": "a", "url": "https://a.b"}]]}',
        }
        async with http.post(f"{base}/sendMessage", json=body) as resp:
            data = await resp.json()
            assert resp.status == 200 and data["ok"] is True
            assert data["result"]["chat"] == {"id": 7, "first_name": "Test", "type": "private"}
            assert data["result"]["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://a.b"
        # urlencoded body, lower-case method name (Telegram is case-insensitive)
        async with http.post(f"{base}/sendmessage", data={"chat_id": "7", "text": "form"}) as resp:
            assert (await resp.json())["result"]["text"] == "form"
        # GET with query string
        async with http.get(f"{base}/getMe") as resp:
            assert (await resp.json())["result"]["is_bot"] is True
    assert [c.params["text"] for c in server.sent_messages(7)] == ["json", "form"]
    assert server.calls[-1].method == "getMe"


async def test_unknown_method_via_aiogram_is_not_found(server: FakeTelegramServer, bot: Bot) -> None:
    from aiogram.methods import GetChat

    with pytest.raises(TelegramNotFound):
        await bot(GetChat(chat_id=CHAT))


# -------------------------------------------------------------------------------------------- updates


async def test_get_updates_long_polling_and_offset(server: FakeTelegramServer, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await server.wait_for_call("getUpdates")
    await asyncio.sleep(0.1)
    assert not poll.done()  # really waiting
    pushed = server.push_update(server.user_message(CHAT, "/start ref_abc"))
    updates = await asyncio.wait_for(poll, 2)
    assert loop.time() - started < 2

    assert len(updates) == 1
    update = updates[0]
    assert update.update_id == pushed["update_id"] == 1
    assert update.message is not None and update.message.text == "/start ref_abc"
    assert update.message.entities is not None
    assert (update.message.entities[0].type, update.message.entities[0].offset) == ("bot_command", 0)
    assert update.message.entities[0].length == len("/start")
    assert update.message.from_user is not None and update.message.from_user.language_code == "zh-hans"

    # not confirmed yet: delivered again
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [1]
    server.push_update(server.user_message(CHAT, "second"))
    again = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert [u.update_id for u in again] == [2]
    assert [u["update_id"] for u in server.pending_updates] == [2]
    assert await bot.get_updates(offset=3, timeout=0) == []
    assert server.pending_updates == []


async def test_get_updates_times_out_with_empty_list(bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(timeout=1) == []
    assert loop.time() - started >= 0.9


async def test_get_updates_limit_and_negative_offset(server: FakeTelegramServer, bot: Bot) -> None:
    for i in range(5):
        server.push_update(server.user_message(CHAT, f"m{i}"))
    assert [u.update_id for u in await bot.get_updates(limit=2, timeout=0)] == [1, 2]
    assert [u.update_id for u in await bot.get_updates(offset=-1, timeout=0)] == [5]
    assert len(server.pending_updates) == 1


async def test_second_poller_terminates_first_with_conflict(server: FakeTelegramServer, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await server.wait_for_call("getUpdates")
    second = asyncio.create_task(bot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)
    server.push_update(server.user_message(CHAT, "x"))
    assert len(await asyncio.wait_for(second, 2)) == 1


async def test_update_helpers_validate_as_aiogram_updates(server: FakeTelegramServer, bot: Bot) -> None:
    sent = await bot.send_message(
        CHAT,
        "choose",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="ok", callback_data="ok")]]
        ),
    )
    contact = server.push_update(server.contact_message(CHAT, "+8613800138000"))
    callback = server.push_update(server.callback_query(CHAT, "ok", sent.message_id))
    group = server.push_update(server.user_message(-1001234567890, "/help@tianbao_test_bot", user_id=5))

    contact_update = Update.model_validate(contact, context={"bot": bot})
    assert contact_update.message is not None and contact_update.message.contact is not None
    assert contact_update.message.contact.phone_number == "+8613800138000"
    assert contact_update.message.contact.user_id == CHAT
    assert contact_update.message.message_id == sent.message_id + 1  # ids are shared per chat

    cb_update = Update.model_validate(callback, context={"bot": bot})
    assert cb_update.callback_query is not None and cb_update.callback_query.data == "ok"
    assert isinstance(cb_update.callback_query.message, Message)
    assert cb_update.callback_query.message.text == "choose"

    group_update = Update.model_validate(group, context={"bot": bot})
    assert group_update.message is not None and group_update.message.chat.type == "supergroup"
    assert group_update.message.entities is not None
    assert group_update.message.entities[0].length == len("/help@tianbao_test_bot")
    assert [u["update_id"] for u in server.pending_updates] == [1, 2, 3]


async def test_answer_callback_query_once(server: FakeTelegramServer, bot: Bot) -> None:
    update = server.push_update(server.callback_query(CHAT, "buy:1", message_id=1))
    query_id = update["callback_query"]["id"]
    assert await bot.answer_callback_query(query_id, text="已收到") is True
    assert server.callback_answers[query_id]["text"] == "已收到"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("123")


async def test_dispatcher_polling_end_to_end(server: FakeTelegramServer, bot: Bot) -> None:
    router = Router()

    @router.message(CommandStart(deep_link=True))
    async def start(message: Message, command: CommandObject) -> None:
        await message.answer(f"ref={command.args}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=2))
    try:
        server.push_update(server.user_message(CHAT, "/start abc"))
        reply = await server.wait_for_call("sendMessage", chat_id=CHAT)
        assert reply.params["text"] == "ref=abc"
        assert reply.ok
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)


# ------------------------------------------------------------------------------------ edits & files


async def test_edit_message_text_and_markup(server: FakeTelegramServer, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="a")]])
    sent = await bot.send_message(CHAT, "v1", reply_markup=keyboard)
    edited = await bot.edit_message_text(
        text="v2", chat_id=CHAT, message_id=sent.message_id, reply_markup=keyboard
    )
    assert isinstance(edited, Message)
    assert edited.text == "v2" and edited.edit_date is not None
    assert edited.reply_markup is not None and edited.reply_markup.inline_keyboard[0][0].callback_data == "a"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="v2", chat_id=CHAT, message_id=sent.message_id, reply_markup=keyboard
        )
    stripped = await bot.edit_message_reply_markup(chat_id=CHAT, message_id=sent.message_id)
    assert isinstance(stripped, Message) and stripped.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=CHAT, message_id=999)
    stored = server.get_message(CHAT, sent.message_id)
    assert stored is not None and stored["text"] == "v2" and "reply_markup" not in stored
    assert [c.method for c in server.sent_messages(CHAT)] == ["sendMessage", "editMessageText"]


async def test_send_document_records_filename_and_is_downloadable(
    server: FakeTelegramServer, bot: Bot
) -> None:
    content = b"%PDF-1.4 policy"
    message = await bot.send_document(
        CHAT, BufferedInputFile(content, filename="保单.pdf"), caption="您的保单"
    )

    call = server.sent_messages(CHAT)[-1]
    assert call.method == "sendDocument"
    uploaded = call.params["document"]
    assert isinstance(uploaded, UploadedFile)
    assert uploaded.filename == "保单.pdf"
    assert uploaded.content == content
    assert call.params["caption"] == "您的保单"

    assert message.document is not None
    assert message.document.file_name == "保单.pdf"
    assert message.document.mime_type == "application/pdf"
    assert message.document.file_size == len(content)
    assert message.caption == "您的保单"

    file = await bot.get_file(message.document.file_id)
    assert file.file_path is not None and file.file_path.startswith("documents/")
    downloaded = await bot.download(file)
    assert downloaded is not None and downloaded.read() == content

    # re-sending by file_id works, an unknown file_id does not
    again = await bot.send_document(CHAT, message.document.file_id)
    assert again.document is not None and again.document.file_id == message.document.file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(CHAT, "BQACnope")


async def test_send_photo_upload_and_invalid_image(server: FakeTelegramServer, bot: Bot) -> None:
    message = await bot.send_photo(CHAT, BufferedInputFile(tiny_png(4, 2), filename="qr.png"))
    assert message.photo is not None
    assert (message.photo[-1].width, message.photo[-1].height) == (4, 2)
    assert server.sent_messages(CHAT)[-1].params["photo"].filename == "qr.png"
    resent = await bot.send_photo(CHAT, message.photo[-1].file_id)
    assert resent.photo is not None and resent.photo[-1].file_id == message.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, BufferedInputFile(b"not an image", filename="x.png"))


async def test_user_document_is_downloadable(server: FakeTelegramServer, bot: Bot) -> None:
    update = server.document_message(CHAT, b"id card scan", "id.jpg")
    file_id = update["message"]["document"]["file_id"]
    file = await bot.get_file(file_id)
    downloaded = await bot.download(file)
    assert downloaded is not None and downloaded.read() == b"id card scan"
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")


async def test_chat_action_commands_and_invoice(server: FakeTelegramServer, bot: Bot) -> None:
    assert await bot.send_chat_action(CHAT, "typing") is True
    assert server.chat_actions == [(CHAT, "typing")]

    assert await bot.set_my_commands([BotCommand(command="start", description="开始")]) is True
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Command", description="x")])

    invoice = await bot.send_invoice(
        CHAT,
        title="保费",
        description="农业保险保费",
        payload="policy:1",
        currency="XTR",
        prices=[LabeledPrice(label="保费", amount=100)],
    )
    assert invoice.invoice is not None
    assert (invoice.invoice.currency, invoice.invoice.total_amount) == ("XTR", 100)

    checkout = server.push_update(server.pre_checkout_query(CHAT, "policy:1", 100))
    query_id = checkout["pre_checkout_query"]["id"]
    assert await bot.answer_pre_checkout_query(query_id, ok=True) is True
    assert server.pre_checkout_answers[query_id]["ok"] is True
    paid = Update.model_validate(
        server.push_update(server.successful_payment_message(CHAT, "policy:1", 100)), context={"bot": bot}
    )
    assert paid.message is not None and paid.message.successful_payment is not None
    assert paid.message.successful_payment.invoice_payload == "policy:1"


# ------------------------------------------------------------------------------------------- webhook


async def test_webhook_set_info_and_delivery(server: FakeTelegramServer, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/tg/webhook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(TelegramBadRequest, match="HTTPS URL must be provided"):
            await bot.set_webhook("http://example.com/tg/webhook")
        assert await bot.set_webhook("https://bot.example.com/tg/webhook", secret_token="s3cret_-X") is True
        assert server.webhook.url == "https://bot.example.com/tg/webhook"
        assert server.webhook.secret_token == "s3cret_-X"
        info = await bot.get_webhook_info()
        assert info.url == "https://bot.example.com/tg/webhook" and info.pending_update_count == 0

        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates(timeout=0)

        update = server.user_message(CHAT, "hello")
        status = await server.deliver_webhook(f"http://127.0.0.1:{port}/tg/webhook", update)
        assert status == 200
        assert received[0][0] == "s3cret_-X"
        assert received[0][1]["message"]["text"] == "hello"  # type: ignore[index]
        assert isinstance(received[0][1]["update_id"], int)
        assert (
            await server.deliver_webhook(f"http://127.0.0.1:{port}/other", update, secret_token=None) == 404
        )

        assert await bot.delete_webhook(drop_pending_updates=True) is True
        assert server.webhook.url == ""
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()

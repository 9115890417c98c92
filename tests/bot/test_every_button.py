"""Every button two levels deep from /start gets an answer (issue 11).

Both channels (web chat, and Telegram through its webhook against the fake Bot API), both languages, a new
user and an insured one: /start, press every button of its answer (inline and reply keyboard), then every
button of each answer to those. Each press must answer the callback (Telegram's spinner stops) and say
something that is not an error or a fallback. Stale presses (an earlier question's button, a message
too old to reach, the same button twice) must say so clearly.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pytest

from backend.db import Database
from backend.settings import Settings
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from bot.server import build_embedded_app
from messages import label, render
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, VALID_ID
from tests.fakes.telegram_server import FakeTelegramServer

PHONE = "13812345678"
WEBHOOK_SECRET = "every-button-secret"


# --- what the user sees -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Button:
    """One thing the user can press: an inline button (``data``), or a reply-keyboard key."""

    text: str
    data: str = ""
    contact: bool = False
    location: bool = False
    url: str = ""


@dataclass
class Answer:
    message_id: int
    text: str
    buttons: list[Button] = field(default_factory=list)


@dataclass
class Outcome:
    answers: list[Answer]
    # Telegram: did the bot answer this callback query (None: not a callback, or not observable)
    callback_answered: bool | None = None

    def text(self) -> str:
        return "\n".join(a.text for a in self.answers)


class Chat(Protocol):
    identity: str
    locale: str
    locale_changed: bool

    async def say(self, text: str) -> Outcome: ...
    async def press(self, answer: Answer, button: Button) -> Outcome: ...
    async def share_contact(self, phone: str) -> Outcome: ...
    async def share_location(self, latitude: float, longitude: float) -> Outcome: ...
    async def press_gone(self, data: str, message_id: int) -> Outcome: ...


def _inline(rows: list[list[dict[str, Any]]] | None) -> list[Button]:
    return [
        Button(text=b["text"], data=b.get("callback_data", ""), url=b.get("url", ""))
        for row in rows or []
        for b in row
    ]


def _keys(rows: list[list[dict[str, Any]]] | None) -> list[Button]:
    return [
        Button(
            text=b["text"], contact=bool(b.get("request_contact")), location=bool(b.get("request_location"))
        )
        for row in rows or []
        for b in row
    ]


# --- web chat -----------------------------------------------------------------------------------------


class WebChat:
    def __init__(self, client: httpx.AsyncClient, chat_id: str, language_code: str) -> None:
        self.client, self.chat_id, self.language_code = client, chat_id, language_code
        self.identity = f"webchat:{chat_id}"
        self.locale = language_code
        self.locale_changed = False

    async def _post(self, body: dict[str, Any]) -> Outcome:
        body = {**body, "language_code": self.language_code, "first_name": "王大明"}
        response = await self.client.post(f"/webchat/api/{self.chat_id}/messages", json=body)
        assert response.status_code == 200, response.text
        answers = [
            Answer(r["id"], r["text"], _inline(r["buttons"]) + _keys(r["keyboard"]))
            for r in response.json()["replies"]
        ]
        return Outcome(answers)

    async def say(self, text: str) -> Outcome:
        return await self._post({"text": text})

    async def press(self, answer: Answer, button: Button) -> Outcome:
        return await self._post({"callback_data": button.data, "message_id": answer.message_id})

    async def share_contact(self, phone: str) -> Outcome:
        return await self._post({"contact": {"phone_number": phone}})

    async def share_location(self, latitude: float, longitude: float) -> Outcome:
        return await self._post({"location": {"latitude": latitude, "longitude": longitude}})

    async def press_gone(self, data: str, message_id: int) -> Outcome:
        """A button on a message the chat no longer holds (trimmed history, an id the page made up)."""
        return await self._post({"callback_data": data, "message_id": message_id + 10_000})


# --- Telegram (webhook: the POST returns when the update is handled) -----------------------------------


class TelegramChat:
    def __init__(
        self, client: httpx.AsyncClient, server: FakeTelegramServer, user_id: int, language_code: str
    ) -> None:
        self.client, self.server, self.user_id = client, server, user_id
        self.language_code = "zh-hans" if language_code == "zh-CN" else "en"
        self.identity = f"telegram:{user_id}"
        self.locale = language_code
        self.locale_changed = False

    async def _feed(self, update: dict[str, Any]) -> Outcome:
        seen = len(self.server.calls)
        prepared = self.server._prepare_update(update)
        response = await self.client.post(
            WEBHOOK_PATH, json=prepared, headers={SECRET_HEADER: WEBHOOK_SECRET}
        )
        assert response.status_code == 200, response.text
        calls = self.server.calls[seen:]
        answers = []
        for call in calls:
            if call.method not in ("sendMessage", "editMessageText", "sendDocument", "sendInvoice"):
                continue
            assert call.ok, (call.method, call.description)
            if call.params.get("chat_id") != self.user_id:
                continue
            markup = call.params.get("reply_markup") or {}
            text = call.params.get("text") or call.params.get("caption") or call.params.get("title") or ""
            result = call.result
            message_id = result["message_id"] if isinstance(result, dict) else 0
            buttons = _inline(markup.get("inline_keyboard")) + _keys(markup.get("keyboard"))
            answers.append(Answer(message_id, text, buttons))
        failed = [c for c in calls if not c.ok]
        assert not failed, [(c.method, c.description) for c in failed]
        callback = update.get("callback_query")
        answered = None
        if callback is not None:
            answered = any(
                c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == callback["id"]
                for c in calls
            )
        return Outcome(answers, answered)

    async def say(self, text: str) -> Outcome:
        return await self._feed(
            self.server.user_message(
                self.user_id,
                text,
                user_id=self.user_id,
                first_name="王大明",
                language_code=self.language_code,
            )
        )

    async def press(self, answer: Answer, button: Button) -> Outcome:
        return await self._feed(
            self.server.callback_query(
                self.user_id,
                button.data,
                answer.message_id,
                user_id=self.user_id,
                first_name="王大明",
                language_code=self.language_code,
            )
        )

    async def share_contact(self, phone: str) -> Outcome:
        return await self._feed(
            self.server.contact_message(
                self.user_id,
                phone,
                user_id=self.user_id,
                first_name="王大明",
                language_code=self.language_code,
            )
        )

    async def share_location(self, latitude: float, longitude: float) -> Outcome:
        update = self.server.user_message(
            self.user_id, "-", user_id=self.user_id, first_name="王大明", language_code=self.language_code
        )
        message = update["message"]
        del message["text"]
        message["location"] = {"latitude": latitude, "longitude": longitude}
        return await self._feed(update)

    async def press_gone(self, data: str, message_id: int) -> Outcome:
        """Telegram sends a message older than 48 hours (or deleted) as an InaccessibleMessage: date 0."""
        update = self.server.callback_query(
            self.user_id, data, message_id, user_id=self.user_id, language_code=self.language_code
        )
        update["callback_query"]["message"] = {
            "chat": {"id": self.user_id, "type": "private"},
            "message_id": message_id,
            "date": 0,
        }
        return await self._feed(update)


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(rate_limits=False) as server:
        yield server


@pytest.fixture
async def both_app(settings: Settings, db: Database, telegram: FakeTelegramServer) -> AsyncIterator[Any]:
    configured = settings.model_copy(
        update={
            "bot_token": telegram.token,
            "telegram_api_base": telegram.base_url,
            "webhook_url": "https://bot.example.cn",
            "webhook_secret": WEBHOOK_SECRET,
            "embedded_worker": False,
            "embedded_scheduler": False,
        }
    )
    app = build_embedded_app(configured, db=db)
    yield app
    await app.state.bot_runtime.close()


@pytest.fixture
async def client(both_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=both_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


_user_ids = iter(range(7_000_001, 8_000_000))


def open_chat(channel: str, client: httpx.AsyncClient, server: FakeTelegramServer, locale: str) -> Chat:
    if channel == "webchat":
        return WebChat(client, f"btn-{secrets.token_hex(4)}", locale)
    return TelegramChat(client, server, next(_user_ids), locale)


# --- what counts as a failure -------------------------------------------------------------------------


def failure_texts(locale: str) -> dict[str, str]:
    """The texts a press must never get: the error handler's, the fallbacks', a refusal without its
    own explanation, and (for a fresh button) "no longer active"."""
    return {
        "error": render("common/error", locale),
        "service_unavailable": render("common/service_unavailable", locale),
        "unknown_input": render("start/unknown_input", locale),
        "submit_failed": label("enroll_errors.submit_failed", locale),
        "stale_button": render("start/stale_button", locale),
        "stale_choice": label("enroll_errors.stale_choice", locale),
        "use_buttons": label("enroll_errors.use_buttons", locale),
    }


def problems_of(outcome: Outcome, locale: str, *, allowed: tuple[str, ...] = ()) -> list[str]:
    found: list[str] = []
    if outcome.callback_answered is False:
        found.append("callback not answered")
    if not outcome.answers or not any(a.text.strip() for a in outcome.answers):
        found.append("no reply")
    for name, text in failure_texts(locale).items():
        if name in allowed:
            continue
        if any(text.strip() and text.strip() in a.text for a in outcome.answers):
            found.append(name)
    return found


async def press_any(chat: Chat, answer: Answer, button: Button) -> Outcome:
    if button.data.startswith("lang:"):
        chat.locale_changed = True
    if button.data:
        return await chat.press(answer, button)
    if button.contact:
        return await chat.share_contact(PHONE)
    if button.location:
        return await chat.share_location(22.94, 113.75)
    return await chat.say(button.text)


def pressable(outcome: Outcome) -> list[tuple[int, int, Button]]:
    """(answer index, button index, button) of every button in an outcome; links open a page, not the bot."""
    return [(i, j, b) for i, a in enumerate(outcome.answers) for j, b in enumerate(a.buttons) if not b.url]


Begin = Callable[[], Awaitable[tuple[Chat, Outcome]]]


async def crawl(begin: Begin) -> list[str]:
    """Press everything two levels deep, each path from a fresh /start; a line per problem."""
    report: list[str] = []
    chat, top = await begin()
    for i, j, first in pressable(top):
        chat, top = await begin()
        level1 = await _press_path(chat, top, [(i, j)])
        where = f"{chat.identity} {chat.locale} [{first.text}]"
        report += [f"{where}: {p}" for p in problems_of(level1, chat.locale)]
        for n, (k, m, second) in enumerate(pressable(level1)):
            if n:
                chat, top = await begin()
                again = await _press_path(chat, top, [(i, j)])
            else:
                again = level1
            if len(again.answers) <= k or len(again.answers[k].buttons) <= m:
                report.append(f"{where} [{second.text}]: answer changed on replay")
                continue
            level2 = await _press_path(chat, again, [(k, m)])
            report += [f"{where} [{second.text}]: {p}" for p in problems_of(level2, chat.locale)]
    return report


async def _press_path(chat: Chat, outcome: Outcome, path: list[tuple[int, int]]) -> Outcome:
    for i, j in path:
        answer = outcome.answers[i]
        outcome = await press_any(chat, answer, answer.buttons[j])
    return outcome


def new_user(channel: str, client: httpx.AsyncClient, server: FakeTelegramServer, locale: str) -> Begin:
    """A new user per path: pressing "bind phone" or a language changes what the next /start offers."""

    async def begin() -> tuple[Chat, Outcome]:
        chat = open_chat(channel, client, server, locale)
        return chat, await chat.say("/start")

    return begin


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("channel", ["webchat", "telegram"])
async def test_every_button_of_a_new_user(
    channel: str, locale: str, client: httpx.AsyncClient, telegram: FakeTelegramServer
) -> None:
    report = await crawl(new_user(channel, client, telegram, locale))
    assert report == [], "\n".join(report)


SERVICE = {"Authorization": "Bearer service-token-for-tests"}


async def make_insured(chat: Chat, client: httpx.AsyncClient, db: Database) -> dict[str, Any]:
    """The chat's user holds a paid rice policy and has reported one loss on it; returns the claim."""
    from datetime import timedelta

    from tests.backend.test_claims_reporting import cover_began, report

    await chat.say("/start")
    await chat.share_contact(PHONE)
    headers = {**SERVICE, "X-Tianbao-Identity": chat.identity}
    body = {
        "idempotency_key": secrets.token_urlsafe(12),
        "product_code": "rice",
        "region_code": DONGGUAN_TOWNSHIP,
        "quantity": "10",
        "disclosure_version": "2026.1",
        "disclosure_read": True,
        "signer": {"role": "insured"},
        "farmer": {
            "insured_type": "farmer",
            "name": "李四",
            "id_number": VALID_ID,
            "phone": PHONE,
            "bank_name": "农业银行",
            "bank_account": "6228480012345678901",
            "ear_tags": [],
        },
    }
    application = await client.post("/api/bot/applications", headers=headers, json=body)
    assert application.status_code == 200, application.text
    paid = await client.post(
        f"/api/bot/applications/{application.json()['id']}/payments",
        headers=headers,
        json={"provider": "demo"},
    )
    assert paid.status_code == 200, paid.text
    policy = paid.json()["policy"]
    await cover_began(db, timedelta(days=5))
    claim = await client.post("/api/bot/claims", headers=headers, json=report(policy["id"]))
    assert claim.status_code == 200, claim.text
    result: dict[str, Any] = claim.json()
    return result


async def fresh_start(chat: Chat) -> Outcome:
    """/start; a draft the last path left is discarded, so every path starts from the same menu."""
    outcome = await chat.say("/start")
    for answer in outcome.answers:
        for button in answer.buttons:
            if button.data == "f:discard:":
                await chat.press(answer, button)
                return await chat.say("/start")
    return outcome


def insured_user(chat: Chat) -> Begin:
    """One insured user for every path: a fresh /start, a draft left by the last path discarded, the
    language chosen again if the last path changed it."""

    async def begin() -> tuple[Chat, Outcome]:
        if chat.locale_changed:
            choice = (await chat.say("/language")).answers[-1]
            await chat.press(choice, next(b for b in choice.buttons if b.data == f"lang:{chat.locale}"))
            chat.locale_changed = False
        return chat, await fresh_start(chat)

    return begin


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("channel", ["webchat", "telegram"])
async def test_every_button_of_an_insured_user(
    channel: str, locale: str, client: httpx.AsyncClient, telegram: FakeTelegramServer, db: Database
) -> None:
    chat = open_chat(channel, client, telegram, locale)
    await make_insured(chat, client, db)
    report = await crawl(insured_user(chat))
    assert report == [], "\n".join(report)

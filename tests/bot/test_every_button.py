"""Every button two levels deep from /start gets an answer (issue 11).

Both channels (web chat, and Telegram through its webhook against the fake Bot API: the POST returns when
the update is handled), both languages, a new user and an insured one: /start, press every button of its
answer (inline and reply keyboard), then every button of each answer to those. Each press must have its
callback answered before any backend call (Telegram's spinner stops at once) and get a reply that is not
an error or a fallback. Each button is then pressed again on a message that is gone (Telegram: older than
48 hours; web chat: trimmed history), which must get a clear answer too. Stale presses (an earlier
question's button, a double tap, a form's first button again, an old claim notice) must say so.
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import httpx
import pytest

from backend.chat_actions import claim_button, pay_button
from backend.db import Database
from backend.settings import Settings
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from bot.client import BackendClient, BackendError, BackendUnavailable, IdentityKey
from bot.server import build_embedded_app
from messages import label, render
from tests.backend.test_claims_reporting import cover_began, report
from tests.conftest import SERVICE_TOKEN
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, VALID_ID
from tests.fakes.telegram_server import FakeTelegramServer
from tests.harness import asks_for_code, texted_code, with_sessions

PHONE = "13812345678"
WEBHOOK_SECRET = "every-button-secret"
SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
LOCALES = ["zh-CN", "en"]
CHANNELS = ["webchat", "telegram"]


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
    # Telegram: was every callback query of this input answered (None: no callback, or web chat)
    callback_answered: bool | None = None
    failed_calls: list[str] = field(default_factory=list)  # Bot API calls Telegram refused
    late_backend: list[str] = field(default_factory=list)  # backend calls while a tap was unanswered

    def text(self) -> str:
        return "\n".join(a.text for a in self.answers)

    def find(self, part: str) -> tuple[Answer, Button]:
        """The button whose label contains ``part``, latest message first."""
        for answer in reversed(self.answers):
            for button in answer.buttons:
                if part in button.text:
                    return answer, button
        raise AssertionError(f"no button {part!r} in {[[b.text for b in a.buttons] for a in self.answers]}")

    def find_data(self, prefix: str) -> tuple[Answer, Button]:
        """The button whose callback data begins with ``prefix`` ("f:pick:rice": a form's pick of rice,
        whatever question stamp follows)."""
        for answer in reversed(self.answers):
            for button in answer.buttons:
                if button.data == prefix or button.data.startswith(prefix.rstrip(":") + ":"):
                    return answer, button
        raise AssertionError(f"no button {prefix!r} in {[[b.data for b in a.buttons] for a in self.answers]}")


class Chat(Protocol):
    identity: str
    locale: str
    locale_changed: bool

    async def say(self, text: str) -> Outcome: ...
    async def press(self, answer: Answer, button: Button) -> Outcome: ...
    async def press_twice(self, answer: Answer, button: Button) -> Outcome: ...
    async def press_gone(self, data: str, message_id: int) -> Outcome: ...
    async def share_contact(self, phone: str) -> Outcome: ...
    async def share_proved_contact(self, phone: str) -> Outcome: ...
    async def share_location(self, latitude: float, longitude: float) -> Outcome: ...


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
    def __init__(self, client: httpx.AsyncClient, chat_id: str, locale: str, db: Database) -> None:
        self.client, self.chat_id, self.db = client, chat_id, db
        self.identity = f"webchat:{chat_id}"
        self.locale = locale
        self.locale_changed = False

    async def _post(self, body: dict[str, Any]) -> Outcome:
        body = {**body, "language_code": self.locale, "first_name": "王大明"}
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

    async def press_twice(self, answer: Answer, button: Button) -> Outcome:
        body = {"callback_data": button.data, "message_id": answer.message_id}
        first, second = await asyncio.gather(self._post(body), self._post(body))
        return Outcome(first.answers + second.answers)

    async def press_gone(self, data: str, message_id: int) -> Outcome:
        """A button on a message the chat no longer holds (history trimmed)."""
        return await self._post({"callback_data": data, "message_id": message_id + 100_000})

    async def share_contact(self, phone: str) -> Outcome:
        return await self._post({"contact": {"phone_number": phone}})

    async def share_proved_contact(self, phone: str) -> Outcome:
        """Web chat proves the number by the code texted to it (read where the farmer reads it)."""
        shared = await self.share_contact(phone)
        if not shared.answers or not asks_for_code(shared.answers[-1].text):
            return shared
        return await self.say(await texted_code(self.db, phone))

    async def share_location(self, latitude: float, longitude: float) -> Outcome:
        return await self._post({"location": {"latitude": latitude, "longitude": longitude}})


# --- Telegram -----------------------------------------------------------------------------------------

_tap: contextvars.ContextVar[str | None] = contextvars.ContextVar("tap", default=None)


class AnswerWatch:
    """Notes every backend call the bot makes while the tap it handles is still unanswered (the ASGI call
    runs in the task that posted the update, so the tap's query id rides along in a context variable)."""

    def __init__(self, server: FakeTelegramServer, backend: BackendClient) -> None:
        self.server = server
        self.late: dict[str, list[str]] = {}
        send = backend.transport.send

        async def watched(method: str, path: str, **kwargs: Any) -> Any:
            query = _tap.get()
            if query is not None and not self.answered(query):
                self.late.setdefault(query, []).append(f"{method} {path}")
            return await send(method, path, **kwargs)

        backend.transport.send = watched  # type: ignore[method-assign]

    def answered(self, query_id: str) -> int:
        return sum(
            1
            for call in self.server.calls_to("answerCallbackQuery")
            if call.ok and str(call.params.get("callback_query_id")) == query_id
        )


class TelegramChat:
    def __init__(
        self,
        client: httpx.AsyncClient,
        server: FakeTelegramServer,
        watch: AnswerWatch,
        backend: BackendClient,
        user_id: int,
        locale: str,
    ) -> None:
        self.client, self.server, self.watch, self.backend = client, server, watch, backend
        self.user_id = user_id
        self.language_code = "zh-hans" if locale == "zh-CN" else "en"
        self.identity = f"telegram:{user_id}"
        self.locale = locale
        self.locale_changed = False

    def _who(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "first_name": "王大明", "language_code": self.language_code}

    async def _post(self, update: dict[str, Any]) -> None:
        query = update.get("callback_query")
        _tap.set(str(query["id"]) if query else None)
        response = await self.client.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: WEBHOOK_SECRET})
        assert response.status_code == 200, response.text

    async def _feed(self, *updates: dict[str, Any]) -> Outcome:
        seen = len(self.server.calls)
        prepared = [self.server._prepare_update(u) for u in updates]
        if any("callback_query" in u for u in prepared):
            # A tap after the identity cache expired: a handler that looked the user up before answering
            # the tap would show here.
            self.backend.identities.drop(IdentityKey("telegram", str(self.user_id)))
        await asyncio.gather(*(self._post(u) for u in prepared))
        calls = self.server.calls[seen:]
        answers = []
        for call in calls:
            if not call.ok or call.method not in ("sendMessage", "editMessageText", "sendDocument"):
                continue
            if call.params.get("chat_id") != self.user_id:
                continue
            markup = call.params.get("reply_markup") or {}
            text = call.params.get("text") or call.params.get("caption") or ""
            result = call.result
            message_id = result["message_id"] if isinstance(result, dict) else 0
            answers.append(
                Answer(
                    message_id, text, _inline(markup.get("inline_keyboard")) + _keys(markup.get("keyboard"))
                )
            )
        queries = [str(u["callback_query"]["id"]) for u in prepared if "callback_query" in u]
        return Outcome(
            answers,
            all(self.watch.answered(q) == 1 for q in queries) if queries else None,
            [f"{c.method}: {c.description}" for c in calls if not c.ok],
            [path for q in queries for path in self.watch.late.get(q, [])],
        )

    def _tap(self, data: str, message_id: int) -> dict[str, Any]:
        return self.server.callback_query(self.user_id, data, message_id, **self._who())

    async def say(self, text: str) -> Outcome:
        return await self._feed(self.server.user_message(self.user_id, text, **self._who()))

    async def press(self, answer: Answer, button: Button) -> Outcome:
        return await self._feed(self._tap(button.data, answer.message_id))

    async def press_twice(self, answer: Answer, button: Button) -> Outcome:
        return await self._feed(
            self._tap(button.data, answer.message_id), self._tap(button.data, answer.message_id)
        )

    async def press_gone(self, data: str, message_id: int) -> Outcome:
        """Telegram sends a message older than 48 hours as an InaccessibleMessage: chat, id, date 0."""
        update = self._tap(data, message_id)
        update["callback_query"]["message"] = {
            "chat": {"id": self.user_id, "type": "private"},
            "message_id": message_id,
            "date": 0,
        }
        return await self._feed(update)

    async def share_contact(self, phone: str) -> Outcome:
        return await self._feed(self.server.contact_message(self.user_id, phone, **self._who()))

    async def share_proved_contact(self, phone: str) -> Outcome:
        return await self.share_contact(phone)  # Telegram's contact button proves the number

    async def share_location(self, latitude: float, longitude: float) -> Outcome:
        update = self.server.user_message(self.user_id, "-", **self._who())
        del update["message"]["text"]
        update["message"]["location"] = {"latitude": latitude, "longitude": longitude}
        return await self._feed(update)


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(rate_limits=False) as server:
        yield server


@pytest.fixture
async def both_app(settings: Settings, db: Database, telegram: FakeTelegramServer) -> AsyncIterator[Any]:
    """The embedded app with web chat and a Telegram webhook (no background tasks)."""
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
    app.state.answer_watch = AnswerWatch(telegram, app.state.bot_runtime.backend)
    yield app
    await app.state.bot_runtime.close()


@pytest.fixture
async def client(both_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=both_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield with_sessions(http)  # each web chat signed in, as its browser would be (tests/harness.py)


@pytest.fixture
def opener(
    client: httpx.AsyncClient, telegram: FakeTelegramServer, both_app: Any, db: Database
) -> Callable[..., Chat]:
    user_ids = iter(range(7_000_001, 8_000_000))

    def open_chat(channel: str, locale: str) -> Chat:
        if channel == "webchat":
            return WebChat(client, f"btn-{secrets.token_hex(4)}", locale, db)
        runtime = both_app.state.bot_runtime
        return TelegramChat(
            client, telegram, both_app.state.answer_watch, runtime.backend, next(user_ids), locale
        )

    return open_chat


# --- what counts as a failure -------------------------------------------------------------------------


def failure_texts(locale: str) -> dict[str, str]:
    """Texts a press must not get: the error handler's, the fallbacks', a refusal without an explanation
    of its own, "use the buttons" after using one, and, for a button just shown, "no longer active"."""
    return {
        "error": render("common/error", locale),
        "service_unavailable": render("common/service_unavailable", locale),
        "unknown_input": render("start/unknown_input", locale),
        "submit_failed": label("enroll_errors.submit_failed", locale),
        "use_buttons": label("enroll_errors.use_buttons", locale),
        "stale_choice": label("enroll_errors.stale_choice", locale),
        "stale_button": render("start/stale_button", locale),
        "old_button": label("enroll_errors.old_button", locale),
        "already_filling": label("enroll.already_filling", locale),
    }


# A button pressed again, on a message that is gone, may well be stale: saying so is the clear answer.
STALE = ("stale_button", "old_button", "already_filling")


def problems_of(outcome: Outcome, locale: str, *, allowed: tuple[str, ...] = ()) -> list[str]:
    found: list[str] = []
    if outcome.callback_answered is False:
        found.append("callback not answered exactly once")
    found += [f"Telegram refused {call}" for call in outcome.failed_calls]
    found += [f"backend called before the tap was answered: {call}" for call in outcome.late_backend]
    if not any(a.text.strip() for a in outcome.answers):
        found.append("no reply")
    for name, text in failure_texts(locale).items():
        if name not in allowed and any(text.strip() in a.text for a in outcome.answers):
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


# --- the crawl ----------------------------------------------------------------------------------------

Begin = Callable[[], Awaitable[tuple[Chat, Outcome]]]


async def crawl(begin: Begin) -> list[str]:
    """Press everything two levels deep, each path from a fresh /start; a line per problem."""
    report: list[str] = []
    chat, top = await begin()
    for i, j, first in pressable(top):
        chat, top = await begin()
        level1 = await _press(chat, top, i, j, f"[{first.text}]", report)
        for n, (k, m, second) in enumerate(pressable(level1)):
            if n:  # replay the path: every second-level press starts from the same state
                chat, top = await begin()
                level1 = await press_any(chat, top.answers[i], top.answers[i].buttons[j])
            if len(level1.answers) <= k or len(level1.answers[k].buttons) <= m:
                report.append(f"{chat.identity} [{first.text}] [{second.text}]: answer changed on replay")
                continue
            await _press(chat, level1, k, m, f"[{first.text}] [{second.text}]", report)
    return report


async def _press(chat: Chat, outcome: Outcome, i: int, j: int, where: str, report: list[str]) -> Outcome:
    """Press, check, then press the same button again on a message that is gone."""
    answer = outcome.answers[i]
    button = answer.buttons[j]
    pressed = await press_any(chat, answer, button)
    here = f"{chat.identity} {chat.locale} {where}"
    report += [f"{here}: {p}" for p in problems_of(pressed, chat.locale)]
    if button.data:
        again = await chat.press_gone(button.data, answer.message_id)
        report += [f"{here} again, message gone: {p}" for p in problems_of(again, chat.locale, allowed=STALE)]
    return pressed


def new_user(open_chat: Callable[..., Chat], channel: str, locale: str) -> Begin:
    """A new user per path: binding the phone or choosing a language changes what the next /start offers."""

    async def begin() -> tuple[Chat, Outcome]:
        chat = open_chat(channel, locale)
        return chat, await chat.say("/start")

    return begin


async def fresh_start(chat: Chat) -> Outcome:
    """/start; a draft the last path left is discarded, so every path starts from the same menu."""
    outcome = await chat.say("/start")
    for answer in outcome.answers:
        for button in answer.buttons:
            if button.data.startswith("f:discard:"):
                await chat.press(answer, button)
                return await chat.say("/start")
    return outcome


def insured_user(chat: Chat) -> Begin:
    """One insured user for every path: a fresh /start, the language chosen again if the last path
    changed it."""

    async def begin() -> tuple[Chat, Outcome]:
        if chat.locale_changed:
            choice = (await chat.say("/language")).answers[-1]
            await chat.press(choice, next(b for b in choice.buttons if b.data == f"lang:{chat.locale}"))
            chat.locale_changed = False
        return chat, await fresh_start(chat)

    return begin


@dataclass
class Insured:
    application_id: int
    policy: dict[str, Any]
    claim: dict[str, Any]


async def make_insured(chat: Chat, client: httpx.AsyncClient, db: Database) -> Insured:
    """The chat's user holds a paid rice policy and has reported one loss on it."""
    await chat.say("/start")
    await chat.share_proved_contact(PHONE)
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
    application_id = application.json()["id"]
    paid = await client.post(
        f"/api/bot/applications/{application_id}/payments", headers=headers, json={"provider": "demo"}
    )
    assert paid.status_code == 200, paid.text
    policy = paid.json()["policy"]
    await cover_began(db, timedelta(days=5))
    claim = await client.post("/api/bot/claims", headers=headers, json=report(policy["id"]))
    assert claim.status_code == 200, claim.text
    return Insured(application_id, policy, claim.json())


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
async def test_every_button_of_a_new_user(channel: str, locale: str, opener: Callable[..., Chat]) -> None:
    problems = await crawl(new_user(opener, channel, locale))
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
async def test_every_button_of_an_insured_user(
    channel: str, locale: str, opener: Callable[..., Chat], client: httpx.AsyncClient, db: Database
) -> None:
    chat = opener(channel, locale)
    await make_insured(chat, client, db)
    problems = await crawl(insured_user(chat))
    assert problems == [], "\n".join(problems)


# --- stale buttons ------------------------------------------------------------------------------------


async def _farmer_form(chat: Chat) -> tuple[Outcome, Outcome]:
    """/start, enroll, farmer: (the choice of kind, the first question)."""
    top = await chat.say("/start")
    kinds = await chat.press(*top.find_data("m:enroll"))
    first = await chat.press(*kinds.find_data("en:farmer"))
    return kinds, first


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_button_of_an_earlier_question_says_so_and_asks_the_current_one(
    channel: str, locale: str, opener: Callable[..., Chat]
) -> None:
    chat = opener(channel, locale)
    _kinds, products = await _farmer_form(chat)
    asked = await chat.press(*products.find_data("f:pick:rice"))
    assert label("enroll_ask.insured_type", locale) in asked.answers[-1].text
    again = await chat.press(*products.find_data("f:pick:corn"))  # the product question's button
    assert problems_of(again, locale, allowed=("old_button",)) == []
    assert label("enroll_errors.old_button", locale) in again.answers[0].text
    assert label("enroll_ask.insured_type", locale) in again.answers[-1].text  # asked again, not answered
    name = await chat.press(*again.find_data("f:pick:farmer"))
    assert label("enroll_ask.name", locale) in name.answers[-1].text
    # The summary at the end would show corn if the old tap had been taken: the product stays rice.
    back = await chat.press(*name.find_data("f:back"))
    back = await chat.press(*back.find_data("f:back"))
    assert label("enroll_ask.product", locale) in back.answers[-1].text


@pytest.mark.parametrize("locale", LOCALES)
async def test_form_buttons_shown_before_buttons_were_stamped_still_get_a_clear_answer(
    locale: str, opener: Callable[..., Chat]
) -> None:
    """A form half-filled before this release has buttons without a stamp ("f:pick:rice"): a pick says
    it belongs to an earlier question and asks the current one; the draft reminder's buttons still work."""
    chat = opener("webchat", locale)
    _kinds, products = await _farmer_form(chat)
    old = await chat.press_gone("f:pick:rice", products.answers[-1].message_id)
    assert problems_of(old, locale, allowed=("old_button",)) == []
    assert label("enroll_errors.old_button", locale) in old.answers[0].text
    assert label("enroll_ask.product", locale) in old.answers[-1].text
    top = await chat.say("/start")
    assert any(b.data.startswith("f:resume:") for a in top.answers for b in a.buttons)
    resumed = await chat.press_gone("f:resume:", top.answers[-1].message_id)
    assert label("enroll_ask.product", locale) in resumed.answers[-1].text
    assert problems_of(resumed, locale) == []


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_form_button_of_an_unknown_action_keeps_the_form(
    channel: str, opener: Callable[..., Chat]
) -> None:
    """Any form action but pick, back, skip and the draft buttons was taken for "cancel": a button of a
    later release, or tampered data, threw the form away."""
    chat = opener(channel, "zh-CN")
    _kinds, products = await _farmer_form(chat)
    asked = await chat.press(*products.find_data("f:pick:rice"))
    answer, back = asked.find_data("f:back")
    unknown = await chat.press(answer, Button(text="?", data=back.data.replace("f:back:", "f:zoom:")))
    assert problems_of(unknown, "zh-CN", allowed=("old_button",)) == []
    assert label("enroll_ask.insured_type", "zh-CN") in unknown.answers[-1].text
    name = await chat.press(*unknown.find_data("f:pick:farmer"))
    assert label("enroll_ask.name", "zh-CN") in name.answers[-1].text


async def _walk_to_the_quote(chat: Chat, locale: str) -> Outcome:
    _kinds, products = await _farmer_form(chat)
    step = await chat.press(*products.find_data("f:pick:rice"))
    step = await chat.press(*step.find_data("f:pick:farmer"))
    await chat.say("李四")
    await chat.say(VALID_ID)
    await chat.share_proved_contact(PHONE)
    step = await chat.say("10")
    for code in ("440000000000", "441900000000", DONGGUAN_TOWNSHIP):  # 广东省 东莞市 东城街道
        while not any(b.data.startswith(f"f:pick:{code}") for a in step.answers for b in a.buttons):
            step = await chat.press(*step.find_data("f:pick:+more"))
        step = await chat.press(*step.find_data(f"f:pick:{code}"))
    step = await chat.press(*step.find_data("f:skip"))  # no GPS
    step = await chat.press(*step.find("农业银行" if locale == "zh-CN" else "Agricultural Bank"))
    return await chat.say("6228480012345678901")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
async def test_r_enr_4_a_double_tap_on_the_quote_does_not_agree_to_the_disclosure(
    channel: str, locale: str, opener: Callable[..., Chat]
) -> None:
    """The quote's "continue" and the disclosure's "I have read and agree" were the same button value:
    the second tap of a double tap agreed to a disclosure the farmer had not seen."""
    chat = opener(channel, locale)
    quote = await _walk_to_the_quote(chat, locale)
    assert label("enroll.continue", locale) in [b.text for b in quote.answers[-1].buttons]
    both = await chat.press_twice(*quote.find(label("enroll.continue", locale)))
    assert problems_of(both, locale, allowed=("old_button",)) == []
    assert label("enroll_errors.old_button", locale) in both.text()
    assert label("enroll.agree", locale) in [b.text for b in both.answers[-1].buttons]  # still to be read
    assert label("enroll_ask.signer", locale) not in both.text()


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_button_that_began_a_form_continues_it(
    channel: str, locale: str, opener: Callable[..., Chat]
) -> None:
    """A double tap of "farmer", or a tap on the old choice after answering, began the form again and
    parked the first copy behind it: two drafts of one form."""
    chat = opener(channel, locale)
    top = await chat.say("/start")
    kinds = await chat.press(*top.find_data("m:enroll"))
    both = await chat.press_twice(*kinds.find_data("en:farmer"))
    assert problems_of(both, locale, allowed=("already_filling",)) == []
    assert both.text().count(label("enroll_ask.product", locale)) == 2  # asked, then asked again
    assert label("enroll.already_filling", locale) in both.text()
    asked = await chat.press(*both.find_data("f:pick:rice"))
    assert label("enroll_ask.insured_type", locale) in asked.answers[-1].text
    again = await chat.press(*kinds.find_data("en:farmer"))
    assert label("enroll.already_filling", locale) in again.answers[0].text
    assert label("enroll_ask.insured_type", locale) in again.answers[-1].text  # where the user was
    cancelled = await chat.press(*again.find_data("f:cancel"))
    # One form was under way, and it is gone: no second copy waits as a draft.
    assert not any(b.data.startswith("f:resume:") for a in cancelled.answers for b in a.buttons)
    assert not any(
        b.data.startswith("f:resume:") for a in (await chat.say("/start")).answers for b in a.buttons
    )


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
async def test_old_notice_buttons_say_they_no_longer_apply(
    channel: str, locale: str, opener: Callable[..., Chat], client: httpx.AsyncClient, db: Database
) -> None:
    """The claim was reported and nothing more: a notice's "object", "send disposal proof" or "send the
    documents" began a form that the backend refused only after the user had typed or sent everything;
    "confirm" said only that there was nothing to confirm; "pay" on a paid application said the premium
    had just been received and a PDF would follow."""
    chat = opener(channel, locale)
    insured = await make_insured(chat, client, db)
    claim = insured.claim
    for verb in ("object", "disposal", "documents", "confirm"):
        outcome = await chat.press_gone(claim_button(verb, claim["id"], 160000), 2)
        assert problems_of(outcome, locale) == [], verb
        gone = outcome.answers[0].text
        assert gone == render("claims/action_gone", locale, claim=claim), verb
        detail = outcome.answers[-1]
        assert claim["number"] in detail.text and any(
            b.data.startswith("clm:photos:") for b in detail.buttons
        )
    paid = await chat.press_gone(pay_button(insured.application_id), 3)
    assert problems_of(paid, locale) == []
    assert paid.text() == render("enroll/already_paid", locale, policy=insured.policy)
    missing = await chat.press_gone(claim_button("view", claim["id"] + 99), 2)
    assert problems_of(missing, locale) == []
    assert render("claims/not_found", locale) in missing.text()
    missing = await chat.press_gone(pay_button(insured.application_id + 99), 3)
    assert problems_of(missing, locale) == []
    assert render("enroll/application_not_found", locale) in missing.text()


# --- failures -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_tap_whose_handler_fails_still_gets_an_answer(
    channel: str, opener: Callable[..., Chat], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error handler answered the tap a second time, which Telegram refuses, and so never said sorry;
    and it said nothing at all when the tapped message was gone."""
    chat = opener(channel, "zh-CN")
    top = await chat.say("/start")

    async def broken(self: BackendClient, key: IdentityKey) -> list[Any]:
        raise RuntimeError("a bug")

    async def down(self: BackendClient, key: IdentityKey) -> list[Any]:
        raise BackendUnavailable("503 from /api/bot/claims")

    monkeypatch.setattr(BackendClient, "my_claims", broken)
    sorry = render("common/error", "zh-CN")
    pressed = await chat.press(*top.find_data("m:claims"))
    assert problems_of(pressed, "zh-CN", allowed=("error",)) == [] and pressed.text() == sorry
    gone = await chat.press_gone("m:claims", 1)
    assert problems_of(gone, "zh-CN", allowed=("error",)) == [] and gone.text() == sorry
    monkeypatch.setattr(BackendClient, "my_claims", down)
    busy = await chat.press(*top.find_data("m:claims"))
    assert busy.text() == render("common/service_unavailable", "zh-CN")
    assert problems_of(busy, "zh-CN", allowed=("service_unavailable",)) == []


async def test_a_tap_telegram_no_longer_takes_an_answer_for_still_gets_its_reply(
    opener: Callable[..., Chat], telegram: FakeTelegramServer
) -> None:
    """Updates queued while the bot was down arrive too late to answer: the answer failed, the handler
    with it, and the user got "something went wrong" instead of what they asked for."""
    chat = opener("telegram", "zh-CN")
    top = await chat.say("/start")
    telegram.fail_next(
        "answerCallbackQuery",
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )
    pressed = await chat.press(*top.find_data("m:help"))
    assert pressed.text() == render("start/help", "zh-CN")
    assert len(pressed.failed_calls) == 1  # the refused answer, and nothing else


async def test_a_refused_submit_keeps_its_confirm_button_good(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claim form stays after a refused report so the user can try "confirm" again: the summary's
    button still answers the summary (a stamp is a question, and submitting asks none)."""
    from tests.bot.test_claims_chat import _report_rice_loss
    from tests.enroll_helpers import insured_in_chat
    from tests.harness import ChatUser

    grower = ChatUser(chat_client, "grower-retry", first_name="李四")
    await insured_in_chat(grower, api, service_headers)
    await cover_began(db, timedelta(days=5))
    real = BackendClient.report_claim
    refusals = [BackendError(422, "lost_more_than_insured", "")]

    async def once_refused(self: BackendClient, key: IdentityKey, body: Any) -> Any:
        if refusals:
            raise refusals.pop()
        return await real(self, key, body)

    monkeypatch.setattr(BackendClient, "report_claim", once_refused)
    refused = await _report_rice_loss(grower)
    assert "报案成功" not in refused[-1].text
    summary = [r for r in (await grower.history()) if any("确认提交" in t for t in r.button_texts())][-1:]
    replies = await grower.tap("确认提交", summary)
    assert "报案成功" in replies[-1].text

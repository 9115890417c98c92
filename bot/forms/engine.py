"""The form engine. A flow is a list of steps; the engine asks each step that applies, keeps the answers
in the FSM data, and on bad input answers with the step's specific error and asks again.

FSM data layout (one key for the form being filled, so other features' data never collides)::

    {"form": {"flow": "farmer", "step": "id_number", "answers": {...}, "history": [...],
              "cache": {...}, "key": "<idempotency key>"},
     "parked": {"farmer": {...}}}

A form left for another feature (the user typed "我要报案" half-way through an enrollment) is parked, not
lost: the state is ``filling`` while a form is being filled and ``parked`` while only parked drafts remain,
so /start can offer "continue" from the state it already has, without reading the data.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from aiogram import Bot
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.client import BackendClient, IdentityKey
from messages import label, labels_for, render


class FormState(StatesGroup):
    filling = State()
    parked = State()


class FormAction(CallbackData, prefix="f"):
    action: str  # pick | back | cancel | skip | resume | restart | discard
    value: str = ""
    # The question the button was shown with (``Form.stamp``; empty on the draft reminder's buttons): a tap
    # on an earlier question's button, or the second of a double tap, must not answer the question now.
    at: str = ""

    @classmethod
    def unpack(cls, value: str) -> FormAction:
        """Buttons shown before buttons were stamped carry two fields: they read as stamped for no
        question, so a pick is refused as an earlier question's and "continue"/"discard" still work."""
        if value.count(cls.__separator__) == 2:
            value += cls.__separator__
        return super().unpack(value)


STAMP_KEY = 4  # characters of the form's key in a button's stamp: Telegram allows 64 bytes of callback data


class Invalid(Exception):
    """Bad input for the current step: ``code`` names the message in ``enroll_errors`` labels."""

    def __init__(self, code: str, **detail: Any) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Media:
    """A photo or video the user sent: the file to fetch, what it is, and its album (Telegram media
    group: several photos sent together arrive as one message each, with the same ``album``)."""

    file_id: str
    content_type: str = ""  # "" when the channel does not say (the step looks at the bytes)
    album: str | None = None


@dataclass
class Choice:
    value: str
    label: str


@dataclass
class Form:
    flow: str
    step: str
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)
    key: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    # Counts the questions asked: a new step, or a sub-question a tap led to (the next survey question, the
    # next level of the region picker). Re-asking after bad input keeps it, so those buttons stay good.
    turn: int = 0

    @property
    def stamp(self) -> str:
        """What this form's buttons carry now: which form (a prefix of its key) and which turn."""
        return f"{self.key[:STAMP_KEY]}{self.turn:x}"

    def owns(self, stamp: str) -> bool:
        return len(stamp) > STAMP_KEY and stamp[:STAMP_KEY] == self.key[:STAMP_KEY]

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "step": self.step,
            "answers": self.answers,
            "history": self.history,
            "cache": self.cache,
            "key": self.key,
            "turn": self.turn,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Form:
        return cls(**data)


@dataclass
class Io:
    """What a step needs to talk: the chat, the language, the backend acting for this user."""

    message: Message
    bot: Bot
    locale: str
    backend: BackendClient
    identity: IdentityKey
    chat_id: int
    state: FSMContext | None = None
    # The runner of every flow, for a submit that must send the user back to a question.
    runner: FormRunner | None = None
    # The form being asked (set by the runner): its buttons are stamped with its turn.
    form: Form | None = None

    async def say(
        self,
        text: str,
        markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None = None,
    ) -> Message:
        return await self.bot.send_message(self.chat_id, text, reply_markup=markup)

    def t(self, key: str, **ctx: Any) -> str:
        return render(key, self.locale, **ctx)

    def data(self, action: str, value: str = "") -> str:
        """A form button's callback data, stamped with the question being asked."""
        at = self.form.stamp if self.form is not None else ""
        return FormAction(action=action, value=value, at=at).pack()

    def button(self, text: str, action: str, value: str = "") -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=self.data(action, value))

    def label(self, key: str, **ctx: Any) -> str:
        return label(key, self.locale, **ctx)

    def problem(self, code: str, detail: dict[str, Any] | None = None) -> str:
        return problem_text(self.locale, code, detail)

    async def close_form(self) -> None:
        """The form is done (submitted or refused for good); parked drafts stay."""
        assert self.state is not None
        await close_form(self.state)


def draft_reminder(locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """ "You have an unfinished form": one tap to continue it, one to discard it."""
    row = [
        InlineKeyboardButton(
            text=label("enroll.resume", locale), callback_data=FormAction(action="resume").pack()
        ),
        InlineKeyboardButton(
            text=label("enroll.discard", locale), callback_data=FormAction(action="discard").pack()
        ),
    ]
    return render("start/draft_reminder", locale), InlineKeyboardMarkup(inline_keyboard=[row])


async def close_form(state: FSMContext) -> bool:
    """Drop the form being filled and anything else in the conversation's state (a phone binding, say),
    keeping parked drafts. True when a draft remains."""
    parked = (await state.get_data()).get("parked") or {}
    if not parked:
        await state.clear()
        return False
    await state.set_data({"parked": parked})
    await state.set_state(FormState.parked)
    return True


def problem_text(locale: str, code: str, detail: dict[str, Any] | None = None) -> str:
    """The user's explanation of a backend refusal; a code without its own text gets the general one."""
    if code in labels_for("enroll_errors", locale):
        return label(f"enroll_errors.{code}", locale, **(detail or {}))
    return label("enroll_errors.submit_failed", locale)


class Step:
    """A question. Subclasses override ``ask`` and the input handlers they accept."""

    name: str = ""
    optional: bool = False
    # The files this question takes ("photo", "video"): a channel that stores what users upload (web
    # chat) keeps a file only while the current question takes its kind (``FormRunner.media_wanted``).
    media: frozenset[str] = frozenset()

    def applies(self, form: Form) -> bool:
        return True

    async def ask(self, io: Io, form: Form) -> None:
        raise NotImplementedError

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        raise Invalid("use_buttons")

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        raise Invalid("use_buttons")

    async def on_contact(self, io: Io, form: Form, phone: str) -> Any:
        raise Invalid("unexpected_contact")

    async def on_location(self, io: Io, form: Form, latitude: float, longitude: float) -> Any:
        raise Invalid("unexpected_location")

    async def on_photo(self, io: Io, form: Form, media: Media) -> Any:
        raise Invalid("unexpected_photo")

    async def on_back(self, io: Io, form: Form) -> bool:
        """Handle "back" inside the step (a sub-question); False lets the form go to the previous step."""
        return False


class Stay:
    """Returned by a step that handled the input but still needs more (e.g. a page turn, more ear tags)."""


STAY = Stay()


def nav_row(io: Io, *, back: bool = True, skip: bool = False) -> list[InlineKeyboardButton]:
    row = []
    if back:
        row.append(io.button(io.label("enroll.back"), "back"))
    if skip:
        row.append(io.button(io.label("enroll.skip"), "skip"))
    row.append(io.button(io.label("enroll.cancel"), "cancel"))
    return row


def choice_keyboard(
    io: Io,
    choices: Sequence[Choice],
    *,
    columns: int = 2,
    back: bool = True,
    skip: bool = False,
    extra_rows: Sequence[list[InlineKeyboardButton]] = (),
) -> InlineKeyboardMarkup:
    buttons = [io.button(c.label, "pick", c.value) for c in choices]
    rows = [buttons[i : i + columns] for i in range(0, len(buttons), columns)]
    rows.extend(extra_rows)
    rows.append(nav_row(io, back=back, skip=skip))
    return InlineKeyboardMarkup(inline_keyboard=rows)


Submit = Callable[[Io, Form], Awaitable[None]]
Prepare = Callable[[Io, Form], Awaitable[None]]


@dataclass
class Flow:
    name: str
    steps: list[Step]
    submit: Submit  # called after the last step; it answers the user itself

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def next_after(self, form: Form, name: str | None) -> Step | None:
        names = [s.name for s in self.steps]
        start = 0 if name is None else names.index(name) + 1
        for step in self.steps[start:]:
            if step.applies(form):
                return step
        return None


class FormRunner:
    """Moves a form through its flow. One runner holds every feature's flows: it is built in
    ``bot/dispatcher.py`` and reaches the handlers as the ``runner`` workflow argument, so features never
    import each other to start or continue a form."""

    def __init__(self, flows: dict[str, Flow]) -> None:
        self.flows = flows

    async def media_wanted(self, state: FSMContext) -> frozenset[str]:
        """The kinds of file the conversation's current question takes: none unless a form is being
        filled and its current step takes files (a photo step, a photos-and-videos step)."""
        if await state.get_state() != FormState.filling.state:
            return frozenset()
        raw = (await state.get_data()).get("form") or {}
        flow = self.flows.get(str(raw.get("flow", "")))
        if flow is None:
            return frozenset()
        try:
            return flow.step(str(raw.get("step", ""))).media
        except KeyError:  # a step renamed since the form was saved
            return frozenset()

    async def load(self, state: FSMContext) -> Form | None:
        data = await state.get_data()
        raw = data.get("form")
        return Form.from_json(raw) if raw else None

    async def save(self, state: FSMContext, form: Form) -> None:
        await state.set_state(FormState.filling)
        await state.update_data(form=form.to_json())

    async def park(self, state: FSMContext) -> None:
        """Put the form being filled aside (it can be continued later); nothing is lost."""
        data = await state.get_data()
        current = data.get("form")
        parked: dict[str, Any] = dict(data.get("parked") or {})
        if current:
            parked.pop(current["flow"], None)  # re-inserted last: "continue" takes the latest first
            parked[current["flow"]] = current
        await state.set_data({"parked": parked} if parked else {})
        await state.set_state(FormState.parked if parked else None)

    async def resume(self, io: Io, state: FSMContext) -> bool:
        """Ask the current question again, or bring back the latest parked draft. False when none."""
        data = await state.get_data()
        if data.get("form"):
            await self.ask_current(io, state, Form.from_json(data["form"]))
            return True
        parked: dict[str, Any] = dict(data.get("parked") or {})
        if not parked:
            return False
        await self._bring_back(io, state, next(reversed(parked)), parked)
        return True

    async def _bring_back(self, io: Io, state: FSMContext, flow: str, parked: dict[str, Any]) -> None:
        form = Form.from_json(parked.pop(flow))
        await state.set_data({"form": form.to_json(), "parked": parked})
        await state.set_state(FormState.filling)
        await self.ask_current(io, state, form)

    async def begin(
        self,
        io: Io,
        state: FSMContext,
        flow_name: str,
        *,
        prepare: Prepare | None = None,
        intro: str | None = None,
        **preset: Any,
    ) -> None:
        """Begin a form, saying ``intro`` first; a form already under way is carried on instead."""
        if await self._under_way(io, state, flow_name, preset):
            return
        if intro is not None:
            await io.say(intro)
        await self.park(state)  # a form already under way is kept as a draft, not overwritten
        flow = self.flows[flow_name]
        form = Form(flow=flow_name, step="", answers=dict(preset))
        io.form = form
        if prepare is not None:
            await prepare(io, form)
        first = flow.next_after(form, None)
        if first is None:  # everything was known up front (e.g. a weather-index policy: nothing to ask)
            await self.save(state, form)
            await self._submit(io, state, flow, form)
            return
        form.step = first.name
        await self._save_and_ask(io, state, form, first)

    async def _under_way(self, io: Io, state: FSMContext, flow_name: str, preset: dict[str, Any]) -> bool:
        """The same form is already being filled, or waits as a draft (the button that began it tapped
        twice, or again on an old message; the same menu entry chosen again): carry on where the user
        was. Beginning again parked the first copy behind a second one, and a double tap lost nothing
        but left two drafts of one form. True when it did."""
        data = await state.get_data()
        current = data.get("form")
        parked: dict[str, Any] = dict(data.get("parked") or {})
        if _same_form(current, flow_name, preset):
            await io.say(io.label("enroll.already_filling"))
            await self.ask_current(io, state, Form.from_json(current))
            return True
        if not _same_form(parked.get(flow_name), flow_name, preset):
            return False
        await io.say(io.label("enroll.already_filling"))
        await self.park(state)  # the form of another kind that was under way waits its turn instead
        parked = dict((await state.get_data()).get("parked") or {})
        await self._bring_back(io, state, flow_name, parked)
        return True

    async def _submit(self, io: Io, state: FSMContext, flow: Flow, form: Form) -> None:
        await flow.submit(io, form)
        if await state.get_state() == FormState.parked.state:
            # Done with this one, and another was left half-way: offer to carry on with it.
            await io.say(*draft_reminder(io.locale))

    async def ask_current(self, io: Io, state: FSMContext, form: Form) -> None:
        """Ask the current question again (a returning user, a refused skip); keep what asking cached.
        The turn stays: the buttons the question was first shown with still answer it."""
        io.form = form
        saved = _snapshot(form)
        await self.flows[form.flow].step(form.step).ask(io, form)
        if _snapshot(form) != saved:
            await self.save(state, form)

    async def handle(
        self,
        io: Io,
        state: FSMContext,
        form: Form,
        outcome: Callable[[Step], Awaitable[Any]],
        *,
        tap: bool = False,
    ) -> None:
        """Feed one input to the current step; advance on an answer, re-ask on bad input. ``tap``: the
        input is a button of this question, so whatever it leads to is a new turn (a step that asks a
        sub-question itself, like the next survey question, stamps it with the new turn)."""
        io.form = form
        flow = self.flows[form.flow]
        step = flow.step(form.step)
        before = form.turn
        if tap:
            form.turn += 1
        try:
            value = await outcome(step)
        except Invalid as problem:
            form.turn = before  # nothing was answered: the question's buttons still answer it
            await io.say(io.label(f"enroll_errors.{problem.code}", **problem.detail))
            await step.ask(io, form)
            await self.save(state, form)
            return
        if isinstance(value, Stay):
            await self.save(state, form)
            return
        form.answers[step.name] = value
        form.turn = before  # the next question is a new turn; a submit that is refused keeps this one
        await self.advance(io, state, form)

    async def advance(self, io: Io, state: FSMContext, form: Form) -> None:
        io.form = form
        flow = self.flows[form.flow]
        following = flow.next_after(form, form.step)
        form.history.append(form.step)
        if following is None:
            # The last answer: submitting asks nothing new, and a submit the backend refuses leaves the
            # summary where it was, its "confirm" still good for another try.
            await self.save(state, form)
            await self._submit(io, state, flow, form)
            return
        form.turn += 1
        form.step = following.name
        await self._save_and_ask(io, state, form, following)

    async def skip(self, io: Io, state: FSMContext, form: Form) -> None:
        io.form = form
        step = self.flows[form.flow].step(form.step)
        if not step.optional:
            await io.say(io.label("enroll_errors.not_optional"))
            await self.ask_current(io, state, form)
            return
        form.answers[step.name] = None
        await self.advance(io, state, form)

    async def back(self, io: Io, state: FSMContext, form: Form) -> None:
        io.form = form
        form.turn += 1  # whatever comes is another question (a step's own sub-question included)
        if await self.flows[form.flow].step(form.step).on_back(io, form):
            await self.save(state, form)
            return
        if not form.history:
            await self.save(state, form)
            await self.ask_current(io, state, form)
            return
        form.step = form.history.pop()
        await self._save_and_ask(io, state, form, self.flows[form.flow].step(form.step))

    async def _save_and_ask(self, io: Io, state: FSMContext, form: Form, step: Step) -> None:
        """Save, ask, and save again if asking changed the form: a step caches what it fetched to ask
        (the product's unit, the user's policies). A storage that serialises (Redis, the database)
        keeps only what was saved; memory storage kept the same dict, which hid this."""
        io.form = form
        await self.save(state, form)
        saved = _snapshot(form)
        await step.ask(io, form)
        if _snapshot(form) != saved:
            await self.save(state, form)


def _same_form(raw: Any, flow: str, preset: dict[str, Any]) -> TypeGuard[dict[str, Any]]:
    """A stored form of this flow begun with these preset answers (the same policy, the same claim)."""
    if not isinstance(raw, dict) or raw.get("flow") != flow:
        return False
    answers = raw.get("answers") or {}
    return all(answers.get(k) == v for k, v in preset.items())


def _snapshot(form: Form) -> str:
    return json.dumps(form.to_json(), sort_keys=True, default=str)

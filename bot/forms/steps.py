"""Reusable question kinds: typed text, buttons, shared contact, region picker, GPS, photo, ear tags."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup

from backend.enrollment import validation
from backend.refusals import refusal_message
from bot.client import BackendError
from bot.context import WEBCHAT
from bot.forms.engine import (
    STAY,
    Choice,
    Form,
    Invalid,
    Io,
    Media,
    Step,
    choice_keyboard,
    nav_row,
)

Parser = Callable[[str, Form], Any]
Condition = Callable[[Form], bool]
ChoiceSource = Callable[[Io, Form], Awaitable[Sequence[Choice]]]
REGION_PAGE = 12


def validated(check: Callable[..., Any], raw: str, *args: Any) -> Any:
    """Run a backend validator (pure, shared with the API contract) and turn its refusal into ``Invalid``."""
    try:
        return check(raw, *args)
    except validation.ValidationProblem as problem:
        raise Invalid(problem.code, **problem.detail) from problem


def always(_form: Form) -> bool:
    return True


class TextStep(Step):
    def __init__(self, name: str, parse: Parser, *, when: Condition = always, optional: bool = False) -> None:
        self.name, self.parse, self.when, self.optional = name, parse, when, optional

    def applies(self, form: Form) -> bool:
        return self.when(form)

    async def ask(self, io: Io, form: Form) -> None:
        markup = InlineKeyboardMarkup(inline_keyboard=[nav_row(io, skip=self.optional)])
        await io.say(io.label(f"enroll_ask.{self.name}", **_fmt(form)), markup)

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        return self.parse(text.strip(), form)


class ChoiceStep(Step):
    """Buttons; typing a button's label works too (some users type rather than tap)."""

    def __init__(
        self, name: str, choices: ChoiceSource, *, when: Condition = always, columns: int = 2
    ) -> None:
        self.name, self.choices, self.when, self.columns = name, choices, when, columns

    def applies(self, form: Form) -> bool:
        return self.when(form)

    async def ask(self, io: Io, form: Form) -> None:
        choices = await self.choices(io, form)
        await io.say(
            io.label(f"enroll_ask.{self.name}", **_fmt(form)),
            choice_keyboard(io, choices, columns=self.columns),
        )

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        if value not in {c.value for c in await self.choices(io, form)}:
            raise Invalid("stale_choice")
        return value

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        for choice in await self.choices(io, form):
            if text.strip() == choice.label:
                return choice.value
        raise Invalid("use_buttons")


def static_choices(domain_key: str, values: Sequence[str]) -> ChoiceSource:
    async def source(io: Io, _form: Form) -> Sequence[Choice]:
        return [Choice(v, io.label(f"{domain_key}_{v}")) for v in values]

    return source


class ContactStep(Step):
    """R-ENR-2 phone, the user's own. Telegram's request-contact button proves it; web chat cannot (a
    browser can send any number), so there the number, shared or typed, is proved by the SMS code
    within this question before it is bound or answered (``form.cache[name]`` holds the number waiting
    for its code)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def ask(self, io: Io, form: Form) -> None:
        pending = form.cache.get(self.name)
        if pending:
            await io.say(
                io.t("enroll/phone_code_wait", phone_masked=pending["masked"]), self._code_keyboard(io)
            )
            return
        keyboard = ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=io.label("menu.share_phone"), request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
        await io.say(io.label(f"enroll_ask.{self.name}", **_fmt(form)), keyboard)
        await io.say(io.label("enroll.nav_hint"), InlineKeyboardMarkup(inline_keyboard=[nav_row(io)]))

    async def on_contact(self, io: Io, form: Form, phone: str) -> Any:
        digits = cn_mobile_digits(phone)
        # The shared number is the user's own: bind it to their identity too (one call, this step's).
        try:
            await io.backend.bind_phone(io.identity, digits)
        except BackendError as exc:
            if exc.code != "phone_needs_code":
                raise Invalid(exc.code) from exc
            return await self._send_code(io, form, digits)
        form.cache.pop(self.name, None)
        return digits

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        if io.identity.channel != WEBCHAT:
            raise Invalid("phone_use_button")
        typed = text.strip()
        pending = form.cache.get(self.name)
        if pending and not TYPED_PHONE.fullmatch(typed):
            return await self._check_code(io, form, typed, pending["phone"])
        return await self.on_contact(io, form, typed)

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        pending = form.cache.get(self.name)
        if value != RESEND or not pending:
            raise Invalid("stale_choice")
        return await self._send_code(io, form, pending["phone"])

    async def on_back(self, io: Io, form: Form) -> bool:
        """Back from the code: ask for the number again (a mistyped number is fixed here)."""
        if form.cache.pop(self.name, None) is None:
            return False
        await self.ask(io, form)
        return True

    async def _send_code(self, io: Io, form: Form, digits: str) -> Any:
        try:
            sent = await io.backend.send_phone_code(io.identity, digits)
        except BackendError as exc:
            await io.say(refusal_message(exc.code, io.locale, exc.detail))
            await self.ask(io, form)
            return STAY
        form.cache[self.name] = {"phone": digits, "masked": sent.phone_masked}
        text = io.t("start/phone_code_sent", phone_masked=sent.phone_masked, minutes=sent.valid_minutes)
        await io.say(text, self._code_keyboard(io))
        return STAY

    async def _check_code(self, io: Io, form: Form, code: str, digits: str) -> Any:
        try:
            await io.backend.verify_phone_code(io.identity, code)
        except BackendError as exc:
            await io.say(refusal_message(exc.code, io.locale, exc.detail), self._code_keyboard(io))
            return STAY
        form.cache.pop(self.name, None)
        return digits

    def _code_keyboard(self, io: Io) -> InlineKeyboardMarkup:
        resend = io.button(io.label("menu.phone_code"), "pick", RESEND)
        return InlineKeyboardMarkup(inline_keyboard=[[resend], nav_row(io)])


RESEND = "resend_code"
# A number typed instead of shared (web chat): 11 digits with the spaces, dashes or +86 people write.
TYPED_PHONE = re.compile(r"\+?[\d\s\-()]{11,20}")


def cn_mobile_digits(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    digits = digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
    if not re.fullmatch(r"1[3-9]\d{9}", digits):
        raise Invalid("phone_not_cn_mobile")
    return digits


class RegionStep(Step):
    """County, township, village from buttons, or search by typing a name. ``target`` is the level to
    reach (4 township, 5 village); a township with no villages imported is accepted as it is."""

    def __init__(self, name: str, target: int, *, when: Condition = always) -> None:
        self.name, self.target, self.when = name, target, when

    def applies(self, form: Form) -> bool:
        return self.when(form)

    def _state(self, form: Form) -> dict[str, Any]:
        start = form.answers.get("campaign_region") or "root"
        return form.cache.setdefault(
            self.name, {"at": start, "start": start, "page": 0, "options": None, "trail": []}
        )

    async def ask(self, io: Io, form: Form) -> None:
        state = self._state(form)
        if state["options"] is None:
            state["options"] = await _children(io, state["at"])
        options = state["options"]
        page = state["page"]
        shown = options[page * REGION_PAGE : (page + 1) * REGION_PAGE]
        extra: list[list[InlineKeyboardButton]] = []
        nav: list[InlineKeyboardButton] = []
        if (page + 1) * REGION_PAGE < len(options):
            nav.append(io.button(io.label("enroll.more"), "pick", "+more"))
        if state["at"] != state["start"]:
            nav.append(io.button(io.label("enroll.up"), "pick", "+up"))
        if nav:
            extra.append(nav)
        # Search results carry their parents ("辽宁省 朝阳市 朝阳县 朝阳镇"): one a row, so they stay legible.
        choices = [Choice(o["code"], o.get("full_name") or o["name"]) for o in shown]
        columns = 1 if any("full_name" in o for o in shown) else 2
        where = " › ".join(state["trail"]) or io.label("enroll.whole_country")
        text = io.label(f"enroll_ask.{self.name}", where=where)
        await io.say(text, choice_keyboard(io, choices, columns=columns, extra_rows=extra))

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        state = self._state(form)
        if value == "+more":
            state["page"] += 1
            await self.ask(io, form)
            return STAY
        if value == "+up":
            return await self._go_up(io, form, state)
        chosen = next((o for o in state["options"] or [] if o["code"] == value), None)
        if chosen is None:
            raise Invalid("stale_choice")
        return await self._descend(io, form, state, chosen)

    async def on_back(self, io: Io, form: Form) -> bool:
        state = self._state(form)
        if state["at"] == state["start"]:
            return False
        await self._go_up(io, form, state)
        return True

    async def _go_up(self, io: Io, form: Form, state: dict[str, Any]) -> Any:
        state["trail"] = state["trail"][:-1]
        state["at"] = (await _get(io, state["at"]))["parent_code"] or "root"
        if state["at"] == "root" or (len(state["trail"]) == 0 and state["start"] != "root"):
            state["at"] = state["start"]
        state["options"], state["page"] = None, 0
        await self.ask(io, form)
        return STAY

    async def _descend(self, io: Io, form: Form, state: dict[str, Any], chosen: dict[str, Any]) -> Any:
        # A search result brings its own parents; a button from the list continues the trail walked.
        trail = [*chosen.get("path", state["trail"]), chosen["name"]]
        if chosen["level"] >= self.target:
            return {"code": chosen["code"], "name": " ".join(trail)}
        children = await _children(io, chosen["code"])
        if not children and chosen["level"] >= 4:
            return {"code": chosen["code"], "name": " ".join(trail)}
        state.update(at=chosen["code"], options=children, page=0, trail=trail)
        await self.ask(io, form)
        return STAY

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        state = self._state(form)
        under = None if state["at"] == "root" else state["at"]
        results = await io.backend.search_regions(text.strip()[:50], under=under)
        if not results:
            raise Invalid("region_not_found", name=text.strip()[:20])
        state.update(options=results, page=0)
        await self.ask(io, form)
        return STAY


async def _children(io: Io, code: str) -> list[dict[str, Any]]:
    return await io.backend.region_children(code)


async def _get(io: Io, code: str) -> dict[str, Any]:
    return await io.backend.region(code)


class LocationStep(Step):
    """Optional GPS: share the location of the fields or herd, or skip."""

    optional = True

    def __init__(self, name: str, *, when: Condition = always) -> None:
        self.name, self.when = name, when

    def applies(self, form: Form) -> bool:
        return self.when(form)

    async def ask(self, io: Io, form: Form) -> None:
        keyboard = ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=io.label("enroll.share_location"), request_location=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
        await io.say(io.label(f"enroll_ask.{self.name}"), keyboard)
        await io.say(
            io.label("enroll.nav_hint"), InlineKeyboardMarkup(inline_keyboard=[nav_row(io, skip=True)])
        )

    async def on_location(self, io: Io, form: Form, latitude: float, longitude: float) -> Any:
        return {"latitude": latitude, "longitude": longitude}


class PhotoStep(Step):
    """A photo kept as evidence (R-ENR-5 authorisation): uploaded to the backend, stored with its hash."""

    media = frozenset({"photo"})

    def __init__(self, name: str, *, when: Condition = always) -> None:
        self.name, self.when = name, when

    def applies(self, form: Form) -> bool:
        return self.when(form)

    async def ask(self, io: Io, form: Form) -> None:
        await io.say(io.label(f"enroll_ask.{self.name}"), InlineKeyboardMarkup(inline_keyboard=[nav_row(io)]))

    async def on_photo(self, io: Io, form: Form, media: Media) -> Any:
        downloaded = await io.bot.download(media.file_id)
        assert downloaded is not None
        try:
            return await io.backend.upload_authorisation(io.identity, downloaded.read())
        except BackendError as exc:
            raise Invalid(exc.code) from exc

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        raise Invalid("photo_expected")


class EarTagsStep(Step):
    """As many ear tags as heads (R-ENR-2), several per message allowed; none twice within the insurer."""

    def __init__(self, name: str, *, when: Condition) -> None:
        self.name, self.when = name, when

    def applies(self, form: Form) -> bool:
        return self.when(form)

    def _collected(self, form: Form) -> list[str]:
        tags: list[str] = form.cache.setdefault(self.name, [])
        return tags

    async def ask(self, io: Io, form: Form) -> None:
        needed = int(float(form.answers["quantity"]))
        have = self._collected(form)
        if len(have) >= needed:  # back here from a later step: take the tags again from the start
            have.clear()
        await io.say(
            io.label(f"enroll_ask.{self.name}", needed=needed, have=len(have)),
            InlineKeyboardMarkup(inline_keyboard=[nav_row(io)]),
        )

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        needed = int(float(form.answers["quantity"]))
        have = self._collected(form)
        for raw in re.split(r"[\s,，;；、]+", text.strip()):
            if not raw:
                continue
            tag = validated(validation.validate_ear_tag, raw)
            if tag in have:
                raise Invalid("ear_tag_repeated", tag=tag)
            if len(have) >= needed:
                raise Invalid("ear_tags_too_many", needed=needed)
            have.append(tag)
        if len(have) < needed:
            await io.say(io.label("enroll.ear_tags_progress", have=len(have), needed=needed))
            return STAY
        taken = await io.backend.taken_ear_tags(io.identity, have)
        if taken:
            form.cache[self.name] = [t for t in have if t not in taken]
            raise Invalid("ear_tags_taken", tags=" ".join(taken))
        return list(have)


def _fmt(form: Form) -> dict[str, Any]:
    """Placeholders a question may use: the unit of the chosen product, and the like."""
    return {"unit": form.cache.get("unit_label", ""), "product": form.cache.get("product_name", "")}

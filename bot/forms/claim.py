"""Reporting a loss in chat (R-CLM-4): policy, cause, when, how much, where, photos, who reports.
Livestock deaths ask for disposal proof (R-CLM-7); liability cover asks about the accident (R-LIA-6);
weather-index products need no report (R-CLM-2), so the flow shows the township's trigger status instead."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiogram.types import InlineKeyboardMarkup

from backend.claims.schemas import causes_for
from bot.client import BackendError
from bot.forms.common import ProceedStep, parse_person_name, product_name
from bot.forms.engine import (
    STAY,
    Choice,
    Flow,
    Form,
    Invalid,
    Io,
    Media,
    Step,
    Submit,
    choice_keyboard,
    nav_row,
)
from bot.forms.parsers import MAX_PEOPLE, parse_moment, plain_number, whole_count
from bot.forms.steps import ChoiceStep, ContactStep, LocationStep, TextStep, validated
from messages import local_date, local_time, time_zone, zone_name

MAX_PHOTOS = 10


class PlaceStep(TextStep):
    """A farmer names the place as locals call it; an enterprise gives the accident site's address."""

    async def ask(self, io: Io, form: Form) -> None:
        question = "enroll_ask.accident_site" if is_liability(form) else "enroll_ask.place_name"
        await io.say(io.label(question), InlineKeyboardMarkup(inline_keyboard=[nav_row(io)]))


def category(form: Form) -> str:
    return str((form.cache.get("product") or {}).get("category", ""))


def is_liability(form: Form) -> bool:
    return category(form) == "liability"


def is_index(form: Form) -> bool:
    return bool((form.cache.get("product") or {}).get("weather_index"))


def wording(form: Form) -> str:
    """Liability cover reports an accident (it happens at a moment); crops and animals a loss."""
    return "accident" if is_liability(form) else "loss"


def reporting(form: Form) -> bool:
    """Every step after the policy applies only when a report is needed (not for weather-index cover)."""
    return not is_index(form)


class PolicyStep(ChoiceStep):
    """The policy and insured item; with a single policy the choice is made for the user."""

    def __init__(self) -> None:
        super().__init__("policy", self._choices, when=lambda f: "policy" not in f.answers, columns=1)

    async def _choices(self, io: Io, form: Form) -> Sequence[Choice]:
        policies: list[dict[str, Any]] = form.cache["policies"]
        return [Choice(str(p["id"]), f"{p['number']} {p['insured_name']}") for p in policies]

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        await super().on_pick(io, form, value)
        await remember_policy(io, form, int(value))
        return int(value)


async def remember_policy(io: Io, form: Form, policy_id: int) -> None:
    policy = next(p for p in form.cache["policies"] if p["id"] == policy_id)
    product = await io.backend.product(policy["product_code"])
    form.cache.update(
        product=product,
        policy=policy,
        unit_label=io.label(f"enroll.unit_{product['unit']}"),
        product_name=product_name(product, io.locale),
    )


async def cause_choices(io: Io, form: Form) -> Sequence[Choice]:
    # The backend's own table (part of the API contract), so a cause the backend would refuse is never offered.
    return [Choice(c, io.label(f"claims.cause_{c}")) for c in causes_for(category(form)) or ("other",)]


def _last_hour_of(day: str) -> int:
    """Today offers only the hours that have begun: a loss cannot start in the future."""
    now = datetime.now(time_zone())
    return now.hour if date.fromisoformat(day) == now.date() else 23


class WhenStep(Step):
    """The day from quick buttons (today, yesterday, the day before) or typed, then the hour; Beijing time."""

    name = "loss_started_at"

    def _state(self, form: Form) -> dict[str, Any]:
        state: dict[str, Any] = form.cache.setdefault("when", {"day": None})
        return state

    def applies(self, form: Form) -> bool:
        return reporting(form)

    async def ask(self, io: Io, form: Form) -> None:
        state = self._state(form)
        if state["day"] is None:
            choices = [Choice(f"d{n}", io.label(f"claims.day_{n}")) for n in (0, 1, 2)]
            choices.append(Choice("dother", io.label("claims.day_other")))
            await io.say(io.label(f"enroll_ask.{wording(form)}_day"), choice_keyboard(io, choices, columns=2))
            return
        if state["day"] == "typing":
            await io.say(
                io.label("enroll_ask.loss_date"), InlineKeyboardMarkup(inline_keyboard=[nav_row(io)])
            )
            return
        hours = [Choice(f"h{h}", f"{h:02d}:00") for h in range(_last_hour_of(state["day"]) + 1)]
        await io.say(
            io.label(f"enroll_ask.{wording(form)}_hour", zone=zone_name(io.locale)),
            choice_keyboard(io, hours, columns=6),
        )

    async def on_back(self, io: Io, form: Form) -> bool:
        state = self._state(form)
        if state["day"] is None:
            return False
        state["day"] = None
        await self.ask(io, form)
        return True

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        state = self._state(form)
        today = datetime.now(time_zone()).date()
        if value == "dother":
            state["day"] = "typing"
        elif value.startswith("d") and value[1:].isdigit():
            day = today - timedelta(days=int(value[1:]))
            check_day_in_cover(form, day)
            state["day"] = day.isoformat()
        elif value.startswith("h") and value[1:].isdigit() and state["day"] not in (None, "typing"):
            local = datetime.combine(date.fromisoformat(state["day"]), datetime.min.time(), time_zone())
            started = local + timedelta(hours=int(value[1:]))
            if started > datetime.now(time_zone()) + timedelta(minutes=5):
                raise Invalid("loss_in_future")
            check_in_cover(form, started)
            return started.astimezone(UTC).isoformat()
        else:
            raise Invalid("stale_choice")
        await self.ask(io, form)
        return STAY

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        """Typed at any point of this step: "昨天下午3点" answers it at once, "12月1日" or "前天" gives the
        day and the hour is asked next; the day already chosen stays when only a time is typed."""
        state = self._state(form)
        now = datetime.now(time_zone())
        chosen = state["day"] if state["day"] not in (None, "typing") else None
        moment = parse_moment(text, now.date(), default_day=date.fromisoformat(chosen) if chosen else None)
        if moment is None:
            raise Invalid("date_format")
        if moment.day > now.date():
            raise Invalid("loss_in_future")
        started = moment.at(time_zone())
        if started is None:
            check_day_in_cover(form, moment.day)
            state["day"] = moment.day.isoformat()
            await self.ask(io, form)
            return STAY
        if started > now + timedelta(minutes=5):
            raise Invalid("loss_in_future")
        check_in_cover(form, started.astimezone(UTC))
        return started.astimezone(UTC).isoformat()


def cover_of(form: Form) -> tuple[datetime, datetime]:
    """The chosen policy's insurance period (UTC)."""
    policy = form.cache["policy"]
    return datetime.fromisoformat(str(policy["starts_at"])), datetime.fromisoformat(str(policy["ends_at"]))


def cover_detail(starts: datetime, ends: datetime) -> dict[str, str]:
    """Both ends of the cover as the user reads them (the messages' own time formatting)."""
    return {"starts": local_time(starts), "ends": local_time(ends)}


def check_day_in_cover(form: Form, day: date) -> None:
    """A day with no covered hour at all is refused before the hour is asked."""
    starts, ends = cover_of(form)
    if day < local_date(starts) or day > local_date(ends):
        raise Invalid("loss_outside_cover", **cover_detail(starts, ends))


def check_in_cover(form: Form, started: datetime) -> None:
    """A loss before the cover began or after it ended is refused at once; the other answers stay."""
    starts, ends = cover_of(form)
    if not starts <= started <= ends:
        raise Invalid("loss_outside_cover", **cover_detail(starts, ends))


async def end_choices(io: Io, form: Form) -> Sequence[Choice]:
    return [Choice("ongoing", io.label("claims.end_ongoing")), Choice("now", io.label("claims.end_now"))]


def parse_lost(raw: str, form: Form) -> str:
    from backend.enrollment import validation

    unit = form.cache["product"]["unit"]
    lost = validated(validation.validate_quantity, plain_number(raw, unit), unit)
    insured = form.cache["policy"]["quantity"]
    if lost > Decimal(str(insured)):
        # "20 亩", not a bare "20" (the backend's own refusal of the same check names only the number)
        shown = f"{insured} {form.cache.get('unit_label', '')}".strip()
        raise Invalid("lost_more_than_insured", insured=shown)
    return str(lost)


def parse_amount(raw: str, _form: Form) -> str:
    try:
        value = Decimal(plain_number(raw, "yuan"))
    except InvalidOperation as exc:
        raise Invalid("amount_format") from exc
    if not value.is_finite() or value < 0 or value > Decimal("100000000"):
        raise Invalid("amount_format")
    return str(value)


def parse_count(raw: str, _form: Form) -> int:
    """Injured or dead people: 0 ("0", "没有", "无") is a real answer here."""
    count = whole_count(raw, "person", low=0, high=MAX_PEOPLE)
    if count is None:
        raise Invalid("whole_number", low=0, high=MAX_PEOPLE)
    return count


def parse_place(raw: str, _form: Form) -> str:
    place = " ".join(raw.split())
    if not 2 <= len(place) <= 100:
        raise Invalid("place_length")
    return place


def parse_text(raw: str, _form: Form) -> str:
    text = " ".join(raw.split())
    if not 2 <= len(text) <= 1000:
        raise Invalid("address_length")
    return text


class MediaStep(Step):
    """Photos or videos, several messages, then "done". Each is stored by the backend at once (SHA-256)."""

    media = frozenset({"photo", "video"})

    def __init__(self, name: str, *, minimum: int = 0, when: Any = reporting, optional: bool = False) -> None:
        self.name, self.minimum, self.when, self.optional = name, minimum, when, optional

    def applies(self, form: Form) -> bool:
        return bool(self.when(form))

    def _ids(self, form: Form) -> list[int]:
        ids: list[int] = form.cache.setdefault(f"media_{self.name}", [])
        return ids

    def _minimum(self, form: Form) -> int:
        return self.minimum if self.minimum >= 0 else (1 if category(form) == "livestock" else 0)

    def _question(self, form: Form) -> str:
        """The scene photos of a liability claim are of the accident, not of a loss."""
        return "accident_photos" if self.name == "claim_photos" and is_liability(form) else self.name

    def _may_skip_now(self, form: Form) -> bool:
        """Photos that are not required can be left for later (我的理赔), but only by saying so."""
        return not self.optional and self._minimum(form) == 0 and not self._ids(form)

    async def ask(self, io: Io, form: Form) -> None:
        minimum = self._minimum(form)
        required = io.label("claims.photos_minimum", n=minimum) if minimum else ""
        extra = [[io.button(io.label("claims.photos_done"), "pick", "done")]]
        if self._may_skip_now(form):
            extra.append([io.button(io.label("claims.photos_skip"), "pick", "skip")])
        if self.optional:
            extra.append([io.button(io.label("claims.later"), "skip")])
        later = io.label("claims.photos_later_note") if self._may_skip_now(form) else ""
        await io.say(
            io.label(f"enroll_ask.{self._question(form)}", required=required) + later,
            InlineKeyboardMarkup(inline_keyboard=[*extra, nav_row(io)]),
        )

    async def on_photo(self, io: Io, form: Form, media: Media) -> Any:
        ids = self._ids(form)
        if len(ids) >= MAX_PHOTOS:
            raise Invalid("too_many_photos")
        downloaded = await io.bot.download(media.file_id)
        assert downloaded is not None
        data = downloaded.read()
        content_type = media.content_type or (
            "video/mp4"
            if data[4:8] == b"ftyp"
            else ("image/png" if data.startswith(b"\x89PNG") else "image/jpeg")
        )
        try:
            ids.append(await io.backend.upload_claim_media(io.identity, data, "media", content_type))
        except BackendError as exc:
            raise Invalid("media_upload_failed") from exc
        await self._acknowledge(io, form, media, len(ids))
        return STAY

    async def _acknowledge(self, io: Io, form: Form, media: Media, count: int) -> None:
        """One "received N" per album: the first photo of an album gets the message, the others update
        it (Telegram delivers an album as one message per photo)."""
        text = io.t("claims/photo_received", count=count)
        acked: dict[str, int] = form.cache.setdefault("album_acks", {})
        if media.album and media.album in acked:
            await io.bot.edit_message_text(
                text=text,
                chat_id=io.chat_id,
                message_id=acked[media.album],
                reply_markup=self._done_keyboard(io),
            )
            return
        sent = await io.say(text, self._done_keyboard(io))
        if media.album:
            acked.clear()  # only the latest album can still grow
            acked[media.album] = sent.message_id

    def _done_keyboard(self, io: Io) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(
            inline_keyboard=[[io.button(io.label("claims.photos_done"), "pick", "done")]]
        )

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        ids = self._ids(form)
        if value == "skip" and self._may_skip_now(form):
            return []  # said so: no photos now, they can be added later in 我的理赔
        if value != "done":
            raise Invalid("stale_choice")
        if len(ids) < self._minimum(form):
            raise Invalid("photo_required")
        if not ids and self._may_skip_now(form):
            # "done" with nothing sent is a slip more often than a choice: say so, offer the skip
            raise Invalid("photos_none_sent")
        return list(ids)

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        raise Invalid("photo_expected")


class ReporterStep(ChoiceStep):
    """Who reports. A farmer's own name is offered (someone else types theirs); for an enterprise the
    company is not a person, so the person reporting (the safety officer, say) types their own name."""

    def __init__(self) -> None:
        super().__init__("reporter", self._choices, when=reporting, columns=1)

    async def _choices(self, io: Io, form: Form) -> Sequence[Choice]:
        if is_liability(form):
            return []
        name = form.cache["policy"]["insured_name"]
        return [Choice("self", io.label("claims.reporter_self", name=name))]

    async def ask(self, io: Io, form: Form) -> None:
        if not is_liability(form):
            await super().ask(io, form)
            return
        question = io.label("enroll_ask.reporter_person", company=form.cache["policy"]["insured_name"])
        await io.say(question, InlineKeyboardMarkup(inline_keyboard=[nav_row(io)]))

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        await super().on_pick(io, form, value)
        return form.cache["policy"]["insured_name"]

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        return parse_person_name(text, form)


class ReporterPhoneStep(ContactStep):
    """An enterprise's reporter shares their own phone (bound to this chat, so the backend's reporter
    phone, the chat's bound number, is the reporting person's)."""

    def applies(self, form: Form) -> bool:
        return reporting(form) and is_liability(form)


class ClaimSummary(ProceedStep):
    def __init__(self) -> None:
        super().__init__("summary", "enroll.confirm")

    def applies(self, form: Form) -> bool:
        return reporting(form)

    async def text(self, io: Io, form: Form) -> str:
        a = form.answers
        disposal = a.get("disposal")
        return io.t(
            "claims/summary",
            a=a,
            policy_number=form.cache["policy"]["number"],
            product_name=form.cache.get("product_name", ""),
            unit=form.cache.get("unit_label", ""),
            started=datetime.fromisoformat(a["loss_started_at"]),
            liability=is_liability(form),
            photos=len(a.get("claim_photos") or []),
            disposal=None if category(form) != "livestock" else len(disposal or []),
            reporter=a.get("reporter", ""),
            reporter_phone=a.get("reporter_phone") or "",
            insured_name=form.cache["policy"]["insured_name"],
        )


def claim_flow(submit: Submit) -> Flow:
    not_liability = lambda f: reporting(f) and not is_liability(f)  # noqa: E731
    liability = lambda f: reporting(f) and is_liability(f)  # noqa: E731
    return Flow(
        name="claim",
        submit=submit,
        steps=[
            PolicyStep(),
            ChoiceStep("cause", cause_choices, when=not_liability),
            WhenStep(),
            ChoiceStep("loss_end", end_choices, when=not_liability, columns=1),
            TextStep("lost_quantity", parse_lost, when=not_liability),
            TextStep("estimated_amount", parse_amount, when=not_liability),
            TextStep("injured", parse_count, when=liability),
            TextStep("dead", parse_count, when=liability),
            TextStep("description", parse_text, when=liability),
            LocationStep("claim_gps", when=reporting),
            PlaceStep("place_name", parse_place, when=reporting),
            MediaStep("claim_photos", minimum=-1),
            MediaStep("disposal", when=lambda f: reporting(f) and category(f) == "livestock", optional=True),
            ReporterStep(),
            ReporterPhoneStep("reporter_phone"),
            ClaimSummary(),
        ],
    )


def evidence_flow(submit: Submit) -> Flow:
    """Sending photos later: disposal proof (R-CLM-7) or the documents staff asked for (R-CLM-9)."""
    return Flow(name="evidence", submit=submit, steps=[MediaStep("evidence", minimum=1, when=lambda f: True)])


def objection_flow(submit: Submit) -> Flow:
    return Flow(name="objection", submit=submit, steps=[TextStep("object_reason", parse_text)])

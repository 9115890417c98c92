"""The inspection forms (R-LIA-5): another day for the visit (the reason, then the day), and a hazard
fixed (one photo). Their questions are the inspections domain's own labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiogram.types import InlineKeyboardMarkup

from bot.client import BackendError
from bot.forms.engine import Flow, Form, Invalid, Io, Media, Submit, nav_row
from bot.forms.parsers import parse_moment
from bot.forms.steps import PhotoStep, TextStep
from bot.inspection_client import InspectionCalls
from messages import time_zone

RESCHEDULE_FLOW = "inspection_reschedule"
FIX_FLOW = "inspection_fix"


def parse_reason(raw: str, _form: Form) -> str:
    text = " ".join(raw.split())
    if not 2 <= len(text) <= 500:
        raise Invalid("inspection_reason_length")
    return text


def parse_day(raw: str, _form: Form) -> str:
    """A day after today where the user lives: "12月20日", "2026-12-20", "明天"."""
    today = datetime.now(time_zone()).date()
    moment = parse_moment(raw, today, past=False)
    if moment is None:
        raise Invalid("inspection_day_unclear")
    if moment.day <= today:
        raise Invalid("inspection_day_past")
    return moment.day.isoformat()


class AskedText(TextStep):
    """A typed answer whose question is ``inspections.ask_<name>``."""

    async def ask(self, io: Io, form: Form) -> None:
        markup = InlineKeyboardMarkup(inline_keyboard=[nav_row(io)])
        await io.say(io.label(f"inspections.ask_{self.name}"), markup)


class FixPhotoStep(PhotoStep):
    """The photo of the fixed hazard (required), uploaded to the backend at once."""

    async def ask(self, io: Io, form: Form) -> None:
        await io.say(io.label("inspections.ask_photo"), InlineKeyboardMarkup(inline_keyboard=[nav_row(io)]))

    async def on_photo(self, io: Io, form: Form, media: Media) -> Any:
        downloaded = await io.bot.download(media.file_id)
        assert downloaded is not None
        try:
            return await InspectionCalls(io.backend, io.identity).upload_photo(downloaded.read())
        except BackendError as exc:
            raise Invalid(exc.code) from exc

    async def on_text(self, io: Io, form: Form, text: str) -> Any:
        raise Invalid("hazard_photo_required")


def reschedule_flow(submit: Submit) -> Flow:
    return Flow(
        name=RESCHEDULE_FLOW,
        submit=submit,
        steps=[AskedText("reason", parse_reason), AskedText("day", parse_day)],
    )


def fix_flow(submit: Submit) -> Flow:
    return Flow(name=FIX_FLOW, submit=submit, steps=[FixPhotoStep("photo")])

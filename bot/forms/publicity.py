"""The objection form (R-PUB-1): the reason, then a photo if the household has one (optional)."""

from __future__ import annotations

from typing import Any

from aiogram.types import InlineKeyboardMarkup

from bot.client import BackendError
from bot.forms.claim import parse_text
from bot.forms.engine import Flow, Form, Invalid, Io, Media, Submit, nav_row
from bot.forms.steps import PhotoStep, TextStep
from bot.publicity_client import PublicityCalls


class ObjectionPhotoStep(PhotoStep):
    """One photo, or "skip"."""

    optional = True

    async def ask(self, io: Io, form: Form) -> None:
        markup = InlineKeyboardMarkup(inline_keyboard=[nav_row(io, skip=True)])
        await io.say(io.label(f"enroll_ask.{self.name}"), markup)

    async def on_photo(self, io: Io, form: Form, media: Media) -> Any:
        downloaded = await io.bot.download(media.file_id)
        assert downloaded is not None
        try:
            return await PublicityCalls(io.backend, io.identity).upload_photo(downloaded.read())
        except BackendError as exc:
            raise Invalid(exc.code) from exc


def objection_flow(submit: Submit) -> Flow:
    return Flow(
        name="publicity_objection",
        submit=submit,
        steps=[TextStep("publicity_reason", parse_text), ObjectionPhotoStep("publicity_photo")],
    )

"""The answers to a form, whatever its feature: typed text, a shared contact or location, photos and
videos, and the form's own buttons (pick, back, skip, cancel, resume). The flows come from the features;
the runner that holds them all is built in ``bot/dispatcher.py`` and passed in as ``runner``."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, PhotoSize, ReplyKeyboardRemove

from bot.context import ChatContext
from bot.forms.engine import (
    Form,
    FormAction,
    FormRunner,
    FormState,
    Io,
    Media,
    close_form,
    draft_reminder,
)
from bot.keyboards import main_menu
from messages import render


async def make_io(
    bot: Bot, chat_id: int, ctx: ChatContext, state: FSMContext, message: Message, runner: FormRunner
) -> Io:
    return Io(
        message=message,
        bot=bot,
        locale=await ctx.locale(),
        backend=ctx.backend,
        identity=ctx.key,
        chat_id=chat_id,
        state=state,
        runner=runner,
    )


def chat_of(query: CallbackQuery) -> int:
    return query.message.chat.id if query.message else query.from_user.id


async def with_form(
    event_message: Message,
    chat_id: int,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
) -> tuple[Io, Form] | None:
    form = await runner.load(state)
    io = await make_io(bot, chat_id, ctx, state, event_message, runner)
    if form is None:
        await close_form(state)
        identity = await ctx.ensure()
        await io.say(render("start/stale_button", identity.locale), main_menu(identity))
        return None
    return io, form


async def text_answer(
    message: Message, ctx: ChatContext, state: FSMContext, bot: Bot, runner: FormRunner
) -> None:
    loaded = await with_form(message, message.chat.id, ctx, state, bot, runner)
    if loaded:
        io, form = loaded
        await runner.handle(io, state, form, lambda step: step.on_text(io, form, message.text or ""))


async def contact_answer(
    message: Message, ctx: ChatContext, state: FSMContext, bot: Bot, runner: FormRunner
) -> None:
    assert message.contact is not None and message.from_user is not None
    loaded = await with_form(message, message.chat.id, ctx, state, bot, runner)
    if not loaded:
        return
    io, form = loaded
    contact = message.contact
    if contact.user_id != message.from_user.id:
        await io.say(io.label("enroll_errors.phone_not_own"))
        await runner.ask_current(io, state, form)
        return
    await runner.handle(io, state, form, lambda step: step.on_contact(io, form, contact.phone_number))


async def location_answer(
    message: Message, ctx: ChatContext, state: FSMContext, bot: Bot, runner: FormRunner
) -> None:
    assert message.location is not None
    loaded = await with_form(message, message.chat.id, ctx, state, bot, runner)
    if loaded:
        io, form = loaded
        where = message.location
        await runner.handle(
            io, state, form, lambda step: step.on_location(io, form, where.latitude, where.longitude)
        )


def largest(sizes: list[PhotoSize]) -> PhotoSize:
    """Telegram sends each photo in several sizes; the evidence is the biggest one, whatever the order."""
    return max(sizes, key=lambda size: (size.width * size.height, size.file_size or 0))


async def media_answer(
    message: Message, ctx: ChatContext, state: FSMContext, bot: Bot, runner: FormRunner
) -> None:
    """A photo, a video (also a round video note), or either sent as a file."""
    media = media_of(message)
    if media is None:
        return
    loaded = await with_form(message, message.chat.id, ctx, state, bot, runner)
    if not loaded:
        return
    io, form = loaded
    album = form.cache.get("album")
    if media.album and album and album["id"] == media.album and album["step"] != form.step:
        # The rest of an album whose first photo answered a one-photo step: already answered.
        return
    if media.album:
        form.cache["album"] = {"id": media.album, "step": form.step}
    await runner.handle(io, state, form, lambda step: step.on_photo(io, form, media))


def media_of(message: Message) -> Media | None:
    album = message.media_group_id
    if message.photo:
        return Media(largest(message.photo).file_id, "", album)
    if message.video:
        return Media(message.video.file_id, message.video.mime_type or "video/mp4", album)
    if message.video_note:
        return Media(message.video_note.file_id, "video/mp4", album)
    document = message.document
    if document and (document.mime_type or "").startswith(("image/", "video/")):
        return Media(document.file_id, document.mime_type or "", album)
    return None


async def form_button(
    query: CallbackQuery,
    callback_data: FormAction,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
) -> None:
    action = callback_data.action
    if action in ("resume", "discard", "restart"):
        await _draft_button(query, action, ctx, state, bot, runner)
        return
    loaded = await with_form(query.message, chat_of(query), ctx, state, bot, runner)  # type: ignore[arg-type]
    if not loaded:
        return
    io, form = loaded
    if not _for_this_question(callback_data, form):
        await io.say(io.label("enroll_errors.old_button"))
        await runner.ask_current(io, state, form)
        return
    if action == "pick":
        await runner.handle(
            io, state, form, lambda step: step.on_pick(io, form, callback_data.value), tap=True
        )
    elif action == "back":
        await runner.back(io, state, form)
    elif action == "skip":
        await runner.skip(io, state, form)
    elif action == "cancel":  # this form goes, parked drafts stay
        await close_form(state)
        identity = await ctx.ensure()
        await io.say(io.t("enroll/cancelled"), ReplyKeyboardRemove())
        await io.say(render("start/menu", identity.locale, identity=identity), main_menu(identity))
    else:  # not one of ours (tampered, or of a later release): the form stays as it was
        await io.say(io.label("enroll_errors.old_button"))
        await runner.ask_current(io, state, form)


def _for_this_question(data: FormAction, form: Form) -> bool:
    """A button answers the question it was shown with; "cancel" ends its form from any question of it.
    Anything else (an earlier question's button, the second tap of a double tap, a button of another
    form) would answer the question asked now with a value meant for another one."""
    if data.action == "cancel":
        return form.owns(data.at)
    return data.at == form.stamp


async def _draft_button(
    query: CallbackQuery, action: str, ctx: ChatContext, state: FSMContext, bot: Bot, runner: FormRunner
) -> None:
    """The draft reminder's buttons: continue the form (or the latest parked draft), or discard."""
    io = await make_io(bot, chat_of(query), ctx, state, query.message, runner)  # type: ignore[arg-type]
    if action == "resume" and await runner.resume(io, state):
        return
    await state.clear()  # discard (and "start over"): every draft goes
    identity = await ctx.ensure()
    key = "enroll/cancelled" if action != "resume" else "start/stale_button"
    await io.say(io.t(key), ReplyKeyboardRemove())
    await io.say(render("start/menu", identity.locale, identity=identity), main_menu(identity))


async def draft_waiting(message: Message, ctx: ChatContext) -> None:
    identity = await ctx.ensure()
    await message.answer(render("start/unknown_input", identity.locale), reply_markup=main_menu(identity))
    text, markup = draft_reminder(identity.locale)
    await message.answer(text, reply_markup=markup)


def build_router() -> Router:
    router = Router(name="forms")
    router.callback_query.register(form_button, FormAction.filter())
    router.message.register(contact_answer, FormState.filling, F.contact)
    router.message.register(location_answer, FormState.filling, F.location)
    router.message.register(media_answer, FormState.filling, F.photo | F.video | F.video_note)
    router.message.register(
        media_answer,
        FormState.filling,
        F.document.mime_type.startswith("image/") | F.document.mime_type.startswith("video/"),
    )
    router.message.register(text_answer, FormState.filling, F.text)
    # Typed while only parked drafts remain: "continue / discard" again, rather than silence.
    router.message.register(draft_waiting, FormState.parked, F.text)
    return router

"""/start, the main menu, help, language and phone binding."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from backend.people.schemas import IdentityOut
from bot.client import BackendError
from bot.context import ChatContext
from bot.forms.engine import FormRunner, FormState, close_form, draft_reminder
from bot.keyboards import (
    LanguageChoice,
    MenuAction,
    back_to_menu,
    language_choice,
    main_menu,
    remove_keyboard,
    share_phone_keyboard,
)
from bot.replies import reply_to_query
from bot.routers import enroll
from messages import LOCALES, label, render

CANCEL_LABELS = frozenset(label("menu.cancel", loc) for loc in LOCALES)


async def show_menu(message: Message, identity: IdentityOut, key: str = "start/menu") -> None:
    await message.answer(render(key, identity.locale, identity=identity), reply_markup=main_menu(identity))


async def start(
    message: Message,
    command: CommandObject,
    ctx: ChatContext,
    state: FSMContext,
    bot: Bot,
    runner: FormRunner,
    raw_state: str | None,
) -> None:
    """``raw_state`` is the state aiogram read for this update, under its event isolation: asking the
    storage again would cost a Redis round trip on every /start."""
    identity = await ctx.open()
    if command.args:
        # A QR code (R-LIA-3): open its enrollment (a form under way is parked, not lost); an invalid
        # code says why and shows the menu.
        if not await enroll.open_from_payload(message, ctx, state, bot, runner, command.args):
            await show_menu(message, identity, "start/menu")
        return
    draft = raw_state in (FormState.filling.state, FormState.parked.state)
    if raw_state is not None and not draft:
        # Without a state there is nothing to clear: conversation data is only ever saved with a
        # state and cleared with it, and clearing costs two Redis round trips on every /start.
        draft = await close_form(state)
    # The menu always comes; an unfinished form is a reminder beside it, never instead of it.
    await show_menu(message, identity, "start/welcome")
    if draft:
        text, markup = draft_reminder(identity.locale)
        await message.answer(text, reply_markup=markup)


async def help_command(message: Message, ctx: ChatContext) -> None:
    locale = await ctx.locale()
    await message.answer(render("start/help", locale), reply_markup=back_to_menu(locale))


async def help_button(query: CallbackQuery, ctx: ChatContext) -> None:
    locale = await ctx.locale()
    await reply_to_query(query, render("start/help", locale), back_to_menu(locale))


async def home_button(
    query: CallbackQuery, ctx: ChatContext, state: FSMContext, runner: FormRunner, raw_state: str | None
) -> None:
    draft = False
    if raw_state in (FormState.filling.state, FormState.parked.state):
        await runner.park(state)  # the form is kept as a draft
        draft = True
    elif raw_state is not None:
        draft = await close_form(state)
    identity = await ctx.ensure()
    await reply_to_query(query, render("start/menu", identity.locale, identity=identity), main_menu(identity))
    if draft:
        await reply_to_query(query, *draft_reminder(identity.locale))


async def language_command(message: Message, ctx: ChatContext) -> None:
    await message.answer(render("start/choose_language", await ctx.locale()), reply_markup=language_choice())


async def language_button(query: CallbackQuery, ctx: ChatContext) -> None:
    await reply_to_query(query, render("start/choose_language", await ctx.locale()), language_choice())


async def language_chosen(query: CallbackQuery, callback_data: LanguageChoice, ctx: ChatContext) -> None:
    await ctx.ensure()
    identity = await ctx.backend.choose_locale(ctx.key, callback_data.locale)
    ctx.remember(identity)
    await reply_to_query(
        query, render("start/language_set", identity.locale, identity=identity), main_menu(identity)
    )


class PhoneBinding(StatesGroup):
    waiting_for_contact = State()


async def phone_button(query: CallbackQuery, ctx: ChatContext, state: FSMContext, runner: FormRunner) -> None:
    await runner.park(state)  # a form under way waits as a draft while the phone is bound
    await state.set_state(PhoneBinding.waiting_for_contact)
    locale = await ctx.locale()
    await reply_to_query(query, render("start/phone_prompt", locale), share_phone_keyboard(locale))


async def phone_command(message: Message, ctx: ChatContext, state: FSMContext, runner: FormRunner) -> None:
    await runner.park(state)
    await state.set_state(PhoneBinding.waiting_for_contact)
    locale = await ctx.locale()
    await message.answer(render("start/phone_prompt", locale), reply_markup=share_phone_keyboard(locale))


async def phone_typed_instead_of_shared(message: Message, ctx: ChatContext) -> None:
    """A typed number cannot be verified as the user's own: point at the button, keep waiting."""
    locale = await ctx.locale()
    await message.answer(render("start/phone_use_button", locale), reply_markup=share_phone_keyboard(locale))


async def contact_shared(message: Message, ctx: ChatContext, state: FSMContext) -> None:
    assert message.contact is not None and message.from_user is not None
    locale = await ctx.locale()
    if message.contact.user_id != message.from_user.id:
        # Someone else's card: only the request-contact button proves the number is the user's own.
        await message.answer(render("start/phone_not_own", locale), reply_markup=share_phone_keyboard(locale))
        return
    await ctx.ensure()
    try:
        identity = await ctx.backend.bind_phone(ctx.key, message.contact.phone_number)
    except BackendError as exc:
        await message.answer(
            render("start/phone_refused", locale, code=exc.code), reply_markup=share_phone_keyboard(locale)
        )
        return
    ctx.remember(identity)
    draft = await close_form(state)
    await message.answer(
        render("start/phone_bound", identity.locale, identity=identity), reply_markup=remove_keyboard()
    )
    await show_menu(message, identity)
    if draft:
        text, markup = draft_reminder(identity.locale)
        await message.answer(text, reply_markup=markup)


async def cancel_text(message: Message, ctx: ChatContext, state: FSMContext) -> None:
    await close_form(state)
    identity = await ctx.ensure()
    await message.answer(render("start/cancelled", identity.locale), reply_markup=remove_keyboard())
    await show_menu(message, identity)


def build_router() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help"))
    router.callback_query.register(help_button, MenuAction.filter(F.action == "help"))
    router.callback_query.register(home_button, MenuAction.filter(F.action == "home"))
    router.message.register(language_command, Command("language"))
    router.callback_query.register(language_button, MenuAction.filter(F.action == "language"))
    router.callback_query.register(language_chosen, LanguageChoice.filter())
    router.callback_query.register(phone_button, MenuAction.filter(F.action == "phone"))
    router.message.register(phone_command, Command("phone"))
    router.message.register(contact_shared, F.contact, StateFilter(None, PhoneBinding.waiting_for_contact))
    router.message.register(cancel_text, F.text.in_(CANCEL_LABELS))
    router.message.register(phone_typed_instead_of_shared, PhoneBinding.waiting_for_contact)
    return router

"""/start, the main menu, help, language and phone binding."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from backend.outbox.sms.schemas import LinkOut
from backend.people.schemas import IdentityOut
from backend.publicity.schemas import START_PREFIX as NOTICE_PREFIX
from backend.refusals import refusal_message
from bot.client import BackendError
from bot.context import WEBCHAT, ChatContext
from bot.forms.engine import FormRunner, FormState, close_form, draft_reminder
from bot.forms.steps import TYPED_PHONE
from bot.keyboards import (
    LanguageChoice,
    MenuAction,
    back_to_menu,
    code_keyboard,
    language_choice,
    main_menu,
    remove_keyboard,
    share_phone_keyboard,
)
from bot.replies import Markup, reply_to_query
from bot.routers import (
    broadcasts,
    callbacks,
    claims,
    collective,
    enroll,
    help_answer,
    inspection,
    policies,
    publicity,
)
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
    if command.args and command.args.startswith(LINK_PREFIX):
        if raw_state is not None:
            await runner.park(state)  # a form under way waits as a draft while the link opens
        await open_link(message, ctx, state, command.args.removeprefix(LINK_PREFIX))
        return
    if command.args and command.args.startswith(NOTICE_PREFIX):
        # The QR code on a village notice board opens the notice (R-PUB-1).
        await publicity.open_by_token(message, ctx, command.args.removeprefix(NOTICE_PREFIX))
        return
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


# --- a text's short link: /s/<token> opens the web chat with /start s_<token> --------------------------------

LINK_PREFIX = "s_"


async def open_link(message: Message, ctx: ChatContext, state: FSMContext, token: str) -> None:
    """Show what the link opens, when this chat is the link's person's; for another person's link, offer
    to prove that number here by code (then the link opens); an expired or unknown link says so."""
    identity = await ctx.ensure()
    locale = identity.locale
    try:
        opening = await ctx.backend.open_link(ctx.key, token)
    except BackendError:
        opening = LinkOut(status="unknown")
    if opening.status == "ok" and opening.target:
        await show_target(message, ctx, opening.target, state)
        return
    if opening.status == "other_person":
        await state.set_state(PhoneBinding.waiting_for_contact)
        await state.update_data(link_token=token)
        text = render("start/link_other_person", locale, phone_masked=opening.phone_masked or "")
        await message.answer(text, reply_markup=share_phone_keyboard(locale))
        return
    await show_menu(message, identity, f"start/link_{opening.status}")


async def show_target(
    message: Message, ctx: ChatContext, target: str, state: FSMContext | None = None
) -> None:
    """The claim, policy, callback or publicity notice a link names, as its "view" button shows it (gone:
    say so, then the menu). A callback shows the question it is at (its free-text question takes the next
    text: ``state``)."""
    locale = await ctx.locale()
    kind, _, raw_id = target.partition(":")
    try:
        if kind == "callback" and raw_id.isdigit():
            await callbacks.show_callback(message, ctx, int(raw_id), state)
            return
        if kind == "claim" and raw_id.isdigit():
            claim = await ctx.backend.my_claim(ctx.key, int(raw_id))
            text, markup = claims.claim_detail(claim, locale)
        elif kind == "policy" and raw_id.isdigit():
            policy = await ctx.backend.my_policy(ctx.key, int(raw_id))
            text, markup = await policies.policy_detail(ctx, policy, locale)
        elif kind == "notice" and raw_id.isdigit():
            text, markup = publicity.notice_detail(await publicity.calls(ctx).notice(int(raw_id)), locale)
        elif kind == "household" and raw_id.isdigit():  # a collective enrollment's row (R-ENR-1)
            text, markup = await collective.household_detail(ctx, int(raw_id), locale)
        elif kind == "broadcast" and raw_id.isdigit():  # a warning or staff message, texted (issue 14)
            text, markup = await broadcasts.broadcast_detail(ctx, int(raw_id))
        elif kind == "inspection" and raw_id.isdigit():  # a safety inspection (R-LIA-5)
            text, markup = await inspection.show(ctx, int(raw_id), locale)
        else:
            raise BackendError(404, "not_found", target)
    except BackendError:
        await show_menu(message, await ctx.ensure(), "start/link_unknown")
        return
    await message.answer(text, reply_markup=markup)


async def help_command(message: Message, ctx: ChatContext) -> None:
    locale = await ctx.locale()
    await message.answer(await help_answer.help_text(ctx, locale), reply_markup=back_to_menu(locale))


async def help_button(query: CallbackQuery, ctx: ChatContext) -> None:
    locale = await ctx.locale()
    await reply_to_query(query, await help_answer.help_text(ctx, locale), back_to_menu(locale))


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
    waiting_for_code = State()  # web chat: the SMS code sent to the number in the state's ``phone``


async def phone_button(query: CallbackQuery, ctx: ChatContext, state: FSMContext, runner: FormRunner) -> None:
    await runner.park(state)  # a form under way waits as a draft while the phone is bound
    identity = await ctx.ensure()
    if ctx.key.channel == WEBCHAT and identity.phone_masked and not identity.phone_verified:
        # Bound but unproven: the code goes to the number already bound, nothing to type again.
        await send_code(said_under(query), ctx, state, None)
        return
    await state.set_state(PhoneBinding.waiting_for_contact)
    locale = identity.locale
    await reply_to_query(query, render("start/phone_prompt", locale), share_phone_keyboard(locale))


async def phone_command(message: Message, ctx: ChatContext, state: FSMContext, runner: FormRunner) -> None:
    await runner.park(state)
    identity = await ctx.ensure()
    if ctx.key.channel == WEBCHAT and identity.phone_masked and not identity.phone_verified:
        await send_code(said_to(message), ctx, state, None)
        return
    await state.set_state(PhoneBinding.waiting_for_contact)
    locale = identity.locale
    await message.answer(render("start/phone_prompt", locale), reply_markup=share_phone_keyboard(locale))


Say = Callable[[str, Markup], Awaitable[Any]]


def said_to(message: Message) -> Say:
    async def say(text: str, markup: Markup) -> Any:
        return await message.answer(text, reply_markup=markup)

    return say


def said_under(query: CallbackQuery) -> Say:
    async def say(text: str, markup: Markup) -> Any:
        return await reply_to_query(query, text, markup)

    return say


async def send_code(say: Say, ctx: ChatContext, state: FSMContext, phone: str | None) -> bool:
    """Web chat: text a code to ``phone`` (or the chat's bound number) and wait for it. False, with the
    reason said, when the code was not sent (too soon, too many, no number)."""
    locale = await ctx.locale()
    if phone is None:
        phone = (await state.get_data()).get("phone")
    try:
        sent = await ctx.backend.send_phone_code(ctx.key, phone)
    except BackendError as exc:
        await say(refusal_message(exc.code, locale, exc.detail), code_keyboard(locale))
        return False
    await state.set_state(PhoneBinding.waiting_for_code)
    await state.update_data(phone=phone)
    text = render("start/phone_code_sent", locale, phone_masked=sent.phone_masked, minutes=sent.valid_minutes)
    await say(text, code_keyboard(locale))
    return True


async def resend_code_button(query: CallbackQuery, ctx: ChatContext, state: FSMContext) -> None:
    await send_code(said_under(query), ctx, state, None)


async def code_typed(message: Message, ctx: ChatContext, state: FSMContext) -> None:
    """The SMS code: the right one makes this chat the number's person's (verified)."""
    locale = await ctx.locale()
    await ctx.ensure()
    try:
        identity = await ctx.backend.verify_phone_code(ctx.key, message.text or "")
    except BackendError as exc:
        await message.answer(
            refusal_message(exc.code, locale, exc.detail), reply_markup=code_keyboard(locale)
        )
        return
    ctx.remember(identity)
    await bound(message, ctx, identity, state)


async def phone_typed_instead_of_shared(message: Message, ctx: ChatContext, state: FSMContext) -> None:
    """Telegram: a typed number cannot be verified as the user's own: point at the button, keep waiting.
    Web chat proves a number by its SMS code, so there a typed number is as good as the button's."""
    locale = await ctx.locale()
    if ctx.key.channel == WEBCHAT and message.text and TYPED_PHONE.fullmatch(message.text.strip()):
        await ctx.ensure()
        await send_code(said_to(message), ctx, state, message.text.strip())
        return
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
        if ctx.key.channel == WEBCHAT and exc.code == "phone_needs_code":
            # A browser can send any number: web chat proves it by a code before anything is bound.
            await send_code(said_to(message), ctx, state, message.contact.phone_number)
            return
        await message.answer(
            render("start/phone_refused", locale, code=exc.code), reply_markup=share_phone_keyboard(locale)
        )
        return
    ctx.remember(identity)
    await bound(message, ctx, identity, state)


async def bound(message: Message, ctx: ChatContext, identity: IdentityOut, state: FSMContext) -> None:
    """Say the phone is bound, then the menu; a text's link that waited for this number opens now."""
    token = (await state.get_data()).get("link_token")
    draft = await close_form(state)
    await message.answer(
        render("start/phone_bound", identity.locale, identity=identity), reply_markup=remove_keyboard()
    )
    await show_menu(message, identity)
    if draft:
        text, markup = draft_reminder(identity.locale)
        await message.answer(text, reply_markup=markup)
    if token and identity.phone_verified:
        await open_link(message, ctx, state, str(token))


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
    router.message.register(
        contact_shared,
        F.contact,
        StateFilter(None, PhoneBinding.waiting_for_contact, PhoneBinding.waiting_for_code),
    )
    router.message.register(cancel_text, F.text.in_(CANCEL_LABELS))
    router.callback_query.register(resend_code_button, MenuAction.filter(F.action == "phone_code"))
    router.message.register(code_typed, PhoneBinding.waiting_for_code, F.text)
    router.message.register(phone_typed_instead_of_shared, PhoneBinding.waiting_for_contact)
    return router

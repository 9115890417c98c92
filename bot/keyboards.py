"""Keyboard builders shared by the routers; every label comes from messages/."""

from __future__ import annotations

from functools import lru_cache

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from backend import chat_actions
from backend.people.schemas import IdentityOut
from messages import label


class MenuAction(CallbackData, prefix="m"):
    action: str


class LanguageChoice(CallbackData, prefix="lang"):
    locale: str


class PayAction(CallbackData, prefix=chat_actions.PAY_PREFIX):
    """The bot's side of ``backend.chat_actions.PayButton``: the backend's "pay now" notices carry the
    same string (tests/bot/test_chat_actions.py holds both to it)."""

    application_id: int


class ClaimAction(CallbackData, prefix=chat_actions.CLAIM_PREFIX):
    """The bot's side of ``backend.chat_actions.ClaimButton`` (the claim notices' buttons)."""

    action: chat_actions.ClaimVerb
    claim_id: int
    amount: int = 0  # the assessed amount shown with the button (fen); 0 when none


class WarningReport(CallbackData, prefix=chat_actions.WARNING_PREFIX):
    """ "Report a loss" under an official warning (``backend.chat_actions.warning_report_button``)."""

    warning_id: int


class PolicyAction(CallbackData, prefix="pol"):
    action: str  # list | view | pdf | endorse
    policy_id: int = 0


class EnrollChoice(CallbackData, prefix="en"):
    flow: str  # farmer | enterprise


def main_menu(identity: IdentityOut) -> InlineKeyboardMarkup:
    return _main_menu(identity.locale, tuple(identity.menu), identity.phone_verified)


# Shown on every /start and every "back to menu", and it depends on three small values only; aiogram's
# types are frozen, so one markup can be shared by every message that shows it.
@lru_cache(maxsize=256)
def _main_menu(locale: str, menu: tuple[str, ...], phone_verified: bool) -> InlineKeyboardMarkup:
    actions = list(menu)
    # Entries that are always there (not features of their own): phone binding until done (then the
    # person's devices), language.
    if not phone_verified:
        actions.append("phone")
    else:
        actions.append("devices")  # a verified person sees and ends their other chats
    actions.append("language")
    buttons = [_menu_button(action, locale) for action in actions]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _menu_button(action: str, locale: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=label(f"menu.{action}", locale), callback_data=MenuAction(action=action).pack()
    )


def language_choice() -> InlineKeyboardMarkup:
    # Each language is named in itself, so a user who cannot read the current one still finds theirs.
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=label("menu.language_zh", "zh-CN"),
                    callback_data=LanguageChoice(locale="zh-CN").pack(),
                ),
                InlineKeyboardButton(
                    text=label("menu.language_en", "en"), callback_data=LanguageChoice(locale="en").pack()
                ),
            ]
        ]
    )


def share_phone_keyboard(locale: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=label("menu.share_phone", locale), request_contact=True)],
            [KeyboardButton(text=label("menu.cancel", locale))],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def code_keyboard(locale: str) -> InlineKeyboardMarkup:
    """Under a code prompt or a refused code (web chat): ask for a new code, or leave for the menu."""
    return InlineKeyboardMarkup(
        inline_keyboard=[[_menu_button("phone_code", locale), _menu_button("home", locale)]]
    )


def remove_keyboard() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def back_to_menu(locale: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_menu_button("home", locale)]])

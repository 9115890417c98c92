"""Keyboard builders shared by the routers; every label comes from messages/."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from backend.people.schemas import IdentityOut
from messages import label


class MenuAction(CallbackData, prefix="m"):
    action: str


class LanguageChoice(CallbackData, prefix="lang"):
    locale: str


class PayAction(CallbackData, prefix="pay"):
    """Packs to "pay:<id>", the same string the backend puts on its "pay now" notification buttons."""

    application_id: int


class PolicyAction(CallbackData, prefix="pol"):
    action: str  # list | view | pdf | endorse
    policy_id: int = 0


class EnrollChoice(CallbackData, prefix="en"):
    flow: str  # farmer | enterprise


# Entries that are always there (not features of their own): language, and phone binding until done.
def main_menu(identity: IdentityOut) -> InlineKeyboardMarkup:
    locale = identity.locale
    buttons = [
        InlineKeyboardButton(
            text=label(f"menu.{feature}", locale), callback_data=MenuAction(action=feature).pack()
        )
        for feature in identity.menu
    ]
    if not identity.phone_verified:
        buttons.append(_menu_button("phone", locale))
    buttons.append(_menu_button("language", locale))
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


def remove_keyboard() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def back_to_menu(locale: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_menu_button("home", locale)]])

"""My devices: the chats (Telegram, web chat on each phone or computer) through which the person is bound,
and ending one (it no longer sees the person's data until it verifies the number again)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from backend.people.schemas import DeviceOut
from backend.refusals import refusal_message
from bot.client import BackendError
from bot.context import WEBCHAT, ChatContext
from bot.keyboards import MenuAction
from bot.replies import reply_to_query
from messages import label, render


class DeviceAction(CallbackData, prefix="dev"):
    action: str  # end
    device_id: int


def devices_markup(devices: list[DeviceOut], locale: str) -> InlineKeyboardMarkup:
    """One "end" button per other device (this one is not ended from itself), then the menu."""
    rows = [
        [
            InlineKeyboardButton(
                text=label("menu.device_end", locale, masked_id=d.masked_id),
                callback_data=DeviceAction(action="end", device_id=d.id).pack(),
            )
        ]
        for d in devices
        if not d.this
    ]
    home = InlineKeyboardButton(
        text=label("menu.home", locale), callback_data=MenuAction(action="home").pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[*rows, [home]])


async def list_devices(query: CallbackQuery, ctx: ChatContext) -> None:
    await ctx.ensure()
    locale = await ctx.locale()
    devices = await ctx.backend.devices(ctx.key)
    await reply_to_query(
        query, render("start/devices", locale, devices=devices, ended=False), devices_markup(devices, locale)
    )


async def end_device(
    query: CallbackQuery,
    callback_data: DeviceAction,
    ctx: ChatContext,
    erase_webchat: Callable[[str], Awaitable[None]],
) -> None:
    await ctx.ensure()
    locale = await ctx.locale()
    try:
        ended = await ctx.backend.end_device(ctx.key, callback_data.device_id)
    except BackendError as exc:
        await reply_to_query(query, refusal_message(exc.code, locale, exc.detail), devices_markup([], locale))
        return
    if ended.ended_channel == WEBCHAT:
        await erase_webchat(ended.ended_external_id)
    text = render("start/devices", locale, devices=ended.devices, ended=True)
    await reply_to_query(query, text, devices_markup(ended.devices, locale))


def build_router() -> Router:
    router = Router(name="devices")
    router.callback_query.register(list_devices, MenuAction.filter(F.action == "devices"))
    router.callback_query.register(end_device, DeviceAction.filter(F.action == "end"))
    return router

"""The help answer (/help, the menu's help, a typed "帮助"): the help text, and, while a disaster has closed
the branch of a region where the chat's person is insured, that every service continues online (R-DIS-5).
One backend call (``GET /api/bot/branches/closed``); when it fails, the help text alone."""

from __future__ import annotations

from backend.claims.catastrophe.schemas import ClosedBranchOut
from bot.client import BackendError, BackendUnavailable
from bot.context import ChatContext
from messages import render


async def closed_branches(ctx: ChatContext) -> list[ClosedBranchOut]:
    try:
        data = await ctx.backend.request("GET", "/api/bot/branches/closed", identity=ctx.key)
    except (BackendError, BackendUnavailable):
        return []  # a chat that never started, or the backend away: the help text still answers
    return [ClosedBranchOut.model_validate(item) for item in data]


async def help_text(ctx: ChatContext, locale: str) -> str:
    text = render("start/help", locale)
    closures = await closed_branches(ctx)
    if closures:
        text = render("events/branch_closed_help", locale, closures=closures) + "\n" + text
    return text

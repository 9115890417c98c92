"""Browser input turned into Telegram ``Update`` objects, so the one dispatcher serves both channels."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from aiogram.types import Update

from bot.channels.webchat.store import WebChatMessage

_update_ids = itertools.count(1)
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}")


def _user(number: int, first_name: str | None, language_code: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": number, "is_bot": False, "first_name": first_name or "webchat"}
    if language_code:
        user["language_code"] = language_code
    return user


def _base_message(number: int, user: dict[str, Any], message_id: int) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": {"id": number, "type": "private", "first_name": user["first_name"]},
        "from": user,
    }


def _update(bot: Any, **content: Any) -> Update:
    """An update already bound to the web chat's Bot: feed_update would otherwise re-serialise and
    re-validate every unbound update to bind it."""
    data = {"update_id": next(_update_ids), **content}
    return Update.model_validate(data, context={"bot": bot} if bot is not None else {})


def text_update(
    number: int, text: str, *, first_name: str | None, language_code: str | None, bot: Any = None
) -> Update:
    user = _user(number, first_name, language_code)
    message = _base_message(number, user, next(_update_ids))
    message["text"] = text
    command = _COMMAND.match(text)
    if command:
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": command.end()}]
    return _update(bot, message=message)


def contact_update(
    number: int, phone_number: str, *, first_name: str | None, language_code: str | None, bot: Any = None
) -> Update:
    """The request-contact button shares the user's own number, so the contact's user_id is theirs."""
    user = _user(number, first_name, language_code)
    message = _base_message(number, user, next(_update_ids))
    message["contact"] = {"phone_number": phone_number, "first_name": user["first_name"], "user_id": number}
    return _update(bot, message=message)


def location_update(
    number: int,
    latitude: float,
    longitude: float,
    *,
    first_name: str | None,
    language_code: str | None,
    bot: Any = None,
) -> Update:
    user = _user(number, first_name, language_code)
    message = _base_message(number, user, next(_update_ids))
    message["location"] = {"latitude": latitude, "longitude": longitude}
    return _update(bot, message=message)


def media_update(
    number: int,
    file_id: str,
    size: int,
    caption: str | None,
    *,
    video_type: str | None,
    first_name: str | None,
    language_code: str | None,
    bot: Any = None,
) -> Update:
    """A photo (``video_type`` None) or a video of that MIME type from the browser, as Telegram would deliver
    it: the form takes a video where it asks for one."""
    user = _user(number, first_name, language_code)
    message = _base_message(number, user, next(_update_ids))
    unique = file_id[-16:]
    if video_type is None:
        message["photo"] = [
            {"file_id": file_id, "file_unique_id": unique, "width": 1280, "height": 960, "file_size": size}
        ]
    else:
        message["video"] = {
            "file_id": file_id,
            "file_unique_id": unique,
            "width": 0,
            "height": 0,
            "duration": 0,
            "mime_type": video_type,
            "file_size": size,
        }
    if caption:
        message["caption"] = caption
    return _update(bot, message=message)


def callback_update(
    number: int,
    data: str,
    origin: WebChatMessage | None,
    *,
    first_name: str | None,
    language_code: str | None,
    bot: Any = None,
) -> Update:
    """A button tap; ``origin`` is the bot message that carried the button (None when it is gone)."""
    user = _user(number, first_name, language_code)
    query: dict[str, Any] = {
        "id": str(next(_update_ids)),
        "from": user,
        "chat_instance": str(number),
        "data": data,
    }
    if origin is not None:
        message = _base_message(number, {"id": 1, "is_bot": True, "first_name": "Tianbao"}, origin.id)
        message["text"] = origin.text
        query["message"] = message
    return _update(bot, callback_query=query)

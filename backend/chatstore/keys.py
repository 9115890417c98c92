"""Where a web chat's state lives, by name: the bot writes it there (``bot/channels/webchat/store.py``,
``bot/sqlstore.py``, aiogram's storages), the scheduler's expiry (``backend/chatstore/jobs.py``)
deletes it there. One definition, so the two can never disagree about a key.

No database here (the bot's channel code imports it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# The web chat bot's id (the aiogram Bot behind the web chat session).
WEBCHAT_BOT_ID = 1
WEBCHAT_CHANNEL = "webchat"
REDIS_PREFIX = "tianbao"


def numeric_id(chat_id: str) -> int:
    """A stable positive 52-bit integer for a web chat id: aiogram's chats and users need int ids,
    and FSM keys must survive restarts and be the same in every process."""
    digest = hashlib.blake2b(chat_id.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") & ((1 << 52) - 1)) or 1


def transcript_keys(chat_id: str, prefix: str = REDIS_PREFIX) -> tuple[str, str, str]:
    """The Redis transcript: the message counter, the ids in order, the messages by id."""
    base = f"{prefix}:webchat:{chat_id}"
    return f"{base}:seq", f"{base}:ids", f"{base}:msgs"


def input_keys(chat_id: str, prefix: str = REDIS_PREFIX) -> tuple[str, str]:
    """The Redis marks of the chat's inputs by client id (answered with which messages, or running),
    and their order (the oldest are forgotten first)."""
    base = f"{prefix}:webchat:{chat_id}"
    return f"{base}:inputs", f"{base}:inputs-order"


def sql_inputs_key(chat_id: str) -> str:
    """The chat's input marks in ``conversation_state`` (no table of their own: no migration, and
    they go with the chat's conversation)."""
    return f"webchat-inputs:{chat_id}"


def activity_key(prefix: str = REDIS_PREFIX) -> str:
    """A sorted set of every Redis-kept web chat, scored by the time (Unix seconds) of its last message:
    the expiry finds idle chats here without scanning the keyspace."""
    return f"{prefix}:webchat-active"


def sql_state_key(chat_id: str) -> str:
    """The chat's row in ``conversation_state`` (``bot.sqlstore.SqlStorage``: aiogram's DefaultKeyBuilder
    with the bot id and the destiny; a web chat's user is its chat)."""
    number = numeric_id(chat_id)
    return f"fsm:{WEBCHAT_BOT_ID}:{number}:{number}:default"


def redis_state_keys(chat_id: str) -> tuple[str, str]:
    """The chat's state and data in aiogram's RedisStorage (its default key builder)."""
    number = numeric_id(chat_id)
    return f"fsm:{number}:{number}:state", f"fsm:{number}:{number}:data"


def files_root(var_dir: Path | str) -> Path:
    """Where ``WebChatFiles`` keeps every chat's files on disk (the Redis layout's shared volume)."""
    return Path(var_dir) / "webchat"


def files_folder(root: Path, chat_id: str) -> Path:
    """Where ``WebChatFiles`` keeps a chat's files on disk (the Redis layout's shared volume)."""
    return root / chat_id

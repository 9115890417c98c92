"""Web chat: the bot in a browser, with no token and no internet. The same session is the test harness."""

from bot.channels.webchat.session import WebChatSession, capture_replies
from bot.channels.webchat.store import (
    MemoryWebChatStore,
    RedisWebChatStore,
    StoredFile,
    WebChatFiles,
    WebChatFileStore,
    WebChatMessage,
    WebChatStore,
    numeric_id,
)

__all__ = [
    "MemoryWebChatStore",
    "RedisWebChatStore",
    "StoredFile",
    "WebChatFileStore",
    "WebChatFiles",
    "WebChatMessage",
    "WebChatSession",
    "WebChatStore",
    "capture_replies",
    "numeric_id",
]

"""Web chat sessions: which chat a browser may read and write.

A chat id alone grants nothing. The server picks every new chat's id (random, unguessable) and hands
the browser a signed, HttpOnly cookie that names it; each ``/webchat/api/{chat_id}/...`` and
``/webchat/files/{chat_id}/...`` request must carry a cookie naming that chat, else it is refused.
The cookie is stateless: ``<chat id>.<issued, base 36>.<HMAC-SHA256>``, keyed by a key derived from
the settings' secret key (as the webhook secret is), so every bot replica that shares the secret
accepts it and a restart keeps the page's chat. It lasts ``MAX_AGE_SECONDS`` and is renewed on use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "tianbao_chat"
MAX_AGE_SECONDS = 180 * 86400  # half a year: a farmer who comes back next season finds their chat
RENEW_AFTER_SECONDS = 86400  # renewed at most once a day, not on every message
_KEY_PURPOSE = b"tianbao-webchat-session-v1"


def derive_key(secret_key: str) -> bytes:
    """The session key, derived from the secret key for this one purpose (a leak of one derived secret
    reveals neither the secret key nor the others)."""
    return hmac.new(secret_key.encode(), _KEY_PURPOSE, hashlib.sha256).digest()


def new_chat_id() -> str:
    """An unguessable chat id (128 random bits), within the chat id pattern."""
    return "w" + secrets.token_hex(16)


@dataclass(frozen=True)
class ChatGrant:
    chat_id: str
    issued_at: int

    def due_for_renewal(self, now: float) -> bool:
        return now - self.issued_at >= RENEW_AFTER_SECONDS


class WebChatSessions:
    """Issues and checks the session cookie's value."""

    def __init__(self, secret_key: str, *, max_age: int = MAX_AGE_SECONDS) -> None:
        if not secret_key:
            raise ValueError("web chat sessions need the settings' secret key")
        self._key = derive_key(secret_key)
        self.max_age = max_age

    def _sign(self, chat_id: str, issued: str) -> str:
        mac = hmac.new(self._key, f"{chat_id}.{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def issue(self, chat_id: str, now: float | None = None) -> str:
        issued = _base36(int(time.time() if now is None else now))
        return f"{chat_id}.{issued}.{self._sign(chat_id, issued)}"

    def read(self, value: str | None, now: float | None = None) -> ChatGrant | None:
        """The session a cookie value names, or None when it is missing, forged, or expired."""
        if not value or value.count(".") != 2:
            return None
        chat_id, issued, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(chat_id, issued)):
            return None
        try:
            issued_at = int(issued, 36)
        except ValueError:
            return None
        current = time.time() if now is None else now
        if not issued_at <= current + 60 or current - issued_at > self.max_age:  # 60 s of clock skew
            return None
        return ChatGrant(chat_id, issued_at)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out

"""One-time codes, stored hashed: the table never holds a code anyone could type."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from backend.db import utcnow


class PhoneCode(SQLModel, table=True):
    """A code sent to ``phone`` for the chat ``identity_id``. Only the chat's latest code counts; it is dead
    once used, past ``expires_at``, or after the allowed number of wrong tries."""

    __tablename__ = "phone_code"

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="chat_identity.id", index=True)
    phone: str = Field(max_length=20)
    # HMAC-SHA256 of the code under the secret key, bound to the chat and the number (hex).
    code_hash: str = Field(max_length=64)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None

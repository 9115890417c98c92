"""Tables of the SQL chat stores (embedded default, and PostgreSQL without Redis)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class WebChatThread(SQLModel, table=True):
    """One web chat: its message counter outlives every trimmed message, so numbering never restarts."""

    __tablename__ = "webchat_thread"

    chat_id: str = Field(primary_key=True, max_length=64)
    last_message_id: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class WebChatRecord(SQLModel, table=True):
    """A bot message as the browser sees it (``WebChatMessage.to_json()`` without the id)."""

    __tablename__ = "webchat_message"

    chat_id: str = Field(primary_key=True, max_length=64)
    message_id: int = Field(primary_key=True)
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class WebChatFileRecord(SQLModel, table=True):
    """A file exchanged in web chat; the random token is the capability, shown only to that chat."""

    __tablename__ = "webchat_file"

    token: str = Field(primary_key=True, max_length=64)
    chat_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=120)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ConversationState(SQLModel, table=True):
    """aiogram FSM state and data of one conversation, keyed as aiogram's DefaultKeyBuilder keys it."""

    __tablename__ = "conversation_state"

    key: str = Field(primary_key=True, max_length=255)
    state: str | None = Field(default=None, max_length=255)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)

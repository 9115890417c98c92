"""People and the chat identities through which they reach Tianbao."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class Person(SQLModel, table=True):
    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, index=True, unique=True, max_length=20)
    # R-ENR-5: set when this person first signs an application as the insured (same phone as the verified
    # account); from then on only this ID number may sign as "insured" through the person's accounts.
    # Unique: an ID number typed first by one account can never be signed for by a second account too.
    id_number: str | None = Field(default=None, index=True, unique=True, max_length=18)
    # The same for the unified social credit code of the organisation or enterprise this person signs for.
    credit_code: str | None = Field(default=None, index=True, unique=True, max_length=18)
    created_at: datetime = Field(default_factory=utcnow)


class ChatIdentity(SQLModel, table=True):
    """One account on one channel (Telegram user, web chat id), bound to a person once the phone is shared."""

    __tablename__ = "chat_identity"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_chat_identity_channel_external"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    # Where messages go on that channel: the Telegram chat id, or the web chat id.
    address: str = Field(max_length=64)
    locale: str = Field(default="zh-CN", max_length=10)
    locale_chosen: bool = False
    first_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=20)
    phone_verified_at: datetime | None = None
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    # Set when the user blocked the bot: excluded from fan-outs until they /start again.
    stopped_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class Enterprise(SQLModel, table=True):
    """An enterprise insured under work-safety liability cover."""

    __tablename__ = "enterprise"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    credit_code: str = Field(unique=True, max_length=18)
    legal_representative: str = Field(max_length=100)
    phone: str | None = Field(default=None, max_length=20)
    industry_code: str = Field(max_length=20)
    region_code: str = Field(max_length=12, index=True)
    address: str = Field(default="", max_length=300)
    employees: int = 0
    created_at: datetime = Field(default_factory=utcnow)

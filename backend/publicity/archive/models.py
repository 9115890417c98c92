"""``publicity_archive``: one row per archived fact (a publication as shown, a closing, a notice-board
photo). Rows are only ever inserted; ``archive/service.py`` documents the hash chain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Text
from sqlmodel import Field, SQLModel

from backend.db import utcnow


class RecordKind(StrEnum):
    PUBLICATION = "publication"  # a version as shown: rendered page and PDF, window, villages, recipients
    CLOSING = "closing"  # the notice closed at the end of its window
    BOARD_PHOTO = "board_photo"  # a photo of the notice on the village board, with its EXIF time and place


class ArchiveRecord(SQLModel, table=True):
    __tablename__ = "publicity_archive"

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="publicity_notice.id", index=True)
    version: int
    record_kind: str = Field(max_length=20)
    # Everything else the record says (times as ISO text, villages, channels, recipients, EXIF).
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    photo: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    content_sha256: str = Field(max_length=64)
    # Unique: two writers that read the same tail cannot both append after it (the chain never forks).
    prev_sha256: str = Field(max_length=64, unique=True)
    record_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)

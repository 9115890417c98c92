"""The archive as a SHA-256 hash chain (R-PUB-3).

Records are only ever inserted (no function here or elsewhere updates one). Each record holds:

- ``content_sha256`` = SHA-256 of the record's **canonical serialisation**: the UTF-8 bytes of the JSON
  object ``{"id", "notice_id", "version", "record_kind", "payload", "html_sha256", "pdf_sha256",
  "photo_sha256"}`` written with sorted keys, no whitespace (separators ``,`` and ``:``) and non-ASCII
  characters as themselves (``ensure_ascii=False``); a missing blob's hash is ``null``, a present blob's
  is the hex SHA-256 of its bytes (the HTML as UTF-8). Times inside ``payload`` are ISO 8601 text.
- ``prev_sha256`` = the previous record's ``record_sha256`` (by id), or 64 zeros for the first record;
  unique, so two writers cannot both append after the same record (the loser's insert fails and is
  retried by its caller's transaction).
- ``record_sha256`` = SHA-256 of ``prev_sha256 + content_sha256`` (the two hex strings, ASCII).

``verify`` recomputes all three from what is stored and names the first record that does not match:
a changed payload, page, PDF or photo changes its ``content_sha256``; a deleted, inserted or reordered
record breaks the next record's ``prev_sha256``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.publicity.archive.models import ArchiveRecord

GENESIS = "0" * 64
VERIFY_BATCH = 500


def _sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def canonical(record: ArchiveRecord) -> bytes:
    """The bytes ``content_sha256`` is taken of (see the module docstring)."""
    document = {
        "id": record.id,
        "notice_id": record.notice_id,
        "version": record.version,
        "record_kind": record.record_kind,
        "payload": record.payload,
        "html_sha256": _sha(record.html.encode("utf-8")) if record.html is not None else None,
        "pdf_sha256": _sha(record.pdf),
        "photo_sha256": _sha(record.photo),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(prev_sha256: str, content_sha256: str) -> str:
    return hashlib.sha256((prev_sha256 + content_sha256).encode("ascii")).hexdigest()


async def _tail(session: AsyncSession) -> str:
    if session.get_bind().dialect.name == "postgresql":
        # One appender at a time across processes: the chain is a single line.
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('publicity_archive'))"))
    last = (await session.exec(select(ArchiveRecord).order_by(col(ArchiveRecord.id).desc()).limit(1))).first()
    return last.record_sha256 if last is not None else GENESIS


async def append(
    session: AsyncSession,
    *,
    notice_id: int,
    version: int,
    record_kind: str,
    payload: dict[str, Any],
    html: str | None = None,
    pdf: bytes | None = None,
    photo: bytes | None = None,
) -> ArchiveRecord:
    """Append one record in the caller's transaction (flushed, so its id is in its hash)."""
    prev = await _tail(session)
    record = ArchiveRecord(
        notice_id=notice_id,
        version=version,
        record_kind=record_kind,
        payload=payload,
        html=html,
        pdf=pdf,
        photo=photo,
        content_sha256="",
        prev_sha256=prev,
        record_sha256="",
    )
    session.add(record)
    await session.flush()  # the id takes part in the content
    record.content_sha256 = hashlib.sha256(canonical(record)).hexdigest()
    record.record_sha256 = chain_hash(prev, record.content_sha256)
    await session.flush()
    return record


@dataclass(frozen=True)
class Mismatch:
    record_id: int
    reason: str  # content | previous | record


def check(record: ArchiveRecord, expected_prev: str) -> Mismatch | None:
    """Whether ``record`` matches its stored hashes and follows ``expected_prev``."""
    assert record.id is not None
    if hashlib.sha256(canonical(record)).hexdigest() != record.content_sha256:
        return Mismatch(record.id, "content")
    if record.prev_sha256 != expected_prev:
        return Mismatch(record.id, "previous")
    if chain_hash(record.prev_sha256, record.content_sha256) != record.record_sha256:
        return Mismatch(record.id, "record")
    return None


async def verify_chain(session: AsyncSession) -> tuple[int, Mismatch | None]:
    """Walk the whole chain in id order, in batches; (records checked, the first mismatch or None)."""
    expected = GENESIS
    checked = 0
    after = 0
    while True:
        batch = (
            await session.exec(
                select(ArchiveRecord)
                .where(col(ArchiveRecord.id) > after)
                .order_by(col(ArchiveRecord.id))
                .limit(VERIFY_BATCH)
            )
        ).all()
        if not batch:
            return checked, None
        for record in batch:
            checked += 1
            mismatch = check(record, expected)
            if mismatch is not None:
                return checked, mismatch
            expected = record.record_sha256
            after = record.id or after
        session.expunge_all()  # the blobs of a long archive are not kept in memory


async def verify_record(session: AsyncSession, record: ArchiveRecord) -> Mismatch | None:
    """One record against its own hashes and its predecessor's ``record_sha256``."""
    previous = (
        await session.exec(
            select(ArchiveRecord.record_sha256)
            .where(col(ArchiveRecord.id) < record.id)
            .order_by(col(ArchiveRecord.id).desc())
            .limit(1)
        )
    ).first()
    return check(record, previous or GENESIS)

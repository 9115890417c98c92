"""The expiry of idle anonymous web chats (the hourly scheduler job ``webchat-expiry``).

A web chat needs no account, so chats nobody came back to would pile up for ever: their transcript,
their conversation (FSM) state, their files and their chat identity. A chat bound to no person and
silent for ``TIANBAO_WEBCHAT_IDLE_DAYS`` (7) is deleted with all of them; a chat whose phone was bound
to a person is kept, however old (their policies and claims speak to them there).

Set-based, in batches: each batch is one ``DELETE ... WHERE chat_id IN (...)`` per table, whatever the
number of messages or files, so a backlog of 100,000 chats is a few hundred statements, not millions.
Both layouts are covered: the database's (the embedded default, PostgreSQL without Redis: the chat's
last message is ``webchat_thread.updated_at``) and Redis's (``tianbao:webchat-active`` scores each
chat by its last message; files on the shared volume under ``var/webchat/<chat>``). Idempotent: a run
twice, or after a restart, finds nothing more to do.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import and_, delete, exists, not_, select
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.chatstore.keys import (
    REDIS_PREFIX,
    WEBCHAT_CHANNEL,
    activity_key,
    files_folder,
    input_keys,
    redis_state_keys,
    sql_inputs_key,
    sql_state_key,
    transcript_keys,
)
from backend.chatstore.models import ConversationState, WebChatFileRecord, WebChatRecord, WebChatThread
from backend.db import utcnow
from backend.people.models import ChatIdentity

BATCH = 500
_CHAT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_THREAD = WebChatThread.__table__  # type: ignore[attr-defined]
_MESSAGE = WebChatRecord.__table__  # type: ignore[attr-defined]
_FILE = WebChatFileRecord.__table__  # type: ignore[attr-defined]
_STATE = ConversationState.__table__  # type: ignore[attr-defined]
_IDENTITY = ChatIdentity.__table__  # type: ignore[attr-defined]


@dataclass
class ExpiryReport:
    chats: int = 0  # chats deleted (database and Redis layouts)
    identities: int = 0  # their chat identities, where nothing else refers to them


def _bound(chat_id: Any) -> Any:
    """There is a web chat identity for the chat with a person bound to it."""
    return exists().where(
        _IDENTITY.c.channel == WEBCHAT_CHANNEL,
        _IDENTITY.c.external_id == chat_id,
        _IDENTITY.c.person_id.is_not(None),
    )


async def expire_idle_webchats(
    *,
    session: AsyncSession,
    idle_days: int,
    redis: Redis | None = None,
    files_root: Path | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH,
    redis_prefix: str = REDIS_PREFIX,
) -> ExpiryReport:
    """Delete every anonymous web chat idle for ``idle_days``; ``redis`` and ``files_root`` when the
    bot keeps chats in Redis and files on the shared volume."""
    cutoff = (now or utcnow()) - timedelta(days=idle_days)
    report = ExpiryReport()
    while True:
        chats = await _expire_sql_batch(session, cutoff, batch_size)
        report.identities += await _delete_identities(session, chats)
        await session.commit()
        report.chats += len(chats)
        if len(chats) < batch_size:
            break
    if redis is not None:
        await _expire_redis(session, redis, cutoff, files_root, batch_size, redis_prefix, report)
    return report


async def _expire_sql_batch(session: AsyncSession, cutoff: datetime, batch_size: int) -> list[str]:
    """One batch of the database layout: the idle threads first (their deletion re-checks the idle
    time, so a chat that spoke since the pick stays), then everything of the chats deleted."""
    picked = (
        select(_THREAD.c.chat_id)
        .where(_THREAD.c.updated_at < cutoff, not_(_bound(_THREAD.c.chat_id)))
        .limit(batch_size)
    )
    candidates = list((await session.execute(picked)).scalars())
    if not candidates:
        return []
    gone = await session.execute(
        delete(_THREAD)
        .where(_THREAD.c.chat_id.in_(candidates), _THREAD.c.updated_at < cutoff)
        .returning(_THREAD.c.chat_id)
    )
    chats = list(gone.scalars())
    if chats:
        await session.execute(delete(_MESSAGE).where(_MESSAGE.c.chat_id.in_(chats)))
        await session.execute(delete(_FILE).where(_FILE.c.chat_id.in_(chats)))
        states = [key for c in chats for key in (sql_state_key(c), sql_inputs_key(c))]
        await session.execute(delete(_STATE).where(_STATE.c.key.in_(states)))
    return chats


def _referenced(identity_id: Any) -> list[Any]:
    """A row of another table that names the identity (an application, a claim, a staff alert ...),
    found from the schema, so a table added later is respected without a change here."""
    clauses = []
    for table in SQLModel.metadata.tables.values():
        for key in table.foreign_keys:
            if key.column.table is _IDENTITY and key.column.name == "id":
                clauses.append(exists().where(key.parent == identity_id))
    return clauses


async def _delete_identities(session: AsyncSession, chats: Sequence[str]) -> int:
    """The chats' identities, if still bound to no one and referred to by nothing (an identity that
    applied or reported stays: its records name it)."""
    if not chats:
        return 0
    conditions = [
        _IDENTITY.c.channel == WEBCHAT_CHANNEL,
        _IDENTITY.c.external_id.in_(list(chats)),
        _IDENTITY.c.person_id.is_(None),
        *[not_(clause) for clause in _referenced(_IDENTITY.c.id)],
    ]
    result = await session.execute(delete(_IDENTITY).where(and_(*conditions)))
    return int(getattr(result, "rowcount", 0) or 0)


# KEYS[1]: the activity set; then 7 keys a chat (seq, ids, msgs, FSM state, FSM data, input marks and
# their order). ARGV[1]: the
# cutoff (Unix seconds); then per chat its id and 1 to delete it (anonymous) or 0 to keep it (bound).
# A chat that spoke since it was picked (its score moved past the cutoff) is left alone, atomically.
# Bound chats leave the set too (they are kept; their next message puts them back): the next run
# does not look at them again.
_EXPIRE_SCRIPT = """
local deleted = {}
for i = 2, #ARGV, 2 do
  local chat = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], chat)
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], chat)
    if ARGV[i + 1] == '1' then
      local base = (i / 2 - 1) * 7 + 1
      for k = 1, 7 do redis.call('DEL', KEYS[base + k]) end
      table.insert(deleted, chat)
    end
  end
end
return deleted
"""


async def _expire_redis(
    session: AsyncSession,
    redis: Redis,
    cutoff: datetime,
    files_root: Path | None,
    batch_size: int,
    prefix: str,
    report: ExpiryReport,
) -> None:
    active = activity_key(prefix)
    script = redis.register_script(_EXPIRE_SCRIPT)
    while True:
        raw = await redis.zrangebyscore(active, "-inf", int(cutoff.timestamp()), start=0, num=batch_size)
        picked = [item.decode() if isinstance(item, bytes) else str(item) for item in raw]
        if not picked:
            return
        bound = await _bound_among(session, picked)
        keys: list[str] = [active]
        args: list[str | int] = [int(cutoff.timestamp())]
        for chat in picked:
            keys.extend([*transcript_keys(chat, prefix), *redis_state_keys(chat), *input_keys(chat, prefix)])
            args.extend([chat, 0 if chat in bound else 1])
        deleted = [d.decode() if isinstance(d, bytes) else str(d) for d in await script(keys=keys, args=args)]
        if files_root is not None:
            await asyncio.to_thread(_remove_folders, files_root, deleted)
        report.identities += await _delete_identities(session, deleted)
        await session.commit()
        report.chats += len(deleted)
        if len(picked) < batch_size:
            return


async def _bound_among(session: AsyncSession, chats: Sequence[str]) -> set[str]:
    query = select(_IDENTITY.c.external_id).where(
        _IDENTITY.c.channel == WEBCHAT_CHANNEL,
        _IDENTITY.c.external_id.in_(list(chats)),
        _IDENTITY.c.person_id.is_not(None),
    )
    return set((await session.execute(query)).scalars())


def _remove_folders(root: Path, chats: Sequence[str]) -> None:
    for chat in chats:
        if _CHAT_ID.match(chat):  # a name from Redis never walks out of the files folder
            shutil.rmtree(files_folder(root, chat), ignore_errors=True)

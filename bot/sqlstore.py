"""Web chat transcripts, web chat files and conversation (FSM) state in the system's database.

Used when no Redis is configured: the embedded default (SQLite) and PostgreSQL without Redis, so a
restart keeps what a user saw and where they were in a form. It lives outside ``bot.channels`` and
``bot.routers`` (which may not touch the database) and is wired in by ``bot.runtime``; the web chat
session and the dispatcher only see the store protocols.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StateType, StorageKey
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.chatstore.keys import sql_inputs_key
from backend.chatstore.models import ConversationState, WebChatFileRecord, WebChatRecord, WebChatThread
from backend.db import utcnow
from bot.channels.webchat.store import (
    SeenInput,
    StoredFile,
    WebChatMessage,
    claim_in,
    done_mark,
    is_valid_chat_id,
    is_valid_file_token,
    new_file_token,
    safe_file_name,
)

_THREAD = WebChatThread.__table__  # type: ignore[attr-defined]
_MESSAGE = WebChatRecord.__table__  # type: ignore[attr-defined]
_FILE = WebChatFileRecord.__table__  # type: ignore[attr-defined]
_STATE = ConversationState.__table__  # type: ignore[attr-defined]


def _upsert(engine: AsyncEngine, table: Any) -> Any:
    """``INSERT ... ON CONFLICT`` of the engine's dialect (SQLite and PostgreSQL spell it alike)."""
    return (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(table)


class SqlWebChatStore:
    """The web chat transcript in ``webchat_message``; ``webchat_thread`` numbers each chat's messages.

    The counter row is never trimmed, so a message's number is higher than every number before it,
    across restarts and trimming: the page shows what comes after the highest id it has seen."""

    def __init__(self, engine: AsyncEngine, history_limit: int = 500) -> None:
        self.engine = engine
        self.history_limit = history_limit
        upsert = _upsert(engine, _THREAD)
        # Number the message in the same statement that takes the chat's row lock (PostgreSQL) or the
        # write lock (SQLite): two appends can never get one number.
        self._next_id = upsert.values(chat_id=upsert.excluded.chat_id).on_conflict_do_update(
            index_elements=["chat_id"],
            set_={
                "last_message_id": _THREAD.c.last_message_id + 1,
                "updated_at": upsert.excluded.updated_at,
            },
        )

    async def append(self, chat_id: str, message: WebChatMessage) -> WebChatMessage:
        body = message.to_json()
        del body["id"]
        now = utcnow()
        async with self.engine.begin() as conn:
            statement = self._next_id.values(chat_id=chat_id, last_message_id=1, updated_at=now)
            number = (await conn.execute(statement.returning(_THREAD.c.last_message_id))).scalar_one()
            await conn.execute(
                insert(_MESSAGE).values(chat_id=chat_id, message_id=number, body=body, created_at=now)
            )
            await conn.execute(
                delete(_MESSAGE).where(
                    _MESSAGE.c.chat_id == chat_id, _MESSAGE.c.message_id <= number - self.history_limit
                )
            )
        return replace(message, id=int(number))

    async def claim_input(self, chat_id: str, client_id: str) -> SeenInput | None:
        """In one transaction on the chat's marks row: the write of its (do-nothing) insert takes
        SQLite's write lock, and PostgreSQL's row lock is ``FOR UPDATE``, so two resends never both
        claim."""
        key = sql_inputs_key(chat_id)
        async with self.engine.begin() as conn:
            blank = _upsert(self.engine, _STATE).values(key=key, state=None, data={"marks": {}})
            await conn.execute(blank.on_conflict_do_nothing(index_elements=["key"]))
            query = select(_STATE.c.data).where(_STATE.c.key == key).with_for_update()
            data = (await conn.execute(query)).scalar_one()
            marks: dict[str, str] = dict(data.get("marks", {}))  # JSON objects keep insertion order
            seen = claim_in(marks, client_id, time.time())
            if seen is None:
                await conn.execute(
                    update(_STATE)
                    .where(_STATE.c.key == key)
                    .values(data={"marks": marks}, updated_at=utcnow())
                )
            return seen

    async def finish_input(self, chat_id: str, client_id: str, reply_ids: Sequence[int]) -> None:
        await self._mark(chat_id, client_id, done_mark(reply_ids))

    async def release_input(self, chat_id: str, client_id: str) -> None:
        await self._mark(chat_id, client_id, None)

    async def _mark(self, chat_id: str, client_id: str, mark: str | None) -> None:
        key = sql_inputs_key(chat_id)
        async with self.engine.begin() as conn:
            query = select(_STATE.c.data).where(_STATE.c.key == key).with_for_update()
            data = (await conn.execute(query)).scalar_one_or_none()
            marks: dict[str, str] = dict((data or {}).get("marks", {}))
            if client_id not in marks:
                return
            if mark is None:
                del marks[client_id]
            else:
                marks[client_id] = mark
            await conn.execute(update(_STATE).where(_STATE.c.key == key).values(data={"marks": marks}))

    async def exists(self, chat_id: str) -> bool:
        query = select(_THREAD.c.chat_id).where(_THREAD.c.chat_id == chat_id)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def get(self, chat_id: str, message_id: int) -> WebChatMessage | None:
        query = select(_MESSAGE.c.body).where(
            _MESSAGE.c.chat_id == chat_id, _MESSAGE.c.message_id == message_id
        )
        async with self.engine.connect() as conn:
            body = (await conn.execute(query)).scalar_one_or_none()
        return None if body is None else WebChatMessage.from_json({"id": message_id, **body})

    async def replace(self, chat_id: str, message: WebChatMessage) -> None:
        body = message.to_json()
        del body["id"]
        async with self.engine.begin() as conn:
            await conn.execute(
                update(_MESSAGE)
                .where(_MESSAGE.c.chat_id == chat_id, _MESSAGE.c.message_id == message.id)
                .values(body=body)
            )

    async def after(self, chat_id: str, after_id: int, limit: int = 200) -> list[WebChatMessage]:
        query = (
            select(_MESSAGE.c.message_id, _MESSAGE.c.body)
            .where(_MESSAGE.c.chat_id == chat_id, _MESSAGE.c.message_id > after_id)
            .order_by(_MESSAGE.c.message_id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [WebChatMessage.from_json({"id": number, **body}) for number, body in rows]

    async def erase(self, chat_id: str) -> None:
        """The messages and input marks go; the thread row (the numbering) stays."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(_MESSAGE).where(_MESSAGE.c.chat_id == chat_id))
            await conn.execute(delete(_STATE).where(_STATE.c.key == sql_inputs_key(chat_id)))


class SqlWebChatFiles:
    """Web chat files in ``webchat_file``: the PDFs and photos of a chat survive with its transcript."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(self, chat_id: str, filename: str, data: bytes) -> str:
        token = new_file_token()
        row = {"token": token, "chat_id": chat_id, "name": safe_file_name(filename), "data": data}
        async with self.engine.begin() as conn:
            await conn.execute(insert(_FILE).values(**row, created_at=utcnow()))
        return token

    async def load(self, chat_id: str, token: str) -> StoredFile | None:
        if not is_valid_chat_id(chat_id) or not is_valid_file_token(token):
            return None
        found = await self.load_token(token)
        return found if found is not None and found.chat_id == chat_id else None

    async def load_token(self, token: str) -> StoredFile | None:
        if not is_valid_file_token(token):
            return None
        query = select(_FILE.c.chat_id, _FILE.c.name, _FILE.c.data).where(_FILE.c.token == token)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else StoredFile(chat_id=row.chat_id, name=row.name, data=bytes(row.data))

    async def erase(self, chat_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(_FILE).where(_FILE.c.chat_id == chat_id))


class SqlStorage(BaseStorage):
    """aiogram FSM storage in ``conversation_state``: a restart mid-form resumes at the same question.

    One row per conversation holds both the state and the data; a row with neither is deleted."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # The bot id is in the key: the web chat bot and the Telegram bot share the table.
        self.key_builder = DefaultKeyBuilder(prefix="fsm", with_bot_id=True, with_destiny=True)
        self._upsert = _upsert(engine, _STATE)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, {"state": value})

    async def get_state(self, key: StorageKey) -> str | None:
        row = await self._read(key)
        return None if row is None else row.state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._write(key, {"data": dict(data)})

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        row = await self._read(key)
        return {} if row is None else dict(row.data)

    async def close(self) -> None:
        return None  # the engine belongs to the runtime (or the app) that made it

    async def _read(self, key: StorageKey) -> Any:
        query = select(_STATE.c.state, _STATE.c.data).where(_STATE.c.key == self.key_builder.build(key))
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first()

    async def _write(self, key: StorageKey, values: dict[str, Any]) -> None:
        name = self.key_builder.build(key)
        row = {"key": name, "state": None, "data": {}, **values, "updated_at": utcnow()}
        statement = self._upsert.values(**row).on_conflict_do_update(
            index_elements=["key"], set_={**values, "updated_at": row["updated_at"]}
        )
        async with self.engine.begin() as conn:
            kept = (await conn.execute(statement.returning(_STATE.c.state, _STATE.c.data))).one()
            if kept.state is None and not kept.data:
                # Nothing left to remember: no row, as aiogram's own storages keep no empty key.
                await conn.execute(delete(_STATE).where(_STATE.c.key == name))

"""Web chat transcripts and files: Redis when several processes share them; the database otherwise
(``bot.sqlstore``, wired in by ``bot.runtime``: this package may not touch the database); memory for tests."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

from redis.asyncio import Redis

# The key layout is backend/chatstore/keys.py, shared with the expiry job; numeric_id is named here too.
from backend.chatstore.keys import activity_key, files_folder, input_keys, transcript_keys
from backend.chatstore.keys import numeric_id as numeric_id

CHAT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# The id the page gives each input (a text, a tap, a photo ...), so a resend is answered, not re-run.
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
INPUTS_KEPT = 200  # client ids remembered per chat: far more than a page ever has unanswered
PENDING_SECONDS = 120  # a claim older than this was a process that died mid-input: taken over
_CHAT_ID = re.compile(CHAT_ID_PATTERN)
_FILE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def is_valid_chat_id(chat_id: str) -> bool:
    return bool(_CHAT_ID.match(chat_id))


@dataclass(frozen=True)
class WebChatMessage:
    """A bot message as the browser sees it (the /webchat API contract)."""

    id: int
    text: str
    buttons: list[list[dict[str, str]]] = field(default_factory=list)
    keyboard: list[list[dict[str, Any]]] | None = None
    document: dict[str, str] | None = None
    photo: dict[str, str] | None = None
    edited: bool = False

    def to_json(self) -> dict[str, Any]:
        """A shallow dict, to be serialised: ``asdict`` deep-copied every button row on every message."""
        return {name: getattr(self, name) for name in _MESSAGE_FIELDS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebChatMessage:
        return cls(**data)


_MESSAGE_FIELDS = tuple(f.name for f in fields(WebChatMessage))


@dataclass(frozen=True)
class SeenInput:
    """An input whose client id the chat has seen: answered (with these messages) or still running."""

    reply_ids: tuple[int, ...] | None  # None: another request is handling it now


def pending_mark(now: float) -> str:
    return f"p:{now:.3f}"


def done_mark(reply_ids: Sequence[int]) -> str:
    return "d:" + ",".join(str(i) for i in reply_ids)


def read_mark(mark: str, now: float) -> SeenInput | None:
    """What a stored mark says; None for a stale claim, which the caller takes over."""
    if mark.startswith("d:"):
        return SeenInput(tuple(int(i) for i in mark[2:].split(",") if i))
    if mark.startswith("p:") and now - float(mark[2:]) < PENDING_SECONDS:
        return SeenInput(None)
    return None


def claim_in(marks: dict[str, str], client_id: str, now: float, kept: int = INPUTS_KEPT) -> SeenInput | None:
    """Claim ``client_id`` in an insertion-ordered dict of marks (the memory and SQL stores), keeping
    the newest ``kept``; the seen input, or None when the caller now holds the claim."""
    current = marks.get(client_id)
    seen = read_mark(current, now) if current is not None else None
    if seen is not None:
        return seen
    marks.pop(client_id, None)
    marks[client_id] = pending_mark(now)
    for old in list(marks)[: max(0, len(marks) - kept)]:
        del marks[old]
    return None


class WebChatStore(Protocol):
    async def append(self, chat_id: str, message: WebChatMessage) -> WebChatMessage: ...

    async def exists(self, chat_id: str) -> bool:
        """Whether the chat has begun (the bot has said something in it, and it has not expired)."""
        ...

    async def get(self, chat_id: str, message_id: int) -> WebChatMessage | None: ...

    async def replace(self, chat_id: str, message: WebChatMessage) -> None: ...

    async def after(self, chat_id: str, after_id: int, limit: int = 200) -> list[WebChatMessage]: ...

    async def claim_input(self, chat_id: str, client_id: str) -> SeenInput | None:
        """Atomically: the input seen before (answered, or being handled), or None: the caller holds
        the claim and must ``finish_input`` or ``release_input``."""
        ...

    async def finish_input(self, chat_id: str, client_id: str, reply_ids: Sequence[int]) -> None: ...

    async def release_input(self, chat_id: str, client_id: str) -> None:
        """The input failed before it was answered: a resend runs it again."""
        ...

    async def erase(self, chat_id: str) -> None:
        """Forget the chat's messages and inputs (its device was ended). The numbering goes on, so the
        page, which shows what comes after the highest id it has seen, still shows what comes next."""
        ...


class MemoryWebChatStore:
    def __init__(self, history_limit: int = 500) -> None:
        self.history_limit = history_limit
        self._chats: dict[str, deque[WebChatMessage]] = {}
        self._counters: dict[str, int] = {}
        self._inputs: dict[str, OrderedDict[str, str]] = {}

    async def claim_input(self, chat_id: str, client_id: str) -> SeenInput | None:
        return claim_in(self._inputs.setdefault(chat_id, OrderedDict()), client_id, time.time())

    async def finish_input(self, chat_id: str, client_id: str, reply_ids: Sequence[int]) -> None:
        marks = self._inputs.get(chat_id)
        if marks is not None and client_id in marks:
            marks[client_id] = done_mark(reply_ids)

    async def release_input(self, chat_id: str, client_id: str) -> None:
        self._inputs.get(chat_id, OrderedDict()).pop(client_id, None)

    async def append(self, chat_id: str, message: WebChatMessage) -> WebChatMessage:
        next_id = self._counters.get(chat_id, 0) + 1
        self._counters[chat_id] = next_id
        stored = replace(message, id=next_id)
        self._chats.setdefault(chat_id, deque(maxlen=self.history_limit)).append(stored)
        return stored

    async def exists(self, chat_id: str) -> bool:
        return chat_id in self._counters

    async def get(self, chat_id: str, message_id: int) -> WebChatMessage | None:
        for message in self._chats.get(chat_id, ()):
            if message.id == message_id:
                return message
        return None

    async def replace(self, chat_id: str, message: WebChatMessage) -> None:
        history = self._chats.get(chat_id)
        if history is None:
            return
        for index, existing in enumerate(history):
            if existing.id == message.id:
                history[index] = message
                return

    async def after(self, chat_id: str, after_id: int, limit: int = 200) -> list[WebChatMessage]:
        return [m for m in self._chats.get(chat_id, ()) if m.id > after_id][:limit]

    async def erase(self, chat_id: str) -> None:
        self._chats.pop(chat_id, None)
        self._inputs.pop(chat_id, None)


# KEYS: seq, ids, msgs, activity. ARGV: the message JSON after its id (", ..."), TTL seconds, history
# limit, now (Unix seconds), the chat id. The activity set scores each chat by its last message, for the expiry of
# idle anonymous chats (backend/chatstore/jobs.py).
# One script instead of INCR, a MULTI of HSET + ZADD + 3 EXPIRE, and ZCARD: each command costs the bot
# ~0.1 ms of CPU in redis-py, and a crash between them left a numbered gap or an untrimmed history.
# The counter never expires (one integer per chat): an idle chat's history goes, but a number is never
# reused, or the page, which shows what comes after the highest id it saw, would hide new messages.
_APPEND_SCRIPT = """
local id = redis.call('INCR', KEYS[1])
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[3], id, '{"id": ' .. id .. ARGV[1])
redis.call('ZADD', KEYS[2], id, id)
for i = 2, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('ZREM', KEYS[2], unpack(old))
  redis.call('HDEL', KEYS[3], unpack(old))
end
return id
"""


# KEYS: the marks hash, the order list. ARGV: client id, now, kept, stale after (s), TTL (s).
# The mark seen (answered, or pending and fresh), else claims it (nil); trims the oldest past ``kept``.
_CLAIM_SCRIPT = """
local mark = redis.call('HGET', KEYS[1], ARGV[1])
if mark then
  if string.sub(mark, 1, 2) == 'd:' then return mark end
  if tonumber(ARGV[2]) - tonumber(string.sub(mark, 3)) < tonumber(ARGV[4]) then return mark end
else
  redis.call('RPUSH', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], 'p:' .. ARGV[2])
local excess = redis.call('LLEN', KEYS[2]) - tonumber(ARGV[3])
for i = 1, excess do redis.call('HDEL', KEYS[1], redis.call('LPOP', KEYS[2])) end
for i = 1, 2 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return false
"""


class RedisWebChatStore:
    """Messages in a hash keyed by id, ordered by a sorted set; keys expire after ``ttl_days`` idle."""

    def __init__(
        self, redis: Redis, history_limit: int = 500, ttl_days: int = 30, prefix: str = "tianbao"
    ) -> None:
        self.redis = redis
        self.history_limit = history_limit
        self.ttl_seconds = ttl_days * 86400
        self.prefix = prefix
        self._append_script = redis.register_script(_APPEND_SCRIPT)
        self._claim_script = redis.register_script(_CLAIM_SCRIPT)

    async def claim_input(self, chat_id: str, client_id: str) -> SeenInput | None:
        now = time.time()
        args: list[str | int | float] = [
            client_id,
            f"{now:.3f}",
            INPUTS_KEPT,
            PENDING_SECONDS,
            self.ttl_seconds,
        ]
        mark = await self._claim_script(keys=list(input_keys(chat_id, self.prefix)), args=args)
        if mark is None:
            return None
        return read_mark(mark.decode() if isinstance(mark, bytes) else str(mark), now)

    async def finish_input(self, chat_id: str, client_id: str, reply_ids: Sequence[int]) -> None:
        marks = input_keys(chat_id, self.prefix)[0]
        if await self.redis.hexists(marks, client_id):  # not trimmed meanwhile
            await self.redis.hset(marks, client_id, done_mark(reply_ids))

    async def release_input(self, chat_id: str, client_id: str) -> None:
        await self.redis.hdel(input_keys(chat_id, self.prefix)[0], client_id)

    def _keys(self, chat_id: str) -> tuple[str, str, str]:
        return transcript_keys(chat_id, self.prefix)

    async def exists(self, chat_id: str) -> bool:
        return bool(await self.redis.exists(self._keys(chat_id)[0]))

    async def append(self, chat_id: str, message: WebChatMessage) -> WebChatMessage:
        """Number, store, index, refresh the expiry and trim, atomically and in one round trip."""
        content = message.to_json()
        del content["id"]  # the script numbers the message and writes the id in front of the rest
        rest = json.dumps(content, ensure_ascii=False)[1:]
        keys = [*self._keys(chat_id), activity_key(self.prefix)]
        args: list[str | int] = [", " + rest, self.ttl_seconds, self.history_limit, int(time.time()), chat_id]
        next_id = await self._append_script(keys=keys, args=args)
        return replace(message, id=int(next_id))

    async def get(self, chat_id: str, message_id: int) -> WebChatMessage | None:
        raw = await self.redis.hget(self._keys(chat_id)[2], str(message_id))
        return WebChatMessage.from_json(json.loads(raw)) if raw else None

    async def replace(self, chat_id: str, message: WebChatMessage) -> None:
        msgs_key = self._keys(chat_id)[2]
        if await self.redis.hexists(msgs_key, str(message.id)):
            await self.redis.hset(
                msgs_key, str(message.id), json.dumps(message.to_json(), ensure_ascii=False)
            )

    async def after(self, chat_id: str, after_id: int, limit: int = 200) -> list[WebChatMessage]:
        _seq, ids_key, msgs_key = self._keys(chat_id)
        ids = await self.redis.zrangebyscore(ids_key, f"({after_id}", "+inf", start=0, num=limit)
        if not ids:
            return []
        raws = await self.redis.hmget(msgs_key, [str(i.decode() if isinstance(i, bytes) else i) for i in ids])
        return [WebChatMessage.from_json(json.loads(raw)) for raw in raws if raw]

    async def erase(self, chat_id: str) -> None:
        _seq, ids, msgs = self._keys(chat_id)
        await self.redis.delete(ids, msgs, *input_keys(chat_id, self.prefix))


@dataclass(frozen=True)
class StoredFile:
    chat_id: str
    name: str
    data: bytes


def file_url(chat_id: str, token: str) -> str:
    return f"/webchat/files/{chat_id}/{token}"


def new_file_token() -> str:
    return secrets.token_urlsafe(18)


def is_valid_file_token(token: str) -> bool:
    return bool(_FILE_TOKEN.match(token))


class WebChatFileStore(Protocol):
    """Files exchanged in web chat (user photos, bot documents). The random token in the address is the
    capability: it is only ever shown to that chat."""

    async def save(self, chat_id: str, filename: str, data: bytes) -> str: ...

    async def load(self, chat_id: str, token: str) -> StoredFile | None: ...

    async def load_token(self, token: str) -> StoredFile | None:
        """A file by its token alone (getFile and re-sending by file id name no chat)."""
        ...

    async def erase(self, chat_id: str) -> None:
        """Delete every file of the chat (its device was ended)."""
        ...


class WebChatFiles:
    """Files on disk under ``var/webchat/<chat>/<token>``: the Redis layout, where bot replicas and
    workers share a volume. The SQL layout keeps them in the database (``bot.sqlstore``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def save(self, chat_id: str, filename: str, data: bytes) -> str:
        token = new_file_token()
        folder = files_folder(self.root, chat_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / token).write_bytes(data)
        (folder / f"{token}.name").write_text(safe_file_name(filename), encoding="utf-8")
        return token

    async def load(self, chat_id: str, token: str) -> StoredFile | None:
        if not is_valid_chat_id(chat_id) or not is_valid_file_token(token):
            return None
        return self._read(files_folder(self.root, chat_id) / token)

    async def load_token(self, token: str) -> StoredFile | None:
        if not is_valid_file_token(token):
            return None
        matches = list(self.root.glob(f"*/{token}"))
        return self._read(matches[0]) if matches else None

    async def erase(self, chat_id: str) -> None:
        if is_valid_chat_id(chat_id):  # a name that never walks out of the files folder
            await asyncio.to_thread(shutil.rmtree, files_folder(self.root, chat_id), True)

    @staticmethod
    def _read(path: Path) -> StoredFile | None:
        if not path.is_file():
            return None
        name_file = path.with_name(f"{path.name}.name")
        name = name_file.read_text(encoding="utf-8") if name_file.exists() else path.name
        return StoredFile(chat_id=path.parent.name, name=name, data=path.read_bytes())


def safe_file_name(filename: str) -> str:
    cleaned = re.sub(r"[\\/\x00-\x1f]", "_", filename).strip() or "file"
    return cleaned[:120]

"""Broadcast fan-out: 1,000,000 insured people targeted, deduplicated and enqueued on PostgreSQL.

    python -m benchmarks.broadcast_enqueue [--people N] [--sms-share S] [--budget SECONDS]
                                           [--first-budget SECONDS] [--postgres-url URL]

Seeds N insured people set-based (``INSERT ... SELECT generate_series``; not timed): one policy each
(banana, rice or pig in the townships of 东莞市), every tenth person a second policy (so dedupe has work),
a verified web chat for all but ``--sms-share`` of them (those are texted, with a short link each), one in
ten chats in English. Then one warning to the whole city with advice sections per subject and the ack
button, through ``service.send_system_broadcast`` (create, approve, start) and the scheduler's fan-out
job until every person is resolved.

Printed: the time from "send" to the first outbox row a delivery worker can claim (measured by a poller
calling the real ``claim_batch`` every 5 ms on its own connection; budget ``--first-budget``, default 1 s),
and the time to target, deduplicate and write every outbox row (budget ``--budget``, default 10 s), with
the counts: recipients, outbox rows, variants rendered, links. Exits 1 when over a budget. The database
named by ``--postgres-url`` is **dropped and recreated**; its name must contain ``bench``.
Results: docs/benchmarks.md ("Broadcast fan-out: targeting and enqueueing").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlmodel import func, select

from backend.bootstrap import bootstrap
from backend.broadcasts import service
from backend.broadcasts.models import BroadcastRecipient, BroadcastVariant
from backend.broadcasts.schemas import AudienceSpec, BroadcastContent, LocaleContent, Part
from backend.db import Database
from backend.outbox.models import OutboxMessage
from backend.outbox.service import claim_batch
from backend.outbox.sms.models import SmsLink
from backend.regions.models import Region
from backend.settings import Settings
from benchmarks.bench_start import prepare_postgres

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_broadcast"
CITY = "441900000000"  # 东莞市
CONTENT = BroadcastContent(
    locales={
        "zh-CN": LocaleContent(
            chat=Part(text="台风预计今晚在珠江口登陆，请做好防范。"),
            sections={
                "banana": Part(text="香蕉：立桩加固，排水防涝。"),
                "livestock": Part(text="生猪：转移到高处。"),
            },
        ),
        "en": LocaleContent(
            chat=Part(text="A typhoon lands at the Pearl River mouth tonight."),
            sections={
                "banana": Part(text="Bananas: prop the plants."),
                "livestock": Part(text="Pigs: move up."),
            },
        ),
    }
)


SEED = """
INSERT INTO person (id, name, phone, created_at)
SELECT i, '农户' || i, '139' || lpad(i::text, 8, '0'), now() FROM generate_series(1, :n) AS i;

INSERT INTO chat_identity (channel, external_id, address, locale, locale_chosen, phone, phone_verified_at,
                           person_id, created_at, last_seen_at)
SELECT 'webchat', 'b' || i, 'b' || i, CASE WHEN i % 10 = 3 THEN 'en' ELSE 'zh-CN' END, false,
       '139' || lpad(i::text, 8, '0'), now(), i, now(), now()
FROM generate_series(1, :n) AS i WHERE i % 1000 >= :sms_permille;

INSERT INTO application (id, number, idempotency_key, product_code, kind, status, person_id, region_code,
                         answers, quantity, sum_insured_fen, premium, payable_fen, disclosure_version,
                         disclosure_confirmed_at, signer, verification_required, verification_reasons,
                         created_at, updated_at)
SELECT i, 'BA' || i, 'bench-' || i, p.code, 'individual', 'issued', (i - 1) % :n + 1,
       (:towns)[1 + i % :town_count], '{}'::json, '10', 100000, '{}'::json, 1000, '2026.1', now(),
       '{}'::json, false, '[]'::json, now(), now()
FROM generate_series(1, :n + :n / 10) AS i
CROSS JOIN LATERAL (SELECT CASE WHEN i % 5 < 2 THEN 'banana' WHEN i % 5 < 4 THEN 'rice' ELSE 'pig' END AS code) p;

INSERT INTO policy (number, application_id, product_code, person_id, region_code, insured_name, terms,
                    quantity, sum_insured_fen, premium_fen, starts_at, ends_at, status, late_entry, issued_at)
SELECT 'BP' || a.id, a.id, a.product_code, a.person_id, a.region_code, '农户', '{}'::json, '10', 100000, 1000,
       now() - interval '1 day', now() + interval '364 days', 'active', false, now()
FROM application a;
"""


async def seed(db: Database, people: int, sms_share: float) -> None:
    async with db.session() as session:
        towns = sorted((await session.exec(select(Region.code).where(Region.parent_code == CITY))).all())
    array = "ARRAY[" + ",".join(f"'{code}'" for code in towns) + "]"
    async with db.engine.begin() as conn:
        for statement in SEED.split(";\n"):
            if statement.strip():
                sql = statement.replace(":towns", array).replace(":town_count", str(len(towns)))
                await conn.execute(
                    text(sql), {"n": people, "sms_permille": round(sms_share * 1000)}
                ) if ":n" in sql or ":sms" in sql else await conn.execute(text(sql))
        for table in ("person", "application", "policy", "chat_identity"):
            await conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
        await conn.execute(text("ANALYZE"))


async def first_claimable(db: Database, started: asyncio.Event, found: list[float]) -> None:
    """Poll as a delivery worker would, on its own connection, until a message of the broadcast is claimed."""
    await started.wait()
    while True:
        async with db.session() as session:
            claimed = await claim_batch(session=session, worker_id="bench", limit=1, lease_seconds=600)
        if claimed:
            found.append(time.perf_counter())
            return
        await asyncio.sleep(0.005)


async def measure(db: Database, settings: Settings, args: argparse.Namespace, version: str) -> int:
    print(
        f"PostgreSQL {version}, Python {platform.python_version()}, {platform.machine()}, load {os.getloadavg()[0]:.2f}"
    )
    seeded = time.perf_counter()
    await seed(db, args.people, args.sms_share)
    print(
        f"seeded {args.people:,} people, {args.people + args.people // 10:,} policies in {time.perf_counter() - seeded:.1f} s (not timed)"
    )
    started, found = asyncio.Event(), list[float]()
    poller = asyncio.create_task(first_claimable(db, started, found))
    t0 = time.perf_counter()
    started.set()
    async with db.session() as session:
        broadcast = await service.send_system_broadcast(
            session,
            kind="warning",
            content=CONTENT,
            audience=AudienceSpec(region_codes=[CITY]),
            source_key="bench:typhoon",
            ack_button=True,
            settings=settings,
        )
        answered = time.perf_counter()
        while broadcast.resolved_at is None:
            await service.continue_fan_out(session, broadcast, settings=settings)
            await session.refresh(broadcast)
    done = time.perf_counter()
    await asyncio.wait_for(poller, timeout=30)
    async with db.session() as session:
        bid = broadcast.id or 0
        outbox = (await session.exec(select(func.count()).where(OutboxMessage.broadcast_id == bid))).one()
        recipients = (
            await session.exec(select(func.count()).where(BroadcastRecipient.broadcast_id == bid))
        ).one()
        variants = (
            await session.exec(select(func.count()).where(BroadcastVariant.broadcast_id == bid))
        ).one()
        links = (await session.exec(select(func.count()).select_from(SmsLink))).one()
    first = found[0] - t0
    total = done - t0
    print(f"recipients {recipients:,}, outbox rows {outbox:,}, variants rendered {variants}, links {links:,}")
    print(
        f"first claimable  {first:6.3f} s  budget {args.first_budget:.1f} s: {'within' if first <= args.first_budget else 'OVER'}"
    )
    print(f"'send' answered  {answered - t0:6.3f} s  (the rest by the fan-out job)")
    print(
        f"all enqueued     {total:6.2f} s  budget {args.budget:.1f} s: {'within' if total <= args.budget else 'OVER'}"
    )
    print(f"rate             {outbox / total:,.0f} rows/s")
    assert outbox == recipients == args.people, (outbox, recipients)
    floor = await outbox_floor(db, bid)
    print(
        f"outbox floor     {floor:6.2f} s  (the same rows copied by one plain INSERT ... SELECT, rolled back:"
    )
    print("                           what writing them costs this machine now, before any targeting)")
    return 0 if total <= args.budget and first <= args.first_budget else 1


async def outbox_floor(db: Database, broadcast_id: int) -> float:
    """Time one INSERT ... SELECT of the broadcast's outbox rows (new addresses, so no conflict), undone."""
    columns = (
        "channel, address, identity_id, text, parse_mode, buttons, attachments, priority, kind, template, "
        "dedupe_key, status, attempts, next_attempt_at, created_at, broadcast_id"
    )
    copy = columns.replace("address,", "address || 'f',", 1)
    async with db.engine.connect() as conn:
        transaction = await conn.begin()
        started = time.perf_counter()
        await conn.execute(
            text(f"INSERT INTO outbox ({columns}) SELECT {copy} FROM outbox WHERE broadcast_id = :b"),
            {"b": broadcast_id},
        )
        elapsed = time.perf_counter() - started
        await transaction.rollback()
    return elapsed


async def run(args: argparse.Namespace) -> int:
    if "bench" not in args.postgres_url.rsplit("/", 1)[-1]:
        print("the benchmark database's name must contain 'bench' (it is dropped)", file=sys.stderr)
        return 2
    version = await prepare_postgres(args.postgres_url)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            var_dir=Path(tmp),
            database_url=args.postgres_url,
            admin_password="bench-chief-passphrase",
            service_token="bench-service-token",
            secret_key="bench-secret-key-0123456789abcdef",
        )
        db = Database(settings)
        try:
            await bootstrap(db, settings)
            return await measure(db, settings, args, version)
        finally:
            await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--sms-share", type=float, default=0.1, help="share of people with no chat (texted)")
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--first-budget", type=float, default=1.0)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()

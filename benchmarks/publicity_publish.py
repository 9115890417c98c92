"""Publishing one village notice to many households: rows built and masked, page and board PDF rendered,
every household reached (verified chats by chat, the others by SMS with a link), the archive record
appended. The reach is set-based (one query for the chats, one INSERT for the chat messages, one for the
texts); this measures each phase and checks the whole against a budget in the same run.

    python -m benchmarks.publicity_publish [--households N] [--budget SECONDS]

Results: docs/benchmarks.md ("Publicity: publishing to a village").
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import col, select

from backend.bootstrap import bootstrap
from backend.db import Database, utcnow
from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity, Person
from backend.publicity import render, service, sources
from backend.publicity.schemas import NoticeCreate
from backend.regions.models import Region
from backend.security import StaffPrincipal
from backend.settings import Settings
from backend.staff.models import StaffUser

VILLAGE, TOWNSHIP = "441900003201", "441900003000"


async def seed(db: Database, households: int) -> list[dict[str, Any]]:
    """The village, its persons (phones), a verified web chat for every other one; the household rows."""
    now = utcnow()
    async with db.session() as session:
        session.add(Region(code=VILLAGE, name="基准村", level=5, parent_code=TOWNSHIP))
        await session.flush()
        await session.execute(
            insert(Person),
            [{"name": f"农户{n}", "phone": f"139{n:08d}", "created_at": now} for n in range(households)],
        )
        people = (await session.exec(select(Person.id).order_by(col(Person.id)))).all()
        await session.execute(
            insert(ChatIdentity),
            [
                {
                    "channel": "webchat",
                    "external_id": f"w{person}",
                    "address": f"w{person}",
                    "person_id": person,
                    "phone_verified_at": now,
                    "last_seen_at": now,
                    "created_at": now,
                }
                for person in people[::2]
            ],
        )
        await session.commit()
    return [
        {
            "person_id": person,
            "name": f"农户{n}",
            "id_number": f"4419001990010{n:05d}",
            "subject": "水稻",
            "quantity": "10亩",
            "location": "基准村",
        }
        for n, person in enumerate(people)
    ]


async def run(households: int, budget: float) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        settings = Settings(
            _env_file=None,
            var_dir=var,
            database_url=f"sqlite+aiosqlite:///{(var / 'tianbao.db').as_posix()}",
            admin_password="bench-chief-passphrase",
            service_token="bench-service-token",
            secret_key="bench-secret-key-bench-secret-key-0123",
        )
        db = Database(settings)
        await bootstrap(db, settings)
        rows = await seed(db, households)

        async def household_rows(_session: Any, _policy_id: int) -> list[dict[str, Any]]:
            return rows

        sources.HOUSEHOLD_SOURCE["household_rows"] = household_rows
        async with db.session() as session:
            admin = (await session.exec(select(StaffUser).where(StaffUser.username == "admin"))).one()
        staff = StaffPrincipal(user_id=admin.id or 0, username="admin", role="admin")
        body = NoticeCreate(kind="underwriting", region_code=VILLAGE, policy_id=1)
        timings: dict[str, float] = {}
        async with db.session() as session:
            start = time.perf_counter()
            notice = await service.create_notice(session, staff, body, settings=settings, ip=None)
            timings["rows built and masked"] = time.perf_counter() - start
            notice.status = "checked"
            notice.checked_by_name, notice.checked_at = "村委会", utcnow()
            await session.commit()
            view = service.view_of(notice, settings)
            start = time.perf_counter()
            render.notice_pdf(view, notice.locale)
            timings["board PDF alone"] = time.perf_counter() - start
            start = time.perf_counter()
            await service.open_notice(session, staff, notice.id or 0, settings=settings, ip=None)
            timings["open: page + PDF + reach + archive"] = time.perf_counter() - start
        async with db.session() as session:
            counts = dict(
                (
                    await session.exec(
                        select(OutboxMessage.channel, func.count()).group_by(OutboxMessage.channel)
                    )
                ).all()
            )
        await db.dispose()
    print(f"publicity publish, {households} households, Python {platform.python_version()}, SQLite")
    for phase, seconds in timings.items():
        print(f"  {phase:<40} {seconds:7.2f} s")
    print(f"  outbox: {counts}")
    total = timings["rows built and masked"] + timings["open: page + PDF + reach + archive"]
    verdict = "within" if total <= budget else "OVER"
    print(f"  total {total:.2f} s, budget {budget:.1f} s: {verdict}")
    return 0 if total <= budget and sum(counts.values()) == households else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=15.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.households, args.budget)))


if __name__ == "__main__":
    main()

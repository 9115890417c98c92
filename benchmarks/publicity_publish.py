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

from sqlalchemy import func, insert
from sqlmodel import col, select

from backend.bootstrap import bootstrap
from backend.db import Database, utcnow
from backend.enrollment.collective import checks, sheets
from backend.enrollment.collective import service as collective_service
from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity, Person
from backend.products.models import Product
from backend.publicity import render, service
from backend.publicity.schemas import NoticeCreate
from backend.regions.models import Region
from backend.security import StaffPrincipal
from backend.settings import Settings
from backend.staff.models import StaffUser
from tests.collective_helpers import household, list_csv

VILLAGE, TOWNSHIP = "441900003201", "441900003000"


async def seed(db: Database, households: int) -> None:
    """The village, its persons (phones), a verified web chat for every other one."""
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


async def enrolled_list(db: Database, households: int, actor: StaffPrincipal) -> int:
    """The village's household list, uploaded through collective enrollment (read, checked, stored): the
    households are linked to the persons above by their phones. Its enrollment id."""
    rows = [household(n, village=VILLAGE) for n in range(households)]
    payload = list_csv(rows)
    async with db.session() as session:
        product, area = await session.get(Product, "rice"), await session.get(Region, TOWNSHIP)
        assert product is not None and area is not None
        table = sheets.read_table(payload)
        result = await checks.check_list(
            session, product=product, area_code=TOWNSHIP, table=table, now=utcnow()
        )
        assert result.ok, result.problems[:5]
        collective = await collective_service.store_list(
            session,
            actor=actor,
            product=product,
            area=area,
            organiser=collective_service.Organiser("village_committee", "基准村民委员会"),
            result=result,
            sha256=collective_service.list_sha256(payload),
            filename="bench.csv",
            ip=None,
        )
        await session.commit()
        return collective.id or 0


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
        await seed(db, households)
        async with db.session() as session:
            admin = (await session.exec(select(StaffUser).where(StaffUser.username == "admin"))).one()
        staff = StaffPrincipal(user_id=admin.id or 0, username="admin", role="admin")
        collective_id = await enrolled_list(db, households, staff)
        body = NoticeCreate(kind="underwriting", region_code=VILLAGE, collective_id=collective_id)
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

"""Collective enrollment: a household list of 100,000 rows read, validated and stored on PostgreSQL.

    python -m benchmarks.collective_import [--rows N] [--budget SECONDS] [--postgres-url URL] [--format xlsx|csv]

Times the path of ``POST /api/collective/lists`` after the upload is read (the HTTP layer is not in it):
the file parsed (python-calamine for XLSX, the csv module for CSV), every row checked (pure checks, then
the set-based database checks: ID regions, villages, already insured, ear tags), then stored in one
transaction (persons matched/created by ID number, the application, the enrollment, one household row
per line, all multi-row INSERTs) and committed. The household notices are timed apart (not in the
budget). The budget (default 10 s, the issue's) is compared in the same run. The database named by
``--postgres-url`` is **dropped and recreated**; its name must contain ``bench``.
Results: docs/benchmarks.md ("Collective enrollment import").
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import platform
import sys
import tempfile
import time
from pathlib import Path

from openpyxl import Workbook
from sqlmodel import func, select

from backend.bootstrap import bootstrap
from backend.db import Database, utcnow
from backend.enrollment.collective import checks, service, sheets
from backend.enrollment.collective.models import PolicyHousehold
from backend.products.models import Product
from backend.regions.models import Region
from backend.security import StaffPrincipal
from backend.settings import Settings
from benchmarks.bench_start import prepare_postgres

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_collective"
AREA = (
    "441900000000"  # 东莞市: the households spread over its townships (one village holds 50,000 mu at most)
)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(n: int) -> str:
    from datetime import date, timedelta

    born = date(1950, 1, 1) + timedelta(days=n % 20000)
    body = f"110105{born:%Y%m%d}{n // 20000 % 999 + 1:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def rows(count: int, villages: list[str]) -> list[list[str]]:
    return [
        [
            f"王{'一二三四五六七八九十'[n % 10]}{'甲乙丙丁戊'[n // 10 % 5]}",
            resident_id(n),
            f"13{n:09d}",
            "水稻",
            str(1 + n % 7),
            villages[n % len(villages)],
            "东洼地",
            "",
            "农村信用社",
            f"62284800{n:011d}",
        ]
        for n in range(count)
    ]


def as_xlsx(data: list[list[str]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append([sheets.header_text(c, "zh-CN") for c in sheets.COLUMNS])
    for row in data:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def as_csv(data: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([sheets.header_text(c, "zh-CN") for c in sheets.COLUMNS])
    writer.writerows(data)
    return out.getvalue().encode("utf-8-sig")


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
            if not args.profile:
                return await measure(db, args, version)
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            code = await measure(db, args, version)
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            pstats.Stats(profile).sort_stats("cumulative").print_stats("collective", 30)
            return code
        finally:
            await db.dispose()


async def measure(db: Database, args: argparse.Namespace, version: str) -> int:
    async with db.session() as session:
        query = select(Region.code).where(Region.parent_code == AREA)
        villages = sorted((await session.exec(query)).all())
    data = rows(args.rows, villages)
    payload = as_xlsx(data) if args.format == "xlsx" else as_csv(data)
    actor = StaffPrincipal(user_id=1, username="admin", role="admin")
    print(f"PostgreSQL {version}, Python {platform.python_version()}, {platform.machine()}")
    print(f"{args.rows:,} rows over {len(villages)} townships, {args.format} of {len(payload) / 1e6:.1f} MB")
    started = time.perf_counter()
    table = sheets.read_table(payload)
    read = time.perf_counter()
    async with db.session() as session:
        product = await session.get(Product, "rice")
        area = await session.get(Region, AREA)
        assert product is not None and area is not None
        result = await checks.check_list(session, product=product, area_code=AREA, table=table, now=utcnow())
        checked = time.perf_counter()
        assert result.ok, result.problems[:5]
        organiser = service.Organiser("village_committee", "东城街道大塘村民委员会")
        collective = await service.store_list(
            session,
            actor=actor,
            product=product,
            area=area,
            organiser=organiser,
            result=result,
            sha256=service.list_sha256(payload),
            filename="bench.xlsx",
            ip=None,
        )
        await session.commit()
        stored = time.perf_counter()
        if not args.skip_notices:
            await service.notify_households(session, collective=collective, kind="confirm", link_days=30)
            await session.commit()
        notified = time.perf_counter()
        households = (await session.exec(select(func.count()).select_from(PolicyHousehold))).one()
    assert households == args.rows
    total = stored - started
    print(f"read      {read - started:6.2f} s")
    print(f"validate  {checked - read:6.2f} s")
    print(f"store     {stored - checked:6.2f} s  ({households:,} households, committed)")
    print(
        f"total     {total:6.2f} s  budget {args.budget:.1f} s: {'within' if total <= args.budget else 'OVER'}"
    )
    print(f"notices   {notified - stored:6.2f} s  ({args.rows:,} texts with links, not in the budget)")
    return 0 if total <= args.budget else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--profile", action="store_true", help="print a cProfile top 25 (by own time)")
    parser.add_argument("--skip-notices", action="store_true", help="do not time the household notices")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()

"""SMS fan-out through the whole delivery path: 10,000 texts enqueued set-based into the outbox, then sent by
the real delivery worker through the real Tencent adapter to the fake Tencent SMS API on loopback.

    python -m benchmarks.sms_outbox [--numbers N] [--rate R] [--postgres-url URL]

What it adds to ``benchmarks/sms_fanout.py`` (the adapter alone): the outbox claim and result writes, the
worker's per-recipient ordering and its acknowledged reports, the template-id mapping. The aim is the
issue's: delivered at >= 95 % of the configured provider rate, no number texted twice. The baseline in the
same run is the configured rate itself (what a perfect sender achieves). Also printed: how long the
set-based enqueue of N rows took. Results: docs/benchmarks.md ("SMS fan-out (outbox to provider)").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import col, func, select

from backend.bootstrap import bootstrap
from backend.db import Database
from backend.outbox.models import OutboxMessage
from backend.outbox.sms.service import enqueue_sms_rows, sms_row
from backend.settings import Settings
from bot.server import build_embedded_app
from messages.sms import provider_registrations
from tests.fakes.tencent_sms import FakeTencentSms, SmsTemplate

AIM_SHARE = 0.95


def registered(site: str) -> tuple[list[SmsTemplate], dict[str, str]]:
    """Every template as a deployment registers it with the provider, and the ids it was given."""
    registrations = provider_registrations(site)
    ids = {key: str(n) for n, (key, _text) in enumerate(registrations, start=100)}
    return [SmsTemplate(template_id=ids[key], text=text) for key, text in registrations], ids


def phones(count: int) -> list[str]:
    return [f"139{n:08d}" for n in range(count)]


def settings_for(
    var_dir: Path, fake: FakeTencentSms, ids: dict[str, str], rate: float, db_url: str
) -> Settings:
    values = fake.settings_values()
    return Settings(
        _env_file=None,
        var_dir=var_dir,
        database_url=db_url or f"sqlite+aiosqlite:///{(var_dir / 'tianbao.db').as_posix()}",
        admin_password="bench-chief-passphrase",
        service_token="bench-service-token",
        secret_key="bench-secret-key-0123456789abcdef",
        embedded_worker=False,
        embedded_scheduler=False,
        embedded_polling=False,
        sms_provider="tencent",
        tencent_sms_secret_id=values["secret_id"],
        tencent_sms_secret_key=values["secret_key"],
        tencent_sms_app_id=values["sdk_app_id"],
        tencent_sms_endpoint=fake.endpoint,
        sms_template_ids=ids,
        sms_rate_per_second=rate,
        delivery_batch_size=200,
    )


async def enqueue(db: Database, numbers: Sequence[str]) -> float:
    """Claim notices, one per number, in multi-row INSERTs of 1,000 (each text its own link token)."""
    started = time.perf_counter()
    async with db.session() as session:
        for start in range(0, len(numbers), 1000):
            rows = [
                sms_row(
                    phone=phone,
                    key="claim_update",
                    locale="zh-CN",
                    values={"claim": f"CL2026120{n:010d}", "status": "查勘已预约", "token": f"t{n:09d}"},
                    dedupe_key=f"bench-{n}",
                )
                for n, phone in enumerate(numbers[start : start + 1000], start=start)
            ]
            await enqueue_sms_rows(session=session, rows=rows)
        await session.commit()
    return time.perf_counter() - started


async def left(db: Database) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.status) == "queued")
        return int((await session.exec(query)).one())


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        site = "http://127.0.0.1:8000"
        templates, ids = registered(site)
        async with FakeTencentSms(templates=templates, numbers_per_second=args.rate) as fake:
            settings = settings_for(Path(tmp), fake, ids, args.rate, args.postgres_url)
            db = Database(settings)
            try:
                await bootstrap(db, settings)
                app = build_embedded_app(settings, db=db)
                numbers = phones(args.numbers)
                enqueue_seconds = await enqueue(db, numbers)
                worker = app.state.bot_runtime.delivery_worker(worker_id="bench")
                worker.poll_seconds = 0.05

                def stop_when_sent() -> None:
                    if len(fake.sent) >= args.numbers:
                        worker.stop()

                worker.on_round = stop_when_sent
                started = time.perf_counter()
                # The worker's own loop, as `tianbao worker` runs it (it claims ahead with a backlog).
                await worker.run_forever()
                seconds = time.perf_counter() - started
                sent = args.numbers - await left(db)
                await app.state.bot_runtime.close()
            finally:
                await db.dispose()
            accepted = len(fake.sent)
            twice = len(fake.numbers_texted_twice())
            refused = sum(1 for call in fake.calls if call.error_code)
    rate = accepted / seconds
    share = rate / args.rate
    print(describe())
    print(f"enqueue {args.numbers:,} texts set-based: {enqueue_seconds:.2f} s")
    print(f"configured provider rate (the baseline): {args.rate:.0f}/s")
    print(
        f"delivered {accepted:,} of {args.numbers:,} in {seconds:.1f} s: {rate:.1f}/s = {share:.1%} of the rate"
    )
    print(f"refused calls: {refused}; numbers texted twice: {twice}; worker results: {sent:,}")
    ok = share >= AIM_SHARE and twice == 0 and accepted == args.numbers
    print("aim met" if ok else f"AIM NOT MET (>= {AIM_SHARE:.0%}, no number twice, every number sent)")
    return 0 if ok else 1


def describe() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout
    except OSError:
        commit = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"commit {commit.strip()}, {platform.python_implementation()} {platform.python_version()}, load {load}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--numbers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--postgres-url", default="", help="a PostgreSQL database to run on (default SQLite)")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

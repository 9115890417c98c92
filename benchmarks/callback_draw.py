"""The daily callback draw (R-CBK-2) over a large population: N paid claims never considered, some of
them collective cases, drawn in one run of ``draw_daily_sample`` (population query, case quotas, the
population's multi-row insert, the callbacks' insert, every drawn insured asked by text). Prints the
time and compares it with the budget; exits 1 over budget.

    python -m benchmarks.callback_draw                    # 100,000 paid claims on SQLite, ~1 min
    python -m benchmarks.callback_draw --claims 20000 --budget 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert
from sqlmodel import select

from backend.app import create_app
from backend.bootstrap import bootstrap
from backend.callbacks.service import draw_daily_sample
from backend.claims.catastrophe.models import DisasterEvent
from backend.claims.models import Claim, ClaimPayment
from backend.db import Database, utcnow
from backend.settings import Settings
from tests.backend.test_claims_workflow import paid_policy

SERVICE_TOKEN = "bench-service-token"


def settings_for(var_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        var_dir=var_dir,
        database_url=f"sqlite+aiosqlite:///{(var_dir / 'tianbao.db').as_posix()}",
        admin_password="bench-chief-passphrase",
        service_token=SERVICE_TOKEN,
        secret_key="bench-secret-key-0123456789abcdef",
        redis_url="",
        callback_draw_hour=0,
    )


def claim_rows(policy: dict[str, Any], count: int, events: Sequence[int]) -> list[dict[str, Any]]:
    """Claims paid two hours ago; the first 5 per event are the households of a collective case."""
    paid = utcnow() - timedelta(hours=2)
    rows = []
    for i in range(count):
        case = i // 5 if i < len(events) * 5 else None
        rows.append(
            {
                "number": f"CB{i:08d}{secrets.token_hex(2)}",
                "kind": "individual" if case is None else "collective",
                "event_id": None if case is None else events[case],
                "status": "paid",
                "policy_id": policy["id"],
                "product_code": policy["product_code"],
                "region_code": "441900003001",
                "county_code": "441900000000",
                "insured_name": policy["insured_name"],
                "cause": "flood",
                "loss_started_at": paid - timedelta(days=20),
                "lost_quantity": "2",
                "unit": "mu",
                "estimated_amount_fen": 0,
                "place_name": "",
                "reporter_name": policy["insured_name"],
                "reporter_phone": "13812345678",
                "description": "",
                "reported_at": paid - timedelta(days=19),
                "late": False,
                "delay_minutes": 0,
                "disposal_required": False,
                "disposal_confirmation": {},
                "confirmation": {},
                "denial_reasons": [],
                "reminders": {},
                "joint_survey": False,
                "remote_survey": False,
                "agreed_amount_fen": 150000,
                "paid_amount_fen": 150000,
                "paid_at": paid,
                "updated_at": paid,
            }
        )
    return rows


async def seed(db: Database, settings: Settings, count: int, cases: int) -> float:
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:
        _, policy = await paid_policy(api, {"Authorization": f"Bearer {SERVICE_TOKEN}"}, "bench-farmer")
    started = time.perf_counter()
    async with db.session() as session:
        disasters = [DisasterEvent(name=f"灾害{i}", cause="flood", started_on=utcnow()) for i in range(cases)]
        session.add_all(disasters)
        await session.flush()
        rows = claim_rows(policy, count, [d.id or 0 for d in disasters])
        connection = await session.connection()
        for start in range(0, count, 5000):
            await connection.execute(insert(Claim), rows[start : start + 5000])
        ids = list((await session.exec(select(Claim.id))).all())
        payments = [
            {
                "claim_id": claim_id,
                "amount_fen": 150000,
                "payee_name": policy["insured_name"],
                "bank_name": "农业银行",
                "account_number": "6228480012345678901",
                "payee_is_insured": True,
                "reference": f"TRF{claim_id}",
                "paid_by": 1,
                "paid_at": utcnow() - timedelta(hours=2),
                "prepaid_fen": 0,
            }
            for claim_id in ids
        ]
        for start in range(0, len(payments), 5000):
            await connection.execute(insert(ClaimPayment), payments[start : start + 5000])
        await session.commit()
    return time.perf_counter() - started


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp))
        db = Database(settings)
        try:
            await bootstrap(db, settings)
            seeded = await seed(db, settings, args.claims, args.cases)
            started = time.perf_counter()
            async with db.session() as session:
                report = await draw_daily_sample(session, settings)
            seconds = time.perf_counter() - started
        finally:
            await db.dispose()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {platform.python_version()}, SQLite, load average {load}")
    print(f"seeded {args.claims:,} paid claims ({args.cases} collective cases of 5) in {seeded:.2f} s")
    print(f"draw: population {report.population:,}, drawn {report.drawn:,} in {seconds:.2f} s")
    within = seconds <= args.budget
    print(f"budget {args.budget:.1f} s: {'met' if within else 'MISSED'}")
    return 0 if within else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=200, help="collective cases of 5 households each")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds for the draw")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())

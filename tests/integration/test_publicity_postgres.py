"""Publicity on real PostgreSQL: the archive chain (advisory lock, unique predecessor), set-based reach and
the closing job behave as on SQLite (R-PUB-1, R-PUB-3)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import select

from backend.app import create_app
from backend.db import Database
from backend.publicity.jobs import close_due_notices
from backend.publicity.models import PublicityNotice
from backend.regions.models import Region
from backend.settings import Settings
from tests.backend.test_claims_workflow import staff_user
from tests.backend.test_publicity import CARDS, DONGGUAN, VILLAGE, farmers, paid_claim, publish
from tests.conftest import ADMIN_PASSWORD, login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP

pytestmark = pytest.mark.integration


async def test_R_PUB_3_publication_chain_and_closing_on_postgresql(
    pg_settings: Settings, pg_db: Database
) -> None:
    async with pg_db.session() as session:
        if await session.get(Region, VILLAGE) is None:
            session.add(Region(code=VILLAGE, name="东城测试村", level=5, parent_code=DONGGUAN_TOWNSHIP))
            await session.commit()
    app = create_app(pg_settings, db=pg_db)
    service = {"Authorization": f"Bearer {pg_settings.service_token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        admin = await login(api, "admin", ADMIN_PASSWORD)
        made = await farmers(api, service, 3)
        for (headers, policy), card in zip(made, CARDS, strict=False):
            await paid_claim(pg_db, policy, headers, card)
        adjuster, _ = await staff_user(api, admin, f"pub_pg_{id(api) % 10_000}", "adjuster", (DONGGUAN,))
        notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": VILLAGE})
        assert len(notice["rows"]) == 3
        verified = (await api.get("/api/publicity/archive/verify", headers=adjuster)).json()
        assert verified["ok"] is True, verified
        async with pg_db.session() as session:
            row = await session.get(PublicityNotice, notice["id"])
            assert row is not None and row.opened_at is not None
            opened = row.opened_at
        async with pg_db.session() as session:
            assert await close_due_notices(session, opened + timedelta(hours=72) - timedelta(seconds=1)) == 0
            assert await close_due_notices(session, opened + timedelta(hours=72)) == 1
            assert await close_due_notices(session, opened + timedelta(hours=73)) == 0
        records = (await api.get(f"/api/publicity/notices/{notice['id']}/archive", headers=adjuster)).json()
        assert [r["record_kind"] for r in records] == ["publication", "closing"]
        async with pg_db.session() as session:
            await session.execute(
                text("UPDATE publicity_archive SET pdf = :pdf WHERE id = :id"),
                {"pdf": b"%PDF-forged", "id": records[0]["id"]},
            )
            await session.commit()
        broken = (await api.get("/api/publicity/archive/verify", headers=adjuster)).json()
        assert broken["ok"] is False and broken["first_bad_record_id"] == records[0]["id"]
        async with pg_db.session() as session:  # leave the shared database's chain whole for later runs
            await session.execute(
                text("TRUNCATE publicity_archive, publicity_notice_person, publicity_objection")
            )
            await session.execute(text("DELETE FROM publicity_notice"))
            await session.commit()
        assert (await session_count(pg_db)) == 0


async def session_count(db: Database) -> int:
    async with db.session() as session:
        return len((await session.exec(select(PublicityNotice))).all())

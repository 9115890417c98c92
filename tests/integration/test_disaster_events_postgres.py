"""Disaster events on PostgreSQL: the migration's 64-bit estimates (a grade I property payout in fen passes
2^31), the clocks job, the daily report's figures (CASE sums) and the set-based closure notice."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import col, select

from backend.app import create_app
from backend.claims.catastrophe.jobs import event_daily_reports, event_report_clocks
from backend.claims.catastrophe.models import DisasterEvent, EventDailyReport
from backend.db import Database, utcnow
from backend.settings import Settings
from tests.backend.test_claims_catastrophe import add_claims
from tests.backend.test_claims_workflow import paid_policy
from tests.conftest import ADMIN_PASSWORD, SERVICE_TOKEN, login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP


async def test_grade_clocks_daily_report_and_branch_closure_on_postgresql(
    pg_settings: Settings, pg_db: Database
) -> None:
    app = create_app(pg_settings, db=pg_db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        headers, policy = await paid_policy(api, {"Authorization": f"Bearer {SERVICE_TOKEN}"}, "pg-events")
        policy["identity_id"] = int(headers["X-Identity-Id"])
        admin = await login(api, "admin", ADMIN_PASSWORD)
        async with pg_db.session() as session:
            event = DisasterEvent(name="台风", cause="typhoon", started_on=utcnow() - timedelta(days=1))
            session.add(event)
            await session.commit()
            event_id = event.id or 0
        await add_claims(pg_db, policy, (DONGGUAN_TOWNSHIP, "rice", 300_000), event_id=event_id)
        graded = await api.put(
            f"/api/events/{event_id}/estimates",
            headers=admin,
            json={"property_fen": 100_000_000_000, "casualty_fen": 0, "deaths": 0},
        )
        assert graded.status_code == 200, graded.text
        assert graded.json()["grade"] == "I" and len(graded.json()["deadlines"]) == 3
        start = utcnow()
        async with pg_db.session() as session:
            run = await event_report_clocks(session, pg_settings, start + timedelta(hours=3))
        assert run.escalated == 3
        async with pg_db.session() as session:
            assert await event_daily_reports(session, pg_settings) == 1
        async with pg_db.session() as session:
            report = (
                await session.exec(select(EventDailyReport).where(col(EventDailyReport.event_id) == event_id))
            ).one()
        assert report.figures["claims"] == 1 and report.figures["reported_fen"] == 300_000
        closed = await api.post(f"/api/branches/{DONGGUAN_TOWNSHIP}/close", headers=admin, json={})
        assert closed.status_code == 201, closed.text
        assert closed.json()["told_closed"] >= 1  # the policy holders of the township (other tests add some)

"""Safety inspections on PostgreSQL (R-LIA-5): an inspection from issuance to the authority's receipt, the
confirmation's row lock under three concurrent taps, and the reminder and escalation jobs run twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import text

from backend.app import create_app
from backend.db import Database, utcnow
from backend.settings import Settings
from tests.backend.test_inspections import (
    FakeAuthority,
    authority,  # noqa: F401  (the fixture)
    hazard,
    inspector,
    later,
    liability_policy,
    scheduled,
)
from tests.conftest import ADMIN_PASSWORD, SERVICE_TOKEN, login
from tests.images import png


async def test_an_inspection_from_issuance_to_the_authority_on_postgresql(
    pg_settings: Settings,
    pg_db: Database,
    authority: FakeAuthority,  # noqa: F811
) -> None:
    from backend.inspections import jobs

    async with pg_db.engine.begin() as conn:
        await conn.execute(text("TRUNCATE inspection, staff_alert RESTART IDENTITY CASCADE"))
    settings = pg_settings.model_copy(update={"safety_authority_url": authority.url})
    app = create_app(settings, db=pg_db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        insured = await liability_policy(api, {"Authorization": f"Bearer {SERVICE_TOKEN}"}, "pg-insp")
        admin = await login(api, "admin", ADMIN_PASSWORD)
        staff, staff_id = await inspector(api, admin, "pg_insp_uw")
        await scheduled(api, staff, staff_id, insured)
        path = f"/api/bot/inspections/{insured.inspection_id}/confirm"
        taps = await asyncio.gather(
            *(api.post(path, headers=insured.bot, json={"round": 1}) for _ in range(3))
        )
        assert sorted(t.json()["recorded"] for t in taps) == [False, False, True]
        made = await hazard(api, staff, insured.inspection_id, photo=png(), rectify_by=later(days=5))
        assert made.status_code == 201, made.text
        done = await api.post(
            f"/api/inspections/{insured.inspection_id}/complete", headers=staff, json={"summary": "需整改"}
        )
        assert done.json()["authority_status"] == "pending", done.text
        async with pg_db.session() as session:
            sent = await jobs.send_to_authority(session, settings)
        assert (sent.attempted, sent.accepted) == (1, 1)
        assert authority.received[0]["summary"]["hazard_counts"] == {"serious": 1}
        for when, field in (
            (utcnow() + timedelta(days=4), "rectifications"),
            (utcnow() + timedelta(days=6), "escalated"),
        ):
            counts = []
            for _ in range(2):
                async with pg_db.session() as session:
                    counts.append(getattr(await jobs.inspection_reminders(session, settings, when), field))
            assert counts == [1, 0], field
        view = (await api.get(f"/api/inspections/{insured.inspection_id}", headers=staff)).json()
        assert view["authority_status"] == "accepted" and view["hazards"][0]["escalated_at"] is not None

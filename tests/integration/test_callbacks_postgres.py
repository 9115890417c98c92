"""Callback surveys on PostgreSQL: two runners drawing the same day make one sample (the unique day),
the answers' row lock, and the rates' SQL (casts, substrings) on the production database."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text

from backend.app import create_app
from backend.db import Database
from backend.settings import Settings
from tests.backend.test_callbacks import answer, callbacks, draw, paid_claims, tuned
from tests.backend.test_claims_workflow import paid_policy
from tests.conftest import ADMIN_PASSWORD, SERVICE_TOKEN, login


async def test_callback_draw_once_under_two_runners_answers_and_rates_on_postgresql(
    pg_settings: Settings, pg_db: Database
) -> None:
    async with pg_db.engine.begin() as conn:
        await conn.execute(text("TRUNCATE callback_sample RESTART IDENTITY CASCADE"))
    app = create_app(pg_settings, db=pg_db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        headers, policy = await paid_policy(api, {"Authorization": f"Bearer {SERVICE_TOKEN}"}, "pg-cbk")
        await paid_claims(pg_db, policy, 201)
        settings = tuned(pg_settings)
        reports = await asyncio.gather(draw(pg_db, settings), draw(pg_db, settings))
        assert sorted(r.new for r in reports) == [False, True]
        rows = await callbacks(pg_db)
        assert len(rows) == 2
        first = rows[0].id or 0
        taps = await asyncio.gather(*(answer(api, headers, first, "received", "n") for _ in range(3)))
        assert sorted(t.json()["recorded"] for t in taps) == [False, False, True]
        admin = await login(api, "admin", ADMIN_PASSWORD)
        rates = (await api.get("/api/callbacks/rates", headers=admin)).json()
        assert [(r["sampled"], r["answered"], r["flagged"]) for r in rates] == [(2, 1, 1)]
        audit = (await api.get(f"/api/callbacks/samples/{rows[0].sample_id}/rederive", headers=admin)).json()
        assert audit["matches"] is True and len(audit["population"]) == 201

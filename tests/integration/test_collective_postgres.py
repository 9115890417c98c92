"""Collective enrollment on PostgreSQL (R-ENR-1, R-ENR-2): the PostgreSQL paths (array lookups, COPY of
households, persons by ``unnest``) store a clean list, refuse an edited copy as already insured and issue
the policy once paid."""

from __future__ import annotations

import io

import httpx
import pytest
from sqlmodel import func, select

from backend.db import Database
from backend.enrollment.collective import service
from backend.enrollment.collective.models import PolicyHousehold
from backend.people.models import Person
from backend.settings import Settings
from bot.server import build_embedded_app
from tests.backend.test_access_table import png
from tests.collective_helpers import household, list_csv, upload
from tests.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.integration


async def test_R_ENR_1_a_list_is_stored_checked_and_issued_on_postgresql(
    pg_settings: Settings, pg_db: Database
) -> None:
    app = build_embedded_app(
        pg_settings.model_copy(update={"embedded_worker": False, "embedded_scheduler": False}), db=pg_db
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        token = await api.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
        rows = [household(n) for n in range(1, 301)]
        created = await upload(api, admin, list_csv(rows))
        assert created.status_code in (200, 201), created.text
        collective_id = created.json()["id"]
        edited = await upload(api, admin, list_csv([*rows[:5], household(301)]))
        assert edited.status_code == 422, edited.text
        assert [p["code"] for p in edited.json()["problems"]] == ["already_insured"] * 5
        stamp = await api.post(
            f"/api/collective/{collective_id}/organiser-confirmation",
            headers=admin,
            data={"confirmed_by_name": "李村长", "confirmed_by_title": "村委会主任"},
            files={"file": ("stamp.png", io.BytesIO(png()), "image/png")},
        )
        assert stamp.status_code == 200, stamp.text
        paid = await api.post(
            f"/api/collective/{collective_id}/payment",
            headers=admin,
            json={"method": "bank_deduction", "reference": f"TR-pg-{collective_id}"},
        )
        assert paid.status_code == 200, paid.text
    async with pg_db.session() as session:
        households = await service.household_rows(session, paid.json()["policy_id"])
        stored = (await session.exec(select(func.count()).select_from(PolicyHousehold))).one()
        persons = (await session.exec(select(func.count()).select_from(Person))).one()
    assert [h.name for h in households] == [r["name"] for r in rows] and stored >= 300 and persons >= 300
    assert households[0].bank_account == rows[0]["bank_account"]
    await app.state.bot_runtime.close()

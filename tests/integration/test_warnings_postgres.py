"""Official warnings on real PostgreSQL: migration 0018, once per message (the unique key across offsets),
the candidate disaster event (INSERT ... RETURNING by table name), approval, an Update to the same people,
Cancel's all-clear and the post-expiry invitation behave as on SQLite."""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from backend.alerts.warnings import service
from backend.alerts.warnings.models import CapWarning
from backend.app import create_app
from backend.broadcasts.models import BroadcastRecipient
from backend.claims.catastrophe.models import DisasterEvent
from backend.db import Database, utcnow
from backend.settings import Settings
from tests.backend.test_cap_parsing import cap_xml, info_xml
from tests.backend.test_cap_warnings import DONGGUAN_AREA, XML, insured
from tests.conftest import ADMIN_PASSWORD, login

pytestmark = pytest.mark.integration


async def test_a_warning_story_on_postgresql(pg_settings: Settings, pg_db: Database) -> None:
    tag = secrets.token_hex(4)
    app = create_app(pg_settings, db=pg_db)
    service_headers = {"Authorization": f"Bearer {pg_settings.service_token}"}
    alert = cap_xml(identifier=f"PG-{tag}", infos=info_xml(area=DONGGUAN_AREA))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        admin = await login(api, "admin", ADMIN_PASSWORD)
        await insured(api, service_headers, f"pg-warned-{tag}")
        first = await api.post("/api/warnings", content=alert, headers={**admin, **XML})
        assert first.status_code == 201, first.text
        other_offset = alert.replace(b"2026-12-04T08:00:00+08:00", b"2026-12-04T00:00:00+00:00")
        again = await api.post("/api/warnings", content=other_offset, headers={**admin, **XML})
        assert again.status_code == 200 and again.json()["warning"]["id"] == first.json()["warning"]["id"]
        warning = first.json()["warning"]
        sent = await api.post(f"/api/warnings/{warning['id']}/approve", headers=admin)
        assert sent.status_code == 200, sent.text
        reference = f"gd-weather@cma.cn,PG-{tag},2026-12-04T08:00:00+08:00"
        update = cap_xml(
            identifier=f"PG-{tag}-U",
            sent="2026-12-04T10:00:00+08:00",
            msg_type="Update",
            references=reference,
            infos=info_xml(area=DONGGUAN_AREA),
        )
        updated = await api.post("/api/warnings", content=update, headers={**admin, **XML})
        resent = await api.post(f"/api/warnings/{updated.json()['warning']['id']}/approve", headers=admin)
        assert resent.status_code == 200, resent.text
        cancel = cap_xml(
            identifier=f"PG-{tag}-C",
            sent="2026-12-04T12:00:00+08:00",
            msg_type="Cancel",
            references=f"gd-weather@cma.cn,PG-{tag}-U,2026-12-04T10:00:00+08:00",
            infos="",
        )
        cancelled = await api.post("/api/warnings", content=cancel, headers={**admin, **XML})
        assert cancelled.json()["warning"]["all_clear_broadcast_id"] is not None
    async with pg_db.session() as session:
        event = await session.get(DisasterEvent, warning["event_id"])
        assert event is not None and event.status == "candidate" and event.cause == "typhoon"
        people = {}
        for key in ("first", "update", "all_clear"):
            broadcast = {
                "first": sent.json()["broadcast_id"],
                "update": resent.json()["broadcast_id"],
                "all_clear": cancelled.json()["warning"]["all_clear_broadcast_id"],
            }[key]
            query = select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast)
            rows = (await session.exec(query)).all()
            people[key] = {r.person_id for r in rows}
        assert len(people["first"]) >= 1 and people["first"] == people["update"] == people["all_clear"]
    # A sent warning past its expiry invites once (a fresh one: the cancelled story invites nobody).
    async with pg_db.session() as session:
        fresh = (await service.ingest(session, pg_settings, data=cap_xml(identifier=f"PG-{tag}-E"))).warning
        row = await session.get(CapWarning, fresh.id)
        assert row is not None and row.state == "pending"
        row.state, row.broadcast_id = "sent", sent.json()["broadcast_id"]
        row.expires = utcnow() - timedelta(minutes=1)
        session.add(row)
        await session.commit()
        assert (await service.act_on_due(session)).invited >= 1
        assert (await service.act_on_due(session)).invited == 0

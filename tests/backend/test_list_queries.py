"""List endpoints run a constant number of SQL statements for N rows and never read a PDF blob."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from tests.backend.test_enrollment_api import farmer_application, identity, submit

CROPS = ("rice", "corn", "peanut", "potato", "sugarcane")


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []
    engine = app.state.db.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _policies(api: httpx.AsyncClient, headers: dict[str, str], products: tuple[str, ...]) -> None:
    for product in products:
        made = (await submit(api, headers, farmer_application(product_code=product))).json()
        paid = await api.post(
            f"/api/bot/applications/{made['id']}/payments", headers=headers, json={"provider": "demo"}
        )
        assert paid.status_code == 200, paid.text


async def _count(app: Any, api: httpx.AsyncClient, url: str, headers: dict[str, str], rows: int) -> list[str]:
    with statements(app) as seen:
        listed = await api.get(url, headers=headers)
    assert listed.status_code == 200 and len(listed.json()) == rows
    assert all(item.get("document_id") for item in listed.json() if "document_id" in item)
    return seen


async def test_policy_and_application_lists_run_the_same_statements_for_one_or_three_rows(
    app: Any, api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    one = await identity(api, service_headers, "list-one")
    three = await identity(api, service_headers, "list-three")
    await _policies(api, one, CROPS[:1])
    staff_few = await _count(app, api, "/api/policies", admin_headers, 1)
    applications_few = await _count(app, api, "/api/applications", admin_headers, 1)
    await _policies(api, three, CROPS[:3])
    staff_many = await _count(app, api, "/api/policies", admin_headers, 4)
    assert len(staff_few) == len(staff_many), staff_many
    applications_many = await _count(app, api, "/api/applications", admin_headers, 4)
    assert len(applications_few) == len(applications_many), applications_many
    for url in ("/api/bot/policies", "/api/bot/applications"):
        few = await _count(app, api, url, one, 1)
        many = await _count(app, api, url, three, 3)
        assert len(few) == len(many), (url, many)
    for statement in staff_many + many:
        assert "document.content" not in statement, "a list read a PDF blob"

"""Collective enrollment (issue 13): a household list validated first and stored after (R-ENR-1,
R-ENR-2), the committee's check and stamp, payment before the policy (R-ENR-9), region scope."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlmodel import col, func, select

from backend.db import Database
from backend.enrollment.collective import service
from backend.enrollment.collective.models import PolicyHousehold
from backend.enrollment.models import Application, EarTag, Policy
from backend.outbox.models import OutboxMessage
from backend.people.models import Person
from tests.backend.test_access_table import PASSWORD, png
from tests.collective_helpers import AREA, HEADERS_ZH, household, household_id, list_csv, list_xlsx, upload
from tests.conftest import login

HEADERS_EN = [
    "Name", "ID number", "Phone", "Subject", "Quantity", "Village (code or name)", "Place name",
    "Ear tags or batch numbers", "Bank", "Account number",
]  # fmt: skip
OTHER_CITY = "442000000000"  # 中山市, the neighbour of 东莞


async def staff(
    db: Database, api: httpx.AsyncClient, username: str, role: str, regions: list[str]
) -> dict[str, str]:
    from backend.security import hash_password
    from backend.staff.models import StaffUser

    async with db.session() as session:
        session.add(
            StaffUser(
                username=username,
                password_hash=hash_password(PASSWORD),
                full_name=username,
                role=role,
                region_codes=regions,
                phone="13900000000",
            )
        )
        await session.commit()
    return await login(api, username, PASSWORD)


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


def wrong_check(id_number: str) -> str:
    last = "0" if id_number[-1] != "0" else "1"
    return id_number[:-1] + last


async def test_R_ENR_2_every_kind_of_bad_row_is_reported_with_line_column_and_reason(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    earlier = await upload(api, admin_headers, list_csv([household(90)]))
    assert earlier.status_code == 201, earlier.text
    persons_before = await count(db, Person)
    rows = [
        household(1),  # line 2: good
        household(2, id_number=wrong_check(household_id(2))),  # 3: checksum
        household(3, id_number=household_id(1)),  # 4: duplicate of line 2
        household(90),  # 5: already insured (the earlier list)
        household(5, village="999999999999"),  # 6: unknown village
        household(6, quantity="十亩"),  # 7: not a number
        household(7, quantity="60000"),  # 8: more than the village can hold
    ]
    response = await upload(api, admin_headers, list_csv(rows))
    assert response.status_code == 422, response.text
    found = [(p["line"], p["column"], p["code"]) for p in response.json()["problems"]]
    assert found == [
        (3, "id_number", "id_check_character"),
        (4, "id_number", "duplicate_id"),
        (5, "id_number", "already_insured"),
        (6, "village", "unknown_village"),
        (7, "quantity", "quantity_format"),
        (8, "quantity", "quantity_over_village_total"),
    ]
    problems = {p["code"]: p for p in response.json()["problems"]}
    assert problems["duplicate_id"]["reason"] == "身份证号码与第2行重复"
    assert problems["id_check_character"]["column_label"] == "身份证号码"
    # Nothing of the list was stored: no household, no person, no application.
    assert await count(db, PolicyHousehold) == 1 and await count(db, Person) == persons_before
    english = await upload(api, {**admin_headers, "Accept-Language": "en"}, list_csv(rows))
    reasons = {p["code"]: p["reason"] for p in english.json()["problems"]}
    assert reasons["duplicate_id"] == "The same ID number as line 2"

    # Livestock: the ear tags must match the head count.
    tags = "111010100000001 111010100000002"
    sows = [
        household(10, subject="能繁母猪", quantity="2", ear_tags=tags),
        household(11, subject="能繁母猪", quantity="3", ear_tags="111010100000003"),
    ]
    response = await upload(api, admin_headers, list_csv(sows), product="sow")
    assert [(p["line"], p["column"], p["code"]) for p in response.json()["problems"]] == [
        (3, "ear_tags", "ear_tags_count")
    ], response.text


async def test_R_ENR_2_a_missing_column_is_named_and_the_xlsx_report_carries_the_reasons(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    without_bank = list_csv([household(1)], headers=[*HEADERS_ZH[:-1], "备注"])
    response = await upload(api, admin_headers, without_bank, path="/api/collective/lists/check")
    assert response.json()["problems"] == [
        {
            "line": 1,
            "column": "bank_account",
            "column_label": "银行账号",
            "code": "missing_column",
            "reason": "缺少“银行账号”列",
            "detail": {"column": "bank_account"},
        }
    ]
    rows = [household(1), household(2, id_number="1101")]
    report = await upload(api, admin_headers, list_csv(rows), path="/api/collective/lists/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("application/vnd.openxml")
    sheet = load_workbook(io.BytesIO(report.content)).active
    assert sheet is not None
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0][0] == "行号" and table[0][-1] == "错误原因"
    assert table[1][0] == 2 and not table[1][-1]
    assert table[2][0] == 3 and "身份证号码应为18位，这里是4位" in table[2][-1]


async def test_R_ENR_2_csv_in_utf8_with_bom_and_in_gb18030_is_read(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    rows = [household(1, name="欧阳娜娜"), household(2, place_name="石碣镇南坑")]
    for data in (list_csv(rows, "utf-8-sig"), list_csv(rows, "gb18030"), list_csv(rows, "utf-8")):
        response = await upload(api, admin_headers, data, path="/api/collective/lists/check")
        assert response.json() == {"ok": True, "rows": 2, "problems": []}, response.text
    english = list_csv(rows, "utf-8-sig", headers=HEADERS_EN)
    assert (await upload(api, admin_headers, english, path="/api/collective/lists/check")).json()["ok"]


async def test_R_ENR_2_the_template_round_trips_in_both_languages(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for locale, first in (("zh-CN", "姓名"), ("en", "Name")):
        headers = {**admin_headers, "Accept-Language": locale}
        template = await api.get(
            "/api/collective/template", headers=headers, params={"product_code": "rice", "village_code": AREA}
        )
        assert template.status_code == 200, template.text
        sheet = load_workbook(io.BytesIO(template.content)).active
        assert sheet is not None and sheet["A1"].value == first
        checked = await upload(
            api, headers, template.content, path="/api/collective/lists/check", filename="t.xlsx"
        )
        assert checked.json() == {"ok": True, "rows": 1, "problems": []}, checked.text


async def test_R_ENR_1_an_agent_outside_their_village_and_staff_of_another_region_are_refused(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    village_agent = await staff(db, api, "agent_village", "agent", [AREA])
    neighbour = await staff(db, api, "underwriter_zs", "underwriter", [OTHER_CITY])
    data = list_csv([household(1)])
    outside = await upload(api, village_agent, data, area="441900004000")  # another township of 东莞
    assert outside.status_code == 403 and outside.json()["detail"]["code"] == "outside_scope"
    assert (await upload(api, neighbour, data)).status_code == 403
    mine = await upload(api, village_agent, data)
    assert mine.status_code == 201, mine.text
    collective_id = mine.json()["id"]
    assert (await api.get(f"/api/collective/{collective_id}", headers=neighbour)).status_code == 404
    assert (
        await api.get(f"/api/collective/{collective_id}/households", headers=neighbour)
    ).status_code == 404
    viewer = await staff(db, api, "viewer_dg", "viewer", [AREA])
    assert (await upload(api, viewer, data)).status_code == 403  # viewers upload nothing


async def test_R_ENR_1_a_clean_list_creates_one_collective_enrollment_with_a_row_per_household(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    rows = [household(n) for n in range(1, 6)]
    response = await upload(api, admin_headers, list_xlsx(rows), filename="list.xlsx")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["household_count"] == 5 and body["status"] == "awaiting_confirmation"
    assert body["total_quantity"] == "50" and body["policy_id"] is None
    async with db.session() as session:
        application = await session.get(Application, body["application_id"])
        assert (
            application is not None and application.kind == "collective" and application.identity_id is None
        )
        persons = (
            await session.exec(
                select(Person).where(col(Person.id_number).in_([r["id_number"] for r in rows]))
            )
        ).all()
        assert len(persons) == 5 and {p.phone for p in persons} == {r["phone"] for r in rows}
        shown = await service.collective_household_rows(session, body["id"])
    assert [r.name for r in shown] == [r["name"] for r in rows]
    assert shown[0].bank_account == rows[0]["bank_account"]  # raw: the publicity notice masks it
    assert shown[0].id_number == rows[0]["id_number"] and shown[0].subject == "水稻"
    assert shown[0].quantity == "10亩" and shown[0].location == "东城街道 东洼地"
    assert sum(r.premium_share_fen for r in shown) == body["farmers_fen"]
    listed = await api.get(f"/api/collective/{body['id']}/households", headers=admin_headers)
    assert listed.json()[0]["bank_account_masked"] == "6228***********0001"
    assert rows[0]["id_number"] not in listed.text  # staff see masked numbers
    # Each household without a chat is texted a link to its own row.
    async with db.session() as session:
        texts = (await session.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms"))).all()
    assert len(texts) == 5 and all("/s/" in t.text for t in texts)


async def test_R_ENR_1_the_same_list_twice_does_not_insure_twice(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    rows = [household(n) for n in range(1, 4)]
    first = await upload(api, admin_headers, list_csv(rows))
    again = await upload(api, admin_headers, list_csv(rows))
    assert (
        again.status_code == 200
        and again.json()["id"] == first.json()["id"]
        and again.json()["already_uploaded"]
    )
    edited = await upload(api, admin_headers, list_csv([*rows, household(4)]))
    assert edited.status_code == 422
    assert {p["code"] for p in edited.json()["problems"]} == {"already_insured"}
    assert await count(db, PolicyHousehold) == 3
    # Cancelled before its policy, the list no longer insures anyone: the fixed list goes up again.
    cancelled = await api.post(f"/api/collective/{first.json()['id']}/cancel", headers=admin_headers)
    assert cancelled.json()["status"] == "cancelled"
    assert (await upload(api, admin_headers, list_csv([*rows, household(4)]))).status_code == 201


async def test_R_ENR_9_the_collective_policy_is_issued_after_the_stamp_and_the_payment(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    tags = ["111010100000011", "111010100000012"]
    rows = [household(1, subject="能繁母猪", quantity="2", ear_tags=" ".join(tags))]
    created = (await upload(api, admin_headers, list_csv(rows), product="sow")).json()
    assert await count(db, EarTag) == 2
    pay = {"method": "bank_deduction", "reference": "TR-collective-1"}
    early = await api.post(f"/api/collective/{created['id']}/payment", headers=admin_headers, json=pay)
    assert early.json()["detail"]["code"] == "organiser_confirmation_missing"
    stamp = await api.post(
        f"/api/collective/{created['id']}/organiser-confirmation",
        headers=admin_headers,
        data={"confirmed_by_name": "李村长", "confirmed_by_title": "村委会主任"},
        files={"file": ("stamp.png", io.BytesIO(png()), "image/png")},
    )
    assert stamp.status_code == 200, stamp.text
    assert stamp.json()["organiser_confirmed_by_name"] == "李村长" and stamp.json()["stamp_document_id"]
    not_a_photo = await api.post(
        f"/api/collective/{created['id']}/organiser-confirmation",
        headers=admin_headers,
        data={"confirmed_by_name": "李村长", "confirmed_by_title": "村委会主任"},
        files={"file": ("stamp.png", io.BytesIO(b"\x89PNG not really"), "image/png")},
    )
    assert not_a_photo.status_code in (409, 415, 422)
    wrong = await api.post(
        f"/api/collective/{created['id']}/payment", headers=admin_headers, json={**pay, "amount_fen": 1}
    )
    assert wrong.json()["detail"]["code"] == "amount_mismatch"
    paid = await api.post(f"/api/collective/{created['id']}/payment", headers=admin_headers, json=pay)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "issued" and paid.json()["policy_number"]
    async with db.session() as session:
        policy = await session.get(Policy, paid.json()["policy_id"])
        assert (
            policy is not None
            and policy.identity_id is None
            and policy.insured_name == "东城街道大塘村民委员会"
        )
        assert [r.name for r in await service.household_rows(session, policy.id or 0)] == [rows[0]["name"]]
    twice = await api.post(f"/api/collective/{created['id']}/payment", headers=admin_headers, json=pay)
    assert twice.status_code in (409, 422)
    # The same ear tags in another list are refused: no tag twice within the insurer (R-ENR-2).
    other = [household(2, subject="能繁母猪", quantity="2", ear_tags=" ".join(tags))]
    refused = await upload(api, admin_headers, list_csv(other), product="sow")
    assert [p["code"] for p in refused.json()["problems"]] == ["ear_tags_taken"]


async def test_R_ENR_1_a_large_list_is_told_by_the_job_once(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.enrollment.collective import jobs

    monkeypatch.setattr(jobs, "NOTIFY_INLINE_MAX", 1)  # these 3 households count as a large list
    created = await upload(api, admin_headers, list_csv([household(n) for n in range(1, 4)]))
    assert created.status_code == 201, created.text

    async def texts() -> int:
        async with db.session() as session:
            query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel == "sms")
            return int((await session.exec(query)).one())

    assert await texts() == 0
    for _ in range(2):  # a second run (or a restart) tells nobody twice
        async with db.session() as session:
            await jobs.notify_pending_households(session=session, link_days=30)
    assert await texts() == 3


async def test_R_ENR_2_numbers_typed_as_numbers_in_excel_are_read_as_typed(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Excel stores a typed 10 or 13900000001 as a number: it is read without ".0"; an 18-digit ID number
    typed as a number has lost its last digits in Excel itself and is refused by its check character."""
    rows: list[dict[str, Any]] = [household(1), household(2)]
    rows[0] = {**rows[0], "quantity": 10, "phone": 13900000001}
    rows[1] = {**rows[1], "id_number": int(household_id(2)[:17] + "0")}
    checked = await upload(
        api, admin_headers, list_xlsx(rows), path="/api/collective/lists/check", filename="l.xlsx"
    )
    assert [(p["line"], p["column"]) for p in checked.json()["problems"]] == [(3, "id_number")], checked.text

"""A household of a collective enrollment in web chat (R-ENR-1, R-ENR-5, R-ENR-10): its own row opened
from the text's link or the chat notice, confirmed by its own verified account or by a relative with name
and relation, objected to with a reason, never another household's row; the voucher PDF after payment."""

from __future__ import annotations

import io
from typing import Any

import httpx
from pypdf import PdfReader
from sqlmodel import select

from backend.db import Database
from backend.enrollment.collective.models import PolicyHousehold
from backend.people.models import ChatIdentity
from tests.backend.test_access_table import png
from tests.bot.test_sms_verification import bind_by_code, texted_link
from tests.collective_helpers import household, list_csv, upload
from tests.enroll_helpers import deliver
from tests.harness import ChatUser

TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    "collective/notice_confirm": {"name": "王一", "organiser": "大塘村民委员会", "product_name": "水稻"},
    "collective/notice_issued": {"name": "王一", "organiser": "大塘村民委员会", "product_name": "水稻"},
    "collective/household": {
        "h": {
            "organiser_name": "大塘村民委员会",
            "name": "王一",
            "id_number_masked": "1101**********0012",
            "quantity": "10",
            "village_name": "东城街道",
            "place_name": "东洼地",
            "ear_tags": ["111010100000001"],
            "premium_total_fen": 6000,
            "farmer_fen": 1200,
            "bank_name": "农村信用社",
            "bank_account_masked": "6228***********0001",
            "policy_number": "PL2026000001",
        },
        "product_name": "水稻",
        "unit": "亩",
        "status": "待确认",
    },
    "collective/choose_signer": {},
    "collective/ask_relative_name": {},
    "collective/choose_relation": {"name": "王小明"},
    "collective/confirmed": {"relative": "王小明"},
    "collective/ask_objection": {},
    "collective/objected": {},
    "collective/not_found": {},
    "collective/name_invalid": {},
    "collective/objection_answered": {"answer": "经村委会核实，面积确为10亩"},
}
PHONE_1, PHONE_2 = "13900000001", "13900000002"


async def enrolled(api: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    rows = [household(1, phone=PHONE_1), household(2, phone=PHONE_2)]
    response = await upload(api, admin_headers, list_csv(rows))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def household_ids(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = (await session.exec(select(PolicyHousehold))).all()
    return {row.phone or "": row.id or 0 for row in rows}


async def open_own_row(user: ChatUser, db: Database, phone: str) -> None:
    """The household verifies its number in chat and opens the text's link: its own row."""
    token = await texted_link(db, phone)
    await bind_by_code(user, db, phone)
    replies = await user.say(f"/start s_{token}")
    assert "集体投保分户信息" in replies[0].text, user.text()


async def test_R_ENR_5_a_household_confirms_its_own_row_from_its_verified_account(
    chat_client: httpx.AsyncClient, api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    await enrolled(api, admin_headers)
    user = ChatUser(chat_client, "household-1")
    await open_own_row(user, db, PHONE_1)
    assert "1101" in user.text() and household(1)["id_number"] not in user.text()  # masked in chat
    assert household(1)["bank_account"] not in user.text()
    await user.tap("确认无误")
    replies = await user.tap("本人确认")
    assert "已确认" in replies[0].text and "状态：已确认" in replies[0].text, user.text()
    async with db.session() as session:
        row = await session.get(PolicyHousehold, (await household_ids(db))[PHONE_1])
        identity = (
            await session.exec(select(ChatIdentity).where(ChatIdentity.external_id == "household-1"))
        ).one()
    assert row is not None and row.status == "confirmed"
    assert row.signer == {"role": "insured", "name": household(1)["name"], "relation": None}
    assert row.confirmed_identity_id == identity.id


async def test_R_ENR_5_a_relative_confirms_with_name_and_relation(
    chat_client: httpx.AsyncClient, api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    await enrolled(api, admin_headers)
    user = ChatUser(chat_client, "household-rel")
    await open_own_row(user, db, PHONE_1)
    await user.tap("确认无误")
    await user.tap("亲属代为确认")
    replies = await user.say("1")
    assert "姓名只能包含汉字或字母" in replies[0].text
    await user.say("王小明")
    replies = await user.tap("子女")
    assert "由王小明代为确认" in replies[0].text, user.text()
    async with db.session() as session:
        row = await session.get(PolicyHousehold, (await household_ids(db))[PHONE_1])
    assert row is not None and row.signer == {"role": "relative", "name": "王小明", "relation": "child"}


async def test_R_ENR_5_a_household_objects_with_a_reason_and_staff_answer(
    chat_client: httpx.AsyncClient,
    embedded: Any,
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    created = await enrolled(api, admin_headers)
    user = ChatUser(chat_client, "household-2")
    await open_own_row(user, db, PHONE_2)
    await user.tap("有异议")
    replies = await user.say("面积应为8亩，不是10亩")
    assert "异议已记录" in replies[0].text and "已提出异议" in replies[0].text, user.text()
    async with db.session() as session:
        row = await session.get(PolicyHousehold, (await household_ids(db))[PHONE_2])
    assert row is not None and row.status == "objected" and row.objection_reason == "面积应为8亩，不是10亩"
    staff_view = await api.get(f"/api/collective/{created['id']}", headers=admin_headers)
    assert staff_view.json()["households_objected"] == 1
    # Staff check it and the row stands: the answer comes back in the household's chat.
    answered = await api.post(
        f"/api/collective/{created['id']}/households/{row.id}/objection-answer",
        headers=admin_headers,
        json={"answer": "经村委会核实，面积确为10亩"},
    )
    assert answered.status_code == 200 and answered.json()["status"] == "pending", answered.text
    await deliver(embedded)
    told = [r for r in await user.history() if "经村委会核实" in r.text]
    assert told, user.text()
    await user.tap("查看我的分户信息", told)
    replies = await user.tap("确认无误")
    assert "由谁确认" in replies[0].text


async def test_R_ENR_5_another_households_row_is_neither_shown_nor_confirmed(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
) -> None:
    await enrolled(api, admin_headers)
    neighbour = ChatUser(chat_client, "household-2-nosy")
    await bind_by_code(neighbour, db, PHONE_2)
    other = (await household_ids(db))[PHONE_1]
    headers = {**service_headers, "X-Tianbao-Identity": "webchat:household-2-nosy"}
    seen = await api.get(f"/api/bot/collective/households/{other}", headers=headers)
    assert seen.status_code == 404
    confirm = await api.post(
        f"/api/bot/collective/households/{other}/confirmation", headers=headers, json={"role": "insured"}
    )
    assert confirm.status_code == 404
    relative = await api.post(
        f"/api/bot/collective/households/{other}/confirmation",
        headers=headers,
        json={"role": "relative", "name": "王二", "relation": "spouse"},
    )
    assert relative.status_code == 404
    # Staff never sign for a household: a staff token opens no household route (R-ENR-5).
    by_staff = await api.post(
        f"/api/bot/collective/households/{other}/confirmation",
        headers=admin_headers,
        json={"role": "insured"},
    )
    assert by_staff.status_code in (401, 403)
    # The first household's link, forwarded to the neighbour, opens nothing in the neighbour's chat.
    token = await texted_link(db, PHONE_1)
    replies = await neighbour.say(f"/start s_{token}")
    assert "集体投保分户信息" not in replies[0].text
    async with db.session() as session:
        row = await session.get(PolicyHousehold, other)
    assert row is not None and row.status == "pending"


async def test_R_ENR_10_the_household_gets_its_voucher_pdf_in_chat(
    chat_client: httpx.AsyncClient,
    embedded: Any,
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
) -> None:
    user = ChatUser(chat_client, "household-voucher")
    await bind_by_code(user, db, PHONE_1)  # a chat that reaches the household before the list goes up
    created = await enrolled(api, admin_headers)
    await deliver(embedded)
    notice = [r for r in await user.history() if "待您确认" in r.text]
    assert notice, "the household's verified chat gets the notice"
    await user.tap("查看我的分户信息", notice)
    await user.tap("确认无误")
    await user.tap("本人确认")
    stamp = await api.post(
        f"/api/collective/{created['id']}/organiser-confirmation",
        headers=admin_headers,
        data={"confirmed_by_name": "李村长", "confirmed_by_title": "村委会主任"},
        files={"file": ("stamp.png", io.BytesIO(png()), "image/png")},
    )
    assert stamp.status_code == 200, stamp.text
    paid = await api.post(
        f"/api/collective/{created['id']}/payment",
        headers=admin_headers,
        json={"method": "bank_deduction", "reference": "TR-household-voucher"},
    )
    assert paid.status_code == 200, paid.text
    await deliver(embedded)
    issued = [r for r in await user.history() if "集体投保已生效" in r.text]
    assert issued, user.text()
    replies = await user.tap("下载分户凭证", issued)
    document = next(r.document for r in replies if r.document)
    assert document is not None and document["name"].startswith(paid.json()["policy_number"])
    pdf = await chat_client.get(document["url"])
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "分户凭证" in text and household(1)["name"] in text
    assert household(1)["id_number"] not in text  # masked on the voucher too

"""Publicity in web chat, end to end: staff publish a claims payout notice; the farmer gets it in chat,
reads it with the household's own row marked, finds it again with "公示", objects; staff answer with a
correction, which re-publishes the notice and restarts the 72 hours; the answer arrives in chat; the
archive keeps both versions and names a tampered record (R-PUB-1, R-PUB-2, R-PUB-3, R-PUB-4). The QR
code on the board and a text's link open the notice in chat."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlmodel import select

from backend.db import Database
from backend.outbox.sms.service import create_link
from backend.people.models import ChatIdentity
from tests.backend.test_claims_workflow import staff_user
from tests.backend.test_enrollment_api import farmer_application, submit
from tests.backend.test_publicity import (
    CARDS,
    DONGGUAN,
    VILLAGE,
    farmers,
    paid_claim,
    publish,
    token_of,
    village,  # noqa: F401  (the fixture)
)
from tests.bot.test_claims_chat import send_photo
from tests.bot.test_sms_verification import bind_by_code
from tests.enroll_helpers import deliver
from tests.harness import ChatUser, Reply

PHONE = "13812345678"
CARD = CARDS[-1]  # 19 digits


async def insured_farmer(
    farmer: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> tuple[dict[str, str], dict[str, Any]]:
    """A web chat verified by its SMS code, holding a paid rice policy in the village."""
    await bind_by_code(farmer, db, PHONE)
    headers = {**service_headers, "X-Tianbao-Identity": f"webchat:{farmer.chat_id}"}
    async with db.session() as session:
        chat = (
            await session.exec(select(ChatIdentity).where(ChatIdentity.external_id == farmer.chat_id))
        ).one()
        headers["X-Identity-Id"] = str(chat.id)
    body = farmer_application(region_code=VILLAGE)
    body["farmer"]["phone"] = PHONE
    application = await submit(api, headers, body)
    assert application.status_code == 200, application.text
    paid = await api.post(
        f"/api/bot/applications/{application.json()['id']}/payments",
        headers=headers,
        json={"provider": "demo"},
    )
    assert paid.status_code == 200, paid.text
    policy: dict[str, Any] = paid.json()["policy"]
    return headers, policy


async def pushed(farmer: ChatUser, embedded: Any, after: int) -> list[Reply]:
    """What the delivery worker put into the chat since message ``after``."""
    await deliver(embedded)
    return [m for m in await farmer.history(after) if m.id > after]


def plain(replies: list[Reply]) -> str:
    """The replies as read (without the HTML tags)."""
    return re.sub(r"<[^>]+>", "", "\n".join(r.text for r in replies))


def last_id(replies: list[Reply]) -> int:
    return max((r.id for r in replies), default=0)


async def test_R_PUB_1_publish_read_own_row_object_correct_republish_and_archive(
    chat_client: httpx.AsyncClient,
    embedded: Any,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    village: str,  # noqa: F811
) -> None:
    farmer = ChatUser(chat_client, "farmer-pub", first_name="李四")
    headers, policy = await insured_farmer(farmer, api, service_headers, db)
    await paid_claim(db, policy, headers, CARD)
    [(neighbour_headers, neighbour_policy)] = await farmers(api, service_headers, 1)
    await paid_claim(db, neighbour_policy, neighbour_headers, CARDS[0], amount_fen=90000)
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    await deliver(embedded)  # the policy's own notices first
    seen = last_id(await farmer.history())
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})

    # The notice reaches the farmer's chat, with its buttons
    [announce] = await pushed(farmer, embedded, seen)
    assert "东城测试村理赔公示" in announce.text and "名单中有您家的信息" in announce.text
    assert "72小时" in announce.text
    replies = await farmer.tap("查看公示", [announce])
    detail = plain(replies)
    assert "👉 您家：" in detail and "李四" in detail and "1500.00" in detail
    assert "农户甲" in detail  # the neighbour's row is there, not marked
    assert detail.index("李四") < detail.index("农户甲")  # own row first
    assert CARD not in detail and "622202123******0123"[-13:] in detail  # R-PUB-2 in chat too

    # "公示" typed lists the open notices of the village
    listed = await farmer.say("公示")
    assert "本村公示" in listed[0].text and "有您家" in listed[0].text

    # The objection
    await farmer.tap("查看公示", [announce])
    await farmer.tap("提出异议")
    assert "请写下异议的内容" in farmer.text()
    asked = await farmer.say("我家赔款金额应为1600元，少算了")
    assert "如有照片" in asked[-1].text and "跳过" in " ".join(asked[-1].button_texts())
    received = await send_photo(farmer)  # the passbook: optional, and kept with the objection
    assert "已收到您的异议" in received[-1].text
    queue = (await api.get("/api/publicity/objections", headers=adjuster)).json()
    [objection] = queue
    photo = await api.get(f"/api/publicity/objections/{objection['id']}/photo", headers=adjuster)
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    own_row = objection["row_index"]
    assert objection["reason"].startswith("我家赔款金额") and own_row is not None and objection["has_photo"]
    assert notice["rows"][own_row]["fields"]["insured_name"] == "李四"  # the objector's own row
    created, due = (
        datetime.fromisoformat(objection["created_at"]),
        datetime.fromisoformat(objection["due_at"]),
    )
    assert (due - created).days == 3 and objection["overdue"] is False

    # Staff confirm the error: the row is corrected, version 2 opens with a new full window
    seen = last_id(await farmer.history())
    correction = {"row_index": own_row, "fields": {"payout_amount": "1600.00"}, "note": "核实少算100元"}
    answered = await api.post(
        f"/api/publicity/objections/{objection['id']}/answer",
        headers=adjuster,
        json={
            "answer": "经核实，您家赔款应为1600元，已更正。",
            "confirmed_error": True,
            "correction": correction,
        },
    )
    assert answered.status_code == 200, answered.text
    again = (await api.get(f"/api/publicity/notices/{notice['id']}", headers=adjuster)).json()
    assert again["version"] == 2 and again["rows"][own_row]["fields"]["payout_amount"] == "1600.00"
    assert datetime.fromisoformat(again["closes_at"]) > datetime.fromisoformat(notice["closes_at"])
    assert again["open_objections"] == 0
    news = await pushed(farmer, embedded, seen)
    texts = "\n".join(m.text for m in news)
    assert "经核实，您家赔款应为1600元" in texts and "第2版" in texts

    # The archive: both versions as shown, a chain that verifies, a tampered record named
    records = (await api.get(f"/api/publicity/notices/{notice['id']}/archive", headers=adjuster)).json()
    publications = [r for r in records if r["record_kind"] == "publication"]
    assert [r["version"] for r in publications] == [1, 2]
    first_html = await api.get(f"/api/publicity/archive/{publications[0]['id']}/html", headers=adjuster)
    assert "1500.00" in first_html.text  # the old version stays as it was shown
    assert "1600.00" in (await api.get(f"/p/{token_of(notice)}")).text  # the page shows the current one
    assert (await api.get("/api/publicity/archive/verify", headers=adjuster)).json()["ok"] is True
    async with db.session() as session:
        await session.execute(
            text("UPDATE publicity_archive SET payload = :payload WHERE id = :id"),
            {"payload": '{"rows": []}', "id": publications[0]["id"]},
        )
        await session.commit()
    verdict = (await api.get("/api/publicity/archive/verify", headers=adjuster)).json()
    assert verdict["ok"] is False and verdict["first_bad_record_id"] == publications[0]["id"]


async def test_R_PUB_1_the_board_qr_code_and_a_texts_link_open_the_notice_in_chat(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    village: str,  # noqa: F811
) -> None:
    farmer = ChatUser(chat_client, "farmer-qr", first_name="李四")
    headers, policy = await insured_farmer(farmer, api, service_headers, db)
    await paid_claim(db, policy, headers, CARD)
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})
    assert notice["chat_url"].endswith(f"/chat?start=n_{token_of(notice)}")

    scanned = await farmer.say(f"/start n_{token_of(notice)}")
    assert "东城测试村理赔公示" in scanned[-1].text and "👉 您家：" in plain(scanned[-1:])
    assert "提出异议" in scanned[-1].button_texts()[0]

    stranger = ChatUser(chat_client, "passer-by")
    seen = await stranger.say(f"/start n_{token_of(notice)}")
    assert "东城测试村理赔公示" in seen[-1].text and "👉" not in seen[-1].text  # public, nothing marked
    wrong = await stranger.say("/start n_wrongtoken123")
    assert "没有找到这份公示" in wrong[-1].text

    async with db.session() as session:
        chat = (
            await session.exec(select(ChatIdentity).where(ChatIdentity.external_id == farmer.chat_id))
        ).one()
        assert chat.person_id is not None
        link = await create_link(
            session=session, days=30, person_id=chat.person_id, target=f"notice:{notice['id']}"
        )
        await session.commit()
    opened = await farmer.say(f"/start s_{link}")
    assert "东城测试村理赔公示" in opened[-1].text and "👉 您家：" in plain(opened[-1:])


async def test_an_objection_without_a_photo_and_a_refused_one(
    chat_client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    village: str,  # noqa: F811
) -> None:
    farmer = ChatUser(chat_client, "farmer-skip", first_name="李四")
    headers, policy = await insured_farmer(farmer, api, service_headers, db)
    await paid_claim(db, policy, headers, CARD)
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})
    await farmer.say(f"/start n_{token_of(notice)}")
    await farmer.tap("提出异议")
    await farmer.say("面积应为12亩")
    received = await farmer.tap("跳过")
    assert "已收到您的异议" in received[-1].text
    [objection] = (await api.get("/api/publicity/objections", headers=adjuster)).json()
    assert objection["has_photo"] is False
    # another chat's photo, or any document, is not an objection photo
    stranger = {**service_headers, "X-Tianbao-Identity": "webchat:nobody"}
    await api.post(
        "/api/bot/identities",
        headers=service_headers,
        json={"channel": "webchat", "external_id": "nobody", "address": "nobody"},
    )
    refused = await api.post(
        f"/api/bot/publicity/notices/{notice['id']}/objections",
        headers=stranger,
        json={"reason": "冒用照片", "photo_document_id": 1},
    )
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "objection_photo_unknown"


async def test_publicity_menu_without_a_notice_says_so(farmer: ChatUser) -> None:
    await farmer.say("/start")
    replies = await farmer.tap("本村公示")
    assert "目前没有正在公示的名单" in replies[-1].text

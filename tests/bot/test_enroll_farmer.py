"""A farmer enrolls rice or sows in web chat (R-ENR-2..10), with on-site verification when required."""

from __future__ import annotations

import io

import httpx
import pytest
from sqlmodel import select

from backend.db import Database
from backend.enrollment.models import Application, EarTag, Policy
from tests.enroll_helpers import VALID_ID, deliver, resident_id, walk_region
from tests.harness import ChatUser
from tests.images import png

PNG = png()  # a real image: uploads are decoded whole


@pytest.fixture
async def farmer_li(chat_client: httpx.AsyncClient) -> ChatUser:
    return ChatUser(chat_client, "farmer-li", first_name="李四")


async def _start_farmer_flow(user: ChatUser, product: str) -> None:
    await user.say("/start")
    await user.tap("我要投保")
    await user.tap("农户投保")
    await user.tap(product)


async def _answer_identity(user: ChatUser, id_number: str = VALID_ID) -> None:
    await user.tap("普通农户")
    await user.say("李四")
    replies = await user.say("110105194912310021")  # wrong check character: the message names it
    assert "校验码不对" in replies[0].text and "身份证" in replies[-1].text
    replies = await user.say("110105194902300028")  # 30 February
    assert "出生日期" in replies[0].text
    await user.say(id_number)
    await user.share_proved_contact("13812345678")


async def _answer_place_and_bank(user: ChatUser) -> None:
    await walk_region(user, "广东省", "东莞市", "东城街道")  # no villages imported: the township is taken
    replies = await user.tap("跳过")  # no GPS
    assert "收款银行" in replies[-1].text or "耳标" in replies[-1].text


async def _finish(user: ChatUser, *, signer: str = "我本人") -> None:
    await user.tap("农业银行")
    replies = await user.say("6228480012345678901")
    assert "您自己需缴" in replies[-1].text and "中央财政补贴" in replies[-1].text
    await user.tap("继续")
    await user.tap("我已阅读并同意")
    await user.tap(signer)


async def test_r_enr_9_rice_from_menu_to_policy_pdf(farmer_li: ChatUser, embedded, db: Database) -> None:
    await _start_farmer_flow(farmer_li, "水稻")
    await _answer_identity(farmer_li)
    replies = await farmer_li.say("10")
    assert "所在地" in replies[-1].text and "北京市" in replies[-1].button_texts()
    await _answer_place_and_bank(farmer_li)
    await _finish(farmer_li)
    summary = farmer_li.last[-1].text
    assert "1101**********002X" in summary and "6228***********8901" in summary  # masked
    replies = await farmer_li.tap("确认提交")
    assert "去缴费" in " ".join(replies[-1].button_texts())
    async with db.session() as session:
        assert (await session.exec(select(Policy))).all() == []  # R-ENR-9: no policy before payment
    paid = await farmer_li.tap("去缴费")
    # A demo payment never claims cover it does not give (the e-policy says 不产生保险保障 too).
    assert "演示保单" in paid[-1].text and "不产生保险保障" in paid[-1].text and "已生效" not in paid[-1].text
    await deliver(embedded)
    history = await farmer_li.history()
    assert any("【演示保单，不产生保险保障】" in m.text for m in history)
    pdf = next(m for m in history if m.document)
    assert (await farmer_li.client.get((pdf.document or {})["url"])).content.startswith(b"%PDF")
    replies = await farmer_li.say("/start")
    await farmer_li.tap("我的保单")
    detail = await farmer_li.tap("PL")
    assert "6228" in detail[-1].text and "6228480012345678901" not in detail[-1].text


async def test_r_enr_7_rice_over_100_mu_waits_for_verification(
    farmer_li: ChatUser, embedded, db: Database, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await _start_farmer_flow(farmer_li, "水稻")
    await _answer_identity(farmer_li)
    await farmer_li.say("100")  # 100 mu: "100亩以上" includes 100
    await _answer_place_and_bank(farmer_li)
    await _finish(farmer_li)
    replies = await farmer_li.tap("确认提交")
    assert "实地验标" in replies[-1].text and not replies[-1].buttons
    async with db.session() as session:
        application = (await session.exec(select(Application))).one()
    assert application.status == "pending_verification"
    photo = await api.post(
        "/api/documents",
        headers=admin_headers,
        data={"application_id": str(application.id)},
        files={"file": ("field.png", io.BytesIO(PNG), "image/png")},
    )
    assert photo.status_code == 201, photo.text
    verified = await api.post(
        f"/api/applications/{application.id}/verification",
        headers=admin_headers,
        json={
            "record": "实地查看水稻 100 亩，长势正常",
            "land_rights_evidence": "土地承包合同 DG-2026-001",
            "photo_document_ids": [photo.json()["id"]],
        },
    )
    assert verified.status_code == 200 and verified.json()["status"] == "awaiting_payment"
    await deliver(embedded)
    notice = (await farmer_li.history())[-1]
    assert "通过实地验标" in notice.text
    replies = await farmer_li.tap("去缴费", [notice])
    assert "演示保单" in replies[-1].text and "已出单" in replies[-1].text


async def test_sows_need_as_many_distinct_ear_tags_as_heads(farmer_li: ChatUser, db: Database) -> None:
    await _start_farmer_flow(farmer_li, "能繁母猪")
    await _answer_identity(farmer_li, resident_id("44190019800101123"))
    await farmer_li.say("2")
    await walk_region(farmer_li, "广东省", "东莞市", "东城街道")
    replies = await farmer_li.tap("跳过")
    assert "耳标" in replies[-1].text
    replies = await farmer_li.say("123")
    assert "15 位数字" in replies[0].text
    replies = await farmer_li.say("440100000000001")
    assert "1" in replies[0].text and "2" in replies[0].text  # progress: 1 of 2
    replies = await farmer_li.say("440100000000001")
    assert "已经输入过" in replies[0].text
    replies = await farmer_li.say("440100000000002")
    assert "收款银行" in replies[-1].text
    await _finish(farmer_li)
    await farmer_li.tap("确认提交")
    async with db.session() as session:
        tags = sorted((await session.exec(select(EarTag.tag))).all())
    assert tags == ["440100000000001", "440100000000002"]


async def test_r_enr_5_relative_signs_with_name_and_relation(farmer_li: ChatUser, db: Database) -> None:
    await _start_farmer_flow(farmer_li, "水稻")
    await _answer_identity(farmer_li)
    await farmer_li.say("5")
    await _answer_place_and_bank(farmer_li)
    await _finish(farmer_li, signer="直系亲属")
    await farmer_li.say("李小明")
    await farmer_li.tap("子女")
    assert "李小明" in farmer_li.last[-1].text and "子女" in farmer_li.last[-1].text
    await farmer_li.tap("确认提交")
    async with db.session() as session:
        application = (await session.exec(select(Application))).one()
    assert application.signer == {
        "role": "relative",
        "name": "李小明",
        "relation": "child",
        "authorisation_document_id": None,
    }


async def test_r_enr_5_authorised_person_needs_a_photo_of_the_authorisation(
    farmer_li: ChatUser, db: Database
) -> None:
    await _start_farmer_flow(farmer_li, "水稻")
    await _answer_identity(farmer_li)
    await farmer_li.say("5")
    await _answer_place_and_bank(farmer_li)
    await _finish(farmer_li, signer="授权人")
    await farmer_li.say("王代办")
    replies = await farmer_li.say("没有照片")
    assert "请发送一张照片" in replies[0].text
    response = await farmer_li.client.post(
        f"/webchat/api/{farmer_li.chat_id}/photos", files={"file": ("auth.png", io.BytesIO(PNG), "image/png")}
    )
    assert "请核对投保信息" in response.json()["replies"][-1]["text"]
    farmer_li.last = []
    from tests.harness import Reply

    farmer_li.last = [Reply(**r) for r in response.json()["replies"]]
    await farmer_li.tap("确认提交")
    async with db.session() as session:
        application = (await session.exec(select(Application))).one()
    assert application.signer["role"] == "authorised" and application.signer["authorisation_document_id"]


async def test_conversation_resumes_after_coming_back(farmer_li: ChatUser) -> None:
    await _start_farmer_flow(farmer_li, "水稻")
    await farmer_li.tap("普通农户")
    await farmer_li.say("李四")
    replies = await farmer_li.say("/start")  # a day later, the farmer opens the chat again
    assert "没填完" in replies[-1].text
    replies = await farmer_li.tap("继续填写")
    assert "身份证" in replies[-1].text  # exactly where it stopped
    replies = await farmer_li.tap("上一步")
    assert "姓名" in replies[-1].text


async def test_r_enr_11_endorsement_asked_in_chat_and_pdf_again(
    farmer_li: ChatUser, embedded, api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await _start_farmer_flow(farmer_li, "水稻")
    await _answer_identity(farmer_li)
    await farmer_li.say("10")
    await _answer_place_and_bank(farmer_li)
    await _finish(farmer_li)
    await farmer_li.tap("确认提交")
    await farmer_li.tap("去缴费")
    await deliver(embedded)
    await farmer_li.say("/start")
    await farmer_li.tap("我的保单")
    detail = (await farmer_li.tap("PL"))[-1].text
    # the unit and the crop, and both the total premium and the farmer's own share of it
    assert "数量：10 亩" in detail and "险种：水稻" in detail
    assert "总保费：¥" in detail and "您自缴：¥" in detail
    replies = await farmer_li.tap("电子保单 PDF")
    assert replies[-1].document and replies[-1].document["name"].endswith(".pdf")
    await farmer_li.tap("PL", (await farmer_li.say("/start")) and await farmer_li.tap("我的保单"))
    await farmer_li.tap("申请批改")
    replies = await farmer_li.tap("投保数量")
    assert "新的投保数量" in replies[-1].text and "现在是 10 亩" in replies[-1].text
    replies = await farmer_li.say("12亩")
    assert "增加投保数量需要先补缴保费" in replies[0].text  # refused at the step, not after 确认提交
    assert "现在是 10 亩" in replies[-1].text
    await farmer_li.tap("上一步")
    await farmer_li.tap("联系电话")
    replies = await farmer_li.say("12345")
    assert "不是中国大陆手机号" in replies[0].text
    replies = await farmer_li.say("13900001111")
    assert "139" in replies[-1].text and "请确认批改申请" in replies[-1].text
    replies = await farmer_li.tap("确认提交")
    assert "已提交" in replies[-1].text and "139****1111" in replies[-1].text
    pending = (await api.get("/api/endorsements", headers=admin_headers)).json()
    assert len(pending) == 1
    decided = await api.post(
        f"/api/endorsements/{pending[0]['id']}/approve", headers=admin_headers, json={"note": "核实无误"}
    )
    assert decided.status_code == 200
    await deliver(embedded)
    pushed = (await farmer_li.history())[-1]
    assert "已通过" in pushed.text and pushed.document is not None


async def test_r_enr_5_the_chat_offers_i_confirm_myself_only_for_the_accounts_own_person(
    farmer_li: ChatUser, db: Database
) -> None:
    await _start_farmer_flow(farmer_li, "水稻")
    await _answer_identity(farmer_li)
    await farmer_li.say("5")
    await _answer_place_and_bank(farmer_li)
    await _finish(farmer_li)  # the first insured, with this account's own phone: 李四 himself
    await farmer_li.tap("确认提交")
    # Now 李四 enrolls his father: "I confirm myself" is not offered, a relative confirms.
    await farmer_li.say("/start")
    await farmer_li.tap("我要投保")
    await farmer_li.tap("农户投保")
    await farmer_li.tap("玉米")
    await farmer_li.tap("普通农户")
    await farmer_li.say("李老汉")
    await farmer_li.say(resident_id("44190019800101123"))
    await farmer_li.share_proved_contact("13812345678")
    await farmer_li.say("5")
    await _answer_place_and_bank(farmer_li)
    await farmer_li.tap("农业银行")
    await farmer_li.say("6228480012345678901")
    await farmer_li.tap("继续")
    replies = await farmer_li.tap("我已阅读并同意")
    offered = replies[-1].button_texts()
    assert "直系亲属代为确认" in offered and "我本人确认" not in offered
    replies = await farmer_li.say("我本人确认")  # typed rather than tapped: still not accepted
    assert "按钮" in replies[0].text

"""Reporting a loss and following the claim in web chat (R-CLM-1, -2, -4, -6, -7, -14; R-LIA-6)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta, timezone

import httpx
import pytest
from sqlmodel import select

from backend.alerts.models import StaffAlert
from backend.claims.models import Claim, ClaimAttachment
from backend.db import Database, utcnow
from backend.enrollment.models import Policy
from messages import local_time, time_zone
from tests.backend.test_claims_reporting import cover_began
from tests.enroll_helpers import insured_in_chat
from tests.harness import ChatUser, Reply
from tests.images import png

BEIJING = timezone(timedelta(hours=8))  # the users' zone of the default settings
PNG = png()  # a real image: uploads are decoded whole


@pytest.fixture
async def grower(chat_client: httpx.AsyncClient) -> ChatUser:
    return ChatUser(chat_client, "grower-1", first_name="李四")


async def send_photo(user: ChatUser) -> list[Reply]:
    response = await user.client.post(
        f"/webchat/api/{user.chat_id}/photos", files={"file": ("loss.png", io.BytesIO(PNG), "image/png")}
    )
    assert response.status_code == 200, response.text
    user.last = [Reply(**r) for r in response.json()["replies"]]
    return user.last


async def _report_rice_loss(grower: ChatUser, day_button: str = "今天") -> list[Reply]:
    await grower.say("/start")
    await grower.tap("我要报案")
    replies = await grower.tap("暴雨")  # the only policy was chosen automatically
    assert "哪一天" in replies[-1].text
    await grower.tap(day_button)
    await grower.tap("00:00")
    await grower.tap("刚刚结束")
    replies = await grower.say("12")
    assert "不能超过投保数量（10 亩）" in replies[0].text  # 10 mu insured, said with its unit
    await grower.say("3")
    await grower.say("3500")
    await grower.tap("跳过")
    await grower.say("村东头大塘边")
    await send_photo(grower)
    await grower.tap("照片发完了")
    replies = await grower.tap("是我本人")
    assert "请核对报案信息" in replies[-1].text and "村东头大塘边" in replies[-1].text
    return await grower.tap("确认提交")


async def test_r_clm_4_report_a_crop_loss_with_all_fields(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await insured_in_chat(grower, api, service_headers)
    await cover_began(db, timedelta(days=5))
    replies = await _report_rice_loss(grower)
    text = replies[-1].text
    assert "报案成功" in text and "保护好现场" in text and "查勘员会在" in text
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
        photos = (await session.exec(select(ClaimAttachment))).all()
    assert claim.cause == "heavy_rain" and claim.lost_quantity == "3" and claim.estimated_amount_fen == 350000
    assert (
        claim.place_name == "村东头大塘边"
        and claim.reporter_name == "李四"
        and claim.reporter_phone == "13812345678"
    )
    assert claim.survey_due_at is not None and claim.survey_due_at - claim.reported_at == timedelta(
        hours=24
    )  # R-CLM-6
    assert len(photos) == 1 and not claim.late
    await grower.say("/start")
    await grower.tap("我的理赔")
    detail = await grower.tap(claim.number)
    assert "已报案" in detail[-1].text and "等待" in detail[-1].text


async def test_r_clm_1_report_after_24_hours_is_accepted_and_marked_late(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await insured_in_chat(grower, api, service_headers)
    await cover_began(db, timedelta(days=5))
    replies = await _report_rice_loss(grower, day_button="前天")  # 00:00 two days ago: over 24 hours
    assert "24 小时内报案" in replies[-1].text
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
    assert claim.late and claim.delay_minutes > 0


async def test_r_clm_7_livestock_death_needs_photo_and_disposal_proof(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await insured_in_chat(
        grower,
        api,
        service_headers,
        product="sow",
        quantity="2",
        ear_tags=["440100000000011", "440100000000012"],
    )
    await cover_began(db, timedelta(days=5))
    await grower.say("/start")
    await grower.tap("我要报案")
    await grower.tap("疫病")
    await grower.tap("今天")
    await grower.tap("00:00")
    await grower.tap("刚刚结束")
    await grower.say("1")
    await grower.say("1500")
    await grower.tap("跳过")
    await grower.say("猪场")
    replies = await grower.tap("照片发完了")
    assert "至少需要一张照片" in replies[0].text
    await send_photo(grower)
    replies = await grower.tap("照片发完了")
    assert "无害化处理" in replies[-1].text
    await grower.tap("以后再补")
    await grower.tap("是我本人")
    replies = await grower.tap("确认提交")
    assert "没有证明无法赔付" in replies[-1].text
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
    assert claim.disposal_required and claim.disposal_proven_at is None
    await grower.say("/start")
    await grower.tap("我的理赔")
    detail = await grower.tap(claim.number)
    assert "无害化处理" in detail[-1].text
    await grower.tap("发送无害化处理证明")
    await send_photo(grower)
    replies = await grower.tap("照片发完了")
    assert "已收到" in replies[-1].text
    async with db.session() as session:
        sent = (await session.exec(select(Claim))).one()
    # The upload is evidence only: an adjuster confirms it before it counts as proof.
    assert sent.disposal_received_at is not None and sent.disposal_proven_at is None
    await grower.say("/start")
    await grower.tap("我的理赔")
    detail = await grower.tap(claim.number)
    assert "工作人员核实后会通知您" in detail[-1].text


async def test_r_clm_2_weather_index_policy_needs_no_report(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await insured_in_chat(grower, api, service_headers, product="lychee", quantity="20")
    await grower.say("/start")
    replies = await grower.tap("我要报案")
    assert "不需要报案" in replies[-1].text or "无需报案" in replies[-1].text
    async with db.session() as session:
        assert (await session.exec(select(Claim))).all() == []


async def test_r_lia_6_enterprise_accident_alerts_staff_at_once(
    chat_client: httpx.AsyncClient, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    from tests.backend.test_enrollment_api import enterprise_application, industry_code, survey_answers

    officer = ChatUser(chat_client, "officer-2", first_name="张安全")
    await officer.say("/start")
    await officer.share_proved_contact("13912345678")
    headers = {**service_headers, "X-Tianbao-Identity": f"webchat:{officer.chat_id}"}
    body = enterprise_application(await survey_answers(api, service_headers))
    body["enterprise"]["industry_code"] = await industry_code(api, service_headers)
    application = (await api.post("/api/bot/applications", headers=headers, json=body)).json()
    await api.post(
        f"/api/bot/applications/{application['id']}/payments", headers=headers, json={"provider": "demo"}
    )
    await cover_began(db, timedelta(days=5))
    await officer.say("/start")
    replies = await officer.tap("我要报案")
    assert "事故发生在哪一天" in replies[-1].text  # an accident, not a crop loss
    replies = await officer.tap("今天")
    assert "几点发生" in replies[-1].text
    await officer.tap("00:00")
    replies = await officer.say("好几个")
    assert replies[0].text == "请输入 0 到 100000 之间的整数。"  # the real range: 0 is a fine answer
    await officer.say("2")
    replies = await officer.say("没有")  # nobody died: "没有" is 0, not a refusal
    assert "事故经过" in replies[-1].text
    await officer.say("车间冲压机伤手，已送医院")
    await officer.tap("跳过")
    replies = await officer.say("二号车间")
    assert "事故现场照片" in replies[-1].text and "损失" not in replies[-1].text
    await officer.tap("跳过（以后再补）")
    await _the_enterprise_reporter_is_a_person_with_a_phone(officer)
    replies = await officer.tap("确认提交")
    assert "报案成功" in replies[-1].text and "预付" in replies[-1].text
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
        alert = (await session.exec(select(StaffAlert))).one()
    assert claim.kind == "liability" and claim.injured == 2 and claim.dead == 0
    assert alert.kind == "liability_accident" and alert.claim_id == claim.id
    assert utcnow() - alert.created_at < timedelta(minutes=1)


async def _the_enterprise_reporter_is_a_person_with_a_phone(officer: ChatUser) -> None:
    """Called from the accident report at its reporter step: a company is not "本人"."""
    replies = officer.last
    assert "您本人的姓名" in replies[-1].text and "本人（" not in " ".join(replies[-1].button_texts())
    replies = await officer.say("王五")
    assert "联系电话" in replies[0].text
    replies = await officer.share_proved_contact("13912345678")
    summary = replies[-1].text
    assert "报案人：王五（139****5678），投保企业：" in summary and "发生时间" in summary


async def test_r_clm_1_a_loss_outside_the_cover_is_refused_at_the_time_step_and_the_form_kept(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await insured_in_chat(grower, api, service_headers)
    yesterday_noon = datetime.combine(
        datetime.now(BEIJING).date() - timedelta(days=1), time(12), BEIJING
    ).astimezone(UTC)
    await cover_began(db, utcnow() - yesterday_noon)  # the cover began yesterday at noon
    async with db.session() as session:
        policy = (await session.exec(select(Policy))).one()
    starts, ends = local_time(policy.starts_at), local_time(policy.ends_at)
    await grower.say("/start")
    await grower.tap("我要报案")
    await grower.tap("暴雨")
    replies = await grower.tap("前天")  # a day with no covered hour
    assert "不在保险期间内" in replies[0].text and starts in replies[0].text and ends in replies[0].text
    assert "哪一天" in replies[-1].text  # the day is asked again
    await grower.tap("昨天")
    replies = await grower.tap("08:00")  # yesterday, before the cover began
    assert "不在保险期间内" in replies[0].text and starts in replies[0].text
    await grower.tap("13:00")  # the same day is kept: only the hour is asked again
    await grower.tap("刚刚结束")
    await grower.say("3")
    await grower.say("3500")
    await grower.tap("跳过")
    await grower.say("村东头大塘边")
    await send_photo(grower)
    await grower.tap("照片发完了")
    replies = await grower.tap("是我本人")
    summary = replies[-1].text
    assert "原因：暴雨" in summary  # the cause given before the refusals is kept
    await grower.tap("确认提交")
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
    assert local_time(claim.loss_started_at).endswith("13:00") and claim.cause == "heavy_rain"


async def test_r_clm_4_optional_photos_are_skipped_only_explicitly_and_added_later_in_my_claims(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    """Crop photos are optional (only livestock needs one, R-CLM-7): "done" with none sent is refused
    with the way out; "跳过（以后再补）" skips; 我的理赔 then takes the photos."""
    await insured_in_chat(grower, api, service_headers)
    await cover_began(db, timedelta(days=5))
    await grower.say("/start")
    await grower.tap("我要报案")
    await grower.tap("暴雨")
    await grower.tap("今天")
    await grower.tap("00:00")
    await grower.tap("刚刚结束")
    await grower.say("3")
    await grower.say("3500")
    await grower.tap("跳过")
    replies = await grower.say("村东头大塘边")
    assert "跳过（以后再补）" in replies[-1].button_texts() and "我的理赔" in replies[-1].text
    replies = await grower.tap("照片发完了")
    assert "还没有发送照片" in replies[0].text and "我的理赔" in replies[0].text
    assert "跳过（以后再补）" in replies[-1].button_texts()  # asked again, nothing lost
    replies = await grower.tap("跳过（以后再补）")
    assert "报案人" in replies[-1].text
    await grower.tap("是我本人")
    replies = await grower.tap("确认提交")
    assert "报案成功" in replies[-1].text
    async with db.session() as session:
        claim = (await session.exec(select(Claim))).one()
    await grower.say("/start")
    await grower.tap("我的理赔")
    await grower.tap(claim.number)
    await grower.tap("补充照片")
    await send_photo(grower)
    replies = await grower.tap("照片发完了")
    assert "已收到" in replies[-1].text
    async with db.session() as session:
        attached = (await session.exec(select(ClaimAttachment))).all()
    assert [a.purpose for a in attached] == ["scene"]


async def test_r_clm_4_today_offers_only_the_hours_that_have_begun(
    grower: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    await insured_in_chat(grower, api, service_headers)
    await cover_began(db, timedelta(days=5))
    await grower.say("报案")
    await grower.tap("暴雨")
    before = datetime.now(time_zone()).hour
    replies = await grower.tap("今天")
    after = datetime.now(time_zone()).hour
    offered = {b for b in replies[-1].button_texts() if b.endswith(":00")}
    assert f"{before:02d}:00" in offered and "00:00" in offered
    assert not any(f"{h:02d}:00" in offered for h in range(after + 1, 24))  # no hour still to come
    replies = await grower.tap("上一步")
    replies = await grower.tap("昨天")
    assert "23:00" in replies[-1].button_texts()  # a past day offers every hour

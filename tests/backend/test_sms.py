"""SMS as an outbox channel (issue 12): approved templates within the provider's limits, one-time codes
per number, quiet hours for bulk, TD stops bulk only, receipts move a text to delivered or failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from backend.claims import timeline
from backend.claims.models import Claim
from backend.db import Database, utcnow
from backend.outbox import service as outbox
from backend.outbox.models import MessageKind, OutboxMessage, OutboxStatus
from backend.outbox.schemas import DeliveryResult, Outcome
from backend.outbox.sms import service as sms
from backend.outbox.sms.models import SmsLink
from backend.outbox.sms.service import SmsError
from backend.people.directory import IdentityDirectory
from backend.people.models import ChatIdentity, Person
from backend.settings import Settings, unmapped_sms_templates
from messages import LOCALES, labels_for, template_keys
from messages.sms import VARIABLE_LIMITS, SmsTemplateError, parts, sms_template, sms_template_keys
from tests.backend.test_claims_workflow import make_claim, paid_policy
from tests.backend.test_enrollment_api import identity

PHONE = "13812345678"
SITE = "https://tianbao.example.com.cn"  # a realistic public address: it counts towards the length
# A template's text with the longest values its variables may take, and the signature, fits in:
MAX_PARTS = {"otp": 1, "notice": 2, "bulk": 2, "warning": 3}


def longest_values(kind_of: dict[str, str]) -> dict[str, str]:
    return {name: ("9" if kind == "code" else "国") * VARIABLE_LIMITS[kind] for name, kind in kind_of.items()}


def test_both_languages_have_the_same_sms_templates_with_the_same_variables() -> None:
    zh, en = (sms_template_keys(locale) for locale in LOCALES)
    assert zh == en and zh
    for key in zh:
        assert sms_template(key, "zh-CN").variables == sms_template(key, "en").variables, key
        assert sms_template(key, "zh-CN").kind == sms_template(key, "en").kind, key


@pytest.mark.parametrize("locale", LOCALES)
def test_every_sms_fits_the_providers_limits_at_its_longest(locale: str, settings: Settings) -> None:
    signature = (
        f"【{settings.sms_signature_sample}】" if hasattr(settings, "sms_signature_sample") else "【田保】"
    )
    for key in sms_template_keys(locale):
        template = sms_template(key, locale)
        values = longest_values(template.variables)
        if "code" in values:
            values["code"] = "999999"
        text = template.render(values, site=SITE)
        assert len(text) + len(signature) <= 500, key  # the provider's cap on one text
        assert parts(text, signature) <= MAX_PARTS[template.kind], (key, len(text), text)
        assert "[" not in template.text and "]" not in template.text, key  # brackets read as a signature
        assert template.provider_text(SITE).count("{") == len(template.param_names), key


def test_a_value_past_its_kinds_limit_is_refused_before_the_provider_sees_it() -> None:
    otp = sms_template("otp", "zh-CN")
    assert otp.params({"code": "123456"}) == ["123456"]
    for bad in ("12345a", "1234567", "123", ""):
        with pytest.raises(SmsTemplateError):
            otp.params({"code": bad})
    update = sms_template("claim_update", "zh-CN")
    with pytest.raises(SmsTemplateError):
        update.params({"claim": "CL2026120200000001", "status": "赔" * 13, "token": "abc"})
    with pytest.raises(SmsTemplateError):
        update.params({"claim": "CL2026120200000001", "token": "abc"})  # one missing


def test_the_provider_text_numbers_the_variables_in_order() -> None:
    update = sms_template("claim_update", "zh-CN")
    assert update.param_names == ("claim", "status", "token")
    assert update.provider_text(SITE) == f"您的理赔{{1}}有新进展：{{2}}。查看详情：{SITE}/s/{{3}}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_claim_notice_has_a_short_sms_status(locale: str) -> None:
    labels = labels_for("sms", locale)
    notices = [key.split("/")[1] for key, _ in template_keys(locale) if key.startswith("claims_notice/")]
    insured = [n for n in notices if not n.startswith("staff_alert") and n != "view_button"]
    for name in insured:
        status = labels[f"claim_{name}"]
        assert 0 < len(status) <= VARIABLE_LIMITS["text"], (name, status)


def test_a_template_without_a_provider_id_is_named() -> None:
    every = {f"{locale}/{key}": "100" for locale in LOCALES for key in sms_template_keys(locale)}
    assert unmapped_sms_templates(every) == []
    del every["en/otp"]
    assert unmapped_sms_templates({**every, "zh-CN/claim_update": " "}) == ["zh-CN/claim_update", "en/otp"]
    tencent: dict[str, Any] = {
        "sms_provider": "tencent",
        "tencent_sms_secret_id": "id",
        "tencent_sms_secret_key": "key",
        "tencent_sms_app_id": "1400000000",
        "sms_template_ids": every,
    }
    with pytest.raises(ValueError, match="en/otp"):
        Settings(**tencent)
    assert Settings(**{**tencent, "sms_template_ids": {**every, "en/otp": "7"}}).sms_provider == "tencent"


# --- the outbox side -----------------------------------------------------------------------------------


async def _queue(db: Database, settings: Settings, key: str, dedupe: str, **values: str) -> None:
    async with db.session() as session:
        await sms.enqueue_sms(
            session=session,
            phone=PHONE,
            key=key,
            locale="zh-CN",
            values=values,
            dedupe_key=dedupe,
        )
        await session.commit()


async def _rows(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        return list((await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


async def test_an_sms_is_queued_with_its_template_and_the_text_as_read(
    db: Database, settings: Settings
) -> None:
    await _queue(db, settings, "otp", "code-1", code="482913")
    [row] = await _rows(db)
    assert (row.channel, row.address, row.kind) == ("sms", "+8613812345678", MessageKind.OTP.value)
    assert row.template == {"key": "otp", "locale": "zh-CN", "params": ["482913"]}
    assert "482913" in row.text and row.parse_mode is None


async def _age(db: Database, dedupe: str, age: timedelta) -> None:
    async with db.session() as session:
        row = (await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe))).one()
        row.created_at = utcnow() - age
        await session.commit()


async def _refusal(db: Database, settings: Settings) -> str | None:
    async with db.session() as session:
        try:
            await sms.check_code_allowance(session=session, settings=settings, phone=PHONE)
        except SmsError as refused:
            return refused.code
    return None


async def test_one_time_codes_are_limited_per_number(db: Database, settings: Settings) -> None:
    limits = settings.model_copy(
        update={"sms_codes_per_minute": 1, "sms_codes_per_hour": 2, "sms_codes_per_day": 3}
    )
    assert await _refusal(db, limits) is None
    await _queue(db, limits, "otp", "code-1", code="111111")
    assert await _refusal(db, limits) == "sms_code_too_often"
    async with db.session() as session:  # another number is not limited by this one's codes
        await sms.check_code_allowance(session=session, settings=limits, phone="13900001111")
    await _age(db, "code-1", timedelta(minutes=2))
    assert await _refusal(db, limits) is None
    await _queue(db, limits, "otp", "code-2", code="222222")
    await _age(db, "code-2", timedelta(minutes=2))
    assert await _refusal(db, limits) == "sms_code_hourly"
    await _age(db, "code-1", timedelta(hours=2))
    await _age(db, "code-2", timedelta(hours=2))
    await _queue(db, limits, "otp", "code-3", code="333333")
    await _age(db, "code-3", timedelta(hours=2))
    assert await _refusal(db, limits) == "sms_code_daily"
    # A notice to the number is not a code.
    await _queue(
        db, limits, "claim_update", "claim-1", claim="CL20261202001", status="赔款已支付", token="t1"
    )
    await _age(db, "code-3", timedelta(days=2))
    assert await _refusal(db, limits) is None


@pytest.mark.parametrize(
    ("beijing", "quiet"),
    [("20:59", False), ("21:00", True), ("23:30", True), ("00:00", True), ("07:59", True), ("08:00", False)],
)
def test_quiet_hours_are_local_and_wrap_midnight(settings: Settings, beijing: str, quiet: bool) -> None:
    hour, minute = (int(part) for part in beijing.split(":"))
    at = datetime(2026, 12, 2, (hour - 8) % 24, minute, tzinfo=UTC)  # Beijing is UTC+8
    assert sms.in_quiet_hours(settings, at) is quiet
    assert sms.held_kinds(settings, at) == (["bulk"] if quiet else [])


async def test_bulk_waits_out_quiet_hours_and_codes_do_not(db: Database, settings: Settings) -> None:
    await _queue(db, settings, "message", "bulk-1", token="abc123")
    await _queue(db, settings, "otp", "code-1", code="123456")
    async with db.session() as session:
        claimed = await outbox.claim_batch(
            session=session, worker_id="w", limit=10, lease_seconds=60, held_sms_kinds=["bulk"]
        )
    assert [row.kind for row in claimed] == ["otp"]
    async with db.session() as session:
        morning = await outbox.claim_batch(session=session, worker_id="w", limit=10, lease_seconds=60)
    assert [row.kind for row in morning] == ["bulk"]


async def test_td_stops_bulk_but_never_codes_or_notices(db: Database, settings: Settings) -> None:
    await _queue(db, settings, "message", "bulk-1", token="abc123")
    async with db.session() as session:
        assert await sms.stop_bulk(session=session, phone=PHONE, source="reply") == 1
    await _queue(db, settings, "message", "bulk-2", token="def456")  # queued after the stop
    await _queue(db, settings, "otp", "code-1", code="123456")
    await _queue(
        db, settings, "claim_update", "claim-1", claim="CL20261202001", status="赔款已支付", token="t1"
    )
    status = {row.dedupe_key: row.status for row in await _rows(db)}
    assert status == {
        "bulk-1": OutboxStatus.STOPPED.value,
        "bulk-2": OutboxStatus.STOPPED.value,
        "code-1": OutboxStatus.QUEUED.value,
        "claim-1": OutboxStatus.QUEUED.value,
    }


async def test_receipts_move_a_sent_text_to_delivered_or_failed_with_the_reason(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    db: Database,
    settings: Settings,
    directory: IdentityDirectory,
) -> None:
    for n in (1, 2):
        await _queue(db, settings, "otp", f"code-{n}", code=f"{n}23456")
    async with db.session() as session:
        claimed = await outbox.claim_batch(session=session, worker_id="w", limit=10, lease_seconds=60)
        results = [
            DeliveryResult(
                id=row.id or 0, outcome=Outcome.SENT, external_message_id=f"serial-{row.dedupe_key}"
            )
            for row in claimed
        ]
        await outbox.record_results(
            session=session, directory=directory, worker_id="w", results=results, max_attempts=6
        )
    body: dict[str, Any] = {
        "receipts": [
            {"external_message_id": "serial-code-1", "delivered": True},
            {"external_message_id": "serial-code-2", "delivered": False, "reason": "DELIVRD:MK:0001 关机"},
            {"external_message_id": "serial-unknown", "delivered": True},
        ]
    }
    answer = await api.post("/api/outbox/sms/receipts", json=body, headers=service_headers)
    assert answer.status_code == 200 and answer.json() == {"updated": 2}
    again = await api.post("/api/outbox/sms/receipts", json=body, headers=service_headers)
    assert again.json() == {"updated": 0}  # a repeated callback changes nothing
    rows = {row.dedupe_key: row for row in await _rows(db)}
    assert rows["code-1"].status == "delivered" and rows["code-1"].delivered_at is not None
    assert rows["code-2"].status == "failed" and rows["code-2"].last_error == "DELIVRD:MK:0001 关机"
    assert rows["code-2"].next_attempt_at is None
    refused = await api.post("/api/outbox/sms/receipts", json=body)
    assert refused.status_code == 401


async def test_a_stop_report_through_the_api(api: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    answer = await api.post(
        "/api/outbox/sms/stops", json={"phone": "+86 138 1234 5678"}, headers=service_headers
    )
    assert answer.status_code == 200 and answer.json()["phone"] == "+8613812345678"
    bad = await api.post("/api/outbox/sms/stops", json={"phone": "12345"}, headers=service_headers)
    assert bad.status_code == 422


# --- an insured whom no chat reaches is texted, with a link checked when opened -------------------------


async def test_a_claim_notice_goes_by_text_when_no_chat_reaches_the_insured(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    headers, policy = await paid_policy(api, service_headers, "sms-farmer", phone="13812345678")
    claim_id = await make_claim(db, policy, headers)
    async with db.session() as session:
        for chat in (await session.exec(select(ChatIdentity))).all():
            chat.phone_verified_at = utcnow()  # the farmer's chat proved the number
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        claim.identity_id = None  # reported for the farmer by the village agent
        await timeline.tell_insured(
            session, claim, "adjuster_assigned", dedupe="assigned", adjuster_name="李查勘"
        )
        await session.commit()
    # The farmer's own chat reaches them: the notice goes there, not by text.
    assert {row.channel for row in await _rows(db) if row.dedupe_key.startswith(f"claim-{claim_id}-")} == {
        "telegram"
    }
    async with db.session() as session:
        for chat in (await session.exec(select(ChatIdentity))).all():
            chat.stopped_at = utcnow()  # the farmer blocked the chat
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        await timeline.tell_insured(session, claim, "survey_scheduled", dedupe="survey")
        await session.commit()
    [text] = [row for row in await _rows(db) if row.channel == "sms"]
    assert text.address == "+8613812345678" and text.kind == "notice"
    assert text.template is not None and text.template["key"] == "claim_update"
    number, status, token = text.template["params"]
    assert status == "查勘已预约" and number.startswith("CL") and len(token) == sms.LINK_LENGTH
    assert f"/s/{token}" in text.text

    async with db.session() as session:
        person_id = (await session.exec(select(Person).where(Person.phone == PHONE))).one().id
        opened = await sms.open_link(session=session, token=token, person_id=person_id)
        assert opened == sms.LinkOpening("ok", target=f"claim:{claim_id}")
        other = await sms.open_link(session=session, token=token, person_id=None)
        assert other.status == "other_person" and other.phone_masked == "138****5678"
        assert (await sms.open_link(session=session, token="x" * 10, person_id=person_id)).status == "unknown"
        link = await session.get(SmsLink, token)
        assert link is not None and link.opened_at is not None
        link.expires_at = utcnow() - timedelta(seconds=1)
        await session.commit()
        assert (await sms.open_link(session=session, token=token, person_id=person_id)).status == "expired"


async def test_the_bot_opens_a_link_only_for_its_own_person(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    headers, policy = await paid_policy(api, service_headers, "link-owner", phone="13812345678")
    async with db.session() as session:
        person_id = (await session.exec(select(Person).where(Person.phone == PHONE))).one().id
        assert person_id is not None
        token = await sms.create_link(
            session=session, days=30, person_id=person_id, target=f"policy:{policy['id']}"
        )
        await session.commit()
    mine = await api.post("/api/bot/links/open", json={"token": token}, headers=headers)
    assert mine.status_code == 200 and mine.json()["target"] == f"policy:{policy['id']}"
    stranger = await identity(api, service_headers, "link-stranger", phone=None)
    theirs = await api.post("/api/bot/links/open", json={"token": token}, headers=stranger)
    assert theirs.json() == {"status": "other_person", "target": None, "phone_masked": "138****5678"}
    assert (await api.post("/api/bot/links/open", json={"token": token})).status_code == 401

"""Every template renders in both locales with its variables; labels exist in both."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from jinja2 import UndefinedError

from backend.people.schemas import DeviceOut, IdentityOut
from messages import (
    DEFAULT_TIMEZONE,
    LOCALES,
    MESSAGES_DIR,
    Contacts,
    MessageNotFound,
    configure,
    label,
    labels_for,
    local_date,
    local_day_start,
    local_time,
    normalize_locale,
    render,
    template_keys,
    to_local,
)

IDENTITY = IdentityOut(
    id=1,
    channel="webchat",
    external_id="x",
    locale="zh-CN",
    first_name="王大明",
    phone_masked="138****5678",
    phone_verified=True,
    person_id=1,
    menu=["help"],
)

# Sample context per template: every variable a template uses must be given here, so a template that
# starts needing a new variable fails this test until the sample (and its callers) provide it.
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
MONEY = {"fen": 12345, "yuan": "123.45"}
AGRI_QUOTE = {
    "sum_insured": MONEY,
    "premium": MONEY,
    "payable": MONEY,
    "shares": {k: MONEY for k in ("central", "provincial", "county", "farmer")},
}
LIABILITY_QUOTE = {
    "base_rate": "0.0015",
    "floating_factor": "0.9",
    "premium_per_person": MONEY,
    "premium": MONEY,
    "limits": {"death_disability_per_person": MONEY, "medical_per_person": MONEY},
}
POLICY = SimpleNamespace(
    number="PL202611220000001",
    starts_at=NOW,
    ends_at=NOW,
    insured_name="李四",
    quantity="10",
    sum_insured_fen=1000000,
    premium_fen=60000,
    status="active",
    late_entry=False,
    terms={"bank_account": "6228****8901", "bank_name": "农业银行", "phone": "138****5678"},
)
APPLICATION = SimpleNamespace(number="AP202611220000001", premium={"payable_fen": 12000})
STARTED = SimpleNamespace(demo=True, amount_fen=12000, title="AP202611220000001")
ENDORSEMENT = SimpleNamespace(
    number="EN1",
    status="approved",
    field="phone",
    decision_note="ok",
    old_value_masked="138****5678",
    new_value_masked="139****5678",
)
PRODUCT = {"disclosure_version": "2026.1", "kind": "agricultural"}
FARMER_ANSWERS = {
    "name": "李四",
    "phone": "13812345678",
    "quantity": "10",
    "bank_name": "农业银行",
    "location": {"name": "广东省 东莞市"},
}
ENTERPRISE_ANSWERS = {
    "company_name": "某公司",
    "credit_code": "91350100M000100Y43",
    "legal_representative": "李建国",
    "phone": "13912345678",
    "address_detail": "东城大道 88 号",
    "employees": 120,
}


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


CLAIM = SimpleNamespace(
    number="CL202611220000001",
    insured_name="李四",
    cause="heavy_rain",
    loss_started_at=NOW,
    reported_at=NOW,
    place_name="大塘边",
    injured=1,
    dead=0,
    description="冲压机伤手",
    late=True,
    delay_minutes=4 * 24 * 60 + 600,
    delay_days=4,
    delay_hours=10,
    delay_rest_minutes=0,
    kind="individual",
    survey_due_at=NOW,
    joint_survey=True,
    disposal_required=True,
    disposal_proven=False,
    status="assessed",
    assessed_amount_fen=350000,
    paid_amount_fen=None,
    paid_at=None,
    denial_reasons=[],
    documents_requested=["身份证复印件"],
    next_action="wait",
    agreed_amount_fen=350000,
    timeline=[SimpleNamespace(at=NOW, kind="reported", note="")],
    green_channel=False,
    documents_needed=["loss_photos", "id_card", "bank_card", "loss_list", "village_certificate"],
    remote_methods=["video"],
    remote_method=None,
    prepayment_available=False,
)

DEVICES = [
    DeviceOut(
        id=1,
        channel="webchat",
        masked_id="****ab12",
        last_seen_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        this=True,
    ),
    DeviceOut(
        id=2,
        channel="telegram",
        masked_id="****6789",
        last_seen_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        this=False,
    ),
]
SAMPLES: dict[str, dict[str, Any]] = {
    "pages/dev_sms": {
        "texts": [{"at": "2026-12-02T10:00:00", "phone": "+86138****5678", "template_id": "1", "text": "x"}],
        "sign_name": "田保",
    },
    "claims/alert_accident_title": {"claim": CLAIM},
    "claims/alert_accident_body": {"claim": CLAIM},
    "claims_notice/reported_for_you": {"claim": CLAIM},
    "claims/summary": {
        "a": {"cause": "heavy_rain", "lost_quantity": "3", "estimated_amount": "3500"},
        "policy_number": "PL1",
        "product_name": "水稻",
        "unit": "亩",
        "started": NOW,
        "liability": False,
        "photos": 1,
        "disposal": None,
        "reporter": "李四",
        "reporter_phone": "",
        "insured_name": "李四",
    },
    "claims/reported": {"claim": CLAIM},
    "claims/accident_notice": {
        "claim": CLAIM,
        "policy_number": "PL2026120100001",
        "recipient": "safety_authority",
    },
    "claims/list": {"count": 2},
    "claims/detail": {"claim": CLAIM},
    "claims/evidence_received": {"claim": CLAIM},
    "claims/answered": {"claim": CLAIM},
    "claims/action_gone": {"claim": CLAIM},
    "claims/photo_received": {"count": 2},
    "enroll/quote_agricultural": {
        "quote": AGRI_QUOTE,
        "product_name": "水稻",
        "quantity": "10",
        "unit": "亩",
        "yuan": _yuan,
        "sample": True,
    },
    "enroll/quote_liability": {
        "quote": LIABILITY_QUOTE,
        "product_name": "安责险",
        "employees": 120,
        "yuan": _yuan,
        "sample": True,
        "factor_reason": "无事故",
    },
    "enroll/disclosure_agricultural": {"product": PRODUCT, "product_name": "水稻"},
    "enroll/disclosure_liability": {"product": PRODUCT, "product_name": "安责险"},
    "enroll/summary_farmer": {
        "a": FARMER_ANSWERS,
        "product_name": "水稻",
        "unit": "亩",
        "quote": AGRI_QUOTE,
        "yuan": _yuan,
        "masked_id": "1101****002X",
        "masked_account": "6228****8901",
        "insured_type": "普通农户",
        "signer": "我本人确认",
        "relation": "",
    },
    "enroll/summary_enterprise": {
        "a": ENTERPRISE_ANSWERS,
        "industry": "机械制造",
        "quote": LIABILITY_QUOTE,
        "yuan": _yuan,
        "accidents": "无",
        "region": "东城街道",
        "risky": 2,
        "masked_account": "6222***********1234",
    },
    "enroll/submitted_verification": {"application": APPLICATION, "reasons": ["面积 100 亩及以上"]},
    "enroll/submitted_pay": {
        "application": SimpleNamespace(
            number="AP1",
            premium=SimpleNamespace(
                payable_fen=1,
                breakdown={"record_overrides": True, "accidents_recorded": 2, "accidents_declared": 0},
            ),
        ),
        "yuan": _yuan,
        "liability": True,
    },
    "enroll/paid": {"started": STARTED, "policy": POLICY},
    "enroll/already_paid": {"policy": POLICY},
    "enroll/paid_telegram": {"policy": POLICY},
    "enroll/pay_offline": {"started": STARTED},
    "enroll/invoice_description": {"started": STARTED},
    "enroll/policy_issued": {"policy": POLICY, "product_name": "水稻", "demo": True},
    "enroll/verification_passed": {"application": APPLICATION},
    "enroll/verification_failed": {"application": APPLICATION, "agent_name": "", "agent_phone": ""},
    "enroll/endorsement_decided": {
        "policy": POLICY,
        "endorsement": ENDORSEMENT,
        "old_masked": "1",
        "new_masked": "2",
    },
    "enroll/scan_refused": {"code": "expired"},
    "policies/list": {"count": 2},
    "policies/detail": {
        "policy": POLICY,
        "yuan": _yuan,
        "product_name": "水稻种植保险",
        "unit": "亩",
        "self_paid_fen": 12000,
    },
    "policies/pdf_caption": {"policy": POLICY},
    "policies/endorse_summary": {
        "a": {"new_value": "13912345678"},
        "field_label": "联系电话",
        "new_value_shown": "139****5678",
    },
    "policies/endorse_requested": {"endorsement": ENDORSEMENT, "field_label": "联系电话"},
    "start/welcome": {"identity": IDENTITY},
    "start/menu": {"identity": IDENTITY},
    "start/unknown_link": {"identity": IDENTITY},
    "start/language_set": {"identity": IDENTITY},
    "start/phone_bound": {"identity": IDENTITY},
    "start/phone_refused": {"code": "phone_not_cn_mobile"},
    "start/phone_code_sent": {"phone_masked": "138****5678", "minutes": 5},
    "enroll/phone_code_wait": {"phone_masked": "138****5678"},
    "start/link_other_person": {"phone_masked": "138****5678"},
    "start/link_expired": {"identity": IDENTITY},
    "start/link_unknown": {"identity": IDENTITY},
    "start/devices": {"devices": DEVICES, "ended": True},
    "webchat/file_too_large": {"limit_mb": 10},
}


NOTICE_CLAIM = SimpleNamespace(number="CL202611220000001", insured_name="李四", cause="typhoon")
REASON_KEYS = (
    "not_covered",
    "excluded_cause",
    "outside_policy_period",
    "no_disposal_proof",
    "not_insured_subject",
    "false_report",
)
ALERT = {
    "claim": NOTICE_CLAIM,
    "deadline": "survey",
    "due_at": NOW,
    "adjuster": "陈查勘",
    "amount": Decimal("1200"),
    "objection": "面积不对",
}
WORKFLOW_SAMPLES: dict[str, dict[str, Any]] = {
    "claims_notice/adjuster_assigned": {"claim": NOTICE_CLAIM, "adjuster_name": "陈查勘"},
    "claims_notice/disposal_confirmed": {"claim": NOTICE_CLAIM, "by": "vet", "authority": "东城畜牧兽医站"},
    "claims_notice/disposal_rejected": {"claim": NOTICE_CLAIM, "reason": "照片看不出深埋处理"},
    "claims_notice/survey_scheduled": {"claim": NOTICE_CLAIM, "at": NOW, "remote": False, "joint": True},
    "claims_notice/survey_delayed": {
        "claim": NOTICE_CLAIM,
        "at": NOW,
        "reason": "道路被淹",
        "remote": True,
        "joint": False,
    },
    "claims_notice/surveyed": {
        "claim": NOTICE_CLAIM,
        "covered": True,
        "loss": "倒伏 5 亩",
        "loss_degree": "medium",
    },
    "claims_notice/documents_requested": {"claim": NOTICE_CLAIM, "items": ["身份证", "银行卡"]},
    "claims_notice/denied": {
        "claim": NOTICE_CLAIM,
        "reasons": ["not_covered", "自由文本"],
        "reason_keys": REASON_KEYS,
        "notice_number": "DN1",
    },
    "claims_notice/assessed": {"claim": NOTICE_CLAIM, "amount": Decimal("1200.00"), "again": False},
    "claims_notice/agreed": {"claim": NOTICE_CLAIM, "amount": Decimal("1200.00"), "payment_due_at": NOW},
    "claims_notice/paid": {
        "claim": NOTICE_CLAIM,
        "amount": Decimal("1200.00"),
        "bank_name": "农业银行",
        "account_masked": "6228***********8901",
        "payee_name": "李四",
        "payee_is_insured": True,
        "prepaid": Decimal("300.00"),
    },
    "claims_notice/survey_overdue": {"claim": NOTICE_CLAIM, "due_at": NOW},
    "claims_notice/staff_alert_title": {**ALERT, "kind": "deadline_overdue"},
    "claims_notice/staff_alert_body": {**ALERT, "kind": "deadline_due_soon"},
    "alerts/insured_message_title": {},
    "alerts/staff_reply": {"question": "我家稻子被淹了怎么办", "reply": "请拍照后点“我要报案”"},
    "start/message_forwarded": {},
}


def _helper_samples() -> None:
    """Feature tests own the samples of their templates; gather them here."""
    from tests.backend.test_broadcasts import TEMPLATE_SAMPLES as BROADCAST_SAMPLES
    from tests.backend.test_callbacks import TEMPLATE_SAMPLES as CALLBACK_SAMPLES
    from tests.backend.test_cap_warnings import TEMPLATE_SAMPLES as WARNING_SAMPLES
    from tests.backend.test_claims_catastrophe import TEMPLATE_SAMPLES as EVENT_SAMPLES
    from tests.backend.test_claims_index import TEMPLATE_SAMPLES as INDEX_SAMPLES
    from tests.backend.test_disaster_events import TEMPLATE_SAMPLES as DISASTER_SAMPLES
    from tests.backend.test_inspections import TEMPLATE_SAMPLES as INSPECTION_SAMPLES
    from tests.backend.test_publicity import TEMPLATE_SAMPLES as PUBLICITY_SAMPLES
    from tests.bot.test_collective_chat import TEMPLATE_SAMPLES as COLLECTIVE_SAMPLES
    from tests.bot.test_webchat_limits import TEMPLATE_SAMPLES as WEBCHAT_LIMIT_SAMPLES

    SAMPLES.update(INDEX_SAMPLES)
    SAMPLES.update(EVENT_SAMPLES)
    SAMPLES.update(WORKFLOW_SAMPLES)
    SAMPLES.update(WEBCHAT_LIMIT_SAMPLES)
    SAMPLES.update(CALLBACK_SAMPLES)
    SAMPLES.update(PUBLICITY_SAMPLES)
    SAMPLES.update(COLLECTIVE_SAMPLES)
    SAMPLES.update(WARNING_SAMPLES)
    SAMPLES.update(DISASTER_SAMPLES)
    SAMPLES.update(BROADCAST_SAMPLES)
    SAMPLES.update(INSPECTION_SAMPLES)


_helper_samples()


# Contexts that take the branches the main samples do not (inline {% if %} at a line's end), so the
# line test below sees every field a template can print.
TIMELINE = [
    SimpleNamespace(at=datetime(2026, 12, 1, 20, 0, tzinfo=UTC), kind="reported", note=""),
    SimpleNamespace(at=datetime(2026, 12, 2, 1, 0, tzinfo=UTC), kind="adjuster_assigned", note="陈查勘"),
    SimpleNamespace(at=datetime(2026, 12, 2, 3, 0, tzinfo=UTC), kind="surveyed", note="倒伏"),
]
VARIANTS: dict[str, list[dict[str, Any]]] = {
    # R-LIA-6: pre-payments covered the whole settlement, nothing transferred (no account)
    "claims_notice/paid": [
        {**SAMPLES["claims_notice/paid"], "amount": Decimal("0"), "bank_name": "", "account_masked": ""},
    ],
    "enroll/summary_farmer": [
        {
            **SAMPLES["enroll/summary_farmer"],
            "a": {**FARMER_ANSWERS, "gps": [34.8, 114.8], "ear_tags": ["A1", "A2"], "signer_name": "王五"},
            "relation": "子女",
        },
    ],
    "claims/summary": [
        {
            **SAMPLES["claims/summary"],
            "a": {**SAMPLES["claims/summary"]["a"], "place_name": "东坝头镇", "claim_gps": [1, 2]},
            "disposal": 2,
        },
        {
            **SAMPLES["claims/summary"],
            "a": {
                "cause": "accident",
                "injured": 1,
                "dead": 0,
                "description": "冲压机伤手",
                "place_name": "车间",
            },
            "liability": True,
            "reporter": "王五",
            "reporter_phone": "13912345678",
            "insured_name": "东莞市安达五金制品有限公司",
        },
    ],
    "claims_notice/survey_scheduled": [
        {"claim": NOTICE_CLAIM, "at": NOW, "remote": True, "remote_method": "drone", "joint": False}
    ],
    "claims/detail": [
        {
            "claim": SimpleNamespace(
                **{
                    **vars(CLAIM),
                    "paid_amount_fen": 350000,
                    "paid_at": NOW,
                    "denial_reasons": ["不在保险期间内"],
                    "timeline": TIMELINE,
                }
            )
        },
        {
            "claim": SimpleNamespace(
                **{
                    **vars(CLAIM),
                    "green_channel": True,
                    "documents_needed": ["loss_photos", "bank_card"],
                    "remote_methods": ["video", "drone", "satellite"],
                    "remote_method": "drone",
                }
            )
        },
    ],
    "policies/detail": [
        {**SAMPLES["policies/detail"], "policy": SimpleNamespace(**{**vars(POLICY), "late_entry": True})}
    ],
    "policies/endorse_summary": [
        {**SAMPLES["policies/endorse_summary"], "a": {"new_value": "6228", "bank_name": "农业银行"}}
    ],
    "enroll/summary_enterprise": [{**SAMPLES["enroll/summary_enterprise"], "risky": 0}],
}

_LEADING_TAGS = re.compile(r"^(?:\{%(?:[^%]|%(?!\}))*%\}|[ \t])*")
# "地点：", "收款银行：", "Place: ", "<b>Next:</b>": a short label opening a template line.
_FIELD_LABEL = re.compile(r"^(?:<b>)?([^\s{<>：:·•\-][^{<>：:]{0,22}?(?:：|:(?=\s|</b>)))")


def _field_labels(locale: str, key: str, ext: str) -> set[str]:
    """The labels a template's own lines start with: each must start a line when rendered."""
    source = (MESSAGES_DIR / locale / f"{key}.{ext}.j2").read_text(encoding="utf-8")
    found = set()
    for line in source.splitlines():
        match = _FIELD_LABEL.match(_LEADING_TAGS.sub("", line))
        if match:
            found.add(match.group(1))
    return found


def _chat_renders(locale: str) -> list[tuple[str, str, str]]:
    """(key, ext, text) for every chat sample and variant of a locale."""
    out = []
    for key, ext in template_keys(locale):
        if key.startswith(("documents/", "pages/")):  # PDFs and whole web pages are not chat text
            continue
        for ctx in [SAMPLES.get(key, {}), *VARIANTS.get(key, [])]:
            out.append((key, ext, render(key, locale, ext=ext, **ctx)))
    return out


@pytest.mark.parametrize("locale", LOCALES)
def test_every_labelled_field_starts_its_own_line(locale: str) -> None:
    """Issue 10 item 1: trim_blocks ate the newline after an inline {% endif %} ("地点：…收款银行：…")."""
    checked = 0
    for key, ext, text in _chat_renders(locale):
        for field in _field_labels(locale, key, ext):
            for hit in re.finditer(re.escape(field), text):
                line_start = text.rfind("\n", 0, hit.start()) + 1
                assert text[line_start : hit.start()].strip() in ("", "<b>"), (
                    f"{locale}/{key}: {field!r} runs on from the line before:\n{text}"
                )
                checked += 1
    assert checked > 100  # the label finder really found the fields


@pytest.mark.parametrize("locale", LOCALES)
def test_timeline_entries_are_on_separate_lines(locale: str) -> None:
    text = render("claims/detail", locale, **VARIANTS["claims/detail"][0])
    lines = text.splitlines()
    for stamp in ("2026-12-02 04:00", "2026-12-02 09:00", "2026-12-02 11:00"):
        assert any(line.startswith(stamp) for line in lines), f"{stamp} does not start a line:\n{text}"
    assert lines[-1].startswith("<b>"), "the next step runs on from the last timeline entry"


@pytest.mark.parametrize("locale", LOCALES)
def test_chat_text_has_no_stray_blank_lines(locale: str) -> None:
    """Block tags on lines of their own print nothing: only a blank line written in a template shows."""
    for key, ext, text in _chat_renders(locale):
        source = (MESSAGES_DIR / locale / f"{key}.{ext}.j2").read_text(encoding="utf-8")
        if "\n\n" not in source:
            assert "\n\n" not in text, f"{locale}/{key} has a blank line its template does not:\n{text}"
        assert "\n\n\n" not in text, f"{locale}/{key}"


def test_both_locales_have_the_same_templates() -> None:
    zh = set(template_keys("zh-CN"))
    en = set(template_keys("en"))
    assert zh == en, f"only zh-CN: {sorted(zh - en)}; only en: {sorted(en - zh)}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_renders_with_its_sample(locale: str) -> None:
    for key, ext in template_keys(locale):
        if key.startswith("documents/"):
            continue  # rendered by the document tests with full data
        text = render(key, locale, ext=ext, **SAMPLES.get(key, {}))
        assert text.strip(), f"{locale}/{key} rendered empty"


def test_missing_variable_fails_loudly() -> None:
    with pytest.raises(UndefinedError):
        render("start/phone_bound", "zh-CN")


def test_missing_template_is_an_error_not_a_fallback() -> None:
    with pytest.raises(MessageNotFound):
        render("start/no_such_template", "en")


def test_user_text_is_escaped_for_telegram_html() -> None:
    identity = IDENTITY.model_copy(update={"first_name": "<b>x</b>&"})
    text = render("start/welcome", "zh-CN", identity=identity)
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in text


def test_labels_have_the_same_keys_in_both_locales() -> None:
    for zh_file in (MESSAGES_DIR / "zh-CN").rglob("labels.json"):
        en_file = MESSAGES_DIR / "en" / zh_file.relative_to(MESSAGES_DIR / "zh-CN")
        zh = json.loads(zh_file.read_text(encoding="utf-8"))
        en = json.loads(en_file.read_text(encoding="utf-8"))
        assert zh.keys() == en.keys(), f"{zh_file.parent.name}: {set(zh) ^ set(en)}"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("zh-hans", "zh-CN"),
        ("zh_TW", "zh-CN"),
        ("en-US", "en"),
        ("EN", "en"),
        ("fr", "zh-CN"),
        (None, "zh-CN"),
    ],
)
def test_locale_rules_are_explicit(tag: str | None, expected: str) -> None:
    assert normalize_locale(tag) == expected


# --- one time zone for people (issue 10 item 3) -------------------------------------------------------

EVENING_UTC = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # 2026-12-02 04:00 in Beijing


@pytest.fixture
def zone() -> Iterator[Callable[[str], None]]:
    """Configure another zone for one test; the default comes back afterwards."""
    yield lambda key: configure(timezone=key)
    configure(timezone=DEFAULT_TIMEZONE)


@pytest.mark.parametrize("locale", LOCALES)
def test_chat_shows_times_and_dates_in_beijing_time(locale: str) -> None:
    policy = SimpleNamespace(**{**vars(POLICY), "starts_at": EVENING_UTC, "ends_at": EVENING_UTC})
    contexts: tuple[tuple[str, dict[str, Any]], ...] = (
        ("enroll/policy_issued", {"policy": policy, "product_name": "水稻", "demo": False}),
        ("policies/detail", {**SAMPLES["policies/detail"], "policy": policy}),
    )
    for key, ctx in contexts:
        text = render(key, locale, **ctx)
        assert "2026-12-02" in text and "2026-12-01" not in text, f"{key}: the cover date is the UTC date"
    claim = SimpleNamespace(**{**vars(CLAIM), "loss_started_at": EVENING_UTC, "survey_due_at": EVENING_UTC})
    claim.timeline = [SimpleNamespace(at=EVENING_UTC, kind="reported", note="")]
    assert "2026-12-02 04:00" in render("claims/detail", locale, claim=claim)
    assert "2026-12-02 04:00" in render("claims/reported", locale, claim=claim)
    staff = render("claims/alert_accident_body", locale, ext="txt", claim=claim)
    assert "2026-12-02 04:00" in staff and "UTC" not in staff
    alert_ctx: dict[str, Any] = {**ALERT, "kind": "deadline_due_soon", "due_at": EVENING_UTC}
    alert = render("claims_notice/staff_alert_body", locale, **alert_ctx)
    assert "2026-12-02 04:00" in alert
    scheduled = render(
        "claims_notice/survey_scheduled",
        locale,
        claim=NOTICE_CLAIM,
        at=EVENING_UTC,
        remote=False,
        joint=False,
    )
    assert ("12月02日 04:00" if locale == "zh-CN" else "2026-12-02 04:00") in scheduled
    assert "04:00" in local_time(EVENING_UTC) and to_local(EVENING_UTC).day == 2


def test_the_timezone_setting_decides_what_people_read(zone: Callable[[str], None]) -> None:
    zone("Asia/Urumqi")  # UTC+6
    assert local_time(EVENING_UTC) == "2026-12-02 02:00"
    assert "乌鲁木齐时间" in render("claims/reported", "zh-CN", claim=CLAIM)
    zone("UTC")
    policy = SimpleNamespace(**{**vars(POLICY), "starts_at": EVENING_UTC, "ends_at": EVENING_UTC})
    assert "2026-12-01 至 2026-12-01" in render(
        "policies/detail", "zh-CN", **{**SAMPLES["policies/detail"], "policy": policy}
    )
    assert "(UTC)" in render("claims/reported", "en", claim=CLAIM)  # a zone without a name shows its key


def test_day_boundaries_follow_the_timezone_setting(zone: Callable[[str], None]) -> None:
    """Index readings, disaster events, late entries and the claim form's days all count days where
    people live: the zone of TIANBAO_TIMEZONE, not a Beijing offset written into the code."""
    from backend.claims.index import service as index

    assert index.day_of(EVENING_UTC) == date(2026, 12, 2)  # 04:00 in Beijing
    assert index.day_start(date(2026, 12, 2)) == datetime(2026, 12, 1, 16, tzinfo=UTC)
    zone("Europe/London")
    assert local_date(EVENING_UTC) == date(2026, 12, 1) == index.day_of(EVENING_UTC)
    assert (
        local_day_start(date(2026, 12, 2))
        == datetime(2026, 12, 2, tzinfo=UTC)
        == index.day_start(date(2026, 12, 2))
    )


def test_settings_refuse_an_unknown_timezone_and_configure_messages() -> None:
    from backend.settings import Settings

    with pytest.raises(ValueError, match="TIANBAO_TIMEZONE"):
        Settings(timezone="Asia/Beijing")
    try:
        Settings(timezone="Asia/Urumqi").configure_messages()
        assert local_time(EVENING_UTC) == "2026-12-02 02:00"
    finally:
        Settings().configure_messages()
    assert local_time(EVENING_UTC) == "2026-12-02 04:00"


# --- wording that misleads, contacts (issue 10 item 7) --------------------------------------------------

CONTACTS = Contacts(
    hotline="95599-0000", office="兰考支公司，兰考县裕禄大道 1 号", office_phone="0371-2222-0000"
)


@pytest.fixture
def contacts() -> Iterator[Contacts]:
    configure(timezone=DEFAULT_TIMEZONE, contacts=CONTACTS)
    yield CONTACTS
    configure(timezone=DEFAULT_TIMEZONE)


@pytest.mark.parametrize("locale", LOCALES)
def test_r_clm_2_weather_index_disclosure_asks_for_no_report(locale: str) -> None:
    index = render(
        "enroll/disclosure_agricultural",
        locale,
        product={**PRODUCT, "weather_index": True},
        product_name="荔枝",
    )
    assert "24" not in index, "weather-index products need no report (R-CLM-2)"
    assert ("不需要报案" if locale == "zh-CN" else "needs no loss report") in index
    loss = render("enroll/disclosure_agricultural", locale, product=PRODUCT, product_name="水稻")
    assert "24" in loss  # indemnity products keep the 24-hour report


@pytest.mark.parametrize("locale", LOCALES)
def test_r_clm_7_livestock_report_says_one_thing_about_disposal(locale: str) -> None:
    """Not "do not dispose yet" next to "dispose harmlessly": harmless disposal, proven and confirmed."""
    for proven in (False, True):
        claim = SimpleNamespace(**{**vars(CLAIM), "disposal_required": True, "disposal_proven": proven})
        text = render("claims/reported", locale, claim=claim)
        if locale == "zh-CN":
            assert "无害化处理" in text and "确认" in text and "不要" not in text
        else:
            assert "disposed of harmlessly" in text and "confirmed" in text and "do not" not in text.lower()
    crops = render(
        "claims/reported", locale, claim=SimpleNamespace(**{**vars(CLAIM), "disposal_required": False})
    )
    assert ("无害化" if locale == "zh-CN" else "harmless") not in crops


@pytest.mark.parametrize("locale", LOCALES)
def test_an_enterprise_is_asked_for_the_accident_site_address(locale: str) -> None:
    from bot.forms.claim import PlaceStep, parse_place

    said: list[str] = []

    class FakeIo:
        def label(self, key: str, **ctx: Any) -> str:
            return label(key, locale, **ctx)

        async def say(self, text: str, markup: Any = None) -> None:
            said.append(text)

        def button(self, text: str, action: str, value: str = "") -> Any:
            from aiogram.types import InlineKeyboardButton

            return InlineKeyboardButton(text=text, callback_data=f"f:{action}:{value}:")

    step = PlaceStep("place_name", parse_place)
    for category in ("liability", "crop"):
        form = SimpleNamespace(cache={"product": {"category": category}}, answers={})
        asyncio.run(step.ask(FakeIo(), form))  # type: ignore[arg-type]
    assert said == [label("enroll_ask.accident_site", locale), label("enroll_ask.place_name", locale)]
    assert ("地址" if locale == "zh-CN" else "address") in said[0]


# Templates that send the reader to a person: each must give the configured number.
POINTS_TO_A_PERSON = {
    "enroll/disclosure_agricultural": SAMPLES["enroll/disclosure_agricultural"],
    "enroll/disclosure_liability": SAMPLES["enroll/disclosure_liability"],
    "enroll/verification_failed": SAMPLES["enroll/verification_failed"],
    "enroll/scan_refused": SAMPLES["enroll/scan_refused"],
    "start/unknown_link": SAMPLES["start/unknown_link"],
    "start/phone_refused": {"code": "phone_taken"},
    "start/help": {},
    "claims_notice/paid": WORKFLOW_SAMPLES["claims_notice/paid"],
    "claims_notice/denied": WORKFLOW_SAMPLES["claims_notice/denied"],
}


@pytest.mark.parametrize("locale", LOCALES)
def test_messages_that_point_to_a_person_give_the_configured_contacts(
    locale: str, contacts: Contacts
) -> None:
    for key, ctx in POINTS_TO_A_PERSON.items():
        text = render(key, locale, **ctx)
        assert contacts.hotline in text, f"{locale}/{key} sends the reader to a person with no number"
    help_text = render("start/help", locale)
    assert contacts.office in help_text and contacts.office_phone in help_text


@pytest.mark.parametrize("locale", LOCALES)
def test_no_message_names_a_phone_it_does_not_give(locale: str) -> None:
    """Without configured contacts no text says "call the service phone": it points to this chat."""
    for key, _ext, text in _chat_renders(locale):
        for phrase in ("服务电话", "hotline", "call the insurer"):
            assert phrase not in text, f"{locale}/{key}: {phrase!r} with no number"
    for key, ctx in POINTS_TO_A_PERSON.items():
        assert label("common.contact_chat", locale).lower() in render(key, locale, **ctx).lower(), key


def test_labels_that_mention_an_agent_point_to_help() -> None:
    for locale in LOCALES:
        for name, text in labels_for("enroll_errors", locale).items():
            if "业务员" in text or "agent" in text:
                assert "/help" in text, f"{locale} enroll_errors.{name}: an agent with no number"


def test_the_insurer_name_setting_names_the_insurer(contacts: Contacts) -> None:
    configure(
        timezone=DEFAULT_TIMEZONE, contacts=Contacts(insurer_name="示例财产保险兰考支公司", hotline="95599")
    )
    assert render("enroll/insurer_name", "en", ext="txt") == "示例财产保险兰考支公司"
    assert "示例财产保险兰考支公司" in render("start/help", "zh-CN")


def test_every_process_tells_messages_the_zone_and_contacts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The CLI (bot, worker, scheduler, serve) and the app factory configure messages from settings."""
    from backend.app import create_app
    from backend.settings import Settings, reset_settings_cache
    from bot.cli import _settings

    monkeypatch.setenv("TIANBAO_TIMEZONE", "Asia/Urumqi")
    monkeypatch.setenv("TIANBAO_INSURER_HOTLINE", "95599-1234")
    reset_settings_cache()
    try:
        _settings()
        assert local_time(EVENING_UTC) == "2026-12-02 02:00"
        assert "95599-1234" in render("start/help", "zh-CN")
        configure(timezone=DEFAULT_TIMEZONE)
        create_app(Settings(var_dir=tmp_path, timezone="UTC"))
        assert local_time(EVENING_UTC) == "2026-12-01 20:00"
    finally:
        reset_settings_cache()
        configure(timezone=DEFAULT_TIMEZONE)


def test_money_has_one_style_yuan_sign_without_trailing_yuan_word() -> None:
    """Amounts print "¥2,500.00", never "¥2,500.00 元" (both the sign and the word)."""
    both = re.compile(r"¥\s*\{\{[^}]*\}\}(?:</b>)?\s*元")
    offenders = [
        str(path.relative_to(MESSAGES_DIR))
        for path in MESSAGES_DIR.rglob("*.j2")
        if both.search(path.read_text(encoding="utf-8"))
    ]
    offenders += [
        f"{path.relative_to(MESSAGES_DIR)}:{key}"
        for path in MESSAGES_DIR.rglob("labels.json")
        for key, text in json.loads(path.read_text(encoding="utf-8")).items()
        if re.search(r"¥\s*\{[^}]*\}\s*元", text)
    ]
    assert offenders == []

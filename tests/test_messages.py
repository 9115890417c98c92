"""Every template renders in both locales with its variables; labels exist in both."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from jinja2 import UndefinedError

from backend.people.schemas import IdentityOut
from messages import LOCALES, MESSAGES_DIR, MessageNotFound, normalize_locale, render, template_keys

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
    place_name="大塘边",
    injured=1,
    dead=0,
    description="冲压机伤手",
    late=True,
    delay_minutes=600,
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
)

SAMPLES: dict[str, dict[str, Any]] = {
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
    },
    "claims/reported": {"claim": CLAIM},
    "claims/list": {"count": 2},
    "claims/detail": {"claim": CLAIM},
    "claims/evidence_received": {"claim": CLAIM},
    "claims/answered": {"claim": CLAIM},
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
    "enroll/paid_telegram": {"policy": POLICY},
    "enroll/pay_offline": {"started": STARTED},
    "enroll/invoice_description": {"started": STARTED},
    "enroll/policy_issued": {"policy": POLICY, "product_name": "水稻"},
    "enroll/verification_passed": {"application": APPLICATION},
    "enroll/verification_failed": {"application": APPLICATION},
    "enroll/endorsement_decided": {
        "policy": POLICY,
        "endorsement": ENDORSEMENT,
        "old_masked": "1",
        "new_masked": "2",
    },
    "enroll/scan_refused": {"code": "expired"},
    "policies/list": {"count": 2},
    "policies/detail": {"policy": POLICY, "yuan": _yuan},
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
    },
    "claims_notice/survey_overdue": {"claim": NOTICE_CLAIM, "due_at": NOW},
    "claims_notice/staff_alert_title": {**ALERT, "kind": "deadline_overdue"},
    "claims_notice/staff_alert_body": {**ALERT, "kind": "deadline_due_soon"},
}


def _helper_samples() -> None:
    """Feature tests own the samples of their templates; gather them here."""
    from tests.backend.test_claims_catastrophe import TEMPLATE_SAMPLES as EVENT_SAMPLES
    from tests.backend.test_claims_index import TEMPLATE_SAMPLES as INDEX_SAMPLES

    SAMPLES.update(INDEX_SAMPLES)
    SAMPLES.update(EVENT_SAMPLES)
    SAMPLES.update(WORKFLOW_SAMPLES)


_helper_samples()


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

"""R-ENR-10: e-policy, e-endorsement and household voucher render from the unified templates to PDFs with
the embedded CJK font, in both locales, with personal numbers masked (R-PUB-4), stored with their SHA-256."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlmodel import select

from backend.claims.denial import DENIAL_REASONS, DenialNoticeContext
from backend.db import Database
from backend.enrollment import documents
from backend.enrollment.doc_contexts import paid_by_demo
from backend.enrollment.documents import (
    DOCUMENT_CONTEXTS,
    AgriculturalPremium,
    BankAccount,
    EndorsementDocumentContext,
    HouseholdVoucherContext,
    LiabilityPremium,
    PolicyDocumentContext,
    Signer,
    font_path,
    render_pdf,
    sha256_hex,
    store_document,
)
from backend.enrollment.models import Document, Policy
from messages import DEFAULT_TIMEZONE, LOCALES, MESSAGES_DIR, Contacts, configure, render, template_keys
from tests.enroll_helpers import insured_in_chat
from tests.harness import ChatUser

ID_NUMBER = "11010519491231002X"
PHONE = "13812345678"
CARD = "6217000010001234567"
ISSUED = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)  # 10:30 in China

KEY_TERMS_ZH = (
    "保险责任：暴雨、洪水、风灾、冰雹、冻灾、旱灾及病虫害造成的直接损失。",
    "责任免除：被保险人及其家庭成员的故意行为；战争、军事行动。",
    "出险后请在24小时内报案，报案电话见本保单，并保护好现场。",
)
KEY_TERMS_EN = (
    "Cover: direct loss from heavy rain, flood, wind, hail, frost, drought, pests and diseases.",
    "Exclusions: intentional acts of the insured or the household; war and military action.",
    "Report a loss within 24 hours and keep the scene as it is.",
)


def policy_context(locale: str = "zh-CN", **changes: Any) -> PolicyDocumentContext:
    values: dict[str, Any] = {
        "policy_number": "PA2026360100000123",
        "verification_code": "7KQ4-M2XD",
        "insurer_name": "示例财产保险股份有限公司江西分公司",
        "product_name_zh": "水稻种植保险",
        "product_name_en": "Rice planting insurance",
        "insured_name": "王大明",
        "id_type": "resident_id",
        "id_number": ID_NUMBER,
        "phone": PHONE,
        "subject_name_zh": "水稻",
        "subject_name_en": "Rice",
        "quantity": "12.5",
        "unit": "mu",
        "location": ("江西省", "南昌市", "新建区", "石埠镇", "乌城村"),
        "place_name": "喆家垅",
        "starts_at": datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
        "ends_at": datetime(2026, 11, 30, 15, 59, tzinfo=UTC),
        "sum_insured_fen": 1_000_000,
        "premium": AgriculturalPremium(
            total_fen=60_000, central_fen=27_000, provincial_fen=15_000, county_fen=6_000, farmer_fen=12_000
        ),
        "disclosure_version": "2026.1",
        "disclosure_confirmed_at": datetime(2026, 3, 1, 2, 0, tzinfo=UTC),
        "signer": Signer(kind="insured", name="王大明"),
        "issued_at": ISSUED,
        "bank": BankAccount(
            bank_name="中国农业银行南昌新建支行", account_number=CARD, account_kind="one_card"
        ),
        "key_terms": KEY_TERMS_ZH if locale == "zh-CN" else KEY_TERMS_EN,
    }
    values.update(changes)
    return PolicyDocumentContext(**values)


def liability_context(locale: str = "zh-CN") -> PolicyDocumentContext:
    return policy_context(
        locale,
        product_name_zh="安全生产责任保险",
        product_name_en="Work-safety liability insurance",
        insured_name="南昌喆丰化工有限公司",
        id_type="credit_code",
        id_number="91350100M000100Y43",
        subject_name_zh="从业人员",
        subject_name_en="Employees",
        quantity="35",
        unit="person",
        place_name="",
        sum_insured_fen=80_000_000,
        premium=LiabilityPremium(
            industry_name_zh="危险化学品",
            industry_name_en="Hazardous chemicals",
            employees=35,
            base_rate="0.0020",
            factor="0.9",
            factor_reason="accident_free",
            premium_per_person_fen=144_000,
            total_fen=5_040_000,
            limits_fen={
                "death_disability_per_person_fen": 80_000_000,
                "medical_per_person_fen": 8_000_000,
                "emergency_rescue_per_accident_fen": 50_000_000,
                "legal_costs_per_accident_fen": 10_000_000,
            },
        ),
        signer=Signer(kind="authorised", name="李四", authorisation_ref="AUTH-2026-0042"),
        bank=None,
    )


def endorsement_context(**changes: Any) -> EndorsementDocumentContext:
    values: dict[str, Any] = {
        "endorsement_number": "EN2026360100000007",
        "policy_number": "PA2026360100000123",
        "verification_code": "9RT3-P8WA",
        "insurer_name": "示例财产保险股份有限公司江西分公司",
        "product_name_zh": "水稻种植保险",
        "product_name_en": "Rice planting insurance",
        "insured_name": "王大明",
        "field": "bank_account",
        "old_value": CARD,
        "new_value": "6228480012345678901",
        "bank_name_old": "中国农业银行南昌新建支行",
        "bank_name_new": "江西农商银行石埠支行",
        "requested_at": datetime(2026, 4, 2, 1, 0, tzinfo=UTC),
        "approved_at": datetime(2026, 4, 2, 6, 0, tzinfo=UTC),
        "approved_by": "赵核保",
        "effective_at": datetime(2026, 4, 2, 16, 0, tzinfo=UTC),
        "issued_at": datetime(2026, 4, 2, 6, 5, tzinfo=UTC),
        "reason": "原银行卡已注销",
    }
    values.update(changes)
    return EndorsementDocumentContext(**values)


def voucher_context(**changes: Any) -> HouseholdVoucherContext:
    values: dict[str, Any] = {
        "voucher_number": "HV2026360100000123-0007",
        "policy_number": "PA2026360100000123",
        "verification_code": "3HX8-QW2M",
        "insurer_name": "示例财产保险股份有限公司江西分公司",
        "product_name_zh": "能繁母猪养殖保险",
        "product_name_en": "Breeding sow insurance",
        "policyholder_name": "乌城村村民委员会",
        "household_name": "王大明",
        "id_number": ID_NUMBER,
        "subject_name_zh": "能繁母猪",
        "subject_name_en": "Breeding sows",
        "quantity": "8",
        "unit": "head",
        "location": ("江西省", "南昌市", "新建区", "石埠镇", "乌城村"),
        "sum_insured_fen": 1_200_000,
        "premium_total_fen": 72_000,
        "farmer_fen": 14_400,
        "starts_at": datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
        "ends_at": datetime(2027, 3, 2, 15, 59, tzinfo=UTC),
        "issued_at": ISSUED,
    }
    values.update(changes)
    return HouseholdVoucherContext(**values)


SAMPLES: dict[str, Callable[[str], Any]] = {
    "e_policy": policy_context,
    "e_endorsement": lambda locale: endorsement_context(),
    "household_voucher": lambda locale: voucher_context(),
}
TITLES = {
    "e_policy": {"zh-CN": "电子保单", "en": "Electronic Policy"},
    "e_endorsement": {"zh-CN": "电子批单", "en": "Electronic Endorsement"},
    "household_voucher": {"zh-CN": "分户凭证", "en": "Household Voucher"},
}


def pdf_text(data: bytes) -> str:
    """Every page's text; no-break spaces (between a date and its time) read as spaces."""
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return text.replace("\xa0", " ")


def embedded_font_files(data: bytes) -> list[str]:
    found = []
    for page in PdfReader(io.BytesIO(data)).pages:
        resources: Any = page["/Resources"]
        for font in resources["/Font"].values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", []):
                descriptor = descendant.get_object()["/FontDescriptor"].get_object()
                found += [key for key in ("/FontFile", "/FontFile2", "/FontFile3") if key in descriptor]
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], bytes]:
    return {
        (name, locale): render_pdf(name, locale, doc=SAMPLES[name](locale))
        for name in DOCUMENT_CONTEXTS
        for locale in LOCALES
    }


def test_r_enr_10_templates_stay_inside_what_fpdf2_renders(caplog: pytest.LogCaptureFixture) -> None:
    # fpdf2 logs a warning for what it ignores (a width outside the first row, an unsupported attribute).
    with caplog.at_level("WARNING"):
        for name in DOCUMENT_CONTEXTS:
            for locale in LOCALES:
                render_pdf(name, locale, doc=SAMPLES[name](locale))
        render_pdf("e_policy", "en", doc=liability_context("en"))
    assert not caplog.records, [record.getMessage() for record in caplog.records]


def test_r_enr_10_every_document_template_exists_in_both_locales() -> None:
    for locale in LOCALES:
        keys = {key for key, ext in template_keys(locale) if key.startswith("documents/")}
        # The denial notice (R-CLM-10) is rendered by backend/claims/denial.py with the same page and font.
        expected = {f"documents/{name}" for name in DOCUMENT_CONTEXTS} | {
            "documents/_footer",
            "documents/denial_notice",
        }
        assert keys == expected, locale
        assert all(ext == "html" for key, ext in template_keys(locale) if key.startswith("documents/"))


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", sorted(DOCUMENT_CONTEXTS))
def test_r_enr_10_document_renders_to_a4_pdf_with_embedded_font(
    rendered: dict[tuple[str, str], bytes], name: str, locale: str
) -> None:
    data = rendered[(name, locale)]
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    width, height = (float(v) for v in reader.pages[0].mediabox.upper_right)
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    assert embedded_font_files(data), "the CJK font must be embedded, not referenced"
    assert reader.metadata is not None and reader.metadata.title == TITLES[name][locale]
    text = pdf_text(data)
    assert TITLES[name][locale] in text
    assert "王大明" in text
    # R-PUB-4: never the full ID number, phone or card number; the masked form instead.
    for secret in (ID_NUMBER, PHONE, CARD, "6228480012345678901"):
        assert secret not in text
    assert "1101**********002X" in text or name == "e_endorsement"


def test_r_enr_10_e_policy_shows_every_field_in_chinese(rendered: dict[tuple[str, str], bytes]) -> None:
    text = pdf_text(rendered[("e_policy", "zh-CN")])
    for expected in (
        "电子保单",
        "PA2026360100000123",
        "7KQ4-M2XD",
        "示例财产保险股份有限公司江西分公司",
        "水稻种植保险",
        "1101**********002X",
        "138****5678",
        "12.5 亩",
        "江西省 南昌市 新建区 石埠镇 乌城村",
        "喆家垅",  # a rare character: 喆 is in GBK and must be in the font
        "10,000.00",
        "600.00",
        "270.00",
        "150.00",
        "60.00",
        "120.00",
        "6217***********4567",
        "中国农业银行南昌新建支行",
        "2026.1",
        "☑ 被保险人本人：王大明",
        "2026年03月01日 10:30",  # issue time in China Standard Time
        "2026年03月03日 00:00",  # period start
        "保险责任：暴雨、洪水",
        "第 1 页 / 共 1 页",
    ):
        assert expected in text, expected


def test_r_enr_10_e_policy_for_liability_shows_rates_and_limits() -> None:
    for locale in LOCALES:
        data = render_pdf("e_policy", locale, doc=liability_context(locale))
        text = pdf_text(data)
        assert "9135**********0Y43" in text and "91350100M000100Y43" not in text
        assert "0.0020" in text and "0.9" in text
        assert "1,440.00" in text and "50,400.00" in text and "800,000.00" in text
        assert "AUTH-2026-0042" in text
    zh = pdf_text(render_pdf("e_policy", "zh-CN", doc=liability_context("zh-CN")))
    assert "危险化学品" in zh and "每人死亡、伤残责任限额" in zh and "被保险人授权人：李四" in zh


def test_r_enr_10_e_policy_lists_ear_tags_and_relative_signer(caplog: pytest.LogCaptureFixture) -> None:
    doc = policy_context(
        unit="head",
        quantity="12",
        subject_name_zh="能繁母猪",
        ear_tags=tuple(f"13601010000{n:04d}" for n in range(1, 13)),
        signer=Signer(kind="relative", name="李秀英", relation="spouse"),
        policyholder_name="乌城村村民委员会",  # collective enrollment (R-ENR-1)
        premium=AgriculturalPremium(
            total_fen=1_000, central_fen=500, provincial_fen=300, county_fen=200, farmer_fen=0
        ),
        bank=None,
    )
    with caplog.at_level("WARNING"):
        texts = {locale: pdf_text(render_pdf("e_policy", locale, doc=doc)) for locale in LOCALES}
    assert not caplog.records, [r.getMessage() for r in caplog.records]  # fpdf2 ignored nothing
    text = texts["zh-CN"]
    assert "136010100000001" in text and "136010100000012" in text and "耳标号（12枚）" in text
    assert "12 头" in text
    assert "李秀英（配偶）" in text
    assert "乌城村村民委员会（代参保农户统一投保）" in text
    assert "保费全部由各级财政承担" in text  # R-ENR-9: issued on the payment confirmation letter
    assert "Ear tags (12)" in texts["en"] and "spouse" in texts["en"]


def test_r_enr_10_e_endorsement_masks_old_and_new_bank_account(
    rendered: dict[tuple[str, str], bytes],
) -> None:
    text = pdf_text(rendered[("e_endorsement", "zh-CN")])
    for expected in (
        "电子批单",
        "EN2026360100000007",
        "PA2026360100000123",
        "银行账号",
        "6217***********4567",
        "6228***********8901",
        "江西农商银行石埠支行",
        "赵核保",
        "2026年04月03日 00:00",
    ):
        assert expected in text, expected


def test_r_enr_10_e_endorsement_of_phone_and_quantity(caplog: pytest.LogCaptureFixture) -> None:
    phone = pdf_text(
        render_pdf(
            "e_endorsement",
            "en",
            doc=endorsement_context(
                field="phone",
                old_value=PHONE,
                new_value="13987654321",
                bank_name_old=None,
                bank_name_new=None,
            ),
        )
    )
    assert "138****5678" in phone and "139****4321" in phone and "13987654321" not in phone
    no_bank = {"bank_name_old": None, "bank_name_new": None}
    with caplog.at_level("WARNING"):
        more = endorsement_context(
            field="quantity",
            old_value="12.5",
            new_value="15",
            unit="mu",
            premium_change_fen=1_200,
            decision_note="经核实，实际种植面积为15亩。",
            **no_bank,
        )
        quantity = pdf_text(render_pdf("e_endorsement", "zh-CN", doc=more))
        less = endorsement_context(
            field="quantity",
            old_value="15",
            new_value="12.5",
            unit="mu",
            premium_change_fen=-1_200,
            **no_bank,
        )
        refund = pdf_text(render_pdf("e_endorsement", "en", doc=less))
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert (
        "12.5 亩" in quantity
        and "15 亩" in quantity
        and "应补缴保费 ¥12.00" in quantity
        and "¥12.00 元" not in quantity
    )
    assert "经核实，实际种植面积为15亩。" in quantity
    assert "premium refunded: CNY 12.00" in refund and "15 mu" in refund


def test_r_enr_10_household_voucher_shows_own_share(rendered: dict[tuple[str, str], bytes]) -> None:
    text = pdf_text(rendered[("household_voucher", "zh-CN")])
    for expected in (
        "分户凭证",
        "乌城村村民委员会",
        "王大明",
        "1101**********002X",
        "能繁母猪",
        "8 头",
        "144.00",
        "720.00",
        "PA2026360100000123",
    ):
        assert expected in text, expected
    english = pdf_text(rendered[("household_voucher", "en")])
    assert "Household Voucher" in english and "8 head" in english and "144.00" in english


def test_r_enr_10_user_text_is_escaped_not_interpreted() -> None:
    doc = policy_context(insured_name="王<b>大明</b>&", key_terms=("<table>1 & 2</table>",))
    text = pdf_text(render_pdf("e_policy", "zh-CN", doc=doc))
    assert "王<b>大明</b>&" in text and "<table>1 & 2</table>" in text


def test_r_enr_10_rendering_is_deterministic_and_hash_is_stable(
    rendered: dict[tuple[str, str], bytes],
) -> None:
    again = render_pdf("e_policy", "zh-CN", doc=policy_context())
    assert again == rendered[("e_policy", "zh-CN")]
    assert sha256_hex(again) == sha256_hex(rendered[("e_policy", "zh-CN")])
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_hex(again + b" ") != sha256_hex(again)


def test_r_enr_10_render_refuses_a_wrong_context() -> None:
    with pytest.raises(TypeError):
        render_pdf("e_policy", "zh-CN", doc=voucher_context())
    with pytest.raises(KeyError):
        render_pdf("denial_notice", "zh-CN", doc=voucher_context())


def test_r_enr_10_long_policy_breaks_pages_with_numbered_footer() -> None:
    terms = tuple(f"第{n}条 " + "保险人按照本合同约定承担赔偿保险金责任。" * 4 for n in range(1, 40))
    data = render_pdf("e_policy", "zh-CN", doc=policy_context(key_terms=terms))
    pages = PdfReader(io.BytesIO(data)).pages
    assert len(pages) >= 2
    assert f"第 2 页 / 共 {len(pages)} 页" in pages[1].extract_text()
    assert pages[1].extract_text().count("第 2 页") == 1
    assert "7KQ4-M2XD" in pages[1].extract_text()  # the verification code is on every page


def test_font_is_shipped_with_its_license() -> None:
    path = font_path()
    assert path.parent == MESSAGES_DIR / "fonts"
    assert path.stat().st_size > 1_000_000
    license_text = (path.parent / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in license_text
    assert "Noto" in (path.parent / "README.md").read_text(encoding="utf-8")


async def test_r_enr_10_store_document_records_sha256_and_size(db, rendered) -> None:
    data = rendered[("e_policy", "zh-CN")]
    async with db.session() as session:
        document = await store_document(
            session=session, kind="e_policy", filename="PA2026360100000123.pdf", content=data
        )
        assert document.id is not None  # flushed
        await session.commit()
    async with db.session() as session:
        stored = (await session.exec(select(Document).where(Document.id == document.id))).one()
    assert stored.sha256 == sha256_hex(data) and len(stored.sha256) == 64
    assert stored.size == len(data)
    assert stored.content == data
    assert stored.content_type == "application/pdf"
    assert stored.kind == "e_policy" and stored.policy_id is None


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_r_enr_10_pdf_rasterises(rendered: dict[tuple[str, str], bytes], tmp_path: Path) -> None:
    source = tmp_path / "e_policy.pdf"
    source.write_bytes(rendered[("e_policy", "zh-CN")])
    subprocess.run(["pdftoppm", "-png", "-r", "30", str(source), str(tmp_path / "page")], check=True)
    assert list(tmp_path.glob("page*.png"))


@pytest.mark.parametrize("locale", LOCALES)
def test_pdf_context_shows_times_in_beijing_time(locale: str) -> None:
    """Issue 10 item 3: 2026-12-01 20:00 UTC is 2026-12-02 04:00 in Beijing, on the document too."""
    evening = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    assert documents.local(evening).strftime("%Y-%m-%d %H:%M") == "2026-12-02 04:00"
    html = render(
        "documents/e_policy",
        locale,
        local=documents.local,
        yuan=documents.yuan,
        doc=policy_context(locale, starts_at=evening),
    )
    expected = "2026年12月02日&nbsp;04:00" if locale == "zh-CN" else "2026-12-02 04:00"
    assert expected in html, html


# --- contacts and demo payments on every document (issue 10 items 7 and 13) ---------------------------

CONTACTS = Contacts(
    insurer_name="示例财产保险股份有限公司兰考支公司",
    hotline="95599-0000",
    office="兰考支公司，兰考县裕禄大道 1 号",
    office_phone="0371-2222-0000",
)


@pytest.fixture
def contacts() -> Iterator[Contacts]:
    configure(timezone=DEFAULT_TIMEZONE, contacts=CONTACTS)
    yield CONTACTS
    configure(timezone=DEFAULT_TIMEZONE)


def denial_context() -> DenialNoticeContext:
    return DenialNoticeContext(
        notice_number="DN2026000001",
        claim_number="CL2026000001",
        policy_number="PA2026360100000123",
        verification_code="AB12CD34EF56",
        insurer_name="示例财产保险股份有限公司江西分公司",
        insured_name="王大明",
        product_name_zh="水稻种植保险",
        product_name_en="Rice planting insurance",
        cause="fire",
        cause_label="火灾",
        loss_started_at=ISSUED,
        reported_at=ISSUED,
        lost_quantity="3",
        unit="mu",
        reasons=("not_covered",),
        issued_at=ISSUED,
    )


def document_html(name: str, locale: str, doc: Any) -> str:
    extra: dict[str, Any] = {"reason_keys": DENIAL_REASONS} if name == "denial_notice" else {}
    return render(f"documents/{name}", locale, local=documents.local, yuan=documents.yuan, doc=doc, **extra)


ALL_DOCUMENTS: dict[str, Callable[[str], Any]] = {**SAMPLES, "denial_notice": lambda locale: denial_context()}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_every_document_prints_the_insurers_contacts(name: str, locale: str, contacts: Contacts) -> None:
    html = document_html(name, locale, ALL_DOCUMENTS[name](locale))
    for value in (contacts.hotline, contacts.office, contacts.office_phone):
        assert value in html, f"{locale}/{name} lacks {value!r}"


@pytest.mark.parametrize("locale", LOCALES)
def test_documents_without_configured_contacts_point_to_the_chat(locale: str) -> None:
    html = document_html("e_policy", locale, policy_context(locale))
    assert ("可通过田保对话联系本公司" if locale == "zh-CN" else "through the Tianbao chat") in html


DEMO_BANNER = {"zh-CN": "演示支付，非真实保费", "en": "DEMO PAYMENT, NOT A REAL PREMIUM"}


@pytest.mark.parametrize("locale", LOCALES)
def test_documents_resting_on_a_demo_payment_say_so(locale: str) -> None:
    for name, make in (
        ("e_policy", policy_context),
        ("e_endorsement", lambda _l, **kw: endorsement_context(**kw)),
    ):
        assert DEMO_BANNER[locale] in document_html(name, locale, make(locale, demo_payment=True))
        assert DEMO_BANNER[locale] not in document_html(name, locale, make(locale))


async def test_a_demo_paid_policy_pdf_is_labelled_a_demo(
    farmer: ChatUser, api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    """On the embedded default the premium is a demo payment: the issued e-policy says so visibly."""
    policy = await insured_in_chat(farmer, api, service_headers)
    async with db.session() as session:
        query = select(Document).where(Document.policy_id == policy["id"], Document.kind == "e_policy")
        stored = (await session.exec(query)).one()
        issued = await session.get(Policy, policy["id"])
        assert issued is not None and await paid_by_demo(session, issued.application_id)
    assert DEMO_BANNER["zh-CN"] in pdf_text(stored.content)


async def test_an_endorsement_of_a_demo_paid_policy_is_labelled_a_demo(
    farmer: ChatUser,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    policy = await insured_in_chat(farmer, api, service_headers)
    headers = {**service_headers, "X-Tianbao-Identity": f"webchat:{farmer.chat_id}"}
    asked = await api.post(
        f"/api/bot/policies/{policy['id']}/endorsements",
        headers=headers,
        json={"field": "phone", "new_value": "13912345678"},
    )
    assert asked.status_code == 200, asked.text
    approved = await api.post(
        f"/api/endorsements/{asked.json()['id']}/approve", headers=admin_headers, json={"note": "同意"}
    )
    assert approved.status_code == 200, approved.text
    pdf = await api.get(f"/api/documents/{approved.json()['document_id']}", headers=admin_headers)
    assert DEMO_BANNER["zh-CN"] in pdf_text(pdf.content)


def _enterprise_policy_context() -> PolicyDocumentContext:
    """An enterprise's stored application and policy, as issuance fills the e-policy from them."""
    from types import SimpleNamespace

    from backend.enrollment.doc_contexts import policy_context as fill

    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    premium = {
        "kind": "liability",
        "employees": 20,
        "base_rate": "0.0015",
        "factor": "1.0",
        "factor_reason": "no_history",
        "per_person_fen": 15000,
        "total_fen": 300000,
        "limits_fen": {},
    }
    answers = {
        "company_name": "东莞市安达五金制品有限公司",
        "credit_code": "91350100M000100Y43",
        "legal_representative": "王五",
        "phone": "13912345678",
        "address": "广东省 东莞市 东城街道 东城大道88号",
        "bank_name": "工商银行",
        "account_name": "东莞市安达五金制品有限公司",
        "bank_account": "6222020200001234567",
    }
    application = SimpleNamespace(
        answers=answers,
        premium=premium,
        signer={"role": "insured"},
        disclosure_version="v1",
        disclosure_confirmed_at=now,
    )
    policy = SimpleNamespace(
        number="PL1",
        insured_name=answers["company_name"],
        quantity="20",
        starts_at=now,
        ends_at=now,
        issued_at=now,
        sum_insured_fen=0,
    )
    product = SimpleNamespace(name_zh="安全生产责任保险", name_en="Work-safety liability", unit="person")
    return fill(
        policy=policy,  # type: ignore[arg-type]
        application=application,  # type: ignore[arg-type]
        product=product,  # type: ignore[arg-type]
        location=["广东省", "东莞市", "东城街道"],
        insurer_name="示例保险",
        secret="s",
    )


def test_r_enr_10_enterprise_e_policy_names_its_corporate_account_representative_and_address_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    doc = _enterprise_policy_context()
    with caplog.at_level("ERROR", logger="fpdf.html"):
        zh = pdf_text(render_pdf("e_policy", "zh-CN", doc=doc))
        en = pdf_text(render_pdf("e_policy", "en", doc=doc))
    flat = zh.replace("\n", "").replace(" ", "")
    assert "对公账户" in flat and "银行卡" not in flat and "户名东莞市安达五金制品有限公司" in flat
    assert "本人" not in flat  # a company is not 本人
    assert "投保企业东莞市安达五金制品有限公司（法定代表人王五）确认" in flat
    assert flat.count("东城街道") == 1 and "东城大道88号" in flat  # the region path once, then the street
    assert "corporate account" in en and "legal representative" in en

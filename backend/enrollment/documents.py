"""Electronic documents (R-ENR-10): e-policy 电子保单, e-endorsement 电子批单, household voucher 分户凭证.

One unified template per document and locale, ``messages/<locale>/documents/<name>.html.j2``, renders the
HTML that fpdf2's ``write_html`` lays out on A4 with the embedded CJK font
(``messages/fonts/NotoSansSC-Tianbao.ttf``, a subset of Noto Sans CJK SC, SIL OFL 1.1). Every word of the
documents lives in the templates; this module only lays out pages, numbers them and stores the result::

    pdf = render_pdf("e_policy", locale, doc=PolicyDocumentContext(...))
    document = await store_document(session=session, kind="e_policy", filename=f"{number}.pdf",
                                    content=pdf, policy_id=policy.id)
    await session.commit()

Rendering parses the 7 MB font and takes about a second of CPU: from async code call it as
``await asyncio.to_thread(render_pdf, ...)``. The same context renders to the same bytes (the creation
date is the document's issue time), so a document can be re-rendered and checked against its SHA-256.

Template context
----------------

Every template gets ``doc`` (the dataclass below for that template), ``locale``, and two helpers:
``local(dt)`` (an aware or UTC-naive datetime in the people's zone, ``TIANBAO_TIMEZONE``) and
``yuan(fen)`` (a ``Decimal`` of yuan, for the ``money`` filter). Personal numbers reach templates only
masked (R-PUB-4): ``doc.id_number_masked`` (first 4 + last 4), ``doc.phone_masked`` (138****5678),
``doc.bank.account_masked`` (first 4 + last 4); the full values stay in the dataclass, never in the PDF.

``e_policy`` -> :class:`PolicyDocumentContext`
    policy_number, verification_code, insurer_name, product_name_zh, product_name_en,
    insured_name, id_type (``resident_id`` | ``credit_code`` | ``organisation_code``), id_number, phone,
    subject_name_zh, subject_name_en, quantity (decimal text), unit (``mu`` | ``head`` | ``bird`` |
    ``m2`` | ``person``), location (names from province to village), place_name (习惯小地名),
    starts_at, ends_at, sum_insured_fen,
    premium: :class:`AgriculturalPremium` (total, central, provincial, county, farmer shares in fen) or
    :class:`LiabilityPremium` (industry, employees, base rate, floating factor and its reason, premium
    per person and total, limits in fen keyed like ``death_disability_per_person_fen``),
    disclosure_version, disclosure_confirmed_at, signer: :class:`Signer` (``insured`` | ``relative``
    with relation ``parent`` | ``child`` | ``spouse`` | ``authorised`` with the authorisation's
    reference), issued_at; optional: ear_tags, bank: :class:`BankAccount`, key_terms (summary lines,
    already in the document's language), policyholder_name (collective enrollment: the organiser that
    enrolled the households, R-ENR-1), demo_payment (the premium was paid with the demo provider: the
    document says so visibly, issue 10 item 13).
``e_endorsement`` -> :class:`EndorsementDocumentContext`
    endorsement_number, policy_number, verification_code, insurer_name, product_name_zh,
    product_name_en, insured_name, field (``bank_account`` | ``phone`` | ``quantity`` | ``location`` |
    ``contact``), old_value, new_value (shown through ``old_display`` / ``new_display``: masked for bank
    account and phone), requested_at, approved_at, approved_by, effective_at, issued_at; optional: unit
    (quantity changes), bank_name_old, bank_name_new, premium_change_fen (+ due, - refunded), reason,
    decision_note, demo_payment (the policy's premium was a demo payment).
``household_voucher`` -> :class:`HouseholdVoucherContext`
    voucher_number, policy_number, verification_code, insurer_name, product_name_zh, product_name_en,
    policyholder_name, household_name, id_number, subject_name_zh, subject_name_en, quantity, unit,
    location, sum_insured_fen, premium_total_fen, farmer_fen (the household's own share), starts_at,
    ends_at, issued_at; optional: place_name, bank.

Every template may also use the ``contacts`` and ``contact_line(locale)`` globals of ``messages``
(``TIANBAO_INSURER_*``): each document prints the insurer's contacts.

``documents/_footer`` renders each page's footer line (document title, number, verification code, page
``page`` of ``pages``); ``render_pdf`` fills it.

Writing templates: stay inside fpdf2's ``write_html`` subset (h1-h3, p with ``align`` and ``line-height``,
b, br, ol/ul/li, table/tr/th/td with ``width`` on the first row, ``colspan``, ``bgcolor``, ``align``). A
table cell holds plain text only: ``<td><b>x</b></td>`` works, ``<td><b>x</b> y</td>`` raises
NotImplementedError. Chinese paragraphs wrap at any character but a normal space is also a break point,
so keep spaces out of Chinese sentences and join a date to its time with ``&nbsp;``. The first ``<h1>``
is the PDF's title and the footer's document name.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fpdf import FPDF
from fpdf.enums import Align
from fpdf.fonts import FontFace, TextStyle
from fpdf.html import HTML2FPDF
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.enrollment.models import Document
from backend.enrollment.validation import mask_id_number
from backend.files import clean_filename
from messages import mask_phone, normalize_locale, render, to_local

__all__ = [
    "DOCUMENT_CONTEXTS",
    "FONT_FAMILY",
    "AgriculturalPremium",
    "BankAccount",
    "EndorsementDocumentContext",
    "HouseholdVoucherContext",
    "LiabilityPremium",
    "PolicyDocumentContext",
    "Signer",
    "font_path",
    "render_pdf",
    "sha256_hex",
    "store_document",
]

FONT_FILE = "NotoSansSC-Tianbao.ttf"
FONT_FAMILY = "tianbao"
PDF_CONTENT_TYPE = "application/pdf"

IdType = Literal["resident_id", "credit_code", "organisation_code"]
Unit = Literal["mu", "head", "bird", "m2", "person"]
SignerKind = Literal["insured", "relative", "authorised"]
EndorsedField = Literal["bank_account", "phone", "quantity", "location", "contact"]


# --- contexts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """Who confirmed the disclosure and signed (R-ENR-4, R-ENR-5)."""

    kind: SignerKind
    name: str
    relation: Literal["parent", "child", "spouse"] | None = None  # kind == "relative"
    authorisation_ref: str | None = None  # kind == "authorised": the kept authorisation's reference
    representative: str | None = None  # an enterprise confirming as the insured: its legal representative

    def __post_init__(self) -> None:
        if self.kind == "relative" and self.relation is None:
            raise ValueError("a relative signer needs the relation")
        if self.kind == "authorised" and not self.authorisation_ref:
            raise ValueError("an authorised signer needs the authorisation's reference")


@dataclass(frozen=True)
class BankAccount:
    bank_name: str
    account_number: str
    account_kind: Literal["card", "one_card", "passbook", "corporate"] = "card"  # 银行卡/一卡通/存折/对公账户
    account_name: str | None = None  # 户名: printed for a corporate account (it must be the company's)

    @property
    def account_masked(self) -> str:
        return mask_id_number(self.account_number)


@dataclass(frozen=True)
class AgriculturalPremium:
    """The premium and its shares in fen, as ``Application.premium`` stores them."""

    total_fen: int
    central_fen: int
    provincial_fen: int
    county_fen: int
    farmer_fen: int

    def __post_init__(self) -> None:
        if self.central_fen + self.provincial_fen + self.county_fen + self.farmer_fen != self.total_fen:
            raise ValueError("premium shares do not add up to the total")

    @property
    def kind(self) -> str:
        return "agricultural"


@dataclass(frozen=True)
class LiabilityPremium:
    """Work-safety liability: base rate (R-LIA-1) x floating factor (R-LIA-2) per employee."""

    industry_name_zh: str
    industry_name_en: str
    employees: int
    base_rate: str  # decimal text, e.g. "0.0030"
    factor: str  # decimal text, e.g. "0.9"
    factor_reason: Literal["accident_free", "one_accident", "several_accidents", "no_history"]
    premium_per_person_fen: int
    total_fen: int
    limits_fen: Mapping[str, int] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "liability"


@dataclass(frozen=True)
class CollectiveTerms:
    """A collective policy's own facts (R-ENR-1, R-ENR-2): the insureds are the households of the list,
    each with its voucher; the organiser confirmed the list with its stamp."""

    households: int
    organiser_kind: str  # village_committee | organisation
    confirmed_by_name: str
    confirmed_by_title: str
    confirmed_at: datetime
    list_filename: str
    list_sha256: str


@dataclass(frozen=True)
class PolicyDocumentContext:
    policy_number: str
    verification_code: str
    insurer_name: str
    product_name_zh: str
    product_name_en: str
    insured_name: str
    id_type: IdType
    id_number: str
    phone: str
    subject_name_zh: str
    subject_name_en: str
    quantity: str
    unit: Unit
    location: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    sum_insured_fen: int
    premium: AgriculturalPremium | LiabilityPremium
    disclosure_version: str
    disclosure_confirmed_at: datetime
    signer: Signer
    issued_at: datetime
    place_name: str = ""
    ear_tags: tuple[str, ...] = ()
    bank: BankAccount | None = None
    key_terms: tuple[str, ...] = ()
    policyholder_name: str | None = None
    demo_payment: bool = False
    collective: CollectiveTerms | None = None

    @property
    def document_number(self) -> str:
        return self.policy_number

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number)

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)

    @property
    def is_liability(self) -> bool:
        return isinstance(self.premium, LiabilityPremium)


@dataclass(frozen=True)
class EndorsementDocumentContext:
    endorsement_number: str
    policy_number: str
    verification_code: str
    insurer_name: str
    product_name_zh: str
    product_name_en: str
    insured_name: str
    field: EndorsedField
    old_value: str
    new_value: str
    requested_at: datetime
    approved_at: datetime
    approved_by: str
    effective_at: datetime
    issued_at: datetime
    unit: Unit | None = None
    bank_name_old: str | None = None
    bank_name_new: str | None = None
    premium_change_fen: int | None = None
    reason: str = ""
    decision_note: str = ""
    demo_payment: bool = False

    @property
    def document_number(self) -> str:
        return self.endorsement_number

    def _display(self, value: str) -> str:
        if self.field == "bank_account":
            return mask_id_number(value)
        if self.field == "phone":
            return mask_phone(value)
        return value

    @property
    def old_display(self) -> str:
        return self._display(self.old_value)

    @property
    def new_display(self) -> str:
        return self._display(self.new_value)


@dataclass(frozen=True)
class HouseholdVoucherContext:
    voucher_number: str
    policy_number: str
    verification_code: str
    insurer_name: str
    product_name_zh: str
    product_name_en: str
    policyholder_name: str
    household_name: str
    id_number: str
    subject_name_zh: str
    subject_name_en: str
    quantity: str
    unit: Unit
    location: tuple[str, ...]
    sum_insured_fen: int
    premium_total_fen: int
    farmer_fen: int
    starts_at: datetime
    ends_at: datetime
    issued_at: datetime
    place_name: str = ""
    bank: BankAccount | None = None

    @property
    def document_number(self) -> str:
        return self.voucher_number

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number)


DocumentContext = PolicyDocumentContext | EndorsementDocumentContext | HouseholdVoucherContext

DOCUMENT_CONTEXTS: dict[str, type[DocumentContext]] = {
    "e_policy": PolicyDocumentContext,
    "e_endorsement": EndorsementDocumentContext,
    "household_voucher": HouseholdVoucherContext,
}


# --- rendering --------------------------------------------------------------------------------------------


# The templates' ``local(dt)``: a timestamp in the people's zone (TIANBAO_TIMEZONE); naive means UTC.
local = to_local


def yuan(fen: int) -> Decimal:
    return Decimal(fen) / 100


@lru_cache(maxsize=1)
def font_path() -> Path:
    """The bundled font, found through the installed ``messages`` package."""
    resource = resources.files("messages").joinpath("fonts", FONT_FILE)
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(f"font {FONT_FILE} is not installed with the messages package")
    return path


PAGE_MARGIN_MM = 16
FOOTER_HEIGHT_MM = 14
BODY_SIZE_PT = 9.5
TABLE_GAP_MM = 1.0
TEXT_COLOR = (34, 34, 34)
ACCENT = "#1F3A5F"
TAG_STYLES: dict[str, FontFace] = {
    "h1": TextStyle(font_size_pt=18, color=ACCENT, t_margin=1, b_margin=1.5, l_margin=Align.C),
    "h2": TextStyle(font_size_pt=11.5, color=ACCENT, t_margin=2.5, b_margin=0.5),
    "h3": TextStyle(font_size_pt=10.5, color="#555555", t_margin=0, b_margin=0, l_margin=Align.C),
    "li": TextStyle(l_margin=4, t_margin=1),
    "ul": TextStyle(t_margin=1),
    "ol": TextStyle(t_margin=0),
    "b": FontFace(emphasis="BOLD", color="#000000"),
    "font": FontFace(),
}
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
# Template line breaks between two tags would become blank lines in write_html; spaces on a line stay.
_BETWEEN_LINES = re.compile(r">[ \t]*\n\s*<")


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", fragment)).split())


class _DocumentHTML(HTML2FPDF):
    """fpdf2's HTML renderer with a smaller gap around tables (it adds a full blank line on each side).

    Only ``<table>`` start and end call ``_ln()`` without a height (``<li>`` passes its top margin).
    """

    def _ln(self, h: float | None = None) -> None:
        super()._ln(TABLE_GAP_MM if h is None else h)


class _DocumentPDF(FPDF):
    HTML2FPDF_CLASS = _DocumentHTML

    def __init__(self, footer_text: Callable[[int], str]) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-FOOTER_HEIGHT_MM + 2)
        self.set_draw_color(170, 170, 170)
        self.set_line_width(0.2)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.set_y(self.get_y() + 1.5)
        self.set_font(FONT_FAMILY, size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, self._footer_text(self.page_no()), align="C")


def render_pdf(name: str, locale: str, **ctx: Any) -> bytes:
    """Render ``documents/<name>`` in ``locale`` to an A4 PDF with the embedded CJK font.

    ``ctx`` must hold ``doc``, an instance of ``DOCUMENT_CONTEXTS[name]``; further keys reach the template.
    """
    expected = DOCUMENT_CONTEXTS.get(name)
    if expected is None:
        raise KeyError(f"unknown document {name!r}; known: {sorted(DOCUMENT_CONTEXTS)}")
    doc = ctx.get("doc")
    if not isinstance(doc, expected):
        raise TypeError(f"documents/{name} needs doc={expected.__name__}, got {type(doc).__name__}")
    loc = normalize_locale(locale)
    body = _BETWEEN_LINES.sub("><", render(f"documents/{name}", loc, local=local, yuan=yuan, **ctx))
    heading = _H1.search(body)
    title = _plain(heading.group(1)) if heading else name

    def footer_text(page: int) -> str:
        text = render("documents/_footer", loc, doc=doc, title=title, page=page, pages="{nb}")
        return _plain(text)

    pdf = _DocumentPDF(footer_text)
    pdf.set_margins(PAGE_MARGIN_MM, PAGE_MARGIN_MM - 4, PAGE_MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=FOOTER_HEIGHT_MM + 4)
    font = str(font_path())
    pdf.add_font(FONT_FAMILY, "", font)
    pdf.add_font(FONT_FAMILY, "B", font)  # no bold face is bundled: bold text uses the same outlines
    pdf.set_title(title)
    pdf.set_subject(f"{title} {doc.document_number}")
    pdf.set_author(doc.insurer_name)
    pdf.set_creator("Tianbao")
    pdf.set_lang(loc)
    pdf.set_creation_date(local(doc.issued_at))
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=BODY_SIZE_PT)
    pdf.set_text_color(*TEXT_COLOR)
    pdf.set_draw_color(150, 150, 150)
    pdf.set_line_width(0.2)
    pdf.write_html(
        body,
        tag_styles=TAG_STYLES,
        table_line_separators=True,
        li_prefix_color=ACCENT,
        ul_bullet_char="•",
        font_family=FONT_FAMILY,
    )
    return bytes(pdf.output())


# --- storage ----------------------------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def store_document(
    *,
    session: AsyncSession,
    kind: str,
    filename: str,
    content: bytes,
    content_type: str = PDF_CONTENT_TYPE,
    policy_id: int | None = None,
    application_id: int | None = None,
    endorsement_id: int | None = None,
    person_id: int | None = None,
    uploaded_by_staff_id: int | None = None,
) -> Document:
    """Add a Document row (with SHA-256 and size) to the caller's transaction and flush; caller commits."""
    document = Document(
        kind=kind,
        policy_id=policy_id,
        application_id=application_id,
        endorsement_id=endorsement_id,
        person_id=person_id,
        uploaded_by_staff_id=uploaded_by_staff_id,
        # Uploads name their own files: no directories, no control characters, a bounded length.
        filename=clean_filename(filename),
        content_type=content_type,
        sha256=sha256_hex(content),
        size=len(content),
        content=content,
    )
    session.add(document)
    await session.flush()
    return document

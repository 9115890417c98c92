"""The denial notice 拒赔通知书 (R-CLM-10): a PDF with the claim, the policy, the insured, the reasons, the
date and the insurer, rendered from ``messages/<locale>/documents/denial_notice.html.j2``.

``backend.enrollment.documents.render_pdf`` only renders the documents it lists (``DOCUMENT_CONTEXTS``), so
this module lays out the page itself with the same machinery (page class, font, tag styles, footer), rather
than adding a name to that module's table at import time (which would make its tests depend on import
order). Every word of the notice lives in the template; reasons are keys of :data:`DENIAL_REASONS` (the
template has their text) or free text written by the adjuster, shown as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.enrollment import documents
from messages import normalize_locale, render

DOCUMENT_NAME = "denial_notice"

# Reason keys with a standard wording in the template; anything else is free text.
DENIAL_REASONS: tuple[str, ...] = (
    "not_covered",  # the cause is not a covered peril
    "excluded_cause",  # an exclusion of the policy applies
    "outside_policy_period",
    "no_disposal_proof",  # R-CLM-7: dead animals without proof of harmless disposal
    "not_insured_subject",
    "false_report",  # the report does not match what the survey found
)


@dataclass(frozen=True)
class DenialNoticeContext:
    """What ``documents/denial_notice`` shows; the attributes ``documents/_footer`` needs included."""

    notice_number: str
    claim_number: str
    policy_number: str
    verification_code: str
    insurer_name: str
    insured_name: str
    product_name_zh: str
    product_name_en: str
    cause: str  # the cause key
    cause_label: str  # the cause in the document's language
    loss_started_at: datetime
    reported_at: datetime
    lost_quantity: str
    unit: str  # mu | head | bird | m2 | person
    reasons: tuple[str, ...]
    issued_at: datetime
    location: tuple[str, ...] = ()
    place_name: str = ""
    surveyed_at: datetime | None = None

    @property
    def document_number(self) -> str:
        return self.notice_number


def render_denial_pdf(locale: str, doc: DenialNoticeContext, **ctx: Any) -> bytes:
    """Render the notice to an A4 PDF with the embedded CJK font (about a second of CPU: use a thread)."""
    loc = normalize_locale(locale)
    html = render(
        f"documents/{DOCUMENT_NAME}",
        loc,
        doc=doc,
        local=documents.local,
        yuan=documents.yuan,
        reason_keys=DENIAL_REASONS,
        **ctx,
    )
    body = documents._BETWEEN_LINES.sub("><", html)
    heading = documents._H1.search(body)
    title = documents._plain(heading.group(1)) if heading else DOCUMENT_NAME

    def footer_text(page: int) -> str:
        text = render("documents/_footer", loc, doc=doc, title=title, page=page, pages="{nb}")
        return documents._plain(text)

    pdf = documents._DocumentPDF(footer_text)
    pdf.set_margins(documents.PAGE_MARGIN_MM, documents.PAGE_MARGIN_MM - 4, documents.PAGE_MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=documents.FOOTER_HEIGHT_MM + 4)
    font = str(documents.font_path())
    pdf.add_font(documents.FONT_FAMILY, "", font)
    pdf.add_font(documents.FONT_FAMILY, "B", font)  # no bold face is bundled
    pdf.set_title(title)
    pdf.set_subject(f"{title} {doc.document_number}")
    pdf.set_author(doc.insurer_name)
    pdf.set_creator("Tianbao")
    pdf.set_lang(loc)
    pdf.set_creation_date(documents.local(doc.issued_at))
    pdf.add_page()
    pdf.set_font(documents.FONT_FAMILY, size=documents.BODY_SIZE_PT)
    pdf.set_text_color(*documents.TEXT_COLOR)
    pdf.set_draw_color(150, 150, 150)
    pdf.set_line_width(0.2)
    pdf.write_html(
        body,
        tag_styles=documents.TAG_STYLES,
        table_line_separators=True,
        li_prefix_color=documents.ACCENT,
        ul_bullet_char="•",
        font_family=documents.FONT_FAMILY,
    )
    return bytes(pdf.output())

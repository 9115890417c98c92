"""The hazard inspection report (隐患排查报告, R-LIA-5): one unified template per locale,
``messages/<locale>/inspections/report_pdf.html.j2``, laid out by fpdf2 on A4 with the bundled CJK font (as
the other documents are). Every word is in the template; this module builds its context and the pages.

Template context ``r`` (:class:`ReportView`): number, policy_number, enterprise_name, credit_code,
address, industry_code, inspector, inspected_at, due_at, summary, insurer_name, hazards (``[{"n",
"description", "severity", "advice", "rectify_by"}]``), counts (severity -> number).
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fpdf import FPDF
from PIL import Image

from backend.enrollment.documents import FONT_FAMILY, font_path
from backend.inspections.models import Inspection, InspectionHazard
from backend.numbers import business_number
from backend.people.models import Enterprise
from messages import label, normalize_locale, render, to_local

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportView:
    id: int
    number: str
    policy_number: str
    enterprise_name: str
    credit_code: str
    address: str
    industry_code: str
    inspector: str
    inspected_at: datetime
    due_at: datetime
    summary: str
    insurer_name: str
    hazards: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    photos: list[tuple[int, bytes]] = field(default_factory=list)  # (hazard number, the photo's bytes)


def report_number(inspection: Inspection) -> str:
    return business_number("YH", inspection.id, inspection.completed_at or inspection.created_at)


def report_view(
    inspection: Inspection,
    *,
    policy_number: str,
    enterprise: Enterprise | None,
    enterprise_name: str,
    inspector: str,
    hazards: Sequence[InspectionHazard],
    insurer_name: str,
    photos: dict[int, bytes] | None = None,
) -> ReportView:
    rows = [
        {
            "n": n,
            "id": h.id,
            "description": h.description,
            "severity": h.severity,
            "advice": h.advice,
            "rectify_by": h.rectify_by,
            "status": h.status,
        }
        for n, h in enumerate(hazards, start=1)
    ]
    return ReportView(
        id=inspection.id or 0,
        number=report_number(inspection),
        policy_number=policy_number,
        enterprise_name=enterprise_name,
        credit_code=enterprise.credit_code if enterprise else "",
        address=enterprise.address if enterprise else "",
        industry_code=enterprise.industry_code if enterprise else "",
        inspector=inspector,
        inspected_at=inspection.completed_at or inspection.updated_at,
        due_at=inspection.due_at,
        summary=inspection.summary or "",
        insurer_name=insurer_name,
        hazards=rows,
        counts=dict(Counter(h.severity for h in hazards)),
        photos=[
            (n, (photos or {})[h.id or 0])
            for n, h in enumerate(hazards, start=1)
            if (h.id or 0) in (photos or {})
        ],
    )


def report_pdf(view: ReportView, locale: str) -> bytes:
    """A4 portrait: the enterprise, the inspection, each hazard with its rectification advice and
    deadline, and the conclusion. The same view renders to the same bytes (creation date fixed)."""
    loc = normalize_locale(locale)
    body = render("inspections/report_pdf", loc, r=view, local=to_local).replace("\n", "")
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(16, 12, 16)
    pdf.set_auto_page_break(auto=True, margin=16)
    font = str(font_path())
    pdf.add_font(FONT_FAMILY, "", font)
    pdf.add_font(FONT_FAMILY, "B", font)
    pdf.set_title(view.number)
    pdf.set_author(view.insurer_name)
    pdf.set_creator("Tianbao")
    pdf.set_lang(loc)
    pdf.set_creation_date(to_local(view.inspected_at))
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=10)
    pdf.write_html(body, font_family=FONT_FAMILY, table_line_separators=True)
    _photos(pdf, view, loc)
    return bytes(pdf.output())


PHOTO_MM = 80.0


def _photos(pdf: FPDF, view: ReportView, locale: str) -> None:
    """The hazards' photos after the text, each with its number; a photo fpdf2 cannot embed is left out
    (it was checked as an image when uploaded, and stays in the staff API)."""
    if not view.photos:
        return
    pdf.ln(4)
    pdf.set_font(FONT_FAMILY, size=11.5)
    pdf.cell(0, 7, label("inspections.pdf_photos", locale), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=9)
    for number, data in view.photos:
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
            tall = PHOTO_MM * height / width if width else PHOTO_MM
            if pdf.get_y() + tall + 8 > pdf.h - pdf.b_margin:
                pdf.add_page()
            pdf.cell(
                0, 6, label("inspections.pdf_photo_caption", locale, n=number), new_x="LMARGIN", new_y="NEXT"
            )
            pdf.image(io.BytesIO(data), w=PHOTO_MM, h=tall)
            pdf.ln(2)
        except (OSError, ValueError, RuntimeError):
            log.warning("hazard photo %s of report %s not embedded", number, view.number)


def authority_summary(view: ReportView) -> dict[str, Any]:
    """What the safety authority receives beside the PDF: the enterprise by its credit code, the
    inspection and each hazard (no personal numbers: the enterprise's phone stays with the insurer)."""
    return {
        "report_number": view.number,
        "inspection_id": view.id,
        "policy_number": view.policy_number,
        "enterprise": {
            "name": view.enterprise_name,
            "credit_code": view.credit_code,
            "address": view.address,
            "industry_code": view.industry_code,
        },
        "inspector": view.inspector,
        "inspected_at": view.inspected_at.isoformat(),
        "summary": view.summary,
        "hazard_counts": view.counts,
        "hazards": [
            {
                "description": h["description"],
                "severity": h["severity"],
                "advice": h["advice"],
                "rectify_by": h["rectify_by"].isoformat(),
                "status": h["status"],
            }
            for h in view.hazards
        ],
    }

"""How a notice is shown: the public page (HTML), the PDF for the notice board (with a QR code that
opens the notice in web chat) and the chat text. Every word is a template in
``messages/<locale>/publicity/``; the values are the notice's rows, masked when they were built
(``sources.published_row``). What is rendered here at publication is what the archive keeps.

Template context ``n`` (:class:`NoticeView`): number, kind, region_name, version, opened_at,
closes_at, open_hours, checked_by_name, checked_at, columns (names; headers are ``publicity.col_<name>``
labels), rows (``[{"index", "fields", "own"}]``), chat_url (the QR's target), page_url, insurer_name.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import segno
from fpdf import FPDF

from backend.enrollment.documents import FONT_FAMILY, font_path
from backend.publicity.models import PublicityNotice
from backend.publicity.schemas import START_PREFIX
from backend.publicity.sources import columns_of
from messages import normalize_locale, render, to_local

QR_MM = 34


@dataclass(frozen=True)
class NoticeView:
    id: int
    number: str
    kind: str
    status: str
    region_name: str
    version: int
    opened_at: datetime | None
    closes_at: datetime | None
    open_hours: int
    checked_by_name: str | None
    checked_at: datetime | None
    columns: list[str]
    rows: list[dict[str, Any]]
    chat_url: str
    page_url: str
    insurer_name: str
    own_rows: list[int] = field(default_factory=list)


def notice_view(
    notice: PublicityNotice,
    *,
    public_url: str,
    open_hours: int,
    insurer_name: str,
    own: set[int] | None = None,
) -> NoticeView:
    """The notice for a template; ``own`` holds the person ids whose rows are the viewer's."""
    mine = own or set()
    rows = [
        {"index": index, "fields": row["fields"], "own": row.get("person_id") in mine}
        for index, row in enumerate(notice.rows)
    ]
    base = public_url.rstrip("/")
    return NoticeView(
        id=notice.id or 0,
        number=notice.number,
        kind=notice.kind,
        status=notice.status,
        region_name=notice.region_name,
        version=notice.version,
        opened_at=notice.opened_at,
        closes_at=notice.closes_at,
        open_hours=open_hours,
        checked_by_name=notice.checked_by_name,
        checked_at=notice.checked_at,
        columns=columns_of(notice.kind),
        rows=rows,
        chat_url=f"{base}/chat?start={START_PREFIX}{notice.public_token}",
        page_url=f"{base}/p/{notice.public_token}",
        insurer_name=insurer_name,
        own_rows=[row["index"] for row in rows if row["own"]],
    )


def page_html(view: NoticeView, locale: str) -> str:
    return render("publicity/page", normalize_locale(locale), n=view, local=to_local)


def qr_png(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=8, border=2)
    return out.getvalue()


def notice_pdf(view: NoticeView, locale: str) -> bytes:
    """A4 landscape for the board: the notice's table, then the QR code that opens it in web chat."""
    loc = normalize_locale(locale)
    body = render("publicity/notice_pdf", loc, n=view, local=to_local).replace("\n", "")
    pdf = FPDF(orientation="landscape", unit="mm", format="A4")
    pdf.set_margins(12, 10, 12)
    pdf.set_auto_page_break(auto=True, margin=12)
    font = str(font_path())
    pdf.add_font(FONT_FAMILY, "", font)
    pdf.add_font(FONT_FAMILY, "B", font)
    pdf.set_title(view.number)
    pdf.set_creator("Tianbao")
    pdf.set_lang(loc)
    if view.opened_at is not None:
        pdf.set_creation_date(to_local(view.opened_at))  # the same notice renders to the same bytes
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=9)
    pdf.write_html(body, font_family=FONT_FAMILY, table_line_separators=True)
    if pdf.get_y() + QR_MM + 12 > pdf.h - 12:
        pdf.add_page()
    top = pdf.get_y() + 4
    pdf.image(io.BytesIO(qr_png(view.chat_url)), x=pdf.l_margin, y=top, w=QR_MM, h=QR_MM)
    pdf.set_xy(pdf.l_margin + QR_MM + 4, top + 4)
    pdf.multi_cell(0, 6, render("publicity/pdf_qr_caption", loc, ext="txt", n=view))
    return bytes(pdf.output())

"""The household list as a file: reading XLSX (python-calamine, chosen for speed) and CSV (UTF-8 with or
without BOM, or GB18030 as Chinese Excel writes it), the downloadable template, and the error report with
the reasons in an extra column (openpyxl). Headers are read in either language; written in the user's."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from python_calamine import CalamineWorkbook

from backend.refusals import Refusal
from messages import label

# The list's columns, in the template's order (R-ENR-2 fields of a household).
COLUMNS: tuple[str, ...] = (
    "name",
    "id_number",
    "phone",
    "subject",
    "quantity",
    "village",
    "place_name",
    "ear_tags",
    "bank_name",
    "bank_account",
)
# Optional columns may be left out of the file; the others must be there (ear tags are checked per product).
OPTIONAL_COLUMNS = frozenset({"place_name", "ear_tags", "phone"})
LOCALES = ("zh-CN", "en")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old .xls format, which calamine reads too
_UTF8_BOM = b"\xef\xbb\xbf"


class SheetError(Refusal):
    """A file that is no household list at all (not a table, no header row)."""


@dataclass(frozen=True)
class Table:
    """A read list: which column holds each field, and the data rows with their line numbers (header = 1)."""

    columns: dict[str, int]
    headers: list[str]
    rows: list[tuple[int, list[str]]]

    @property
    def positions(self) -> list[tuple[str, int]]:
        """(field, column index) of every field, the missing ones at an index no row has."""
        return [(column, self.columns.get(column, 1 << 30)) for column in COLUMNS]


def _header_key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


def _header_index() -> dict[str, str]:
    """Every header text either language uses (and the field names themselves) -> field."""
    index = {_header_key(column): column for column in COLUMNS}
    for locale in LOCALES:
        for column in COLUMNS:
            index[_header_key(label(f"collective.column_{column}", locale))] = column
    return index


def header_text(column: str, locale: str) -> str:
    return label(f"collective.column_{column}", locale)


def _cell_text(value: Any) -> str:
    """A cell as the text a person typed: whole numbers without ``.0`` (Excel stores digits as floats)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def read_table(data: bytes) -> Table:
    """Read an XLSX/XLS or CSV household list; the format is told by its bytes, not by its name."""
    workbook = data.startswith(_ZIP_MAGIC) or data.startswith(_OLE_MAGIC)
    return _table(_xlsx_rows(data) if workbook else _csv_rows(data))


# A household list is at most a township's households (a few tens of thousands); the limits keep a sheet
# with a stray far-away cell from being read as a grid of millions of empty cells.
MAX_ROWS = 300_001
MAX_COLUMNS = 200


def _xlsx_rows(data: bytes) -> list[list[Any]]:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet = workbook.get_sheet_by_index(0)
        too_big = sheet.total_height > MAX_ROWS or sheet.total_width > MAX_COLUMNS
    except Exception as exc:  # calamine raises its own errors for any unreadable workbook
        raise SheetError("list_unreadable") from exc
    if too_big:  # one cell far away would make a grid of millions of empty cells
        raise SheetError("list_too_large", rows=str(MAX_ROWS), columns=str(MAX_COLUMNS))
    try:
        return list(sheet.to_python(skip_empty_area=False))
    except Exception as exc:
        raise SheetError("list_unreadable") from exc


def decode_csv(data: bytes) -> str:
    """UTF-8 (a BOM is dropped) when the bytes are UTF-8; otherwise GB18030, what Chinese Excel saves
    as "CSV". Valid GB18030 that is also valid UTF-8 is read as UTF-8: a GBK text of any length is
    almost never valid UTF-8 by chance."""
    if data.startswith(_UTF8_BOM):
        return data[len(_UTF8_BOM) :].decode("utf-8", errors="strict")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise SheetError("list_unreadable") from exc


def _csv_rows(data: bytes) -> list[list[Any]]:
    text = decode_csv(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        return [list(row) for row in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as exc:  # a field past the reader's limit (128 KB), a stray NUL: no list of ours
        raise SheetError("list_unreadable") from exc


def _table(raw: list[list[Any]]) -> Table:
    index = _header_index()
    for position, row in enumerate(raw):
        texts = [_cell_text(value) for value in row]
        if not any(texts):
            continue
        columns: dict[str, int] = {}
        for at, text in enumerate(texts):
            field = index.get(_header_key(text)) if text else None
            if field is not None and field not in columns:
                columns[field] = at
        if not columns:
            raise SheetError("list_no_header")
        rows = []
        for line, values in enumerate(raw[position + 1 :], start=position + 2):
            # Most rows are all text (CSV always, XLSX text cells): str.strip over the row in C; a row
            # with a number or a date in it is converted cell by cell.
            try:
                cells = list(map(str.strip, values))
            except TypeError:
                cells = [_cell_text(value) for value in values]
            if any(cells):
                rows.append((line, cells))
        return Table(columns=columns, headers=texts, rows=rows)
    raise SheetError("list_empty")


# --- writing ---------------------------------------------------------------------------------------------


def _workbook(title: str) -> tuple[Workbook, Any]:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    return workbook, sheet


def _save(workbook: Workbook) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def template_xlsx(locale: str, example: dict[str, str]) -> bytes:
    """The list template: the headers in ``locale`` and one example row (cells typed as text, so Excel
    keeps the 18 digits of an ID number and leading zeros)."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = label("collective.template_sheet", locale)[:31]
    sheet.append([header_text(column, locale) for column in COLUMNS])
    sheet.append([example.get(column, "") for column in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for position in range(1, len(COLUMNS) + 1):
        letter = sheet.cell(row=1, column=position).column_letter
        sheet.column_dimensions[letter].width = 22
        for row in range(2, 1002):  # text format for the rows people fill in below the example
            sheet.cell(row=row, column=position).number_format = "@"
    return _save(workbook)


def report_xlsx(
    locale: str,
    headers: Sequence[str],
    rows: Iterable[tuple[int, Sequence[str]]],
    reasons: dict[int, list[str]],
) -> bytes:
    """The uploaded list again, each row with its line and the reasons it was refused in an extra column."""
    workbook, sheet = _workbook(label("collective.template_sheet", locale))
    sheet.append(
        [label("collective.column_line", locale), *headers, label("collective.column_reason", locale)]
    )
    if 1 in reasons:  # header problems (a missing column) are reported on line 1
        sheet.append([1, *headers, "；".join(reasons[1])])
    for line, cells in rows:
        sheet.append([line, *cells, "；".join(reasons.get(line, []))])
    return _save(workbook)

"""Administrative divisions (R-ENR-12): loading the statistical list, importing villages, and lookups.

Every code stored is the canonical 12-digit statistical code (the short code right-padded with zeros).
Callers may pass short forms (2/4/6/9 digits); they are normalised with ``canonical_code``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, case, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import Database
from backend.regions.models import Region, RegionLevel
from backend.regions.schemas import RejectedVillage, RejectReason, VillageImportReport
from backend.security import StaffPrincipal, significant_prefix
from backend.staff.service import record_audit

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "regions"
CODE_LENGTH = 12
SHORT_CODE_LENGTHS = (2, 4, 6, 9, 12)
TOWNSHIP_PREFIX_LENGTH = 9
COUNTY_PREFIX_LENGTH = 6
NAME_MAX_LENGTH = 100
ROOT = "root"
SEARCH_MAX_LIMIT = 100
# Multi-row inserts in chunks: one statement per row would make a fresh install take minutes.
INSERT_BATCH_SIZE = 5000
# Old SQLite builds allow 999 bound parameters per statement; IN (...) lookups stay below that.
LOOKUP_BATCH_SIZE = 900

_DIGITS = re.compile(r"[0-9]+")

# The reference files, in level order, with the column naming each row's parent (short code).
_DIVISION_FILES: tuple[tuple[str, RegionLevel, str | None], ...] = (
    ("provinces.csv", RegionLevel.PROVINCE, None),
    ("cities.csv", RegionLevel.CITY, "provinceCode"),
    ("areas.csv", RegionLevel.COUNTY, "cityCode"),
    ("streets.csv", RegionLevel.TOWNSHIP, "areaCode"),
)

_VILLAGE_REQUIRED_COLUMNS = ("code", "name")
_VILLAGE_OPTIONAL_COLUMNS = ("township_code",)


class RegionError(ValueError):
    """A request about regions that cannot be honoured as given."""


class MalformedCode(RegionError):
    """Not a division code: 2, 4, 6, 9 or 12 ASCII digits."""


class UnknownRegion(LookupError):
    """A well-formed code that names no division in the list."""

    def __init__(self, code: str) -> None:
        super().__init__(f"region {code} not found")
        self.code = code


class DivisionDataError(RuntimeError):
    """The reference files contradict themselves (a duplicate code, a row without its parent)."""


class VillageImportError(RegionError):
    """The village file (or the county it is meant for) cannot be used at all, as opposed to one bad row."""


# --- codes -------------------------------------------------------------------------------------------------


def canonical_code(code: str) -> str:
    """The 12-digit form of a division code given short or full: 4419 -> 441900000000."""
    stripped = code.strip()
    if not _DIGITS.fullmatch(stripped) or len(stripped) not in SHORT_CODE_LENGTHS:
        raise MalformedCode(f"region code {code!r} must be 2, 4, 6, 9 or 12 digits")
    return stripped.ljust(CODE_LENGTH, "0")


def township_of(village_code: str) -> str:
    """The 12-digit code of the township a village code belongs to: its first 9 digits, padded."""
    return village_code[:TOWNSHIP_PREFIX_LENGTH].ljust(CODE_LENGTH, "0")


def _is_village_code(code: str) -> bool:
    # 12 digits whose last three are not 000: those would name the township itself, not a village in it.
    return len(code) == CODE_LENGTH and bool(_DIGITS.fullmatch(code)) and not code.endswith("000")


# --- the statistical list (provinces to townships) ---------------------------------------------------------


async def load_divisions(*, session: AsyncSession, data_dir: Path = DEFAULT_DATA_DIR) -> int:
    """Load provinces, cities, counties and townships into ``region`` (R-ENR-12: the platform's list is
    the reference). Returns the number of rows inserted; 0, without touching anything, when the provinces
    are already there, so it is safe at every start.

    Quirks of the NBS files handled here (see the data README):
    - codes are right-padded to 12 digits (township 110101001 -> 110101001000);
    - 市辖区 / 县 city rows of the municipalities (1101, 5002) and the x190/x290 rows of province-administered
      county-level units are ordinary city rows: their counties hang under them;
    - 东莞/中山/儋州 (4419/4420/4604) have no county level: areas.csv fills the gap with county rows
      441900/442000/460400, which pad to the very code of their city. A 12-digit key cannot hold both, so
      the filler folds into the city row (level 2) and the townships that name it hang under that row.
      金门县's placeholder township 350527000 folds into county 350527 the same way;
    - the development zones and parks among the county rows (statistical codes only) load like counties.
    One transaction, multi-row inserts: this runs on every fresh install and builds the test template.
    """
    if await _divisions_loaded(session=session):
        return 0
    rows = _division_rows(data_dir)
    await _insert_regions(session=session, rows=rows)
    await session.commit()
    return len(rows)


async def _divisions_loaded(*, session: AsyncSession) -> bool:
    query = select(Region.code).where(Region.level == RegionLevel.PROVINCE).limit(1)
    return (await session.exec(query)).first() is not None


def _read_csv_records(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _division_rows(data_dir: Path) -> list[dict[str, Any]]:
    """Every division as a ``region`` row, parents before children, fillers folded into their parent."""
    rows: dict[str, dict[str, Any]] = {}
    for filename, level, parent_column in _DIVISION_FILES:
        for record in _read_csv_records(data_dir / filename):
            short_code = record["code"].strip()
            code = canonical_code(short_code)
            parent_code = _parent_of(record, short_code=short_code, parent_column=parent_column)
            if code == parent_code:
                continue  # a filler standing for its parent: the parent's row already represents it
            if code in rows:
                raise DivisionDataError(f"{filename}: code {code} appears twice")
            rows[code] = {
                "code": code,
                "name": record["name"].strip(),
                "level": int(level),
                "parent_code": parent_code,
            }
    _check_parents(rows)
    return list(rows.values())


def _parent_of(record: dict[str, str], *, short_code: str, parent_column: str | None) -> str | None:
    if parent_column is None:
        return None
    parent_short = record[parent_column].strip()
    # A child's code extends its parent's: anything else means a shifted column or a corrupt file.
    if not short_code.startswith(parent_short):
        raise DivisionDataError(f"code {short_code} does not extend its parent {parent_short}")
    return canonical_code(parent_short)


def _check_parents(rows: dict[str, dict[str, Any]]) -> None:
    orphans = [code for code, row in rows.items() if row["parent_code"] and row["parent_code"] not in rows]
    if orphans:
        raise DivisionDataError(f"{len(orphans)} divisions without a parent, e.g. {orphans[:5]}")


def _region_table() -> Table:
    table: Table = Region.__table__  # type: ignore[attr-defined]
    return table


async def _insert_regions(*, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    # Core executemany on the table, not ORM objects: ~45k rows in well under a second on SQLite.
    statement = insert(_region_table())
    for start in range(0, len(rows), INSERT_BATCH_SIZE):
        await session.exec(statement, params=rows[start : start + INSERT_BATCH_SIZE])


# --- lookups -----------------------------------------------------------------------------------------------


async def get(*, session: AsyncSession, code: str) -> Region:
    """One region by code (short or 12-digit). Raises MalformedCode or UnknownRegion."""
    canonical = canonical_code(code)
    region = await session.get(Region, canonical)
    if region is None:
        raise UnknownRegion(canonical)
    return region


async def children(*, session: AsyncSession, code: str) -> list[Region]:
    """The regions directly under ``code``, ordered by code; ``root`` lists the provinces."""
    if code.strip().lower() == ROOT:
        query = select(Region).where(Region.level == RegionLevel.PROVINCE)
    else:
        parent = await get(session=session, code=code)
        query = select(Region).where(Region.parent_code == parent.code)
    return list((await session.exec(query.order_by(col(Region.code)))).all())


async def search(
    *, session: AsyncSession, q: str, under: str | None = None, level: int | None = None, limit: int = 20
) -> list[Region]:
    """Regions whose name contains ``q``: exact names first, then names starting with ``q``, then the rest;
    within each group higher levels first. ``under`` keeps descendants of that region only."""
    needle = q.strip()
    if not needle:
        return []
    name = col(Region.name)
    query = select(Region).where(name.contains(needle, autoescape=True))
    if under is not None:
        ancestor = await get(session=session, code=under)
        query = query.where(
            col(Region.code).startswith(significant_prefix(ancestor.code)), Region.code != ancestor.code
        )
    if level is not None:
        query = query.where(Region.level == level)
    relevance = case((name == needle, 0), (name.startswith(needle, autoescape=True), 1), else_=2)
    query = query.order_by(relevance, col(Region.level), col(Region.code))
    query = query.limit(max(1, min(limit, SEARCH_MAX_LIMIT)))
    return list((await session.exec(query)).all())


async def search_with_paths(
    *, session: AsyncSession, q: str, under: str | None = None, level: int | None = None, limit: int = 20
) -> list[tuple[Region, list[Region]]]:
    """``search``, each result with its ancestors (province first): several places share a name (朝阳区
    in Beijing and in Changchun, a dozen 朝阳镇), so a choice means nothing without its parents. Two
    queries whatever the number of results: the matches, then every ancestor by its code prefix."""
    found = await search(session=session, q=q, under=under, level=level, limit=limit)
    codes: set[str] = set()
    for region in found:
        codes |= _prefix_codes(region.code)
    known = await _regions_by_code(session=session, codes=codes)
    return [(region, _ancestors(region, known)) for region in found]


# Placeholder levels of the statistical list ("北京市 市辖区 朝阳区"): they tell a reader nothing.
FILLER_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


def _ancestors(region: Region, known: dict[str, Region]) -> list[Region]:
    chain: list[Region] = []
    parent_code = region.parent_code
    while parent_code is not None and parent_code in known and len(chain) < len(RegionLevel):
        chain.append(known[parent_code])
        parent_code = known[parent_code].parent_code
    return [a for a in reversed(chain) if a.name not in FILLER_NAMES]


async def path(*, session: AsyncSession, code: str) -> list[Region]:
    """From the province down to ``code`` itself, following parent codes."""
    region = await get(session=session, code=code)
    # Ancestors are among the code's own prefixes: fetch them in one query, then follow parent_code.
    known = await _regions_by_code(session=session, codes=_prefix_codes(region.code))
    chain = [region]
    while chain[-1].parent_code is not None and len(chain) <= len(RegionLevel):
        parent_code = chain[-1].parent_code
        parent = known.get(parent_code) or await session.get(Region, parent_code)
        if parent is None:
            break  # a broken chain shows what is known rather than failing the whole lookup
        chain.append(parent)
    return list(reversed(chain))


def _prefix_codes(code: str) -> set[str]:
    return {code[:length].ljust(CODE_LENGTH, "0") for length in SHORT_CODE_LENGTHS[:-1]} - {code}


async def _regions_by_code(*, session: AsyncSession, codes: Iterable[str]) -> dict[str, Region]:
    found: dict[str, Region] = {}
    for batch in _batches(sorted(set(codes)), LOOKUP_BATCH_SIZE):
        for region in (await session.exec(select(Region).where(col(Region.code).in_(batch)))).all():
            found[region.code] = region
    return found


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- villages ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _VillageRow:
    line: int
    code: str
    name: str
    township_code: str


async def import_villages(
    *,
    session: AsyncSession,
    csv_text: str,
    county_code: str | None,
    actor: StaffPrincipal | None,
    ip: str | None,
) -> VillageImportReport:
    """Add the villages (level 5) of a CSV file with header ``code,name[,township_code]``.

    Good rows are inserted, bad rows are reported with a reason and skipped; existing villages are never
    overwritten. ``county_code`` limits the file to one county; ``actor`` None means the CLI (no scope).
    Raises VillageImportError when the header or the county is unusable. Commits, with one audit row.
    """
    rows = _parse_village_csv(csv_text)
    county = await _checked_county(session=session, county_code=county_code)
    county_prefix = county[:COUNTY_PREFIX_LENGTH] if county else None
    rejected, candidates = _screen_rows(rows, county_prefix=county_prefix, actor=actor)
    accepted = await _screen_against_database(session=session, candidates=candidates, rejected=rejected)
    await _insert_regions(session=session, rows=[_village_record(row) for row in accepted])
    rejected.sort(key=lambda item: item.line)
    record_audit(
        session=session,
        actor=actor,
        action="regions.import_villages",
        target_type="region",
        target_id=county or "",
        detail={
            "accepted": len(accepted),
            "rejected": len(rejected),
            "reasons": dict(Counter(item.reason for item in rejected)),
        },
        ip=ip,
    )
    await session.commit()
    return VillageImportReport(accepted=len(accepted), rejected=rejected)


async def import_villages_file(
    *, db: Database, path: Path, county_code: str | None = None
) -> VillageImportReport:
    """``tianbao import-villages FILE``: import a UTF-8 CSV file (BOM allowed) as the system, not a user.
    Raises VillageImportError (bad header or county), UnicodeDecodeError (not UTF-8), OSError."""
    raw = await asyncio.to_thread(path.read_bytes)
    csv_text = raw.decode("utf-8-sig")
    async with db.session() as session:
        return await import_villages(
            session=session, csv_text=csv_text, county_code=county_code, actor=None, ip=None
        )


def _parse_village_csv(csv_text: str) -> list[_VillageRow]:
    # Spreadsheet exports start with a BOM and end lines with \r\n; csv handles the line endings.
    reader = csv.reader(io.StringIO(csv_text.removeprefix("\ufeff"), newline=""))
    positions = _village_columns(next(reader, None))
    rows: list[_VillageRow] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, such as the trailing ones editors leave, are not rows
        rows.append(
            _VillageRow(
                line=reader.line_num,
                code=_cell(cells, positions.get("code")),
                name=_cell(cells, positions.get("name")),
                township_code=_cell(cells, positions.get("township_code")),
            )
        )
    return rows


def _village_columns(header: list[str] | None) -> dict[str, int]:
    expected = "code,name (optionally township_code)"
    if not header:
        raise VillageImportError(f"empty file: the first line must be the header {expected}")
    names = [cell.strip().lower() for cell in header]
    unknown = [n for n in names if n not in _VILLAGE_REQUIRED_COLUMNS + _VILLAGE_OPTIONAL_COLUMNS]
    missing = [n for n in _VILLAGE_REQUIRED_COLUMNS if n not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise VillageImportError(f"header must be {expected}, got {','.join(header)}")
    return {name: index for index, name in enumerate(names)}


def _cell(cells: list[str], position: int | None) -> str:
    if position is None or position >= len(cells):
        return ""
    return cells[position].strip()


async def _checked_county(*, session: AsyncSession, county_code: str | None) -> str | None:
    """The 12-digit code of the county the file is restricted to, once it is known to be a county."""
    if county_code is None or not county_code.strip():
        return None
    try:
        code = canonical_code(county_code)
    except MalformedCode as exc:
        raise VillageImportError(str(exc)) from exc
    region = await session.get(Region, code)
    if region is None or not await _holds_townships(session=session, region=region):
        raise VillageImportError(f"county_code {code} is not a county")
    return code


async def _holds_townships(*, session: AsyncSession, region: Region) -> bool:
    # Counties, and the city rows that stand for their own county (东莞, 中山, 儋州): townships hang there.
    if region.level == RegionLevel.COUNTY:
        return True
    if region.level != RegionLevel.CITY:
        return False
    query = (
        select(Region.code)
        .where(Region.parent_code == region.code, Region.level == RegionLevel.TOWNSHIP)
        .limit(1)
    )
    return (await session.exec(query)).first() is not None


def _screen_rows(
    rows: list[_VillageRow], *, county_prefix: str | None, actor: StaffPrincipal | None
) -> tuple[list[RejectedVillage], list[_VillageRow]]:
    """Checks that need no database: shape first, then permission (before anything that could reveal
    what exists outside the caller's scope), then the file's own consistency."""
    rejected: list[RejectedVillage] = []
    candidates: list[_VillageRow] = []
    for row in rows:
        reason = _row_problem(row, county_prefix=county_prefix, actor=actor)
        if reason is None:
            candidates.append(row)
        else:
            rejected.append(_rejection(row, reason))
    return rejected, candidates


def _row_problem(
    row: _VillageRow, *, county_prefix: str | None, actor: StaffPrincipal | None
) -> RejectReason | None:
    if not _is_village_code(row.code):
        return "bad_code"
    if not row.name:
        return "empty_name"
    if len(row.name) > NAME_MAX_LENGTH:
        return "name_too_long"
    if county_prefix is not None and not row.code.startswith(county_prefix):
        return "outside_county"
    if actor is not None and not actor.covers_region(row.code):
        return "outside_scope"
    if row.township_code and row.township_code not in _township_spellings(row.code):
        return "prefix_mismatch"
    return None


def _township_spellings(village_code: str) -> tuple[str, str]:
    # township_code may be written short (9 digits) or canonical (12 digits).
    return village_code[:TOWNSHIP_PREFIX_LENGTH], township_of(village_code)


async def _screen_against_database(
    *, session: AsyncSession, candidates: list[_VillageRow], rejected: list[RejectedVillage]
) -> list[_VillageRow]:
    """Parent township exists, first occurrence in the file, not already in the list. Appends to rejected."""
    codes = [row.code for row in candidates] + [township_of(row.code) for row in candidates]
    known = await _regions_by_code(session=session, codes=codes)
    accepted: list[_VillageRow] = []
    seen: set[str] = set()
    for row in candidates:
        township = known.get(township_of(row.code))
        if township is None or township.level != RegionLevel.TOWNSHIP:
            reason: RejectReason | None = "unknown_township"
        elif row.code in seen:
            reason = "duplicate_in_file"
        elif row.code in known:
            reason = "already_exists"
        else:
            reason = None
        seen.add(row.code)
        if reason is None:
            accepted.append(row)
        else:
            rejected.append(_rejection(row, reason))
    return accepted


def _rejection(row: _VillageRow, reason: RejectReason) -> RejectedVillage:
    return RejectedVillage(line=row.line, code=row.code, name=row.name, reason=reason)


def _village_record(row: _VillageRow) -> dict[str, Any]:
    return {
        "code": row.code,
        "name": row.name,
        "level": int(RegionLevel.VILLAGE),
        "parent_code": township_of(row.code),
    }

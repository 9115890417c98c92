"""Validation of a household list before anything is stored (R-ENR-2, R-ENR-3): every bad row with its
line, column and reason. Row checks are pure; the database checks (ID regions, villages, already insured,
ear tags taken) are one query per 5,000 distinct values, never one per row."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from operator import mul
from typing import Any, TypeVar

from sqlalchemy import ARRAY, Integer, String, any_, bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.enrollment import validation
from backend.enrollment.collective.models import CollectiveEnrollment, CollectiveStatus, PolicyHousehold
from backend.enrollment.collective.sheets import COLUMNS, OPTIONAL_COLUMNS, Table, header_text
from backend.enrollment.models import Application, EarTag, Policy
from backend.people.models import Person
from backend.people.service import PhoneError, normalize_cn_mobile
from backend.products import pricing
from backend.products.models import Product
from backend.regions.models import Region, RegionLevel
from backend.security import significant_prefix
from messages import labels_for

LOOKUP_BATCH = 5_000
PLACE_NAME_MAX = 100
BANK_NAME_MAX = 100
# The plausible total of one village, per unit, when the product's catalogue entry names none
# (``product.details["village_plausible_total"]``): a large village farms a few thousand mu and keeps a
# few thousand head; ten times that in one list is a typo (a decimal point lost), not a village.
PLAUSIBLE_VILLAGE_TOTAL: dict[str, Decimal] = {
    "mu": Decimal(50_000),
    "m2": Decimal(2_000_000),
    "head": Decimal(20_000),
    "bird": Decimal(1_000_000),
    "person": Decimal(10_000),
}
_TAG_SEPARATORS = re.compile(r"[\s,;，；、]+")
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One reason a row is refused: ``code`` names ``collective.reason_<code>``, ``detail`` fills it."""

    line: int
    column: str
    code: str
    detail: dict[str, str] = field(default_factory=dict)


@dataclass
class CleanRow:
    line: int
    name: str
    id_number: str
    phone: str | None
    quantity: Decimal
    village: str  # as typed; ``village_code`` once resolved
    place_name: str
    ear_tags: list[str]
    bank_name: str
    bank_account: str
    village_code: str = ""
    quote: pricing.AgriQuote | None = None


@dataclass
class CheckResult:
    problems: list[Problem]
    rows: list[CleanRow]

    @property
    def ok(self) -> bool:
        return not self.problems


def batches(values: Sequence[T], size: int = LOOKUP_BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def lookup_batches(session: AsyncSession, values: Sequence[T]) -> Iterator[Sequence[T]]:
    """PostgreSQL takes a whole list as one array parameter (``in_any``); SQLite, 5,000 at a time."""
    if session.get_bind().dialect.name == "postgresql":
        return iter([values] if values else [])
    return batches(values)


def in_any(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """``column IN (...)``; on PostgreSQL ``column = ANY($1)``, one parameter however long the list
    (an IN list of 100,000 values is 100,000 parameters to compile and bind)."""
    if session.get_bind().dialect.name == "postgresql":
        kind = Integer() if values and isinstance(values[0], int) else String()
        return column == any_(bindparam(None, list(values), type_=ARRAY(kind)))
    return col(column).in_(values)


def plausible_village_total(product: Product) -> Decimal:
    """The most a village can plausibly hold of this product: the catalogue's figure, else the unit's."""
    configured = product.details.get("village_plausible_total")
    if configured is not None:
        return Decimal(str(configured))
    return PLAUSIBLE_VILLAGE_TOTAL[product.unit]


def reason_text(problem: Problem, locale: str, labels: dict[str, str] | None = None) -> str:
    """The reason in the user's language (labels read once per report by the caller)."""
    texts = labels if labels is not None else labels_for("collective", locale)
    template = texts.get(f"reason_{problem.code}", problem.code)
    detail = dict(problem.detail)
    if problem.code == "missing_column":  # the column as the user's headers name it
        detail["column"] = column_text(problem, locale)
    try:
        return template.format(**detail)
    except (KeyError, IndexError):
        return template


def column_text(problem: Problem, locale: str) -> str:
    return header_text(problem.column, locale) if problem.column in COLUMNS else problem.column


# --- the checks ------------------------------------------------------------------------------------------


async def check_list(
    session: AsyncSession, *, product: Product, area_code: str, table: Table, now: datetime
) -> CheckResult:
    """Every problem of the list, row checks first, then the database checks on the rows that passed."""
    missing = [c for c in COLUMNS if c not in table.columns and c not in OPTIONAL_COLUMNS]
    if product.needs_ear_tags and "ear_tags" not in table.columns:
        missing.append("ear_tags")
    if missing:
        return CheckResult([Problem(1, c, "missing_column", {"column": c}) for c in missing], [])
    problems: list[Problem] = []
    fast = _fast_check(product, table)
    rows: list[CleanRow] = []
    for line, cells in table.rows:
        row = fast(line, cells) or _check_row(product, table, line, cells, problems)
        if row is not None:
            rows.append(row)
    _duplicates(rows, problems)
    await _id_regions(session, rows, problems)
    await _villages(session, rows, area_code, problems)
    _village_totals(product, rows, problems)
    await _already_insured(session, product, rows, now, problems)
    if product.needs_ear_tags:
        await _tags_taken(session, rows, problems)
    problems.sort(key=lambda p: (p.line, COLUMNS.index(p.column) if p.column in COLUMNS else -1))
    bad = {p.line for p in problems}
    clean = [row for row in rows if row.line not in bad]
    quotes: dict[Decimal, pricing.AgriQuote] = {}
    for row in clean:
        quote = quotes.get(row.quantity)
        if quote is None:
            quote = quotes[row.quantity] = pricing.quote_agricultural(product, row.quantity)
        row.quote = quote
    return CheckResult(problems, clean)


def _fast_check(product: Product, table: Table) -> Any:
    """A checker for the common row (plain digits, a CJK name, a valid quantity): the clean row, or None
    for any doubt, and the full checks (``_check_row``) then judge it and name every problem."""
    at = dict(table.positions)
    i_name, i_id, i_phone, i_subject, i_quantity = (at[c] for c in COLUMNS[:5])
    i_village, i_place, _, i_bank, i_account = (at[c] for c in COLUMNS[5:])
    needed = max(i_name, i_id, i_subject, i_quantity, i_village, i_bank, i_account)
    subjects = {_subject_key(n) for n in (product.name_zh, product.name_en, product.code)}
    unit = product.unit
    if product.needs_ear_tags:
        return lambda line, cells: None  # ear tags take the full checks

    def check(line: int, cells: list[str]) -> CleanRow | None:
        width = len(cells)
        if width <= needed:
            return None
        name, number, account, bank = cells[i_name], cells[i_id], cells[i_account], cells[i_bank]
        phone = cells[i_phone] if i_phone < width else ""
        place = cells[i_place] if i_place < width else ""
        village = cells[i_village]
        quantity = _quantity_of(cells[i_quantity], unit)
        if (
            not isinstance(quantity, Decimal)
            or not _PLAIN_NAME.fullmatch(name)
            or not (phone == "" or _PLAIN_MOBILE.fullmatch(phone))
            or not _PLAIN_DIGITS.fullmatch(account)
            or not bank
            or len(bank) > BANK_NAME_MAX
            or not village
            or len(place) > PLACE_NAME_MAX
            or _subject_key(cells[i_subject]) not in subjects
            or _plain_resident_id(number) is None
        ):
            return None
        return CleanRow(line, name, number, phone or None, quantity, village, place, [], bank, account)

    return check


def _check_row(
    product: Product, table: Table, line: int, cells: list[str], problems: list[Problem]
) -> CleanRow | None:
    """The pure checks of one row; the row's problems are appended, and None returned when it has any."""
    before = len(problems)
    width = len(cells)
    value = {column: (cells[at] if at < width else "") for column, at in table.positions}
    for column in COLUMNS:
        if not value[column] and column not in OPTIONAL_COLUMNS:
            problems.append(Problem(line, column, "required"))
    name = _checked(problems, line, "name", _person_name, value["name"])
    id_number = _checked(problems, line, "id_number", _resident_id, value["id_number"])
    phone = _phone(problems, line, value["phone"])
    if value["subject"] and not _same_subject(product, value["subject"]):
        problems.append(
            Problem(
                line, "subject", "subject_mismatch", {"given": value["subject"], "expected": product.name_zh}
            )
        )
    quantity = _quantity(problems, line, product, value["quantity"])
    tags = _ear_tags(problems, line, product, value["ear_tags"], quantity)
    account = _checked(
        problems, line, "bank_account", validation.validate_bank_account, value["bank_account"]
    )
    for column, limit in (("place_name", PLACE_NAME_MAX), ("bank_name", BANK_NAME_MAX)):
        if len(value[column]) > limit:
            problems.append(Problem(line, column, "too_long", {"limit": str(limit)}))
    if len(problems) > before:
        return None
    assert name is not None and id_number is not None and quantity is not None and account is not None
    return CleanRow(
        line=line,
        name=name,
        id_number=id_number,
        phone=phone,
        quantity=quantity,
        village=value["village"],
        place_name=value["place_name"],
        ear_tags=tags,
        bank_name=value["bank_name"],
        bank_account=account,
    )


def _checked(problems: list[Problem], line: int, column: str, check: Any, raw: str) -> Any:
    if not raw:
        return None  # reported as "required"
    try:
        return check(raw)
    except validation.ValidationProblem as exc:
        problems.append(Problem(line, column, exc.code, exc.detail))
        return None


# Fast paths for what nearly every row holds (plain ASCII digits, a name of CJK characters): the same
# answer as the validators in ``enrollment.validation``, which still judge everything else and name the
# error. 100,000 rows pass in about a second instead of eight (benchmarks/collective_import.py).
_PLAIN_ID = re.compile(r"[0-9]{17}[0-9X]")
_PLAIN_NAME = re.compile(r"[\u4e00-\u9fff]{1,30}")
_PLAIN_DIGITS = re.compile(r"[0-9]{12,30}")
_PLAIN_MOBILE = re.compile(r"1[3-9][0-9]{9}")


@lru_cache(maxsize=65_536)
def _real_birth_date(text: str) -> bool:
    try:
        validation.birth_date_of(f"000000{text}0000")
    except validation.ValidationProblem:
        return False
    return True


_ID_ZERO_SUM = 48 * sum(validation.ID_WEIGHTS)  # the weights over the code point of "0"


def _plain_resident_id(raw: str) -> str | None:
    """The number when it is plainly valid (ASCII, a real date, the check character right), else None."""
    if _PLAIN_ID.fullmatch(raw) and _real_birth_date(raw[6:14]):
        # sum(digit x weight) over code points, in C: map(mul) instead of a generator of int() calls
        total = sum(map(mul, raw[:17].encode(), validation.ID_WEIGHTS)) - _ID_ZERO_SUM
        if validation.ID_CHECK_CHARACTERS[total % 11] == raw[17]:
            return raw
    return None


def _resident_id(raw: str) -> str:
    return _plain_resident_id(raw) or validation.validate_resident_id(raw)


def _person_name(raw: str) -> str:
    return raw if _PLAIN_NAME.fullmatch(raw) else validation.validate_person_name(raw)


def _bank_account(raw: str) -> str:
    return raw if _PLAIN_DIGITS.fullmatch(raw) else validation.validate_bank_account(raw)


@lru_cache(maxsize=4_096)
def _quantity_of(raw: str, unit: str) -> Decimal | str:
    """The quantity, or the refusal's code (quantities repeat: a list holds a few dozen distinct ones)."""
    try:
        return validation.validate_quantity(raw, unit)
    except validation.ValidationProblem as exc:
        return exc.code


def _phone(problems: list[Problem], line: int, raw: str) -> str | None:
    if not raw:
        return None
    if _PLAIN_MOBILE.fullmatch(raw):
        return raw
    try:
        return normalize_cn_mobile(raw)
    except PhoneError:
        problems.append(Problem(line, "phone", "phone_format"))
        return None


@lru_cache(maxsize=1_024)
def _subject_key(text: str) -> str:
    return "".join(text.split()).casefold()


def _same_subject(product: Product, given: str) -> bool:
    return _subject_key(given) in {_subject_key(n) for n in (product.name_zh, product.name_en, product.code)}


def _quantity(problems: list[Problem], line: int, product: Product, raw: str) -> Decimal | None:
    if not raw:
        return None
    quantity = _quantity_of(raw, product.unit)
    if isinstance(quantity, str):
        problems.append(Problem(line, "quantity", "quantity_format", {"value": raw}))
        return None
    return quantity


def _ear_tags(
    problems: list[Problem], line: int, product: Product, raw: str, quantity: Decimal | None
) -> list[str]:
    if not product.needs_ear_tags:
        return []
    if not raw:
        problems.append(Problem(line, "ear_tags", "required"))
        return []
    tags: list[str] = []
    for part in _TAG_SEPARATORS.split(raw):
        if not part:
            continue
        try:
            tags.append(validation.validate_ear_tag(part))
        except validation.ValidationProblem as exc:
            problems.append(Problem(line, "ear_tags", "ear_tag_format", exc.detail))
            return []
    if quantity is not None and len(tags) != int(quantity):
        problems.append(
            Problem(
                line, "ear_tags", "ear_tags_count", {"given": str(len(tags)), "expected": str(int(quantity))}
            )
        )
    return tags


def _duplicates(rows: list[CleanRow], problems: list[Problem]) -> None:
    """An ID number twice in the list, one account for two households (R-CLM-12: each household is paid
    to its own account, so one household's payout would reach another), and an ear tag twice."""
    first_line: dict[str, int] = {}
    account_line: dict[str, tuple[int, str]] = {}
    tag_line: dict[str, int] = {}
    for row in rows:
        seen = first_line.setdefault(row.id_number, row.line)
        if seen != row.line:
            problems.append(Problem(row.line, "id_number", "duplicate_id", {"first_line": str(seen)}))
        holder_line, holder = account_line.setdefault(row.bank_account, (row.line, row.id_number))
        if holder != row.id_number:
            problems.append(
                Problem(row.line, "bank_account", "bank_account_shared", {"first_line": str(holder_line)})
            )
        repeated = []
        for tag in row.ear_tags:
            if tag_line.setdefault(tag, row.line) != row.line or row.ear_tags.count(tag) > 1:
                repeated.append(tag)
        if repeated:
            problems.append(
                Problem(row.line, "ear_tags", "ear_tags_duplicate", {"tags": " ".join(sorted(set(repeated)))})
            )


async def _id_regions(session: AsyncSession, rows: list[CleanRow], problems: list[Problem]) -> None:
    """R-ENR-3: positions 1-6 name a known county, or a known prefecture (the rule of
    ``enrollment.service.check_id_region``, for the whole list in a few queries)."""
    wanted = sorted(
        {r.id_number[:6].ljust(12, "0") for r in rows} | {r.id_number[:4].ljust(12, "0") for r in rows}
    )
    known: set[str] = set()
    for batch in lookup_batches(session, wanted):
        query = select(Region.code).where(
            in_any(session, Region.code, batch), col(Region.level).in_([RegionLevel.CITY, RegionLevel.COUNTY])
        )
        known.update((await session.exec(query)).all())
    for row in rows:
        if row.id_number[:6].ljust(12, "0") not in known and row.id_number[:4].ljust(12, "0") not in known:
            problems.append(Problem(row.line, "id_number", "id_region", {"region": row.id_number[:6]}))


async def _villages(
    session: AsyncSession, rows: list[CleanRow], area_code: str, problems: list[Problem]
) -> None:
    """Each row's village: a 12-digit code, or a name that is unique inside the list's area; located to
    the township at least (villages where the operator imported them) and inside the area."""
    area = significant_prefix(area_code)
    codes = sorted({r.village for r in rows if r.village.isdigit()})
    names = sorted({r.village for r in rows if not r.village.isdigit()})
    by_code: dict[str, Region] = {}
    for batch in lookup_batches(session, codes):
        found = await session.exec(select(Region).where(in_any(session, Region.code, batch)))
        by_code.update({region.code: region for region in found.all()})
    by_name: dict[str, list[Region]] = {}
    for batch in batches(names):
        query = select(Region).where(
            col(Region.name).in_(batch),
            col(Region.level) >= RegionLevel.TOWNSHIP,
            col(Region.code).startswith(area),
        )
        for region in (await session.exec(query)).all():
            by_name.setdefault(region.name, []).append(region)
    for row in rows:
        candidates = [by_code[row.village]] if row.village in by_code else by_name.get(row.village, [])
        if len(candidates) > 1:
            problems.append(Problem(row.line, "village", "ambiguous_village", {"value": row.village}))
        elif not candidates or candidates[0].level < RegionLevel.TOWNSHIP:
            problems.append(Problem(row.line, "village", "unknown_village", {"value": row.village}))
        elif not candidates[0].code.startswith(area):
            problems.append(Problem(row.line, "village", "village_outside_list", {"value": row.village}))
        else:
            row.village_code = candidates[0].code


def _village_totals(product: Product, rows: list[CleanRow], problems: list[Problem]) -> None:
    """The quantities of one village may not add up to more than the village can plausibly hold: the
    row that passes the bound is named (once per village)."""
    bound = plausible_village_total(product)
    totals: dict[str, Decimal] = {}
    over: set[str] = set()
    for row in rows:
        if not row.village_code:
            continue
        total = totals[row.village_code] = totals.get(row.village_code, Decimal(0)) + row.quantity
        if total > bound and row.village_code not in over:
            over.add(row.village_code)
            detail = {
                "village": row.village,
                "total": pricing.decimal_text(total),
                "bound": pricing.decimal_text(bound),
            }
            problems.append(Problem(row.line, "quantity", "quantity_over_village_total", detail))


async def _already_insured(
    session: AsyncSession, product: Product, rows: list[CleanRow], now: datetime, problems: list[Problem]
) -> None:
    """An insured whose cover for the same product has not ended (a household of another collective
    list not cancelled, or an individual policy of the person with that ID number) is not insured twice."""
    numbers = sorted({r.id_number for r in rows})
    insured: dict[str, str] = {}
    for batch in lookup_batches(session, numbers):
        households = (
            select(PolicyHousehold.id_number, Application.number, Policy.number)
            .join(CollectiveEnrollment, col(CollectiveEnrollment.id) == col(PolicyHousehold.collective_id))
            .join(Application, col(Application.id) == col(CollectiveEnrollment.application_id))
            .outerjoin(Policy, col(Policy.id) == col(CollectiveEnrollment.policy_id))
            .where(
                in_any(session, PolicyHousehold.id_number, batch),
                PolicyHousehold.product_code == product.code,
            )
            .where(CollectiveEnrollment.status != CollectiveStatus.CANCELLED.value)
            .where(col(Policy.id).is_(None) | (col(Policy.ends_at) > now))
        )
        for number, application, policy in (await session.exec(households)).all():
            insured.setdefault(number, policy or application)
        individual = (
            select(Person.id_number, Policy.number)
            .join(Policy, col(Policy.person_id) == col(Person.id))
            .where(in_any(session, Person.id_number, batch), Policy.product_code == product.code)
            .where(Policy.status == "active", col(Policy.ends_at) > now)
        )
        for holder, number in (await session.exec(individual)).all():
            if holder is not None:
                insured.setdefault(holder, number)
    for row in rows:
        if row.id_number in insured:
            detail = {"subject": product.name_zh, "policy": insured[row.id_number]}
            problems.append(Problem(row.line, "id_number", "already_insured", detail))


async def _tags_taken(session: AsyncSession, rows: list[CleanRow], problems: list[Problem]) -> None:
    tags = sorted({tag for row in rows for tag in row.ear_tags})
    taken: set[str] = set()
    for batch in lookup_batches(session, tags):
        taken.update((await session.exec(select(EarTag.tag).where(in_any(session, EarTag.tag, batch)))).all())
    for row in rows:
        hit = sorted(set(row.ear_tags) & taken)
        if hit:
            problems.append(Problem(row.line, "ear_tags", "ear_tags_taken", {"tags": " ".join(hit)}))


def problems_by_line(problems: Iterable[Problem], locale: str) -> dict[int, list[str]]:
    labels = labels_for("collective", locale)
    out: dict[int, list[str]] = {}
    for problem in problems:
        out.setdefault(problem.line, []).append(
            f"{column_text(problem, locale)}: {reason_text(problem, locale, labels)}"
        )
    return out

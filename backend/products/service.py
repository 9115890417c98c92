"""The product catalogue: loading the seed, lookups, and audited staff edits.

The seed (``seed/catalogue.json``) is data: agricultural products, the liability cover product, the
industry rate table (R-LIA-1), the floating factors (R-LIA-2), the limits and the risk survey (R-LIA-4).
It is loaded at every start (``backend/bootstrap.py``) and written only when the tables are empty or the
seed's ``version`` differs from the stored ``catalogue_version``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, case, column, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.products.models import LiabilityRate, Product, ProductCategory, ProductKind, RiskQuestion
from backend.products.pricing import (
    FACTOR_REASONS,
    SHARE_NAMES,
    FactorReason,
    PricingError,
    check_floating_factors,
    check_rate,
    check_shares,
    decimal_text,
    to_decimal,
    yuan_to_fen,
)
from backend.security import StaffPrincipal
from backend.staff.service import record_audit

DEFAULT_CATALOGUE = Path(__file__).resolve().parent / "seed" / "catalogue.json"

LIABILITY_PRODUCT_CODE = "work_safety_liability"
INDUSTRY_CODE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
PRODUCT_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
UNITS = frozenset({"mu", "head", "bird", "m2", "person"})
AGRICULTURAL_CATEGORIES = frozenset(
    {ProductCategory.CROP, ProductCategory.LIVESTOCK, ProductCategory.FACILITY, ProductCategory.INDEX}
)
RISKY_ANSWERS = frozenset({"yes", "no"})
# The order products are listed in: field crops first, liability cover last.
CATEGORY_ORDER = ("crop", "livestock", "facility", "index", "liability")

# What staff may change on a product (admin or underwriter). Rule flags (main crop, 24-hour report, weather
# index, ear tags) follow the regulations and change only with the seed.
EDITABLE_FIELDS = frozenset(
    {
        "name_zh",
        "name_en",
        "sum_insured_per_unit_fen",
        "rate",
        "share_central",
        "share_provincial",
        "share_county",
        "share_farmer",
        "disclosure_version",
        "active",
        "sample",
    }
)
_DECIMAL_FIELDS = ("rate", "share_central", "share_provincial", "share_county", "share_farmer")


class ProductError(ValueError):
    """A request about products that cannot be honoured as given."""


class InvalidChange(ProductError):
    """A staff edit that would break the catalogue (shares not adding up to 1, a rate outside 0..1, ...)."""


class UnknownProduct(LookupError):
    def __init__(self, code: str) -> None:
        super().__init__(f"product {code} not found")
        self.code = code


class UnknownIndustry(LookupError):
    """R-LIA-1: an industry that is not in the rate table has no rate."""

    def __init__(self, code: str) -> None:
        super().__init__(f"industry {code} is not in the rate table")
        self.code = code


class CatalogueError(RuntimeError):
    """The seed file contradicts itself or the rules; nothing is loaded."""


# --- the seed ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    version: str
    products: list[dict[str, Any]]
    rates: list[dict[str, Any]]
    questions: list[dict[str, Any]]

    @property
    def row_count(self) -> int:
        return len(self.products) + len(self.rates) + len(self.questions)


def _refuse_float(text: str) -> Decimal:
    raise CatalogueError(f"write decimal numbers as strings in the catalogue, found {text}")


def read_catalogue(path: Path = DEFAULT_CATALOGUE) -> Catalogue:
    """Parse and check the seed; every row comes out ready for the database (money in fen)."""
    raw = json.loads(path.read_text(encoding="utf-8"), parse_float=_refuse_float)
    version = str(raw.get("version") or "")
    if not version or len(version) > 20:
        raise CatalogueError("the catalogue needs a version of at most 20 characters")
    sample = bool(raw.get("sample", True))
    try:
        products = [_agricultural_row(item, version, sample) for item in raw.get("products", [])]
        liability = raw.get("liability") or {}
        products.append(_liability_row(liability, version, sample))
        rates = [_rate_row(item, version, sample) for item in liability.get("industries", [])]
        questions = [_question_row(item, n) for n, item in enumerate(liability.get("risk_questions", []), 1)]
    except (KeyError, TypeError, PricingError) as exc:
        raise CatalogueError(f"catalogue {version}: {exc}") from exc
    for what, rows, key in (
        ("product", products, "code"),
        ("industry", rates, "industry_code"),
        ("risk question", questions, "code"),
    ):
        codes = [row[key] for row in rows]
        if len(set(codes)) != len(codes):
            raise CatalogueError(f"duplicate {what} code in catalogue {version}")
    if not rates:
        raise CatalogueError("the liability rate table is empty (R-LIA-1)")
    return Catalogue(version=version, products=products, rates=rates, questions=questions)


def _code(value: Any, pattern: re.Pattern[str], what: str) -> str:
    code = str(value)
    if not pattern.match(code):
        raise PricingError(f"bad {what} code {code!r}")
    return code


def _agricultural_row(item: dict[str, Any], version: str, sample: bool) -> dict[str, Any]:
    code = _code(item["code"], PRODUCT_CODE, "product")
    category = str(item["category"])
    if category not in AGRICULTURAL_CATEGORIES:
        raise PricingError(f"{code}: unknown category {category}")
    unit = str(item["unit"])
    if unit not in UNITS - {"person"}:
        raise PricingError(f"{code}: unknown unit {unit}")
    rate = to_decimal(item["rate"], f"{code} rate")
    check_rate(rate)
    shares = {name: to_decimal(item["shares"][name], f"{code} share {name}") for name in SHARE_NAMES}
    check_shares(shares)
    details = dict(item.get("details") or {})
    _check_large_animal(code, category, unit, details.get("large_animal"))
    weather_index = bool(item.get("weather_index", False))
    if weather_index:
        _check_index(code, details.get("index"))
    return _product_row(
        code=code,
        kind=ProductKind.AGRICULTURAL.value,
        category=category,
        item=item,
        unit=unit,
        sum_insured_per_unit_fen=yuan_to_fen(item["sum_insured_per_unit"]),
        rate=decimal_text(rate),
        shares={name: decimal_text(value) for name, value in shares.items()},
        flags={
            "main_crop": bool(item.get("main_crop", False)),
            "weather_index": weather_index,
            "needs_ear_tags": bool(item.get("needs_ear_tags", False)),
            "report_within_24h": bool(item.get("report_within_24h", False)),
        },
        details=details,
        version=version,
        sample=sample,
    )


def _check_large_animal(code: str, category: str, unit: str, large_animal: Any) -> None:
    """R-CLM-6: ``details.large_animal`` (大牲畜) is a yes/no of livestock counted by the head."""
    if large_animal is None:
        return
    if not isinstance(large_animal, bool):
        raise PricingError(f"{code}: details.large_animal must be true or false")
    if large_animal and (category != "livestock" or unit != "head"):
        raise PricingError(f"{code}: only livestock counted by the head can be large animals")


def _check_index(code: str, index: Any) -> None:
    """R-CLM-2: each trigger's levels get stricter and pay more, within 0..1 of the sum insured."""
    if not isinstance(index, dict) or not index.get("triggers"):
        raise PricingError(f"{code}: a weather-index product needs details.index.triggers")
    for trigger in index["triggers"]:
        compare = trigger.get("compare")
        if compare not in (">=", "<="):
            raise PricingError(f"{code}: trigger compare must be >= or <=")
        levels = trigger.get("levels") or []
        if not levels:
            raise PricingError(f"{code}: trigger {trigger.get('peril')} has no levels")
        thresholds = [to_decimal(level["threshold"], "threshold") for level in levels]
        payouts = [to_decimal(level["payout"], "payout") for level in levels]
        ordered = sorted(thresholds, reverse=compare == "<=")
        if thresholds != ordered or len(set(thresholds)) != len(thresholds):
            raise PricingError(f"{code}: trigger {trigger.get('peril')} levels must get stricter")
        if payouts != sorted(payouts) or not all(Decimal(0) < p <= 1 for p in payouts):
            raise PricingError(f"{code}: trigger {trigger.get('peril')} payouts must rise within 0..1")


def _liability_row(liability: dict[str, Any], version: str, sample: bool) -> dict[str, Any]:
    item = liability["product"]
    code = _code(item["code"], PRODUCT_CODE, "product")
    limits = {f"{name}_fen": yuan_to_fen(value) for name, value in liability["limits"].items()}
    if limits.get("death_disability_per_person_fen", 0) <= 0:
        raise PricingError("liability limits need death_disability_per_person")
    raw_factors = liability["floating_factors"]
    factors: dict[FactorReason, Decimal] = {
        reason: to_decimal(raw_factors[reason], f"floating factor {reason}") for reason in FACTOR_REASONS
    }
    check_floating_factors(factors)
    details = dict(item.get("details") or {})
    details["limits"] = limits
    details["floating_factors"] = {reason: decimal_text(value) for reason, value in factors.items()}
    details["rate_source"] = "industry_table"  # R-LIA-1
    return _product_row(
        code=code,
        kind=ProductKind.LIABILITY.value,
        category=ProductCategory.LIABILITY.value,
        item=item,
        unit="person",
        sum_insured_per_unit_fen=limits["death_disability_per_person_fen"],
        rate="0",
        # The enterprise pays its whole premium: its share is the "farmer" (insured) share.
        shares={"central": "0", "provincial": "0", "county": "0", "farmer": "1"},
        flags={
            "main_crop": False,
            "weather_index": False,
            "needs_ear_tags": False,
            "report_within_24h": bool(item.get("report_within_24h", False)),
        },
        details=details,
        version=version,
        sample=sample,
    )


def _product_row(
    *,
    code: str,
    kind: str,
    category: str,
    item: dict[str, Any],
    unit: str,
    sum_insured_per_unit_fen: int,
    rate: str,
    shares: dict[str, str],
    flags: dict[str, bool],
    details: dict[str, Any],
    version: str,
    sample: bool,
) -> dict[str, Any]:
    return {
        "code": code,
        "kind": kind,
        "category": category,
        "name_zh": str(item["name_zh"]),
        "name_en": str(item["name_en"]),
        "unit": unit,
        "sum_insured_per_unit_fen": sum_insured_per_unit_fen,
        "rate": rate,
        "share_central": shares["central"],
        "share_provincial": shares["provincial"],
        "share_county": shares["county"],
        "share_farmer": shares["farmer"],
        **flags,
        "details": details,
        "disclosure_version": str(item.get("disclosure_version") or version),
        "active": bool(item.get("active", True)),
        "sample": bool(item.get("sample", sample)),
        "catalogue_version": version,
        "updated_at": utcnow(),
    }


def _rate_row(item: dict[str, Any], version: str, sample: bool) -> dict[str, Any]:
    code = _code(item["code"], INDUSTRY_CODE, "industry")
    rate = to_decimal(item["base_rate"], f"{code} base_rate")
    if not Decimal(0) < rate < Decimal(1):
        raise PricingError(f"{code}: base_rate must be between 0 and 1")
    return {
        "industry_code": code,
        "name_zh": str(item["name_zh"]),
        "name_en": str(item["name_en"]),
        "base_rate": decimal_text(rate),
        "sample": bool(item.get("sample", sample)),
        "catalogue_version": version,
    }


def _question_row(item: dict[str, Any], position: int) -> dict[str, Any]:
    answer = str(item.get("risky_answer", "no"))
    if answer not in RISKY_ANSWERS:
        raise PricingError(f"risk question {item.get('code')}: risky_answer must be yes or no")
    return {
        "code": _code(item["code"], PRODUCT_CODE, "risk question"),
        "position": position,
        "text_zh": str(item["zh"]),
        "text_en": str(item["en"]),
        "risky_answer": answer,
        "active": bool(item.get("active", True)),
    }


# --- loading -----------------------------------------------------------------------------------------------


async def load_catalogue(*, session: AsyncSession, path: Path = DEFAULT_CATALOGUE) -> int:
    """Load the seed when missing or when its version differs from the stored one; returns the rows written
    (0 when up to date, without writing anything).

    Products, rates and questions are upserted by code in one transaction (``INSERT ... ON CONFLICT DO
    UPDATE``, so two processes starting together do not collide). Rows that are not in the seed (products or
    industries staff added) are never touched or deleted. ``active`` is set on insert only: a product or
    question staff switched off stays off across catalogue versions. A new seed version does replace the
    figures of the products and industries it lists.
    """
    catalogue = read_catalogue(path)
    if await _catalogue_current(session=session, catalogue=catalogue):
        return 0
    await _upsert(session, _table(Product), catalogue.products, "code", keep={"active"})
    await _upsert(session, _table(LiabilityRate), catalogue.rates, "industry_code", keep=set())
    await _upsert(session, _table(RiskQuestion), catalogue.questions, "code", keep={"active"})
    await session.commit()
    return catalogue.row_count


async def _catalogue_current(*, session: AsyncSession, catalogue: Catalogue) -> bool:
    product_codes = [row["code"] for row in catalogue.products]
    stored = (
        await session.exec(
            select(Product.code, Product.catalogue_version).where(col(Product.code).in_(product_codes))
        )
    ).all()
    if len(stored) != len(product_codes) or {version for _, version in stored} != {catalogue.version}:
        return False
    rate_codes = [row["industry_code"] for row in catalogue.rates]
    rates = (
        await session.exec(
            select(LiabilityRate.industry_code, LiabilityRate.catalogue_version).where(
                col(LiabilityRate.industry_code).in_(rate_codes)
            )
        )
    ).all()
    if len(rates) != len(rate_codes) or {version for _, version in rates} != {catalogue.version}:
        return False
    question_codes = [row["code"] for row in catalogue.questions]
    questions = (
        await session.exec(
            select(func.count()).select_from(RiskQuestion).where(col(RiskQuestion.code).in_(question_codes))
        )
    ).one()
    return bool(questions == len(question_codes))


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


async def _upsert(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], key: str, *, keep: set[str]
) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).values(rows)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(rows)
    else:  # pragma: no cover - Tianbao runs on PostgreSQL or SQLite only
        raise CatalogueError(f"no upsert for database {dialect}")
    update = {name: statement.excluded[name] for name in rows[0] if name != key and name not in keep}
    await session.exec(statement.on_conflict_do_update(index_elements=[key], set_=update))


# --- lookups -----------------------------------------------------------------------------------------------


async def list_products(
    session: AsyncSession, kind: str | None = None, active_only: bool = True
) -> list[Product]:
    query = select(Product)
    if kind is not None:
        query = query.where(Product.kind == kind)
    if active_only:
        query = query.where(col(Product.active).is_(True))
    order = case({name: n for n, name in enumerate(CATEGORY_ORDER)}, value=col(Product.category), else_=99)
    return list((await session.exec(query.order_by(order, col(Product.code)))).all())


async def get_product(session: AsyncSession, code: str) -> Product:
    product = await session.get(Product, code)
    if product is None:
        raise UnknownProduct(code)
    return product


async def industry_rate(session: AsyncSession, code: str) -> LiabilityRate:
    """R-LIA-1: the only source of a liability rate. Unknown industries raise ``UnknownIndustry``."""
    rate = await session.get(LiabilityRate, code)
    if rate is None:
        raise UnknownIndustry(code)
    return rate


async def list_industries(session: AsyncSession) -> list[LiabilityRate]:
    """The rate table, riskiest industries first."""
    rates = list((await session.exec(select(LiabilityRate))).all())
    return sorted(rates, key=lambda rate: (-Decimal(rate.base_rate), rate.industry_code))


# The claims and policy tables, named here rather than imported: products sit below enrollment and
# claims (both import products), and a model import back would make a cycle between the packages.
_CLAIM = table(
    "claim", column("id"), column("kind"), column("status"), column("policy_id"), column("loss_started_at")
)
_POLICY = table("policy", column("id"), column("enterprise_id"))
_ENTERPRISE = table("enterprise", column("id"), column("credit_code"))


async def recorded_accidents(
    *, session: AsyncSession, credit_code: str, since: datetime, until: datetime
) -> int:
    """R-LIA-2: accidents on the insurer's own record: liability claims on any policy of the enterprise with
    this credit code whose loss began in ``[since, until)`` (the previous policy year). Denied claims are
    left out: a denial (R-CLM-10) finds that no covered accident happened."""
    query = (
        select(func.count(_CLAIM.c.id))
        .select_from(_CLAIM)
        .join(_POLICY, _POLICY.c.id == _CLAIM.c.policy_id)
        .join(_ENTERPRISE, _ENTERPRISE.c.id == _POLICY.c.enterprise_id)
        .where(
            _ENTERPRISE.c.credit_code == credit_code,
            _CLAIM.c.kind == "liability",
            _CLAIM.c.status != "denied",
            _CLAIM.c.loss_started_at >= since,
            _CLAIM.c.loss_started_at < until,
        )
    )
    return int((await session.exec(query)).one())


async def list_risk_questions(session: AsyncSession, active_only: bool = True) -> list[RiskQuestion]:
    """R-LIA-4: the safety risk survey, in the order it is asked."""
    query = select(RiskQuestion)
    if active_only:
        query = query.where(col(RiskQuestion.active).is_(True))
    return list(
        (await session.exec(query.order_by(col(RiskQuestion.position), col(RiskQuestion.code)))).all()
    )


# --- staff edits -------------------------------------------------------------------------------------------


def _normalised(name: str, value: Any) -> Any:
    if name in _DECIMAL_FIELDS:
        try:
            number = to_decimal(value, name)
        except PricingError as exc:
            raise InvalidChange(str(exc)) from exc
        return decimal_text(number)
    if name in ("active", "sample"):
        if not isinstance(value, bool):
            raise InvalidChange(f"{name} must be true or false")
        return value
    if name == "sum_insured_per_unit_fen":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidChange("sum_insured_per_unit_fen must be a whole number of fen, 0 or more")
        return value
    text = str(value).strip()
    if not text:
        raise InvalidChange(f"{name} cannot be empty")
    return text


async def update_product(
    session: AsyncSession,
    actor: StaffPrincipal,
    code: str,
    changes: dict[str, Any],
    ip: str | None = None,
) -> Product:
    """A staff edit, audited as ``products.update`` with the fields before and after (no row when nothing
    changes). Shares must still add up to exactly 1 and the rate stay within 0..1; a liability product's
    rate is the industry table's and its limits are the catalogue's."""
    product = await get_product(session, code)
    unknown = sorted(set(changes) - EDITABLE_FIELDS)
    if unknown:
        raise InvalidChange(f"these fields cannot be changed: {', '.join(unknown)}")
    wanted = {name: _normalised(name, value) for name, value in changes.items() if value is not None}
    if "rate" in wanted and product.kind == ProductKind.LIABILITY:
        raise InvalidChange("liability rates come from the industry table (R-LIA-1)")
    if "sum_insured_per_unit_fen" in wanted and product.kind == ProductKind.LIABILITY:
        raise InvalidChange("liability limits change only with the catalogue")
    if "rate" in wanted:
        try:
            check_rate(Decimal(wanted["rate"]))
        except PricingError as exc:
            raise InvalidChange(str(exc)) from exc
    merged = {
        name: Decimal(wanted.get(f"share_{name}", getattr(product, f"share_{name}"))) for name in SHARE_NAMES
    }
    try:
        check_shares(merged)
    except PricingError as exc:
        raise InvalidChange(str(exc)) from exc
    changed = {name: value for name, value in wanted.items() if getattr(product, name) != value}
    if not changed:
        return product
    before = {name: getattr(product, name) for name in changed}
    for name, value in changed.items():
        setattr(product, name, value)
    product.updated_at = utcnow()
    session.add(product)
    record_audit(
        session=session,
        actor=actor,
        action="products.update",
        target_type="product",
        target_id=code,
        detail={"before": before, "after": changed},
        ip=ip,
    )
    await session.commit()
    await session.refresh(product)
    return product


async def upsert_industry_rate(
    session: AsyncSession,
    actor: StaffPrincipal,
    code: str,
    name_zh: str,
    name_en: str,
    base_rate: Decimal | str,
    ip: str | None = None,
    sample: bool | None = None,
) -> LiabilityRate:
    """Add an industry to the rate table or change one (R-LIA-1: the table is the only source of rates);
    audited as ``products.industry_rate``. A seeded industry keeps its catalogue version, so the edit
    survives restarts until a new catalogue version replaces the table's figures."""
    if not INDUSTRY_CODE.match(code):
        raise InvalidChange(
            "industry code: lowercase letters, digits and _, at most 20, starting with a letter"
        )
    try:
        rate = to_decimal(base_rate, "base_rate")
    except PricingError as exc:
        raise InvalidChange(str(exc)) from exc
    if not Decimal(0) < rate < Decimal(1):
        raise InvalidChange("base_rate must be between 0 and 1")
    names = {"name_zh": name_zh.strip(), "name_en": name_en.strip()}
    if not all(names.values()):
        raise InvalidChange("industry names cannot be empty")
    row = await session.get(LiabilityRate, code)
    after: dict[str, Any] = {**names, "base_rate": decimal_text(rate)}
    if row is None:
        after["sample"] = True if sample is None else sample
        before: dict[str, Any] | None = None
        row = LiabilityRate(industry_code=code, catalogue_version="", **after)
    else:
        if sample is not None:
            after["sample"] = sample
        after = {name: value for name, value in after.items() if getattr(row, name) != value}
        if not after:
            return row
        before = {name: getattr(row, name) for name in after}
        for name, value in after.items():
            setattr(row, name, value)
    session.add(row)
    record_audit(
        session=session,
        actor=actor,
        action="products.industry_rate",
        target_type="liability_rate",
        target_id=code,
        detail={"before": before, "after": after},
        ip=ip,
    )
    await session.commit()
    await session.refresh(row)
    return row

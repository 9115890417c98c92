"""Premiums and product rules as pure functions: Decimal arithmetic, rounded half up to the fen, no floats.

- Agricultural premium (``quote_agricultural``): sum insured = sum insured per unit x quantity, rounded to the
  fen; premium = sum insured x rate, rounded to the fen; the central, provincial and county shares are each
  rounded to the fen and **the farmer's share carries the rounding remainder**, so the four shares always add
  up to the premium exactly. Exception: when the farmer's share is zero (the government pays everything,
  R-ENR-9) or the remainder would make it negative (tiny premiums only), the remainder moves to the largest
  government share instead, so a farmer is never billed or credited a fen that the shares do not give them.
- Liability premium (``quote_liability``): per employee and year = death/disability limit per person x
  industry base rate (R-LIA-1, from the rate table only) x floating factor (R-LIA-2), rounded to the fen;
  the total is that per-person premium times the number of employees (so it divides evenly per head).
- Verification (R-ENR-7), evidence, late entry (R-ENR-6) and weather-index payouts (R-CLM-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from backend.products.models import LiabilityRate, Product, ProductCategory, ProductKind

FEN_PER_YUAN = 100
ONE = Decimal(1)
ZERO = Decimal(0)

# R-ENR-6: late entry of a main-crop enrollment at most 30 days late, with a written reason.
LATE_ENTRY_MAX_DAYS = 30
# R-ENR-7: crop insurance of 100 mu and more (以上 includes the number) needs on-site verification.
CROP_VERIFICATION_MIN_MU = Decimal(100)
# R-ENR-7: insureds that must have their own policy (as opposed to households of a collective enrollment).
ORGANISATION_TYPES = frozenset({"large_grower", "family_farm", "enterprise", "organisation"})
# Units counted in whole animals or people: a fraction of a head is refused.
WHOLE_UNITS = frozenset({"head", "bird", "person"})
# Planted products (crop insurance in 001's sense, 种植业): field crops and weather-index fruit orchards.
PLANTED_CATEGORIES = frozenset({ProductCategory.CROP.value, ProductCategory.INDEX.value})

SHARE_NAMES = ("central", "provincial", "county", "farmer")
GOVERNMENT_SHARES = ("central", "provincial", "county")

FactorReason = Literal["accident_free", "one_accident", "several_accidents", "no_history"]
FACTOR_REASONS: tuple[FactorReason, ...] = (
    "accident_free",
    "one_accident",
    "several_accidents",
    "no_history",
)
VerificationReason = Literal["organisation", "crop_100_mu_or_more", "facility"]
Evidence = Literal["land_rights", "head_count_epidemic_ear_tags", "photos"]
LateEntryRefusal = Literal["not_main_crop", "too_late", "reason_required"]


class PricingError(ValueError):
    """A quote that cannot be made as asked (a bad quantity, a product of the other kind, bad figures)."""


# --- money -------------------------------------------------------------------------------------------------


def round_fen(amount: Decimal) -> int:
    """An amount in fen (possibly fractional) rounded half up to a whole fen."""
    return int(amount.quantize(ONE, rounding=ROUND_HALF_UP))


def yuan_to_fen(yuan: Decimal | int | str) -> int:
    """Yuan (a decimal, never a float) to fen, rounded half up."""
    if isinstance(yuan, float):
        raise PricingError("money must not be a float")
    return round_fen(to_decimal(yuan, "amount") * FEN_PER_YUAN)


def fen_to_yuan(fen: int) -> str:
    """Fen to a yuan string with two decimals: 123456 -> '1234.56', -5 -> '-0.05'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def to_decimal(value: Decimal | int | str, what: str) -> Decimal:
    """A finite Decimal from a decimal string, an int or a Decimal; floats are refused."""
    if isinstance(value, (float, bool)):
        raise PricingError(f"{what} must be a decimal string, not {type(value).__name__}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise PricingError(f"{what} is not a number: {value!r}") from exc
    if not number.is_finite():
        raise PricingError(f"{what} is not a finite number: {value!r}")
    return number


def decimal_text(value: Decimal) -> str:
    """How a rate or share is stored: plain notation without trailing zeros ('0.06', '1', never '6E-2')."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


# --- agricultural ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgriQuote:
    product_code: str
    unit: str
    quantity: Decimal
    rate: Decimal
    sum_insured_per_unit_fen: int
    sum_insured_fen: int
    premium_fen: int
    central_fen: int
    provincial_fen: int
    county_fen: int
    farmer_fen: int  # what the insured pays (R-ENR-9: before the policy is issued)
    sample: bool

    @property
    def payable_fen(self) -> int:
        return self.farmer_fen

    @property
    def total_fen(self) -> int:
        """Alias of ``premium_fen``."""
        return self.premium_fen

    def shares_fen(self) -> dict[str, int]:
        return {
            "central": self.central_fen,
            "provincial": self.provincial_fen,
            "county": self.county_fen,
            "farmer": self.farmer_fen,
        }

    def premium(self) -> dict[str, int]:
        """The breakdown as an application stores it: total and each share, in fen."""
        return {"total": self.premium_fen, **self.shares_fen()}


def product_shares(product: Product) -> dict[str, Decimal]:
    return {
        "central": to_decimal(product.share_central, "share_central"),
        "provincial": to_decimal(product.share_provincial, "share_provincial"),
        "county": to_decimal(product.share_county, "share_county"),
        "farmer": to_decimal(product.share_farmer, "share_farmer"),
    }


def check_shares(shares: Mapping[str, Decimal]) -> None:
    """Each share within 0..1 and the four adding up to exactly 1."""
    for name in SHARE_NAMES:
        if not ZERO <= shares[name] <= ONE:
            raise PricingError(f"share {name} must be between 0 and 1, got {shares[name]}")
    total = sum((shares[name] for name in SHARE_NAMES), ZERO)
    if total != ONE:
        raise PricingError(f"premium shares must add up to 1, they add up to {total}")


def check_rate(rate: Decimal, what: str = "rate") -> None:
    if not ZERO <= rate <= ONE:
        raise PricingError(f"{what} must be between 0 and 1, got {rate}")


def split_premium(premium_fen: int, shares: Mapping[str, Decimal]) -> dict[str, int]:
    """Split a premium by the shares; see the module docstring for where the rounding remainder goes."""
    check_shares(shares)
    split = {name: round_fen(premium_fen * shares[name]) for name in GOVERNMENT_SHARES}
    farmer = premium_fen - sum(split.values())
    if farmer < 0 or (shares["farmer"] == ZERO and farmer != 0):
        largest = max(GOVERNMENT_SHARES, key=lambda name: (shares[name], -GOVERNMENT_SHARES.index(name)))
        split[largest] += farmer  # the remainder is at most one fen either way, never below zero here
        farmer = 0
    split["farmer"] = farmer
    return split


def check_quantity(product: Product, quantity: Decimal | int | str) -> Decimal:
    number = to_decimal(quantity, "quantity")
    if number <= 0:
        raise PricingError("quantity must be more than 0")
    if product.unit in WHOLE_UNITS and number != number.to_integral_value():
        raise PricingError(f"quantity in {product.unit} must be a whole number")
    return number


def quote_agricultural(product: Product, quantity: Decimal) -> AgriQuote:
    if product.kind != ProductKind.AGRICULTURAL:
        raise PricingError(f"{product.code} is not an agricultural product")
    number = check_quantity(product, quantity)
    rate = to_decimal(product.rate, "rate")
    check_rate(rate)
    sum_insured = round_fen(product.sum_insured_per_unit_fen * number)
    premium = round_fen(sum_insured * rate)
    split = split_premium(premium, product_shares(product))
    return AgriQuote(
        product_code=product.code,
        unit=product.unit,
        quantity=number,
        rate=rate,
        sum_insured_per_unit_fen=product.sum_insured_per_unit_fen,
        sum_insured_fen=sum_insured,
        premium_fen=premium,
        central_fen=split["central"],
        provincial_fen=split["provincial"],
        county_fen=split["county"],
        farmer_fen=split["farmer"],
        sample=product.sample,
    )


# --- liability cover ---------------------------------------------------------------------------------------

DEATH_DISABILITY_LIMIT = "death_disability_per_person_fen"
MEDICAL_LIMIT = "medical_per_person_fen"


@dataclass(frozen=True)
class LiabilityQuote:
    product_code: str
    industry_code: str
    employees: int
    accidents_previous_year: int | None
    base_rate: Decimal  # R-LIA-1: from the industry table
    factor: Decimal  # R-LIA-2
    factor_reason: FactorReason
    effective_rate: Decimal
    premium_per_person_fen: int
    premium_fen: int
    limits_fen: dict[str, int] = field(default_factory=dict)
    sample: bool = True

    @property
    def payable_fen(self) -> int:
        return self.premium_fen

    @property
    def total_fen(self) -> int:
        """Alias of ``premium_fen``."""
        return self.premium_fen

    @property
    def per_person_fen(self) -> int:
        """Alias of ``premium_per_person_fen``."""
        return self.premium_per_person_fen

    @property
    def limit_death_fen(self) -> int:
        """The death/disability limit per person."""
        return self.limits_fen[DEATH_DISABILITY_LIMIT]

    @property
    def limit_medical_fen(self) -> int:
        """The medical-costs limit per person (0 when the product has none)."""
        return self.limits_fen.get(MEDICAL_LIMIT, 0)

    def premium(self) -> dict[str, Any]:
        """The breakdown as an application stores it."""
        return {
            "total": self.premium_fen,
            "per_person": self.premium_per_person_fen,
            "employees": self.employees,
            "industry_code": self.industry_code,
            "base_rate": decimal_text(self.base_rate),
            "factor": decimal_text(self.factor),
            "factor_reason": self.factor_reason,
        }


def liability_limits(product: Product) -> dict[str, int]:
    limits = product.details.get("limits") or {}
    if not isinstance(limits, dict) or not isinstance(limits.get(DEATH_DISABILITY_LIMIT), int):
        raise PricingError(f"{product.code} has no {DEATH_DISABILITY_LIMIT} limit")
    return {str(name): int(value) for name, value in limits.items()}


def factor_reason(accidents_previous_year: int | None) -> FactorReason:
    """R-LIA-2: which floating factor applies. None: a first-year enterprise with no known history."""
    if accidents_previous_year is None:
        return "no_history"
    if accidents_previous_year < 0:
        raise PricingError("accidents_previous_year cannot be negative")
    if accidents_previous_year == 0:
        return "accident_free"
    return "one_accident" if accidents_previous_year == 1 else "several_accidents"


def worse_accident_count(declared: int | None, recorded: int) -> int | None:
    """R-LIA-2: the lower rate may not rest on the enterprise's word alone. The insurer's own record
    (accident claims in the previous policy year) is a floor: the worse of the two counts applies. A record
    of none changes nothing: the insurer may not have covered the enterprise, so "none known" is no proof
    of an accident-free year (and a first-year enterprise stays at the base rate)."""
    if recorded < 0:
        raise PricingError("recorded accidents cannot be negative")
    if recorded == 0:
        return declared
    return max(declared or 0, recorded)


def floating_factors(product: Product) -> dict[FactorReason, Decimal]:
    raw = product.details.get("floating_factors") or {}
    missing = [reason for reason in FACTOR_REASONS if reason not in raw]
    if missing:
        raise PricingError(f"{product.code} lacks floating factors {missing}")
    factors = {reason: to_decimal(raw[reason], f"floating factor {reason}") for reason in FACTOR_REASONS}
    check_floating_factors(factors)
    return factors


def check_floating_factors(factors: Mapping[FactorReason, Decimal]) -> None:
    """R-LIA-2: an accident-free year must lower the rate below every other case; accidents never lower it."""
    for reason, value in factors.items():
        if value <= 0:
            raise PricingError(f"floating factor {reason} must be positive")
    free = factors["accident_free"]
    if not (free < factors["no_history"] and free < ONE):
        raise PricingError("accident_free must be below 1 and below no_history (R-LIA-2)")
    if not (factors["no_history"] <= factors["one_accident"] <= factors["several_accidents"]):
        raise PricingError("accidents must not lower the factor: no_history <= one_accident <= several")


def quote_liability(
    product: Product, rate: LiabilityRate, employees: int, accidents_previous_year: int | None
) -> LiabilityQuote:
    """``rate`` is a row of the industry table (R-LIA-1); look it up with ``service.industry_rate``."""
    if product.kind != ProductKind.LIABILITY:
        raise PricingError(f"{product.code} is not liability cover")
    if isinstance(employees, bool) or not isinstance(employees, int) or employees < 1:
        raise PricingError("employees must be a whole number of at least 1")
    base_rate = to_decimal(rate.base_rate, "base_rate")
    if not ZERO < base_rate < ONE:
        raise PricingError(f"base rate of {rate.industry_code} must be between 0 and 1")
    reason = factor_reason(accidents_previous_year)
    factor = floating_factors(product)[reason]
    limits = liability_limits(product)
    effective = base_rate * factor
    per_person = round_fen(limits[DEATH_DISABILITY_LIMIT] * effective)
    return LiabilityQuote(
        product_code=product.code,
        industry_code=rate.industry_code,
        employees=employees,
        accidents_previous_year=accidents_previous_year,
        base_rate=base_rate,
        factor=factor,
        factor_reason=reason,
        effective_rate=effective,
        premium_per_person_fen=per_person,
        premium_fen=per_person * employees,
        limits_fen=limits,
        sample=product.sample or rate.sample,
    )


# --- enrollment rules --------------------------------------------------------------------------------------


def is_planted(product: Product) -> bool:
    """Crop insurance in 001's sense (种植业): field crops and the weather-index fruit orchards."""
    return product.category in PLANTED_CATEGORIES


def verification_reasons(product: Product, quantity: Decimal, insured_type: str) -> list[VerificationReason]:
    """R-ENR-7: why on-site verification (实地验标) is required; an empty list when it is not.

    100 mu counts (以上 includes the number); the area rule applies to planted products measured in mu.
    """
    reasons: list[VerificationReason] = []
    if insured_type in ORGANISATION_TYPES:
        reasons.append("organisation")
    area = to_decimal(quantity, "quantity")
    if is_planted(product) and product.unit == "mu" and area >= CROP_VERIFICATION_MIN_MU:
        reasons.append("crop_100_mu_or_more")
    if product.category == ProductCategory.FACILITY:
        reasons.append("facility")
    return reasons


def required_evidence(product: Product) -> list[Evidence]:
    """R-ENR-7: what a verification must collect: land rights for crops, head count with epidemic
    prevention and ear tags for livestock, photos always."""
    evidence: list[Evidence] = []
    if is_planted(product):
        evidence.append("land_rights")
    if product.category == ProductCategory.LIVESTOCK:
        evidence.append("head_count_epidemic_ear_tags")
    evidence.append("photos")
    return evidence


def late_entry_allowed(product: Product) -> bool:
    """R-ENR-6: late entry (补录) exists only for main-crop products."""
    return product.kind == ProductKind.AGRICULTURAL and product.main_crop


def late_entry_refusal(product: Product, days_late: int, reason: str) -> LateEntryRefusal | None:
    """R-ENR-6 in full: None when a late entry is acceptable, otherwise why not."""
    if not late_entry_allowed(product):
        return "not_main_crop"
    if days_late > LATE_ENTRY_MAX_DAYS:
        return "too_late"
    if not reason.strip():
        return "reason_required"
    return None


# --- weather index (R-CLM-2) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexPayout:
    peril: str
    level: int
    threshold: Decimal
    payout_share: Decimal  # of the sum insured


def index_payout(product: Product, peril: str, observed: Decimal) -> IndexPayout | None:
    """The highest trigger level an observation reaches for ``peril``, or None below the first level."""
    index = product.details.get("index") or {}
    value = to_decimal(observed, "observation")
    for trigger in index.get("triggers", []):
        if trigger.get("peril") != peril:
            continue
        reached: IndexPayout | None = None
        for level in trigger.get("levels", []):
            threshold = to_decimal(level["threshold"], "threshold")
            hit = value >= threshold if trigger.get("compare") == ">=" else value <= threshold
            if hit:
                reached = IndexPayout(
                    peril=peril,
                    level=int(level["level"]),
                    threshold=threshold,
                    payout_share=to_decimal(level["payout"], "payout"),
                )
        return reached
    return None

"""Validation of the identifiers and values an applicant types in (R-ENR-2, R-ENR-3). Pure functions, no I/O.

Every validator normalises what was typed (full-width digits and letters from a Chinese keyboard become
ASCII, spaces go, lower-case letters go upper-case) and returns the normalised value, or raises a
:class:`ValidationProblem` whose ``code`` names the message template ``enroll/invalid_<code>`` and whose
``detail`` (strings only) fills it, so the applicant is told which part is wrong (R-ENR-3).

Error codes, in the order each validator checks them:

Resident ID number (GB 11643, :func:`validate_resident_id`, raises :class:`IdNumberError`):

- ``id_length``: not 18 characters. detail ``length``.
- ``id_characters``: not 17 digits followed by a digit or X. detail ``position`` (1-based), ``character``.
- ``id_birth_date``: positions 7-14 are not a real date (YYYYMMDD), or before 1850, or in the future.
  detail ``birth_date`` (the 8 characters as typed). 1850, not 1900: people born in the 1880s and 1890s
  were issued numbers (the standard's own worked example 440524188001010014 is one); nobody alive was born
  before 1850, so an earlier year is a typo.

Whether positions 1-6 name a county known to the regions table needs the database: the service layer checks
it (``backend/enrollment/service.py: check_id_region``), code ``id_region``.
- ``id_check_character``: the ISO 7064 MOD 11-2 check character does not match. detail ``expected``,
  ``actual``.

Unified social credit code (GB 32100-2015, :func:`validate_credit_code`, raises :class:`CreditCodeError`):

- ``uscc_length``: not 18 characters. detail ``length``.
- ``uscc_characters``: a character outside ``0-9A-HJ-NPQRTUWXY`` (I, O, Z, S, V are never used).
  detail ``position`` (1-based), ``character`` (the first bad one).
- ``uscc_registration_department``: position 1 (registration department) is not in the standard's table,
  or position 2 (organisation category) is not allowed for that department. detail ``department``,
  ``category``, ``part`` (``department`` or ``category``).
- ``uscc_region``: positions 3-8 are not 6 digits of a GB/T 2260 province (or ``100000``, the national
  level). detail ``region``.
- ``uscc_check_character``: the MOD 31 check character (position 18) does not match. detail ``expected``,
  ``actual``.

Others (raise :class:`ValidationProblem`):

- ``bank_account_format``: a bank card / 一卡通 / passbook number is not 12-30 digits. detail ``length``.
- ``ear_tag_format``: a livestock ear tag is not 15 digits. detail ``value``.
- ``name_format``: a person's name is not 1-30 CJK or Latin letters (with ``·`` between parts).
  detail ``reason`` (``empty``, ``too_long``, ``character``, ``dot``) and ``character`` when one is bad.
- ``quantity_format``: not a positive number, or decimals where the unit takes whole numbers, or more
  than two decimals. detail ``reason`` (``not_a_number``, ``not_positive``, ``whole_number``,
  ``decimals``, ``too_large``), ``unit``.

GB 32100 registration departments and their organisation categories (position 1, position 2), from the
standard's annex table as amended (N, agriculture, added for rural collective economic organisations):

=====  ================================  ======================
dept   registration department           allowed categories
=====  ================================  ======================
1      机构编制 (establishment offices)   1 机关, 2 事业单位, 3 群众团体, 9 其他
2      外交 (foreign affairs)             1 外国常驻新闻机构, 9 其他
3      司法行政 (justice)                 1 律师执业机构, 2 公证处, 3 基层法律服务所, 4 司法鉴定机构,
                                         5 仲裁委员会, 9 其他
4      文化 (culture)                     1 外国在华文化中心, 9 其他
5      民政 (civil affairs)               1 社会团体, 2 民办非企业单位, 3 基金会, 9 其他
6      旅游 (tourism)                     1 外国旅游部门常驻代表机构, 2 港澳台地区旅游部门常驻代表机构, 9 其他
7      宗教 (religious affairs)           1 宗教活动场所, 2 宗教院校, 9 其他
8      工会 (trade unions)                1 基层工会, 9 其他
9      工商 (market regulation)           1 企业, 2 个体工商户, 3 农民专业合作社
A      中央军委改革和编制办公室            1 军队事业单位, 9 其他
N      农业 (agriculture)                 1 组级, 2 村级, 3 乡镇级集体经济组织, 9 其他
Y      其他 (other)                       1
=====  ================================  ======================

Positions 9-17 (the GB 11714 organisation code) are not checked beyond the character set.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "ERROR_CODES",
    "CreditCodeError",
    "IdNumberError",
    "ValidationProblem",
    "birth_date_of",
    "credit_code_check_character",
    "mask_id_number",
    "registered_name_key",
    "resident_id_check_character",
    "validate_bank_account",
    "validate_credit_code",
    "validate_ear_tag",
    "validate_person_name",
    "validate_quantity",
    "validate_resident_id",
]

ERROR_CODES: tuple[str, ...] = (
    "id_length",
    "id_characters",
    "id_birth_date",
    "id_check_character",
    "uscc_length",
    "uscc_characters",
    "uscc_registration_department",
    "uscc_region",
    "uscc_check_character",
    "bank_account_format",
    "ear_tag_format",
    "name_format",
    "quantity_format",
)


class ValidationProblem(ValueError):
    """A refused value: ``code`` names the template ``enroll/invalid_<code>``, ``detail`` fills it."""

    def __init__(self, code: str, detail: dict[str, str] | None = None) -> None:
        self.code = code
        self.detail: dict[str, str] = dict(detail or {})
        super().__init__(f"{code}: {self.detail}" if self.detail else code)


class IdNumberError(ValidationProblem):
    """A resident ID number (GB 11643) is refused."""


class CreditCodeError(ValidationProblem):
    """A unified social credit code (GB 32100) is refused."""


def _normalise(raw: str) -> str:
    """Full-width to ASCII (NFKC), no whitespace at all, upper case."""
    text = unicodedata.normalize("NFKC", raw or "")
    return "".join(text.split()).upper()


# --- Resident ID number: GB 11643-1999, check character ISO 7064 MOD 11-2 (R-ENR-3) ---

ID_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARACTERS = "10X98765432"  # indexed by (sum of digit x weight) mod 11
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
# The oldest birth year accepted: older than anyone alive, young enough to catch a mistyped century
# (e.g. 1049 for 1949). Numbers of people born in the 1880s-1890s are valid (GB 11643's worked example).
ID_MIN_BIRTH_YEAR = 1850


def resident_id_check_character(first17: str) -> str:
    """The check character for the first 17 digits of a resident ID number."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise ValueError("17 ASCII digits expected")
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARACTERS[total % 11]


def _birth_date(number: str, today: date | None) -> date:
    text = number[6:14]
    try:
        born = date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise IdNumberError("id_birth_date", {"birth_date": text}) from None
    if born.year < ID_MIN_BIRTH_YEAR or born > (today or date.today()):
        raise IdNumberError("id_birth_date", {"birth_date": text})
    return born


def validate_resident_id(raw: str, *, today: date | None = None) -> str:
    """Return the normalised 18-character resident ID number, or raise :class:`IdNumberError`."""
    number = _normalise(raw)
    if len(number) != 18:
        raise IdNumberError("id_length", {"length": str(len(number))})
    if not _ID_SHAPE.fullmatch(number):
        for index, character in enumerate(number):
            allowed = "0123456789X" if index == 17 else "0123456789"
            if character not in allowed:
                raise IdNumberError("id_characters", {"position": str(index + 1), "character": character})
    _birth_date(number, today)
    expected = resident_id_check_character(number[:17])
    if number[17] != expected:
        raise IdNumberError("id_check_character", {"expected": expected, "actual": number[17]})
    return number


def birth_date_of(id_number: str) -> date:
    """The birth date inside a resident ID number (positions 7-14); raises ``id_birth_date`` if not real."""
    number = _normalise(id_number)
    if len(number) != 18:
        raise IdNumberError("id_length", {"length": str(len(number))})
    return _birth_date(number, None)


def mask_id_number(id_number: str) -> str:
    """Minimum disclosure (R-PUB-4): the first 4 and last 4 characters, asterisks between.

    Works for resident ID numbers and credit codes alike: ``1101**********002X``. Anything of 8 characters
    or fewer is masked entirely.
    """
    number = _normalise(id_number)
    if len(number) <= 8:
        return "*" * len(number)
    return f"{number[:4]}{'*' * (len(number) - 8)}{number[-4:]}"


# --- Unified social credit code: GB 32100-2015, check character MOD 31 (R-ENR-3) ---

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, Z, S, V
CREDIT_CODE_WEIGHTS: tuple[int, ...] = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUE = {character: value for value, character in enumerate(CREDIT_CODE_ALPHABET)}
REGISTRATION_DEPARTMENTS: dict[str, frozenset[str]] = {
    "1": frozenset("1239"),  # 机构编制: 机关, 事业单位, 中央编办直接管理机构编制的群众团体, 其他
    "2": frozenset("19"),  # 外交: 外国常驻新闻机构, 其他
    "3": frozenset("123459"),  # 司法行政: 律所, 公证处, 基层法律服务所, 司法鉴定机构, 仲裁委员会, 其他
    "4": frozenset("19"),  # 文化: 外国在华文化中心, 其他
    "5": frozenset("1239"),  # 民政: 社会团体, 民办非企业单位, 基金会, 其他
    "6": frozenset("129"),  # 旅游: 外国/港澳台旅游部门常驻代表机构, 其他
    "7": frozenset("129"),  # 宗教: 宗教活动场所, 宗教院校, 其他
    "8": frozenset("19"),  # 工会: 基层工会, 其他
    "9": frozenset("123"),  # 工商: 企业, 个体工商户, 农民专业合作社
    "A": frozenset("19"),  # 中央军委改革和编制办公室: 军队事业单位, 其他
    "N": frozenset("1239"),  # 农业: 组级/村级/乡镇级集体经济组织, 其他
    "Y": frozenset("1"),  # 其他: one category only
}
# GB/T 2260 province-level codes (first two digits of a division code): 11-15, 21-23, 31-37, 41-46, 50-54,
# 61-65, 71 (Taiwan), 81 and 82 (Hong Kong, Macao).
PROVINCE_CODES = frozenset(
    str(code)
    for first, last in ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (71, 71), (81, 82))
    for code in range(first, last + 1)
)
NATIONAL_REGION = "100000"  # registrations at the national level


def credit_code_check_character(first17: str) -> str:
    """The MOD 31 check character for the first 17 characters of a unified social credit code."""
    if len(first17) != 17 or any(character not in _CREDIT_VALUE for character in first17):
        raise ValueError("17 characters of the credit code alphabet expected")
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(raw: str) -> str:
    """Return the normalised 18-character unified social credit code, or raise :class:`CreditCodeError`."""
    code = _normalise(raw)
    if len(code) != 18:
        raise CreditCodeError("uscc_length", {"length": str(len(code))})
    for index, character in enumerate(code):
        if character not in _CREDIT_VALUE:
            raise CreditCodeError("uscc_characters", {"position": str(index + 1), "character": character})
    department, category = code[0], code[1]
    if department not in REGISTRATION_DEPARTMENTS:
        raise CreditCodeError(
            "uscc_registration_department",
            {"department": department, "category": category, "part": "department"},
        )
    if category not in REGISTRATION_DEPARTMENTS[department]:
        raise CreditCodeError(
            "uscc_registration_department",
            {"department": department, "category": category, "part": "category"},
        )
    region = code[2:8]
    if not (region.isdigit() and (region[:2] in PROVINCE_CODES or region == NATIONAL_REGION)):
        raise CreditCodeError("uscc_region", {"region": region})
    expected = credit_code_check_character(code[:17])
    if code[17] != expected:
        raise CreditCodeError("uscc_check_character", {"expected": expected, "actual": code[17]})
    return code


# --- Bank account, ear tag, name, quantity (R-ENR-2) ---

BANK_ACCOUNT_MIN_DIGITS = 12
BANK_ACCOUNT_MAX_DIGITS = 30


def validate_bank_account(raw: str) -> str:
    """A bank card, 一卡通 or passbook number: 12-30 digits once spaces are removed."""
    account = _normalise(raw)
    if not (account.isascii() and account.isdigit()) or not (
        BANK_ACCOUNT_MIN_DIGITS <= len(account) <= BANK_ACCOUNT_MAX_DIGITS
    ):
        raise ValidationProblem("bank_account_format", {"length": str(len(account))})
    return account


EAR_TAG_DIGITS = 15  # livestock ear tag: species (1) + county division code (6) + serial number (8)


def validate_ear_tag(raw: str) -> str:
    """A livestock ear tag number: 15 digits."""
    tag = _normalise(raw)
    if not (tag.isascii() and tag.isdigit() and len(tag) == EAR_TAG_DIGITS):
        raise ValidationProblem("ear_tag_format", {"value": tag})
    return tag


NAME_MAX_LENGTH = 30
NAME_DOT = "·"  # U+00B7, between the parts of a transcribed name: 阿卜杜拉·艾力
_NAME_DOT_VARIANTS = "•‧・･．.﹒"  # typed for the middle dot on various keyboards


def _is_cjk(character: str) -> bool:
    point = ord(character)
    return (
        0x4E00 <= point <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= point <= 0x4DBF  # extension A
        or 0x20000 <= point <= 0x3134F  # extensions B-G
        or 0xF900 <= point <= 0xFAFF  # compatibility ideographs
        or point == 0x3007  # 〇
    )


def _is_latin_letter(character: str) -> bool:
    return character.isalpha() and unicodedata.name(character, "").startswith("LATIN ")


def validate_person_name(raw: str) -> str:
    """A person's name: 1-30 CJK or Latin letters, ``·`` between parts, single spaces between Latin words."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    for variant in _NAME_DOT_VARIANTS:
        text = text.replace(variant, NAME_DOT)
    text = " ".join(text.split())
    if not text:
        raise ValidationProblem("name_format", {"reason": "empty"})
    if len(text) > NAME_MAX_LENGTH:
        raise ValidationProblem("name_format", {"reason": "too_long", "length": str(len(text))})
    for index, character in enumerate(text):
        if character == " ":
            if not (_is_latin_letter(text[index - 1]) and _is_latin_letter(text[index + 1])):
                raise ValidationProblem("name_format", {"reason": "character", "character": " "})
        elif character != NAME_DOT and not (_is_cjk(character) or _is_latin_letter(character)):
            raise ValidationProblem("name_format", {"reason": "character", "character": character})
    if text.startswith(NAME_DOT) or text.endswith(NAME_DOT) or NAME_DOT * 2 in text:
        raise ValidationProblem("name_format", {"reason": "dot"})
    return text


def registered_name_key(raw: str) -> str:
    """A registered name reduced for comparison: full-width forms folded (NFKC: （） -> ()), no spaces.

    A bank account's name must be the enterprise's registered name (R-CLM-12 pays only the insured's own
    account); people type the same name with different brackets and spacing, which is not a different name.
    """
    return "".join(unicodedata.normalize("NFKC", raw or "").split())


WHOLE_UNITS = frozenset({"head", "bird", "person"})
DECIMAL_UNITS = frozenset({"mu", "m2"})
QUANTITY_MAX_DECIMALS = 2
QUANTITY_MAX = Decimal("999999999")
_QUANTITY_SHAPE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def validate_quantity(raw: str, unit: str) -> Decimal:
    """A positive quantity in ``unit``: whole numbers for head / bird / person, up to 2 decimals for mu / m2.

    Full-width digits and the full-width point ``．`` (and ``。``, typed for it) are accepted.
    """
    if unit not in WHOLE_UNITS | DECIMAL_UNITS:
        raise ValueError(f"unknown unit {unit!r}")
    text = _normalise(raw).replace("。", ".")
    if not _QUANTITY_SHAPE.fullmatch(text):
        raise ValidationProblem("quantity_format", {"reason": "not_a_number", "unit": unit})
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
        raise ValidationProblem("quantity_format", {"reason": "not_a_number", "unit": unit}) from None
    if value <= 0:
        raise ValidationProblem("quantity_format", {"reason": "not_positive", "unit": unit})
    if value > QUANTITY_MAX:
        raise ValidationProblem("quantity_format", {"reason": "too_large", "unit": unit})
    if unit in WHOLE_UNITS:
        if value != value.to_integral_value():
            raise ValidationProblem("quantity_format", {"reason": "whole_number", "unit": unit})
        return Decimal(int(value))
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > QUANTITY_MAX_DECIMALS:
        raise ValidationProblem("quantity_format", {"reason": "decimals", "unit": unit})
    return Decimal(text.rstrip("0").rstrip(".")) if "." in text else value

"""R-ENR-2, R-ENR-3: typed identifiers and values are checked; a refusal names the wrong part."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from backend.enrollment import validation
from backend.enrollment.validation import (
    ERROR_CODES,
    CreditCodeError,
    IdNumberError,
    ValidationProblem,
    birth_date_of,
    credit_code_check_character,
    mask_id_number,
    resident_id_check_character,
    validate_bank_account,
    validate_credit_code,
    validate_ear_tag,
    validate_person_name,
    validate_quantity,
    validate_resident_id,
)

TODAY = date(2026, 3, 1)

# GB 11643 examples: the standard's own example and numbers whose check character was worked by hand.
VALID_IDS = [
    "11010519491231002X",  # GB 11643-1999 example; check character X
    "440304197510151235",  # check character 5, worked by hand below
    "110101199003074477",  # check character 7
    "320102200002290013",  # 29 February 2000 (a leap year)
]

# Real unified social credit codes published on business licences (check characters computed by the
# issuers, not by us), plus the GB 32100 example commonly cited.
VALID_CREDIT_CODES = [
    "91350100M000100Y43",  # commonly cited example (福州)
    "91440300708461136T",  # 腾讯科技（深圳）有限公司
    "91330100716105852F",  # 阿里巴巴（中国）有限公司
    "914403001922038216",  # 华为技术有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
    "11100000MB0143028R",  # a national-level body: 1 机构编制, 1 机关, region 100000
]


def raises(code: str, func, *args, **kwargs) -> ValidationProblem:
    with pytest.raises(ValidationProblem) as caught:
        func(*args, **kwargs)
    assert caught.value.code == code, caught.value
    assert code in ERROR_CODES
    assert all(isinstance(v, str) for v in caught.value.detail.values())
    return caught.value


# --- resident ID (GB 11643, ISO 7064 MOD 11-2) ---


def test_r_enr_3_resident_id_check_character_by_hand() -> None:
    # 1*7+1*9+0*10+1*5+0*8+5*4+1*2+9*1+4*6+9*3+1*7+2*9+3*10+1*5+0*8+0*4+2*2 = 167; 167 mod 11 = 2 -> X
    assert resident_id_check_character("11010519491231002") == "X"
    # 4*7+4*9+0*10+3*5+0*8+4*4+1*2+9*1+7*6+5*3+1*7+0*9+1*10+5*5+1*8+2*4+3*2 = 227; 227 mod 11 = 7 -> 5
    assert resident_id_check_character("44030419751015123") == "5"


@pytest.mark.parametrize("number", VALID_IDS)
def test_r_enr_3_resident_id_valid_examples(number: str) -> None:
    assert validate_resident_id(number, today=TODAY) == number


def test_r_enr_3_resident_id_is_normalised() -> None:
    assert validate_resident_id(" 110105 19491231 002x ", today=TODAY) == "11010519491231002X"
    assert validate_resident_id("１１０１０５１９４９１２３１００２Ｘ", today=TODAY) == "11010519491231002X"


def test_r_enr_3_resident_id_wrong_check_character_names_expected() -> None:
    problem = raises("id_check_character", validate_resident_id, "110105194912310021", today=TODAY)
    assert isinstance(problem, IdNumberError)
    assert problem.detail == {"expected": "X", "actual": "1"}
    problem = raises("id_check_character", validate_resident_id, "44030419751015123X", today=TODAY)
    assert problem.detail == {"expected": "5", "actual": "X"}


def test_r_enr_3_resident_id_every_single_digit_typo_is_caught() -> None:
    number = VALID_IDS[0]
    for position in range(17):
        for digit in "0123456789":
            if digit == number[position]:
                continue
            typo = number[:position] + digit + number[position + 1 :]
            with pytest.raises(IdNumberError) as caught:
                validate_resident_id(typo, today=TODAY)
            assert caught.value.code in ("id_check_character", "id_birth_date")


@pytest.mark.parametrize(
    ("number", "birth_date"),
    [
        ("110105194902300021", "19490230"),  # 30 February
        ("110105190002290017", "19000229"),  # 1900 was not a leap year
        ("110105194913010025", "19491301"),  # month 13
        ("110105194912000021", "19491200"),  # day 0
        ("110105184912310012", "18491231"),  # before 1850: older than anyone alive
        ("11010510491231001X", "10491231"),  # a mistyped century
        ("110105203001010017", "20300101"),  # in the future
        ("110105202603020014", "20260302"),  # tomorrow
    ],
)
def test_r_enr_3_resident_id_impossible_birth_date(number: str, birth_date: str) -> None:
    problem = raises("id_birth_date", validate_resident_id, number, today=TODAY)
    assert problem.detail == {"birth_date": birth_date}


@pytest.mark.parametrize(
    "number",
    [
        "440524188001010014",  # GB 11643-1999's second worked example: born 1 January 1880
        "110105189912310015",  # born in 1899
        "110105185001010013",  # the earliest year accepted
    ],
)
def test_r_enr_3_people_born_before_1900_hold_valid_numbers(number: str) -> None:
    assert validate_resident_id(number, today=TODAY) == number
    assert birth_date_of(number).year < 1900


def test_r_enr_3_resident_id_birth_date_is_checked_before_check_character() -> None:
    # A correct check character does not make 30 February real.
    first17 = "11010519490230002"
    number = first17 + resident_id_check_character(first17)
    raises("id_birth_date", validate_resident_id, number, today=TODAY)


@pytest.mark.parametrize("number", ["", "1101051949123100", "11010519491231002XX", "110105491231002"])
def test_r_enr_3_resident_id_wrong_length(number: str) -> None:
    problem = raises("id_length", validate_resident_id, number, today=TODAY)
    assert problem.detail == {"length": str(len(number))}


@pytest.mark.parametrize(
    ("number", "position", "character"),
    [
        ("11010519491231002A", "18", "A"),
        ("1101051949123100X2", "17", "X"),  # X only as the last character
        ("11O10519491231002X", "3", "O"),
        ("110105-9491231002X", "7", "-"),
    ],
)
def test_r_enr_3_resident_id_wrong_characters(number: str, position: str, character: str) -> None:
    problem = raises("id_characters", validate_resident_id, number, today=TODAY)
    assert problem.detail == {"position": position, "character": character}


def test_r_enr_3_resident_id_today_is_the_default_reference() -> None:
    assert validate_resident_id(VALID_IDS[0]) == VALID_IDS[0]
    raises("id_birth_date", validate_resident_id, "110105209901010011")


def test_birth_date_of_and_masking() -> None:
    assert birth_date_of("11010519491231002x") == date(1949, 12, 31)
    assert birth_date_of("320102200002290013") == date(2000, 2, 29)
    raises("id_birth_date", birth_date_of, "110105194902300021")
    raises("id_length", birth_date_of, "1101")
    # R-PUB-4: first 4 and last 4 only.
    assert mask_id_number("11010519491231002X") == "1101**********002X"
    assert mask_id_number("91350100M000100Y43") == "9135**********0Y43"
    assert mask_id_number("6217000010001234567") == "6217***********4567"
    assert mask_id_number("12345678") == "********"
    assert mask_id_number("") == ""


# --- unified social credit code (GB 32100, MOD 31) ---


def test_r_enr_3_credit_code_check_character_by_hand() -> None:
    # 9 1 3 5 0 1 0 0 M=21 0 0 0 1 0 0 Y=30 4
    # against the weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28:
    # 9+3+27+135+26+420+8+900+112 = 1640; 1640 mod 31 = 28; 31-28 = 3
    values = [validation.CREDIT_CODE_ALPHABET.index(c) for c in "91350100M000100Y4"]
    assert values[8] == 21 and values[15] == 30
    assert sum(v * w for v, w in zip(values, validation.CREDIT_CODE_WEIGHTS, strict=True)) == 1640
    assert credit_code_check_character("91350100M000100Y4") == "3"


def test_r_enr_3_credit_code_check_value_31_is_0_and_30_is_y() -> None:
    # 9+3+27+162+26+420+290+75+65+160+24+196 = 1457 = 31 x 47: 31 - 0 = 31, which is written 0
    assert credit_code_check_character("91360100MA35L1007") == "0"
    assert validate_credit_code("91360100MA35L10070") == "91360100MA35L10070"
    # last character H (17) instead of 7: 1457 - 196 + 476 = 1737; 1737 mod 31 = 1; 31 - 1 = 30 -> Y
    assert credit_code_check_character("91360100MA35L100H") == "Y"
    raises("uscc_check_character", validate_credit_code, "91360100MA35L100H0")


@pytest.mark.parametrize("code", VALID_CREDIT_CODES)
def test_r_enr_3_credit_code_valid(code: str) -> None:
    assert validate_credit_code(code) == code
    assert validate_credit_code(" " + code.lower()[:9] + " " + code.lower()[9:]) == code


def test_r_enr_3_credit_code_alphabet_has_31_characters_without_i_o_z_s_v() -> None:
    alphabet = validation.CREDIT_CODE_ALPHABET
    assert len(alphabet) == len(set(alphabet)) == 31
    assert not set("IOZSV") & set(alphabet)


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_r_enr_3_credit_code_forbidden_letters(letter: str) -> None:
    code = "91350100M000100Y43"
    bad = code[:10] + letter + code[11:]
    problem = raises("uscc_characters", validate_credit_code, bad)
    assert isinstance(problem, CreditCodeError)
    assert problem.detail == {"position": "11", "character": letter}


def test_r_enr_3_credit_code_first_bad_character_is_named() -> None:
    problem = raises("uscc_characters", validate_credit_code, "91350100M0O0100Y4*")
    assert problem.detail == {"position": "11", "character": "O"}


def test_r_enr_3_credit_code_wrong_check_character_names_expected() -> None:
    problem = raises("uscc_check_character", validate_credit_code, "91350100M000100Y44")
    assert problem.detail == {"expected": "3", "actual": "4"}
    problem = raises("uscc_check_character", validate_credit_code, "91440300708461136X")
    assert problem.detail == {"expected": "T", "actual": "X"}


def test_r_enr_3_credit_code_every_single_character_typo_is_caught() -> None:
    code = VALID_CREDIT_CODES[1]
    for position in range(8, 17):  # the organisation code part
        for character in validation.CREDIT_CODE_ALPHABET:
            if character == code[position]:
                continue
            typo = code[:position] + character + code[position + 1 :]
            with pytest.raises(CreditCodeError) as caught:
                validate_credit_code(typo)
            assert caught.value.code == "uscc_check_character"


@pytest.mark.parametrize("code", ["", "91350100M000100Y4", "91350100M000100Y433", "9135"])
def test_r_enr_3_credit_code_wrong_length(code: str) -> None:
    problem = raises("uscc_length", validate_credit_code, code)
    assert problem.detail == {"length": str(len(code))}


def _with_check(first17: str) -> str:
    return first17 + credit_code_check_character(first17)


@pytest.mark.parametrize(
    ("first17", "part"),
    [
        ("B1350100M000100Y4", "department"),  # B is no registration department
        ("X1350100M000100Y4", "department"),
        ("94350100M000100Y4", "category"),  # 工商 has only 1 企业, 2 个体工商户, 3 农民专业合作社
        ("Y2350100M000100Y4", "category"),  # 其他 has category 1 only
        ("17350100M000100Y4", "category"),  # 机构编制: 1, 2, 3, 9
    ],
)
def test_r_enr_3_credit_code_registration_department(first17: str, part: str) -> None:
    problem = raises("uscc_registration_department", validate_credit_code, _with_check(first17))
    assert problem.detail["part"] == part
    assert problem.detail["department"] == first17[0] and problem.detail["category"] == first17[1]


@pytest.mark.parametrize(
    "first17",
    [
        "1135010000000000A",
        "5235010000000000A",
        "9335010000000000A",
        "N2350100000000001",
        "Y1350100000000001",
        "A1350100000000001",
        "8135010000000000A",
    ],
)
def test_r_enr_3_credit_code_departments_of_the_standard_are_accepted(first17: str) -> None:
    code = _with_check(first17)
    assert validate_credit_code(code) == code


@pytest.mark.parametrize("region", ["9901AB", "990100", "000000", "100100"])
def test_r_enr_3_credit_code_region(region: str) -> None:
    problem = raises("uscc_region", validate_credit_code, _with_check(f"91{region}M000100Y4"))
    assert problem.detail == {"region": region}


# --- bank account, ear tag, name, quantity (R-ENR-2) ---


def test_r_enr_2_bank_account() -> None:
    assert validate_bank_account("6217 0000 1000 1234 567") == "6217000010001234567"
    assert validate_bank_account("６２１７０００００１２３") == "621700000123"
    assert validate_bank_account("1" * 30) == "1" * 30
    assert raises("bank_account_format", validate_bank_account, "12345678901").detail == {"length": "11"}
    raises("bank_account_format", validate_bank_account, "1" * 31)
    raises("bank_account_format", validate_bank_account, "6217-0000-1000-1234")
    raises("bank_account_format", validate_bank_account, "62170000100012345A")
    raises("bank_account_format", validate_bank_account, "")


def test_r_enr_2_ear_tag() -> None:
    assert validate_ear_tag("1 360101 00000001") == "136010100000001"
    raises("ear_tag_format", validate_ear_tag, "13601010000000")  # 14 digits
    raises("ear_tag_format", validate_ear_tag, "1360101000000012")  # 16 digits
    assert raises("ear_tag_format", validate_ear_tag, "13601010000000A").detail == {
        "value": "13601010000000A"
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("王大明", "王大明"),
        (" 王喆 ", "王喆"),
        ("阿卜杜拉·艾力", "阿卜杜拉·艾力"),
        ("阿卜杜拉•艾力", "阿卜杜拉·艾力"),  # bullet typed for the middle dot
        ("阿卜杜拉．艾力", "阿卜杜拉·艾力"),  # full-width full stop typed for it
        ("John  Smith", "John Smith"),
        ("𠀾明", "𠀾明"),  # extension B ideograph
        ("李", "李"),
    ],
)
def test_r_enr_2_person_name_valid(raw: str, expected: str) -> None:
    assert validate_person_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("王" * 31, "too_long"),
        ("王大明1", "character"),
        ("王 大明", "character"),  # no spaces between Chinese characters
        ("王大明!", "character"),
        ("·王大明", "dot"),
        ("王大明·", "dot"),
        ("阿卜杜拉··艾力", "dot"),
    ],
)
def test_r_enr_2_person_name_invalid(raw: str, reason: str) -> None:
    assert raises("name_format", validate_person_name, raw).detail["reason"] == reason


def test_r_enr_2_person_name_names_the_bad_character() -> None:
    assert raises("name_format", validate_person_name, "王大明3").detail == {
        "reason": "character",
        "character": "3",
    }
    assert len(validate_person_name("王" * 30)) == 30


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        ("12", "mu", Decimal("12")),
        ("12.5", "mu", Decimal("12.5")),
        ("12.25", "mu", Decimal("12.25")),
        ("100.00", "mu", Decimal("100")),
        ("１２．５", "mu", Decimal("12.5")),  # full-width digits and point
        ("12。5", "mu", Decimal("12.5")),
        (" 350 ", "m2", Decimal("350")),
        ("8", "head", Decimal("8")),
        ("8.0", "head", Decimal("8")),
        ("２０００", "bird", Decimal("2000")),
        ("35", "person", Decimal("35")),
    ],
)
def test_r_enr_2_quantity_valid(raw: str, unit: str, expected: Decimal) -> None:
    value = validate_quantity(raw, unit)
    assert value == expected
    assert str(value) == str(expected)


@pytest.mark.parametrize(
    ("raw", "unit", "reason"),
    [
        ("0", "mu", "not_positive"),
        ("0.00", "mu", "not_positive"),
        ("-3", "mu", "not_a_number"),
        ("abc", "mu", "not_a_number"),
        ("1e3", "mu", "not_a_number"),
        ("", "mu", "not_a_number"),
        ("1,200", "mu", "not_a_number"),
        ("12.345", "mu", "decimals"),
        ("8.5", "head", "whole_number"),
        ("2000.5", "bird", "whole_number"),
        ("1000000000", "mu", "too_large"),
    ],
)
def test_r_enr_2_quantity_invalid(raw: str, unit: str, reason: str) -> None:
    assert raises("quantity_format", validate_quantity, raw, unit).detail == {"reason": reason, "unit": unit}


def test_r_enr_2_quantity_unknown_unit_is_a_programming_error() -> None:
    with pytest.raises(ValueError) as caught:
        validate_quantity("1", "hectare")
    assert not isinstance(caught.value, ValidationProblem)


def test_error_codes_are_documented_and_are_template_names() -> None:
    doc = validation.__doc__ or ""
    for code in ERROR_CODES:
        assert f"``{code}``" in doc, code
        assert code.isidentifier()
    assert len(ERROR_CODES) == len(set(ERROR_CODES)) == 13
    problem = ValidationProblem("id_length", {"length": "3"})
    assert isinstance(problem, ValueError) and "id_length" in str(problem)

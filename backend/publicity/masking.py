"""What a notice may show of a person's numbers (R-PUB-2, R-PUB-4): never a whole ID number, phone or
card number.

- A card number shows every digit except the 5th to 10th counted from the end, which become ``*``:
  ``6222021234567890123`` (19 digits) → ``622202123******0123``; a 10-digit number shows its last 4 only.
- Anything that is not a 10-19 digit card number is masked harder (it is not a card, so the rule's
  shape would say nothing): all but the last 4 digits become ``*``, and 8 digits or fewer become all ``*``.
- ID numbers show their first 4 and last 4 (``mask_id_number``, as on the PDFs); phones 138****5678.
- ``scrub`` is the last safety net over every published text: any run of 7 or more digits (spaces and
  dashes inside allowed, a trailing X for ID numbers) is masked by the rules above, so a number typed
  into a name or an address by mistake is never published whole.
"""

from __future__ import annotations

import re

from backend.enrollment.validation import mask_id_number
from messages import mask_phone

CARD_MIN, CARD_MAX = 10, 19
HIDDEN_FROM_END = (5, 10)  # R-PUB-2: the 5th to the 10th digit counted from the end
KEPT_TAIL = HIDDEN_FROM_END[0] - 1
_SEPARATORS = re.compile(r"[\s\-]")
# Whole numbers first (a card, a phone, an ID number with its X), then numbers written in groups
# ("6222 0212 3456 7890 123", "138-1234-5678"); a group run holding a date is ours and stays.
_CONTIGUOUS = re.compile(r"(?<![\d*])\d{7,}(?:[Xx](?![A-Za-z0-9]))?")
_GROUPED = re.compile(r"(?<![\d*])\d{1,6}(?:[ \-]\d{1,6}){1,6}(?![\d*])")
_DATE_INSIDE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
MIN_DIGITS = 7
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_RESIDENT_ID = re.compile(r"^\d{17}[\dXx]$|^\d{15}$")
_MASKED_CARD = re.compile(r"^\d{0,9}\*{6}\d{4}$")  # the shape mask_card gives a 10-19 digit number
_PLAIN_AMOUNT = re.compile(r"^\d{1,9}(\.\d{1,2})?$")  # below any phone, ID or card in length


def mask_card(raw: str | None) -> str:
    """A card number as published (R-PUB-2); see the module docstring for what is not a card number.
    A value already masked (staff correcting a row copy it from the notice) keeps its shape."""
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        return ""
    if "*" in text:
        return text if _MASKED_CARD.match(text) else _mask_hard(text)
    if not text.isdigit():
        return _mask_hard(text)
    if CARD_MIN <= len(text) <= CARD_MAX:
        first_hidden = len(text) - HIDDEN_FROM_END[1]
        hidden = HIDDEN_FROM_END[1] - HIDDEN_FROM_END[0] + 1
        return f"{text[:first_hidden]}{'*' * hidden}{text[-KEPT_TAIL:]}"
    return _mask_hard(text)


def _mask_hard(text: str) -> str:
    if len(text) <= 8:
        return "*" * len(text)
    return "*" * (len(text) - KEPT_TAIL) + text[-KEPT_TAIL:]


def mask_id(raw: str | None) -> str:
    return mask_id_number(raw or "") if raw else ""


def _masked_run(run: str) -> str:
    digits = _SEPARATORS.sub("", run)
    if _MOBILE.match(digits):
        return mask_phone(digits)
    if _RESIDENT_ID.match(digits):
        return mask_id(digits)
    return mask_card(digits)


def _grouped(run: str) -> str:
    if _DATE_INSIDE.search(run) or len(_SEPARATORS.sub("", run)) < MIN_DIGITS:
        return run
    return _masked_run(run)


def scrub(text: str) -> str:
    """``text`` with every long number in it masked (R-PUB-4's safety net)."""
    whole = _CONTIGUOUS.sub(lambda match: _masked_run(match.group(0)), text)
    return _GROUPED.sub(lambda match: _grouped(match.group(0)), whole)


def plain_amount(value: str) -> str:
    """A number we formatted (an amount, a quantity) stays; anything else is scrubbed."""
    return value if _PLAIN_AMOUNT.match(value) else scrub(value)

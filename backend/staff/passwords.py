"""The staff password rule: long enough, not a common password, not a pattern, not the username.

argon2 makes each guess slow; this makes the first guesses useless. The refusal codes name texts in
``messages/*/errors``. A small bundled list of the most common passwords (Chinese-typical ones too)
and two rules (one character repeated, a simple sequence) catch what guessing tools try first.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

MIN_LENGTH = 12
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
# Rows of a keyboard and the alphabet: a password that is a run of any of them (either way) is a pattern.
_SEQUENCES = (
    "0123456789012345678901234567890",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopqwertyuiop",
    "qwertyuiopasdfghjklzxcvbnm",
    "asdfghjklasdfghjkl",
    "zxcvbnmzxcvbnm",
    "1234567890-=",
)
_TAIL = string.digits + string.punctuation
# The longest repeating unit still counted as a pattern: "abcabcabcabc", "12121212" and "aaaa...".
_MAX_REPEATED_UNIT = 4


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def _is_sequence(text: str) -> bool:
    return any(text in row or text in row[::-1] for row in _SEQUENCES)


def _is_repetition(text: str) -> bool:
    """One short unit repeated over the whole password: "aaaaaaaaaaaa", "abcabcabcabc", "1212121212"."""
    for size in range(1, _MAX_REPEATED_UNIT + 1):
        unit = text[:size]
        if len(text) % size == 0 and unit * (len(text) // size) == text and len(text) > size:
            return True
    return False


def password_problem(password: str, username: str | None = None) -> str | None:
    """The refusal code for ``password`` (for the account ``username``), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return "password_too_short"
    if len(password) > MAX_LENGTH:
        return "password_too_long"
    folded = password.lower()
    # "password2024!" and "qwertyuiop12" are the common word or pattern with a tail: judge the stem too.
    stem = folded.rstrip(_TAIL) or folded
    if folded in common_passwords() or stem in common_passwords():
        return "password_common"
    if any(_is_repetition(text) or _is_sequence(text) for text in {folded, stem}):
        return "password_pattern"
    if username and username.lower() in folded:
        return "password_contains_username"
    return None

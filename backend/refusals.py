"""The domain's one refusal: a code that names a message, and details that fill it.

Every domain error (``EnrollmentError``, ``ClaimError``) is a :class:`Refusal`; ``backend/errors.py`` turns
any of them into one HTTP answer. The texts live in ``messages/<locale>/errors/labels.json`` (staff-facing
codes) and ``messages/<locale>/enroll_errors/labels.json`` (the codes the chat explains), never in Python.
"""

from __future__ import annotations

from messages import MessageNotFound, label, labels_for

# Looked up in this order: a staff text first, then the text the chat shows the insured.
MESSAGE_DOMAINS: tuple[str, ...] = ("errors", "enroll_errors")


class Refusal(Exception):
    """A refused request. ``code`` names its message; ``detail`` (strings) fills the message's fields."""

    def __init__(self, code: str, message: str = "", **detail: object) -> None:
        super().__init__(message or code)
        self.code = code
        self.detail = {k: str(v) for k, v in detail.items()}


def refusal_message(code: str, locale: str, detail: dict[str, str]) -> str:
    """The text for ``code`` in ``locale``; the code itself when no text exists (a gap the tests catch)."""
    for domain in MESSAGE_DOMAINS:
        if code in labels_for(domain, locale):
            try:
                return label(f"{domain}.{code}", locale, **detail)
            except (KeyError, IndexError, MessageNotFound):
                return label(f"{domain}.{code}", locale)  # a field the refusal did not give: no fill
    return code

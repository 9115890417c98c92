"""Which staff roles see a person's numbers in full: the one role × field table (issue 11, R-PUB-4).

Minimum disclosure: a number is shown in full only to the roles whose work needs the whole number, and
masked to every other role (and always to the chat, where a phone screen is seen by others). Every staff
output that carries a phone, an ID number or a bank account goes through :func:`shown` with the caller's
role; ``docs/operations.md`` ("Personal numbers staff see") copies the table and
``tests/backend/test_field_masking.py`` checks every staff read route against this very dict.
"""

from __future__ import annotations

from enum import StrEnum

from backend.staff.models import Role
from messages import mask_phone


class Personal(StrEnum):
    PHONE = "phone"
    ID_NUMBER = "id_number"  # resident ID number or unified social credit code
    BANK_ACCOUNT = "bank_account"


# Who sees the whole number, and why; every other role sees it masked. Admin stands in for every role
# (``require_roles`` lets admin do any staff action), so admin sees what any role may.
FULL_FOR: dict[Personal, frozenset[str]] = {
    # the adjuster calls the reporter to arrange the survey (R-CLM-6); the agent calls the household for
    # verification visits and collective reports (R-ENR-7, R-CLM-3)
    Personal.PHONE: frozenset({Role.ADMIN, Role.ADJUSTER, Role.AGENT}),
    # who verifies identity on site, against the card: the verifiers of R-ENR-7 (agent, adjuster)
    Personal.ID_NUMBER: frozenset({Role.ADMIN, Role.AGENT, Role.ADJUSTER}),
    # who pays: the payment role of R-CLM-12 (underwriter) transfers to the account on file
    Personal.BANK_ACCOUNT: frozenset({Role.ADMIN, Role.UNDERWRITER}),
}


def _keep_ends(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return f"{value[:head]}{'*' * (len(value) - head - tail)}{value[-tail:]}"


def mask(kind: Personal, value: str) -> str:
    """The masked form: phone 138****5678; ID number and bank account their first 4 and last 4
    (as on the PDFs, ``backend/enrollment/documents.py``)."""
    if not value:
        return value
    if kind is Personal.PHONE:
        return mask_phone(value)
    return _keep_ends(value.replace(" ", ""), 4, 4)


def sees_full(role: str | None, kind: Personal) -> bool:
    return role is not None and role in FULL_FOR[kind]


def shown(kind: Personal, value: str | None, role: str | None) -> str:
    """``value`` as ``role`` may see it; ``role`` None is the chat (the insured's own screen): masked."""
    text = value or ""
    return text if sees_full(role, kind) else mask(kind, text)

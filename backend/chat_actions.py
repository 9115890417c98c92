"""The callback-data vocabulary shared by the backend (buttons on outbox notices) and the bot (aiogram
``CallbackData`` classes built from these prefixes and fields). Telegram returns the string of a tapped
button unchanged, so both sides must pack exactly the same string; this module is the one place that
says how. Telegram allows 64 bytes of callback data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

SEPARATOR: Final = ":"  # aiogram's CallbackData separator
MAX_BYTES: Final = 64

PAY_PREFIX: Final = "pay"
CLAIM_PREFIX: Final = "clm"

ClaimVerb = Literal["view", "confirm", "object", "disposal", "documents", "photos"]
CLAIM_VERBS: Final[tuple[str, ...]] = get_args(ClaimVerb)


@dataclass(frozen=True)
class PayButton:
    """ "Pay now" for an application (R-ENR-9): ``pay:<application id>``."""

    application_id: int


@dataclass(frozen=True)
class ClaimButton:
    """A claim action: ``clm:<verb>:<claim id>:<assessed amount in fen, 0 when none>``. The amount rides
    along with confirm/object so a confirmation answers the amount the farmer was shown (R-CLM-14)."""

    action: ClaimVerb
    claim_id: int
    amount: int = 0


ChatAction = PayButton | ClaimButton


class UnknownAction(ValueError):
    """The string is not one of ours (an old button, or tampered data)."""


def pack(action: ChatAction) -> str:
    if isinstance(action, PayButton):
        parts = [PAY_PREFIX, str(action.application_id)]
    else:
        if action.action not in CLAIM_VERBS:
            raise ValueError(f"unknown claim action {action.action!r}")
        parts = [CLAIM_PREFIX, action.action, str(action.claim_id), str(action.amount)]
    packed = SEPARATOR.join(parts)
    if len(packed.encode()) > MAX_BYTES:
        raise ValueError("callback data longer than Telegram allows")
    return packed


def unpack(data: str) -> ChatAction:
    prefix, *rest = data.split(SEPARATOR)
    try:
        if prefix == PAY_PREFIX and len(rest) == 1:
            return PayButton(application_id=int(rest[0]))
        if prefix == CLAIM_PREFIX and len(rest) == 3 and rest[0] in CLAIM_VERBS:
            verb: ClaimVerb = rest[0]  # type: ignore[assignment]
            return ClaimButton(action=verb, claim_id=int(rest[1]), amount=int(rest[2]))
    except ValueError as exc:
        raise UnknownAction(data) from exc
    raise UnknownAction(data)


def pay_button(application_id: int | None) -> str:
    """For a stored row (its id is typed optional until it is flushed)."""
    return pack(PayButton(_stored(application_id)))


def claim_button(action: ClaimVerb, claim_id: int | None, amount: int = 0) -> str:
    return pack(ClaimButton(action, _stored(claim_id), amount))


def _stored(row_id: int | None) -> int:
    if row_id is None:
        raise ValueError("a button needs the id of a stored row")
    return row_id


WARNING_PREFIX: Final = "wrn"


def warning_report_button(warning_id: int) -> str:
    """ "Report a loss" under an official warning (or its all-clear, or the invitation after it):
    ``wrn:<warning id>``; the claim started from it carries the warning (``claim.warning_id``)."""
    return f"{WARNING_PREFIX}{SEPARATOR}{warning_id}"

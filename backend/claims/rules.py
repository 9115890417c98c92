"""Claim rules as pure functions: every number of RULES.md's claims section lives here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

REPORT_WITHIN = timedelta(hours=24)  # R-CLM-1
SURVEY_WITHIN = timedelta(hours=24)  # R-CLM-6
SETTLEMENT_WITHIN = timedelta(days=20)  # R-CLM-11
PAYMENT_WITHIN = timedelta(days=10)  # R-CLM-13
DUE_SOON = timedelta(hours=4)  # a deadline closer than this is "due soon"

# R-CLM-6: larger events are surveyed together with the local government.
JOINT_SURVEY_CROP_MU = Decimal(100)
JOINT_SURVEY_LARGE_ANIMALS = 20
JOINT_SURVEY_POULTRY = 10_000

# R-CLM-5: one county reaching these estimated losses (以上: the number itself included).
CATASTROPHE_CROP_FEN = 5_000_000 * 100
CATASTROPHE_LIVESTOCK_FEN = 2_000_000 * 100
CATASTROPHE_MIN_COUNTIES_EXCLUSIVE = 2  # "more than two counties"

DeadlineState = Literal["on_time", "due_soon", "overdue", "met", "none"]


def report_delay(loss_started_at: datetime, reported_at: datetime) -> tuple[bool, int]:
    """R-CLM-1: (late, delay in minutes past the 24 hours). A late report is accepted, marked late."""
    elapsed = reported_at - loss_started_at
    if elapsed <= REPORT_WITHIN:
        return False, 0
    return True, int((elapsed - REPORT_WITHIN).total_seconds() // 60)


@dataclass(frozen=True)
class DelayParts:
    """A delay as people say it: "3 天 4 小时", never "76 小时" (R-CLM-1)."""

    days: int
    hours: int
    minutes: int


def delay_parts(minutes: int) -> DelayParts:
    days, rest = divmod(max(minutes, 0), 24 * 60)
    hours, minutes_left = divmod(rest, 60)
    return DelayParts(days=days, hours=hours, minutes=minutes_left)


def survey_due(reported_at: datetime) -> datetime:
    return reported_at + SURVEY_WITHIN


def payment_due(agreed_at: datetime) -> datetime:
    return agreed_at + PAYMENT_WITHIN


def settlement_due(surveyed_at: datetime, harvest_on: datetime | None, main_crop: bool) -> datetime:
    """R-CLM-11: 20 days after harvest for main crops (when the harvest date is known), else after the survey."""
    start = harvest_on if main_crop and harvest_on is not None else surveyed_at
    return start + SETTLEMENT_WITHIN


def deadline_state(due_at: datetime | None, met_at: datetime | None, now: datetime) -> DeadlineState:
    if due_at is None:
        return "none"
    if met_at is not None:
        return "met"
    if now > due_at:
        return "overdue"
    if due_at - now <= DUE_SOON:
        return "due_soon"
    return "on_time"


def is_large_animal(category: str, unit: str, details: Mapping[str, Any]) -> bool:
    """R-CLM-6 大牲畜: livestock by the head whose product says so (``details.large_animal``): breeding sows
    and cattle in the catalogue; fattening pigs are not, unless their product says so."""
    return category == "livestock" and unit == "head" and details.get("large_animal") is True


@dataclass
class SurveyTotals:
    """What an event (or a claim on its own) lost, in the three measures R-CLM-6 names."""

    crop_mu: Decimal = Decimal(0)
    large_animals: Decimal = Decimal(0)
    poultry: Decimal = Decimal(0)

    def add(self, category: str, unit: str, quantity: Decimal, *, large_animal: bool) -> None:
        if category in ("crop", "index") and unit == "mu":
            self.crop_mu += quantity
        elif category == "livestock" and unit == "bird":
            self.poultry += quantity
        elif large_animal:
            self.large_animals += quantity

    @property
    def joint_survey(self) -> bool:
        """R-CLM-6: crops 100 mu or more, or 20 large animals, or 10,000 poultry dead (the number included)."""
        return (
            self.crop_mu >= JOINT_SURVEY_CROP_MU
            or self.large_animals >= JOINT_SURVEY_LARGE_ANIMALS
            or self.poultry >= JOINT_SURVEY_POULTRY
        )


def joint_survey_needed(category: str, unit: str, lost_quantity: Decimal, details: Mapping[str, Any]) -> bool:
    """R-CLM-6 for one claim on its own, from its product's category, unit and details (an event adds its
    claims up: ``catastrophe.service.joint_survey_needed_for``)."""
    totals = SurveyTotals()
    totals.add(category, unit, lost_quantity, large_animal=is_large_animal(category, unit, details))
    return totals.joint_survey


def disposal_proof_required(category: str, cause: str) -> bool:
    """R-CLM-7: dead animals need proof of harmless disposal (livestock claims are deaths)."""
    return category == "livestock"


def sampling_required(
    category: str, kind: str, lost_quantity: Decimal, unit: str, mass_disaster: bool
) -> bool:
    """R-CLM-8: crop claims of single households / individual policies, 100 mu and more, or mass disasters."""
    if category != "crop":
        return False
    return kind == "individual" or (unit == "mu" and lost_quantity >= JOINT_SURVEY_CROP_MU) or mass_disaster


CAUSES_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "crop": (
        "typhoon",
        "heavy_rain",
        "flood",
        "drought",
        "hail",
        "low_temperature",
        "pests",
        "fire",
        "other",
    ),
    "facility": ("typhoon", "heavy_rain", "flood", "hail", "snow", "fire", "other"),
    "livestock": ("disease", "typhoon", "flood", "heat", "low_temperature", "fire", "accident", "other"),
    "liability": ("accident",),
}


# R-DIS-4 green channel: the documents a claim needs (label keys ``claims.doc_<name>``), and the shorter
# list while the claim is in a green channel (a graded event's response). Livestock keeps its disposal
# proof (R-CLM-7 is not waived).
STANDARD_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "crop": ("loss_photos", "id_card", "bank_card", "loss_list", "village_certificate"),
    "facility": ("loss_photos", "id_card", "bank_card", "loss_list", "village_certificate"),
    "index": ("id_card", "bank_card"),
    "livestock": (
        "loss_photos",
        "id_card",
        "bank_card",
        "ear_tag_photos",
        "disposal_proof",
        "vet_certificate",
    ),
    "liability": ("accident_report", "id_card", "bank_card", "injury_records", "loss_list"),
}
GREEN_CHANNEL_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "crop": ("loss_photos", "bank_card"),
    "facility": ("loss_photos", "bank_card"),
    "index": ("bank_card",),
    "livestock": ("loss_photos", "bank_card", "disposal_proof"),
    "liability": ("accident_report", "bank_card"),
}
REMOTE_METHODS = ("video", "drone", "satellite")  # R-DIS-4: drone and satellite only in a green channel
GREEN_CHANNEL_ONLY_METHODS = frozenset({"drone", "satellite"})


def claim_documents(category: str, *, green_channel: bool) -> tuple[str, ...]:
    """R-DIS-4: the documents a claim of the category needs; fewer in a green channel."""
    lists = GREEN_CHANNEL_DOCUMENTS if green_channel else STANDARD_DOCUMENTS
    return lists.get(category, lists["crop"])


def remote_methods(*, green_channel: bool) -> tuple[str, ...]:
    """R-DIS-4: the remote survey methods offered (video always; drone and satellite in a green channel)."""
    return (
        REMOTE_METHODS
        if green_channel
        else tuple(m for m in REMOTE_METHODS if m not in GREEN_CHANNEL_ONLY_METHODS)
    )


def prepayment_allowed(kind: str, *, green_channel: bool) -> bool:
    """R-LIA-6 pre-payment for accident claims; R-DIS-4 pre-payment for any claim in a green channel."""
    return kind == "liability" or green_channel

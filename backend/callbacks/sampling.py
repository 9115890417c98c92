"""The draw itself, as a pure function of what the sample records (R-CBK-2), so an auditor who has the
seed, the population (claim ids in order, with their collective case) and the case quotas derives the
same sample again (``service.rederive``).

- **Population**: every paid claim not yet in an earlier population (``callback_population.claim_id`` is
  unique), in claim-id order. A payment enters the population of the first daily draw after it was made.
- **Case** (collective business): claims of kind ``collective`` (reported by an agent for households)
  grouped by their disaster event when they have one (``event:<id>``), else by their policy
  (``policy:<id>``, the collective policy of a village). One claim is one household.
- **Draw**: first ceil(population × rate) claims at random among the whole population (so every payment
  has the same chance, collective or not); then, for each case in key order, the households it still
  lacks, at random among its claims not drawn yet (the quota is what the case still needs: at least 3
  households over all its draws, all of them when it has fewer). One ``random.Random(seed)`` serves every
  step, in that order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

PERMILLE = 1000


@dataclass(frozen=True)
class Member:
    claim_id: int
    case_key: str | None


def required_overall(population: int, permille: int) -> int:
    """At least the rate of those paid, rounded up (integer arithmetic: 199 → 1, 200 → 1, 201 → 2 at 5 ‰)."""
    return -(-population * permille // PERMILLE)


def case_quota(households_paid: int, households_drawn_before: int, per_case: int) -> int:
    """What a case still needs: ``per_case`` households in all (all of them when it has fewer)."""
    return max(0, min(per_case, households_paid) - households_drawn_before)


def draw(seed: int, members: Sequence[Member], case_quotas: Mapping[str, int], permille: int) -> list[int]:
    """The drawn claim ids, in claim-id order."""
    rng = random.Random(seed)
    ordered = sorted(members, key=lambda m: m.claim_id)
    everyone = [m.claim_id for m in ordered]
    chosen = set(rng.sample(everyone, min(required_overall(len(ordered), permille), len(everyone))))
    households = by_case(ordered)
    for key in sorted(case_quotas):
        in_case = households.get(key, [])
        lacking = case_quotas[key] - sum(1 for claim_id in in_case if claim_id in chosen)
        if lacking > 0:
            rest = [claim_id for claim_id in in_case if claim_id not in chosen]
            chosen.update(rng.sample(rest, min(lacking, len(rest))))
    return sorted(chosen)


def by_case(members: Sequence[Member]) -> dict[str, list[int]]:
    """The claim ids of each collective case, in the members' order."""
    cases: dict[str, list[int]] = {}
    for member in members:
        if member.case_key is not None:
            cases.setdefault(member.case_key, []).append(member.claim_id)
    return cases


def case_key(
    kind: str,
    event_id: int | None,
    policy_id: int,
    household_id: int | None = None,
    loss_day: str | None = None,
) -> str | None:
    """A collective case: an agent's report for many households (R-CLM-3), or the claims of households of
    a collective policy (whoever reported them) for one loss: R-CBK-2 asks at least 3 households of each.
    Without an event, a collective policy's losses are told apart by their day (June's hail and August's
    flood are two cases)."""
    if kind != "collective" and household_id is None:
        return None
    if event_id is not None:
        return f"event:{event_id}"
    if household_id is not None and loss_day:
        return f"policy:{policy_id}:{loss_day}"
    return f"policy:{policy_id}"


def one_month_after(moment: datetime) -> datetime:
    """The same day of the next month (the month's last day when it has no such day): R-CBK-1's limit."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    year, month = (aware.year + 1, 1) if aware.month == 12 else (aware.year, aware.month + 1)
    days = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return aware.replace(year=year, month=month, day=min(aware.day, days))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)

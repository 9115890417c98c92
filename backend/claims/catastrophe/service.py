"""R-CLM-5 catastrophe or emergency (大灾及突发事件, 001 part 2 §1.3): claims are linked to a disaster
event; an event is raised when its claims span **more than two counties** (3 or more), or when one county
reaches an estimated loss of **5,000,000 CNY or more for crops** (种植业 500万元以上) or **2,000,000 CNY or
more for livestock** (养殖业 200万元以上); 以上 includes the number (``rules.CATASTROPHE_*``).

Counting (interpretations, stated once here):
- crops (种植业) are the planted categories ``crop`` and ``index`` (weather-index orchards) and ``facility``
  (greenhouses of planted crops); livestock (养殖业) is ``livestock``. Liability claims are not agricultural
  disasters and count for nothing; nor do denied claims (outside the cover).
- a county is a claim's ``county_code``; the estimated loss is ``estimated_amount_fen`` (估损金额).

Grouping (``after_claims_reported``; interpretations): staff no longer have to link claims by hand for the
rule to fire. New claims are grouped into **candidate** events, which staff confirm or split:
- same cause (the claim's ``cause``);
- overlapping time: the loss windows (``loss_started_at`` to ``loss_ended_at``, or the start when the loss
  has no end) overlap once each is widened by ``GROUPING_GAP`` (3 days: rain for days, a typhoon crossing a
  city over two days);
- same or neighbouring region: **neighbouring counties are the counties of one province** (the first 2
  digits of the division code; a municipality counts as a province). A disaster crossing a city boundary
  (three counties in two neighbouring cities) is one candidate, so "more than two counties" can fire. The
  alternative, a shared border, needs adjacency data the division list does not have. Counties across a
  provincial border are not grouped (staff link them by hand); staff split what is not one disaster;
- a new claim joins the matching event (candidate or confirmed) that already holds a claim of its province;
  otherwise unlinked matching claims form a candidate once there are two of them, or one claim reaches a
  county threshold alone. A candidate's region is the smallest division holding its claims' counties.
Candidates are evaluated like any event: crossing a threshold raises them, and their staff alert, once.

Raising an event alerts staff once (``event-<id>-catastrophe``) and tells each linked claimant once
(``event_linked``, recorded on the claim's timeline); claims linked later to a raised event are told too.
A raised event stays raised (also when staff split claims off it). Nothing here commits: the caller's
transaction decides.

R-CLM-6 is decided here too, per event: the claims of an event together reaching 100 mu of crops, 20 large
animals (``rules.is_large_animal``: the product's ``details.large_animal``) or 10,000 poultry are surveyed
with the local government (``joint_survey_needed_for``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.claims import rules, timeline
from backend.claims.catastrophe.models import DisasterEvent
from backend.claims.models import Claim, ClaimEvent, ClaimKind, ClaimStatus
from backend.db import utcnow
from backend.products.models import Product, ProductCategory
from backend.products.pricing import fen_to_yuan
from backend.refusals import Refusal
from backend.regions.models import Region
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.service import record_audit
from messages import local_date, local_day_start, render

CROP_CATEGORIES = frozenset(
    {ProductCategory.CROP.value, ProductCategory.INDEX.value, ProductCategory.FACILITY.value}
)
LIVESTOCK_CATEGORIES = frozenset({ProductCategory.LIVESTOCK.value})
# R-CLM-5 grouping: loss windows this far apart still belong to one disaster (rain for days, a typhoon
# that crosses a city in two days); neighbouring counties are those of one province (module docstring).
GROUPING_GAP = timedelta(days=3)
PROVINCE_DIGITS = 2
CANDIDATE = "candidate"  # grouped automatically: staff confirm or split it
CONFIRMED = "confirmed"  # opened or confirmed by staff
SURVEY_OPEN = (ClaimStatus.REPORTED.value, ClaimStatus.SURVEY_SCHEDULED.value)  # R-CLM-6 still to decide
LINKED_KIND = "event_linked"  # timeline entry (and notice) when a claimant is told of a raised event
ALERT_KIND = "catastrophe"
NAME_MAX = 200
BODY_MAX = 2000
NATIONAL = "000000000000"

# Reason codes stored in DisasterEvent.catastrophe_reasons (machine-readable; templates word them).
MORE_THAN_TWO_COUNTIES = "more_than_two_counties"
CROP_LOSS = "crop_loss"  # "crop_loss:<county code>"
LIVESTOCK_LOSS = "livestock_loss"  # "livestock_loss:<county code>"


class EventError(Refusal):
    """A refusal with a code: not_found, claim_not_found, claim_in_other_event, unknown_cause,
    started_in_future, empty_name, outside_scope; for the response (R-DIS-2 to R-DIS-5): region_not_found,
    estimate_negative, report_not_required, report_not_found, branch_already_closed, branch_not_closed."""


# Every cause a claim may carry: the report causes per category and the weather-index perils.
KNOWN_CAUSES = frozenset(
    {cause for causes in rules.CAUSES_BY_CATEGORY.values() for cause in causes}
    | {"wind", "heavy_rain", "low_temperature"}
)


@dataclass
class CountyTotals:
    county_code: str
    claims: int = 0
    crop_fen: int = 0
    livestock_fen: int = 0

    @property
    def crop_reached(self) -> bool:
        return self.crop_fen >= rules.CATASTROPHE_CROP_FEN

    @property
    def livestock_reached(self) -> bool:
        return self.livestock_fen >= rules.CATASTROPHE_LIVESTOCK_FEN


@dataclass
class EventSummary:
    event: DisasterEvent
    counties: list[CountyTotals] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    county_count: int = 0
    claim_count: int = 0


# --- the rule ------------------------------------------------------------------------------------------


def catastrophe_reasons(totals: Iterable[CountyTotals]) -> list[str]:
    """R-CLM-5 as a pure function of the per-county totals of one event."""
    counties = sorted((t for t in totals if t.claims), key=lambda t: t.county_code)
    reasons: list[str] = []
    if len(counties) > rules.CATASTROPHE_MIN_COUNTIES_EXCLUSIVE:
        reasons.append(MORE_THAN_TWO_COUNTIES)
    for county in counties:
        if county.crop_reached:
            reasons.append(f"{CROP_LOSS}:{county.county_code}")
        if county.livestock_reached:
            reasons.append(f"{LIVESTOCK_LOSS}:{county.county_code}")
    return reasons


def _counted() -> ColumnElement[bool]:
    """Claims that count: agricultural, not denied."""
    return and_(
        col(Claim.status) != ClaimStatus.DENIED.value,
        col(Product.category).in_(sorted(CROP_CATEGORIES | LIVESTOCK_CATEGORIES)),
    )


def _totals_from_rows(rows: Iterable[tuple[str, str, int, int]]) -> list[CountyTotals]:
    """Rows of (county, category, claims, estimated fen) into per-county totals."""
    by_county: dict[str, CountyTotals] = {}
    for county, category, count, amount in rows:
        totals = by_county.setdefault(county, CountyTotals(county_code=county))
        totals.claims += int(count)
        if category in CROP_CATEGORIES:
            totals.crop_fen += int(amount or 0)
        elif category in LIVESTOCK_CATEGORIES:
            totals.livestock_fen += int(amount or 0)
    return sorted(by_county.values(), key=lambda t: t.county_code)


async def county_totals(session: AsyncSession, event_id: int) -> list[CountyTotals]:
    query = (
        select(
            Claim.county_code,
            Product.category,
            func.count(col(Claim.id)),
            func.coalesce(func.sum(col(Claim.estimated_amount_fen)), 0),
        )
        .join(Product, col(Product.code) == col(Claim.product_code))
        .where(col(Claim.event_id) == event_id, _counted())
        .group_by(col(Claim.county_code), col(Product.category))
    )
    return _totals_from_rows((await session.exec(query)).all())


# --- evaluating and raising ----------------------------------------------------------------------------


async def evaluate_event(session: AsyncSession, settings: Settings, event: DisasterEvent) -> list[str]:
    """The reasons the event is a catastrophe now (empty when none). The first time there are any, the
    event is raised: staff alerted once, linked claimants told once. Does not commit."""
    assert event.id is not None
    await session.flush()  # links made in this transaction count
    totals = await county_totals(session, event.id)
    reasons = catastrophe_reasons(totals)
    if reasons:
        merged = list(dict.fromkeys([*event.catastrophe_reasons, *reasons]))
        if merged != list(event.catastrophe_reasons):
            event.catastrophe_reasons = merged  # a new list, so the JSON column is written
        if not event.catastrophe:
            event.catastrophe = True
            event.raised_at = utcnow()
            await _alert(session, settings, event, reasons, totals)
        session.add(event)
    if event.catastrophe:
        await _tell_linked_claimants(session, event)
    await _mark_joint_surveys(session, event.id)
    await session.flush()
    return reasons


# --- R-CLM-6: the joint survey is decided per event -------------------------------------------------------


async def survey_totals(session: AsyncSession, event_ids: Collection[int]) -> dict[int, rules.SurveyTotals]:
    """R-CLM-6 per event: the crop mu, large animals and poultry its counted claims lost (one query for
    all the events; a lost quantity that is not a number counts for nothing)."""
    ids = sorted(set(event_ids))
    if not ids:
        return {}
    query = (
        select(Claim.event_id, Claim.lost_quantity, Product)
        .join(Product, col(Product.code) == col(Claim.product_code))
        .where(col(Claim.event_id).in_(ids), _counted())
    )
    totals: dict[int, rules.SurveyTotals] = {}
    for event_id, quantity, product in (await session.exec(query)).all():
        large = rules.is_large_animal(product.category, product.unit, product.details)
        totals.setdefault(int(event_id or 0), rules.SurveyTotals()).add(
            product.category, product.unit, _quantity(quantity), large_animal=large
        )
    return totals


async def joint_survey_needed_for(session: AsyncSession, claim: Claim, product: Product) -> bool:
    """R-CLM-6: a claim is surveyed with the local government when its event (all its claims together)
    reaches a threshold, or, outside any event, when the claim itself does."""
    if rules.joint_survey_needed(
        product.category, product.unit, _quantity(claim.lost_quantity), product.details
    ):
        return True
    if claim.event_id is None:
        return False
    await session.flush()
    totals = (await survey_totals(session, [claim.event_id])).get(claim.event_id)
    return totals is not None and totals.joint_survey


async def _mark_joint_surveys(session: AsyncSession, event_id: int) -> None:
    """Claims of an event past the R-CLM-6 threshold that are not surveyed yet are surveyed jointly."""
    totals = (await survey_totals(session, [event_id])).get(event_id)
    if totals is None or not totals.joint_survey:
        return
    query = select(Claim).where(
        col(Claim.event_id) == event_id,
        col(Claim.status).in_(SURVEY_OPEN),
        col(Claim.joint_survey).is_(False),
    )
    for claim in (await session.exec(query)).all():
        claim.joint_survey = True
        session.add(claim)


def _quantity(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return value if value.is_finite() and value > 0 else Decimal(0)


async def _alert(
    session: AsyncSession,
    settings: Settings,
    event: DisasterEvent,
    reasons: list[str],
    totals: list[CountyTotals],
) -> None:
    counted = [t for t in totals if t.claims]
    names = await _region_names(session, [t.county_code for t in counted])
    context = {
        "event": _event_context(event),
        "reasons": _reason_contexts(reasons, counted, names),
        "counties": [_county_context(t, names) for t in counted],
        "county_count": len(counted),
        "claim_count": sum(t.claims for t in counted),
    }
    locale = settings.default_locale
    await alert_staff(
        session,
        settings,
        kind=ALERT_KIND,
        region_code=_common_region([t.county_code for t in counted]),
        title=render("alerts/catastrophe_title", locale, ext="txt", **context)[:NAME_MAX],
        body=render("alerts/catastrophe_body", locale, ext="txt", **context)[:BODY_MAX],
        dedupe_key=f"event-{event.id}-catastrophe",
        event_id=event.id,
    )


async def _tell_linked_claimants(session: AsyncSession, event: DisasterEvent) -> None:
    told = exists().where(
        and_(col(ClaimEvent.claim_id) == col(Claim.id), col(ClaimEvent.kind) == LINKED_KIND)
    )
    query = (
        select(Claim)
        .where(col(Claim.event_id) == event.id, col(Claim.status) != ClaimStatus.DENIED.value, ~told)
        .order_by(col(Claim.id))
    )
    context = _event_context(event)
    for claim in (await session.exec(query)).all():
        timeline.record(session, claim, LINKED_KIND, actor="system", event_id=event.id, catastrophe=True)
        await timeline.tell_insured(
            session, claim, "event_linked", dedupe=f"event-{event.id}-linked", event=context
        )


# --- linking -------------------------------------------------------------------------------------------


async def link_to_event(
    session: AsyncSession, settings: Settings, claim: Claim, event_id: int | None = None
) -> DisasterEvent | None:
    """Link ``claim`` to event ``event_id``; without one, group it as a new claim is grouped (a matching
    event, or a candidate with its neighbours; None when it stays on its own). The event is evaluated (and
    raised when it now qualifies); a claimant of a raised event is told. Raises EventError."""
    if event_id is None:
        await after_claims_reported(session, settings, [claim])
        return await session.get(DisasterEvent, claim.event_id) if claim.event_id is not None else None
    event = await session.get(DisasterEvent, event_id)
    if event is None:
        raise EventError("not_found", event_id=event_id)
    if claim.event_id is not None and claim.event_id != event.id:
        raise EventError("claim_in_other_event", claim_id=claim.id, event_id=claim.event_id)
    claim.event_id = event.id
    session.add(claim)
    _widen(event, [claim])
    await evaluate_event(session, settings, event)
    return event


# --- grouping new claims into candidate events ----------------------------------------------------------


def province_of(county_code: str) -> str:
    """The province (or municipality) holding a county: the counties grouped with it (R-CLM-5)."""
    return county_code[:PROVINCE_DIGITS]


def _end(claim: Claim) -> datetime:
    return claim.loss_ended_at or claim.loss_started_at


def _overlaps(start: datetime, end: datetime, other_start: datetime, other_end: datetime) -> bool:
    """Two loss windows belong together when they overlap once each is widened by ``GROUPING_GAP``."""
    return (
        _aware(start) <= _aware(other_end) + GROUPING_GAP
        and _aware(other_start) <= _aware(end) + GROUPING_GAP
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _widen(event: DisasterEvent, claims: Iterable[Claim]) -> None:
    """A candidate's window is its claims' loss windows; a staff event keeps the day staff gave."""
    for claim in claims:
        end = _end(claim)
        if event.ended_on is None or _aware(end) > _aware(event.ended_on):
            event.ended_on = end
        if event.status == CANDIDATE and _aware(claim.loss_started_at) < _aware(event.started_on):
            event.started_on = claim.loss_started_at
        if event.status == CANDIDATE and event.region_code:  # a neighbouring city's claim widens it
            event.region_code = _common_region([event.region_code, claim.county_code])


async def after_claim_reported(
    session: AsyncSession, settings: Settings, claim: Claim
) -> DisasterEvent | None:
    """Called by the reporting service after each new claim, in its transaction (never commits): group it
    (``after_claims_reported``) and evaluate its event. Returns the claim's event, if any."""
    await after_claims_reported(session, settings, [claim])
    return await session.get(DisasterEvent, claim.event_id) if claim.event_id is not None else None


async def after_claims_reported(session: AsyncSession, settings: Settings, claims: Sequence[Claim]) -> None:
    """R-CLM-5 grouping of new claims (one pass per cause and province, a few queries each, never one per claim):

    - a new claim joins the event (candidate or confirmed) of the same cause that holds a claim of the same
      province and whose window overlaps the claim's loss window (each widened by ``GROUPING_GAP``);
    - unlinked claims of one cause and one province whose windows chain together form a **candidate** event
      once there are two of them or one county reaches a loss threshold; staff confirm or split it;
    - every event touched is evaluated: the R-CLM-5 thresholds (and R-CLM-6) apply to candidates too, and a
      candidate that crosses one raises its staff alert once.

    Accidents of enterprises (R-LIA-6) and denied claims are not agricultural disasters. Does not commit."""
    await session.flush()
    to_evaluate: set[int] = set()
    groups: dict[tuple[str, str], list[Claim]] = defaultdict(list)
    for claim in claims:
        if claim.kind == ClaimKind.LIABILITY.value or claim.status == ClaimStatus.DENIED.value:
            continue
        if claim.event_id is not None:
            to_evaluate.add(claim.event_id)
        else:
            groups[(claim.cause, province_of(claim.county_code))].append(claim)
    for (cause, province), group in groups.items():
        to_evaluate |= await _group(session, settings, cause, province, group)
    await session.flush()
    for event_id in sorted(to_evaluate):
        event = await session.get(DisasterEvent, event_id)
        if event is not None:
            await evaluate_event(session, settings, event)


async def _group(
    session: AsyncSession, settings: Settings, cause: str, province: str, new: list[Claim]
) -> set[int]:
    """Group the new claims of one cause and province; returns the ids of the events they joined or formed."""
    low = min(_aware(c.loss_started_at) for c in new) - GROUPING_GAP
    high = max(_aware(_end(c)) for c in new) + GROUPING_GAP
    in_province = exists().where(
        and_(
            col(Claim.event_id) == col(DisasterEvent.id),
            col(Claim.county_code).startswith(province, autoescape=True),
        )
    )
    events = list(
        (
            await session.exec(
                select(DisasterEvent)
                .where(
                    col(DisasterEvent.cause) == cause,
                    col(DisasterEvent.started_on) <= high + GROUPING_GAP,
                    in_province,
                )
                .order_by(col(DisasterEvent.id).desc())
            )
        ).all()
    )
    pending = await _unlinked_neighbours(session, cause, province, low - GROUPING_GAP, high + GROUPING_GAP)
    touched: set[int] = set()
    alone: list[tuple[Claim, str]] = []
    for claim, category in pending:
        event = next(
            (
                e
                for e in events
                if _overlaps(claim.loss_started_at, _end(claim), e.started_on, e.ended_on or e.started_on)
            ),
            None,
        )
        if event is None:
            alone.append((claim, category))
            continue
        claim.event_id = event.id
        session.add(claim)
        _widen(event, [claim])
        session.add(event)
        touched.add(event.id or 0)
    new_ids = {c.id for c in new}
    for cluster in _chains(alone):
        if not any(claim.id in new_ids for claim, _category in cluster):
            continue  # nothing new here: it was weighed when its last claim came in
        totals = _totals_from_rows(
            (c.county_code, category, 1, c.estimated_amount_fen) for c, category in cluster
        )
        if len(cluster) < 2 and not catastrophe_reasons(totals):
            continue  # one claim on its own is no event yet; a later neighbour will group with it
        touched.add(await _candidate(session, settings, cause, [c for c, _category in cluster]))
    return touched


async def _unlinked_neighbours(
    session: AsyncSession, cause: str, province: str, low: datetime, high: datetime
) -> list[tuple[Claim, str]]:
    """Counted claims of the cause in the province, in no event yet, whose loss began before ``high`` and
    ended after ``low`` (one query)."""
    query = (
        select(Claim, Product.category)
        .join(Product, col(Product.code) == col(Claim.product_code))
        .where(
            col(Claim.cause) == cause,
            col(Claim.county_code).startswith(province, autoescape=True),
            col(Claim.event_id).is_(None),
            col(Claim.kind) != ClaimKind.LIABILITY.value,
            col(Claim.loss_started_at) <= high,
            func.coalesce(col(Claim.loss_ended_at), col(Claim.loss_started_at)) >= low,
            _counted(),
        )
        .order_by(col(Claim.loss_started_at), col(Claim.id))
    )
    return [(claim, str(category)) for claim, category in (await session.exec(query)).all()]


def _chains(rows: list[tuple[Claim, str]]) -> list[list[tuple[Claim, str]]]:
    """Claims (sorted by the start of their loss) whose widened windows overlap one after the other."""
    chains: list[list[tuple[Claim, str]]] = []
    chain_end: datetime | None = None
    for row in sorted(rows, key=lambda r: (_aware(r[0].loss_started_at), r[0].id or 0)):
        claim = row[0]
        if chain_end is not None and _aware(claim.loss_started_at) <= chain_end + GROUPING_GAP:
            chains[-1].append(row)
            chain_end = max(chain_end, _aware(_end(claim)))
        else:
            chains.append([row])
            chain_end = _aware(_end(claim))
    return chains


async def _candidate(session: AsyncSession, settings: Settings, cause: str, claims: list[Claim]) -> int:
    started = min(claims, key=lambda c: _aware(c.loss_started_at)).loss_started_at
    region = _common_region([c.county_code for c in claims])
    names = await _region_names(session, [region])
    name = render(
        "alerts/event_auto_name",
        settings.default_locale,
        ext="txt",
        county_name=names.get(region, region),
        county_code=region,
        cause=cause,
        started_on=local_date(started).isoformat(),
    )
    event = DisasterEvent(
        name=name[:NAME_MAX], cause=cause, started_on=started, status=CANDIDATE, region_code=region
    )
    _widen(event, claims)
    session.add(event)
    await session.flush()
    for claim in claims:
        claim.event_id = event.id
        session.add(claim)
    return event.id or 0


# --- staff: events -------------------------------------------------------------------------------------


async def create_event(
    session: AsyncSession,
    actor: StaffPrincipal,
    *,
    name: str,
    cause: str,
    started_on: date,
    region_code: str | None = None,
    ip: str | None = None,
) -> DisasterEvent:
    """Staff open an event (audited), optionally for an area inside their regions. Does not commit."""
    if not name.strip():
        raise EventError("empty_name")
    if region_code is not None:
        if await session.get(Region, region_code) is None:
            raise EventError("region_not_found", region_code=region_code)
        if not actor.covers_region(region_code):
            raise EventError("outside_scope", region_code=region_code)
    if cause not in KNOWN_CAUSES:
        raise EventError("unknown_cause", cause=cause)
    if started_on > local_date(utcnow()):
        raise EventError("started_in_future", started_on=started_on)
    event = DisasterEvent(
        name=name.strip()[:NAME_MAX],
        cause=cause,
        started_on=local_day_start(started_on),
        status=CONFIRMED,
        region_code=region_code or "",
        confirmed_by=actor.user_id,
        confirmed_at=utcnow(),
    )
    session.add(event)
    await session.flush()
    record_audit(
        session=session,
        actor=actor,
        action="events.create",
        target_type="disaster_event",
        target_id=event.id or "",
        detail={
            "name": event.name,
            "cause": cause,
            "started_on": started_on.isoformat(),
            "region_code": event.region_code,
        },
        ip=ip,
    )
    return event


async def link_claims(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    event_id: int,
    claim_ids: Sequence[int],
    ip: str | None = None,
) -> tuple[DisasterEvent, list[str]]:
    """Staff link claims (each within their regions) to an event, which is then evaluated (audited).
    All or nothing: one unknown, out-of-scope or otherwise linked claim refuses the lot. Does not commit."""
    event = await visible_event(session, actor, event_id)
    ids = sorted(set(claim_ids))
    claims = list((await session.exec(select(Claim).where(col(Claim.id).in_(ids)))).all()) if ids else []
    found = {c.id: c for c in claims if actor.covers_region(c.region_code)}
    for claim_id in ids:
        claim = found.get(claim_id)
        if claim is None:
            raise EventError("claim_not_found", claim_id=claim_id)
        if claim.event_id is not None and claim.event_id != event.id:
            raise EventError("claim_in_other_event", claim_id=claim_id, event_id=claim.event_id)
    for claim in found.values():
        claim.event_id = event.id
        session.add(claim)
    reasons = await evaluate_event(session, settings, event)
    record_audit(
        session=session,
        actor=actor,
        action="events.link_claims",
        target_type="disaster_event",
        target_id=event_id,
        detail={"claim_ids": ids, "catastrophe": event.catastrophe, "reasons": reasons},
        ip=ip,
    )
    return event, reasons


async def confirm_event(
    session: AsyncSession, actor: StaffPrincipal, event_id: int, ip: str | None = None
) -> DisasterEvent:
    """Staff confirm a candidate event as one disaster (audited; confirming twice writes nothing)."""
    event = await visible_event(session, actor, event_id)
    if event.status == CONFIRMED:
        return event
    if not actor.is_national:  # one disaster across regions is for staff who see all of its claims
        beyond = exists().where(col(Claim.event_id) == event.id, ~_in_scope(actor))
        if (await session.exec(select(beyond))).one():
            raise EventError("outside_scope", event_id=event_id)
    event.status = CONFIRMED
    event.confirmed_by = actor.user_id
    event.confirmed_at = utcnow()
    session.add(event)
    record_audit(
        session=session,
        actor=actor,
        action="events.confirm",
        target_type="disaster_event",
        target_id=event_id,
        detail={"name": event.name, "cause": event.cause},
        ip=ip,
    )
    return event


async def split_event(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    event_id: int,
    claim_ids: Sequence[int],
    *,
    name: str | None = None,
    ip: str | None = None,
) -> tuple[DisasterEvent, DisasterEvent]:
    """Staff take claims (each within their regions) out of an event into a new, confirmed one: two
    disasters grouped together by the automatic rule. Both are evaluated again; a raised event stays raised.
    All or nothing; at least one claim stays behind. Audited; does not commit."""
    event = await visible_event(session, actor, event_id)
    ids = sorted(set(claim_ids))
    claims = list((await session.exec(select(Claim).where(col(Claim.id).in_(ids)))).all()) if ids else []
    found = {c.id: c for c in claims if actor.covers_region(c.region_code) and c.event_id == event.id}
    missing = [i for i in ids if i not in found]
    if not ids or missing:
        raise EventError("claim_not_found", claim_id=missing[0] if missing else "")
    left = (
        await session.exec(
            select(func.count())
            .select_from(Claim)
            .where(col(Claim.event_id) == event.id, col(Claim.id).notin_(ids))
        )
    ).one()
    if not left:
        raise EventError("split_takes_every_claim", event_id=event_id)
    moved = list(found.values())
    started = min(moved, key=lambda c: _aware(c.loss_started_at)).loss_started_at
    other = DisasterEvent(
        name=(name or "").strip()[:NAME_MAX] or event.name,
        cause=event.cause,
        started_on=started,
        status=CONFIRMED,
        region_code=event.region_code,
        confirmed_by=actor.user_id,
        confirmed_at=utcnow(),
    )
    _widen(other, moved)
    session.add(other)
    await session.flush()
    for claim in moved:
        claim.event_id = other.id
        session.add(claim)
    await evaluate_event(session, settings, event)
    await evaluate_event(session, settings, other)
    record_audit(
        session=session,
        actor=actor,
        action="events.split",
        target_type="disaster_event",
        target_id=event_id,
        detail={"claim_ids": ids, "new_event_id": other.id},
        ip=ip,
    )
    return event, other


async def evaluate_by_staff(
    session: AsyncSession, settings: Settings, actor: StaffPrincipal, event_id: int, ip: str | None = None
) -> tuple[DisasterEvent, list[str]]:
    event = await visible_event(session, actor, event_id)
    reasons = await evaluate_event(session, settings, event)
    record_audit(
        session=session,
        actor=actor,
        action="events.evaluate",
        target_type="disaster_event",
        target_id=event_id,
        detail={"catastrophe": event.catastrophe, "reasons": reasons},
        ip=ip,
    )
    return event, reasons


def _in_scope(actor: StaffPrincipal) -> ColumnElement[bool]:
    return or_(
        *(
            col(Claim.region_code).startswith(significant_prefix(scope), autoescape=True)
            for scope in actor.region_codes
        )
    )


def _visible(actor: StaffPrincipal) -> ColumnElement[bool] | None:
    """Regional staff see events with a claim in their regions, and events with no claims yet."""
    if actor.is_national:
        return None
    has_own = exists().where(and_(col(Claim.event_id) == col(DisasterEvent.id), _in_scope(actor)))
    has_any = exists().where(col(Claim.event_id) == col(DisasterEvent.id))
    return or_(has_own, ~has_any)


async def visible_event(session: AsyncSession, actor: StaffPrincipal, event_id: int) -> DisasterEvent:
    query = select(DisasterEvent).where(col(DisasterEvent.id) == event_id)
    visible = _visible(actor)
    if visible is not None:
        query = query.where(visible)
    event = (await session.exec(query)).first()
    if event is None:
        raise EventError("not_found", event_id=event_id)
    return event


async def list_events(
    session: AsyncSession,
    actor: StaffPrincipal,
    *,
    catastrophe: bool | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[DisasterEvent]:
    query = select(DisasterEvent).order_by(col(DisasterEvent.id).desc()).limit(limit)
    if status is not None:
        query = query.where(col(DisasterEvent.status) == status)
    visible = _visible(actor)
    if visible is not None:
        query = query.where(visible)
    if catastrophe is not None:
        query = query.where(col(DisasterEvent.catastrophe).is_(catastrophe))
    return list((await session.exec(query)).all())


async def event_summary(session: AsyncSession, actor: StaffPrincipal, event: DisasterEvent) -> EventSummary:
    """The linked claims and per-county totals within the staff member's regions, and the event's overall
    county and claim counts (which the catastrophe rule used)."""
    assert event.id is not None
    totals = await county_totals(session, event.id)
    query = (
        select(Claim).where(col(Claim.event_id) == event.id).order_by(col(Claim.county_code), col(Claim.id))
    )
    if not actor.is_national:
        query = query.where(_in_scope(actor))
    claims = list((await session.exec(query)).all())
    shown = {c.county_code for c in claims}
    return EventSummary(
        event=event,
        counties=[t for t in totals if actor.covers_region(t.county_code) or t.county_code in shown],
        claims=claims,
        county_count=len([t for t in totals if t.claims]),
        claim_count=sum(t.claims for t in totals),
    )


# --- helpers -------------------------------------------------------------------------------------------


def _event_context(event: DisasterEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "candidate": event.status == CANDIDATE,
        "cause": event.cause,
        "started_on": local_date(event.started_on).isoformat(),
    }


def _county_context(totals: CountyTotals, names: dict[str, str]) -> dict[str, Any]:
    return {
        "code": totals.county_code,
        "name": names.get(totals.county_code, totals.county_code),
        "claims": totals.claims,
        "crop_yuan": fen_to_yuan(totals.crop_fen),
        "livestock_yuan": fen_to_yuan(totals.livestock_fen),
    }


def _reason_contexts(
    reasons: list[str], totals: list[CountyTotals], names: dict[str, str]
) -> list[dict[str, Any]]:
    by_county = {t.county_code: t for t in totals}
    out: list[dict[str, Any]] = []
    for reason in reasons:
        code, _, county = reason.partition(":")
        item: dict[str, Any] = {"code": code, "county_code": county, "county_name": names.get(county, county)}
        if code == MORE_THAN_TWO_COUNTIES:
            item["counties"] = len(totals)
        elif code == CROP_LOSS:
            item["amount_yuan"] = fen_to_yuan(by_county.get(county, CountyTotals(county)).crop_fen)
            item["threshold_yuan"] = fen_to_yuan(rules.CATASTROPHE_CROP_FEN)
        elif code == LIVESTOCK_LOSS:
            item["amount_yuan"] = fen_to_yuan(by_county.get(county, CountyTotals(county)).livestock_fen)
            item["threshold_yuan"] = fen_to_yuan(rules.CATASTROPHE_LIVESTOCK_FEN)
        out.append(item)
    return out


def _common_region(county_codes: list[str]) -> str:
    """The smallest division holding every county (a county, city or province), or the whole country."""
    codes = sorted(set(county_codes))
    if not codes:
        return NATIONAL
    for length in (6, 4, 2):
        if len({c[:length] for c in codes}) == 1:
            return codes[0][:length].ljust(12, "0")
    return NATIONAL


async def _region_names(session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    unique = sorted(set(codes))
    if not unique:
        return {}
    query = select(Region.code, Region.name).where(col(Region.code).in_(unique))
    return dict((await session.exec(query)).all())

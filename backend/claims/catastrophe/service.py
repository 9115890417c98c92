"""R-CLM-5 catastrophe or emergency (大灾及突发事件, 001 part 2 §1.3): claims are linked to a disaster
event; an event is raised when its claims span **more than two counties** (3 or more), or when one county
reaches an estimated loss of **5,000,000 CNY or more for crops** (种植业 500万元以上) or **2,000,000 CNY or
more for livestock** (养殖业 200万元以上); 以上 includes the number (``rules.CATASTROPHE_*``).

Counting (interpretations, stated once here):
- crops (种植业) are the planted categories ``crop`` and ``index`` (weather-index orchards) and ``facility``
  (greenhouses of planted crops); livestock (养殖业) is ``livestock``. Liability claims are not agricultural
  disasters and count for nothing; nor do denied claims (outside the cover).
- a county is a claim's ``county_code``; the estimated loss is ``estimated_amount_fen`` (估损金额).

Raising an event alerts staff once (``event-<id>-catastrophe``) and tells each linked claimant once
(``event_linked``, recorded on the claim's timeline); claims linked later to a raised event are told too.
A raised event stays raised. Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
from backend.regions.models import Region
from backend.security import StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.service import record_audit
from messages import render

CHINA_TIME = ZoneInfo("Asia/Shanghai")
CROP_CATEGORIES = frozenset(
    {ProductCategory.CROP.value, ProductCategory.INDEX.value, ProductCategory.FACILITY.value}
)
LIVESTOCK_CATEGORIES = frozenset({ProductCategory.LIVESTOCK.value})
# evaluate_county: unlinked claims of one cause in one county within this window form an event.
AUTO_EVENT_WINDOW = timedelta(days=7)
LINKED_KIND = "event_linked"  # timeline entry (and notice) when a claimant is told of a raised event
ALERT_KIND = "catastrophe"
NAME_MAX = 200
BODY_MAX = 2000
NATIONAL = "000000000000"

# Reason codes stored in DisasterEvent.catastrophe_reasons (machine-readable; templates word them).
MORE_THAN_TWO_COUNTIES = "more_than_two_counties"
CROP_LOSS = "crop_loss"  # "crop_loss:<county code>"
LIVESTOCK_LOSS = "livestock_loss"  # "livestock_loss:<county code>"


class EventError(Exception):
    """A refusal with a code: not_found, claim_not_found, claim_in_other_event, unknown_cause,
    started_in_future, empty_name."""

    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.code = code
        self.detail = {k: str(v) for k, v in detail.items()}


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
    await session.flush()
    return reasons


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
    """Link ``claim`` to event ``event_id``; without one, to the recent event of the same cause that
    already holds claims of the claim's county (None when there is none). The event is evaluated (and
    raised when it now qualifies); a claimant of a raised event is told. Raises EventError."""
    if event_id is None:
        event = await _recent_event(
            session, claim.county_code, claim.cause, claim.loss_started_at - AUTO_EVENT_WINDOW
        )
        if event is None:
            return None
    else:
        event = await session.get(DisasterEvent, event_id)
        if event is None:
            raise EventError("not_found", event_id=event_id)
    if claim.event_id is not None and claim.event_id != event.id:
        raise EventError("claim_in_other_event", claim_id=claim.id, event_id=claim.event_id)
    claim.event_id = event.id
    session.add(claim)
    await evaluate_event(session, settings, event)
    return event


async def _recent_event(
    session: AsyncSession, county_code: str, cause: str, since: datetime
) -> DisasterEvent | None:
    query = (
        select(DisasterEvent)
        .join(Claim, col(Claim.event_id) == col(DisasterEvent.id))
        .where(
            col(DisasterEvent.cause) == cause,
            col(Claim.county_code) == county_code,
            col(Claim.loss_started_at) >= since,
        )
        .order_by(col(DisasterEvent.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def evaluate_county(
    session: AsyncSession, settings: Settings, county_code: str, cause: str, since: datetime
) -> DisasterEvent | None:
    """Unlinked claims of ``cause`` in ``county_code`` whose loss began at ``since`` or later: when their
    estimated crop or livestock loss reaches the R-CLM-5 threshold, create an event, link them and raise it.
    Returns the new event, or None. Does not commit."""
    await session.flush()
    query = (
        select(Claim, Product.category)
        .join(Product, col(Product.code) == col(Claim.product_code))
        .where(
            col(Claim.county_code) == county_code,
            col(Claim.cause) == cause,
            col(Claim.event_id).is_(None),
            col(Claim.loss_started_at) >= since,
            _counted(),
        )
        .order_by(col(Claim.id))
    )
    rows = (await session.exec(query)).all()
    if not rows:
        return None
    totals = _totals_from_rows(
        (county_code, category, 1, claim.estimated_amount_fen) for claim, category in rows
    )[0]
    if not (totals.crop_reached or totals.livestock_reached):
        return None
    claims = [claim for claim, _category in rows]
    started = min(c.loss_started_at for c in claims)
    names = await _region_names(session, [county_code])
    name = render(
        "alerts/event_auto_name",
        settings.default_locale,
        ext="txt",
        county_name=names.get(county_code, county_code),
        county_code=county_code,
        cause=cause,
        started_on=_local_day(started).isoformat(),
    )
    event = DisasterEvent(name=name[:NAME_MAX], cause=cause, started_on=started)
    session.add(event)
    await session.flush()
    for claim in claims:
        claim.event_id = event.id
        session.add(claim)
    await evaluate_event(session, settings, event)
    return event


async def after_claim_reported(
    session: AsyncSession, settings: Settings, claim: Claim
) -> DisasterEvent | None:
    """Called by the reporting service after each new claim, in its transaction (never commits): join the
    recent event of the same cause in the claim's county, or create one when the county's unlinked claims
    of that cause in the last 7 days reach a threshold; then evaluate. Returns the claim's event."""
    await after_claims_reported(session, settings, [claim])
    return await session.get(DisasterEvent, claim.event_id) if claim.event_id is not None else None


async def after_claims_reported(session: AsyncSession, settings: Settings, claims: Sequence[Claim]) -> None:
    """``after_claim_reported`` for many new claims at once (weather-index payouts), one pass per county
    and cause. Does not commit."""
    await session.flush()
    since = utcnow() - AUTO_EVENT_WINDOW
    to_evaluate: set[int] = set()
    groups: dict[tuple[str, str], list[Claim]] = defaultdict(list)
    for claim in claims:
        if claim.kind == ClaimKind.LIABILITY.value:
            continue  # accidents of enterprises are not agricultural disasters (R-LIA-6 handles them)
        if claim.event_id is not None:
            to_evaluate.add(claim.event_id)
        else:
            groups[(claim.county_code, claim.cause)].append(claim)
    for (county, cause), group in groups.items():
        event = await _recent_event(session, county, cause, since)
        if event is None:
            await evaluate_county(session, settings, county, cause, since)
            continue
        for claim in group:
            claim.event_id = event.id
            session.add(claim)
        to_evaluate.add(event.id or 0)
    for event_id in sorted(to_evaluate):
        event = await session.get(DisasterEvent, event_id)
        if event is not None:
            await evaluate_event(session, settings, event)


# --- staff: events -------------------------------------------------------------------------------------


async def create_event(
    session: AsyncSession,
    actor: StaffPrincipal,
    *,
    name: str,
    cause: str,
    started_on: date,
    ip: str | None = None,
) -> DisasterEvent:
    """Staff open an event (audited). Does not commit."""
    if not name.strip():
        raise EventError("empty_name")
    if cause not in KNOWN_CAUSES:
        raise EventError("unknown_cause", cause=cause)
    if started_on > _local_day(utcnow()):
        raise EventError("started_in_future", started_on=started_on)
    event = DisasterEvent(name=name.strip()[:NAME_MAX], cause=cause, started_on=_day_start(started_on))
    session.add(event)
    await session.flush()
    record_audit(
        session=session,
        actor=actor,
        action="events.create",
        target_type="disaster_event",
        target_id=event.id or "",
        detail={"name": event.name, "cause": cause, "started_on": started_on.isoformat()},
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
    session: AsyncSession, actor: StaffPrincipal, *, catastrophe: bool | None = None, limit: int = 100
) -> list[DisasterEvent]:
    query = select(DisasterEvent).order_by(col(DisasterEvent.id).desc()).limit(limit)
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


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TIME).astimezone(UTC)


def _local_day(moment: datetime) -> date:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(CHINA_TIME).date()


def _event_context(event: DisasterEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "cause": event.cause,
        "started_on": _local_day(event.started_on).isoformat(),
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

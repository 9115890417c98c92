"""R-CLM-2 weather index: official station readings per township, payouts by the product's index table,
the township's trigger status for the bot, and the payout list by administrative village.

No report is needed (001 part 2 §1.1, §2.2.1): when a reading of the township's station reaches a
trigger of a weather-index product, every active policy of that product whose fields lie in the township
(the policy's region is the township or a village under it: the same first 9 digits) gets an
``IndexPayout`` and a claim of kind ``index``, already assessed at share x sum insured.

Readings:
- ``peril`` is stored as ``wind`` | ``rain`` | ``cold``; the catalogue's index tables name the same perils
  ``wind`` | ``heavy_rain`` | ``low_temperature`` (``INDEX_PERILS``), which is also the claim's cause.
- ``observed_on`` is the station's calendar day in the configured zone (TIANBAO_TIMEZONE), stored as
  00:00 of that day in UTC. One reading per township, peril and day; a repeat is ignored and reported.
- A policy pays for a reading when it is in force at some time on the reading's day.

Payout rules read from the catalogue (``details.index``):
- ``payout_basis``: "the highest level reached per peril and event applies". Readings of one peril on days
  at most ``INDEX_EVENT_DAYS`` apart are one event (an interpretation: the catalogue does not define it), so a
  higher level on the next day pays only the difference to what that event already paid, and a lower or
  equal level pays nothing more.
- ``annual_payout_cap``: the policy's index payouts never exceed that share of its sum insured.

Idempotent: the unique constraints (one reading per township+peril+day, one payout per reading+policy, one
claim per idempotency key ``index-<reading>-<policy>``) make a reading processed twice create nothing new.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import Table, and_, exists
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims import timeline
from backend.claims.index.models import IndexPayout, IndexReading
from backend.claims.index.schemas import (
    PayoutList,
    PayoutOut,
    PayoutRow,
    PerilStatus,
    ReadingIn,
    ReadingOut,
    ReadingRejectReason,
    ReadingReport,
    RejectedReading,
    TriggerStatus,
    VillagePayouts,
)
from backend.claims.models import Claim, ClaimKind, ClaimStatus
from backend.db import utcnow
from backend.enrollment.models import Policy
from backend.numbers import business_number
from backend.products import pricing
from backend.products.models import Product
from backend.refusals import Refusal
from backend.regions.models import Region, RegionLevel
from backend.regions.service import MalformedCode, canonical_code
from backend.security import StaffPrincipal
from backend.settings import Settings
from backend.staff.service import record_audit
from messages import local_date as day_of
from messages import local_day_start as day_start

TOWNSHIP_PREFIX = 9
COUNTY_PREFIX = 6

# Reading perils (IndexReading.peril) and the names the catalogue's index tables give them.
INDEX_PERILS: dict[str, str] = {"wind": "wind", "rain": "heavy_rain", "cold": "low_temperature"}
READING_PERILS: dict[str, str] = {index: reading for reading, index in INDEX_PERILS.items()}
# What a file may call a peril: the reading name or the catalogue name, any case.
PERIL_ALIASES: dict[str, str] = {**{p: p for p in INDEX_PERILS}, **READING_PERILS}
# Values outside these ranges are not plausible station data for the peril's measure (Beaufort wind level,
# 24-hour rain in mm, minimum temperature in °C): most likely a unit mistake (m/s for a wind level).
PLAUSIBLE: dict[str, tuple[Decimal, Decimal]] = {
    "wind": (Decimal(0), Decimal(18)),
    "rain": (Decimal(0), Decimal(2000)),
    "cold": (Decimal(-60), Decimal(60)),
}
VALUE_MAX_CHARS = 20
STATION_MAX_CHARS = 100
# Readings of one peril whose days are at most this far apart belong to one event (see the module doc).
INDEX_EVENT_DAYS = 3
# The bot's trigger status looks back this far when no policy period is given.
STATUS_WINDOW_DAYS = 30
SYSTEM_ACTOR = "system"
LOOKUP_BATCH = 500

T = TypeVar("T")


class ReadingImportError(ValueError):
    """The file cannot be used at all (bad header), as opposed to one bad row."""


class IndexClaimError(Refusal):
    """A refusal with a code: ``not_found`` (no such policy for this caller), ``not_index_product``,
    ``bad_region`` (not a township or village code), ``unknown_region``."""


# --- days ----------------------------------------------------------------------------------------------


def china_today() -> date:
    return day_of(utcnow())


def _parse_day(raw: str) -> date | None:
    text = raw.strip().replace("/", "-")
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    parts = text.split("-")  # 2026-7-5, as spreadsheets write it
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        try:
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            return None
    return None


# --- recording readings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    line: int
    township_code: str
    peril: str
    value: str
    observed_on: str
    station: str


@dataclass(frozen=True)
class _Clean:
    row: _Row
    township_code: str
    peril: str
    value: Decimal
    day: date
    station: str

    @property
    def key(self) -> tuple[str, str, date]:
        return self.township_code, self.peril, self.day


async def record_readings(
    session: AsyncSession,
    actor: StaffPrincipal | None,
    readings: Sequence[ReadingIn],
    source: str = "api",
    *,
    settings: Settings | None = None,
    ip: str | None = None,
) -> ReadingReport:
    """Store good readings, report bad ones with a reason, and pay what the new readings trigger.

    ``actor`` None is the system (no scope). With ``settings``, new index claims are also checked for a
    catastrophe (R-CLM-5). Commits, with one audit row.
    """
    rows = [
        _Row(
            line=position,
            township_code=r.township_code,
            peril=r.peril,
            value=str(r.value),
            observed_on=r.observed_on,
            station=r.station,
        )
        for position, r in enumerate(readings, start=1)
    ]
    return await _record(session, actor, rows, source, settings=settings, ip=ip)


async def import_readings_csv(
    session: AsyncSession,
    actor: StaffPrincipal | None,
    csv_text: str,
    *,
    settings: Settings | None = None,
    ip: str | None = None,
) -> ReadingReport:
    """A CSV file with header ``township_code,peril,value,observed_on[,station]`` (UTF-8, BOM tolerated).
    Raises ReadingImportError when the header is unusable."""
    return await _record(session, actor, _parse_csv(csv_text), "csv", settings=settings, ip=ip)


_REQUIRED_COLUMNS = ("township_code", "peril", "value", "observed_on")
_OPTIONAL_COLUMNS = ("station",)


def _parse_csv(csv_text: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(csv_text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    expected = "township_code,peril,value,observed_on (optionally station)"
    if not header:
        raise ReadingImportError(f"empty file: the first line must be the header {expected}")
    names = [cell.strip().lower() for cell in header]
    unknown = [n for n in names if n not in _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS]
    missing = [n for n in _REQUIRED_COLUMNS if n not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise ReadingImportError(f"header must be {expected}, got {','.join(header)}")
    position = {name: index for index, name in enumerate(names)}

    def cell(cells: list[str], name: str) -> str:
        index = position.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    rows: list[_Row] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        rows.append(
            _Row(
                line=reader.line_num,
                township_code=cell(cells, "township_code"),
                peril=cell(cells, "peril"),
                value=cell(cells, "value"),
                observed_on=cell(cells, "observed_on"),
                station=cell(cells, "station"),
            )
        )
    return rows


async def _record(
    session: AsyncSession,
    actor: StaffPrincipal | None,
    rows: list[_Row],
    source: str,
    *,
    settings: Settings | None,
    ip: str | None,
) -> ReadingReport:
    rejected: list[RejectedReading] = []
    screened: list[_Clean] = []
    today = china_today()
    for row in rows:
        clean = _screen(row, actor, today)
        if isinstance(clean, _Clean):
            screened.append(clean)
        else:
            rejected.append(_rejection(row, clean))
    candidates = await _screen_against_database(session, screened, rejected)
    new_readings = await _insert_readings(session, candidates, source, rejected)
    payouts: list[IndexPayout] = []
    claims: list[Claim] = []
    for reading in new_readings:
        made = await process_reading(session, reading)
        payouts.extend(payout for payout, _claim in made)
        claims.extend(claim for _payout, claim in made)
    if settings is not None and claims:
        from backend.claims.catastrophe.service import after_claims_reported

        await after_claims_reported(session, settings, claims)
    rejected.sort(key=lambda item: item.line)
    report = ReadingReport(
        accepted=len(new_readings),
        rejected=rejected,
        reading_ids=[r.id or 0 for r in new_readings],
        payouts=len(payouts),
        payout_total_fen=sum(p.amount_fen for p in payouts),
    )
    record_audit(
        session=session,
        actor=actor,
        action="index.record_readings",
        target_type="index_reading",
        target_id=source,
        detail={
            "accepted": report.accepted,
            "rejected": len(rejected),
            "reasons": dict(Counter(item.reason for item in rejected)),
            "payouts": report.payouts,
            "payout_total_fen": report.payout_total_fen,
        },
        ip=ip,
    )
    await session.commit()
    return report


def _screen(row: _Row, actor: StaffPrincipal | None, today: date) -> _Clean | ReadingRejectReason:
    """Checks that need no database: shape first, then permission."""
    try:
        township = canonical_code(row.township_code)
    except MalformedCode:
        return "bad_township_code"
    if len(row.township_code.strip()) not in (TOWNSHIP_PREFIX, 12) or not township.endswith("000"):
        return "bad_township_code"
    if actor is not None and not actor.covers_region(township):
        return "outside_scope"
    peril = PERIL_ALIASES.get(row.peril.strip().lower())
    if peril is None:
        return "bad_peril"
    try:
        value = Decimal(row.value.strip())
    except (InvalidOperation, ValueError):
        return "bad_value"
    if not value.is_finite():
        return "bad_value"
    low, high = PLAUSIBLE[peril]
    if not low <= value <= high or len(pricing.decimal_text(value)) > VALUE_MAX_CHARS:
        return "implausible_value"
    day = _parse_day(row.observed_on)
    if day is None:
        return "bad_date"
    if day > today:
        return "future_date"
    station = row.station.strip()
    if len(station) > STATION_MAX_CHARS:
        return "station_too_long"
    return _Clean(row=row, township_code=township, peril=peril, value=value, day=day, station=station)


def _rejection(row: _Row, reason: ReadingRejectReason) -> RejectedReading:
    return RejectedReading(
        line=row.line,
        township_code=row.township_code,
        peril=row.peril,
        value=row.value,
        observed_on=row.observed_on,
        reason=reason,
    )


def _batches(items: Sequence[T], size: int = LOOKUP_BATCH) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _screen_against_database(
    session: AsyncSession, screened: list[_Clean], rejected: list[RejectedReading]
) -> list[_Clean]:
    """The township exists and is a township; first in the file; not stored already."""
    townships = sorted({c.township_code for c in screened})
    levels: dict[str, int] = {}
    for batch in _batches(townships):
        query = select(Region.code, Region.level).where(col(Region.code).in_(batch))
        levels.update({code: level for code, level in (await session.exec(query)).all()})
    stored: dict[tuple[str, str, date], str] = {}
    first = min((c.day for c in screened), default=None)
    for batch in _batches(townships):
        readings = select(IndexReading).where(col(IndexReading.township_code).in_(batch))
        if first is not None:
            readings = readings.where(col(IndexReading.observed_on) >= day_start(first))
        for reading in (await session.exec(readings)).all():
            stored[(reading.township_code, reading.peril, day_of(reading.observed_on))] = reading.value
    accepted: list[_Clean] = []
    seen: set[tuple[str, str, date]] = set()
    for clean in screened:
        reason: ReadingRejectReason | None = None
        if levels.get(clean.township_code) != RegionLevel.TOWNSHIP:
            reason = "unknown_township"
        elif clean.key in seen:
            reason = "duplicate_in_file"
        elif clean.key in stored:
            same = Decimal(stored[clean.key]) == clean.value
            reason = "already_recorded" if same else "conflicts_with_recorded"
        seen.add(clean.key)
        if reason is None:
            accepted.append(clean)
        else:
            rejected.append(_rejection(clean.row, reason))
    return accepted


def _insert_statement(session: AsyncSession) -> Any:
    table: Table = IndexReading.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


async def _insert_readings(
    session: AsyncSession, candidates: list[_Clean], source: str, rejected: list[RejectedReading]
) -> list[IndexReading]:
    """Insert ignoring duplicates (a concurrent import of the same reading loses quietly, reported as
    already recorded); only the rows this call inserted are new."""
    if not candidates:
        return []
    now = utcnow()
    new_ids: list[int] = []
    inserted_keys: set[tuple[str, str, date]] = set()
    table: Table = IndexReading.__table__  # type: ignore[attr-defined]
    for batch in _batches(candidates, 200):
        statement = (
            _insert_statement(session)
            .values(
                [
                    {
                        "township_code": c.township_code,
                        "peril": c.peril,
                        "value": pricing.decimal_text(c.value),
                        "observed_on": day_start(c.day),
                        "station": c.station,
                        "source": source[:20],
                        "created_at": now,
                    }
                    for c in batch
                ]
            )
            .on_conflict_do_nothing(index_elements=["township_code", "peril", "observed_on"])
            .returning(table.c.id, table.c.township_code, table.c.peril, table.c.observed_on)
        )
        result = await session.execute(statement)
        for row in result.all():
            new_ids.append(int(row.id))
            inserted_keys.add((row.township_code, row.peril, day_of(row.observed_on)))
    for clean in candidates:
        if clean.key not in inserted_keys:
            rejected.append(_rejection(clean.row, "already_recorded"))
    readings: list[IndexReading] = []
    for id_batch in _batches(new_ids):
        query = select(IndexReading).where(col(IndexReading.id).in_(id_batch))
        readings.extend((await session.exec(query)).all())
    readings.sort(key=lambda r: r.id or 0)
    return readings


# --- payouts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prior:
    peril: str
    day: date
    share: Decimal
    amount_fen: int


async def process_reading(session: AsyncSession, reading: IndexReading) -> list[tuple[IndexPayout, Claim]]:
    """Pay every active policy of a weather-index product in the reading's township whose trigger the
    reading reaches. Creates nothing for a reading already processed. Does not commit."""
    index_peril = INDEX_PERILS.get(reading.peril)
    if index_peril is None or reading.id is None:
        return []
    value = Decimal(reading.value)
    products = (await session.exec(select(Product).where(col(Product.weather_index).is_(True)))).all()
    hits = {p.code: (p, hit) for p in products if (hit := pricing.index_payout(p, index_peril, value))}
    if not hits:
        return []
    policies = await _policies_in_township(session, reading, list(hits))
    if not policies:
        return []
    prior = await _prior_payouts(session, [p.id or 0 for p in policies])
    day = day_of(reading.observed_on)
    now = utcnow()
    planned: list[tuple[Policy, Product, pricing.IndexPayout, int]] = []
    for policy in policies:
        product, hit = hits[policy.product_code]
        amount = _amount_due(product, policy, hit, reading.peril, day, prior.get(policy.id or 0, []))
        if amount > 0:
            planned.append((policy, product, hit, amount))
    if not planned:
        return []
    claims = [
        _index_claim(reading, policy, product, amount, now) for policy, product, _hit, amount in planned
    ]
    session.add_all(claims)
    await session.flush()
    made: list[tuple[IndexPayout, Claim]] = []
    for (policy, _product, hit, amount), claim in zip(planned, claims, strict=True):
        claim.number = business_number("CL", claim.id, now)
        payout = IndexPayout(
            reading_id=reading.id,
            policy_id=policy.id or 0,
            claim_id=claim.id,
            level=str(hit.level),
            share=pricing.decimal_text(hit.payout_share),
            amount_fen=amount,
            created_at=now,
        )
        made.append((payout, claim))
    session.add_all(payout for payout, _claim in made)
    township = await session.get(Region, reading.township_code)
    for (_policy, product, hit, amount), (_payout, claim) in zip(planned, made, strict=True):
        trigger = _trigger_context(reading, product, hit, township)
        timeline.record(
            session,
            claim,
            "index_payout",
            actor=SYSTEM_ACTOR,
            reading_id=reading.id,
            peril=reading.peril,
            value=reading.value,
            observed_on=day.isoformat(),
            station=reading.station,
            level=hit.level,
            share=pricing.decimal_text(hit.payout_share),
        )
        timeline.record(session, claim, ClaimStatus.ASSESSED.value, actor=SYSTEM_ACTOR, amount_fen=amount)
        await timeline.tell_insured(
            session,
            claim,
            "index_payout",
            dedupe="index-payout",
            payout=_payout_context(hit, amount),
            trigger=trigger,
            product={"code": product.code, "name_zh": product.name_zh, "name_en": product.name_en},
        )
    await session.flush()
    return made


async def _policies_in_township(
    session: AsyncSession, reading: IndexReading, product_codes: list[str]
) -> list[Policy]:
    start = reading.observed_on
    end = start + timedelta(days=1)
    already_paid = exists().where(
        and_(col(IndexPayout.reading_id) == reading.id, col(IndexPayout.policy_id) == col(Policy.id))
    )
    query = (
        select(Policy)
        .where(
            col(Policy.product_code).in_(product_codes),
            col(Policy.status) == "active",
            col(Policy.region_code).startswith(reading.township_code[:TOWNSHIP_PREFIX], autoescape=True),
            col(Policy.starts_at) < end,
            col(Policy.ends_at) > start,
            ~already_paid,
        )
        .order_by(col(Policy.id))
    )
    return list((await session.exec(query)).all())


async def _prior_payouts(session: AsyncSession, policy_ids: list[int]) -> dict[int, list[_Prior]]:
    found: dict[int, list[_Prior]] = defaultdict(list)
    for batch in _batches(policy_ids):
        query = (
            select(IndexPayout, IndexReading.peril, IndexReading.observed_on)
            .join(IndexReading, col(IndexReading.id) == col(IndexPayout.reading_id))
            .where(col(IndexPayout.policy_id).in_(batch))
        )
        for payout, peril, observed_on in (await session.exec(query)).all():
            found[payout.policy_id].append(
                _Prior(
                    peril=peril,
                    day=day_of(observed_on),
                    share=Decimal(payout.share),
                    amount_fen=payout.amount_fen,
                )
            )
    return found


def _amount_due(
    product: Product, policy: Policy, hit: pricing.IndexPayout, peril: str, day: date, prior: list[_Prior]
) -> int:
    """share x sum insured, rounded half up to the fen; less what the same event already paid (the
    highest level per peril and event applies) and never beyond the annual cap."""
    same_event = [p.share for p in prior if p.peril == peril and abs((p.day - day).days) <= INDEX_EVENT_DAYS]
    already = max(same_event, default=Decimal(0))
    due_share = hit.payout_share - already
    if due_share <= 0:
        return 0
    amount = pricing.round_fen(due_share * policy.sum_insured_fen)
    cap_text = (product.details.get("index") or {}).get("annual_payout_cap")
    if cap_text is not None:
        cap_fen = pricing.round_fen(
            pricing.to_decimal(cap_text, "annual_payout_cap") * policy.sum_insured_fen
        )
        amount = min(amount, cap_fen - sum(p.amount_fen for p in prior))
    return max(amount, 0)


def _index_claim(
    reading: IndexReading, policy: Policy, product: Product, amount: int, now: datetime
) -> Claim:
    return Claim(
        number=f"TMP{secrets.token_hex(6)}",
        idempotency_key=f"index-{reading.id}-{policy.id}",
        kind=ClaimKind.INDEX.value,
        status=ClaimStatus.ASSESSED.value,
        policy_id=policy.id or 0,
        product_code=product.code,
        identity_id=policy.identity_id,
        region_code=policy.region_code,
        county_code=policy.region_code[:COUNTY_PREFIX] + "000000",
        insured_name=policy.insured_name,
        cause=INDEX_PERILS[reading.peril],
        loss_started_at=reading.observed_on,
        lost_quantity=policy.quantity,
        unit=product.unit,
        estimated_amount_fen=amount,
        reporter_name=SYSTEM_ACTOR,
        reporter_phone="",
        reported_at=now,
        survey_due_at=None,  # R-CLM-2: no survey, the station data decides
        assessed_amount_fen=amount,
        assessed_at=now,
        updated_at=now,
    )


def _trigger_of(product: Product, index_peril: str) -> dict[str, Any]:
    for trigger in (product.details.get("index") or {}).get("triggers", []):
        if trigger.get("peril") == index_peril:
            return dict(trigger)
    return {}


def _trigger_context(
    reading: IndexReading, product: Product, hit: pricing.IndexPayout, township: Region | None
) -> dict[str, Any]:
    trigger = _trigger_of(product, INDEX_PERILS[reading.peril])
    return {
        "peril": reading.peril,
        "value": reading.value,
        "unit": str(trigger.get("unit", "")),
        "compare": str(trigger.get("compare", ">=")),
        "threshold": pricing.decimal_text(hit.threshold),
        "observed_on": day_of(reading.observed_on).isoformat(),
        "station": reading.station,
        "township_code": reading.township_code,
        "township_name": township.name if township else reading.township_code,
    }


def _payout_context(hit: pricing.IndexPayout, amount: int) -> dict[str, Any]:
    return {
        "level": hit.level,
        "share": pricing.decimal_text(hit.payout_share),
        "share_percent": pricing.decimal_text(hit.payout_share * 100),
        "amount_fen": amount,
        "amount_yuan": pricing.fen_to_yuan(amount),
    }


# --- trigger status, for the bot -------------------------------------------------------------------------


async def township_trigger_status(
    session: AsyncSession,
    township_code: str,
    product_code: str,
    *,
    policy: Policy | None = None,
    today: date | None = None,
) -> TriggerStatus:
    """Per peril of the product: the latest reading and the highest level reached, within the policy
    period (with ``policy``) or the last 30 days; and the policy's payouts. Raises IndexClaimError."""
    product = await session.get(Product, product_code)
    if product is None or not product.weather_index:
        raise IndexClaimError("not_index_product", product_code=product_code)
    try:
        township = canonical_code(township_code[:TOWNSHIP_PREFIX])
    except MalformedCode as exc:
        raise IndexClaimError("bad_region", region=township_code) from exc
    region = await session.get(Region, township)
    if region is None:
        raise IndexClaimError("unknown_region", region=township)
    until = today or china_today()
    since = until - timedelta(days=STATUS_WINDOW_DAYS)
    if policy is not None:
        since = day_of(policy.starts_at)
        until = min(until, day_of(policy.ends_at))
    query = (
        select(IndexReading)
        .where(
            col(IndexReading.township_code) == township,
            col(IndexReading.observed_on) >= day_start(since),
            col(IndexReading.observed_on) < day_start(until + timedelta(days=1)),
        )
        .order_by(col(IndexReading.observed_on), col(IndexReading.id))
    )
    readings = list((await session.exec(query)).all())
    perils = [
        _peril_status(
            product, trigger, [r for r in readings if r.peril == READING_PERILS.get(trigger["peril"])]
        )
        for trigger in (product.details.get("index") or {}).get("triggers", [])
        if trigger.get("peril") in READING_PERILS
    ]
    payouts = await _policy_payouts(session, policy.id or 0) if policy is not None else []
    levels = [p.level for p in perils if p.level is not None]
    paid = sum(p.amount_fen for p in payouts)
    return TriggerStatus(
        township_code=township,
        township_name=region.name,
        product_code=product.code,
        product_name_zh=product.name_zh,
        product_name_en=product.name_en,
        policy_id=policy.id if policy is not None else None,
        since=since,
        until=until,
        triggered=bool(levels),
        level=max(levels) if levels else None,
        perils=perils,
        payouts=payouts,
        paid_total_fen=paid,
        paid_total_yuan=pricing.fen_to_yuan(paid),
    )


def _reading_out(reading: IndexReading) -> ReadingOut:
    return ReadingOut(
        id=reading.id or 0,
        value=reading.value,
        observed_on=day_of(reading.observed_on),
        station=reading.station,
    )


def _peril_status(product: Product, trigger: dict[str, Any], readings: list[IndexReading]) -> PerilStatus:
    index_peril = str(trigger["peril"])
    best: tuple[pricing.IndexPayout, IndexReading] | None = None
    for reading in readings:
        hit = pricing.index_payout(product, index_peril, Decimal(reading.value))
        if hit is not None and (best is None or hit.level > best[0].level):
            best = (hit, reading)
    levels = trigger.get("levels") or []
    return PerilStatus(
        peril=READING_PERILS[index_peril],
        index_peril=index_peril,
        unit=str(trigger.get("unit", "")),
        compare=str(trigger.get("compare", ">=")),
        first_threshold=str(levels[0]["threshold"]) if levels else None,
        latest=_reading_out(readings[-1]) if readings else None,
        triggered=best is not None,
        level=best[0].level if best else None,
        share=pricing.decimal_text(best[0].payout_share) if best else None,
        reached_by=_reading_out(best[1]) if best else None,
    )


async def _policy_payouts(session: AsyncSession, policy_id: int) -> list[PayoutOut]:
    query = (
        select(IndexPayout, IndexReading, Claim)
        .join(IndexReading, col(IndexReading.id) == col(IndexPayout.reading_id))
        .outerjoin(Claim, col(Claim.id) == col(IndexPayout.claim_id))
        .where(col(IndexPayout.policy_id) == policy_id)
        .order_by(col(IndexReading.observed_on), col(IndexPayout.id))
    )
    return [
        PayoutOut(
            claim_id=claim.id if claim else None,
            claim_number=claim.number if claim else None,
            claim_status=claim.status if claim else None,
            peril=reading.peril,
            level=int(payout.level),
            share=payout.share,
            amount_fen=payout.amount_fen,
            amount_yuan=pricing.fen_to_yuan(payout.amount_fen),
            observed_on=day_of(reading.observed_on),
        )
        for payout, reading, claim in (await session.exec(query)).all()
    ]


async def policy_status(session: AsyncSession, policy: Policy) -> TriggerStatus:
    """The trigger status of the policy's township for its product, over the policy period."""
    return await township_trigger_status(session, policy.region_code, policy.product_code, policy=policy)


# --- payout list by administrative village (publication) --------------------------------------------------


async def payout_list(
    session: AsyncSession,
    township_or_village_code: str,
    *,
    since: date | None = None,
    until: date | None = None,
) -> PayoutList:
    """R-CLM-2: the payouts of a township (or one village), grouped by administrative village, with the
    publication fields. ``since``/``until`` limit the readings' days. Raises IndexClaimError."""
    try:
        code = canonical_code(township_or_village_code)
    except MalformedCode as exc:
        raise IndexClaimError("bad_region", region=township_or_village_code) from exc
    region = await session.get(Region, code)
    if region is None:
        raise IndexClaimError("unknown_region", region=code)
    if region.level not in (RegionLevel.TOWNSHIP, RegionLevel.VILLAGE):
        raise IndexClaimError("bad_region", region=code)
    in_region = (
        col(Policy.region_code).startswith(code[:TOWNSHIP_PREFIX], autoescape=True)
        if region.level == RegionLevel.TOWNSHIP
        else col(Policy.region_code) == code
    )
    query = (
        select(IndexPayout, IndexReading, Policy, Product)
        .join(IndexReading, col(IndexReading.id) == col(IndexPayout.reading_id))
        .join(Policy, col(Policy.id) == col(IndexPayout.policy_id))
        .join(Product, col(Product.code) == col(Policy.product_code))
        .where(in_region)
        .order_by(
            col(Policy.region_code),
            col(IndexReading.observed_on),
            col(Policy.insured_name),
            col(IndexPayout.id),
        )
    )
    if since is not None:
        query = query.where(col(IndexReading.observed_on) >= day_start(since))
    if until is not None:
        query = query.where(col(IndexReading.observed_on) < day_start(until + timedelta(days=1)))
    rows = (await session.exec(query)).all()
    names = await _region_names(session, {policy.region_code for _p, _r, policy, _pr in rows})
    grouped: dict[str, list[PayoutRow]] = defaultdict(list)
    for payout, reading, policy, product in rows:
        grouped[policy.region_code].append(
            PayoutRow(
                insured_name=policy.insured_name,
                product_code=product.code,
                subject_zh=product.name_zh,
                subject_en=product.name_en,
                quantity=policy.quantity,
                unit=product.unit,
                peril=reading.peril,
                level=int(payout.level),
                share=payout.share,
                amount_fen=payout.amount_fen,
                amount_yuan=pricing.fen_to_yuan(payout.amount_fen),
                observed_on=day_of(reading.observed_on),
            )
        )
    villages = [
        VillagePayouts(
            village_code=village,
            village_name=names.get(village, village),
            rows=items,
            total_fen=sum(r.amount_fen for r in items),
            total_yuan=pricing.fen_to_yuan(sum(r.amount_fen for r in items)),
        )
        for village, items in grouped.items()
    ]
    total = sum(v.total_fen for v in villages)
    return PayoutList(
        region_code=code,
        region_name=region.name,
        villages=villages,
        count=sum(len(v.rows) for v in villages),
        total_fen=total,
        total_yuan=pricing.fen_to_yuan(total),
    )


async def _region_names(session: AsyncSession, codes: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for batch in _batches(sorted(codes)):
        query = select(Region.code, Region.name).where(col(Region.code).in_(batch))
        names.update(dict((await session.exec(query)).all()))
    return names

"""Resolve a broadcast's audience into recipients and write its outbox rows, set-based.

One pass per range of person ids (``first_chunk`` ids first, so the first messages are claimable within
a second of "send", then ``CHUNK`` ids at a time), each in its own transaction:

1. ``INSERT INTO broadcast_recipient ... SELECT``: the audience's insured rows (individual policies, the
   households of collective policies, listed people, the recipients of earlier broadcasts) grouped per
   person (one message per person, whatever audiences they are in), the chat that reaches them (the
   reach rule of ``people/reach.py``: not stopped, phone verified, used last; as a window function) or
   else their phone, the bit set of content sections for what they insure, and the exclusions;
2. the variants new in this range rendered once each (sections, locale, channel), never per recipient;
3. one short link per texted recipient (a multi-row INSERT of random tokens);
4. ``INSERT INTO outbox ... SELECT`` joining the recipients with their variant (and link), deduplicated
   per broadcast and person by the outbox's unique key.

The broadcast's ``resolved_through`` moves in the same transaction as the rows it covers, so a crash
between ranges loses nothing and repeats nothing."""

from __future__ import annotations

import html
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import Select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.sqltypes import UTCDateTime

from backend.broadcasts.models import (
    Broadcast,
    BroadcastGeoPerson,
    BroadcastKind,
    BroadcastRecipient,
    BroadcastVariant,
    RecipientStatus,
)
from backend.broadcasts.schemas import AudienceSpec, BroadcastContent, Part, ack_button_data
from backend.db import utcnow
from backend.enrollment.collective.models import CollectiveEnrollment, PolicyHousehold
from backend.enrollment.models import Policy
from backend.outbox.models import MessageKind, OutboxMessage, OutboxStatus, Priority
from backend.outbox.sms.models import SmsLink, SmsNumber
from backend.outbox.sms.service import LINK_ALPHABET, LINK_LENGTH
from backend.people.models import ChatIdentity, Person
from backend.products.models import Product
from backend.security import significant_prefix
from messages import label, render
from messages.sms import sms_template

CHUNK = 100_000  # person ids per range after the first
MAX_ID = 2**31 - 1  # person ids are 32-bit integers
FIRST_CHUNK = 2_000  # the first pass is small: its messages are claimable at once
LINK_BATCH = 5_000  # sms_link rows per INSERT (4 columns: well inside the drivers' parameter limits)
NO_REGION = "000000000000"  # listed people with no policy: only national staff see them
CHAT, SMS = "chat", "sms"
# The placeholder the SMS variant carries where each recipient's link token goes (a valid token value).
TOKEN_PLACEHOLDER = "ZZTOKENZZZ"
# Warnings go before other bulk; every broadcast goes behind replies and notices.
PRIORITY = {BroadcastKind.WARNING.value: int(Priority.BULK) - 10}
DEFAULT_SMS = {BroadcastKind.WARNING.value: "broadcast_warning"}
DEFAULT_SMS_KEY = "broadcast_notice"

policy = Policy.__table__  # type: ignore[attr-defined]
household = PolicyHousehold.__table__  # type: ignore[attr-defined]
collective = CollectiveEnrollment.__table__  # type: ignore[attr-defined]
identity = ChatIdentity.__table__  # type: ignore[attr-defined]
person = Person.__table__  # type: ignore[attr-defined]
recipient = BroadcastRecipient.__table__  # type: ignore[attr-defined]
variant_t = BroadcastVariant.__table__  # type: ignore[attr-defined]
geo_person = BroadcastGeoPerson.__table__  # type: ignore[attr-defined]
outbox = OutboxMessage.__table__  # type: ignore[attr-defined]
link_t = SmsLink.__table__  # type: ignore[attr-defined]
sms_number = SmsNumber.__table__  # type: ignore[attr-defined]
broadcast_t = Broadcast.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Targeting:
    """What the SQL needs besides the spec: the subject keys as product codes, the sections' product
    codes, the staff scope, the township prefixes a geometry covers, and whether GPS matches are stored."""

    spec: AudienceSpec
    kind: str
    subject_codes: tuple[str, ...]
    section_codes: tuple[tuple[str, ...], ...]
    scope: tuple[str, ...]
    townships: tuple[str, ...] = ()
    geo_broadcast_id: int | None = None  # GPS matches in broadcast_geo_person under this id
    geo_people: tuple[int, ...] = ()  # or, for a count without writing, the matches themselves
    broadcast_id: int = 0
    now: datetime | None = None


def _insert(session: AsyncSession, table: Any) -> Any:
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


def _prefixes(codes: Sequence[str]) -> list[str]:
    """A 12-digit code stands for its division (``4403000...`` -> ``4403``); a shorter one is a prefix."""
    return sorted({significant_prefix(code) if len(code) == 12 else code for code in codes})


def _in_regions(column: Any, codes: Sequence[str]) -> Any:
    return or_(*(column.like(prefix + "%") for prefix in _prefixes(codes)))


async def product_codes_for(session: AsyncSession, keys: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each subject key (a product code or a category) as the product codes it names."""
    rows = (await session.execute(select(Product.code, Product.category))).all()  # type: ignore[call-overload]
    found: dict[str, tuple[str, ...]] = {}
    for key in keys:
        found[key] = tuple(sorted(code for code, category in rows if key in (code, category)))
    return found


def _policy_in_force(spec: AudienceSpec, now: datetime) -> Any:
    if spec.policy_statuses:
        return policy.c.status.in_(spec.policy_statuses)
    return and_(policy.c.status == "active", policy.c.ends_at > now)


def _policy_rows(t: Targeting, lo: int, hi: int, now: datetime) -> list[Select[Any]]:
    """(person, region, product) rows of the insured that match every policy filter."""
    spec = t.spec
    individual = select(
        policy.c.person_id.label("person_id"),
        policy.c.region_code.label("region_code"),
        policy.c.product_code.label("product_code"),
    ).where(policy.c.person_id.is_not(None), policy.c.person_id.between(lo, hi), _policy_in_force(spec, now))
    households = (
        select(
            household.c.person_id.label("person_id"),
            household.c.village_code.label("region_code"),
            household.c.product_code.label("product_code"),
        )
        .join(collective, collective.c.id == household.c.collective_id)
        .join(policy, policy.c.id == collective.c.policy_id)
        .where(household.c.person_id.between(lo, hi), _policy_in_force(spec, now))
    )
    if spec.region_codes:
        individual = individual.where(_in_regions(policy.c.region_code, spec.region_codes))
        households = households.where(_in_regions(household.c.village_code, spec.region_codes))
    if spec.product_codes:
        individual = individual.where(policy.c.product_code.in_(spec.product_codes))
        households = households.where(household.c.product_code.in_(spec.product_codes))
    if spec.subject_types:
        individual = individual.where(policy.c.product_code.in_(t.subject_codes or ("",)))
        households = households.where(household.c.product_code.in_(t.subject_codes or ("",)))
    if spec.geometry is not None:
        # GPS points inside (computed once with shapely), else the townships whose area the geometry meets.
        gps = (
            policy.c.person_id.in_(
                select(geo_person.c.person_id).where(geo_person.c.broadcast_id == t.geo_broadcast_id)
            )
            if t.geo_broadcast_id is not None
            else policy.c.person_id.in_(t.geo_people or (-1,))
        )
        individual = individual.where(gps)
        households = households.where(
            _in_regions(household.c.village_code, t.townships) if t.townships else literal(False)
        )
    return [individual, households]


def _listed_rows(t: Targeting, lo: int, hi: int) -> list[Select[Any]]:
    spec = t.spec
    rows: list[Select[Any]] = []
    if spec.person_ids:
        home = (
            select(func.min(policy.c.region_code)).where(policy.c.person_id == person.c.id).scalar_subquery()
        )
        rows.append(
            select(
                person.c.id.label("person_id"),
                func.coalesce(home, NO_REGION).label("region_code"),
                cast(null(), String).label("product_code"),
            ).where(person.c.id.in_(spec.person_ids), person.c.id.between(lo, hi))
        )
    if spec.from_broadcast_ids:
        rows.append(
            select(
                recipient.c.person_id.label("person_id"),
                recipient.c.region_code.label("region_code"),
                cast(null(), String).label("product_code"),
            ).where(
                recipient.c.broadcast_id.in_(spec.from_broadcast_ids),
                recipient.c.status == RecipientStatus.QUEUED.value,
                recipient.c.person_id.between(lo, hi),
            )
        )
    return rows


def people_select(t: Targeting, lo: int, hi: int) -> Any:
    """One row per person of the audience in ``lo..hi``: the smallest region code and the variant."""
    now = t.now or utcnow()
    parts = _policy_rows(t, lo, hi, now) if t.spec.has_policy_filter or t.spec.policy_statuses else []
    parts += _listed_rows(t, lo, hi)
    targets = union_all(*parts).subquery("targets") if len(parts) > 1 else parts[0].subquery("targets")
    bits = [
        func.max(case((targets.c.product_code.in_(codes), 1 << i), else_=0))
        for i, codes in enumerate(t.section_codes)
        if codes
    ]
    variant = sum(bits[1:], bits[0]) if bits else literal(0)
    query = select(
        targets.c.person_id.label("person_id"),
        func.min(targets.c.region_code).label("region_code"),
        cast(variant, Integer).label("variant"),
    ).group_by(targets.c.person_id)
    if t.scope:  # a staff member's broadcast reaches only their regions
        query = query.where(_in_regions(targets.c.region_code, t.scope))
    if t.spec.exclusions.person_ids:
        query = query.where(targets.c.person_id.not_in(t.spec.exclusions.person_ids))
    return query.subquery("people")


def _best_chats(lo: int, hi: int) -> Any:
    """The reach rule of ``people/reach.py`` for a range of people: not stopped, phone proved, used last."""
    ranked = func.row_number().over(
        partition_by=identity.c.person_id, order_by=(identity.c.last_seen_at.desc(), identity.c.id.desc())
    )
    return (
        select(
            identity.c.id,
            identity.c.person_id,
            identity.c.channel,
            identity.c.address,
            identity.c.locale,
            ranked.label("rank"),
        )
        .where(
            identity.c.person_id.between(lo, hi),
            identity.c.stopped_at.is_(None),
            identity.c.phone_verified_at.is_not(None),
        )
        .subquery("chats")
    )


def _recent_same_kind(t: Targeting, people: Any, now: datetime) -> Any:
    hours = t.spec.exclusions.same_kind_within_hours
    if not hours:
        return literal(False)
    earlier = recipient.alias("earlier")
    return exists(
        select(earlier.c.id)
        .join(broadcast_t, broadcast_t.c.id == earlier.c.broadcast_id)
        .where(
            earlier.c.person_id == people.c.person_id,
            earlier.c.broadcast_id != t.broadcast_id,
            earlier.c.status == RecipientStatus.QUEUED.value,
            earlier.c.created_at >= now - timedelta(hours=hours),
            broadcast_t.c.kind == t.kind,
        )
    )


def recipients_select(t: Targeting, lo: int, hi: int, now: datetime) -> Select[Any]:
    people = people_select(t, lo, hi)
    chats = _best_chats(lo, hi)
    phone = literal("+86", String).concat(person.c.phone)
    texted_stopped = exists(
        select(sms_number.c.phone).where(
            sms_number.c.phone == phone, sms_number.c.bulk_stopped_at.is_not(None)
        )
    )
    # A number that replied TD gets no bulk text; warnings are the notices the law requires (R-DIS-1).
    sms_blocked = and_(texted_stopped, literal(t.kind != BroadcastKind.WARNING.value))
    reason = case(
        (_recent_same_kind(t, people, now), literal("recent_same_kind")),
        (and_(chats.c.id.is_(None), person.c.phone.is_(None)), literal("unreachable")),
        (and_(chats.c.id.is_(None), sms_blocked), literal("sms_stopped")),
        else_=null(),
    )
    return (
        select(
            literal(t.broadcast_id).label("broadcast_id"),
            people.c.person_id,
            chats.c.id.label("identity_id"),
            func.coalesce(chats.c.channel, SMS).label("channel"),
            func.coalesce(chats.c.address, phone, "").label("address"),
            func.coalesce(chats.c.locale, "zh-CN").label("locale"),
            people.c.variant,
            people.c.region_code,
            case(
                (reason.is_(None), RecipientStatus.QUEUED.value), else_=RecipientStatus.EXCLUDED.value
            ).label("status"),
            reason.label("reason"),
            literal(now, UTCDateTime()).label("created_at"),
        )
        .select_from(people)
        .join(person, person.c.id == people.c.person_id)
        .outerjoin(chats, and_(chats.c.person_id == people.c.person_id, chats.c.rank == 1))
    )


RECIPIENT_COLUMNS = (
    "broadcast_id",
    "person_id",
    "identity_id",
    "channel",
    "address",
    "locale",
    "variant",
    "region_code",
    "status",
    "reason",
    "created_at",
)


# --- rendering, once per variant -------------------------------------------------------------------------


def _part(part: Part, locale: str) -> str:
    if part.text is not None:
        return html.escape(part.text)
    return render(str(part.template), locale, **part.params).strip()


def chat_text(content: BroadcastContent, locale: str, variant: int) -> str:
    """The common text and the sections whose bit is set, in the content's section order."""
    own = content.locales.get(locale) or content.locales["zh-CN"]  # type: ignore[call-overload]
    keys = content.section_keys()
    pieces = [_part(own.chat, locale)]
    for bit, key in enumerate(keys):
        section = own.sections.get(key)
        if variant & (1 << bit) and section is not None:
            pieces.append(_part(section, locale))
    return "\n\n".join(pieces)


def chat_buttons(
    content: BroadcastContent, locale: str, broadcast_id: int, ack: bool
) -> list[list[dict[str, str]]]:
    rows: list[list[dict[str, str]]] = []
    if ack:
        rows.append(
            [{"text": label("broadcasts.ack", locale), "callback_data": ack_button_data(broadcast_id)}]
        )
    for row in content.buttons:
        buttons = []
        for spec in row:
            text = spec.label.get(locale) or spec.label["zh-CN"]  # type: ignore[call-overload]
            action = {"callback_data": spec.callback_data} if spec.callback_data else {"url": str(spec.url)}
            buttons.append({"text": text, **action})
        rows.append(buttons)
    return rows


def sms_parts(content: BroadcastContent, kind: str, locale: str) -> tuple[str, dict[str, str]]:
    own = content.locales.get(locale) or content.locales["zh-CN"]  # type: ignore[call-overload]
    if own.sms is not None:
        return own.sms.template, dict(own.sms.params)
    return DEFAULT_SMS.get(kind, DEFAULT_SMS_KEY), {"kind": label(f"broadcasts.kind_{kind}", locale)}


def sms_variant(
    content: BroadcastContent, kind: str, locale: str, token: str = TOKEN_PLACEHOLDER
) -> dict[str, Any]:
    key, params = sms_parts(content, kind, locale)
    template = sms_template(key, locale)
    values = {**params, "token": token}
    return {
        "text": template.render(values),
        "kind": template.kind,
        "template": {"key": key, "locale": locale, "params": template.params(values)},
    }


def render_variant(broadcast: Broadcast, variant: int, locale: str, channel: str) -> dict[str, Any]:
    content = BroadcastContent.model_validate(broadcast.content)
    if channel == SMS:
        return {"parse_mode": None, "buttons": [], **sms_variant(content, broadcast.kind, locale)}
    return {
        "text": chat_text(content, locale, variant),
        "parse_mode": "HTML",
        "buttons": chat_buttons(content, locale, broadcast.id or 0, broadcast.ack_button),
        "kind": MessageKind.BULK.value
        if broadcast.kind != BroadcastKind.WARNING.value
        else MessageKind.WARNING.value,
        "template": None,
    }


def _channel_group(column: Any) -> Any:
    return case((column == SMS, SMS), else_=CHAT)


async def _render_new_variants(session: AsyncSession, broadcast: Broadcast, lo: int, hi: int) -> None:
    bid = broadcast.id or 0
    needed = (
        select(recipient.c.variant, recipient.c.locale, _channel_group(recipient.c.channel).label("ch"))
        .where(recipient.c.broadcast_id == bid, recipient.c.person_id.between(lo, hi))
        .where(recipient.c.status == RecipientStatus.QUEUED.value)
        .distinct()
    )
    have = select(variant_t.c.variant, variant_t.c.locale, variant_t.c.channel).where(
        variant_t.c.broadcast_id == bid
    )
    done = {tuple(row) for row in (await session.execute(have)).all()}
    rows = []
    for variant, locale, channel in (await session.execute(needed)).all():
        if (variant, locale, channel) in done:
            continue
        rows.append(
            {
                "broadcast_id": bid,
                "variant": variant,
                "locale": locale,
                "channel": channel,
                "attachments": [],
                **render_variant(broadcast, variant, locale, channel),
            }
        )
    if rows:  # a range beside this one may render the same variant: the first one's stays
        statement = _insert(session, variant_t).values(rows)
        await session.execute(
            statement.on_conflict_do_nothing(index_elements=["broadcast_id", "variant", "locale", "channel"])
        )


def _token(rng: random.Random) -> str:
    return "".join(rng.choices(LINK_ALPHABET, k=LINK_LENGTH))


# PostgreSQL makes the tokens itself: ten characters of the link alphabet from the bytes of a random UUID
# (pg_strong_random; the version and variant bytes 6 and 8 are skipped), so a million texts need no round
# trip per link. A collision on the token (about one in a million fan-outs of a million) is skipped by ON
# CONFLICT and the loop makes that person's link again.
_PG_TOKEN = " || ".join(
    f"substr(:alphabet, 1 + get_byte(s.b, {i}) % 62, 1)" for i in (0, 1, 2, 3, 4, 5, 7, 9, 10, 11)
)
_PG_LINKS = f"""
INSERT INTO sms_link (token, person_id, target, created_at, expires_at)
SELECT {_PG_TOKEN}, s.person_id, :target, :now, :expires
FROM (
    SELECT r.person_id, uuid_send(gen_random_uuid()) AS b
    FROM broadcast_recipient r
    WHERE r.broadcast_id = :bid AND r.person_id BETWEEN :lo AND :hi AND r.channel = 'sms' AND r.status = 'queued'
      AND NOT EXISTS (SELECT 1 FROM sms_link l WHERE l.person_id = r.person_id AND l.target = :target)
) s
ON CONFLICT (token) DO NOTHING
"""


async def _create_links(session: AsyncSession, bid: int, lo: int, hi: int, days: int, now: datetime) -> None:
    """One short link per texted recipient, to ``broadcast:<id>`` (opened in web chat, for that person)."""
    target = f"broadcast:{bid}"
    expires = now + timedelta(days=days)
    if session.get_bind().dialect.name == "postgresql":
        values = {
            "alphabet": LINK_ALPHABET,
            "target": target,
            "now": now,
            "expires": expires,
            "bid": bid,
            "lo": lo,
            "hi": hi,
        }
        for _ in range(5):
            if not (await session.execute(text(_PG_LINKS), values)).rowcount:  # type: ignore[attr-defined]
                break
        return
    missing = select(recipient.c.person_id).where(
        recipient.c.broadcast_id == bid,
        recipient.c.person_id.between(lo, hi),
        recipient.c.channel == SMS,
        recipient.c.status == RecipientStatus.QUEUED.value,
        ~exists(
            select(link_t.c.token).where(
                link_t.c.person_id == recipient.c.person_id, link_t.c.target == target
            )
        ),
    )
    people = list((await session.execute(missing)).scalars().all())
    rng = random.SystemRandom()
    for start in range(0, len(people), LINK_BATCH):
        rows = [
            {"token": _token(rng), "person_id": p, "target": target, "created_at": now, "expires_at": expires}
            for p in people[start : start + LINK_BATCH]
        ]
        await session.execute(link_t.insert().values(rows))


def _with_token(session: AsyncSession, column: Any, token: Any) -> Any:
    replaced = func.replace(cast(column, Text), TOKEN_PLACEHOLDER, token)
    if session.get_bind().dialect.name == "postgresql":
        return cast(replaced, JSON)
    return type_coerce(func.replace(column, TOKEN_PLACEHOLDER, token), JSON)


OUTBOX_COLUMNS = (
    "channel",
    "address",
    "identity_id",
    "text",
    "parse_mode",
    "buttons",
    "attachments",
    "priority",
    "kind",
    "template",
    "dedupe_key",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "broadcast_id",
)


def dedupe_prefix(broadcast_id: int) -> str:
    return f"bc:{broadcast_id}:"


def _outbox_rows(
    session: AsyncSession, broadcast: Broadcast, lo: int, hi: int, now: datetime, texted: bool
) -> Any:
    """Recipients joined with their variant: chat rows as rendered; texts with the recipient's link token
    written into the text and the template's values (an inner join: a text goes only with its link)."""
    bid = broadcast.id or 0
    link = link_t.alias("link")
    text_column: Any = variant_t.c.text
    template: Any = variant_t.c.template
    if texted:
        text_column = func.replace(variant_t.c.text, TOKEN_PLACEHOLDER, link.c.token)
        template = _with_token(session, variant_t.c.template, link.c.token)
    rows = (
        select(
            recipient.c.channel,
            recipient.c.address,
            recipient.c.identity_id,
            text_column,
            variant_t.c.parse_mode,
            variant_t.c.buttons,
            variant_t.c.attachments,
            literal(PRIORITY.get(broadcast.kind, int(Priority.BULK))),
            variant_t.c.kind,
            template,
            literal(dedupe_prefix(bid), String).concat(cast(recipient.c.person_id, String)),
            literal(OutboxStatus.QUEUED.value),
            literal(0),
            literal(now, UTCDateTime()),
            literal(now, UTCDateTime()),
            literal(bid),
        )
        .select_from(recipient)
        .join(
            variant_t,
            and_(
                variant_t.c.broadcast_id == recipient.c.broadcast_id,
                variant_t.c.variant == recipient.c.variant,
                variant_t.c.locale == recipient.c.locale,
                variant_t.c.channel == (SMS if texted else CHAT),
            ),
        )
        .where(recipient.c.broadcast_id == bid, recipient.c.person_id.between(lo, hi))
        .where(recipient.c.status == RecipientStatus.QUEUED.value)
        .where(recipient.c.channel == SMS if texted else recipient.c.channel != SMS)
    )
    if texted:
        rows = rows.join(
            link, and_(link.c.person_id == recipient.c.person_id, link.c.target == f"broadcast:{bid}")
        )
    return rows


async def _write_outbox(session: AsyncSession, broadcast: Broadcast, lo: int, hi: int, now: datetime) -> int:
    written = 0
    for texted in (False, True):
        rows = _outbox_rows(session, broadcast, lo, hi, now, texted)
        statement = _insert(session, outbox).from_select(list(OUTBOX_COLUMNS), rows)
        statement = statement.on_conflict_do_nothing(index_elements=["channel", "address", "dedupe_key"])
        written += int((await session.execute(statement)).rowcount or 0)  # type: ignore[attr-defined]
    return written


async def _insert_recipients(session: AsyncSession, t: Targeting, lo: int, hi: int, now: datetime) -> None:
    statement = _insert(session, recipient).from_select(
        list(RECIPIENT_COLUMNS), recipients_select(t, lo, hi, now)
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["broadcast_id", "person_id"]))


async def _range_counts(session: AsyncSession, bid: int, lo: int, hi: int) -> tuple[int, int]:
    query = (
        select(recipient.c.status, func.count())
        .where(recipient.c.broadcast_id == bid, recipient.c.person_id.between(lo, hi))
        .group_by(recipient.c.status)
    )
    counts = dict((await session.execute(query)).all())
    return int(counts.get(RecipientStatus.QUEUED.value, 0)), int(
        counts.get(RecipientStatus.EXCLUDED.value, 0)
    )


async def fan_out_range(
    session: AsyncSession, broadcast: Broadcast, t: Targeting, lo: int, hi: int, *, link_days: int
) -> int:
    """Recipients, variants, links and outbox rows of the people ``lo..hi``; the caller commits. Run again
    on the same range it adds nothing (every write skips what exists), so ranges may run side by side and
    a range repeated after a crash is harmless. Returns the outbox rows written."""
    now = utcnow()
    bid = broadcast.id or 0
    await _insert_recipients(session, t, lo, hi, now)
    await _render_new_variants(session, broadcast, lo, hi)
    await _create_links(session, bid, lo, hi, link_days, now)
    return await _write_outbox(session, broadcast, lo, hi, now)


async def advance(session: AsyncSession, broadcast: Broadcast, lo: int, hi: int) -> None:
    """Move the cursor past ``lo..hi`` (every range in it done) and count its recipients, once: the
    cursor and the counters change in one transaction."""
    queued, excluded = await _range_counts(session, broadcast.id or 0, lo, hi)
    broadcast.recipient_count += queued
    broadcast.excluded_count += excluded
    broadcast.resolved_through = hi
    broadcast.updated_at = utcnow()
    session.add(broadcast)


async def highest_person_id(session: AsyncSession) -> int:
    return int((await session.execute(select(func.max(person.c.id)))).scalar() or 0)


async def count_people(session: AsyncSession, t: Targeting) -> int:
    """The audience's size, written nowhere."""
    top = await highest_person_id(session)
    people = people_select(t, 0, top)
    query = select(func.count()).select_from(people)
    return int((await session.execute(query)).scalar() or 0)

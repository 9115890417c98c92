"""Collective enrollment (R-ENR-1, R-ENR-2, R-ENR-5, R-ENR-9, R-ENR-10): a clean household list becomes
one collective application (the organiser's, without a chat identity) with one insured row per household;
the committee's check and stamp is recorded; once the households' shares are paid the collective policy
is issued; each household confirms or objects to its own row in chat and gets its voucher (分户凭证).

Storage is set-based: persons matched or created by ID number a batch at a time, households, ear tags and
notices in multi-row INSERTs (``executemany``), never one ORM add per row.

For the publicity notices (R-ENR-8, R-PUB-*): :func:`household_rows` gives a policy's households with the
raw bank account; whoever publishes masks it (R-PUB-4).
"""

from __future__ import annotations

import asyncio
import hashlib
import json as jsonlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import func as sa_func
from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db import utcnow
from backend.enrollment import documents
from backend.enrollment.collective.checks import CheckResult, CleanRow, batches, in_any, lookup_batches
from backend.enrollment.collective.models import (
    CollectiveEnrollment,
    CollectiveStatus,
    HouseholdStatus,
    PolicyHousehold,
)
from backend.enrollment.collective.schemas import CollectivePaymentIn, HouseholdConfirmIn
from backend.enrollment.doc_contexts import policy_context, verification_code
from backend.enrollment.documents import CollectiveTerms
from backend.enrollment.issuance import INSURER_NAME_KEY, region_path_names, save_e_policy
from backend.enrollment.models import (
    Application,
    ApplicationStatus,
    Document,
    EarTag,
    Payment,
    PaymentStatus,
    Policy,
)
from backend.enrollment.payments import refuse_used_reference
from backend.enrollment.service import POLICY_TERM, EnrollmentError
from backend.enrollment.validation import ValidationProblem, validate_person_name
from backend.numbers import business_number
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_many
from backend.outbox.sms.models import SmsLink
from backend.outbox.sms.service import LINK_ALPHABET, LINK_LENGTH, enqueue_sms_rows, sms_row
from backend.people.models import ChatIdentity, Person
from backend.people.reach import reachable_identities, reachable_identity
from backend.products import pricing
from backend.products.models import Product
from backend.regions.models import Region
from backend.security import BotPrincipal, StaffPrincipal
from backend.staff.service import record_audit
from messages import label, render

INSERT_BATCH = 5_000
# The outbox insert is one multi-row VALUES statement of 15 parameters a row: PostgreSQL takes at most
# 32,767 parameters in one statement.
OUTBOX_BATCH = 1_000
HOUSEHOLD_TARGET = "household"
# Shown to farmers in chat and texts: the buttons carry this prefix (bot/routers/collective.py).
BUTTON_PREFIX = "hh"


class CollectiveError(EnrollmentError):
    """A refused collective enrollment step; its code names a message in ``errors`` or ``enroll_errors``."""


def list_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def household_target(household_id: int) -> str:
    """The SMS link target that opens a household's row in chat (``bot/routers/start.py: show_target``)."""
    return f"{HOUSEHOLD_TARGET}:{household_id}"


# --- scope -----------------------------------------------------------------------------------------------


def check_scope(actor: StaffPrincipal, region_code: str) -> None:
    """Staff act only inside their region; an agent's region is their village (or villages)."""
    if not actor.covers_region(region_code):
        raise CollectiveError("outside_scope", region=region_code)


async def scoped(session: AsyncSession, actor: StaffPrincipal, collective_id: int) -> CollectiveEnrollment:
    collective = await session.get(CollectiveEnrollment, collective_id)
    if collective is None or not actor.covers_region(collective.region_code):
        raise CollectiveError("not_found")  # another region's list looks the same as none
    return collective


async def area_of(session: AsyncSession, code: str) -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise CollectiveError("unknown_region", region=code)
    return region


async def same_list(
    session: AsyncSession, *, product_code: str, region_code: str, sha256: str
) -> CollectiveEnrollment | None:
    """The enrollment an identical upload made before (not cancelled): the same list twice is one."""
    query = select(CollectiveEnrollment).where(
        CollectiveEnrollment.list_sha256 == sha256,
        CollectiveEnrollment.product_code == product_code,
        CollectiveEnrollment.region_code == region_code,
        CollectiveEnrollment.status != CollectiveStatus.CANCELLED.value,
    )
    return (await session.exec(query)).first()


# --- storing a clean list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Organiser:
    kind: str
    name: str
    credit_code: str | None = None


def _dialect_insert(session: AsyncSession, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


async def persons_by_id_number(session: AsyncSession, rows: list[CleanRow]) -> dict[str, int]:
    """The person of each household by ID number: matched, or created (name, and the phone where no
    other person holds it), a batch at a time. A person created here signs as the insured only through
    an account that verified the person's phone (R-ENR-5)."""
    numbers = sorted({row.id_number for row in rows})
    found = await _person_ids(session, numbers)
    missing = [row for row in _first_per_id(rows) if row.id_number not in found]
    holders = await _phone_holders(session, sorted({r.phone for r in missing if r.phone}))
    held = set(holders)
    adopted = {phone: person for phone, (person, bound) in holders.items() if not bound}
    for row in missing:
        if row.phone in adopted:  # the list's phone is a person's whose ID number is not bound yet
            found[row.id_number] = adopted.pop(row.phone)
    missing = [row for row in missing if row.id_number not in found]
    if missing:
        now = utcnow()
        values = []
        for row in missing:
            phone = row.phone if row.phone and row.phone not in held else None
            if phone:
                held.add(phone)  # two households on one phone: the first gets it
            values.append({"name": row.name, "phone": phone, "id_number": row.id_number, "created_at": now})
        found.update(await _insert_persons(session, values))
        left = [r.id_number for r in missing if r.id_number not in found]
        if left:  # another upload created them a moment ago
            found.update(await _person_ids(session, left))
    return found


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction (PostgreSQL only)."""
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _insert_persons(session: AsyncSession, values: list[dict[str, Any]]) -> dict[str, int]:
    """The new persons' ids by ID number. PostgreSQL: one statement, the rows as arrays (``unnest``)
    with RETURNING (COPY and a lookup afterwards measured no faster); a person another upload created in
    the meantime fails this upload (``list_busy``: nothing stored, upload it again). SQLite: batches of
    multi-row INSERTs (ON CONFLICT DO NOTHING), then a lookup."""
    if _postgres(session):
        columns = ("name", "phone", "id_number", "created_at")
        try:
            rows = await (await _driver(session)).fetch(
                "INSERT INTO person (name, phone, id_number, created_at) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) "
                "RETURNING id_number, id",
                *([v[c] for v in values] for c in columns),
            )
        except UniqueViolationError as exc:
            raise CollectiveError("list_busy") from exc
        return {row["id_number"]: row["id"] for row in rows}
    table = Person.__table__  # type: ignore[attr-defined]
    for batch in batches(values, INSERT_BATCH):
        await session.execute(_dialect_insert(session, table).on_conflict_do_nothing(), list(batch))
    return await _person_ids(session, [v["id_number"] for v in values])


async def _bulk_insert(
    session: AsyncSession, table: Any, values: list[dict[str, Any]], json: tuple[str, ...] = ()
) -> None:
    """New rows that cannot conflict: COPY on PostgreSQL (asyncpg ``copy_records_to_table``), batches of
    multi-row INSERTs on SQLite."""
    if not values:
        return
    if _postgres(session):
        columns = list(values[0])
        records = [tuple(json_text(v[c]) if c in json else v[c] for c in columns) for v in values]
        await (await _driver(session)).copy_records_to_table(table.name, records=records, columns=columns)
        return
    for batch in batches(values, INSERT_BATCH):
        await session.execute(insert(table), list(batch))


def json_text(value: Any) -> str:
    return jsonlib.dumps(value, ensure_ascii=False)


def _first_per_id(rows: list[CleanRow]) -> list[CleanRow]:
    seen: dict[str, CleanRow] = {}
    for row in rows:
        seen.setdefault(row.id_number, row)
    return list(seen.values())


async def _person_ids(session: AsyncSession, numbers: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for batch in lookup_batches(session, numbers):
        query = select(Person.id_number, Person.id).where(in_any(session, Person.id_number, batch))
        out.update({n: i for n, i in (await session.exec(query)).all() if n is not None and i is not None})
    return out


async def _phone_holders(session: AsyncSession, phones: list[str]) -> dict[str, tuple[int, bool]]:
    """Who holds each phone: (person id, whether an ID number is bound). A holder without one (verified
    in a chat, or named by an earlier list) is the household's person, as an individual application giving
    the account's own phone is (R-ENR-5); the ID number binds when the household confirms as the insured.
    A holder with another ID number keeps the phone: the new person is created without it."""
    out: dict[str, tuple[int, bool]] = {}
    for batch in lookup_batches(session, phones):
        query = select(Person.phone, Person.id, Person.id_number).where(in_any(session, Person.phone, batch))
        for phone, person, bound in (await session.exec(query)).all():
            if phone and person is not None:
                out[phone] = (person, bound is not None)
    return out


def _totals(rows: list[CleanRow]) -> dict[str, int]:
    keys = ("sum_insured_fen", "premium_fen", "central_fen", "provincial_fen", "county_fen", "farmer_fen")
    totals = dict.fromkeys(keys, 0)
    for row in rows:
        assert row.quote is not None
        for key in keys:
            totals[key] += getattr(row.quote, key)
    return totals


async def store_list(
    session: AsyncSession,
    *,
    actor: StaffPrincipal,
    product: Product,
    area: Region,
    organiser: Organiser,
    result: CheckResult,
    sha256: str,
    filename: str,
    ip: str | None,
) -> CollectiveEnrollment:
    """Store a clean list: the organiser's application, the enrollment, its households and ear tags, in
    one transaction (the caller commits)."""
    if not result.ok or not result.rows:
        raise CollectiveError("list_has_errors", problems=len(result.problems))
    rows = result.rows
    persons = await persons_by_id_number(session, rows)
    application = _application(product, area, organiser, rows)
    session.add(application)
    await session.flush()
    application.number = business_number("AP", application.id)
    collective = CollectiveEnrollment(
        application_id=application.id or 0,
        product_code=product.code,
        region_code=area.code,
        organiser_kind=organiser.kind,
        organiser_name=organiser.name,
        organiser_credit_code=organiser.credit_code,
        list_sha256=sha256,
        list_filename=filename[:200],
        household_count=len(rows),
        uploaded_by=actor.user_id,
    )
    session.add(collective)
    await session.flush()
    await _insert_households(session, collective, product, rows, persons)
    tags = [{"tag": tag, "application_id": application.id} for row in rows for tag in row.ear_tags]
    await _bulk_insert(session, EarTag.__table__, tags)  # type: ignore[attr-defined]
    record_audit(
        session=session,
        actor=actor,
        action="collective.upload",
        target_type="collective_enrollment",
        target_id=collective.id or 0,
        detail={"households": len(rows), "product": product.code, "region": area.code, "sha256": sha256},
        ip=ip,
    )
    return collective


def _application(product: Product, area: Region, organiser: Organiser, rows: list[CleanRow]) -> Application:
    totals = _totals(rows)
    quantity = sum((row.quantity for row in rows), Decimal(0))
    reasons = sorted(
        {str(r) for row in rows for r in pricing.verification_reasons(product, row.quantity, "farmer")}
    )
    now = utcnow()
    return Application(
        number=f"TMP{secrets.token_hex(8)}",
        idempotency_key=f"collective-{secrets.token_hex(16)}",
        product_code=product.code,
        kind="collective",
        status=ApplicationStatus.AWAITING_PAYMENT.value,
        identity_id=None,
        person_id=None,
        region_code=area.code,
        answers={
            "organiser_kind": organiser.kind,
            "name": organiser.name,
            "credit_code": organiser.credit_code,
        },
        quantity=pricing.decimal_text(quantity),
        sum_insured_fen=totals["sum_insured_fen"],
        premium={
            "kind": "agricultural",
            "total_fen": totals["premium_fen"],
            "central_fen": totals["central_fen"],
            "provincial_fen": totals["provincial_fen"],
            "county_fen": totals["county_fen"],
            "farmer_fen": totals["farmer_fen"],
            "rate": pricing.decimal_text(Decimal(product.rate)),
        },
        payable_fen=totals["farmer_fen"],
        # R-ENR-4 is each household's: recorded on its row when it confirms in chat.
        disclosure_version=product.disclosure_version,
        disclosure_confirmed_at=now,
        signer={"role": "organiser", "name": organiser.name},
        verification_required=bool(reasons),
        verification_reasons=reasons,
    )


HOUSEHOLD_COLUMNS = (
    "collective_id", "line", "person_id", "name", "id_number", "phone", "product_code", "quantity",
    "village_code", "place_name", "ear_tags", "bank_name", "bank_account", "sum_insured_fen",
    "premium_total_fen", "farmer_fen", "status",
)  # fmt: skip


async def _insert_households(
    session: AsyncSession,
    collective: CollectiveEnrollment,
    product: Product,
    rows: list[CleanRow],
    persons: dict[str, int],
) -> None:
    """One household row per list row, as tuples in ``HOUSEHOLD_COLUMNS`` order (COPY takes them as
    they are; building a dict per row first cost half a second for 100,000)."""
    pending, collective_id, code = HouseholdStatus.PENDING.value, collective.id, product.code
    postgres = _postgres(session)
    records = []
    for row in rows:
        quote = row.quote
        assert quote is not None
        tags: Any = json_text(row.ear_tags) if postgres else row.ear_tags
        records.append(
            (
                collective_id, row.line, persons[row.id_number], row.name, row.id_number, row.phone, code,
                pricing.decimal_text(row.quantity), row.village_code, row.place_name, tags, row.bank_name,
                row.bank_account, quote.sum_insured_fen, quote.premium_fen, quote.farmer_fen, pending,
            )
        )  # fmt: skip
    table = PolicyHousehold.__table__  # type: ignore[attr-defined]
    if postgres:
        await (await _driver(session)).copy_records_to_table(
            table.name, records=records, columns=list(HOUSEHOLD_COLUMNS)
        )
        return
    await _bulk_insert(session, table, [dict(zip(HOUSEHOLD_COLUMNS, r, strict=True)) for r in records])


# --- notices to households -------------------------------------------------------------------------------


def household_buttons(household_id: int, locale: str, *, voucher: bool = False) -> list[list[dict[str, str]]]:
    rows = [
        [
            {
                "text": label("collective.household_view", locale),
                "callback_data": f"{BUTTON_PREFIX}:view:{household_id}",
            }
        ]
    ]
    if voucher:
        rows.insert(
            0,
            [
                {
                    "text": label("collective.household_voucher", locale),
                    "callback_data": f"{BUTTON_PREFIX}:voucher:{household_id}",
                }
            ],
        )
    return rows


async def notify_households(
    session: AsyncSession, *, collective: CollectiveEnrollment, kind: str, link_days: int
) -> int:
    """Tell every household of the list, in the chat that reaches it, else by text with a link to its row:
    ``kind`` "confirm" (check your row) or "issued" (cover in force, your voucher). Set-based; a repeat
    is skipped by the outbox's dedupe key. Returns how many households were told."""
    query = select(PolicyHousehold.id, PolicyHousehold.person_id, PolicyHousehold.name).where(
        PolicyHousehold.collective_id == collective.id
    )
    households = [(h or 0, p, n) for h, p, n in (await session.exec(query)).all()]
    identities = await reachable_identities(
        session,
        {p for _, p, _ in households},
        member=lambda batch: in_any(
            session, ChatIdentity.person_id, batch
        ),  # one array parameter on PostgreSQL
    )
    product = await session.get(Product, collective.product_code)
    assert product is not None
    chats: list[dict[str, Any]] = []
    unreached = [(h, p) for h, p, _ in households if p not in identities]
    for household_id, person_id, name in households:
        identity = identities.get(person_id)
        if identity is None:
            continue
        locale = identity.locale
        chats.append(
            {
                "channel": identity.channel,
                "address": identity.address,
                "identity_id": identity.id,
                "priority": int(Priority.NOTICE),
                "dedupe_key": f"household-{household_id}-{kind}",
                "text": render(
                    f"collective/notice_{kind}",
                    locale,
                    name=name,
                    organiser=collective.organiser_name,
                    product_name=product.name_en if locale == "en" else product.name_zh,
                ),
                "buttons": household_buttons(household_id, locale, voucher=kind == "issued"),
            }
        )
    for batch in batches(chats, OUTBOX_BATCH):
        await enqueue_many(session=session, rows=batch)
    texted = await _text_households(session, unreached, kind, collective, link_days)
    return len(chats) + texted


async def _text_households(
    session: AsyncSession,
    unreached: list[tuple[int, int]],
    kind: str,
    collective: CollectiveEnrollment,
    days: int,
) -> int:
    phones: dict[int, str] = {}
    person_ids = sorted({p for _, p in unreached})
    for batch in lookup_batches(session, person_ids):
        query = select(Person.id, Person.phone).where(
            in_any(session, Person.id, batch), col(Person.phone).is_not(None)
        )
        phones.update({i: p for i, p in (await session.exec(query)).all() if i is not None and p})
    now = utcnow()
    links: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    key = "household_confirm" if kind == "confirm" else "household_voucher"
    for household_id, person_id in unreached:
        phone = phones.get(person_id)
        if phone is None:
            continue
        token = "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_LENGTH))
        links.append(
            {
                "token": token,
                "person_id": person_id,
                "target": household_target(household_id),
                "created_at": now,
                "expires_at": now + timedelta(days=days),
                "opened_at": None,
            }
        )
        texts.append(
            sms_row(
                phone=phone,
                key=key,
                locale="zh-CN",
                values={"token": token},
                dedupe_key=f"household-{household_id}-{kind}",
            )
        )
    await _bulk_insert(session, SmsLink.__table__, links)  # type: ignore[attr-defined]
    for text_batch in batches(texts, OUTBOX_BATCH):
        await enqueue_sms_rows(session=session, rows=text_batch)
    return len(texts)


# --- the committee's check and stamp, payment, issuance ------------------------------------------------


async def record_organiser_confirmation(
    session: AsyncSession,
    *,
    actor: StaffPrincipal,
    collective: CollectiveEnrollment,
    name: str,
    title: str,
    photo: bytes,
    content_type: str,
    filename: str,
    ip: str | None,
) -> CollectiveEnrollment:
    """The committee checked and stamped the list: who for the organiser, which staff member recorded it,
    when, and the photo of the stamped list. Staff record it; they never confirm for households."""
    if collective.status == CollectiveStatus.CANCELLED:
        raise CollectiveError("collective_cancelled")
    if collective.organiser_confirmed_at is not None:
        raise CollectiveError("organiser_confirmed_already")
    try:
        confirmer = validate_person_name(name)
    except ValidationProblem as exc:
        raise CollectiveError("organiser_confirmer_name", **exc.detail) from exc
    document = await documents.store_document(
        session=session,
        kind="stamped_list",
        filename=filename or "stamped-list.jpg",
        content=photo,
        content_type=content_type,
        application_id=collective.application_id,
        uploaded_by_staff_id=actor.user_id,
    )
    collective.organiser_confirmed_by_name = confirmer
    collective.organiser_confirmed_by_title = title.strip()[:100]
    collective.organiser_confirmation_recorded_by = actor.user_id
    collective.organiser_confirmed_at = utcnow()
    collective.stamp_document_id = document.id
    if collective.status == CollectiveStatus.AWAITING_CONFIRMATION:
        collective.status = CollectiveStatus.AWAITING_PAYMENT.value
    record_audit(
        session=session,
        actor=actor,
        action="collective.organiser_confirmation",
        target_type="collective_enrollment",
        target_id=collective.id or 0,
        detail={
            "confirmed_by": confirmer,
            "title": collective.organiser_confirmed_by_title,
            "document": document.id,
        },
        ip=ip,
    )
    return collective


async def household_counts(session: AsyncSession, collective_id: int) -> dict[str, int]:
    query = (
        select(PolicyHousehold.status, sa_func.count())
        .where(PolicyHousehold.collective_id == collective_id)
        .group_by(col(PolicyHousehold.status))
    )
    return {status: int(count) for status, count in (await session.exec(query)).all()}


async def confirm_payment(
    session: AsyncSession,
    *,
    actor: StaffPrincipal,
    collective: CollectiveEnrollment,
    body: CollectivePaymentIn,
    ip: str | None,
) -> Policy:
    """R-ENR-9: the households' shares paid (or the authority's letter): the collective policy is issued.
    Refused before the committee's confirmation, and while a household's objection is open."""
    application = await session.get(Application, collective.application_id)
    assert application is not None
    if collective.status == CollectiveStatus.ISSUED:
        raise CollectiveError("already_paid")
    if collective.status == CollectiveStatus.CANCELLED:
        raise CollectiveError("collective_cancelled")
    if collective.organiser_confirmed_at is None:
        raise CollectiveError("organiser_confirmation_missing")
    objected = (await household_counts(session, collective.id or 0)).get(HouseholdStatus.OBJECTED.value, 0)
    if objected:
        raise CollectiveError("households_objected", count=objected)
    if body.method == "government_letter" and application.payable_fen != 0:
        raise CollectiveError("letter_needs_full_subsidy", payable_fen=application.payable_fen)
    amount = application.payable_fen if body.amount_fen is None else body.amount_fen
    if body.method == "bank_deduction" and amount != application.payable_fen:
        raise CollectiveError("amount_mismatch", expected_fen=application.payable_fen, given_fen=amount)
    await refuse_used_reference(session, body.method, body.reference)
    now = utcnow()
    payment = Payment(
        application_id=application.id or 0,
        provider=body.method,
        amount_fen=amount,
        status=PaymentStatus.CONFIRMED.value,
        external_ref=body.reference,
        evidence=body.note,
        confirmed_by=actor.user_id,
        confirmed_at=now,
    )
    session.add(payment)
    policy = _collective_policy(application, collective, now)
    session.add(policy)
    await session.flush()
    policy.number = business_number("PL", policy.id)
    application.status = ApplicationStatus.ISSUED.value
    application.updated_at = now
    collective.policy_id = policy.id
    collective.status = CollectiveStatus.ISSUED.value
    record_audit(
        session=session,
        actor=actor,
        action="collective.confirm_payment",
        target_type="collective_enrollment",
        target_id=collective.id or 0,
        detail={
            "method": body.method,
            "reference": body.reference,
            "amount_fen": amount,
            "policy": policy.number,
        },
        ip=ip,
    )
    return policy


async def store_policy_document(
    session: AsyncSession, *, collective: CollectiveEnrollment, secret: str, locale: str
) -> Document:
    """The collective policy's own e-policy (R-ENR-10): the organiser as policyholder, the households of
    the list as the insureds (each has its voucher), the committee's check and stamp as the confirmation,
    and claims paid to each household's own account (R-CLM-12)."""
    policy = await session.get(Policy, collective.policy_id) if collective.policy_id else None
    application = await session.get(Application, collective.application_id)
    product = await session.get(Product, collective.product_code)
    assert policy is not None and application is not None and product is not None
    assert collective.organiser_confirmed_at is not None  # the payment is refused before the stamp
    base = policy_context(
        policy=policy,
        application=application,
        product=product,
        location=await region_path_names(session, collective.region_code),
        insurer_name=render(INSURER_NAME_KEY, locale, ext="txt"),
        secret=secret,
    )
    context = replace(
        base,
        id_type="credit_code",
        id_number=collective.organiser_credit_code or "",
        phone="",
        bank=None,
        collective=CollectiveTerms(
            households=collective.household_count,
            organiser_kind=collective.organiser_kind,
            confirmed_by_name=collective.organiser_confirmed_by_name or "",
            confirmed_by_title=collective.organiser_confirmed_by_title or "",
            confirmed_at=collective.organiser_confirmed_at,
            list_filename=collective.list_filename,
            list_sha256=collective.list_sha256,
        ),
    )
    return await save_e_policy(session, policy=policy, context=context, locale=locale)


def _collective_policy(application: Application, collective: CollectiveEnrollment, now: datetime) -> Policy:
    return Policy(
        number=f"TMP{application.id}",
        application_id=application.id or 0,
        product_code=application.product_code,
        identity_id=None,
        person_id=None,
        region_code=application.region_code,
        insured_name=collective.organiser_name,
        terms={
            "collective": True,
            "collective_id": collective.id,
            "organiser_kind": collective.organiser_kind,
            "households": collective.household_count,
            "premium": application.premium,
            "payable_fen": application.payable_fen,
        },
        quantity=application.quantity,
        sum_insured_fen=application.sum_insured_fen,
        premium_fen=int(application.premium.get("total_fen", application.payable_fen)),
        starts_at=now,
        ends_at=now + POLICY_TERM,
        issued_at=now,
    )


async def cancel(
    session: AsyncSession, *, actor: StaffPrincipal, collective: CollectiveEnrollment, ip: str | None
) -> CollectiveEnrollment:
    """Withdraw a list before its policy is issued (a household objected and the list is fixed and
    uploaded again): its households no longer count as insured, its ear tags are free again."""
    if collective.status == CollectiveStatus.ISSUED:
        raise CollectiveError("collective_issued")
    collective.status = CollectiveStatus.CANCELLED.value
    application = await session.get(Application, collective.application_id)
    assert application is not None
    application.status = ApplicationStatus.CANCELLED.value
    await session.execute(
        EarTag.__table__.delete().where(EarTag.__table__.c.application_id == application.id)  # type: ignore[attr-defined]
    )
    record_audit(
        session=session,
        actor=actor,
        action="collective.cancel",
        target_type="collective_enrollment",
        target_id=collective.id or 0,
        ip=ip,
    )
    return collective


# --- the household's side (the bot, for one chat) -----------------------------------------------------


async def household_for(session: AsyncSession, principal: BotPrincipal, household_id: int) -> PolicyHousehold:
    """A household row is its person's own: only a chat whose verified binding is that person sees it
    (another household's row looks the same as none)."""
    household = await session.get(PolicyHousehold, household_id)
    if household is None or principal.person_view is None or household.person_id != principal.person_view:
        raise CollectiveError("not_found")
    return household


async def signer_roles(
    session: AsyncSession, principal: BotPrincipal, household: PolicyHousehold
) -> list[str]:
    """R-ENR-5: "insured" only where the account's person is the household's own (by its ID number);
    a relative or an authorised person always names themselves."""
    person = await session.get(Person, principal.person_view) if principal.person_view else None
    roles = ["relative", "authorised"]
    if person is not None and _may_sign_as_insured(person, household):
        roles.insert(0, "insured")
    return roles


def _may_sign_as_insured(person: Person, household: PolicyHousehold) -> bool:
    """The person's bound ID number is the household's; or none is bound yet and the list gives the
    person's own phone (``enrollment.service.insured_may_sign``, the same rule)."""
    if person.id_number is not None:
        return person.id_number == household.id_number
    return household.phone is not None and household.phone == person.phone


async def _bind_id_number(session: AsyncSession, person: Person, household: PolicyHousehold) -> None:
    """The first confirmation as the insured binds the household's ID number to the person (R-ENR-5);
    a number bound to another person meanwhile is refused."""
    if person.id_number is not None:
        return
    taken = select(Person.id).where(Person.id_number == household.id_number, Person.id != person.id)
    if (await session.exec(taken)).first() is not None:
        raise CollectiveError("id_number_bound_elsewhere")
    person.id_number = household.id_number
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise CollectiveError("id_number_bound_elsewhere") from None


async def confirm_household(
    session: AsyncSession, *, principal: BotPrincipal, household_id: int, body: HouseholdConfirmIn
) -> PolicyHousehold:
    household = await household_for(session, principal, household_id)
    collective = await session.get(CollectiveEnrollment, household.collective_id)
    assert collective is not None
    if collective.status == CollectiveStatus.CANCELLED:
        raise CollectiveError("collective_cancelled")
    if household.status == HouseholdStatus.CONFIRMED:
        return household  # a double tap confirms once
    signer = await _signer(session, principal, household, body)
    household.status = HouseholdStatus.CONFIRMED.value
    household.signer = signer
    household.confirmed_identity_id = principal.identity_id
    household.confirmed_at = utcnow()
    household.objection_reason = None
    household.objected_at = None
    return household


async def _signer(
    session: AsyncSession, principal: BotPrincipal, household: PolicyHousehold, body: HouseholdConfirmIn
) -> dict[str, Any]:
    """R-ENR-5 per household: the household's own bound account, a direct relative with name and relation,
    or an authorised person with the authorisation kept as evidence. Nobody else; staff never."""
    if body.role == "insured":
        person = await session.get(Person, principal.person_view) if principal.person_view else None
        if person is None or not _may_sign_as_insured(person, household):
            raise CollectiveError("signer_not_insured")
        await _bind_id_number(session, person, household)
        return {"role": "insured", "name": household.name, "relation": None}
    if not body.name:
        raise CollectiveError("signer_name_missing")
    try:
        name = validate_person_name(body.name)
    except ValidationProblem as exc:
        raise CollectiveError("signer_name_invalid", **exc.detail) from exc
    if body.role == "relative":
        if body.relation is None:
            raise CollectiveError("signer_relation_missing")
        return {"role": "relative", "name": name, "relation": body.relation}
    if body.authorisation_document_id is None:
        raise CollectiveError("authorisation_missing")
    document = await session.get(Document, body.authorisation_document_id)
    if document is None or document.kind != "authorisation" or document.person_id != principal.person_id:
        raise CollectiveError("authorisation_missing")
    return {
        "role": "authorised",
        "name": name,
        "relation": None,
        "authorisation_document_id": str(document.id),
    }


async def object_household(
    session: AsyncSession, *, principal: BotPrincipal, household_id: int, reason: str
) -> PolicyHousehold:
    household = await household_for(session, principal, household_id)
    collective = await session.get(CollectiveEnrollment, household.collective_id)
    assert collective is not None
    if collective.status in (CollectiveStatus.ISSUED, CollectiveStatus.CANCELLED):
        raise CollectiveError("collective_closed")  # after issuance a change is an endorsement
    household.status = HouseholdStatus.OBJECTED.value
    household.objection_reason = reason.strip()[:500]
    household.objected_at = utcnow()
    household.signer = None
    household.confirmed_at = None
    return household


async def answer_objection(
    session: AsyncSession,
    *,
    actor: StaffPrincipal,
    collective: CollectiveEnrollment,
    household_id: int,
    answer: str,
    ip: str | None,
) -> PolicyHousehold:
    """The objection was checked and the row stands: the household is asked to confirm again, with the
    answer, in the chat that reaches it (else a text with the link to its row)."""
    household = await session.get(PolicyHousehold, household_id)
    if household is None or household.collective_id != collective.id:
        raise CollectiveError("not_found")
    if household.status != HouseholdStatus.OBJECTED:
        raise CollectiveError("objection_not_open")
    household.status = HouseholdStatus.PENDING.value
    household.objection_answer = answer.strip()[:500]
    household.objection_answered_by = actor.user_id
    household.objection_answered_at = utcnow()
    record_audit(
        session=session,
        actor=actor,
        action="collective.answer_objection",
        target_type="policy_household",
        target_id=household_id,
        detail={"collective": collective.id, "answer": household.objection_answer},
        ip=ip,
    )
    await _tell_answer(session, household)
    return household


async def _tell_answer(session: AsyncSession, household: PolicyHousehold) -> None:
    identity = await reachable_identity(session=session, person_id=household.person_id)
    if identity is None:
        return  # the row asks again when the household opens its link; no text for an answer
    await enqueue_many(
        session=session,
        rows=[
            {
                "channel": identity.channel,
                "address": identity.address,
                "identity_id": identity.id,
                "priority": int(Priority.NOTICE),
                "dedupe_key": f"household-{household.id}-answer-{household.objection_answered_at}",
                "text": render(
                    "collective/objection_answered", identity.locale, answer=household.objection_answer
                ),
                "buttons": household_buttons(household.id or 0, identity.locale),
            }
        ],
    )


async def voucher(
    session: AsyncSession, *, principal: BotPrincipal, household_id: int, secret: str, locale: str
) -> Document:
    """R-ENR-10: the household's voucher (分户凭证) from the unified template, made on first request and
    kept (the same bytes every time after)."""
    household = await household_for(session, principal, household_id)
    if household.voucher_document_id is not None:
        document = await session.get(Document, household.voucher_document_id)
        assert document is not None
        return document
    collective = await session.get(CollectiveEnrollment, household.collective_id)
    assert collective is not None
    policy = await session.get(Policy, collective.policy_id) if collective.policy_id else None
    if policy is None:
        raise CollectiveError("voucher_not_ready")
    product = await session.get(Product, household.product_code)
    assert product is not None
    context = await _voucher_context(session, household, collective, policy, product, secret, locale)
    pdf = await asyncio.to_thread(documents.render_pdf, "household_voucher", locale, doc=context)
    document = await documents.store_document(
        session=session,
        kind="household_voucher",
        filename=f"{context.voucher_number}.pdf",
        content=pdf,
        policy_id=policy.id,
        person_id=household.person_id,
    )
    household.voucher_document_id = document.id
    return document


async def _voucher_context(
    session: AsyncSession,
    household: PolicyHousehold,
    collective: CollectiveEnrollment,
    policy: Policy,
    product: Product,
    secret: str,
    locale: str,
) -> documents.HouseholdVoucherContext:
    number = f"{policy.number}-{household.line:06d}"
    return documents.HouseholdVoucherContext(
        voucher_number=number,
        policy_number=policy.number,
        verification_code=verification_code(number, secret),
        insurer_name=render(INSURER_NAME_KEY, locale, ext="txt"),
        product_name_zh=product.name_zh,
        product_name_en=product.name_en,
        policyholder_name=collective.organiser_name,
        household_name=household.name,
        id_number=household.id_number,
        subject_name_zh=product.name_zh,
        subject_name_en=product.name_en,
        quantity=household.quantity,
        unit=product.unit,  # type: ignore[arg-type]
        location=tuple(await region_path_names(session, household.village_code)),
        sum_insured_fen=household.sum_insured_fen,
        premium_total_fen=household.premium_total_fen,
        farmer_fen=household.farmer_fen,
        starts_at=policy.starts_at,
        ends_at=policy.ends_at,
        issued_at=policy.issued_at,
        place_name=household.place_name,
        bank=documents.BankAccount(bank_name=household.bank_name, account_number=household.bank_account),
    )


# --- for the publicity notices (another domain reads these) ------------------------------------------


@dataclass(frozen=True)
class HouseholdRow:
    """One household as a publicity notice lists it (``publicity/sources.py: underwriting_row`` reads
    person_id, name, id_number, subject, quantity, location). ``id_number`` and ``bank_account`` are raw:
    the notice masks them (R-PUB-4). Texts are Chinese (a notice board's language); ``subject_en`` and
    ``unit`` let an English view build its own."""

    household_id: int
    person_id: int
    name: str
    id_number: str
    product_code: str
    subject: str  # the product's Chinese name
    subject_en: str
    quantity: str  # with its unit: "10亩"
    quantity_value: str  # "10"
    unit: str  # mu, head, ...
    village_code: str
    location: str  # the village's name and the place name: "大塘村 东洼地"
    place_name: str
    premium_total_fen: int
    premium_share_fen: int  # the household's own share
    bank_name: str
    bank_account: str
    status: str


async def household_rows(session: AsyncSession, policy_id: int) -> list[HouseholdRow]:
    """The households of a collective policy, in list order (empty for a policy that is not collective)."""
    query = select(CollectiveEnrollment.id).where(CollectiveEnrollment.policy_id == policy_id)
    collective_id = (await session.exec(query)).first()
    return [] if collective_id is None else await collective_household_rows(session, collective_id)


async def collective_household_rows(session: AsyncSession, collective_id: int) -> list[HouseholdRow]:
    """The same for an enrollment not yet issued (the underwriting notice is published before payment)."""
    query = (
        select(PolicyHousehold, Product, Region.name)
        .join(Product, col(Product.code) == col(PolicyHousehold.product_code))
        .outerjoin(Region, col(Region.code) == col(PolicyHousehold.village_code))
        .where(PolicyHousehold.collective_id == collective_id)
        .order_by(col(PolicyHousehold.line))
    )
    rows = []
    for h, product, village in (await session.exec(query)).all():
        zh, en, unit = product.name_zh, product.name_en, product.unit
        place = " ".join(part for part in (village or h.village_code, h.place_name) if part)
        rows.append(
            HouseholdRow(
                household_id=h.id or 0,
                person_id=h.person_id,
                name=h.name,
                id_number=h.id_number,
                product_code=h.product_code,
                subject=zh,
                subject_en=en,
                quantity=f"{h.quantity}{label(f'enroll.unit_{unit}', 'zh-CN')}",
                quantity_value=h.quantity,
                unit=unit,
                village_code=h.village_code,
                location=place,
                place_name=h.place_name,
                premium_total_fen=h.premium_total_fen,
                premium_share_fen=h.farmer_fen,
                bank_name=h.bank_name,
                bank_account=h.bank_account,
                status=h.status,
            )
        )
    return rows

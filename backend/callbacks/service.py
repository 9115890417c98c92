"""Callback surveys: the daily draw, asking in chat or by text, the answers, flags, the unreachable path
and what staff do with them (R-CBK-1 to R-CBK-5). The pure draw is ``sampling.py``."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, delete, func, insert, or_
from sqlalchemy import select as sql_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.callbacks import sampling
from backend.callbacks.models import Callback, CallbackPopulation, CallbackSample, CallbackStatus
from backend.callbacks.schemas import YES, question_buttons
from backend.claims.models import Claim, ClaimPayment, ClaimStatus
from backend.db import utcnow
from backend.enrollment.collective.models import PolicyHousehold
from backend.enrollment.models import Policy
from backend.outbox.models import Priority
from backend.outbox.service import enqueue_many
from backend.outbox.sms.service import create_link, enqueue_sms_rows, sms_row
from backend.people.models import ChatIdentity, Person
from backend.people.reach import reachable_identities
from backend.people.service import normalize_cn_mobile
from backend.refusals import Refusal
from backend.security import BotPrincipal, StaffPrincipal, significant_prefix
from backend.settings import Settings
from backend.staff.models import Role
from backend.staff.service import record_audit
from messages import local_date, mask_phone, normalize_locale, render, to_local

READ_ROLES = (Role.UNDERWRITER.value, Role.ADJUSTER.value, Role.AGENT.value, Role.VIEWER.value)
WORK_ROLES = (Role.UNDERWRITER.value, Role.ADJUSTER.value, Role.AGENT.value)  # contact, phone answers
RESOLVE_ROLES = (Role.ADJUSTER.value,)  # investigating a flag (admin always)
FLAG = "callback_flag"
UNREACHABLE = "callback_unreachable"
DUE = "callback_due"
DUE_SOON = timedelta(days=3)  # before the month after the payment ends (R-CBK-1)


class CallbackError(Refusal):
    """``not_found`` (also another person's, or outside the caller's regions), ``forbidden``,
    ``callback_bad_answer``, ``callback_not_unreachable``, ``callback_recontact_first``,
    ``callback_kept``, ``callback_phone_taken``, ``callback_not_flagged``, ``outside_scope`` (national only)."""


# --- the draw (R-CBK-1, R-CBK-2) ---------------------------------------------------------------------


@dataclass(frozen=True)
class DrawReport:
    drawn_on: str
    sample_id: int | None
    population: int
    drawn: int
    new: bool  # False: the day's draw existed already (a second run), or it is before the draw hour


async def draw_daily_sample(
    session: AsyncSession, settings: Settings, now: datetime | None = None
) -> DrawReport:
    """Once per local day, from the draw hour on: every payment not yet considered enters the population,
    the sample is drawn and asked. A second run the same day finds the day's sample and does nothing."""
    now = now or utcnow()
    day = local_date(now).isoformat()
    existing = (await session.exec(select(CallbackSample).where(CallbackSample.drawn_on == day))).first()
    if existing is not None or to_local(now).hour < settings.callback_draw_hour:
        return DrawReport(day, existing.id if existing else None, 0, 0, False)
    members = await _population(session, now)
    quotas = await _case_quotas(session, members, settings.callback_households_per_case)
    seed = secrets.randbits(63)
    drawn = sampling.draw(seed, members, quotas, settings.callback_sample_permille)
    sample = CallbackSample(
        drawn_on=day,
        drawn_at=now,
        seed=str(seed),
        permille=settings.callback_sample_permille,
        households_per_case=settings.callback_households_per_case,
        population_size=len(members),
        required_overall=sampling.required_overall(len(members), settings.callback_sample_permille),
        case_quotas=quotas,
        sample_size=len(drawn),
    )
    session.add(sample)
    try:
        await session.flush()
    except IntegrityError:  # another runner drew the day's sample first
        await session.rollback()
        return DrawReport(day, None, 0, 0, False)
    sample_id = sample.id or 0
    chosen = set(drawn)
    if members:
        rows = [
            {
                "sample_id": sample_id,
                "claim_id": m.claim_id,
                "case_key": m.case_key,
                "drawn": m.claim_id in chosen,
            }
            for m in members
        ]
        await session.execute(insert(CallbackPopulation), rows)
    callbacks = await _create_callbacks(session, sample_id, day, drawn, now)
    await ask(session, settings, callbacks, now=now)
    await session.commit()
    return DrawReport(day, sample_id, len(members), len(drawn), True)


async def _population(session: AsyncSession, now: datetime) -> list[sampling.Member]:
    considered = select(col(CallbackPopulation.claim_id))
    query = (
        sql_select(
            col(Claim.id),
            col(Claim.kind),
            col(Claim.event_id),
            col(Claim.policy_id),
            col(Claim.household_id),
            col(Claim.loss_started_at),
        )
        .where(col(Claim.status) == ClaimStatus.PAID.value, col(Claim.paid_at).is_not(None))
        .where(col(Claim.paid_at) <= now, col(Claim.id).not_in(considered))
        .order_by(col(Claim.id))
    )
    rows = (await session.execute(query)).all()
    return [
        sampling.Member(
            int(r[0]), _case_of(r.kind, r.event_id, r.policy_id, r.household_id, r.loss_started_at)
        )
        for r in rows
    ]


def _case_of(
    kind: str, event_id: int | None, policy_id: int, household_id: int | None, loss_started_at: datetime
) -> str | None:
    return sampling.case_key(kind, event_id, policy_id, household_id, local_date(loss_started_at).isoformat())


async def _case_quotas(
    session: AsyncSession, members: Sequence[sampling.Member], per_case: int
) -> dict[str, int]:
    """Per collective case of this population: what it still needs after the households of earlier days."""
    households = sampling.by_case(members)
    keys = sorted(households)
    if not keys:
        return {}
    paid_before = await _considered_per_case(session, keys)
    drawn_before = dict(
        (
            await session.execute(
                select(col(Callback.case_key), func.count())
                .where(col(Callback.case_key).in_(keys))
                .group_by(col(Callback.case_key))
            )
        ).all()
    )
    quotas: dict[str, int] = {}
    for key in keys:
        paid = paid_before.get(key, 0) + len(households[key])
        quota = sampling.case_quota(paid, int(drawn_before.get(key, 0)), per_case)
        if quota:
            quotas[key] = quota
    return quotas


async def _considered_per_case(session: AsyncSession, keys: Sequence[str]) -> dict[str, int]:
    rows = (
        await session.execute(
            select(col(CallbackPopulation.case_key), func.count())
            .where(col(CallbackPopulation.case_key).in_(list(keys)))
            .group_by(col(CallbackPopulation.case_key))
        )
    ).all()
    return {str(key): int(count) for key, count in rows}


async def _create_callbacks(
    session: AsyncSession, sample_id: int, day: str, claim_ids: Sequence[int], now: datetime
) -> list[Callback]:
    if not claim_ids:
        return []
    # Columns, not rows: building ORM objects cost more than the query for a day's sample.
    query: Any = (
        sql_select(
            col(Claim.id),
            col(Claim.kind),
            col(Claim.event_id),
            col(Claim.policy_id),
            col(Claim.region_code),
            col(Claim.paid_at),
            col(Claim.paid_amount_fen),
            col(Claim.household_id),
            col(Claim.loss_started_at),
            # A household of a collective policy is asked itself, not the organiser (who has no person).
            func.coalesce(col(PolicyHousehold.person_id), col(Policy.person_id)).label("person_id"),
            col(ClaimPayment.paid_at).label("payment_paid_at"),
            col(ClaimPayment.amount_fen),
        )
        .join(Policy, col(Policy.id) == col(Claim.policy_id))
        .outerjoin(PolicyHousehold, col(PolicyHousehold.id) == col(Claim.household_id))
        .outerjoin(ClaimPayment, col(ClaimPayment.claim_id) == col(Claim.id))
        .where(col(Claim.id).in_(list(claim_ids)))
        .order_by(col(Claim.id))
    )
    rows = []
    for r in (await session.execute(query)).all():
        paid_at = r.payment_paid_at or r.paid_at
        due = sampling.one_month_after(paid_at)
        rows.append(
            {
                "sample_id": sample_id,
                "drawn_on": day,
                "claim_id": r.id,
                "policy_id": r.policy_id,
                "person_id": r.person_id,
                "region_code": r.region_code,
                "case_key": _case_of(r.kind, r.event_id, r.policy_id, r.household_id, r.loss_started_at),
                "amount_fen": r.amount_fen if r.amount_fen is not None else (r.paid_amount_fen or 0),
                "paid_at": paid_at,
                "due_at": due,
                "late": due < now,
                "status": CallbackStatus.ASKED.value,
                "created_at": now,
                "updated_at": now,
                "flag_reasons": [],
                "history": [],
            }
        )
    await session.execute(insert(Callback), rows)
    return list(
        (
            await session.exec(
                select(Callback).where(Callback.sample_id == sample_id).order_by(col(Callback.id))
            )
        ).all()
    )


async def rederive(
    session: AsyncSession, sample_id: int
) -> tuple[CallbackSample, list[int], list[int], list[int]]:
    """The auditor's check: the population as recorded, the drawn claims as recorded, and the draw done
    again from the recorded seed, population and quotas. They match unless a record was changed."""
    sample = await session.get(CallbackSample, sample_id)
    if sample is None:
        raise CallbackError("not_found")
    rows = (
        await session.exec(
            select(CallbackPopulation)
            .where(CallbackPopulation.sample_id == sample_id)
            .order_by(col(CallbackPopulation.claim_id))
        )
    ).all()
    members = [sampling.Member(r.claim_id, r.case_key) for r in rows]
    derived = sampling.draw(int(sample.seed), members, sample.case_quotas, sample.permille)
    recorded = sorted(
        (await session.exec(select(Callback.claim_id).where(Callback.sample_id == sample_id))).all()
    )
    return sample, [m.claim_id for m in members], recorded, derived


# --- asking, reminding, unreachable (R-CBK-3) ---------------------------------------------------------


def next_question(callback: Callback) -> str:
    if callback.status == CallbackStatus.CLOSED.value:
        return "closed"
    if callback.received is None:
        return "received"
    if callback.received and callback.amount_correct is None:
        return "amount"  # "not received": the amount is not asked
    if callback.satisfaction is None:
        return "satisfaction"
    if callback.comment is None and not callback.comment_skipped:
        return "comment"
    return "done"


def question_text(callback: Callback, number: str, locale: str) -> str:
    return render(
        f"callbacks/question_{next_question(callback)}",
        locale,
        claim_number=number,
        amount_fen=callback.amount_fen,
        amount_wrong=callback.amount_correct is False,
    )


async def ask(
    session: AsyncSession,
    settings: Settings,
    callbacks: Sequence[Callback],
    *,
    now: datetime,
    reminder: bool = False,
) -> None:
    """The question each callback is at, to the chat that reaches the insured, else by text with a link
    that opens it in web chat; with neither the callback is unreachable at once (staff queue). Set-based:
    a few queries and two multi-row inserts however many are asked."""
    if not callbacks:
        return
    step = "reminder" if reminder else "ask"
    numbers = await _claim_numbers(session, [c.claim_id for c in callbacks])
    persons = {c.person_id for c in callbacks if c.person_id is not None}
    chats = await reachable_identities(session, persons)
    phones = await _phones(session, persons - set(chats))
    chat_rows: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for callback in callbacks:
        dedupe = f"callback-{callback.id}-{callback.attempts}-{step}"
        identity = chats.get(callback.person_id or 0)
        phone = phones.get(callback.person_id or 0)
        number = numbers.get(callback.claim_id, "")
        if identity is not None:
            chat_rows.append(_chat_row(callback, identity, number, step, dedupe))
            channel = "chat"
        elif phone and callback.person_id is not None:
            token = await create_link(
                session=session,
                days=settings.sms_link_days,
                person_id=callback.person_id,
                target=f"callback:{callback.id}",
            )
            locale = normalize_locale(settings.default_locale)
            texts.append(
                sms_row(
                    phone=phone,
                    key="callback_ask",
                    locale=locale,
                    values={"claim": number, "token": token},
                    dedupe_key=dedupe,
                )
            )
            channel = "sms"
        else:
            await _unreachable(session, settings, callback, number, now=now, reason="no_contact")
            continue
        callback.channel = channel
        if reminder:
            callback.reminded_at = now
            callback.status = CallbackStatus.REMINDED.value
        else:
            callback.asked_at = now
        _note(callback, now, step, channel=channel)
        session.add(callback)
    await enqueue_many(session=session, rows=chat_rows)
    await enqueue_sms_rows(session=session, rows=texts)


def _chat_row(
    callback: Callback, identity: ChatIdentity, number: str, step: str, dedupe: str
) -> dict[str, Any]:
    question = next_question(callback)
    text = render(
        f"callbacks_notice/{step}",
        identity.locale,
        claim_number=number,
        amount_fen=callback.amount_fen,
        question=question_text(callback, number, identity.locale),
    )
    return {
        "channel": identity.channel,
        "address": identity.address,
        "text": text,
        "dedupe_key": dedupe,
        "priority": int(Priority.NOTICE),
        "buttons": question_buttons(callback.id or 0, question, identity.locale),
        "identity_id": identity.id,
    }


async def _claim_numbers(session: AsyncSession, claim_ids: Sequence[int]) -> dict[int, str]:
    rows = (
        await session.execute(
            select(col(Claim.id), col(Claim.number)).where(col(Claim.id).in_(list(claim_ids)))
        )
    ).all()
    return {int(claim_id): str(number) for claim_id, number in rows}


async def _phones(session: AsyncSession, person_ids: set[int]) -> dict[int, str]:
    if not person_ids:
        return {}
    rows = (
        await session.execute(
            select(col(Person.id), col(Person.phone)).where(col(Person.id).in_(sorted(person_ids)))
        )
    ).all()
    return {int(person_id): str(phone) for person_id, phone in rows if phone}


async def _unreachable(
    session: AsyncSession, settings: Settings, callback: Callback, number: str, *, now: datetime, reason: str
) -> None:
    callback.status = CallbackStatus.UNREACHABLE.value
    callback.unreachable_at = now
    _note(callback, now, "unreachable", reason=reason)
    session.add(callback)
    await _alert(
        session,
        settings,
        callback,
        UNREACHABLE,
        number,
        f"callback-{callback.id}-{callback.attempts}-unreachable",
    )


async def _alert(
    session: AsyncSession,
    settings: Settings,
    callback: Callback,
    kind: str,
    number: str,
    dedupe: str,
    **ctx: Any,
) -> None:
    """A staff alert in the claim's region (``backend.alerts``: listed for the staff whose scope covers it,
    and sent to the staff alert chat when configured); its texts are ``callbacks_notice/staff_<kind>_*``."""
    locale = settings.default_locale
    name = kind.removeprefix("callback_")
    values = {"claim_number": number, "callback": callback, **ctx}
    await alert_staff(
        session,
        settings,
        kind=kind,
        region_code=callback.region_code,
        title=render(f"callbacks_notice/staff_{name}_title", locale, ext="txt", **values),
        body=render(f"callbacks_notice/staff_{name}_body", locale, ext="txt", **values),
        dedupe_key=dedupe,
        claim_id=callback.claim_id,
    )


@dataclass(frozen=True)
class FollowUpReport:
    reminded: int
    unreachable: int
    due_soon: int = 0


async def follow_up(session: AsyncSession, settings: Settings, now: datetime | None = None) -> FollowUpReport:
    """No answer 48 h after asking: a reminder; none 48 h after that: unreachable, for staff. Each step
    moves the status on, so a second run finds nothing to do."""
    now = now or utcnow()
    remind_before = now - timedelta(hours=settings.callback_reminder_hours)
    give_up_before = now - timedelta(hours=settings.callback_unreachable_hours)
    due = (
        await session.exec(
            select(Callback)
            .where(
                or_(
                    (col(Callback.status) == CallbackStatus.ASKED.value)
                    & (col(Callback.asked_at) <= remind_before),
                    (col(Callback.status) == CallbackStatus.REMINDED.value)
                    & (col(Callback.reminded_at) <= give_up_before),
                )
            )
            .order_by(col(Callback.id))
        )
    ).all()
    to_remind = [c for c in due if c.status == CallbackStatus.ASKED.value]
    await ask(session, settings, to_remind, now=now, reminder=True)
    given_up = [c for c in due if c.status == CallbackStatus.REMINDED.value and c not in to_remind]
    numbers = await _claim_numbers(session, [c.claim_id for c in given_up])
    for callback in given_up:
        await _unreachable(
            session, settings, callback, numbers.get(callback.claim_id, ""), now=now, reason="no_answer"
        )
    reminded = sum(1 for c in to_remind if c.status == CallbackStatus.REMINDED.value)
    unreachable = len(given_up)
    due_soon = await _alert_due_soon(session, settings, now)
    await session.commit()
    return FollowUpReport(reminded, unreachable, due_soon)


async def _alert_due_soon(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """R-CBK-1: a callback still without an answer (or remarks) 3 days before its month ends is put in
    front of the region's staff once."""
    open_ones = (
        await session.exec(
            select(Callback)
            .where(col(Callback.answered_at).is_(None), col(Callback.status) != CallbackStatus.CLOSED.value)
            .where(col(Callback.due_at) <= now + DUE_SOON, col(Callback.due_alerted_at).is_(None))
            .order_by(col(Callback.id))
        )
    ).all()
    numbers = await _claim_numbers(session, [c.claim_id for c in open_ones])
    for callback in open_ones:
        number = numbers.get(callback.claim_id, "")
        await _alert(session, settings, callback, DUE, number, f"callback-{callback.id}-due")
        callback.due_alerted_at = now
        session.add(callback)
    return len(open_ones)


def _note(callback: Callback, now: datetime, step: str, **data: Any) -> None:
    callback.history = [*callback.history, {"at": now.isoformat(), "step": step, **data}]
    callback.updated_at = now


# --- answers (R-CBK-4) -------------------------------------------------------------------------------


async def callback_for(session: AsyncSession, principal: BotPrincipal, callback_id: int) -> Callback:
    """The chat's own callback: another person's does not exist for it."""
    callback = await session.get(Callback, callback_id)
    if callback is None or callback.person_id is None or callback.person_id != principal.person_id:
        raise CallbackError("not_found")
    return callback


async def claim_number(session: AsyncSession, callback: Callback) -> str:
    claim = await session.get(Claim, callback.claim_id)
    return claim.number if claim else ""


async def answer(
    session: AsyncSession,
    settings: Settings,
    principal: BotPrincipal,
    callback_id: int,
    question: str,
    value: str,
) -> tuple[Callback, bool]:
    """Record one answer of the chat's own callback; the first answer to a question counts, so a second
    tap (or an old message's button) records nothing. Returns the callback and whether anything changed."""
    await callback_for(session, principal, callback_id)
    callback = await session.get(Callback, callback_id, with_for_update=True, populate_existing=True)
    assert callback is not None
    now = utcnow()
    changed = _apply(callback, question, value.strip())
    if changed:
        _note(callback, now, f"answer_{question}", value=value.strip()[:40])
        await _after_answer(session, settings, callback, now)
    await session.commit()
    return callback, changed


def _apply(callback: Callback, question: str, value: str) -> bool:
    if callback.status == CallbackStatus.CLOSED.value:
        return False
    if question in ("received", "amount"):
        if value not in (YES, "n"):
            raise CallbackError("callback_bad_answer")
        field = "received" if question == "received" else "amount_correct"
        if getattr(callback, field) is not None or (question == "amount" and callback.received is not True):
            return False
        setattr(callback, field, value == YES)
        return True
    if question == "satisfaction":
        if value not in {"1", "2", "3", "4", "5"}:
            raise CallbackError("callback_bad_answer")
        if callback.satisfaction is not None or next_question(callback) != "satisfaction":
            return False
        callback.satisfaction = int(value)
        return True
    if callback.comment is not None or callback.comment_skipped or next_question(callback) != "comment":
        return False
    if question == "skip":
        callback.comment_skipped = True
    else:
        callback.comment = value[:1000]
    return True


async def _after_answer(session: AsyncSession, settings: Settings, callback: Callback, now: datetime) -> None:
    answered = callback.received is False or callback.amount_correct is not None
    if answered and callback.answered_at is None:
        callback.answered_at = now
        callback.status = CallbackStatus.ANSWERED.value
    if next_question(callback) == "done" and callback.completed_at is None:
        callback.completed_at = now
    reasons = [
        *(["not_received"] if callback.received is False else []),
        *(["amount_differs"] if callback.amount_correct is False else []),
    ]
    if reasons and reasons != callback.flag_reasons:
        await _flag(session, settings, callback, reasons, now)
    session.add(callback)


async def _flag(
    session: AsyncSession, settings: Settings, callback: Callback, reasons: list[str], now: datetime
) -> None:
    """R-CBK-4: at once, with a staff alert to the claim's region (its staff see it in their alerts and
    the staff alert chat gets it when configured): supervisors know the same day."""
    callback.flag_reasons = reasons
    callback.flagged_at = callback.flagged_at or now
    claim = await session.get(Claim, callback.claim_id)
    assert claim is not None
    await _alert(
        session,
        settings,
        callback,
        FLAG,
        claim.number,
        f"callback-{callback.id}-flag-{'-'.join(reasons)}",
        reasons=reasons,
        amount_fen=callback.amount_fen,
    )


# --- staff (region-scoped, role-checked, audited) ----------------------------------------------------


def require_role(actor: StaffPrincipal, roles: Sequence[str]) -> None:
    if actor.role != Role.ADMIN.value and actor.role not in roles:
        raise CallbackError("forbidden", role=actor.role)


def in_scope(query: Any, actor: StaffPrincipal) -> Any:
    if actor.is_national:
        return query
    prefixes = [significant_prefix(code) for code in actor.region_codes]
    return query.where(or_(*(col(Callback.region_code).startswith(p) for p in prefixes)))


async def scoped_callback(session: AsyncSession, actor: StaffPrincipal, callback_id: int) -> Callback:
    callback = await session.get(Callback, callback_id, with_for_update=True, populate_existing=True)
    if callback is None or not actor.covers_region(callback.region_code):
        raise CallbackError("not_found")
    return callback


def audit(
    session: AsyncSession,
    actor: StaffPrincipal,
    action: str,
    callback: Callback,
    ip: str | None,
    **detail: Any,
) -> None:
    record_audit(
        session=session,
        actor=actor,
        action=action,
        target_type="callback",
        target_id=callback.id or "",
        detail={"claim_id": callback.claim_id, **detail},
        ip=ip,
    )


async def list_callbacks(
    session: AsyncSession,
    actor: StaffPrincipal,
    *,
    status: str | None = None,
    flagged: bool | None = None,
    sample_id: int | None = None,
    limit: int = 200,
) -> list[Callback]:
    require_role(actor, READ_ROLES)
    query = in_scope(select(Callback), actor)
    if status is not None:
        query = query.where(col(Callback.status) == status)
    if flagged is True:
        query = query.where(col(Callback.flagged_at).is_not(None), col(Callback.flag_resolved_at).is_(None))
    if sample_id is not None:
        query = query.where(col(Callback.sample_id) == sample_id)
    return list((await session.exec(query.order_by(col(Callback.id).desc()).limit(limit))).all())


async def list_samples(session: AsyncSession, actor: StaffPrincipal) -> list[tuple[CallbackSample, int]]:
    require_role(actor, READ_ROLES)
    samples = (
        await session.exec(select(CallbackSample).order_by(col(CallbackSample.id).desc()).limit(400))
    ).all()
    counted = in_scope(
        select(col(Callback.sample_id), func.count()).select_from(Callback).group_by(col(Callback.sample_id)),
        actor,
    )
    counts = dict((await session.execute(counted)).all())
    return [(s, int(counts.get(s.id, 0))) for s in samples]


async def reconfirm_contact(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    callback_id: int,
    *,
    phone: str | None,
    confirm: bool,
    ip: str | None,
) -> Callback:
    """R-CBK-3: staff re-confirm the insured's phone (a new one, or the one on file) and ask again."""
    require_role(actor, WORK_ROLES)
    callback = await scoped_callback(session, actor, callback_id)
    if callback.status != CallbackStatus.UNREACHABLE.value:
        raise CallbackError("callback_not_unreachable", status=callback.status)
    if not phone and not confirm:
        raise CallbackError("callback_contact_required")
    person = await session.get(Person, callback.person_id) if callback.person_id is not None else None
    if person is None:
        raise CallbackError("callback_no_person")
    old = person.phone
    if phone:
        number = normalize_cn_mobile(phone)
        holder = (await session.exec(select(Person).where(Person.phone == number))).first()
        if holder is not None and holder.id != person.id:
            raise CallbackError("callback_phone_taken")
        person.phone = number
        session.add(person)
    now = utcnow()
    callback.attempts += 1
    callback.status = CallbackStatus.ASKED.value
    callback.reminded_at = None
    callback.contact_confirmed_at = now
    callback.contact_confirmed_by = actor.user_id
    _note(callback, now, "contact_confirmed", by=actor.user_id, changed=bool(phone) and person.phone != old)
    audit(
        session,
        actor,
        "callback.contact",
        callback,
        ip,
        old=mask_phone(old),
        new=mask_phone(person.phone),
        attempt=callback.attempts,
    )
    await ask(session, settings, [callback], now=now)
    await session.commit()
    return callback


async def close_unreachable(
    session: AsyncSession, actor: StaffPrincipal, callback_id: int, remarks: str, ip: str | None
) -> Callback:
    """R-CBK-3: still unreachable after the contact was re-confirmed: the reason goes to the remarks."""
    require_role(actor, WORK_ROLES)
    callback = await scoped_callback(session, actor, callback_id)
    if callback.status != CallbackStatus.UNREACHABLE.value:
        raise CallbackError("callback_not_unreachable", status=callback.status)
    if callback.contact_confirmed_at is None:
        raise CallbackError("callback_recontact_first")
    text = remarks.strip()
    if not text:
        raise CallbackError("callback_remarks_required")
    now = utcnow()
    callback.status = CallbackStatus.CLOSED.value
    callback.remarks = text
    callback.closed_at = now
    callback.closed_by = actor.user_id
    _note(callback, now, "closed", by=actor.user_id)
    session.add(callback)
    audit(session, actor, "callback.close", callback, ip, remarks=text)
    await session.commit()
    return callback


async def answer_by_phone(
    session: AsyncSession,
    settings: Settings,
    actor: StaffPrincipal,
    callback_id: int,
    *,
    received: bool,
    amount_correct: bool | None,
    satisfaction: int | None,
    comment: str | None,
    ip: str | None,
) -> Callback:
    """Answers staff took on the phone: recorded as the insured's own would be, flags included."""
    require_role(actor, WORK_ROLES)
    callback = await scoped_callback(session, actor, callback_id)
    if callback.status == CallbackStatus.CLOSED.value or callback.answered_at is not None:
        raise CallbackError("callback_answered_already")
    if received and amount_correct is None:
        raise CallbackError("callback_bad_answer")
    now = utcnow()
    callback.received = received
    callback.amount_correct = amount_correct if received else None
    callback.satisfaction = satisfaction
    callback.comment = (comment or "").strip() or None
    callback.comment_skipped = callback.comment is None
    callback.channel = "phone"
    callback.answered_by_staff_id = actor.user_id
    _note(callback, now, "answer_by_phone", by=actor.user_id)
    await _after_answer(session, settings, callback, now)
    audit(session, actor, "callback.answer", callback, ip, received=received, amount_correct=amount_correct)
    await session.commit()
    return callback


async def resolve_flag(
    session: AsyncSession, actor: StaffPrincipal, callback_id: int, note: str, ip: str | None
) -> Callback:
    require_role(actor, RESOLVE_ROLES)
    callback = await scoped_callback(session, actor, callback_id)
    if callback.flagged_at is None or callback.flag_resolved_at is not None:
        raise CallbackError("callback_not_flagged")
    now = utcnow()
    callback.flag_resolved_at = now
    callback.flag_resolved_by = actor.user_id
    callback.flag_note = note.strip()
    _note(callback, now, "flag_resolved", by=actor.user_id)
    session.add(callback)
    audit(session, actor, "callback.resolve", callback, ip, note=callback.flag_note)
    await session.commit()
    return callback


@dataclass(frozen=True)
class Rate:
    region_code: str
    period: str
    sampled: int
    answered: int
    unreachable: int
    flagged: int


async def response_rates(
    session: AsyncSession, actor: StaffPrincipal, *, since: str | None, until: str | None, level: int
) -> list[Rate]:
    """Per village (or the region code cut to ``level`` digits, padded) and month of the draw."""
    require_role(actor, READ_ROLES)
    region = func.substr(col(Callback.region_code), 1, level)
    period = func.substr(col(Callback.drawn_on), 1, 7)
    answered = func.sum((col(Callback.answered_at).is_not(None)).cast(Integer))
    query = sql_select(
        region,
        period,
        func.count(),
        answered,
        func.sum(
            (col(Callback.status).in_([CallbackStatus.UNREACHABLE.value, CallbackStatus.CLOSED.value])).cast(
                Integer
            )
        ),
        func.sum((col(Callback.flagged_at).is_not(None)).cast(Integer)),
    ).select_from(Callback)
    query = in_scope(query, actor)
    if since:
        query = query.where(col(Callback.drawn_on) >= since)
    if until:
        query = query.where(col(Callback.drawn_on) <= until)
    query = query.group_by(region, period).order_by(region, period)
    rows = (await session.execute(query)).all()
    return [
        Rate(str(r[0]).ljust(12, "0"), str(r[1]), int(r[2]), int(r[3] or 0), int(r[4] or 0), int(r[5] or 0))
        for r in rows
    ]


# --- retention (R-CBK-5) -----------------------------------------------------------------------------


async def delete_sample(
    session: AsyncSession, settings: Settings, actor: StaffPrincipal, sample_id: int, ip: str | None
) -> int:
    """Deleting a draw and its callbacks: refused within the retention period (at least a year)."""
    require_role(actor, ())
    if not actor.is_national:
        raise CallbackError("outside_scope", reason="national_scope_required")
    sample = await session.get(CallbackSample, sample_id)
    if sample is None:
        raise CallbackError("not_found")
    kept_until = sample.drawn_at + timedelta(days=settings.callback_retention_days)
    if utcnow() < kept_until:
        raise CallbackError("callback_kept", until=local_date(kept_until).isoformat())
    removed = await _delete_samples(session, [sample_id])
    record_audit(
        session=session,
        actor=actor,
        action="callback.delete_sample",
        target_type="callback_sample",
        target_id=sample_id,
        detail={"drawn_on": sample.drawn_on, "callbacks": removed},
        ip=ip,
    )
    await session.commit()
    return removed


async def purge_expired(session: AsyncSession, settings: Settings, now: datetime | None = None) -> int:
    """The retention job: only draws older than the retention period go, with their callbacks."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.callback_retention_days)
    ids = list(
        (await session.exec(select(CallbackSample.id).where(col(CallbackSample.drawn_at) < cutoff))).all()
    )
    removed = await _delete_samples(session, [i for i in ids if i is not None])
    if ids:
        record_audit(
            session=session,
            actor=None,
            action="callback.purge",
            target_type="callback_sample",
            target_id="",
            detail={"samples": len(ids), "callbacks": removed, "before": cutoff.isoformat()},
            ip=None,
        )
    await session.commit()
    return removed


async def _delete_samples(session: AsyncSession, sample_ids: list[int]) -> int:
    if not sample_ids:
        return 0
    count = (
        await session.execute(
            select(func.count()).select_from(Callback).where(col(Callback.sample_id).in_(sample_ids))
        )
    ).scalar_one()
    await session.execute(delete(Callback).where(col(Callback.sample_id).in_(sample_ids)))
    await session.execute(delete(CallbackPopulation).where(col(CallbackPopulation.sample_id).in_(sample_ids)))
    await session.execute(delete(CallbackSample).where(col(CallbackSample.id).in_(sample_ids)))
    return int(count)


__all__ = [
    "CallbackError",
    "DrawReport",
    "FollowUpReport",
    "answer",
    "draw_daily_sample",
    "follow_up",
    "next_question",
    "purge_expired",
    "rederive",
]

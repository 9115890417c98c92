"""Scheduler entry points for claims (idempotent: a second run sends nothing new).

Deadlines are timestamps on the claim (DESIGN: long-running rules are data, not timers); the job looks at
the claims whose deadline is near or past and not met, and acts once per claim and deadline:

- within ``rules.DUE_SOON`` before a deadline: a ``deadline_due_soon`` staff alert for the claim's region
  (where its adjuster works), key ``claim-<id>-<deadline>-soon``;
- after it: a ``deadline_overdue`` alert (``claim-<id>-<deadline>-overdue``) and, for a missed survey,
  a ``claims_notice/survey_overdue`` notice to the insured, once.

R-KPI-3: the two service commitments are the survey within 24 h (R-CLM-6) and the payment within 10 days
of agreement (R-CLM-13); the settlement plan (20 days, R-CLM-11) is reminded the same way. A survey
delay explained to the reporter (``survey_agreed_at``) moves the survey reminders to the agreed time.
``claim.reminders`` remembers what was sent (``{"survey_due_soon": iso time, ...}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.service import alert_staff
from backend.claims import rules, timeline
from backend.claims.models import Claim
from backend.claims.workflow import FINAL, alert_texts
from backend.db import utcnow
from backend.settings import Settings, get_settings
from backend.staff.models import StaffUser
from messages import to_local


@dataclass(frozen=True)
class DeadlineReminderReport:
    checked: int  # claims with a deadline near or past
    due_soon: int  # new due-soon alerts
    overdue: int  # new overdue alerts
    insured_told: int  # new survey-overdue notices to insureds


def _deadlines(claim: Claim) -> list[tuple[str, datetime | None, datetime | None]]:
    """(name, due, met) for reminders; the survey follows a time agreed after an explained delay."""
    return [
        ("survey", claim.survey_agreed_at or claim.survey_due_at, claim.surveyed_at),
        ("settlement", claim.settlement_due_at, claim.assessed_at),
        ("payment", claim.payment_due_at, claim.paid_at),
    ]


async def claim_deadline_reminders(
    session: AsyncSession, now: datetime | None = None, *, settings: Settings | None = None
) -> DeadlineReminderReport:
    """Remind before a claim deadline, escalate after it, tell the insured of a late survey; once each."""
    now = now or utcnow()
    settings = settings or get_settings()
    locale = settings.default_locale
    horizon = now + rules.DUE_SOON
    survey_due = or_(
        and_(col(Claim.survey_agreed_at).is_not(None), col(Claim.survey_agreed_at) <= horizon),
        and_(col(Claim.survey_agreed_at).is_(None), col(Claim.survey_due_at) <= horizon),
    )
    query = (
        select(Claim)
        .where(col(Claim.status).not_in(FINAL))
        .where(
            or_(
                and_(survey_due, col(Claim.surveyed_at).is_(None)),
                and_(col(Claim.settlement_due_at) <= horizon, col(Claim.assessed_at).is_(None)),
                and_(col(Claim.payment_due_at) <= horizon, col(Claim.paid_at).is_(None)),
            )
        )
        .order_by(col(Claim.id))
    )
    claims = list((await session.exec(query)).all())
    due_soon = overdue = told = 0
    for claim in claims:
        sent = dict(claim.reminders)
        adjuster = await _adjuster_name(session, claim)
        for name, due_at, met_at in _deadlines(claim):
            state = rules.deadline_state(due_at, met_at, now)
            if state not in ("due_soon", "overdue"):
                continue
            key = f"{name}_{state}"
            if key in sent:
                continue
            kind = "deadline_due_soon" if state == "due_soon" else "deadline_overdue"
            title, body = alert_texts(kind, locale, claim, deadline=name, due_at=due_at, adjuster=adjuster)
            suffix = "soon" if state == "due_soon" else "overdue"
            alert = await alert_staff(
                session,
                settings,
                kind=kind,
                region_code=claim.region_code,
                title=title,
                body=body,
                dedupe_key=f"claim-{claim.id}-{name}-{suffix}",
                claim_id=claim.id,
            )
            sent[key] = now.isoformat()
            if alert is not None:
                if state == "due_soon":
                    due_soon += 1
                else:
                    overdue += 1
            if name == "survey" and state == "overdue" and "survey_overdue_insured" not in sent:
                assert due_at is not None
                timeline.record(session, claim, "survey_overdue", actor="system", due_at=due_at.isoformat())
                await timeline.tell_insured(
                    session, claim, "survey_overdue", dedupe="survey-overdue", due_at=to_local(due_at)
                )
                sent["survey_overdue_insured"] = now.isoformat()
                told += 1
        if sent != claim.reminders:
            claim.reminders = sent  # a new dict: the JSON column sees the change
            session.add(claim)
    await session.commit()
    return DeadlineReminderReport(checked=len(claims), due_soon=due_soon, overdue=overdue, insured_told=told)


async def _adjuster_name(session: AsyncSession, claim: Claim) -> str | None:
    if claim.adjuster_id is None:
        return None
    user = await session.get(StaffUser, claim.adjuster_id)
    return (user.full_name or user.username) if user else None


__all__ = ["DeadlineReminderReport", "claim_deadline_reminders"]

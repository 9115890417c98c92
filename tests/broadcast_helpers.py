"""Insured people written straight into the tables (a policy, its application, the person and a verified
chat), for broadcast tests that need many of them fast; the enrollment flow has its own tests."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.broadcasts.schemas import AudienceSpec, BroadcastContent, LocaleContent, Part
from backend.db import utcnow
from backend.enrollment.models import Application, Policy
from backend.people.models import ChatIdentity, Person

_serial = itertools.count(1)
DONGGUAN_A = "441900003001"  # a village of 东城街道, 东莞市
DONGGUAN_B = "441900004001"  # a village of another 东莞 township
ZHONGSHAN = "442000001001"  # 中山市: the neighbouring city


async def insured(
    session: AsyncSession,
    *,
    region: str = DONGGUAN_A,
    product: str = "rice",
    chat: bool = True,
    phone: bool = True,
    locale: str = "zh-CN",
    stopped: bool = False,
    lat: float | None = None,
    lon: float | None = None,
    person: Person | None = None,
    status: str = "active",
) -> tuple[Person, ChatIdentity | None, Policy]:
    """A person insured for ``product`` in ``region``, with a verified chat unless ``chat`` is False (a
    second policy, and no new chat, when ``person`` is given)."""
    n = next(_serial)
    now = utcnow()
    if person is not None:
        chat = False
    else:
        person = Person(name=f"农户{n}", phone=f"139{n:08d}" if phone else None)
        session.add(person)
        await session.flush()
    identity = None
    if chat:
        identity = ChatIdentity(
            channel="webchat",
            external_id=f"bc-{n}",
            address=f"bc-{n}",
            locale=locale,
            phone=person.phone,
            phone_verified_at=now,
            person_id=person.id,
            stopped_at=now if stopped else None,
        )
        session.add(identity)
        await session.flush()
    answers: dict[str, Any] = {"name": person.name, "latitude": lat, "longitude": lon}
    application = Application(
        number=f"BA{n}",
        idempotency_key=f"bc-key-{n}",
        product_code=product,
        kind="individual",
        status="issued",
        identity_id=identity.id if identity else None,
        person_id=person.id,
        region_code=region,
        answers=answers,
        quantity="10",
        sum_insured_fen=100_000,
        payable_fen=1_000,
        disclosure_version="2026.1",
        disclosure_confirmed_at=now,
    )
    session.add(application)
    await session.flush()
    policy = Policy(
        number=f"BP{n}",
        application_id=application.id or 0,
        product_code=product,
        identity_id=identity.id if identity else None,
        person_id=person.id,
        region_code=region,
        insured_name=person.name or "",
        quantity="10",
        sum_insured_fen=100_000,
        premium_fen=1_000,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=364),
        status=status,
    )
    session.add(policy)
    await session.commit()
    return person, identity, policy


def text_content(
    zh: str = "台风今晚登陆，请做好防范。", en: str = "A typhoon lands tonight.", **sections: tuple[str, str]
) -> BroadcastContent:
    """Free text in both languages; ``sections`` maps a subject key to its (zh, en) advice."""
    return BroadcastContent(
        locales={
            "zh-CN": LocaleContent(
                chat=Part(text=zh), sections={k: Part(text=v[0]) for k, v in sections.items()}
            ),
            "en": LocaleContent(
                chat=Part(text=en), sections={k: Part(text=v[1]) for k, v in sections.items()}
            ),
        }
    )


def regions(*codes: str) -> AudienceSpec:
    return AudienceSpec(region_codes=list(codes))

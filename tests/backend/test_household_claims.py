"""Claims of a collective policy's households (R-CLM-12 "pay each household", R-CLM-14, R-CLM-3).

A household of a collective enrollment is a row of the organiser's policy. Its person, through a verified
chat, sees that row as its own cover, reports its own losses on it (bounded by its own quantity and sum
insured), follows and confirms its own settlement, and is paid to the account its row gives; another
household, or an unverified chat, sees none of it. An agent's collective report names the household; the
payout notice and the callback survey read the household, never the organiser."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pypdf import PdfReader
from sqlmodel import col, select

from backend.callbacks.models import Callback
from backend.callbacks.service import draw_daily_sample
from backend.claims.models import Claim
from backend.db import Database, utcnow
from backend.enrollment.collective.models import PolicyHousehold
from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity
from backend.publicity.sources import SourceQuery, build_rows
from backend.regions.models import Region
from backend.settings import get_settings
from messages import local_date
from tests.backend.test_access_table import png
from tests.backend.test_claims_reporting import cover_began, report
from tests.backend.test_claims_workflow import code_of, crop_sampling, staff_user, survey_body
from tests.backend.test_enrollment_api import identity, signed_form
from tests.backend.test_publicity import publish
from tests.collective_helpers import AREA, household, list_csv, upload

_SEED = json.loads((Path(__file__).parents[2] / "backend/products/seed/catalogue.json").read_text("utf-8"))
CATALOGUE: list[dict[str, Any]] = _SEED["products"] if isinstance(_SEED, dict) else _SEED
PHONE_1, PHONE_2 = "13900000101", "13900000102"
ACCOUNT_1, ACCOUNT_2 = "6228480000000000101", "6228480000000000102"


async def issued_collective(api: httpx.AsyncClient, admin_headers: dict[str, str]) -> int:
    """Two households (10 mu each) on one collective rice policy, stamped and paid: the policy's id."""
    rows = [
        household(101, phone=PHONE_1, bank_account=ACCOUNT_1),
        household(102, phone=PHONE_2, bank_account=ACCOUNT_2),
    ]
    created = await upload(api, admin_headers, list_csv(rows))
    assert created.status_code == 201, created.text
    collective = created.json()["id"]
    stamp = await api.post(
        f"/api/collective/{collective}/organiser-confirmation",
        headers=admin_headers,
        data={"confirmed_by_name": "李村长", "confirmed_by_title": "村委会主任"},
        files={"file": ("stamp.png", io.BytesIO(png()), "image/png")},
    )
    assert stamp.status_code == 200, stamp.text
    paid = await api.post(
        f"/api/collective/{collective}/payment",
        headers=admin_headers,
        json={"method": "bank_deduction", "reference": "TR-household-claims"},
    )
    assert paid.status_code == 200, paid.text
    return int(paid.json()["policy_id"])


async def _chat_of(db: Database, phone: str) -> int | None:
    async with db.session() as session:
        return (await session.exec(select(ChatIdentity).where(ChatIdentity.phone == phone))).one().id


async def households(db: Database) -> dict[str, PolicyHousehold]:
    async with db.session() as session:
        rows = (await session.exec(select(PolicyHousehold))).all()
    return {row.phone or "": row for row in rows}


async def own_cover(api: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.get("/api/bot/policies", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def household_claim(
    api: httpx.AsyncClient, db: Database, headers: dict[str, str], policy_id: int, lost: str = "4"
) -> dict[str, Any]:
    await cover_began(db, timedelta(days=5), policy_id)
    reported = await api.post("/api/bot/claims", headers=headers, json=report(policy_id, lost_quantity=lost))
    assert reported.status_code == 200, reported.text
    return dict(reported.json())


async def test_r_clm_12_a_household_sees_its_own_row_as_its_cover_and_reports_on_it(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    policy_id = await issued_collective(api, admin_headers)
    rows = await households(db)
    first = await identity(api, service_headers, "hh-claims-1", phone=PHONE_1)
    second = await identity(api, service_headers, "hh-claims-2", phone=PHONE_2)
    stranger = await identity(api, service_headers, "hh-claims-x", phone="13900000199")

    cover = [p for p in await own_cover(api, first) if p["id"] == policy_id]
    assert len(cover) == 1 and cover[0]["household_id"] == rows[PHONE_1].id
    assert cover[0]["insured_name"] == rows[PHONE_1].name and cover[0]["quantity"] == "10"
    assert cover[0]["terms"]["bank_account"] != ACCOUNT_1 and cover[0]["terms"]["bank_account"].endswith(
        "0101"
    )
    assert [p["id"] for p in await own_cover(api, stranger)] == []
    detail = await api.get(f"/api/bot/policies/{policy_id}", headers=stranger)
    assert detail.status_code == 404

    # Bounded by the household's own 10 mu, not the list's 20.
    await cover_began(db, timedelta(days=5), policy_id)
    too_much = await api.post("/api/bot/claims", headers=first, json=report(policy_id, lost_quantity="11"))
    assert code_of(too_much) == "lost_more_than_insured"
    refused = await api.post("/api/bot/claims", headers=stranger, json=report(policy_id, lost_quantity="4"))
    assert refused.status_code == 404  # no household of this policy: the policy does not exist for them
    claim = await household_claim(api, db, first, policy_id)
    async with db.session() as session:
        stored = await session.get(Claim, claim["id"])
        assert stored is not None
        assert stored.household_id == rows[PHONE_1].id and stored.insured_name == rows[PHONE_1].name
        assert stored.region_code == rows[PHONE_1].village_code

    mine = [c["id"] for c in (await api.get("/api/bot/claims", headers=first)).json()]
    assert mine == [claim["id"]]
    assert (await api.get("/api/bot/claims", headers=second)).json() == []
    assert (await api.get(f"/api/bot/claims/{claim['id']}", headers=second)).status_code == 404


async def test_r_clm_12_a_household_claim_is_paid_to_the_households_own_account(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    policy_id = await issued_collective(api, admin_headers)
    rows = await households(db)
    first = await identity(api, service_headers, "hh-pay-1", phone=PHONE_1)
    adjuster, _ = await staff_user(api, admin_headers, "adj_hh12", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_hh12", "underwriter")
    claim_id = (await household_claim(api, db, first, policy_id))["id"]
    body = survey_body(**crop_sampling(record_id=await signed_form(api, adjuster)))
    surveyed = await api.post(f"/api/claims/{claim_id}/survey-report", headers=adjuster, json=body)
    assert surveyed.status_code == 200, surveyed.text
    over = rows[PHONE_1].sum_insured_fen + 1  # the household's own sum insured bounds its claim
    assert code_of(
        await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": over})
    )
    assessed = await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 50000})
    assert assessed.status_code == 200, assessed.text
    confirmed = await api.post(
        f"/api/bot/claims/{claim_id}/settlement", headers=first, json={"answer": "confirm"}
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "agreed", confirmed.text

    url = f"/api/claims/{claim_id}/payment"
    other_household = await api.post(
        url, headers=underwriter, json={"reference": "TRF-HH-1", "account_number": ACCOUNT_2}
    )
    assert code_of(other_household) == "payee_other_insured"  # a neighbour on the same list
    paid = await api.post(url, headers=underwriter, json={"reference": "TRF-HH-1"})
    assert paid.status_code == 200, paid.text
    payment = paid.json()["claim"]["payment"]
    assert payment["payee_is_insured"] is True and payment["payee_name"] == rows[PHONE_1].name
    assert payment["account_masked"].endswith("0101")
    async with db.session() as session:
        own_chat = (await session.exec(select(ChatIdentity).where(ChatIdentity.phone == PHONE_1))).one()
        told = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.dedupe_key == f"claim-{claim_id}-paid")
            )
        ).all()
    assert [m.identity_id for m in told] == [own_chat.id]  # the household's chat, not the organiser's
    assert "500.00" in told[0].text and ACCOUNT_1 not in told[0].text


async def test_r_clm_14_only_the_household_itself_confirms_its_settlement(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    policy_id = await issued_collective(api, admin_headers)
    first = await identity(api, service_headers, "hh-14-1", phone=PHONE_1)
    second = await identity(api, service_headers, "hh-14-2", phone=PHONE_2)
    adjuster, _ = await staff_user(api, admin_headers, "adj_hh14", "adjuster")
    claim_id = (await household_claim(api, db, first, policy_id))["id"]
    body = survey_body(**crop_sampling(record_id=await signed_form(api, adjuster)))
    assert (
        await api.post(f"/api/claims/{claim_id}/survey-report", headers=adjuster, json=body)
    ).status_code == 200
    assert (
        await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 30000})
    ).status_code == 200
    async with db.session() as session:
        asked = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.dedupe_key == f"claim-{claim_id}-assessed-1")
            )
        ).one()
        first_chat = (await session.exec(select(ChatIdentity).where(ChatIdentity.phone == PHONE_1))).one()
    assert asked.identity_id == first_chat.id  # the question goes to the household's own chat
    neighbour = await api.post(
        f"/api/bot/claims/{claim_id}/settlement", headers=second, json={"answer": "confirm"}
    )
    assert neighbour.status_code == 404  # another household of the same list cannot confirm it
    objected = await api.post(
        f"/api/bot/claims/{claim_id}/settlement",
        headers=first,
        json={"answer": "object", "reason": "倒伏的比核定的多"},
    )
    assert objected.status_code == 200 and objected.json()["status"] == "objected", objected.text


async def test_r_clm_3_an_agents_collective_report_names_each_household_of_a_collective_policy(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    policy_id = await issued_collective(api, admin_headers)
    rows = await households(db)
    await identity(api, service_headers, "hh-3-1", phone=PHONE_1)
    await cover_began(db, timedelta(days=5), policy_id)
    agent, _ = await staff_user(api, admin_headers, "agent_hh3", "agent")

    def body(*entries: dict[str, Any]) -> dict[str, Any]:
        return {
            "village_code": AREA,
            "cause": "typhoon",
            "loss_started_at": (utcnow() - timedelta(hours=3)).isoformat(),
            "households": list(entries),
        }

    whole = await api.post(
        "/api/claims/collective", headers=agent, json=body({"policy_id": policy_id, "lost_quantity": "3"})
    )
    assert code_of(whole) == "household_required"  # never a claim of the organiser as a whole
    unknown = {"policy_id": policy_id, "household_id": 999_999, "lost_quantity": "3"}
    assert code_of(await api.post("/api/claims/collective", headers=agent, json=body(unknown))) == (
        "household_not_on_policy"
    )
    over = {"policy_id": policy_id, "household_id": rows[PHONE_2].id, "lost_quantity": "11"}
    assert code_of(await api.post("/api/claims/collective", headers=agent, json=body(over))) == (
        "lost_more_than_insured"
    )
    reported = await api.post(
        "/api/claims/collective",
        headers=agent,
        json=body(
            {"policy_id": policy_id, "household_id": rows[PHONE_1].id, "lost_quantity": "3"},
            {"policy_id": policy_id, "household_id": rows[PHONE_2].id, "lost_quantity": "6"},
        ),
    )
    assert reported.status_code == 201, reported.text
    async with db.session() as session:
        claims = (await session.exec(select(Claim).order_by(col(Claim.id)))).all()
        first_chat = (await session.exec(select(ChatIdentity).where(ChatIdentity.phone == PHONE_1))).one()
        told = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.dedupe_key == f"claim-{claims[0].id}-reported")
            )
        ).all()
        texted = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.dedupe_key == f"claim-{claims[1].id}-reported")
            )
        ).all()
    assert [(c.household_id, c.insured_name) for c in claims] == [
        (rows[PHONE_1].id, rows[PHONE_1].name),
        (rows[PHONE_2].id, rows[PHONE_2].name),
    ]
    assert [m.identity_id for m in told] == [first_chat.id]  # the household's own chat
    assert [(m.channel, m.address) for m in texted] == [("sms", f"+86{PHONE_2}")]  # no chat: texted


async def test_r_clm_12_the_payout_notice_and_the_callback_read_the_household(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    policy_id = await issued_collective(api, admin_headers)
    rows = await households(db)
    first = await identity(api, service_headers, "hh-pub-1", phone=PHONE_1)
    adjuster, _ = await staff_user(api, admin_headers, "adj_hhpub", "adjuster")
    underwriter, _ = await staff_user(api, admin_headers, "uw_hhpub", "underwriter")
    claim_id = (await household_claim(api, db, first, policy_id, lost="4"))["id"]
    body = survey_body(**crop_sampling(record_id=await signed_form(api, adjuster)))
    assert (
        await api.post(f"/api/claims/{claim_id}/survey-report", headers=adjuster, json=body)
    ).status_code == 200
    await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 40000})
    await api.post(f"/api/bot/claims/{claim_id}/settlement", headers=first, json={"answer": "confirm"})
    paid = await api.post(
        f"/api/claims/{claim_id}/payment", headers=underwriter, json={"reference": "TRF-P1"}
    )
    assert paid.status_code == 200, paid.text

    async with db.session() as session:
        region = await session.get(Region, rows[PHONE_1].village_code)
        assert region is not None
        published = await build_rows(
            session, SourceQuery(kind="claims_payout", region=region, locale="zh-CN", claim_ids=(claim_id,))
        )
    assert len(published) == 1
    assert published[0]["person_id"] == rows[PHONE_1].person_id  # its own row marked for the household
    fields = published[0]["fields"]
    assert fields["insured_name"] == rows[PHONE_1].name and fields["insured_quantity"].startswith("10")
    assert fields["payout_amount"] in ("400.00", "400")

    # Published to the village: the household is told in its own chat and finds its row marked, though the
    # organiser's policy names no person; the neighbour (no claim) is told too, by text.
    notice = await publish(api, admin_headers, {"kind": "claims_payout", "region_code": AREA})
    mine = await api.get("/api/bot/publicity/notices", headers=first)
    assert [n["id"] for n in mine.json()] == [notice["id"]] and mine.json()[0]["own_rows"] == [0]
    async with db.session() as session:
        told = (
            await session.exec(select(OutboxMessage).where(col(OutboxMessage.text).contains("公示")))
        ).all()
    first_chat = await _chat_of(db, PHONE_1)
    assert first_chat in {m.identity_id for m in told}
    assert f"+86{PHONE_2}" in {m.address for m in told if m.channel == "sms"}

    settings = get_settings().model_copy(update={"callback_draw_hour": 0})
    async with db.session() as session:
        await draw_daily_sample(session, settings, now=utcnow() + timedelta(minutes=1))
        drawn = (await session.exec(select(Callback).where(Callback.claim_id == claim_id))).all()
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
    case = f"policy:{policy_id}:{local_date(claim.loss_started_at).isoformat()}"  # one loss, one case
    assert [(c.person_id, c.case_key) for c in drawn] == [(rows[PHONE_1].person_id, case)]


async def test_r_enr_10_the_collective_policy_has_its_own_e_policy_naming_the_households(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    policy_id = await issued_collective(api, admin_headers)
    policy = (await api.get(f"/api/policies/{policy_id}", headers=admin_headers)).json()
    assert policy["document_id"], policy
    pdf = await api.get(f"/api/documents/{policy['document_id']}", headers=admin_headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).replace("\n", "")
    for part in ("投保人与被保险人", "东城街道大塘村民委员会", "分户投保清单所列 2 户", "李村长", "逐户支付"):
        assert part in text, part
    assert "被保险人本人" not in text  # the organiser is no insured "in person"
    household = await identity(api, service_headers, "hh-epolicy", phone=PHONE_1)
    mine = await api.get(f"/api/bot/documents/{policy['document_id']}", headers=household)
    assert mine.status_code == 404  # a household gets its voucher, not the organiser's policy


async def _agreed_household_claim(
    api: httpx.AsyncClient,
    db: Database,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    tag: str,
) -> int:
    policy_id = await issued_collective(api, admin_headers)
    first = await identity(api, service_headers, f"hh-{tag}", phone=PHONE_1)
    adjuster, _ = await staff_user(api, admin_headers, f"adj_{tag}", "adjuster")
    claim_id = int((await household_claim(api, db, first, policy_id))["id"])
    body = survey_body(**crop_sampling(record_id=await signed_form(api, adjuster)))
    assert (
        await api.post(f"/api/claims/{claim_id}/survey-report", headers=adjuster, json=body)
    ).status_code == 200
    await api.post(f"/api/claims/{claim_id}/assess", headers=adjuster, json={"amount_fen": 20000})
    confirmed = await api.post(
        f"/api/bot/claims/{claim_id}/settlement", headers=first, json={"answer": "confirm"}
    )
    assert confirmed.json()["status"] == "agreed", confirmed.text
    return claim_id


async def test_r_clm_12_a_committees_account_on_a_households_row_is_never_paid(
    api: httpx.AsyncClient, db: Database, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    """The organiser writes the rows: its own registered account put on a household's row is refused
    although it is "the account on file"."""
    claim_id = await _agreed_household_claim(api, db, service_headers, admin_headers, "reg")
    underwriter, _ = await staff_user(api, admin_headers, "uw_reg", "underwriter")
    registered = await api.post(
        "/api/payee-accounts",
        headers=underwriter,
        json={
            "account_number": ACCOUNT_1,
            "bank_name": "农商银行",
            "kind": "village_committee",
            "holder": "大塘村民委员会",
            "region_code": AREA,
        },
    )
    assert registered.status_code == 201, registered.text
    paid = await api.post(
        f"/api/claims/{claim_id}/payment", headers=underwriter, json={"reference": "TRF-REG"}
    )
    assert code_of(paid) == "payee_account_registered"


async def test_r_clm_12_one_account_for_two_households_is_refused_in_the_list(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    rows = [household(201, bank_account=ACCOUNT_1), household(202, bank_account=ACCOUNT_1)]
    checked = await upload(api, admin_headers, list_csv(rows), path="/api/collective/lists/check")
    problems = [(p["line"], p["column"], p["code"]) for p in checked.json()["problems"]]
    assert problems == [(3, "bank_account", "bank_account_shared")]


async def test_weather_index_cover_is_not_enrolled_collectively(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """An index payout is one per policy: a collective one would not pay each household (R-CLM-12)."""
    index = next(p["code"] for p in CATALOGUE if p.get("weather_index"))
    refused = await upload(api, admin_headers, list_csv([household(203)]), product=index)
    assert code_of(refused) == "index_not_collective"

"""R-CLM-2 weather index: station readings per township pay every insured there by the product's index
table, with no report; the bot shows the township's trigger status; payouts are listed by village."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from backend.claims.index import service as index
from backend.claims.index.models import IndexPayout, IndexReading
from backend.claims.models import Claim, ClaimEvent
from backend.db import Database
from backend.enrollment.models import Policy
from backend.outbox.models import OutboxMessage
from backend.regions.models import Region
from messages import render
from tests.backend.test_enrollment_api import farmer_application, identity, submit
from tests.conftest import login
from tests.enroll_helpers import DONGGUAN_TOWNSHIP

TOWNSHIP = DONGGUAN_TOWNSHIP  # 东莞市 东城街道 441900003000
VILLAGE = "441900003201"  # a village of 东城街道, added by the fixture
OTHER_TOWNSHIP = "441900004000"  # 东莞市 南城街道
LYCHEE_SUM_PER_MU_FEN = 300_000  # catalogue: lychee 3,000 yuan per mu
BANANA_SUM_PER_MU_FEN = 400_000  # banana 4,000 yuan per mu


_READING = {"id": 1, "value": "10.5", "observed_on": "2026-11-22", "station": "东城站"}
_CLAIM = SimpleNamespace(id=1, number="CL202611220000001")
# Sample contexts of this feature's templates, for tests/test_messages.py (``SAMPLES.update(...)``).
TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    "claims_notice/index_payout": {
        "claim": _CLAIM,
        "payout": {
            "level": 2,
            "share": "0.4",
            "share_percent": "40",
            "amount_fen": 1200000,
            "amount_yuan": "12000.00",
        },
        "trigger": {
            "peril": "wind",
            "value": "11",
            "unit": "beaufort",
            "compare": ">=",
            "threshold": "11",
            "observed_on": "2026-11-22",
            "station": "东城站",
            "township_code": "441900003000",
            "township_name": "东城街道",
        },
        "product": {"code": "lychee", "name_zh": "荔枝", "name_en": "Lychee"},
    },
    "claims/index_status": {
        "status": {
            "township_code": "441900003000",
            "township_name": "东城街道",
            "product_code": "lychee",
            "product_name_zh": "荔枝",
            "product_name_en": "Lychee",
            "policy_id": 1,
            "since": "2026-11-01",
            "until": "2026-11-22",
            "report_needed": False,
            "triggered": True,
            "level": 1,
            "perils": [
                {
                    "peril": "wind",
                    "index_peril": "wind",
                    "unit": "beaufort",
                    "compare": ">=",
                    "first_threshold": "10",
                    "latest": _READING,
                    "triggered": True,
                    "level": 1,
                    "share": "0.2",
                    "reached_by": _READING,
                },
                {
                    "peril": "cold",
                    "index_peril": "low_temperature",
                    "unit": "celsius",
                    "compare": "<=",
                    "first_threshold": "0",
                    "latest": None,
                    "triggered": False,
                    "level": None,
                    "share": None,
                    "reached_by": None,
                },
            ],
            "payouts": [
                {
                    "claim_id": 1,
                    "claim_number": "CL202611220000001",
                    "claim_status": "assessed",
                    "peril": "wind",
                    "level": 1,
                    "share": "0.2",
                    "amount_fen": 600000,
                    "amount_yuan": "6000.00",
                    "observed_on": "2026-11-22",
                }
            ],
            "paid_total_fen": 600000,
            "paid_total_yuan": "6000.00",
        }
    },
}


@pytest.fixture
async def village(db: Database) -> str:
    async with db.session() as session:
        session.add(Region(code=VILLAGE, name="测试村", level=5, parent_code=TOWNSHIP))
        await session.commit()
    return VILLAGE


async def insured(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    name: str,
    phone: str,
    *,
    product: str = "lychee",
    region: str = TOWNSHIP,
    quantity: str = "10",
) -> tuple[dict[str, str], dict[str, Any]]:
    """A farmer with a paid policy; returns the bot's headers for them and the policy."""
    headers = await identity(api, service_headers, f"index-{phone}", phone=phone)
    body = farmer_application(product_code=product, region_code=region, quantity=quantity)
    body["farmer"]["name"] = name
    body["farmer"]["phone"] = phone
    application = await submit(api, headers, body)
    assert application.status_code == 200, application.text
    paid = await api.post(
        f"/api/bot/applications/{application.json()['id']}/payments",
        headers=headers,
        json={"provider": "demo"},
    )
    assert paid.status_code == 200, paid.text
    return headers, paid.json()["policy"]


async def backdate(db: Database, policy_id: int, days: int) -> None:
    """Policies start when issued; readings of earlier days need a policy in force then."""
    async with db.session() as session:
        policy = await session.get(Policy, policy_id)
        assert policy is not None
        policy.starts_at = policy.starts_at - timedelta(days=days)
        await session.commit()


def day(offset: int = 0) -> str:
    return (index.china_today() + timedelta(days=offset)).isoformat()


def reading(peril: str, value: str, *, township: str = TOWNSHIP, on: str | None = None) -> dict[str, str]:
    return {
        "township_code": township,
        "peril": peril,
        "value": value,
        "observed_on": on or day(),
        "station": "东城站 G1234",
    }


async def post(api: httpx.AsyncClient, headers: dict[str, str], *rows: dict[str, str]) -> dict[str, Any]:
    response = await api.post("/api/index/readings", headers=headers, json=list(rows))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def payouts_of(db: Database, policy_id: int) -> list[IndexPayout]:
    async with db.session() as session:
        query = select(IndexPayout).where(IndexPayout.policy_id == policy_id).order_by(col(IndexPayout.id))
        return list((await session.exec(query)).all())


async def claims_of(db: Database, policy_id: int) -> list[Claim]:
    async with db.session() as session:
        query = select(Claim).where(Claim.policy_id == policy_id).order_by(col(Claim.id))
        return list((await session.exec(query)).all())


def share_of(sum_insured_fen: int, share: str) -> int:
    return int((Decimal(share) * sum_insured_fen).quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def test_r_clm_2_reading_at_trigger_pays_each_insured_by_index_table(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    admin_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    lychee_headers, lychee = await insured(api, service_headers, "李荔枝", "13800000001")
    _h, banana = await insured(
        api, service_headers, "王香蕉", "13800000002", product="banana", region=village, quantity="5.5"
    )
    assert lychee["sum_insured_fen"] == 10 * LYCHEE_SUM_PER_MU_FEN
    assert banana["sum_insured_fen"] == 22_000_00  # 5.5 mu x 4,000 yuan

    report = await post(api, admin_headers, reading("wind", "11"))  # Beaufort 11: level 2 for both

    assert report["accepted"] == 1 and report["rejected"] == [] and report["payouts"] == 2
    expected = {
        lychee["id"]: share_of(lychee["sum_insured_fen"], "0.4"),
        banana["id"]: share_of(2_200_000, "0.4"),
    }
    assert report["payout_total_fen"] == sum(expected.values())
    for policy in (lychee, banana):
        [payout] = await payouts_of(db, policy["id"])
        assert (payout.level, payout.share, payout.amount_fen) == ("2", "0.4", expected[policy["id"]])
        [claim] = await claims_of(db, policy["id"])
        assert payout.claim_id == claim.id
        assert claim.kind == "index" and claim.status == "assessed"
        assert claim.assessed_amount_fen == claim.estimated_amount_fen == expected[policy["id"]]
        assert claim.cause == "wind" and claim.survey_due_at is None and claim.reporter_name == "system"
        assert claim.lost_quantity == policy["quantity"] and claim.unit == "mu"
        assert claim.number.startswith("CL") and claim.county_code == "441900000000"
        assert index.day_of(claim.loss_started_at) == index.china_today()
    async with db.session() as session:
        kinds = (
            await session.exec(select(ClaimEvent.kind).join(Claim).where(Claim.policy_id == lychee["id"]))
        ).all()
        assert sorted(kinds) == ["assessed", "index_payout"]
        notices = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.identity_id == int(lychee_headers["X-Identity-Id"]))
            )
        ).all()
    told = [m for m in notices if m.dedupe_key.endswith("-index-payout")]
    assert len(told) == 1
    assert "12,000.00" in told[0].text and "第 <b>2</b> 级" in told[0].text and "东城街道" in told[0].text


async def test_r_clm_2_just_below_the_trigger_pays_nothing(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    _h, policy = await insured(api, service_headers, "李一", "13800000011")
    report = await post(
        api,
        admin_headers,
        reading("wind", "9.9"),  # level 1 is Beaufort 10 or more
        reading("rain", "249.9"),  # level 1 is 250 mm or more
        reading("cold", "0.1"),  # lychee level 1 is 0 °C or less
    )
    assert report["accepted"] == 3 and report["payouts"] == 0
    assert await payouts_of(db, policy["id"]) == [] and await claims_of(db, policy["id"]) == []


async def test_r_clm_2_exactly_at_the_trigger_pays(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    _h, policy = await insured(api, service_headers, "李二", "13800000012")
    report = await post(api, admin_headers, reading("wind", "10"), reading("cold", "0"))  # >= 10 and <= 0
    assert report["payouts"] == 2
    paid = {(p.level, p.share, p.amount_fen) for p in await payouts_of(db, policy["id"])}
    sum_insured = policy["sum_insured_fen"]
    assert paid == {("1", "0.2", share_of(sum_insured, "0.2"))}  # both perils pay level 1, 20 %
    assert len(await payouts_of(db, policy["id"])) == 2


async def test_r_clm_2_higher_levels_pay_more(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    _h, policy = await insured(api, service_headers, "李三", "13800000013", quantity="7")
    await backdate(db, policy["id"], 40)
    sum_insured = policy["sum_insured_fen"]
    # Separate rain events (more than INDEX_EVENT_DAYS apart): levels 1, 2, 3 pay 10 %, 20 %, 30 %.
    await post(
        api,
        admin_headers,
        reading("rain", "250", on=day(-30)),
        reading("rain", "320", on=day(-20)),
        reading("rain", "351.5", on=day(-10)),
    )
    amounts = [p.amount_fen for p in await payouts_of(db, policy["id"])]
    assert amounts == [share_of(sum_insured, s) for s in ("0.1", "0.2", "0.3")]
    assert amounts[0] < amounts[1] < amounts[2]


async def test_r_clm_2_one_event_pays_its_highest_level_once_and_the_annual_cap_holds(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    _h, policy = await insured(api, service_headers, "李四五", "13800000014")
    await backdate(db, policy["id"], 40)
    sum_insured = policy["sum_insured_fen"]
    # One typhoon over two days: level 1, then level 2 the next day pays only the difference (40 % - 20 %).
    await post(api, admin_headers, reading("wind", "10", on=day(-30)), reading("wind", "11", on=day(-29)))
    # A lower level the day after pays nothing more.
    await post(api, admin_headers, reading("wind", "10", on=day(-28)))
    amounts = [(p.level, p.amount_fen) for p in await payouts_of(db, policy["id"])]
    assert amounts == [("1", share_of(sum_insured, "0.2")), ("2", share_of(sum_insured, "0.2"))]
    # Later, separate events: 70 % would take the total to 110 %: capped at the sum insured (cap 1).
    await post(api, admin_headers, reading("wind", "12", on=day(-15)), reading("cold", "-2", on=day(-5)))
    total = sum(p.amount_fen for p in await payouts_of(db, policy["id"]))
    assert total == sum_insured


async def test_r_clm_2_duplicate_reading_creates_nothing_new(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    _h, policy = await insured(api, service_headers, "李六", "13800000016")
    first = await post(api, admin_headers, reading("wind", "10"))
    again = await post(api, admin_headers, reading("wind", "10.0"))
    contradicting = await post(api, admin_headers, reading("wind", "12"))
    assert first["payouts"] == 1 and again["accepted"] == 0 and again["payouts"] == 0
    assert [r["reason"] for r in again["rejected"]] == ["already_recorded"]
    assert [r["reason"] for r in contradicting["rejected"]] == ["conflicts_with_recorded"]
    async with db.session() as session:
        stored = (await session.exec(select(IndexReading))).all()
        assert len(stored) == 1
        assert await index.process_reading(session, stored[0]) == []  # processed twice: nothing new
        await session.commit()
    assert len(await payouts_of(db, policy["id"])) == 1 and len(await claims_of(db, policy["id"])) == 1


async def test_r_clm_2_other_townships_untouched(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    _h, here = await insured(api, service_headers, "李七", "13800000017")
    _h, there = await insured(api, service_headers, "李八", "13800000018", region=OTHER_TOWNSHIP)
    report = await post(api, admin_headers, reading("wind", "12", township=OTHER_TOWNSHIP))
    assert report["payouts"] == 1
    assert await payouts_of(db, here["id"]) == [] and len(await payouts_of(db, there["id"])) == 1


async def test_r_clm_2_non_index_policies_untouched(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    _h, rice = await insured(api, service_headers, "李九", "13800000019", product="rice")
    report = await post(api, admin_headers, reading("wind", "12"), reading("rain", "400"))
    assert report["accepted"] == 2 and report["payouts"] == 0
    assert await claims_of(db, rice["id"]) == []


async def test_r_clm_2_csv_import_reports_rejected_rows(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], db: Database
) -> None:
    _h, policy = await insured(api, service_headers, "李十", "13800000020")
    scoped = {
        "username": "dg-adjuster",
        "password": "adjuster-password-1",
        "role": "adjuster",
        "region_codes": ["441900000000"],
    }
    assert (await api.post("/api/staff/users", json=scoped, headers=admin_headers)).status_code == 201
    adjuster = await login(api, "dg-adjuster", "adjuster-password-1")
    rows = [
        "township_code,peril,value,observed_on,station",
        f"{TOWNSHIP},wind,11,{day()},东城站",  # 2: good, pays
        f"{TOWNSHIP[:9]},rain,120,{day(-1)},",  # 3: good (short code), below the trigger
        "4419000030,wind,11,2026-01-01,",  # 4: bad code
        f"{VILLAGE},wind,11,{day()},",  # 5: a village code is not a township
        "441900999000,wind,11,2026-01-01,",  # 6: no such township
        "440103001000,wind,11,2026-01-01,",  # 7: Guangzhou: outside the adjuster's scope
        f"{TOWNSHIP},hail,3,{day()},",  # 8: bad peril
        f"{TOWNSHIP},cold,minus two,{day()},",  # 9: bad value
        f"{TOWNSHIP},wind,32.7,{day(-2)},",  # 10: m/s, not a Beaufort level
        f"{TOWNSHIP},cold,-1,2026-02-30,",  # 11: bad date
        f"{TOWNSHIP},cold,-1,{day(1)},",  # 12: future
        f"{TOWNSHIP},wind,10,{day()},",  # 13: same township, peril and day as line 2
        "",
    ]
    csv_bytes = ("\ufeff" + "\r\n".join(rows)).encode("utf-8")
    response = await api.post(
        "/api/index/readings/csv", headers=adjuster, files={"file": ("readings.csv", csv_bytes, "text/csv")}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["accepted"] == 2 and report["payouts"] == 1
    assert [(r["line"], r["reason"]) for r in report["rejected"]] == [
        (4, "bad_township_code"),
        (5, "bad_township_code"),
        (6, "unknown_township"),
        (7, "outside_scope"),
        (8, "bad_peril"),
        (9, "bad_value"),
        (10, "implausible_value"),
        (11, "bad_date"),
        (12, "future_date"),
        (13, "duplicate_in_file"),
    ]
    assert len(await payouts_of(db, policy["id"])) == 1
    bad_header = await api.post(
        "/api/index/readings/csv",
        headers=adjuster,
        files={"file": ("r.csv", b"code,value\n1,2\n", "text/csv")},
    )
    assert bad_header.status_code == 400 and bad_header.json()["detail"]["code"] == "bad_header"
    audit = (
        await api.get("/api/staff/audit", headers=admin_headers, params={"action": "index.record_readings"})
    ).json()
    assert audit[0]["actor"] == "dg-adjuster" and audit[0]["detail"]["rejected"] == 10
    assert audit[0]["detail"]["payouts"] == 1


async def test_r_clm_2_readings_need_a_writer_role(
    api: httpx.AsyncClient, admin_headers: dict[str, str], service_headers: dict[str, str]
) -> None:
    viewer = {
        "username": "viewer1",
        "password": "viewer-password-1",
        "role": "viewer",
        "region_codes": [TOWNSHIP],
    }
    assert (await api.post("/api/staff/users", json=viewer, headers=admin_headers)).status_code == 201
    headers = await login(api, "viewer1", "viewer-password-1")
    assert (
        await api.post("/api/index/readings", headers=headers, json=[reading("wind", "9")])
    ).status_code == 403
    bot = await api.post("/api/index/readings", headers=service_headers, json=[reading("wind", "9")])
    assert bot.status_code == 401


async def test_r_clm_2_bot_status_shows_the_trigger(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers, policy = await insured(api, service_headers, "李状态", "13800000021")
    other_headers, _other = await insured(api, service_headers, "王别人", "13800000022", product="banana")

    before = await api.get("/api/bot/index/status", headers=headers, params={"policy_id": policy["id"]})
    assert before.status_code == 200, before.text
    assert before.json()["triggered"] is False and before.json()["report_needed"] is False
    wind = next(p for p in before.json()["perils"] if p["peril"] == "wind")
    assert wind["first_threshold"] == "10" and wind["latest"] is None

    await post(api, admin_headers, reading("wind", "10.5"), reading("rain", "100"))
    after = (
        await api.get("/api/bot/index/status", headers=headers, params={"policy_id": policy["id"]})
    ).json()
    assert after["triggered"] is True and after["level"] == 1 and after["township_name"] == "东城街道"
    perils = {p["peril"]: p for p in after["perils"]}
    assert perils["wind"]["triggered"] and perils["wind"]["reached_by"]["value"] == "10.5"
    assert not perils["rain"]["triggered"] and perils["rain"]["latest"]["value"] == "100"
    assert [(p["level"], p["amount_fen"], p["claim_status"]) for p in after["payouts"]] == [
        (1, share_of(policy["sum_insured_fen"], "0.2"), "assessed")
    ]
    for locale in ("zh-CN", "en"):
        text = render("claims/index_status", locale, status=after)
        assert ("不需要报案" in text) if locale == "zh-CN" else ("needs no loss report" in text)
        assert "6,000.00" in text

    stranger = await api.get(
        "/api/bot/index/status", headers=other_headers, params={"policy_id": policy["id"]}
    )
    assert stranger.status_code == 404  # another person's policy looks like none
    rice_headers, rice = await insured(api, service_headers, "李水稻", "13800000023", product="rice")
    not_index = await api.get("/api/bot/index/status", headers=rice_headers, params={"policy_id": rice["id"]})
    assert not_index.status_code == 422 and not_index.json()["detail"]["code"] == "not_index_product"


async def test_r_clm_2_payout_list_by_administrative_village(
    api: httpx.AsyncClient, service_headers: dict[str, str], admin_headers: dict[str, str], village: str
) -> None:
    _h, in_village = await insured(
        api, service_headers, "张村民", "13800000031", region=village, quantity="2"
    )
    _h, at_township = await insured(api, service_headers, "赵镇民", "13800000032", product="banana")
    await post(api, admin_headers, reading("cold", "-1.5"))  # lychee level 2 (40 %), banana level 2 (50 %)

    listed = await api.get("/api/index/payouts", headers=admin_headers, params={"region": TOWNSHIP})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["count"] == 2 and body["region_name"] == "东城街道"
    villages = {v["village_code"]: v for v in body["villages"]}
    [row] = villages[village]["rows"]
    assert villages[village]["village_name"] == "测试村"
    assert row["insured_name"] == "张村民" and row["subject_zh"] == "荔枝" and row["quantity"] == "2"
    assert (row["level"], row["share"], row["amount_fen"]) == (
        2,
        "0.4",
        share_of(in_village["sum_insured_fen"], "0.4"),
    )
    [township_row] = villages[TOWNSHIP]["rows"]
    assert township_row["subject_zh"] == "香蕉" and township_row["share"] == "0.5"
    assert township_row["amount_fen"] == share_of(at_township["sum_insured_fen"], "0.5")

    one_village = (
        await api.get("/api/index/payouts", headers=admin_headers, params={"region": village})
    ).json()
    assert one_village["count"] == 1

    outsider = {
        "username": "gz-viewer",
        "password": "viewer-password-2",
        "role": "viewer",
        "region_codes": ["440100000000"],
    }
    assert (await api.post("/api/staff/users", json=outsider, headers=admin_headers)).status_code == 201
    headers = await login(api, "gz-viewer", "viewer-password-2")
    refused = await api.get("/api/index/payouts", headers=headers, params={"region": TOWNSHIP})
    assert refused.status_code == 403
    county = await api.get("/api/index/payouts", headers=admin_headers, params={"region": "441900000000"})
    assert county.status_code == 422 and county.json()["detail"]["code"] == "bad_region"


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_index_templates_render_with_their_samples(locale: str) -> None:
    for key, sample in TEMPLATE_SAMPLES.items():
        assert render(key, locale, **sample).strip()

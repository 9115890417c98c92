"""The product catalogue: seed loading, premiums (agricultural shares, liability R-LIA-1/R-LIA-2), enrollment
rules (R-ENR-6, R-ENR-7), weather-index payouts (R-CLM-2) and the products API."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from backend.db import Database
from backend.products import pricing, service
from backend.products.models import LiabilityRate, Product, RiskQuestion
from backend.staff.models import AuditLog
from tests.conftest import login

AGRICULTURAL = {
    "rice",
    "corn",
    "peanut",
    "potato",
    "sugarcane",
    "sow",
    "pig",
    "dairy_cow",
    "poultry",
    "greenhouse",
    "lychee",
    "longan",
    "banana",
    "papaya",
    "citrus",
}
MAIN_CROPS = {"rice", "corn", "peanut", "potato", "sugarcane"}
INDEX_PRODUCTS = {"lychee", "longan", "banana", "papaya", "citrus"}
REPORT_24H = MAIN_CROPS | {"sow", "pig", "dairy_cow", "poultry", "greenhouse"}
LIABILITY = "work_safety_liability"


# --- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def client(app: FastAPI, api: httpx.AsyncClient) -> httpx.AsyncClient:
    return api


async def product(db: Database, code: str) -> Product:
    async with db.session() as session:
        return await service.get_product(session, code)


async def staff_headers(
    api: httpx.AsyncClient, admin: dict[str, str], role: str, regions: list[str] | None = None
) -> dict[str, str]:
    """A staff member of ``role``: national (the catalogue's editors must be), or in ``regions``."""
    body: dict[str, Any] = {
        "username": f"{role}1",
        "password": f"{role}-pass-1",
        "role": role,
        **({"region_codes": regions} if regions else {"national": True}),
    }
    assert (await api.post("/api/staff/users", json=body, headers=admin)).status_code == 201
    return await login(api, f"{role}1", f"{role}-pass-1")


def make_product(**overrides: Any) -> Product:
    values: dict[str, Any] = {
        "code": "test_crop",
        "kind": "agricultural",
        "category": "crop",
        "name_zh": "测试",
        "name_en": "Test",
        "unit": "mu",
        "sum_insured_per_unit_fen": 100_000,
        "rate": "0.06",
        "share_central": "0.4",
        "share_provincial": "0.25",
        "share_county": "0.15",
        "share_farmer": "0.2",
    }
    values.update(overrides)
    return Product(**values)


# --- the catalogue ---------------------------------------------------------------------------------------


async def test_catalogue_loads_the_listed_products(db: Database) -> None:
    async with db.session() as session:
        products = {p.code: p for p in await service.list_products(session, active_only=False)}
        industries = await service.list_industries(session)
        questions = await service.list_risk_questions(session)
    assert set(products) == AGRICULTURAL | {LIABILITY}
    assert {c for c, p in products.items() if p.main_crop} == MAIN_CROPS
    assert {c for c, p in products.items() if p.weather_index} == INDEX_PRODUCTS
    assert {c for c, p in products.items() if p.report_within_24h} == REPORT_24H  # R-CLM-1
    assert {c for c, p in products.items() if p.needs_ear_tags} == {"sow", "dairy_cow"}
    assert products["poultry"].unit == "bird" and products["greenhouse"].unit == "m2"
    assert products["greenhouse"].category == "facility"
    rice = products["rice"]
    assert (rice.name_zh, rice.sum_insured_per_unit_fen, rice.rate) == ("水稻", 100_000, "0.06")
    for p in products.values():
        assert p.sample and p.catalogue_version == "2026.1.1" and p.disclosure_version == "2026.1"
        pricing.check_shares(pricing.product_shares(p))
    for code in INDEX_PRODUCTS:
        perils = {t["peril"] for t in products[code].details["index"]["triggers"]}
        assert perils == {"wind", "heavy_rain", "low_temperature"}
    liability = products[LIABILITY]
    assert liability.kind == "liability" and liability.unit == "person"
    assert liability.details["limits"]["death_disability_per_person_fen"] == 80_000_000
    assert liability.details["limits"]["medical_per_person_fen"] == 8_000_000
    assert len(industries) == 11 and {"coal_mining", "construction", "retail_other"} <= {
        r.industry_code for r in industries
    }
    assert len(questions) == 10 and questions[0].code == "safety_officer"
    assert {q.code: q.risky_answer for q in questions}["hazardous_chemicals"] == "yes"


async def test_reload_of_the_same_version_writes_nothing(db: Database) -> None:
    async with db.session() as session:
        assert await service.load_catalogue(session=session) == 0


async def test_version_bump_reloads_and_keeps_staff_choices(db: Database, tmp_path: Path) -> None:
    async with db.session() as session:
        rice = await service.get_product(session, "rice")
        rice.active = False  # switched off by staff: stays off
        session.add(rice)
        session.add(make_product(code="staff_special", catalogue_version=""))  # not in the seed: untouched
        await session.commit()
    raw = json.loads(service.DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    raw["version"] = "2026.2"
    raw["products"][0]["rate"] = "0.055"
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    async with db.session() as session:
        written = await service.load_catalogue(session=session, path=path)
    assert written == len(AGRICULTURAL) + 1 + 11 + 10
    async with db.session() as session:
        assert await service.load_catalogue(session=session, path=path) == 0
        rice = await service.get_product(session, "rice")
        assert (rice.rate, rice.catalogue_version, rice.active) == ("0.055", "2026.2", False)
        assert (await service.get_product(session, "staff_special")).catalogue_version == ""
        versions = (await session.exec(select(LiabilityRate.catalogue_version))).all()
        assert set(versions) == {"2026.2"}
        assert len((await session.exec(select(RiskQuestion))).all()) == 10


def test_catalogue_refuses_floats_and_broken_shares(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text(service.DEFAULT_CATALOGUE.read_text(encoding="utf-8").replace('"0.06"', "0.06", 1))
    with pytest.raises(service.CatalogueError, match="strings"):
        service.read_catalogue(path)
    raw = json.loads(service.DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    raw["products"][0]["shares"]["farmer"] = "0.21"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(service.CatalogueError, match="add up to 1"):
        service.read_catalogue(path)


# --- agricultural premiums -------------------------------------------------------------------------------


def test_rice_quote_breakdown() -> None:
    quote = pricing.quote_agricultural(make_product(), Decimal("10"))
    assert quote.sum_insured_fen == 1_000_000 and quote.premium_fen == 60_000
    assert quote.shares_fen() == {"central": 24_000, "provincial": 15_000, "county": 9_000, "farmer": 12_000}
    assert quote.premium() == {"total": 60_000, **quote.shares_fen()} and quote.total_fen == 60_000


async def test_shares_add_up_exactly_for_awkward_quantities(db: Database) -> None:
    async with db.session() as session:
        products = await service.list_products(session, kind="agricultural")
    awkward = ["0.01", "0.07", "1", "3.33", "7", "13", "99.99", "100", "123.457", "333.33", "1001"]
    for p in products:
        for text in awkward:
            quantity = Decimal(text)
            if p.unit in pricing.WHOLE_UNITS and quantity != quantity.to_integral_value():
                with pytest.raises(pricing.PricingError):
                    pricing.quote_agricultural(p, quantity)
                continue
            quote = pricing.quote_agricultural(p, quantity)
            shares = quote.shares_fen()
            assert sum(shares.values()) == quote.premium_fen, (p.code, text)
            assert all(value >= 0 for value in shares.values()), (p.code, text)
            assert abs(quote.farmer_fen - quote.premium_fen * Decimal(p.share_farmer)) <= Decimal("1.5")


def test_rounding_remainder_goes_to_the_farmer() -> None:
    thirds = make_product(
        share_central="0.3333", share_provincial="0.3333", share_county="0.3333", share_farmer="0.0001"
    )
    quote = pricing.quote_agricultural(thirds, Decimal("3.33"))  # premium 19980 fen
    assert quote.premium_fen == 19_980
    assert (quote.central_fen, quote.provincial_fen, quote.county_fen) == (6_659, 6_659, 6_659)
    assert quote.farmer_fen == 3  # 1.998 fen by the share, plus the remainder


def test_farmer_never_negative_nor_charged_when_government_pays_all() -> None:
    # Premium 5 fen: the government shares round up to 3 + 2 + 1 = 6; the farmer would owe -1.
    tiny = make_product(
        sum_insured_per_unit_fen=100,
        rate="0.05",
        share_central="0.5",
        share_provincial="0.3",
        share_county="0.1",
        share_farmer="0.1",
    )
    quote = pricing.quote_agricultural(tiny, Decimal("1"))
    assert quote.premium_fen == 5 and quote.farmer_fen == 0 and sum(quote.shares_fen().values()) == 5
    free = make_product(share_central="0.5", share_provincial="0.5", share_county="0", share_farmer="0")
    for quantity in ("0.01", "0.03", "3.33", "7.77"):
        quote = pricing.quote_agricultural(free, Decimal(quantity))
        assert quote.farmer_fen == 0 and sum(quote.shares_fen().values()) == quote.premium_fen


def test_bad_quantities_are_refused() -> None:
    sows = make_product(category="livestock", unit="head")
    for bad in ("0", "-1", "2.5", "NaN", "Infinity"):
        with pytest.raises(pricing.PricingError):
            pricing.quote_agricultural(sows, Decimal(bad))
    with pytest.raises(pricing.PricingError):
        pricing.quote_agricultural(make_product(), 3.3)  # type: ignore[arg-type]


def test_money_formatting() -> None:
    assert pricing.fen_to_yuan(123_456) == "1234.56"
    assert pricing.fen_to_yuan(5) == "0.05" and pricing.fen_to_yuan(-5) == "-0.05"
    assert pricing.yuan_to_fen("0.005") == 1 and pricing.yuan_to_fen("800000") == 80_000_000
    assert pricing.round_fen(Decimal("2.5")) == 3 and pricing.round_fen(Decimal("-2.5")) == -3


# --- liability cover -------------------------------------------------------------------------------------


async def test_r_lia_1_rate_only_from_table(db: Database, client: httpx.AsyncClient, service_headers) -> None:
    async with db.session() as session:
        with pytest.raises(service.UnknownIndustry):
            await service.industry_rate(session, "made_up_industry")
        construction = await service.industry_rate(session, "construction")
        liability = await service.get_product(session, LIABILITY)
    quote = pricing.quote_liability(liability, construction, 10, None)
    assert quote.base_rate == Decimal(construction.base_rate) and quote.factor == 1
    url = f"/api/products/{LIABILITY}/quote"
    unknown = {"employees": 10, "industry_code": "made_up_industry", "accidents_previous_year": 0}
    assert (await client.post(url, json=unknown, headers=service_headers)).status_code == 422
    own_rate = {"employees": 10, "industry_code": "construction", "rate": "0.0001"}
    assert (await client.post(url, json=own_rate, headers=service_headers)).status_code == 422
    async with db.session() as session:
        with pytest.raises(service.InvalidChange):
            await service.update_product(session, None, LIABILITY, {"rate": "0.001"})  # type: ignore[arg-type]
        with pytest.raises(service.InvalidChange):
            limit = {"sum_insured_per_unit_fen": 1}
            await service.update_product(session, None, LIABILITY, limit)  # type: ignore[arg-type]


async def test_r_lia_2_accident_free_year_lowers_rate(db: Database) -> None:
    async with db.session() as session:
        construction = await service.industry_rate(session, "construction")
        liability = await service.get_product(session, LIABILITY)
    quotes = {
        accidents: pricing.quote_liability(liability, construction, 10, accidents)
        for accidents in (None, 0, 1, 2, 5)
    }
    assert [quotes[a].factor_reason for a in (None, 0, 1, 2, 5)] == [
        "no_history",
        "accident_free",
        "one_accident",
        "several_accidents",
        "several_accidents",
    ]
    # 800,000 yuan limit x 0.0015 = 1,200 yuan per person; x 0.9 after an accident-free year.
    assert quotes[None].premium_per_person_fen == 120_000
    assert quotes[0].premium_per_person_fen == 108_000 and quotes[0].premium_fen == 1_080_000
    assert quotes[0].premium_fen < quotes[None].premium_fen < quotes[1].premium_fen < quotes[2].premium_fen
    assert quotes[5].premium_fen == quotes[2].premium_fen
    assert (quotes[0].total_fen, quotes[0].per_person_fen) == (1_080_000, 108_000)
    assert (quotes[0].limit_death_fen, quotes[0].limit_medical_fen) == (80_000_000, 8_000_000)
    with pytest.raises(pricing.PricingError):
        pricing.check_floating_factors(
            {"accident_free": Decimal(1), "one_accident": Decimal(1), "several_accidents": Decimal(1),
             "no_history": Decimal(1)}
        )  # fmt: skip
    with pytest.raises(pricing.PricingError):
        pricing.quote_liability(liability, construction, 0, 0)
    with pytest.raises(pricing.PricingError):
        pricing.quote_liability(liability, construction, 3, -1)


# --- enrollment rules ------------------------------------------------------------------------------------


async def test_r_enr_7_crop_verification_from_100_mu_inclusive(db: Database) -> None:
    rice = await product(db, "rice")
    lychee = await product(db, "lychee")
    assert pricing.verification_reasons(rice, Decimal("99.99"), "farmer") == []
    assert pricing.verification_reasons(rice, Decimal("100"), "farmer") == ["crop_100_mu_or_more"]
    assert pricing.verification_reasons(rice, Decimal("250.5"), "farmer") == ["crop_100_mu_or_more"]
    # Fruit orchards are crop insurance too (种植业品种保险).
    assert pricing.verification_reasons(lychee, Decimal("100"), "farmer") == ["crop_100_mu_or_more"]
    assert pricing.required_evidence(rice) == ["land_rights", "photos"]
    pigs = await product(db, "pig")
    assert pricing.verification_reasons(pigs, Decimal("500"), "farmer") == []
    assert pricing.required_evidence(pigs) == ["head_count_epidemic_ear_tags", "photos"]


async def test_r_enr_7_facility_and_organisation_always_verified(db: Database) -> None:
    greenhouse = await product(db, "greenhouse")
    rice = await product(db, "rice")
    assert pricing.verification_reasons(greenhouse, Decimal("1"), "farmer") == ["facility"]
    assert pricing.required_evidence(greenhouse) == ["photos"]
    for insured_type in ("large_grower", "family_farm", "enterprise", "organisation"):
        assert pricing.verification_reasons(rice, Decimal("1"), insured_type) == ["organisation"]
    assert pricing.verification_reasons(greenhouse, Decimal("1"), "family_farm") == [
        "organisation",
        "facility",
    ]
    assert pricing.verification_reasons(rice, Decimal("100"), "enterprise") == [
        "organisation",
        "crop_100_mu_or_more",
    ]


async def test_r_enr_6_late_entry_only_main_crops(db: Database) -> None:
    async with db.session() as session:
        products = await service.list_products(session, active_only=False)
    assert {p.code for p in products if pricing.late_entry_allowed(p)} == MAIN_CROPS
    rice = next(p for p in products if p.code == "rice")
    lychee = next(p for p in products if p.code == "lychee")
    assert pricing.LATE_ENTRY_MAX_DAYS == 30
    assert pricing.late_entry_refusal(rice, 30, "flooded office") is None
    assert pricing.late_entry_refusal(rice, 31, "flooded office") == "too_late"
    assert pricing.late_entry_refusal(rice, 3, "  ") == "reason_required"
    assert pricing.late_entry_refusal(lychee, 1, "any reason") == "not_main_crop"


async def test_r_clm_2_index_payout_levels(db: Database) -> None:
    lychee = await product(db, "lychee")
    assert pricing.index_payout(lychee, "wind", Decimal("9")) is None
    wind = pricing.index_payout(lychee, "wind", Decimal("11"))
    assert wind is not None and (wind.level, wind.payout_share) == (2, Decimal("0.4"))
    assert pricing.index_payout(lychee, "heavy_rain", Decimal("249.9")) is None
    rain = pricing.index_payout(lychee, "heavy_rain", Decimal("250"))
    assert rain is not None and rain.level == 1
    banana = await product(db, "banana")
    cold = pricing.index_payout(banana, "low_temperature", Decimal("2"))
    assert cold is not None and cold.level == 1
    assert pricing.index_payout(banana, "low_temperature", Decimal("2.1")) is None


# --- API -------------------------------------------------------------------------------------------------


async def test_api_read_with_service_token(client: httpx.AsyncClient, service_headers) -> None:
    listing = await client.get("/api/products", headers=service_headers)
    assert listing.status_code == 200, listing.text
    codes = [p["code"] for p in listing.json()]
    assert set(codes) == AGRICULTURAL | {LIABILITY} and codes[0] == "corn" and codes[-1] == LIABILITY
    assert all(p["sample"] for p in listing.json())
    agri = await client.get("/api/products", params={"kind": "agricultural"}, headers=service_headers)
    assert LIABILITY not in {p["code"] for p in agri.json()}
    rice = (await client.get("/api/products/rice", headers=service_headers)).json()
    assert rice["sum_insured_per_unit"] == {"fen": 100_000, "yuan": "1000.00"}
    assert rice["late_entry_allowed"] and rice["shares"]["farmer"] == "0.2"
    assert (await client.get("/api/products/nothing", headers=service_headers)).status_code == 404
    industries = await client.get("/api/products/liability/industries", headers=service_headers)
    assert industries.status_code == 200 and industries.json()[0]["industry_code"] == "coal_mining"
    questions = await client.get("/api/products/liability/risk-questions", headers=service_headers)
    assert [q["position"] for q in questions.json()] == list(range(1, 11))
    assert (await client.get("/api/products")).status_code == 401


async def test_api_quotes(client: httpx.AsyncClient, service_headers) -> None:
    agri = await client.post("/api/products/rice/quote", json={"quantity": "3.33"}, headers=service_headers)
    assert agri.status_code == 200, agri.text
    body = agri.json()
    assert body["kind"] == "agricultural" and body["sample"] is True
    assert body["premium"] == {"fen": 19_980, "yuan": "199.80"}
    assert sum(share["fen"] for share in body["shares"].values()) == body["premium"]["fen"]
    assert body["payable"] == body["shares"]["farmer"]
    request = {"employees": 7, "industry_code": "construction", "accidents_previous_year": 0}
    liability = await client.post(f"/api/products/{LIABILITY}/quote", json=request, headers=service_headers)
    assert liability.status_code == 200, liability.text
    body = liability.json()
    assert (body["floating_factor"], body["factor_reason"]) == ("0.9", "accident_free")
    assert body["premium_per_person"] == {"fen": 108_000, "yuan": "1080.00"}
    assert body["premium"]["fen"] == 7 * 108_000
    assert body["limits"]["death_disability_per_person"]["yuan"] == "800000.00"
    wrong = await client.post(
        f"/api/products/{LIABILITY}/quote", json={"quantity": "3"}, headers=service_headers
    )
    assert wrong.status_code == 422
    heads = await client.post("/api/products/sow/quote", json={"quantity": "2.5"}, headers=service_headers)
    assert heads.status_code == 422


async def test_staff_patch_is_audited(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    underwriter = await staff_headers(client, admin_headers, "underwriter")
    changes = {"rate": "0.065", "share_county": "0.1", "share_farmer": "0.25", "sample": False}
    response = await client.patch("/api/products/rice", json=changes, headers=underwriter)
    assert response.status_code == 200, response.text
    assert response.json()["rate"] == "0.065" and response.json()["sample"] is False
    async with db.session() as session:
        entries = (await session.exec(select(AuditLog).where(AuditLog.action == "products.update"))).all()
    assert len(entries) == 1 and entries[0].actor == "underwriter1" and entries[0].target_id == "rice"
    assert entries[0].detail["before"]["rate"] == "0.06" and entries[0].detail["after"]["rate"] == "0.065"
    broken = await client.patch("/api/products/rice", json={"share_farmer": "0.3"}, headers=underwriter)
    assert broken.status_code == 422  # shares would add up to 1.05
    assert (
        await client.patch("/api/products/rice", json={"rate": "1.5"}, headers=underwriter)
    ).status_code == 422
    unknown = await client.patch("/api/products/rice", json={"main_crop": False}, headers=underwriter)
    assert unknown.status_code == 422
    put = await client.put(
        "/api/products/liability/industries/agri_processing",
        json={"name_zh": "农产品加工", "name_en": "Agricultural processing", "base_rate": "0.0007"},
        headers=admin_headers,
    )
    assert put.status_code == 200 and put.json()["base_rate"] == "0.0007"
    async with db.session() as session:
        rate_entries = (
            await session.exec(
                select(AuditLog).where(AuditLog.action == "products.industry_rate").order_by(col(AuditLog.id))
            )
        ).all()
        assert len(rate_entries) == 1 and rate_entries[0].detail["before"] is None
        assert (await service.industry_rate(session, "agri_processing")).base_rate == "0.0007"


async def test_viewer_cannot_edit(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    viewer = await staff_headers(client, admin_headers, "viewer")
    assert (await client.get("/api/products/rice", headers=viewer)).status_code == 200
    patch = await client.patch("/api/products/rice", json={"rate": "0.01"}, headers=viewer)
    assert patch.status_code == 403
    put = await client.put(
        "/api/products/liability/industries/construction",
        json={"name_zh": "建筑施工", "name_en": "Construction", "base_rate": "0.0001"},
        headers=viewer,
    )
    assert put.status_code == 403


async def test_service_token_cannot_edit(client: httpx.AsyncClient, service_headers) -> None:
    response = await client.patch("/api/products/rice", json={"rate": "0.01"}, headers=service_headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("declared", "recorded", "expected"),
    [(0, 0, 0), (None, 0, None), (0, 1, 1), (1, 3, 3), (4, 1, 4), (None, 2, 2)],
)
def test_r_lia_2_the_worse_of_the_answer_and_the_insurers_record_applies(
    declared: int | None, recorded: int, expected: int | None
) -> None:
    assert pricing.worse_accident_count(declared, recorded) == expected

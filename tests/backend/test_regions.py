"""Administrative divisions (R-ENR-12): the statistical list, lookups through the API, village imports."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlmodel import col, func, select

from backend.db import Database
from backend.regions import service
from backend.regions.models import Region, RegionLevel
from backend.staff.models import AuditLog
from tests.conftest import login

DATA_DIR = service.DEFAULT_DATA_DIR
DONGGUAN = "441900000000"
DONGGUAN_DONGCHENG = "441900003000"  # 东城街道, a township hanging straight under 东莞市
DONGGUAN_NANCHENG = "441900004000"  # 南城街道
BEIJING_DONGHUAMEN = "110101001000"  # 东华门街道
ZHONGSHAN_SHIQI = "442000001000"  # 石岐街道


# --- helpers ---------------------------------------------------------------------------------------------


async def count_by_level(db: Database) -> dict[int, int]:
    async with db.session() as session:
        query = select(Region.level, func.count()).group_by(col(Region.level))
        return {level: count for level, count in (await session.exec(query)).all()}


def codes_of(regions: list[dict[str, Any]]) -> list[str]:
    return [region["code"] for region in regions]


async def upload(
    api: httpx.AsyncClient, headers: dict[str, str], content: bytes, county_code: str | None = None
) -> httpx.Response:
    data = {"county_code": county_code} if county_code is not None else {}
    files = {"file": ("villages.csv", content, "text/csv")}
    return await api.post("/api/regions/villages/import", headers=headers, files=files, data=data)


async def audit_rows(db: Database) -> list[AuditLog]:
    async with db.session() as session:
        query = select(AuditLog).where(AuditLog.action == "regions.import_villages")
        query = query.order_by(col(AuditLog.id))
        return list((await session.exec(query)).all())


async def scoped_agent_headers(
    api: httpx.AsyncClient, admin_headers: dict[str, str], region_codes: list[str], role: str = "agent"
) -> dict[str, str]:
    username = f"{role}-{'-'.join(region_codes)}"
    body = {"username": username, "password": "agent-password-1", "role": role, "region_codes": region_codes}
    response = await api.post("/api/staff/users", headers=admin_headers, json=body)
    assert response.status_code == 201, response.text
    return await login(api, username, "agent-password-1")


def csv_bytes(lines: list[str], *, newline: str = "\r\n", bom: bool = True) -> bytes:
    return (("\ufeff" if bom else "") + newline.join(lines) + newline).encode("utf-8")


# --- loading the statistical list ------------------------------------------------------------------------


async def test_r_enr_12_divisions_loaded_with_canonical_codes(db: Database) -> None:
    # The files hold 31/342/2978/41352 rows; four of them are fillers that pad to their parent's own
    # 12-digit code (东莞/中山/儋州 county rows, 金门县's township row) and fold into that parent.
    assert await count_by_level(db) == {1: 31, 2: 342, 3: 2975, 4: 41351}
    async with db.session() as session:
        regions = (await session.exec(select(Region))).all()
    assert all(len(r.code) == 12 and r.code.isdigit() for r in regions)
    by_code = {r.code: r for r in regions}
    orphans = [r.code for r in regions if r.parent_code is not None and r.parent_code not in by_code]
    assert orphans == []
    assert all(by_code[r.parent_code].level < r.level for r in regions if r.parent_code)
    assert by_code[BEIJING_DONGHUAMEN].parent_code == "110101000000"
    assert by_code["110000000000"].parent_code is None


async def test_r_enr_12_every_code_of_the_files_is_in_the_list(db: Database) -> None:
    short_codes: set[str] = set()
    for name in ("provinces.csv", "cities.csv", "areas.csv", "streets.csv"):
        with (DATA_DIR / name).open(encoding="utf-8-sig", newline="") as handle:
            short_codes.update(row["code"] for row in csv.DictReader(handle))
    assert len(short_codes) == 31 + 342 + 2978 + 41352
    async with db.session() as session:
        stored = set((await session.exec(select(Region.code))).all())
    assert {code.ljust(12, "0") for code in short_codes} == stored


async def test_r_enr_12_quirks_municipality_filler_and_province_administered(db: Database) -> None:
    async with db.session() as session:
        beijing = await service.path(session=session, code="110101")
        dongguan = await service.path(session=session, code="441900003")
        jiyuan = await service.path(session=session, code="419001")
        kinmen = await service.get(session=session, code="350527")
        zone = await service.get(session=session, code="130171")
        dongguan_children = await service.children(session=session, code=DONGGUAN)
    assert [r.name for r in beijing] == ["北京市", "市辖区", "东城区"]
    assert [r.code for r in beijing] == ["110000000000", "110100000000", "110101000000"]
    assert [(r.code, r.level) for r in dongguan] == [
        ("440000000000", 1),
        (DONGGUAN, 2),
        (DONGGUAN_DONGCHENG, 4),
    ]
    assert dongguan[1].name == "东莞市"
    assert {r.level for r in dongguan_children} == {RegionLevel.TOWNSHIP}
    assert [r.name for r in jiyuan] == ["河南省", "省直辖县级行政区划", "济源市"]
    assert (kinmen.name, kinmen.level, kinmen.parent_code) == ("金门县", 3, "350500000000")
    assert (zone.level, zone.parent_code) == (3, "130100000000")


async def test_r_enr_12_load_divisions_is_idempotent(db: Database) -> None:
    before = await count_by_level(db)
    async with db.session() as session:
        assert await service.load_divisions(session=session) == 0
    assert await count_by_level(db) == before


async def test_r_enr_12_load_divisions_set_based_into_empty_table(db: Database) -> None:
    # Speed belongs in benchmarks, not in a timed test; what a test can hold is that the load is
    # set-based: one multi-row statement per batch, never a statement per division.
    async with db.session() as session:
        await session.exec(Region.__table__.delete())  # type: ignore[attr-defined]
        await session.commit()
    inserts: list[str] = []

    def count_inserts(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count_inserts)
    try:
        async with db.session() as session:
            loaded = await service.load_divisions(session=session)
    finally:
        event.remove(engine, "before_cursor_execute", count_inserts)
    assert loaded == 31 + 342 + 2975 + 41351
    assert len(inserts) <= -(-loaded // service.INSERT_BATCH_SIZE)
    assert await count_by_level(db) == {1: 31, 2: 342, 3: 2975, 4: 41351}


async def test_r_enr_12_load_divisions_refuses_a_township_without_county(
    db: Database, tmp_path: Path
) -> None:
    (tmp_path / "provinces.csv").write_text('code,name\n11,"北京市"\n', encoding="utf-8")
    (tmp_path / "cities.csv").write_text('code,name,provinceCode\n1101,"市辖区",11\n', encoding="utf-8")
    (tmp_path / "areas.csv").write_text('code,name,cityCode,provinceCode\n110101,"东城区",1101,11\n', "utf-8")
    (tmp_path / "streets.csv").write_text(
        'code,name,areaCode,provinceCode,cityCode\n110102001,"西长安街街道",110102,11,1101\n', "utf-8"
    )
    async with db.session() as session:
        await session.exec(Region.__table__.delete())  # type: ignore[attr-defined]
        await session.commit()
    async with db.session() as session:
        with pytest.raises(service.DivisionDataError, match="without a parent"):
            await service.load_divisions(session=session, data_dir=tmp_path)
    assert await count_by_level(db) == {}


# --- lookups through the API -----------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["service", "admin"])
async def test_r_enr_12_children_for_bot_and_staff(
    api: httpx.AsyncClient, caller: str, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = service_headers if caller == "service" else admin_headers
    provinces = await api.get("/api/regions/root/children", headers=headers)
    assert provinces.status_code == 200
    assert len(provinces.json()) == 31
    assert provinces.json()[0] == {"code": "110000000000", "name": "北京市", "level": 1, "parent_code": None}
    townships = await api.get("/api/regions/4419/children", headers=headers)
    assert townships.status_code == 200
    codes = codes_of(townships.json())
    assert codes == sorted(codes)
    assert DONGGUAN_DONGCHENG in codes
    assert all(t["parent_code"] == DONGGUAN and t["level"] == 4 for t in townships.json())


@pytest.mark.parametrize("caller", ["service", "admin"])
async def test_r_enr_12_get_and_path(
    api: httpx.AsyncClient, caller: str, service_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = service_headers if caller == "service" else admin_headers
    one = await api.get("/api/regions/110101", headers=headers)
    assert one.json() == {"code": "110101000000", "name": "东城区", "level": 3, "parent_code": "110100000000"}
    trail = await api.get(f"/api/regions/{DONGGUAN_DONGCHENG}/path", headers=headers)
    assert trail.status_code == 200
    assert [(r["code"], r["name"]) for r in trail.json()] == [
        ("440000000000", "广东省"),
        (DONGGUAN, "东莞市"),
        (DONGGUAN_DONGCHENG, "东城街道"),
    ]
    province = await api.get("/api/regions/44/path", headers=headers)
    assert codes_of(province.json()) == ["440000000000"]


async def test_r_enr_12_search_prefix_first_and_filters(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    found = await api.get("/api/regions/search", params={"q": "东莞"}, headers=service_headers)
    assert found.status_code == 200
    assert found.json()[0]["code"] == DONGGUAN
    exact = await api.get("/api/regions/search", params={"q": "东城区"}, headers=service_headers)
    assert [r["name"] for r in exact.json()][:1] == ["东城区"]
    contains = await api.get(
        "/api/regions/search", params={"q": "城街道", "limit": 50}, headers=service_headers
    )
    names = [r["name"] for r in contains.json()]
    assert len(names) == 50 and all("城街道" in n for n in names)
    under = await api.get(
        "/api/regions/search", params={"q": "东城", "under": "11", "level": 3}, headers=service_headers
    )
    assert codes_of(under.json()) == ["110101000000"]
    in_dongguan = await api.get(
        "/api/regions/search", params={"q": "街道", "under": DONGGUAN, "limit": 100}, headers=service_headers
    )
    assert in_dongguan.json() and all(r["code"].startswith("4419") for r in in_dongguan.json())
    wildcard = await api.get("/api/regions/search", params={"q": "%"}, headers=service_headers)
    assert wildcard.json() == []


async def test_r_enr_12_search_exact_then_prefix_then_substring(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    params: dict[str, str | int] = {"q": "城区", "limit": 100}
    response = await api.get("/api/regions/search", params=params, headers=service_headers)
    names = [r["name"] for r in response.json()]
    ranks = [0 if n == "城区" else 1 if n.startswith("城区") else 2 for n in names]
    assert ranks == sorted(ranks)
    assert [ranks.count(rank) for rank in (0, 1, 2)] == [8, 8, 83]


async def test_r_enr_12_regions_need_a_token(api: httpx.AsyncClient) -> None:
    for url in (
        "/api/regions/root/children",
        "/api/regions/11",
        "/api/regions/11/path",
        "/api/regions/search?q=北京",
    ):
        assert (await api.get(url)).status_code == 401, url
    bad = await api.get("/api/regions/11", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


async def test_r_enr_12_unknown_and_malformed_codes(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    unknown = await api.get("/api/regions/990000000000", headers=service_headers)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "region 990000000000 not found"
    assert (await api.get("/api/regions/99/children", headers=service_headers)).status_code == 404
    assert (await api.get("/api/regions/99/path", headers=service_headers)).status_code == 404
    for malformed in ("12345", "abc", "1101010010001"):
        response = await api.get(f"/api/regions/{malformed}", headers=service_headers)
        assert response.status_code == 422, malformed
        assert "digits" in response.json()["detail"]
    assert (await api.get("/api/regions/12x/children", headers=service_headers)).status_code == 422
    search = await api.get("/api/regions/search", params={"q": "x", "under": "1"}, headers=service_headers)
    assert search.status_code == 422
    empty = await api.get("/api/regions/search", params={"q": ""}, headers=service_headers)
    assert empty.status_code == 422
    level = await api.get("/api/regions/search", params={"q": "东", "level": 6}, headers=service_headers)
    assert level.status_code == 422


# --- village import ----------------------------------------------------------------------------------------


async def test_r_enr_12_village_import_rejects_each_bad_row_with_its_reason(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    async with db.session() as session:
        session.add(Region(code="441900003099", name="老村", level=5, parent_code=DONGGUAN_DONGCHENG))
        await session.commit()
    long_name = "村" * 101
    lines = [
        "code,name,township_code",
        "441900003001,新村,441900003",  # 2 accepted, short township code
        "441900003002, 二村 ,",  # 3 accepted, name trimmed, township_code optional
        "44190000300,短码村,",  # 4 bad_code (11 digits)
        "441900003003,,",  # 5 empty_name
        f"441900003004,{long_name},",  # 6 name_too_long
        "110101001001,东华门村,",  # 7 outside_county
        "441900003005,错镇村,441900004",  # 8 prefix_mismatch
        "441900999001,无镇村,",  # 9 unknown_township
        "441900003001,重复村,",  # 10 duplicate_in_file
        "441900003099,老村,441900003000",  # 11 already_exists (12-digit township code accepted)
        "441900004000,镇本身,",  # 12 bad_code: a township's own code, not a village
        "",
        "441900004001,南城一村,441900004000",  # 14 accepted, after a blank line
    ]
    response = await upload(api, admin_headers, csv_bytes(lines), county_code="441900")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 3,
        "rejected": [
            {"line": 4, "code": "44190000300", "name": "短码村", "reason": "bad_code"},
            {"line": 5, "code": "441900003003", "name": "", "reason": "empty_name"},
            {"line": 6, "code": "441900003004", "name": long_name, "reason": "name_too_long"},
            {"line": 7, "code": "110101001001", "name": "东华门村", "reason": "outside_county"},
            {"line": 8, "code": "441900003005", "name": "错镇村", "reason": "prefix_mismatch"},
            {"line": 9, "code": "441900999001", "name": "无镇村", "reason": "unknown_township"},
            {"line": 10, "code": "441900003001", "name": "重复村", "reason": "duplicate_in_file"},
            {"line": 11, "code": "441900003099", "name": "老村", "reason": "already_exists"},
            {"line": 12, "code": "441900004000", "name": "镇本身", "reason": "bad_code"},
        ],
    }
    villages = await api.get(f"/api/regions/{DONGGUAN_DONGCHENG}/children", headers=admin_headers)
    assert [(v["code"], v["name"], v["level"]) for v in villages.json()] == [
        ("441900003001", "新村", 5),
        ("441900003002", "二村", 5),
        ("441900003099", "老村", 5),
    ]
    trail = await api.get("/api/regions/441900004001/path", headers=admin_headers)
    assert codes_of(trail.json()) == ["440000000000", DONGGUAN, DONGGUAN_NANCHENG, "441900004001"]
    [entry] = await audit_rows(db)
    assert (entry.actor, entry.target_id) == ("admin", DONGGUAN)
    assert entry.detail["accepted"] == 3 and entry.detail["rejected"] == 9
    assert entry.detail["reasons"]["bad_code"] == 2


async def test_r_enr_12_village_import_rejects_outside_staff_scope(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    agent = await scoped_agent_headers(api, admin_headers, [DONGGUAN])
    lines = ["code,name", "441900003001,莞村,", "110101001001,京村", "442000001001,山村"]
    response = await upload(api, agent, csv_bytes(lines, newline="\n", bom=False))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 1,
        "rejected": [
            {"line": 3, "code": "110101001001", "name": "京村", "reason": "outside_scope"},
            {"line": 4, "code": "442000001001", "name": "山村", "reason": "outside_scope"},
        ],
    }
    [entry] = await audit_rows(db)
    assert entry.actor == f"agent-{DONGGUAN}"
    assert entry.detail == {"accepted": 1, "rejected": 2, "reasons": {"outside_scope": 2}}
    # The scope check comes before existence checks: nothing is revealed about other regions.
    again = await upload(api, agent, csv_bytes(["code,name", "110101999001,无"]))
    assert again.json()["rejected"][0]["reason"] == "outside_scope"


async def test_r_enr_12_village_import_whole_file_errors(
    api: httpx.AsyncClient, admin_headers: dict[str, str], db: Database
) -> None:
    wrong_header = await upload(api, admin_headers, csv_bytes(["village,name", "441900003001,新村"]))
    assert wrong_header.status_code == 400
    assert "header must be code,name" in wrong_header.json()["detail"]
    assert (await upload(api, admin_headers, b"")).status_code == 400
    not_utf8 = await upload(api, admin_headers, "code,name\r\n441900003001,新村\r\n".encode("gbk"))
    assert not_utf8.status_code == 400
    not_county = await upload(api, admin_headers, csv_bytes(["code,name"]), county_code="440300000000")
    assert not_county.status_code == 400
    assert not_county.json()["detail"] == "county_code 440300000000 is not a county"
    malformed = await upload(api, admin_headers, csv_bytes(["code,name"]), county_code="44x")
    assert malformed.status_code == 400
    assert await audit_rows(db) == []


async def test_r_enr_12_village_import_needs_an_importing_role(
    api: httpx.AsyncClient, admin_headers: dict[str, str], service_headers: dict[str, str]
) -> None:
    content = csv_bytes(["code,name", "441900003001,新村"])
    assert (await upload(api, {}, content)).status_code == 401
    assert (await upload(api, service_headers, content)).status_code == 401
    viewer = await scoped_agent_headers(api, admin_headers, [DONGGUAN], role="viewer")
    assert (await upload(api, viewer, content)).status_code == 403
    underwriter = await scoped_agent_headers(api, admin_headers, [DONGGUAN], role="underwriter")
    assert (await upload(api, underwriter, content)).json() == {"accepted": 1, "rejected": []}


async def test_r_enr_12_village_import_from_file_for_the_cli(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "villages.csv"
    path.write_bytes(csv_bytes(["code,name", "442000001001,石岐一村", "441900003001,莞村"], newline="\n"))
    report = await service.import_villages_file(db=db, path=path, county_code="442000")
    assert report.accepted == 1
    assert [(r.line, r.reason) for r in report.rejected] == [(3, "outside_county")]
    async with db.session() as session:
        village = await service.get(session=session, code="442000001001")
    assert (village.level, village.parent_code) == (5, ZHONGSHAN_SHIQI)
    [entry] = await audit_rows(db)
    assert (entry.actor, entry.actor_id, entry.target_id) == ("system", None, "442000000000")


async def test_r_enr_12_search_names_each_place_with_its_parents(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    response = await api.get("/api/regions/search", params={"q": "朝阳区"}, headers=service_headers)
    found = {r["code"]: r["full_name"] for r in response.json() if r["name"] == "朝阳区"}
    # Two 朝阳区, told apart by their parents; the list's "市辖区" placeholder is left out.
    assert found == {"110105000000": "北京市 朝阳区", "220104000000": "吉林省 长春市 朝阳区"}
    towns = await api.get("/api/regions/search", params={"q": "朝阳镇", "limit": 50}, headers=service_headers)
    full_names = [r["full_name"] for r in towns.json() if r["name"] == "朝阳镇"]
    assert len(full_names) > 4 and len(set(full_names)) == len(full_names)
    assert all(len(name.split()) >= 3 for name in full_names)  # at least province, county, township


async def test_r_enr_12_search_reaches_imported_villages_with_their_path(
    api: httpx.AsyncClient, service_headers: dict[str, str], db: Database
) -> None:
    async with db.session() as session:
        session.add(Region(code="441900003099", name="大塘村", level=5, parent_code=DONGGUAN_DONGCHENG))
        await session.commit()
    response = await api.get("/api/regions/search", params={"q": "大塘村"}, headers=service_headers)
    village = next(r for r in response.json() if r["code"] == "441900003099")
    assert village["level"] == 5
    assert village["path"] == ["广东省", "东莞市", "东城街道"]
    assert village["full_name"] == "广东省 东莞市 东城街道 大塘村"

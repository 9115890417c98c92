"""Helpers for collective enrollment tests: household lists as CSV or XLSX, and their upload."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from tests.enroll_helpers import DONGGUAN_TOWNSHIP, resident_id

AREA = DONGGUAN_TOWNSHIP  # 东莞市 东城街道: the list's area and the households' place
HEADERS_ZH = [
    "姓名",
    "身份证号码",
    "手机号码",
    "保险标的",
    "数量",
    "村（代码或名称）",
    "地块或养殖场所名称",
    "耳标号或批次号",
    "开户银行",
    "银行账号",
]


def household_id(n: int) -> str:
    """A valid resident ID number per household (北京朝阳 110105, born 1960 + n days)."""
    from datetime import date, timedelta

    born = date(1960, 1, 1) + timedelta(days=n % 15000)
    return resident_id(f"110105{born:%Y%m%d}{n // 15000 % 999 + 1:03d}")


def household(n: int, **changes: str) -> dict[str, str]:
    row = {
        "name": f"王{'一二三四五六七八九十'[n % 10]}{'甲乙丙丁戊'[n // 10 % 5]}",
        "id_number": household_id(n),
        "phone": f"139{n:08d}",
        "subject": "水稻",
        "quantity": "10",
        "village": AREA,
        "place_name": "东洼地",
        "ear_tags": "",
        "bank_name": "农村信用社",
        "bank_account": f"62284800{n:011d}",
    }
    row.update(changes)
    return row


def list_csv(rows: list[dict[str, str]], encoding: str = "utf-8", headers: list[str] = HEADERS_ZH) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(list(row.values()))
    return out.getvalue().encode(encoding)


def list_xlsx(rows: list[dict[str, Any]], headers: list[str] = HEADERS_ZH) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(headers)
    for row in rows:
        sheet.append(list(row.values()))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def upload(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    *,
    product: str = "rice",
    area: str = AREA,
    path: str = "/api/collective/lists",
    filename: str = "list.csv",
    **extra: Any,
) -> httpx.Response:
    form = {"product_code": product, "region_code": area}
    if path == "/api/collective/lists":
        form |= {"organiser_kind": "village_committee", "organiser_name": "东城街道大塘村民委员会"}
    form |= extra
    return await api.post(path, headers=headers, data=form, files={"file": (filename, io.BytesIO(data))})

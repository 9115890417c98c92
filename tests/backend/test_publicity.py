"""Publicity notices through the API: masking (R-PUB-2, R-PUB-4), the committee's check and the 72-hour
window closed by the scheduler (R-PUB-1, R-ENR-8), the three kinds (underwriting R-ENR-8, claims payouts
R-PUB-2, weather-index payouts by village R-CLM-2), reach (chat where bound, else SMS with a link), the
public page and the hash-chained archive (R-PUB-3), region scope and audit."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from PIL import ExifTags, Image
from pypdf import PdfReader
from sqlalchemy import text
from sqlmodel import col, select

from backend.claims.models import Claim, ClaimPayment, SurveyReport
from backend.db import Database, utcnow
from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity
from backend.publicity import sources
from backend.publicity.jobs import close_due_notices
from backend.publicity.masking import mask_card, scrub
from backend.publicity.models import PublicityNotice
from backend.publicity.render import NoticeView
from backend.regions.models import Region
from backend.staff.models import AuditLog, StaffUser
from tests.backend.test_claims_index import insured, post, reading
from tests.backend.test_claims_workflow import make_claim, staff_user
from tests.collective_helpers import household, list_csv, upload
from tests.enroll_helpers import DONGGUAN_TOWNSHIP, VALID_ID
from tests.images import png

DONGGUAN = "441900000000"
BEIJING = "110000000000"
VILLAGE = "441900003201"  # a village of 东城街道 (added by the fixture)
CARDS = [("62220212345678901234"[:n]) for n in range(10, 20)]  # card numbers of 10 to 19 digits
FULL_PHONE = re.compile(r"1[3-9]\d{9}")
FULL_ID = re.compile(r"\d{17}[\dX]")


def _sample_view() -> NoticeView:
    opened = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    return NoticeView(
        id=1,
        number="PN202612030000001",
        kind="claims_payout",
        status="open",
        region_name="东城测试村",
        version=2,
        opened_at=opened,
        closes_at=opened + timedelta(hours=72),
        open_hours=72,
        checked_by_name="村委会张主任",
        checked_at=opened,
        columns=sources.columns_of("claims_payout"),
        rows=[
            {
                "index": 0,
                "own": True,
                "fields": {name: "李四" for name in sources.columns_of("claims_payout")},
            },
            {"index": 1, "own": False, "fields": {name: "-" for name in sources.columns_of("claims_payout")}},
        ],
        chat_url="http://127.0.0.1:8000/chat?start=n_token",
        page_url="http://127.0.0.1:8000/p/token",
        insurer_name="示例保险",
        own_rows=[0],
    )


_VIEW = _sample_view()
_OBJECTION = SimpleNamespace(
    id=7, row_index=0, reason="金额不对", due_at=datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
)
# Sample contexts of this feature's templates, for tests/test_messages.py.
TEMPLATE_SAMPLES: dict[str, dict[str, Any]] = {
    "publicity/page": {"n": _VIEW},
    "publicity/notice_pdf": {"n": _VIEW},
    "publicity/pdf_qr_caption": {"n": _VIEW},
    "publicity/notice_chat": {"n": _VIEW, "hidden": 3},
    "publicity/announce": {"n": _VIEW, "own": True},
    "publicity/list": {"notices": [_VIEW]},
    "publicity/object_prompt": {"n": _VIEW},
    "publicity/objection_received": {"objection": _OBJECTION},
    "publicity/objection_answer": {"notice": _VIEW, "answer": "已核实更正。", "corrected": True},
    "publicity/staff_alert_title": {"notice": _VIEW, "objection": _OBJECTION},
    "publicity/staff_alert_body": {"notice": _VIEW, "objection": _OBJECTION},
}


@pytest.fixture
async def village(db: Database) -> str:
    async with db.session() as session:
        session.add(Region(code=VILLAGE, name="东城测试村", level=5, parent_code=DONGGUAN_TOWNSHIP))
        await session.commit()
    return VILLAGE


async def admin_id(db: Database) -> int:
    async with db.session() as session:
        admin = (await session.exec(select(StaffUser).where(StaffUser.username == "admin"))).one()
        return int(admin.id or 0)


async def paid_claim(
    db: Database, policy: dict[str, Any], headers: dict[str, str], card: str, amount_fen: int = 150000
) -> int:
    """A claim of the village, surveyed (loss degree) and paid to ``card``."""
    claim_id = await make_claim(db, policy, headers, region_code=VILLAGE)
    staff = await admin_id(db)
    async with db.session() as session:
        claim = await session.get(Claim, claim_id)
        assert claim is not None
        claim.status, claim.paid_at, claim.paid_amount_fen = "paid", utcnow(), amount_fen
        session.add(
            SurveyReport(
                claim_id=claim_id,
                loss="倒伏",
                cause="台风",
                covered=True,
                loss_degree="medium",
                created_by=staff,
            )
        )
        session.add(
            ClaimPayment(
                claim_id=claim_id,
                amount_fen=amount_fen,
                payee_name=policy["insured_name"],
                bank_name="农业银行",
                account_number=card,
                payee_is_insured=True,
                reference=f"T{claim_id}",
                paid_by=staff,
            )
        )
        await session.commit()
    return claim_id


async def farmers(
    api: httpx.AsyncClient, service_headers: dict[str, str], count: int
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    made = []
    names = "甲乙丙丁戊己庚辛壬癸"
    for i in range(count):
        phone = f"1390000{i:04d}"
        headers, policy = await insured(
            api, service_headers, f"农户{names[i]}", phone, product="rice", region=VILLAGE
        )
        made.append((headers, policy))
    return made


async def blocked(db: Database, *made: tuple[dict[str, str], dict[str, Any]]) -> None:
    """These households' chats blocked the bot: no chat reaches them, so they are texted."""
    async with db.session() as session:
        for headers, _policy in made:
            chat = await session.get(ChatIdentity, int(headers["X-Identity-Id"]))
            assert chat is not None
            chat.stopped_at = utcnow()
        await session.commit()


async def publish(api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """Create, record the committee's check with its stamp photo, open."""
    created = await api.post("/api/publicity/notices", json=body, headers=headers)
    assert created.status_code == 201, created.text
    notice_id = created.json()["id"]
    checked = await api.post(
        f"/api/publicity/notices/{notice_id}/check",
        headers=headers,
        data={"checked_by_name": "村委会张主任"},
        files={"file": ("stamp.png", png(), "image/png")},
    )
    assert checked.status_code == 200, checked.text
    opened = await api.post(f"/api/publicity/notices/{notice_id}/open", headers=headers)
    assert opened.status_code == 200, opened.text
    notice: dict[str, Any] = opened.json()
    return notice


def token_of(notice: dict[str, Any]) -> str:
    return str(notice["page_url"]).rsplit("/", 1)[1]


async def archive_of(api: httpx.AsyncClient, headers: dict[str, str], notice_id: int) -> list[dict[str, Any]]:
    response = await api.get(f"/api/publicity/notices/{notice_id}/archive", headers=headers)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


# --- masking (R-PUB-2, R-PUB-4) ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(10, 20))
def test_R_PUB_2_card_shows_the_5th_to_10th_digits_from_the_end_as_stars(length: int) -> None:
    card = "62220212345678901234"[:length]
    masked = mask_card(card)
    assert len(masked) == length
    assert masked[-4:] == card[-4:]  # the last 4 stay
    assert masked[-10:-4] == "******"  # the 5th to the 10th from the end
    assert masked[:-10] == card[:-10]  # the rest stays
    assert masked != card


def test_R_PUB_2_card_example_and_odd_input() -> None:
    assert mask_card("6222021234567890123") == "622202123******0123"
    assert mask_card("6222 0212 3456 7890 123") == "622202123******0123"
    assert mask_card("1234567890") == "******7890"
    # Not a card number: never published whole, whatever it is
    for odd in ("123", "12345678", "123456789", "62220212345678901234567", "6222abc1234567890", "*****"):
        masked = mask_card(odd)
        assert odd not in masked or set(odd) <= {"*"}, (odd, masked)
        assert sum(ch.isdigit() for ch in masked) <= 4
    assert mask_card("") == "" and mask_card(None) == ""
    assert mask_card("622202123******0123") == "622202123******0123"  # already masked keeps its shape


def test_R_PUB_4_no_whole_phone_id_or_card_in_published_text() -> None:
    typed = "王五13812345678 身份证441900199001011234 卡6222021234567890123 2026-12-01 10亩"
    cleaned = scrub(typed)
    assert "13812345678" not in cleaned and "138****5678" in cleaned
    assert "441900199001011234" not in cleaned and "4419" in cleaned
    assert "6222021234567890123" not in cleaned and "622202123******0123" in cleaned
    assert "2026-12-01" in cleaned and "10亩" in cleaned


# --- the claims payout notice end to end (R-PUB-1, R-PUB-2, R-PUB-3, R-PUB-4) -----------------------------


async def test_R_PUB_2_claims_payout_notice_fields_masked_on_page_pdf_and_chat(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    made = await farmers(api, service_headers, len(CARDS))
    for (headers, policy), card in zip(made, CARDS, strict=True):
        await paid_claim(db, policy, headers, card)
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})

    assert notice["columns"] == [
        "insured_name",
        "subject",
        "subject_address",
        "insured_quantity",
        "loss_date",
        "cause",
        "lost_quantity",
        "loss_degree",
        "payout_amount",
        "card_number",
    ]
    first = notice["rows"][0]["fields"]
    assert first["subject"] == "水稻" and first["insured_quantity"] == "10亩"
    assert first["cause"] == "台风" and first["loss_degree"] == "中度" and first["payout_amount"] == "1500.00"
    assert first["subject_address"].startswith("东城测试村")
    shown_cards = sorted(row["fields"]["card_number"] for row in notice["rows"])
    assert shown_cards == sorted(mask_card(card) for card in CARDS)

    page = await api.get(f"/p/{token_of(notice)}")
    assert page.status_code == 200 and "东城测试村" in page.text
    pdf = await api.get(f"/p/{token_of(notice)}/notice.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    board = pdf_text(pdf.content)
    chat_rows = await api.get(f"/api/bot/publicity/notices/{notice['id']}", headers=made[0][0])
    assert chat_rows.status_code == 200
    phones = [f"1390000{i:04d}" for i in range(len(CARDS))]
    for shown in (page.text, board, chat_rows.text):
        for number in (*CARDS, *phones, VALID_ID):
            assert number not in shown, f"{number} published whole"
            assert number not in shown.replace(" ", "")
        assert not FULL_PHONE.search(shown) and not FULL_ID.search(shown)
    assert "*****" in board and "公示期" in board


async def test_R_PUB_1_opens_only_after_the_committee_check_for_72_hours_and_every_step_is_audited(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    [(headers, policy)] = await farmers(api, service_headers, 1)
    await paid_claim(db, policy, headers, CARDS[-1])
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    created = await api.post(
        "/api/publicity/notices", json={"kind": "claims_payout", "region_code": village}, headers=adjuster
    )
    notice_id = created.json()["id"]
    assert created.json()["status"] == "draft" and created.json()["page_url"] is None
    too_soon = await api.post(f"/api/publicity/notices/{notice_id}/open", headers=adjuster)
    assert too_soon.status_code == 422 and too_soon.json()["detail"]["code"] == "notice_bad_status"
    no_stamp = await api.post(
        f"/api/publicity/notices/{notice_id}/check", headers=adjuster, data={"checked_by_name": "张主任"}
    )
    assert no_stamp.status_code == 422
    checked = await api.post(
        f"/api/publicity/notices/{notice_id}/check",
        headers=adjuster,
        data={"checked_by_name": "张主任"},
        files={"file": ("stamp.png", png(), "image/png")},
    )
    assert checked.json()["status"] == "checked" and checked.json()["stamp_document_id"]
    opened = (await api.post(f"/api/publicity/notices/{notice_id}/open", headers=adjuster)).json()
    assert opened["status"] == "open" and opened["version"] == 1
    from datetime import datetime

    window = datetime.fromisoformat(opened["closes_at"]) - datetime.fromisoformat(opened["opened_at"])
    assert window == timedelta(hours=72)
    page = (await api.get(f"/p/{token_of(opened)}")).text
    assert "不少于72小时" in page and "张主任" in page  # the notice states its window and its check
    async with db.session() as session:
        actions = (
            await session.exec(select(AuditLog.action).where(col(AuditLog.action).startswith("publicity.")))
        ).all()
    assert sorted(actions) == ["publicity.check", "publicity.create", "publicity.open"]


async def test_R_PUB_1_closing_job_closes_at_72_hours_not_before_once(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    [(headers, policy)] = await farmers(api, service_headers, 1)
    await paid_claim(db, policy, headers, CARDS[0])
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})
    async with db.session() as session:
        row = await session.get(PublicityNotice, notice["id"])
        assert row is not None and row.opened_at is not None
        opened_at = row.opened_at
    async with db.session() as session:
        assert await close_due_notices(session, opened_at + timedelta(hours=72) - timedelta(seconds=1)) == 0
    async with db.session() as session:
        assert await close_due_notices(session, opened_at + timedelta(hours=72)) == 1
    async with db.session() as session:  # a second runner, or a restart, closes nothing again
        assert await close_due_notices(session, opened_at + timedelta(hours=80)) == 0
    closed = (await api.get(f"/api/publicity/notices/{notice['id']}", headers=adjuster)).json()
    assert closed["status"] == "closed"
    kinds = [r["record_kind"] for r in await archive_of(api, adjuster, notice["id"])]
    assert kinds == ["publication", "closing"]
    late = await api.post(
        f"/api/bot/publicity/notices/{notice['id']}/objections", headers=headers, json={"reason": "太晚了"}
    )
    assert late.status_code == 422 and late.json()["detail"]["code"] == "notice_not_open"


# --- the archive (R-PUB-3) ---------------------------------------------------------------------------------


def exif_jpeg() -> bytes:
    image = Image.new("RGB", (64, 48), (20, 120, 40))
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[0x9003] = "2026:12:01 09:15:42"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({1: "N", 2: (22.0, 58.0, 30.0), 3: "E", 4: (113.0, 45.0, 36.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


async def test_R_PUB_3_archive_keeps_what_was_shown_with_board_photo_and_names_a_tampered_record(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    [(headers, policy)] = await farmers(api, service_headers, 1)
    await paid_claim(db, policy, headers, CARDS[5])
    await blocked(db, (headers, policy))  # reached by text
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})
    photo = await api.post(
        f"/api/publicity/notices/{notice['id']}/board-photos",
        headers=adjuster,
        files={"file": ("board.jpg", exif_jpeg(), "image/jpeg")},
    )
    assert photo.status_code == 200, photo.text
    assert photo.json()["payload"]["gps"] == {"lat": 22.975, "lon": 113.76}
    assert photo.json()["payload"]["taken_at"] == "2026-12-01T09:15:42"

    [publication, board] = await archive_of(api, adjuster, notice["id"])
    payload = publication["payload"]
    assert payload["villages"] == [{"code": village, "name": "东城测试村"}]
    assert payload["opened_at"] and payload["closes_at"] and payload["recipients"]
    assert {"web", "board", "sms"} <= set(payload["channels"])
    assert board["prev_sha256"] == publication["record_sha256"]  # a chain
    html = await api.get(f"/api/publicity/archive/{publication['id']}/html", headers=adjuster)
    page = await api.get(f"/p/{token_of(notice)}")
    assert html.text == page.text  # the page is served exactly as archived
    verified = await api.get("/api/publicity/archive/verify", headers=adjuster)
    assert verified.json() == {"ok": True, "checked": 2, "first_bad_record_id": None, "reason": None}

    async with db.session() as session:  # tampering behind the service's back
        await session.execute(
            text("UPDATE publicity_archive SET html = replace(html, '1500.00', '9500.00') WHERE id = :id"),
            {"id": publication["id"]},
        )
        await session.commit()
    broken = (await api.get("/api/publicity/archive/verify", headers=adjuster)).json()
    assert broken["ok"] is False and broken["first_bad_record_id"] == publication["id"]
    assert broken["reason"] == "content"
    one = (await api.get(f"/api/publicity/archive/{publication['id']}/verify", headers=adjuster)).json()
    assert one["ok"] is False and one["first_bad_record_id"] == publication["id"]
    other = (await api.get(f"/api/publicity/archive/{board['id']}/verify", headers=adjuster)).json()
    assert other["ok"] is True  # its own hashes and its link to the stored predecessor still hold


async def test_R_PUB_3_a_deleted_record_breaks_the_chain_at_the_next_one(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    [(headers, policy)] = await farmers(api, service_headers, 1)
    await paid_claim(db, policy, headers, CARDS[3])
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})
    for _ in range(2):
        await api.post(
            f"/api/publicity/notices/{notice['id']}/board-photos",
            headers=adjuster,
            files={"file": ("board.png", png(), "image/png")},
        )
    _first, second, third = await archive_of(api, adjuster, notice["id"])
    async with db.session() as session:
        await session.execute(text("DELETE FROM publicity_archive WHERE id = :id"), {"id": second["id"]})
        await session.commit()
    broken = (await api.get("/api/publicity/archive/verify", headers=adjuster)).json()
    assert broken["first_bad_record_id"] == third["id"] and broken["reason"] == "previous"


# --- the other kinds ---------------------------------------------------------------------------------------


async def uploaded_list(api: httpx.AsyncClient, headers: dict[str, str], *rows: dict[str, str]) -> int:
    """A clean household list of 东城街道 uploaded through collective enrollment; its enrollment id."""
    response = await upload(api, headers, list_csv(list(rows)))
    assert response.status_code == 201, response.text
    collective_id: int = response.json()["id"]
    return collective_id


async def test_R_ENR_8_underwriting_notice_lists_the_household_rows_masked(
    api: httpx.AsyncClient, admin_headers: dict[str, str], village: str
) -> None:
    """The household list a village committee enrolled with (collective enrollment) is published for the
    village: each household's row with its ID number masked, no phone or card anywhere."""
    underwriter, _ = await staff_user(api, admin_headers, "pub_uw", "underwriter", (DONGGUAN,))
    ours = household(1, name="赵六", village=village, quantity="12")
    other_village = household(2, name="钱七")  # the township's own row: not this village's notice
    collective_id = await uploaded_list(api, admin_headers, ours, other_village)
    notice = await publish(
        api, underwriter, {"kind": "underwriting", "region_code": village, "collective_id": collective_id}
    )
    assert notice["columns"] == ["insured_name", "id_number", "subject", "location", "insured_quantity"]
    [row] = notice["rows"]
    id_number = ours["id_number"]
    assert row["fields"]["id_number"] == id_number[:4] + "*" * 10 + id_number[-4:]
    assert row["fields"]["insured_name"] == "赵六" and row["fields"]["insured_quantity"] == "12亩"
    assert "东城测试村" in row["fields"]["location"]
    page = (await api.get(f"/p/{token_of(notice)}")).text
    assert id_number not in page and ours["phone"] not in page and ours["bank_account"] not in page
    assert "承保公示" in page and "钱七" not in page


async def test_an_underwriting_notice_needs_a_list_of_its_township(
    api: httpx.AsyncClient, admin_headers: dict[str, str], village: str
) -> None:
    collective_id = await uploaded_list(api, admin_headers, household(3, village=village))
    unknown = {"kind": "underwriting", "region_code": village, "collective_id": collective_id + 100}
    refused = await api.post("/api/publicity/notices", json=unknown, headers=admin_headers)
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "underwriting_not_found"
    elsewhere = {"kind": "underwriting", "region_code": "110105001000", "collective_id": collective_id}
    refused = await api.post("/api/publicity/notices", json=elsewhere, headers=admin_headers)
    assert refused.json()["detail"]["code"] in ("underwriting_not_found", "notice_bad_region"), refused.text
    no_list = await api.post(
        "/api/publicity/notices", json={"kind": "underwriting", "region_code": village}, headers=admin_headers
    )
    assert no_list.json()["detail"]["code"] == "notice_policy_required"


async def test_R_CLM_2_weather_index_payout_notice_by_administrative_village(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    await insured(api, service_headers, "荔枝户", "13900001111", product="lychee", region=village)
    await insured(api, service_headers, "别村户", "13900002222", product="lychee")
    underwriter, _ = await staff_user(api, admin_headers, "pub_uw", "underwriter", (DONGGUAN,))
    report = await post(api, underwriter, reading("wind", "11"))
    assert report["accepted"] == 1, report
    notice = await publish(api, underwriter, {"kind": "index_payout", "region_code": village})
    assert notice["columns"] == [
        "insured_name",
        "subject",
        "insured_quantity",
        "payout_standard",
        "payout_amount",
    ]
    assert [row["fields"]["insured_name"] for row in notice["rows"]] == ["荔枝户"]  # this village only
    fields = notice["rows"][0]["fields"]
    assert fields["subject"] == "荔枝" and fields["insured_quantity"] == "10亩"
    assert fields["payout_standard"].startswith("大风") and "%" in fields["payout_standard"]
    assert float(fields["payout_amount"]) > 0


# --- reach, scope and the public link ----------------------------------------------------------------------


async def test_R_PUB_1_every_household_is_reached_by_chat_where_bound_else_by_sms_with_a_link(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    made = await farmers(api, service_headers, 3)
    await paid_claim(db, made[0][1], made[0][0], CARDS[0])  # only the first is on the notice
    await blocked(db, made[0], made[2])  # only the second household's chat still reaches it
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})
    async with db.session() as session:
        sent = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).startswith("notice-"))
            )
        ).all()
    by_channel = sorted((m.channel, m.address) for m in sent)
    assert by_channel == [
        ("sms", "+8613900000000"),
        ("sms", "+8613900000002"),
        ("telegram", made[1][0]["X-Tianbao-Identity"].split(":")[1]),
    ]
    chat_message = next(m for m in sent if m.channel == "telegram")
    assert "公示期" in chat_message.text
    assert [b["callback_data"] for row in chat_message.buttons for b in row] == [
        f"pub:view:{notice['id']}",
        f"pub:object:{notice['id']}",
    ]
    assert all("/s/" in m.text for m in sent if m.channel == "sms")
    [publication] = await archive_of(api, adjuster, notice["id"])
    assert sorted(r["channel"] for r in publication["payload"]["recipients"]) == ["sms", "sms", "telegram"]


async def test_staff_of_another_region_are_refused(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    [(headers, policy)] = await farmers(api, service_headers, 1)
    await paid_claim(db, policy, headers, CARDS[1])
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    outsider, _ = await staff_user(api, admin_headers, "pub_bj", "adjuster", (BEIJING,))
    refused = await api.post(
        "/api/publicity/notices", json={"kind": "claims_payout", "region_code": village}, headers=outsider
    )
    assert refused.status_code == 403
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})
    for path in ("", "/archive"):
        response = await api.get(f"/api/publicity/notices/{notice['id']}{path}", headers=outsider)
        assert response.status_code == 404
    assert (await api.get("/api/publicity/notices", headers=outsider)).json() == []
    objection = await api.post(
        f"/api/bot/publicity/notices/{notice['id']}/objections", headers=headers, json={"reason": "金额不对"}
    )
    assert objection.status_code == 200
    assert (await api.get("/api/publicity/objections", headers=outsider)).json() == []
    answer = await api.post(
        f"/api/publicity/objections/{objection.json()['id']}/answer", headers=outsider, json={"answer": "x"}
    )
    assert answer.status_code == 404
    viewer, _ = await staff_user(api, admin_headers, "pub_view", "viewer", (DONGGUAN,))
    assert (await api.post(f"/api/publicity/notices/{notice['id']}/open", headers=viewer)).status_code == 403


async def test_public_link_is_unguessable_and_a_wrong_token_is_a_plain_404(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    [(headers, policy)] = await farmers(api, service_headers, 1)
    await paid_claim(db, policy, headers, CARDS[2])
    created = await api.post(
        "/api/publicity/notices",
        json={"kind": "claims_payout", "region_code": village},
        headers=admin_headers,
    )
    async with db.session() as session:
        draft = await session.get(PublicityNotice, created.json()["id"])
        assert draft is not None
        token = draft.public_token
    assert len(token) >= 24 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert (await api.get(f"/p/{token}")).status_code == 404  # a draft is not public
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "a" * 300, "%00", "../../etc", "1"):
        response = await api.get(f"/p/{wrong}")
        assert response.status_code == 404, wrong
        assert (await api.get(f"/p/{wrong}/notice.pdf")).status_code == 404
    bot = await api.get("/api/bot/publicity/by-token/nope", headers=headers)
    assert bot.status_code == 404


async def test_R_PUB_1_an_objection_is_queued_with_its_due_date_and_alerts_the_regions_staff(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    db: Database,
    village: str,
) -> None:
    [(headers, policy)] = await farmers(api, service_headers, 1)
    await paid_claim(db, policy, headers, CARDS[4])
    adjuster, _ = await staff_user(api, admin_headers, "pub_adj", "adjuster", (DONGGUAN,))
    notice = await publish(api, adjuster, {"kind": "claims_payout", "region_code": village})
    path = f"/api/bot/publicity/notices/{notice['id']}/objections"
    empty = await api.post(path, headers=headers, json={"reason": " "})
    assert empty.status_code == 422
    for n in range(3):
        assert (
            await api.post(path, headers=headers, json={"reason": f"第{n}条：面积不对"})
        ).status_code == 200
    flood = await api.post(path, headers=headers, json={"reason": "再提一条"})
    assert flood.status_code == 422 and flood.json()["detail"]["code"] == "objection_too_many"
    queue = (await api.get("/api/publicity/objections", headers=adjuster)).json()
    assert len(queue) == 3 and all(o["row_index"] == 0 for o in queue)
    alerts = (await api.get("/api/alerts", headers=adjuster, params={"kind": "publicity_objection"})).json()
    assert len(alerts) == 3 and "面积不对" in alerts[0]["body"]
    answered = await api.post(
        f"/api/publicity/objections/{queue[0]['id']}/answer",
        headers=adjuster,
        json={"answer": "经核实无误。"},
    )
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    again = await api.post(
        f"/api/publicity/objections/{queue[0]['id']}/answer", headers=adjuster, json={"answer": "再答"}
    )
    assert again.status_code == 422 and again.json()["detail"]["code"] == "objection_answered"
    needs_row = await api.post(
        f"/api/publicity/objections/{queue[1]['id']}/answer",
        headers=adjuster,
        json={"answer": "有误", "confirmed_error": True},
    )
    assert needs_row.json()["detail"]["code"] == "correction_needs_row"
    async with db.session() as session:
        told = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).startswith("objection-"))
            )
        ).all()
    assert [m.channel for m in told] == ["telegram"]  # the chat that objected gets the answer
    assert "经核实无误" in told[0].text

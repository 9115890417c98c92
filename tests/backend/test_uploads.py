"""Uploads and downloads of stored files (issue 11): any name makes a valid download header (RFC 6266
with RFC 5987's ``filename*``), and only a whole photo under the pixel limit is accepted."""

from __future__ import annotations

import io
import re
from urllib.parse import unquote

import httpx
import pytest
from PIL import Image

from backend.files import MAX_NAME_CHARS, clean_filename, content_disposition
from backend.images import ImageRefused, verified_image
from tests.backend.test_enrollment_api import identity
from tests.images import bomb_png, jpeg, png, truncated_jpeg

_FALLBACK = re.compile(r'filename="([^"]*)"')
_EXTENDED = re.compile(r"filename\*=UTF-8''([A-Za-z0-9%!#$&+^`|._~-]+)$")


def parsed(header: str) -> tuple[str, str]:
    """(the ASCII fallback, the decoded ``filename*``), parsed as RFC 6266 says a client parses them."""
    assert header.startswith("attachment; ")
    header.encode("latin-1")  # a header value must be Latin-1 (ASCII here) or Starlette fails with 500
    assert header.isascii() and "\r" not in header and "\n" not in header
    fallback, extended = _FALLBACK.search(header), _EXTENDED.search(header)
    assert fallback is not None and extended is not None, header
    assert header.count('"') == 2, "the fallback is one quoted string, nothing escapes it"
    return fallback.group(1), unquote(extended.group(1), encoding="utf-8", errors="strict")


@pytest.mark.parametrize(
    ("name", "fallback", "decoded"),
    [
        ("现场照片.jpg", "file.jpg", "现场照片.jpg"),
        ("report 2026.pdf", "report 2026.pdf", "report 2026.pdf"),
        ('a "quoted" name.jpg', "a quoted name.jpg", 'a "quoted" name.jpg'),
        ("semi;colon,comma.png", "semicoloncomma.png", "semi;colon,comma.png"),
        ("back\\slash.png", "back_slash.png", "back_slash.png"),
        ("evil.jpg\r\nSet-Cookie: x=1", "evil.jpg__Set-Cookie: x=1", "evil.jpg__Set-Cookie: x=1"),
        ("café.jpg", "cafe.jpg", "café.jpg"),
        ("100%.png", "100.png", "100%.png"),
        ("", "file", "file"),
    ],
)
def test_content_disposition_has_an_ascii_fallback_and_the_exact_utf8_name(
    name: str, fallback: str, decoded: str
) -> None:
    assert parsed(content_disposition(name)) == (fallback, decoded)


def test_a_very_long_name_is_cut_before_its_extension() -> None:
    name = "现场" * 400 + ".jpeg"
    fallback, decoded = parsed(content_disposition(name))
    assert len(decoded) == MAX_NAME_CHARS and decoded.endswith(".jpeg") and decoded.startswith("现场现场")
    assert fallback == "file.jpeg"
    assert len(content_disposition(name)) < 3000
    assert clean_filename("a" * 1000 + "." + "x" * 40) == "a" * MAX_NAME_CHARS  # no absurd "extension"


async def test_a_staff_upload_named_in_chinese_downloads_with_its_name(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    photo = jpeg()
    uploaded = await api.post(
        "/api/documents",
        headers=admin_headers,
        data={"kind": "signed_form"},
        files={"file": ("现场照片.jpg", io.BytesIO(photo), "image/jpeg")},
    )
    assert uploaded.status_code == 201, uploaded.text
    download = await api.get(f"/api/documents/{uploaded.json()['id']}", headers=admin_headers)
    assert download.status_code == 200, download.text
    assert download.content == photo
    assert parsed(download.headers["content-disposition"]) == ("file.jpg", "现场照片.jpg")
    assert download.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("name", ['签字 "表".jpg', "a;b.jpg", "x" * 300 + ".jpg"])
async def test_odd_upload_names_download_without_error(
    api: httpx.AsyncClient, admin_headers: dict[str, str], name: str
) -> None:
    uploaded = await api.post(
        "/api/documents",
        headers=admin_headers,
        data={"kind": "signed_form"},
        files={"file": (name, io.BytesIO(jpeg()), "image/jpeg")},
    )
    assert uploaded.status_code == 201, uploaded.text
    download = await api.get(f"/api/documents/{uploaded.json()['id']}", headers=admin_headers)
    assert download.status_code == 200
    _fallback, decoded = parsed(download.headers["content-disposition"])
    # A quote travels as %22 in the multipart header (WHATWG, as browsers send it) and is kept so.
    assert decoded == clean_filename(name.replace('"', "%22"))


def _encoded(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(out, format=kind)
    return out.getvalue()


REFUSED = [
    pytest.param(b"BM this is a text file\n" * 50, 415, "not_an_image", id="text-starting-BM"),
    pytest.param(truncated_jpeg(), 415, "not_an_image", id="truncated-jpeg"),
    pytest.param(b"\xff\xd8\xff" + b"\x00" * 4096, 415, "not_an_image", id="jpeg-signature-only"),
    pytest.param(bomb_png(), 422, "image_too_many_pixels", id="bomb-20000x20000"),
    pytest.param(bomb_png(7_000, 7_000), 422, "image_too_many_pixels", id="bomb-7000x7000"),
]


@pytest.mark.parametrize(("data", "status", "code"), REFUSED)
async def test_a_staff_photo_upload_must_be_a_whole_image_under_the_pixel_limit(
    api: httpx.AsyncClient, admin_headers: dict[str, str], data: bytes, status: int, code: str
) -> None:
    response = await api.post(
        "/api/documents",
        headers={**admin_headers, "Accept-Language": "en"},
        data={"kind": "signed_form"},
        files={"file": ("photo.jpg", io.BytesIO(data), "image/jpeg")},
    )
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail["code"] == code and detail["message"] and detail["message"] != code


async def test_the_pixel_limit_is_a_setting_and_the_refusal_says_it(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api.post(
        "/api/documents",
        headers={**admin_headers, "Accept-Language": "zh-CN"},
        data={"kind": "signed_form"},
        files={"file": ("bomb.png", io.BytesIO(bomb_png(7_000, 7_000)), "image/png")},
    )
    assert response.status_code == 422
    assert response.json()["detail"]["message"] == "图片像素过多（上限 40 百万像素）"
    with pytest.raises(ImageRefused):
        verified_image(png((2_000, 1_000)), max_pixels=1_000_000)
    assert verified_image(png((1_000, 1_000)), max_pixels=1_000_000).content_type == "image/png"


async def test_a_photo_is_stored_as_what_it_is_not_what_the_client_called_it(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    uploaded = await api.post(
        "/api/documents",
        headers=admin_headers,
        data={"kind": "signed_form"},
        files={"file": ("form.jpg", io.BytesIO(png()), "image/jpeg")},
    )
    assert uploaded.status_code == 201
    download = await api.get(f"/api/documents/{uploaded.json()['id']}", headers=admin_headers)
    assert download.headers["content-type"] == "image/png"


@pytest.mark.parametrize(("data", "status", "code"), REFUSED)
async def test_loss_media_from_the_chat_must_be_a_whole_photo_or_a_video(
    api: httpx.AsyncClient, service_headers: dict[str, str], data: bytes, status: int, code: str
) -> None:
    farmer = await identity(api, service_headers, "media-check")
    response = await api.post(
        "/api/bot/claims/media", headers=farmer, files={"file": ("scene.png", io.BytesIO(data), "image/png")}
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"]["code"] == ("not_media" if code == "not_an_image" else code)


async def test_loss_media_takes_photos_and_videos(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    farmer = await identity(api, service_headers, "media-ok")
    video = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
    photos = [("scene.jpg", jpeg()), ("scene.png", png())]
    photos += [(f"scene.{kind.lower()}", _encoded(kind)) for kind in ("WEBP", "GIF", "BMP")]
    for name, data in (*photos, ("scene.mp4", video)):
        response = await api.post(
            "/api/bot/claims/media", headers=farmer, files={"file": (name, io.BytesIO(data), "image/jpeg")}
        )
        assert response.status_code == 201, (name, response.text)


async def test_the_bots_authorisation_photo_is_checked_too(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    farmer = await identity(api, service_headers, "auth-check")
    refused = await api.post(
        "/api/bot/documents", headers=farmer, files={"file": ("a.jpg", io.BytesIO(b"BM hi"), "image/jpeg")}
    )
    assert refused.status_code == 415 and refused.json()["detail"]["code"] == "not_an_image"
    accepted = await api.post(
        "/api/bot/documents", headers=farmer, files={"file": ("a.jpg", io.BytesIO(jpeg()), "image/jpeg")}
    )
    assert accepted.status_code == 201


def test_pillows_own_bomb_warning_is_a_refusal_even_under_a_raised_limit() -> None:
    """Past Pillow's MAX_IMAGE_PIXELS (~89 MP) it only warns: here that is a refusal, whatever the
    setting says (100 MP, with the limit raised to 200 MP)."""
    with pytest.raises(ImageRefused) as refused:
        verified_image(bomb_png(10_000, 10_000), max_pixels=200_000_000)
    assert refused.value.code == "image_too_many_pixels"

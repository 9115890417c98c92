"""The web chat's "add to home screen" manifest and icons (issue 12): ours, in the page's language."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image


@pytest.mark.parametrize(("lang", "short_name"), [("zh-CN", "田保"), ("en", "Tianbao")])
async def test_the_manifest_names_the_app_in_the_pages_language(
    chat_client: httpx.AsyncClient, lang: str, short_name: str
) -> None:
    response = await chat_client.get("/chat/manifest.webmanifest", params={"lang": lang})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["short_name"] == short_name and manifest["lang"] == lang
    assert manifest["start_url"].startswith("/chat") and manifest["display"] == "standalone"
    sizes = {icon["sizes"]: icon for icon in manifest["icons"]}
    assert set(sizes) == {"any", "192x192", "512x512"}
    for size, icon in sizes.items():
        assert icon["src"].startswith("/chat/static/"), "icons are served by us"
        served = await chat_client.get(icon["src"])
        assert served.status_code == 200
        if size == "any":
            assert b"<svg" in served.content
        else:
            side = int(size.split("x")[0])
            assert Image.open(io.BytesIO(served.content)).size == (side, side)


async def test_the_page_links_its_manifest_and_icons(chat_client: httpx.AsyncClient) -> None:
    page = (await chat_client.get("/chat", params={"lang": "en"})).text
    assert '<link rel="manifest" href="/chat/manifest.webmanifest?lang=en">' in page
    assert 'href="/chat/static/icon.svg"' in page and "data:image" not in page

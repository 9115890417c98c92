"""Addresses shown to people follow the real host and port (issue 10, item 11), and the API docs work
with no internet (item 12)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from backend.settings import Settings, reset_settings_cache
from bot import cli
from tests.conftest import make_settings


def test_links_follow_the_port_of_a_copy_and_an_explicit_public_url_wins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.public_url == "http://127.0.0.1:8000"
    moved = settings.model_copy(update={"host": "0.0.0.0", "port": 8123})
    assert moved.public_url == "http://127.0.0.1:8123"  # a wildcard bind is linked as loopback
    explicit = make_settings(tmp_path, public_url="https://tianbao.example.cn/", port=8123)
    assert explicit.public_url == "https://tianbao.example.cn"


def test_public_url_is_read_from_its_environment_variable_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_URL", "https://not-ours.example")
    assert Settings(port=8124).public_url == "http://127.0.0.1:8124"
    monkeypatch.setenv("TIANBAO_PUBLIC_URL", "https://bao.example.cn")
    assert Settings(port=8124).public_url == "https://bao.example.cn"


def test_serve_with_port_prints_and_links_that_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIANBAO_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("TIANBAO_DATABASE_URL", raising=False)
    monkeypatch.delenv("TIANBAO_PUBLIC_URL", raising=False)
    started: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        started.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    reset_settings_cache()
    try:
        result = CliRunner().invoke(cli.main, ["serve", "--port", "8109"])
    finally:
        reset_settings_cache()
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8109/chat" in result.output and ":8000" not in result.output
    assert started["port"] == 8109
    assert started["app"].state.settings.public_url == "http://127.0.0.1:8109"


async def test_docs_reference_only_local_assets_that_answer(api: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await api.get(page)).text
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
        assets = [u for u in urls if not u.startswith("/openapi.json")]
        assert assets, f"{page} names no assets"
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        for url in assets:
            response = await api.get(url)
            assert response.status_code == 200 and response.content, url

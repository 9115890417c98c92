"""The `tianbao` command's maintenance tasks on a fresh embedded database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from backend.settings import reset_settings_cache
from bot.cli import main


@pytest.fixture
def fresh_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIANBAO_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("TIANBAO_DATABASE_URL", raising=False)
    reset_settings_cache()
    yield tmp_path
    reset_settings_cache()


def test_migrate_creates_schema_and_loads_regions_once(fresh_var: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["migrate"])
    assert first.exit_code == 0, first.output
    assert "Regions loaded now: 44699" in first.output
    assert (fresh_var / "tianbao.db").exists()
    second = runner.invoke(main, ["migrate"])
    assert "Regions loaded now: 0" in second.output


def test_create_admin_and_short_password_refused(fresh_var: Path) -> None:
    runner = CliRunner()
    short = runner.invoke(main, ["create-admin", "--password", "short"])
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    common = runner.invoke(main, ["create-admin", "--password", "password1234"])
    assert common.exit_code != 0 and "common password" in common.output
    made = runner.invoke(main, ["create-admin", "--username", "ops", "--password", "long-enough-pass"])
    assert made.exit_code == 0 and "Admin account 'ops' is ready" in made.output


def test_r_enr_12_import_villages_reports_rejected_rows(fresh_var: Path) -> None:
    csv_file = fresh_var / "villages.csv"
    csv_file.write_text(
        "code,name\n441900003001,新村村\n441900003001,重复村\n999999999001,无主村\n", encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["import-villages", str(csv_file)])
    assert "Accepted: 1; rejected: 2" in result.output
    assert "duplicate_in_file" in result.output and "unknown_township" in result.output
    assert result.exit_code == 1


def test_production_profile_refusal_is_a_clear_cli_error(
    fresh_var: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIANBAO_PROFILE", "production")
    reset_settings_cache()
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code != 0
    assert "production profile refused" in result.output

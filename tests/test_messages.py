"""Every template renders in both locales with its variables; labels exist in both."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jinja2 import UndefinedError

from backend.people.schemas import IdentityOut
from messages import LOCALES, MESSAGES_DIR, MessageNotFound, normalize_locale, render, template_keys

IDENTITY = IdentityOut(
    id=1,
    channel="webchat",
    external_id="x",
    locale="zh-CN",
    first_name="王大明",
    phone_masked="138****5678",
    phone_verified=True,
    person_id=1,
    menu=["help"],
)

# Sample context per template: every variable a template uses must be given here, so a template that
# starts needing a new variable fails this test until the sample (and its callers) provide it.
SAMPLES: dict[str, dict[str, Any]] = {
    "start/welcome": {"identity": IDENTITY},
    "start/menu": {"identity": IDENTITY},
    "start/unknown_link": {"identity": IDENTITY},
    "start/language_set": {"identity": IDENTITY},
    "start/phone_bound": {"identity": IDENTITY},
    "start/phone_refused": {"code": "phone_not_cn_mobile"},
    "webchat/file_too_large": {"limit_mb": 10},
}


def test_both_locales_have_the_same_templates() -> None:
    zh = set(template_keys("zh-CN"))
    en = set(template_keys("en"))
    assert zh == en, f"only zh-CN: {sorted(zh - en)}; only en: {sorted(en - zh)}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_renders_with_its_sample(locale: str) -> None:
    for key, ext in template_keys(locale):
        if key.startswith("documents/"):
            continue  # rendered by the document tests with full data
        text = render(key, locale, ext=ext, **SAMPLES.get(key, {}))
        assert text.strip(), f"{locale}/{key} rendered empty"


def test_missing_variable_fails_loudly() -> None:
    with pytest.raises(UndefinedError):
        render("start/phone_bound", "zh-CN")


def test_missing_template_is_an_error_not_a_fallback() -> None:
    with pytest.raises(MessageNotFound):
        render("start/no_such_template", "en")


def test_user_text_is_escaped_for_telegram_html() -> None:
    identity = IDENTITY.model_copy(update={"first_name": "<b>x</b>&"})
    text = render("start/welcome", "zh-CN", identity=identity)
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in text


def test_labels_have_the_same_keys_in_both_locales() -> None:
    for zh_file in (MESSAGES_DIR / "zh-CN").rglob("labels.json"):
        en_file = MESSAGES_DIR / "en" / zh_file.relative_to(MESSAGES_DIR / "zh-CN")
        zh = json.loads(zh_file.read_text(encoding="utf-8"))
        en = json.loads(en_file.read_text(encoding="utf-8"))
        assert zh.keys() == en.keys(), f"{zh_file.parent.name}: {set(zh) ^ set(en)}"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("zh-hans", "zh-CN"),
        ("zh_TW", "zh-CN"),
        ("en-US", "en"),
        ("EN", "en"),
        ("fr", "zh-CN"),
        (None, "zh-CN"),
    ],
)
def test_locale_rules_are_explicit(tag: str | None, expected: str) -> None:
    assert normalize_locale(tag) == expected

"""Every user-visible text of Tianbao, in zh-CN and English.

Templates live at ``messages/<locale>/<domain>/<name>.<ext>.j2`` and are addressed by
``"<domain>/<name>"`` plus an extension (``html`` by default: Telegram HTML parse mode, auto-escaped).
Short labels (buttons, menu entries) live in ``messages/<locale>/<domain>/labels.json`` and are
addressed by ``"<domain>.<label>"``.

Locale rules are explicit: any ``zh*`` tag is zh-CN, any ``en*`` tag is English, anything else is the
default (zh-CN). A template missing in one locale is an error, never a silent fallback; the test suite
renders every template in both locales.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from jinja2.ext import Extension

MESSAGES_DIR = Path(__file__).parent
LOCALES: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALES",
    "MESSAGES_DIR",
    "MessageNotFound",
    "label",
    "labels_for",
    "normalize_locale",
    "render",
    "template_keys",
]


class MessageNotFound(LookupError):
    """A template or label key that does not exist for the asked locale."""


def normalize_locale(tag: str | None, default: str = DEFAULT_LOCALE) -> str:
    if not tag:
        return default
    lowered = tag.strip().lower().replace("_", "-")
    if lowered.startswith("zh"):
        return "zh-CN"
    if lowered.startswith("en"):
        return "en"
    return default


# A block tag or comment: its body never holds its own closing delimiter, so a match ends at the first
# one (a bare ``.*?`` could run on from one tag over text into the next).
_TAG = r"(?:\{%(?:[^%]|%(?!\}))*%\}|\{#(?:[^#]|#(?!\}))*#\})"
_TAG_ONLY_LINE = re.compile(rf"^([ \t]*(?:{_TAG}[ \t]*)+)\n", re.MULTILINE)


class TagLines(Extension):
    """The line rule of every template: a line holding only block tags or comments prints nothing,
    not even its newline; every other line keeps its newline, whatever tag it ends with.

    Jinja's ``trim_blocks`` drops the newline after *any* block tag, so a line ending in an inline
    ``{% endif %}`` ran into the next ("地点：…（已附定位）收款银行：…"). This rule is applied to the
    source once, when a template is loaded, so rendering costs nothing more.
    """

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _TAG_ONLY_LINE.sub(r"\1", source)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(MESSAGES_DIR)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        extensions=[TagLines],
        trim_blocks=False,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["masked_phone"] = mask_phone
    env.filters["money"] = format_money
    env.filters["yuan"] = format_fen
    env.filters["local_time"] = local_time
    # Templates name choices by key: {{ label("claims.cause_" ~ claim.cause, locale) }}.
    env.globals["label"] = label
    return env


def mask_phone(phone: str | None) -> str:
    """Show the first 3 and last 4 digits of a phone number: 138****5678."""
    if not phone:
        return ""
    digits = phone[-11:] if len(phone) >= 11 else phone
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def format_money(value: Any) -> str:
    return f"{float(value):,.2f}"


BEIJING = timezone(timedelta(hours=8))


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Stored times are UTC; people read Beijing time (UTC+8, no daylight saving)."""
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(BEIJING).strftime(fmt)


def format_fen(fen: Any) -> str:
    """Integer fen as yuan with two decimals: 123456 -> 1,234.56."""
    return f"{int(fen) / 100:,.2f}"


def render(key: str, locale: str | None = None, ext: str = "html", **ctx: Any) -> str:
    """Render template ``key`` (``"domain/name"``) in ``locale``; raises on a missing variable."""
    loc = normalize_locale(locale)
    path = f"{loc}/{key}.{ext}.j2"
    try:
        template = _template(path)
    except Exception as exc:  # jinja2.TemplateNotFound
        raise MessageNotFound(path) from exc
    return template.render(locale=loc, **ctx).strip()


@cache  # a few hundred templates at most; a missing one raises and is not cached
def _template(path: str) -> Template:
    template = _environment().get_template(path)
    # Jinja chains a template's globals onto the environment's and walks that ChainMap on every
    # render: 10 of a short template's 16 µs. The environment's globals are set once, when it is
    # built, so a flat copy holds the same names.
    template.globals = dict(template.globals)
    return template


@lru_cache(maxsize=64)
def labels_for(domain: str, locale: str) -> dict[str, str]:
    path = MESSAGES_DIR / locale / domain / "labels.json"
    if not path.exists():
        raise MessageNotFound(str(path))
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def label(key: str, locale: str | None = None, **ctx: Any) -> str:
    """A short label (button, menu entry): ``"domain.name"``; ``{name}`` placeholders are filled."""
    domain, _, name = key.partition(".")
    labels = labels_for(domain, normalize_locale(locale))
    if name not in labels:
        raise MessageNotFound(f"{normalize_locale(locale)}/{domain}/labels.json: {name}")
    text = labels[name]
    return text.format(**ctx) if ctx else text


def template_keys(locale: str) -> list[tuple[str, str]]:
    """Every (key, ext) template of a locale, for the completeness test."""
    root = MESSAGES_DIR / locale
    found: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*.j2")):
        rel = path.relative_to(root).as_posix()[: -len(".j2")]
        stem, _, ext = rel.rpartition(".")
        found.append((stem, ext))
    return found

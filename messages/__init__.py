"""Every user-visible text of Tianbao, in zh-CN and English.

Templates live at ``messages/<locale>/<domain>/<name>.<ext>.j2`` and are addressed by
``"<domain>/<name>"`` plus an extension (``html`` by default: Telegram HTML parse mode, auto-escaped).
Short labels (buttons, menu entries) live in ``messages/<locale>/<domain>/labels.json`` and are
addressed by ``"<domain>.<label>"``.

Line rule: a template line holding only block tags or comments (``{% if %}``, ``{% endfor %}``,
``{# … #}``) prints nothing, not even its newline; every other line keeps its newline, whatever tag it
ends with. So ``地点：{{ place }}{% if gps %}（已附定位）{% endif %}`` ends its line, and a loop body on
its own lines prints one line per item.

Times: stored UTC, shown in the zone ``configure()`` was given (``TIANBAO_TIMEZONE``) through the
``local_time`` filter; ``contacts`` and ``contact_line(locale)`` give the insurer's contacts
(``TIANBAO_INSURER_*``). Each process calls ``configure()`` once at start-up.

Locale rules are explicit: any ``zh*`` tag is zh-CN, any ``en*`` tag is English, anything else is the
default (zh-CN). A template missing in one locale is an error, never a silent fallback; the test suite
renders every template in both locales.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, tzinfo
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from jinja2.ext import Extension

MESSAGES_DIR = Path(__file__).parent
LOCALES: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
DEFAULT_TIMEZONE = "Asia/Shanghai"

__all__ = [
    "CONTACTS",
    "DEFAULT_LOCALE",
    "DEFAULT_TIMEZONE",
    "LOCALES",
    "MESSAGES_DIR",
    "Contacts",
    "MessageNotFound",
    "configure",
    "contact_line",
    "label",
    "labels_for",
    "local_date",
    "local_day_start",
    "local_time",
    "normalize_locale",
    "render",
    "template_keys",
    "time_zone",
    "to_local",
    "zone_name",
]


class MessageNotFound(LookupError):
    """A template or label key that does not exist for the asked locale."""


class _Zone:
    """The time zone people read times in. messages/ imports nothing of Tianbao's, so each process
    tells it the zone once at start-up (``configure``); rendering then only reads this attribute."""

    key: str = DEFAULT_TIMEZONE
    zone: tzinfo = ZoneInfo(DEFAULT_TIMEZONE)


@dataclass
class Contacts:
    """The insurer's contacts (``TIANBAO_INSURER_*``), the ``contacts`` of every template.

    Empty fields are not shown: a template says "contact us in this chat" rather than print a label
    with no number. ``insurer_name`` empty means the locale's demonstration insurer name."""

    insurer_name: str = ""
    hotline: str = ""
    office: str = ""  # the local office's name and address
    office_phone: str = ""

    @property
    def any_phone(self) -> bool:
        return bool(self.hotline or self.office_phone)


# One instance, updated in place by configure(): templates keep a copy of the globals they were
# loaded with, so replacing the object would not reach a template already loaded.
CONTACTS = Contacts()


def configure(*, timezone: str, contacts: Contacts | None = None) -> None:
    """Set the zone every time shown to people is in (``TIANBAO_TIMEZONE``; storage stays UTC) and
    the insurer's contacts. Called once per process at start-up, so ``render()`` does no I/O for them.

    Raises ``zoneinfo.ZoneInfoNotFoundError`` for an unknown zone name, before anything is shown."""
    _Zone.zone = ZoneInfo(timezone)
    _Zone.key = timezone
    given = contacts or Contacts()
    for item in fields(Contacts):
        setattr(CONTACTS, item.name, getattr(given, item.name).strip())


def time_zone() -> tzinfo:
    return _Zone.zone


def to_local(value: datetime) -> datetime:
    """A stored timestamp in the configured zone; a naive one is UTC (how the database stores them)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(_Zone.zone)


def local_date(moment: datetime) -> date:
    """The day a stored (UTC) moment falls on where people live (the configured zone)."""
    return to_local(moment).date()


def local_day_start(day: date) -> datetime:
    """00:00 of ``day`` in the configured zone, as a UTC time: how day-bound rows are stored."""
    return datetime(day.year, day.month, day.day, tzinfo=_Zone.zone).astimezone(UTC)


def contact_line(locale: str | None = None, agent_name: str = "", agent_phone: str = "") -> str:
    """Who to contact, from the configured contacts (and a campaign's agent, when there is one):
    "业务员 张三（139…）；服务电话 95xxx；县支公司 某路 1 号；电话 0371-…". With none configured it says to
    leave a message in this chat: a message never points to a phone number it cannot give."""
    parts: list[str] = []
    if agent_name:
        key = "common.contact_agent_phone" if agent_phone else "common.contact_agent"
        parts.append(label(key, locale, name=agent_name, phone=agent_phone))
    if CONTACTS.hotline:
        parts.append(label("common.contact_hotline", locale, phone=CONTACTS.hotline))
    if CONTACTS.office:
        parts.append(label("common.contact_office", locale, office=CONTACTS.office))
    if CONTACTS.office_phone:
        parts.append(label("common.contact_office_phone", locale, phone=CONTACTS.office_phone))
    if not parts:
        return label("common.contact_chat", locale)
    return label("common.contact_separator", locale).join(parts)


def zone_name(locale: str | None = None) -> str:
    """How people call the configured zone ("北京时间", "Beijing time"); else its IANA name."""
    try:
        return label(f"common.zone_{_Zone.key}", locale)
    except MessageNotFound:
        return _Zone.key


def normalize_locale(tag: str | None, default: str = DEFAULT_LOCALE) -> str:
    if not tag:
        return default
    lowered = tag.strip().lower().replace("_", "-")
    if lowered.startswith("zh"):
        return "zh-CN"
    if lowered.startswith("en"):
        return "en"
    return default


# A block tag or comment that prints nothing itself (not ``include``/``call``, which print a template):
# its body never holds its own closing delimiter, so a match ends at the first one (a bare ``.*?``
# could run on from one tag over text into the next).
_TAG = r"(?:\{%-?\s*+(?!include\b|call\b)(?:[^%]|%(?!\}))*%\}|\{#(?:[^#]|#(?!\}))*#\})"
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
    env.globals["zone_name"] = zone_name
    env.globals["contacts"] = CONTACTS
    env.globals["contact_line"] = contact_line
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


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time as people read it, in the configured zone: dates too, so a cover starting
    2026-12-01 20:00 UTC reads 2026-12-02 in Beijing."""
    if value is None:
        return ""
    return to_local(value).strftime(fmt)


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

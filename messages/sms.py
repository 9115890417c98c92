"""Text messages (短信): fixed texts the provider has approved, with named variables.

In China an SMS goes out only through a template the provider approved, under an approved signature
(签名, e.g. 【田保】). So an SMS here is not free text: ``messages/<locale>/sms/templates.json`` holds each
template's fixed text with ``{name}`` variables, what kind each variable is (its length rule), and the
kind of message (``otp``, ``notice``, ``bulk``: what limits and quiet hours apply). ``{site}`` is the
deployment's public address, fixed in the approved text (providers refuse links as variables); the
variable after it is a short token. ``provider_text`` gives the text to register with the provider,
variables numbered ``{1}``, ``{2}`` in order; ``params`` gives the values in that order.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MESSAGES_DIR = Path(__file__).parent
# The most characters a variable's value may have, by kind (the provider's review rules: a code is 4-6
# digits; any other variable at most 12 characters unless the template was approved for longer).
VARIABLE_LIMITS: dict[str, int] = {"code": 6, "number": 20, "text": 12, "token": 12}
# One SMS holds 70 characters (signature included); a longer one is sent in parts of 67.
SINGLE_PART = 70
MULTI_PART = 67
SITE = "site"
_VARIABLE = re.compile(r"\{(\w+)\}")


class _Site:
    """The public address texts link to; set once per process by ``configure_site`` (settings)."""

    url = "http://127.0.0.1:8000"


def configure_site(url: str) -> None:
    _Site.url = url.rstrip("/")


class SmsTemplateError(ValueError):
    """A template or a value that the provider would refuse."""


@dataclass(frozen=True)
class SmsTemplate:
    key: str
    locale: str
    kind: str  # otp | notice | bulk | warning
    text: str
    variables: dict[str, str]  # name -> kind (VARIABLE_LIMITS)

    @property
    def param_names(self) -> tuple[str, ...]:
        """The variables in the order they appear: the provider's {1}, {2}, ..."""
        return tuple(name for name in _VARIABLE.findall(self.text) if name != SITE)

    def provider_text(self, site: str) -> str:
        """The text to register with the provider: ``{site}`` filled in, variables numbered."""
        numbers = {name: f"{{{i}}}" for i, name in enumerate(self.param_names, start=1)}
        return _VARIABLE.sub(lambda m: site if m.group(1) == SITE else numbers[m.group(1)], self.text)

    def params(self, values: dict[str, str]) -> list[str]:
        """The values in the provider's order, each checked against its kind's rule."""
        problems = self.problems(values)
        if problems:
            raise SmsTemplateError(f"{self.locale}/{self.key}: " + "; ".join(problems))
        return [str(values[name]) for name in self.param_names]

    def render(self, values: dict[str, str], site: str | None = None) -> str:
        """The text as the recipient reads it (without the signature), linking to the configured site."""
        self.params(values)
        site = site or _Site.url
        return _VARIABLE.sub(lambda m: site if m.group(1) == SITE else str(values[m.group(1)]), self.text)

    def problems(self, values: dict[str, str]) -> list[str]:
        found = []
        for name in self.param_names:
            if name not in values:
                found.append(f"{name} missing")
                continue
            value, kind = str(values[name]), self.variables[name]
            if not value or len(value) > VARIABLE_LIMITS[kind]:
                found.append(f"{name} must be 1 to {VARIABLE_LIMITS[kind]} characters, got {len(value)}")
            if kind == "code" and not (value.isascii() and value.isdigit() and len(value) >= 4):
                found.append(f"{name} must be 4 to 6 digits")
        return found


def parts(text: str, signature: str = "") -> int:
    """How many SMS the text is billed and delivered as, with its signature ``【...】``."""
    length = len(text) + len(signature)
    return 1 if length <= SINGLE_PART else math.ceil(length / MULTI_PART)


@cache
def _templates(locale: str) -> dict[str, SmsTemplate]:
    path = MESSAGES_DIR / locale / "sms" / "templates.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    found = {}
    for key, spec in data.items():
        template = SmsTemplate(
            key=key, locale=locale, kind=spec["kind"], text=spec["text"], variables=dict(spec["vars"])
        )
        undeclared = set(template.param_names) ^ set(template.variables)
        if undeclared or any(kind not in VARIABLE_LIMITS for kind in template.variables.values()):
            raise SmsTemplateError(f"{path}: {key}: variables and their kinds do not match its text")
        found[key] = template
    return found


def sms_template(key: str, locale: str) -> SmsTemplate:
    try:
        return _templates(locale)[key]
    except KeyError as exc:
        raise SmsTemplateError(f"no SMS template {locale}/{key}") from exc


def sms_template_keys(locale: str) -> list[str]:
    return sorted(_templates(locale))


def provider_registrations(site: str, locales: tuple[str, ...] = ("zh-CN", "en")) -> list[tuple[str, str]]:
    """``(template id key, text to register)`` for every template: what a deployment registers with the
    provider, and maps in ``TIANBAO_SMS_TEMPLATE_IDS``."""
    return [
        (template_id_key(key, locale), sms_template(key, locale).provider_text(site))
        for locale in locales
        for key in sms_template_keys(locale)
    ]


def template_id_key(key: str, locale: str) -> str:
    """How settings name a template's provider id (``TIANBAO_SMS_TEMPLATE_IDS``): ``zh-CN/otp``."""
    return f"{locale}/{key}"

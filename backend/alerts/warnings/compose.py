"""What a warning says to farmers, as broadcast content: the common text per locale (the official
headline, area, validity and the hazard's advice), a section per subject group holding its advice
(R-DIS-1), the SMS template, and the "report a loss" button carrying the warning (pure but for the
product list it is given).

Sections are keyed as the broadcasts domain matches them (a product code or a product category): a
category whose products all share one advice group is one section (``crop``, ``facility``,
``liability``); a category that mixes groups (``index``: bananas and fruit trees; ``livestock``: pigs and
poultry) gets a section per product code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from backend.alerts.warnings.advice import subject_group
from backend.alerts.warnings.models import CapWarning
from backend.broadcasts.schemas import BroadcastContent, ButtonSpec, LocaleContent, Part, SmsPart
from backend.chat_actions import warning_report_button
from messages import LOCALES, MessageNotFound, label, local_time

MAX_SECTIONS = 16
SMS_EVENT_CHARS = 12
INSTRUCTION_CHARS = 300  # the official "what to do", cut short: the chat message stays readable  # a "text" SMS variable (messages/sms.py VARIABLE_LIMITS)


@dataclass(frozen=True)
class ProductRef:
    code: str
    category: str
    kind: str


def section_groups(products: Sequence[ProductRef]) -> dict[str, str]:
    """Section key (category or product code) -> advice group, for every product some advice concerns."""
    by_category: dict[str, dict[str, str]] = defaultdict(dict)
    for product in products:
        group = subject_group(code=product.code, category=product.category, kind=product.kind)
        if group is not None:
            by_category[product.category][product.code] = group
    keys: dict[str, str] = {}
    for category, groups in sorted(by_category.items()):
        if len(set(groups.values())) == 1:
            keys[category] = next(iter(groups.values()))
        else:
            keys.update(sorted(groups.items()))
    return dict(list(keys.items())[:MAX_SECTIONS])


def _label(key: str, locale: str) -> str | None:
    try:
        return label(f"warnings.{key}", locale)
    except MessageNotFound:
        return None


def sections(hazard: str, groups: dict[str, str], locale: str) -> dict[str, Part]:
    """Each section's advice for ``hazard``; a group the hazard has no words for gets no section."""
    found: dict[str, Part] = {}
    for key, group in groups.items():
        text = _label(f"advice_{hazard}_{group}", locale)
        if text:
            found[key] = Part(text=text)
    return found


def _facts(warning: CapWarning, locale: str, update: bool) -> dict[str, object]:
    return {
        "update": update,
        "hazard": label(f"warnings.hazard_{warning.hazard}", locale),
        "severity": _label(f"severity_{warning.severity}", locale) or "",
        "sender_name": warning.sender_name or warning.sender,
        "headline": warning.headline or warning.event,
        "area": warning.area_desc or "-",
        "instruction": _short(warning.instruction, INSTRUCTION_CHARS),
        # Rendered now: the content is stored as JSON, and a reader's time is the setting's zone.
        "expires_at": local_time(warning.expires) if warning.expires else "",
    }


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sms_event(warning: CapWarning, locale: str) -> str:
    return label(f"warnings.hazard_{warning.hazard}", locale)[:SMS_EVENT_CHARS]


def _report_button(warning: CapWarning) -> list[list[ButtonSpec]]:
    labels = {locale: label("warnings.report_button", locale) for locale in LOCALES}
    return [[ButtonSpec(label=labels, callback_data=warning_report_button(warning.id or 0))]]


def warning_content(warning: CapWarning, groups: dict[str, str], *, update: bool = False) -> BroadcastContent:
    locales = {}
    for locale in LOCALES:
        locales[locale] = LocaleContent(
            chat=Part(
                template="warnings/warning",
                params={
                    "w": _facts(warning, locale, update),
                    "advice": label(f"warnings.advice_{warning.hazard}", locale),
                    "after_loss": label("warnings.after_loss", locale),
                },
            ),
            sections=sections(warning.hazard, groups, locale),
            sms=SmsPart(template="cap_warning", params={"event": _sms_event(warning, locale)}),
        )
    return BroadcastContent(locales=locales, buttons=_report_button(warning))


def all_clear_content(warning: CapWarning) -> BroadcastContent:
    locales = {
        locale: LocaleContent(
            chat=Part(template="warnings/all_clear", params={"w": _facts(warning, locale, False)}),
            sms=SmsPart(template="cap_all_clear", params={"event": _sms_event(warning, locale)}),
        )
        for locale in LOCALES
    }
    return BroadcastContent(locales=locales, buttons=_report_button(warning))


def invite_content(warning: CapWarning) -> BroadcastContent:
    locales = {
        locale: LocaleContent(
            chat=Part(template="warnings/invite", params={"w": _facts(warning, locale, False)}),
            sms=SmsPart(template="cap_invite", params={"event": _sms_event(warning, locale)}),
        )
        for locale in LOCALES
    }
    return BroadcastContent(locales=locales, buttons=_report_button(warning))

"""R-DIS-1 risk reminders: which hazard a warning is, and what each insured should do for what they insure
(pure; the texts are ``messages/<locale>/warnings/labels.json``: ``advice_<hazard>`` for everyone and
``advice_<hazard>_<group>`` for the holders of a subject group).

Hazard: the first of ``HAZARD_WORDS`` whose words occur in the ``event``, the ``eventCode`` values or the
headline (Chinese and English words; US SAME codes such as HUW, FFW). Order matters: a "Hurricane Warning"
speaks of wind and is a typhoon; "Tropical Storm" too; "Winter Storm" is cold, not gale; hail before
thunderstorm. Nothing matched: ``other`` (general advice only).

Subject group: from the product (``category`` and ``code`` of the seed catalogue, ``kind`` liability):
field crops, bananas (own advice: prop the plants), fruit trees, greenhouses, livestock, poultry,
aquaculture (no product of the catalogue yet; any product whose category or code names fish, shrimp or
aquaculture), and enterprises (work-safety liability).
"""

from __future__ import annotations

from collections.abc import Iterable

from backend.alerts.warnings.cap import Info

HAZARDS: tuple[str, ...] = ("typhoon", "rainstorm", "cold", "gale", "heat", "hail", "earthquake", "other")
GROUPS: tuple[str, ...] = (
    "field_crop",
    "banana",
    "fruit_tree",
    "greenhouse",
    "livestock",
    "poultry",
    "aquaculture",
    "enterprise",
)

HAZARD_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "typhoon",
        (
            "台风",
            "颱風",
            "热带风暴",
            "热带气旋",
            "typhoon",
            "hurricane",
            "tropical storm",
            "tropical cyclone",
            "cyclone",
            "huw",
            "hua",
            "trw",
            "tra",
            "hls",
        ),
    ),
    ("hail", ("冰雹", "hail")),
    ("earthquake", ("地震", "海啸", "earthquake", "seismic", "tsunami", "eqw", "tsw")),
    (
        "cold",
        (
            "寒潮",
            "低温",
            "霜冻",
            "冰冻",
            "结冰",
            "暴雪",
            "雪灾",
            "寒冷",
            "frost",
            "freeze",
            "cold",
            "snow",
            "blizzard",
            "winter storm",
            "ice storm",
            "wsw",
            "bzw",
            "fzw",
        ),
    ),
    ("heat", ("高温", "干旱", "热浪", "heat", "drought", "ehw")),
    (
        "rainstorm",
        (
            "暴雨",
            "洪水",
            "洪涝",
            "山洪",
            "内涝",
            "渍涝",
            "强降雨",
            "rainstorm",
            "heavy rain",
            "flood",
            "rain",
            "ffw",
            "flw",
            "ffa",
            "fla",
        ),
    ),
    (
        "gale",
        (
            "大风",
            "强风",
            "雷雨大风",
            "雷电",
            "龙卷",
            "gale",
            "wind",
            "thunderstorm",
            "tornado",
            "squall",
            "hww",
            "svr",
            "tor",
        ),
    ),
)

# The claim cause (backend/claims/rules.py) a hazard's disaster event is opened with.
EVENT_CAUSE: dict[str, str] = {
    "typhoon": "typhoon",
    "rainstorm": "heavy_rain",
    "cold": "low_temperature",
    "gale": "other",
    "heat": "drought",
    "hail": "hail",
    "earthquake": "other",
    "other": "other",
}

_FRUIT = frozenset({"lychee", "longan", "citrus", "papaya", "mango", "apple", "pear", "grape", "tea"})
_POULTRY = frozenset({"poultry", "chicken", "duck", "goose"})
_AQUA_WORDS = ("aqua", "fish", "shrimp", "crab", "oyster")


def _words(info: Info) -> str:
    codes = " ".join(value for _, value in info.event_codes)
    return f" {info.event} {codes} {info.headline} ".lower()


def _has(text: str, word: str) -> bool:
    """A Chinese word anywhere; a Latin word or code as a whole word (``tra`` is not in "extra")."""
    if not word.isascii():
        return word in text
    cleaned = "".join(ch if ch.isalnum() else " " for ch in text)
    return f" {word} " in f" {cleaned} " if " " not in word else word in " ".join(cleaned.split())


def hazard_of(info: Info | None) -> str:
    if info is None:
        return "other"
    text = _words(info)
    for hazard, words in HAZARD_WORDS:
        if any(_has(text, word) for word in words):
            return hazard
    return "other"


def subject_group(*, code: str, category: str, kind: str = "agricultural") -> str | None:
    """The advice group of a product, or None for one that no advice concerns."""
    code, category = code.lower(), category.lower()
    if kind == "liability" or category == "liability":
        return "enterprise"
    if category == "aquaculture" or any(word in code or word in category for word in _AQUA_WORDS):
        return "aquaculture"
    if code == "banana":
        return "banana"
    if code in _FRUIT:
        return "fruit_tree"
    if category == "facility" or "greenhouse" in code:
        return "greenhouse"
    if code in _POULTRY:
        return "poultry"
    if category == "livestock":
        return "livestock"
    if category in ("crop", "index"):
        return "field_crop"
    return None


def advice_keys(hazard: str, groups: Iterable[str]) -> list[str]:
    """The label keys of what a holder of ``groups`` reads: the hazard's own, then each group's (in
    ``GROUPS`` order, those that exist: not every hazard has words for every group)."""
    wanted = set(groups)
    return [f"advice_{hazard}"] + [f"advice_{hazard}_{g}" for g in GROUPS if g in wanted]

"""CAP 1.2 documents: parsed safely, validated against the OASIS schema, read into plain values (pure).

Safety first: ``defusedxml`` parses with no DTD at all (so no entity can be declared, expanded or
fetched: billion laughs and XXE are refused before anything is read), then ``xmlschema`` validates the
tree against ``backend/data/CAP-v1.2.xsd``. The schema cannot say everything the standard says, so the
rules of CAP 1.2 section 3 that it leaves out are checked here too (an Update or Cancel names the messages
it refers to; polygons close; a circle has a radius); each refusal carries its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from xml.etree.ElementTree import Element

import xmlschema
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

NS = "urn:oasis:names:tc:emergency:cap:1.2"
XSD = Path(__file__).resolve().parents[2] / "data" / "CAP-v1.2.xsd"
MAX_DOCUMENT_BYTES = 1024 * 1024  # the largest real CAP messages are tens of KB
_Q = "{" + NS + "}"

# Message types that point at earlier messages (CAP 1.2 3.2.1 "references": required for these).
REFERRING_TYPES = frozenset({"Update", "Cancel", "Ack", "Error"})
# Statuses that never reach farmers: stored and shown to staff only.
NOT_FOR_FARMERS = frozenset({"Test", "Exercise", "Draft", "System"})
# 3.2.1: identifier and sender must not contain spaces, commas or restricted characters (< and &).
_TOKEN = re.compile(r"^[^\s,<&]+$")


class CapRefused(Exception):
    """A document refused: ``code`` names the text (``cap_not_xml``, ``cap_unsafe``, ``cap_invalid``),
    ``reason`` says what is wrong and ``path`` where."""

    def __init__(self, code: str, reason: str, path: str = "") -> None:
        super().__init__(f"{code}: {reason} {path}".strip())
        self.code = code
        self.reason = reason
        self.path = path


@dataclass(frozen=True)
class Reference:
    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class Area:
    desc: str
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)  # (lat, lon) as CAP writes
    circles: list[tuple[float, float, float]] = field(default_factory=list)  # (lat, lon, radius km)
    geocodes: list[tuple[str, str]] = field(default_factory=list)  # (valueName, value)


@dataclass(frozen=True)
class Info:
    language: str
    categories: list[str]
    event: str
    urgency: str
    severity: str
    certainty: str
    event_codes: list[tuple[str, str]]
    effective: datetime | None
    onset: datetime | None
    expires: datetime | None
    sender_name: str
    headline: str
    description: str
    instruction: str
    web: str
    areas: list[Area]


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: list[Reference]
    infos: list[Info]
    note: str = ""

    @property
    def for_farmers(self) -> bool:
        """Test, Exercise, Draft (and System) messages are kept from farmers whatever they say."""
        return self.status not in NOT_FOR_FARMERS


@lru_cache(maxsize=1)
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def parse(data: bytes) -> CapAlert:
    """The alert in ``data``, or :class:`CapRefused` with the reason."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise CapRefused("cap_too_large", f"{len(data)} bytes, at most {MAX_DOCUMENT_BYTES}")
    root = _safe_tree(data)
    error = next(iter(schema().iter_errors(root)), None)
    if error is not None:
        raise CapRefused("cap_invalid", _reason(error), (error.path or "").replace(_Q, ""))
    return _alert(root)


def _safe_tree(data: bytes) -> Element:
    try:
        # No DTD at all: a CAP message never needs one, and refusing it refuses every entity trick.
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise CapRefused("cap_unsafe", type(exc).__name__ + ": DTDs and entities are not accepted") from exc
    except ParseError as exc:
        raise CapRefused("cap_not_xml", str(exc)) from exc
    except ValueError as exc:  # e.g. an encoding the parser does not know
        raise CapRefused("cap_not_xml", str(exc)) from exc


def _reason(error: xmlschema.XMLSchemaValidationError) -> str:
    reason = " ".join((error.reason or str(error.message)).split())
    if isinstance(error.obj, str):  # a value refused: say which
        reason = f"{error.obj[:60]!r}: {reason}"
    return reason[:300]


def _text(node: Element, name: str) -> str:
    child = node.find(_Q + name)
    return " ".join((child.text or "").split()) if child is not None else ""


def _long_text(node: Element, name: str) -> str:
    """Description and instruction keep their line breaks (a forecast is written in lines)."""
    child = node.find(_Q + name)
    return (child.text or "").strip() if child is not None else ""


def _all(node: Element, name: str) -> list[Element]:
    return node.findall(_Q + name)


def _time(value: str, path: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CapRefused("cap_invalid", f"not a date and time: {value!r}", path) from exc
    if moment.tzinfo is None:  # the schema's pattern requires an offset; be sure anyway
        raise CapRefused("cap_invalid", f"a time without its offset: {value!r}", path)
    return moment


def _optional_time(node: Element, name: str, path: str) -> datetime | None:
    value = _text(node, name)
    return _time(value, f"{path}/{name}") if value else None


def _pairs(node: Element, name: str) -> list[tuple[str, str]]:
    return [(_text(item, "valueName"), _text(item, "value")) for item in _all(node, name)]


def _alert(root: Element) -> CapAlert:
    identifier, sender = _text(root, "identifier"), _text(root, "sender")
    for name, value in (("identifier", identifier), ("sender", sender)):
        if not _TOKEN.match(value):
            raise CapRefused(
                "cap_invalid", f"{name} must not be empty nor hold spaces or commas", f"/alert/{name}"
            )
    msg_type, scope = _text(root, "msgType"), _text(root, "scope")
    references = _references(_text(root, "references"), msg_type)
    if scope == "Restricted" and not _text(root, "restriction"):
        raise CapRefused("cap_invalid", "scope Restricted needs a restriction", "/alert/restriction")
    if scope == "Private" and not _text(root, "addresses"):
        raise CapRefused("cap_invalid", "scope Private needs addresses", "/alert/addresses")
    infos = [_info(node, f"/alert/info[{n}]") for n, node in enumerate(_all(root, "info"), start=1)]
    return CapAlert(
        identifier=identifier,
        sender=sender,
        sent=_time(_text(root, "sent"), "/alert/sent"),
        status=_text(root, "status"),
        msg_type=msg_type,
        scope=scope,
        references=references,
        infos=infos,
        note=_text(root, "note"),
    )


def _references(value: str, msg_type: str) -> list[Reference]:
    """3.2.1: "sender,identifier,sent" triples separated by spaces; required by Update, Cancel, Ack, Error."""
    references = []
    for item in value.split():
        parts = item.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapRefused(
                "cap_invalid", f"a reference is sender,identifier,sent: {item!r}", "/alert/references"
            )
        references.append(Reference(parts[0], parts[1], _time(parts[2], "/alert/references")))
    if msg_type in REFERRING_TYPES and not references:
        raise CapRefused(
            "cap_invalid",
            f"msgType {msg_type} must name the messages it refers to in references",
            "/alert/references",
        )
    return references


def _info(node: Element, path: str) -> Info:
    return Info(
        language=_text(node, "language") or "en-US",  # 3.2.2: the default is en-US
        categories=[" ".join((c.text or "").split()) for c in _all(node, "category")],
        event=_text(node, "event"),
        urgency=_text(node, "urgency"),
        severity=_text(node, "severity"),
        certainty=_text(node, "certainty"),
        event_codes=_pairs(node, "eventCode"),
        effective=_optional_time(node, "effective", path),
        onset=_optional_time(node, "onset", path),
        expires=_optional_time(node, "expires", path),
        sender_name=_text(node, "senderName"),
        headline=_text(node, "headline"),
        description=_long_text(node, "description"),
        instruction=_long_text(node, "instruction"),
        web=_text(node, "web"),
        areas=[_area(area, f"{path}/area[{n}]") for n, area in enumerate(_all(node, "area"), start=1)],
    )


def _area(node: Element, path: str) -> Area:
    polygons = [_polygon(p.text or "", f"{path}/polygon") for p in _all(node, "polygon")]
    circles = [_circle(c.text or "", f"{path}/circle") for c in _all(node, "circle")]
    return Area(
        desc=_text(node, "areaDesc"), polygons=polygons, circles=circles, geocodes=_pairs(node, "geocode")
    )


def _point(text: str, path: str) -> tuple[float, float]:
    """A WGS 84 "lat,lon" pair (CAP writes latitude first, unlike GeoJSON)."""
    try:
        lat_text, lon_text = text.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError as exc:
        raise CapRefused("cap_invalid", f"a point is latitude,longitude: {text!r}", path) from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapRefused("cap_invalid", f"a point outside the earth's coordinates: {text!r}", path)
    return lat, lon


def _polygon(text: str, path: str) -> list[tuple[float, float]]:
    """3.3.2: at least four pairs, the first and the last the same."""
    points = [_point(pair, path) for pair in text.split()]
    if len(points) < 4 or points[0] != points[-1]:
        raise CapRefused("cap_invalid", "a polygon has at least 4 points and ends where it began", path)
    return points


def _circle(text: str, path: str) -> tuple[float, float, float]:
    """3.3.2: "lat,lon radius", the radius in kilometres."""
    parts = text.split()
    if len(parts) != 2:
        raise CapRefused("cap_invalid", f"a circle is 'latitude,longitude radius': {text!r}", path)
    lat, lon = _point(parts[0], path)
    try:
        radius = float(parts[1])
    except ValueError as exc:
        raise CapRefused("cap_invalid", f"a circle's radius is a number of km: {parts[1]!r}", path) from exc
    if not 0 <= radius <= 5000:
        raise CapRefused("cap_invalid", f"a circle's radius of {radius} km", path)
    return lat, lon, radius


# --- which <info> block a farmer reads ------------------------------------------------------------------


def _language_rank(tag: str) -> int:
    """0 zh-CN (simplified), 1 other Chinese (zh-TW, zh-HK, plain zh), 2 English of any region, 3 others."""
    tag = tag.strip().lower().replace("_", "-")
    if tag in ("zh-cn", "zh-hans", "zh-hans-cn"):
        return 0
    if tag == "zh" or tag.startswith("zh-"):
        return 1
    if tag == "en" or tag.startswith("en-"):
        return 2
    return 3


def pick_info(infos: list[Info]) -> Info | None:
    """zh-CN first, then zh-TW / zh, then English, else the first block (document order breaks ties)."""
    if not infos:
        return None
    return min(enumerate(infos), key=lambda pair: (_language_rank(pair[1].language), pair[0]))[1]


def english_info(infos: list[Info]) -> Info | None:
    """The block an English-speaking recipient reads: English when present, else the chosen one."""
    english = [info for info in infos if _language_rank(info.language) == 2]
    return english[0] if english else pick_info(infos)

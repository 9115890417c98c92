"""CAP 1.2 documents read safely (pure): every shared sample, the invalid one refused with its reason,
XXE and billion laughs refused, language choice, geocodes, polygons and circles, and R-DIS-1 advice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import Point, shape

from backend.alerts.warnings import cap, geo
from backend.alerts.warnings.advice import GROUPS, HAZARDS, advice_keys, hazard_of, subject_group
from backend.alerts.warnings.cap import Area, CapRefused, Info
from messages import LOCALES, labels_for

DATA = Path(__file__).resolve().parents[1] / "data" / "cap"
VALID = sorted(p.name for p in DATA.glob("*.xml") if "INVALID" not in p.name)


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def cap_xml(
    *,
    identifier: str = "CN-TEST-1",
    sent: str = "2026-12-04T08:00:00+08:00",
    status: str = "Actual",
    msg_type: str = "Alert",
    references: str | None = None,
    infos: str | None = None,
) -> bytes:
    """A small valid CAP 1.2 message; the tests change what they look at."""
    refs = f"<references>{references}</references>" if references is not None else ""
    info = infos if infos is not None else info_xml()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
        f"<identifier>{identifier}</identifier><sender>gd-weather@cma.cn</sender><sent>{sent}</sent>"
        f"<status>{status}</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}{info}</alert>"
    ).encode()


def info_xml(
    *,
    language: str = "zh-CN",
    event: str = "台风",
    severity: str = "Severe",
    urgency: str = "Expected",
    expires: str = "2099-12-05T20:00:00+08:00",
    headline: str = "广东省气象台发布台风橙色预警",
    area: str = "<areaDesc>湛江市</areaDesc><geocode><valueName>ADCODE</valueName><value>440800</value></geocode>",
) -> str:
    return (
        f"<info><language>{language}</language><category>Met</category><event>{event}</event>"
        f"<urgency>{urgency}</urgency><severity>{severity}</severity><certainty>Likely</certainty>"
        f"<expires>{expires}</expires><senderName>广东省气象台</senderName><headline>{headline}</headline>"
        f"<description>台风将于今晚登陆。</description><area>{area}</area></info>"
    )


@pytest.mark.parametrize("name", VALID)
def test_every_valid_shared_sample_parses(name: str) -> None:
    alert = cap.parse(read(name))
    assert alert.identifier and alert.sender and alert.sent.tzinfo is not None
    assert alert.msg_type in ("Alert", "Update", "Cancel")


def test_the_invalid_sample_is_refused_with_its_reason() -> None:
    """14_INVALID: an Update with an empty <references/>: the schema allows an empty string, CAP 1.2
    (3.2.1) requires the messages it refers to."""
    with pytest.raises(CapRefused) as refused:
        cap.parse(read("14_INVALID_canada_errors.xml"))
    assert refused.value.code == "cap_invalid"
    assert "references" in refused.value.reason and "Update" in refused.value.reason
    assert refused.value.path == "/alert/references"


def test_schema_errors_name_the_element() -> None:
    bad = cap_xml(status="Maybe")
    with pytest.raises(CapRefused) as refused:
        cap.parse(bad)
    assert refused.value.code == "cap_invalid"
    assert "status" in refused.value.path and "Maybe" in refused.value.reason


def test_what_is_not_xml_is_refused() -> None:
    with pytest.raises(CapRefused) as refused:
        cap.parse(b"<alert><unclosed>")
    assert refused.value.code == "cap_not_xml"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol4;</identifier></alert>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&secret;</identifier></alert>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://127.0.0.1:9/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>"""


@pytest.mark.parametrize(
    "document", [BILLION_LAUGHS, XXE, EXTERNAL_DTD], ids=["billion-laughs", "xxe", "dtd"]
)
def test_entities_and_dtds_are_refused_before_anything_is_read(document: bytes) -> None:
    with pytest.raises(CapRefused) as refused:
        cap.parse(document)
    assert refused.value.code == "cap_unsafe"
    assert "passwd" not in str(refused.value) and "lollol" not in str(refused.value)


def test_cap_rules_the_schema_leaves_out() -> None:
    with pytest.raises(CapRefused, match="sender,identifier,sent"):
        cap.parse(cap_xml(msg_type="Cancel", references="only-two,parts"))
    with pytest.raises(CapRefused, match="polygon"):
        cap.parse(
            cap_xml(infos=info_xml(area="<areaDesc>x</areaDesc><polygon>23,113 23,114 23,113</polygon>"))
        )
    with pytest.raises(CapRefused, match="circle"):
        cap.parse(cap_xml(infos=info_xml(area="<areaDesc>x</areaDesc><circle>23.1,113.2</circle>")))
    with pytest.raises(CapRefused, match="spaces"):
        cap.parse(cap_xml(identifier="two words"))


def test_references_update_cancel_and_the_signed_cancel() -> None:
    update = cap.parse(read("03_oasis_A3_earthquake_update_circle.xml"))
    assert update.msg_type == "Update"
    assert update.references == [
        cap.Reference("trinet@caltech.edu", "TRI13970876.1", datetime(2003, 6, 12, 3, 30, tzinfo=UTC))
    ]
    cancel = cap.parse(read("11_ipaws_cancel_no_info_signed.xml"))  # an XML signature, no <info>
    assert cancel.msg_type == "Cancel" and cancel.infos == [] and len(cancel.references) == 1
    hurricane = cap.parse(read("05_noaa_hurricane_warning_update_extreme_2polygons.xml"))
    assert len(hurricane.references) == 8
    assert (hurricane.infos[0].severity, hurricane.infos[0].urgency) == ("Extreme", "Immediate")


def _info(language: str) -> Info:
    base = cap.parse(cap_xml()).infos[0]
    return replace(base, language=language, headline=language)


@pytest.mark.parametrize(
    ("languages", "chosen"),
    [
        (["en-US", "zh-TW", "zh-CN"], "zh-CN"),
        (["en-US", "zh-TW"], "zh-TW"),
        (["en-GB", "zh"], "zh"),
        (["is-IS", "en-US"], "en-US"),
        (["is-IS", "fr-CA"], "is-IS"),
        (["zh-Hans", "en"], "zh-Hans"),
    ],
)
def test_the_language_farmers_read(languages: list[str], chosen: str) -> None:
    picked = cap.pick_info([_info(language) for language in languages])
    assert picked is not None and picked.headline == chosen


def test_iceland_sample_picks_english_over_icelandic() -> None:
    alert = cap.parse(read("07_iceland_imo_wind_moderate_polygon.xml"))
    info = cap.pick_info(alert.infos)
    assert info is not None and info.language == "en-US" and info.headline == "Southeast gales"
    assert cap.pick_info([]) is None


def test_test_exercise_draft_are_not_for_farmers() -> None:
    for status in ("Test", "Exercise", "Draft", "System"):
        assert not cap.parse(cap_xml(status=status)).for_farmers
    assert cap.parse(cap_xml()).for_farmers


# --- areas ---------------------------------------------------------------------------------------------


def test_geocodes_that_are_division_codes_become_region_codes() -> None:
    area = Area(
        desc="x",
        geocodes=[
            ("ADCODE", "440800"),
            ("行政区划代码", "440882105"),
            ("admin_code", "440883100200"),
            ("GB/T 2260", "450000"),
            ("SAME", "006109"),  # a US FIPS county: not ours, whatever its six digits
            ("ADCODE", "4408"),  # not 6, 9 or 12 digits
            ("profile:CAP-CP:Location:0.3", "3537064"),
        ],
    )
    assert geo.region_codes([area]) == ["440800000000", "440882105000", "440883100200", "450000000000"]


def test_the_thunderstorm_sample_geocodes_are_same_codes_and_match_no_region() -> None:
    alert = cap.parse(read("02_oasis_A2_severe_thunderstorm_polygon_geocode.xml"))
    areas = [a for info in alert.infos for a in info.areas]
    assert geo.region_codes(areas) == []
    assert geo.area_geometry(areas) is not None


def test_polygon_points_are_swapped_to_lon_lat() -> None:
    """CAP writes "lat,lon": the Sacramento storm polygon lies at lon -120, lat 38.5, not the reverse."""
    alert = cap.parse(read("02_oasis_A2_severe_thunderstorm_polygon_geocode.xml"))
    shape_ = geo.area_geometry([a for info in alert.infos for a in info.areas])
    assert shape_ is not None
    assert shape_.contains(Point(-119.95, 38.48))
    assert not shape_.contains(Point(38.48, -119.95))


def test_circle_becomes_a_polygon_of_its_radius_in_km() -> None:
    lat, lon = 21.27, 110.36  # 湛江
    disc = geo.circle_polygon(lat, lon, 10.0)
    east_9km = lon + 9 / (111.32 * 0.9319)  # cos(21.27°) ≈ 0.9319
    east_11km = lon + 11 / (111.32 * 0.9319)
    assert disc.contains(Point(lon, lat)) and disc.contains(Point(east_9km, lat))
    assert not disc.contains(Point(east_11km, lat))
    assert disc.contains(Point(lon, lat + 9 / 111.32)) and not disc.contains(Point(lon, lat + 11 / 111.32))


def test_the_epicentre_circle_of_radius_zero_is_still_an_area() -> None:
    alert = cap.parse(read("03_oasis_A3_earthquake_update_circle.xml"))
    shape_ = geo.area_geometry([a for info in alert.infos for a in info.areas])
    assert shape_ is not None and shape_.contains(Point(-115.5527, 32.9525))
    gj = geo.geojson(shape_)
    assert gj is not None and gj["type"] == "Polygon" and shape(gj).area > 0


def test_two_polygons_make_one_multipolygon() -> None:
    alert = cap.parse(read("05_noaa_hurricane_warning_update_extreme_2polygons.xml"))
    gj = geo.geojson(geo.area_geometry([a for info in alert.infos for a in info.areas]))
    assert gj is not None and gj["type"] in ("Polygon", "MultiPolygon")
    assert geo.geojson(None) is None


# --- R-DIS-1: advice by event and by what is insured ---------------------------------------------------


def test_r_dis_1_hazard_of_real_and_chinese_events() -> None:
    def hazard(event: str, codes: list[tuple[str, str]] | None = None, headline: str = "") -> str:
        base = cap.parse(cap_xml()).infos[0]
        return hazard_of(replace(base, event=event, event_codes=codes or [], headline=headline))

    samples = {name: cap.parse(read(name)) for name in VALID}
    assert (
        hazard_of(cap.pick_info(samples["05_noaa_hurricane_warning_update_extreme_2polygons.xml"].infos))
        == "typhoon"
    )
    assert (
        hazard_of(cap.pick_info(samples["02_oasis_A2_severe_thunderstorm_polygon_geocode.xml"].infos))
        == "gale"
    )
    assert hazard_of(cap.pick_info(samples["07_iceland_imo_wind_moderate_polygon.xml"].infos)) == "gale"
    assert hazard_of(cap.pick_info(samples["03_oasis_A3_earthquake_update_circle.xml"].infos)) == "earthquake"
    assert hazard_of(cap.pick_info(samples["01_oasis_A1_homeland_security_alert.xml"].infos)) == "other"
    assert hazard("台风") == "typhoon"
    assert hazard("暴雨") == "rainstorm" and hazard("Flash Flood Warning") == "rainstorm"
    assert hazard("寒潮") == "cold" and hazard("霜冻") == "cold" and hazard("Winter Storm Warning") == "cold"
    assert hazard("大风") == "gale" and hazard("雷雨大风") == "gale"
    assert hazard("高温") == "heat" and hazard("干旱") == "heat"
    assert hazard("冰雹") == "hail" and hazard("Severe Thunderstorm", headline="large hail") == "hail"
    assert hazard("地震") == "earthquake"
    assert hazard("Tropical Storm Warning") == "typhoon"
    assert hazard("Special Weather Statement", [("SAME", "HUW")]) == "typhoon"
    assert hazard("extra statement") == "other"  # "tra" (a SAME code) only as a whole word
    assert hazard_of(None) == "other"


def test_r_dis_1_subject_groups_of_the_catalogue() -> None:
    assert subject_group(code="rice", category="crop") == "field_crop"
    assert subject_group(code="sugarcane", category="crop") == "field_crop"
    assert subject_group(code="banana", category="index") == "banana"
    assert subject_group(code="lychee", category="index") == "fruit_tree"
    assert subject_group(code="greenhouse", category="facility") == "greenhouse"
    assert subject_group(code="sow", category="livestock") == "livestock"
    assert subject_group(code="poultry", category="livestock") == "poultry"
    assert subject_group(code="shrimp_pond", category="aquaculture") == "aquaculture"
    assert subject_group(code="work_safety_liability", category="liability", kind="liability") == "enterprise"


@pytest.mark.parametrize("locale", LOCALES)
def test_r_dis_1_every_hazard_has_advice_and_every_named_pair_is_written(locale: str) -> None:
    labels = labels_for("warnings", locale)
    for hazard in HAZARDS:
        assert labels[f"advice_{hazard}"].strip()
        assert labels[f"hazard_{hazard}"].strip()
    # The examples, each in plain words for what the farmer insures.
    assert ("香蕉" if locale == "zh-CN" else "banana") in labels["advice_typhoon_banana"].lower()
    assert ("大棚" if locale == "zh-CN" else "greenhouse") in labels["advice_typhoon_greenhouse"].lower()
    assert ("盖" if locale == "zh-CN" else "cover") in labels["advice_cold_field_crop"].lower()
    assert ("高" if locale == "zh-CN" else "higher ground") in labels["advice_rainstorm_livestock"]
    assert ("栏舍" if locale == "zh-CN" else "pens") in labels["advice_gale_livestock"]
    for hazard in HAZARDS[:-2]:  # every weather hazard speaks to every group
        for group in GROUPS:
            assert labels[f"advice_{hazard}_{group}"].strip(), (hazard, group)
    assert advice_keys("typhoon", ["livestock", "banana"]) == [
        "advice_typhoon",
        "advice_typhoon_banana",
        "advice_typhoon_livestock",
    ]


def test_the_api_state_filter_names_every_state() -> None:
    from typing import get_args

    from backend.alerts.warnings.api import State
    from backend.alerts.warnings.models import WarningState

    assert set(get_args(State)) == {s.value for s in WarningState}


def test_feed_entries_of_rss_and_of_atom_with_an_embedded_alert() -> None:
    from defusedxml.ElementTree import fromstring

    from backend.alerts.warnings.feeds import _entries

    rss = fromstring(
        b"<rss version='2.0'><channel><title>t</title>"
        b"<item><title>a</title><link>https://x.example/cap/a.xml</link></item>"
        b"<item><title>no link</title></item></channel></rss>"
    )
    assert _entries(rss, "https://x.example/rss") == [("https://x.example/cap/a.xml", None)]
    atom = fromstring(
        b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><id>1</id>"
        b"<link rel='alternate' type='text/html' href='/page/1'/>"
        b"<link rel='related' type='application/cap+xml' href='/cap/1.xml'/>"
        b"<content type='text/xml'>" + cap_xml().split(b"?>", 1)[1] + b"</content></entry></feed>"
    )
    ((link, embedded),) = _entries(atom, "https://y.example/feed")
    assert link == "https://y.example/cap/1.xml"  # the CAP link before the page
    assert embedded is not None and cap.parse(embedded).identifier == "CN-TEST-1"

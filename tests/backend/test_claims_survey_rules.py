"""R-CLM-6 and R-CLM-8 as pure rules: which animals are large, and what the catalogue may say about it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from backend.claims import rules
from backend.products import service


def _catalogue_products() -> dict[str, dict[str, object]]:
    catalogue = service.read_catalogue()
    return {str(row["code"]): row for row in catalogue.products}


def test_r_clm_6_sows_and_cattle_are_large_animals_fattening_pigs_are_not() -> None:
    products = _catalogue_products()

    def large(code: str) -> bool:
        row = products[code]
        details = row["details"]
        assert isinstance(details, dict)
        return rules.is_large_animal(str(row["category"]), str(row["unit"]), details)

    assert large("sow") and large("dairy_cow")
    assert not large("pig") and not large("poultry") and not large("rice")
    # A fattening-pig product that says so counts.
    assert rules.is_large_animal("livestock", "head", {"large_animal": True})
    assert rules.joint_survey_needed("livestock", "head", Decimal(20), {"large_animal": True})
    assert not rules.joint_survey_needed("livestock", "head", Decimal(19), {"large_animal": True})
    assert not rules.joint_survey_needed("livestock", "head", Decimal(1000), {})


def test_r_clm_6_event_totals_add_up_each_measure_on_its_own() -> None:
    totals = rules.SurveyTotals()
    totals.add("crop", "mu", Decimal("60"), large_animal=False)
    totals.add("livestock", "head", Decimal("19"), large_animal=True)
    totals.add("livestock", "bird", Decimal("9999"), large_animal=False)
    totals.add("livestock", "head", Decimal("500"), large_animal=False)  # fattening pigs
    assert not totals.joint_survey  # 60 mu, 19 large animals, 9,999 birds: none reached
    totals.add("index", "mu", Decimal("40"), large_animal=False)
    assert totals.joint_survey and totals.crop_mu == Decimal(100)  # 100 mu: 以上 includes the number


@pytest.mark.parametrize(("code", "value"), [("rice", True), ("poultry", True), ("sow", "yes")])
def test_r_clm_6_catalogue_refuses_large_animal_on_anything_but_livestock_by_the_head(
    tmp_path: Path, code: str, value: object
) -> None:
    raw = json.loads(service.DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    product = next(p for p in raw["products"] if p["code"] == code)
    product["details"]["large_animal"] = value
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(service.CatalogueError, match="large"):
        service.read_catalogue(path)

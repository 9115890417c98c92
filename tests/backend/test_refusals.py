"""One refusal for the domain: every domain error is a ``Refusal``, answered by one handler, its text in
messages/ in both locales."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import httpx
import pytest

from backend.claims.reporting import ClaimError
from backend.enrollment.service import EnrollmentError
from backend.refusals import MESSAGE_DOMAINS, Refusal, refusal_message
from messages import LOCALES, labels_for
from tests.backend.test_enrollment_api import farmer_application, identity, submit

BACKEND = Path(__file__).resolve().parents[2] / "backend"
_RAISED = re.compile(r"raise\s+(\w*Error)\(\s*\"([a-z0-9_]+)\"")


def _refusal_classes() -> set[str]:
    """Every class in backend/ that derives from a Refusal (by name, following the subclass tree)."""
    names: set[str] = set()
    pending: list[type] = [Refusal]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


def _raised_codes() -> set[str]:
    for module in ("backend.claims.index.service", "backend.claims.catastrophe.service"):
        importlib.import_module(module)  # each defines a subclass of its own

    classes = _refusal_classes()
    codes: set[str] = set()
    for path in BACKEND.rglob("*.py"):
        codes |= {code for cls, code in _RAISED.findall(path.read_text(encoding="utf-8")) if cls in classes}
    return codes


def test_enrollment_and_claim_errors_are_refusals_with_their_constructors() -> None:
    enrollment = EnrollmentError("id_region", "", region="990101")
    claim = ClaimError("bad_status", status="reported")
    assert isinstance(enrollment, Refusal) and isinstance(claim, Refusal)
    assert (enrollment.code, enrollment.detail) == ("id_region", {"region": "990101"})
    assert (claim.code, claim.detail) == ("bad_status", {"status": "reported"})


@pytest.mark.parametrize("locale", LOCALES)
def test_every_refusal_code_raised_in_the_backend_has_a_text_in_both_locales(locale: str) -> None:
    known = set().union(*(labels_for(domain, locale) for domain in MESSAGE_DOMAINS))
    codes = _raised_codes()
    assert {"bad_status", "payee_other_insured", "id_region", "land_rights_evidence_missing"} <= codes
    assert sorted(codes - known) == []


def test_the_claims_texts_live_in_messages_not_in_python() -> None:
    from backend.claims import staff_api

    assert not hasattr(staff_api, "MESSAGES")
    assert (
        refusal_message("payee_other_insured", "en", {})
        == "never pay to another insured's account (R-CLM-12)"
    )
    assert refusal_message("payee_other_insured", "zh-CN", {}) == "不得支付到其他被保险人的账户（R-CLM-12）"
    assert refusal_message("id_region", "en", {"region": "990101"}).startswith(
        "The first six digits of the ID number (990101)"
    )


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("en-US,en;q=0.9", "The first six digits of the ID number (990101)"),
        ("zh-CN", "身份证号码前 6 位（990101）"),
    ],
)
async def test_one_handler_answers_a_refusal_in_the_callers_language(
    api: httpx.AsyncClient, service_headers: dict[str, str], accept_language: str, expected: str
) -> None:
    headers = await identity(api, service_headers, f"refusal-{accept_language[:2]}")
    body = farmer_application()
    body["farmer"]["id_number"] = "990101198001010014"
    refused = await submit(api, {**headers, "Accept-Language": accept_language}, body)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert detail["code"] == "id_region" and detail["detail"] == {"region": "990101"}
    assert detail["message"].startswith(expected)

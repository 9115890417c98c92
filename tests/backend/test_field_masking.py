"""Personal numbers staff see: every role against every staff read route, as ``FULL_FOR`` says (issue 11).

The table is ``backend/people/disclosure.py: FULL_FOR`` (copied in docs/operations.md). ``PLACES`` names
where each read route carries a number; there it must be whole for the roles of the table and masked for
the others. Anywhere else in any staff read answer, a role the table masks never sees the whole number.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from backend.db import Database
from backend.people.disclosure import FULL_FOR, Personal, mask, sees_full, shown
from tests.backend.test_access_table import (
    ROLES,
    World,
    _call,
    add_principals,
    expected,
    seed_world,
    staff_routes,
)
from tests.backend.test_enrollment_api import DEFAULT_PHONE
from tests.enroll_helpers import VALID_ID, own_numbers

ACCOUNT = "6228480012345678901"  # tests/backend/test_enrollment_api.py: farmer_application
SEEDED: dict[Personal, str] = {
    Personal.PHONE: DEFAULT_PHONE,  # the farmer's phone, the policy's and the claim's reporter
    Personal.ID_NUMBER: own_numbers("telegram:access-farmer")[0],  # submit() gives each account its own
    Personal.BANK_ACCOUNT: ACCOUNT,
}

# Where a read route shows a number: a path of keys into its JSON answer; ``("id", n)`` picks the row of
# a list whose id is the world's object.
Path = tuple[Any, ...]
PLACES: dict[str, dict[Path, Personal]] = {
    "GET /api/claims/{claim_id}": {("reporter_phone",): Personal.PHONE},
    "GET /api/callbacks/{callback_id}": {
        ("phone",): Personal.PHONE,
        ("payment", "account_number"): Personal.BANK_ACCOUNT,
    },
    "GET /api/policies/{policy_id}": {
        ("terms", "phone"): Personal.PHONE,
        ("terms", "bank_account"): Personal.BANK_ACCOUNT,
    },
    "GET /api/policies": {
        ("policy", "terms", "phone"): Personal.PHONE,
        ("policy", "terms", "bank_account"): Personal.BANK_ACCOUNT,
    },
    "GET /api/applications/{application_id}": {
        ("insured", "id_number"): Personal.ID_NUMBER,
        ("insured", "phone"): Personal.PHONE,
        ("insured", "bank_account"): Personal.BANK_ACCOUNT,
    },
}


def _at(answer: Any, path: Path, world: World) -> Any:
    for key in path:
        if key == "policy":  # the world's policy in a list of policies
            answer = next(row for row in answer if row["id"] == world.policy["id"])
        else:
            answer = answer[key]
    return answer


def test_the_table_gives_the_whole_number_to_the_roles_whose_work_needs_it() -> None:
    assert FULL_FOR[Personal.PHONE] >= {"adjuster"}  # who calls the farmer to arrange the survey
    assert FULL_FOR[Personal.BANK_ACCOUNT] >= {"underwriter"}  # who pays (R-CLM-12)
    assert FULL_FOR[Personal.ID_NUMBER] >= {"agent", "adjuster"}  # who verifies identity (R-ENR-7)
    assert all("viewer" not in roles for roles in FULL_FOR.values())
    assert all("admin" in roles for roles in FULL_FOR.values())
    assert mask(Personal.PHONE, "13812341234") == "138****1234"
    assert mask(Personal.ID_NUMBER, VALID_ID) == "1101**********002X"
    assert mask(Personal.BANK_ACCOUNT, ACCOUNT) == "6228***********8901"
    assert shown(Personal.PHONE, DEFAULT_PHONE, None) == mask(Personal.PHONE, DEFAULT_PHONE)  # the chat


async def test_every_staff_read_route_shows_numbers_whole_or_masked_as_the_table_says(
    api: httpx.AsyncClient,
    db: Database,
    app: FastAPI,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
) -> None:
    world = await seed_world(api, db, admin_headers, service_headers)
    await add_principals(world, ROLES, ("A",))
    wrong: list[str] = []
    for role in ROLES:
        reads = [r for r in staff_routes(app) if r.startswith("GET ") and expected(r, role, "A") == "allowed"]
        assert set(PLACES) <= set(reads)  # every role reads these
        for route in reads:
            wrong += await _check_read(world, route, role)
    assert not wrong, "\n".join(wrong)


async def _check_read(world: World, route: str, role: str) -> list[str]:
    call = await _call(route, world)
    response = await world.api.get(call.path, headers=world.headers[(role, "A")], params=call.params)
    assert response.status_code == 200, (route, response.text)
    if not response.headers["content-type"].startswith("application/json"):
        return []  # QR codes and files: no numbers as text
    wrong = []
    answer = response.json()
    for path, kind in PLACES.get(route, {}).items():
        want, got = shown(kind, SEEDED[kind], role), _at(answer, path, world)
        if got != want:
            wrong.append(f"{route} {'.'.join(map(str, path))} as {role}: {got} != {want}")
    for kind, value in SEEDED.items():
        if not sees_full(role, kind) and value in response.text:
            wrong.append(f"{route} shows the whole {kind} to {role}")
    return wrong


async def test_a_claim_action_answers_with_the_phone_as_the_actors_role_may_see_it(
    api: httpx.AsyncClient, db: Database, admin_headers: dict[str, str], service_headers: dict[str, str]
) -> None:
    """Actions answer with the claim as it stands: the same table applies to the actor."""
    world = await seed_world(api, db, admin_headers, service_headers)
    await add_principals(world, ("adjuster", "underwriter"))
    adjuster = world.headers[("adjuster", "A")]
    call = await _call("POST /api/claims/{claim_id}/survey-schedule", world)
    scheduled = await api.post(call.path, headers=adjuster, json=call.json)
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["claim"]["reporter_phone"] == DEFAULT_PHONE
    detail = await api.get(f"/api/claims/{world.claim_id}", headers=world.headers[("underwriter", "A")])
    assert detail.json()["reporter_phone"] == "138****5678"

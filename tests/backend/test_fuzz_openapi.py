"""A schema-driven fuzz of every operation of the published OpenAPI (schemathesis, in process over ASGI):
with a staff (admin) token and with the bot's service token, valid and invalid requests alike, no
operation answers a server error, a status it does not declare, or a body its schema does not describe.

Bounded and reproducible for CI: a few examples per operation and mode, derandomized (the same examples
on every run), no shrinking and no example database. To look harder locally:
``TIANBAO_FUZZ_EXAMPLES=50 pytest tests/backend/test_fuzz_openapi.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.app import create_app
from backend.settings import Settings
from tests.conftest import ADMIN_PASSWORD, SERVICE_TOKEN

EXAMPLES = int(os.environ.get("TIANBAO_FUZZ_EXAMPLES", "3"))
# The goal: no 5xx, no undeclared status, no undeclared media type, no body off its schema.
# (Not "every schema-valid request is accepted": a random id is rightly a 404, a rule's refusal a 422.)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def _examples(operation: Any, mode: GenerationMode, call: Callable[[Any], None]) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        call(case)

    run()


@pytest.mark.parametrize("caller", ["staff", "bot"])
def test_no_operation_answers_a_server_error_or_off_its_schema(settings: Settings, caller: str) -> None:
    started = time.monotonic()
    # Built in the test: schemathesis runs the app on its own event loop (one for the process).
    app = create_app(settings.model_copy(update={"gc_freeze_after_startup": False}))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    findings: list[str] = []
    with asgi.get_client(app) as client:  # type: ignore[arg-type]  # Starlette's ASGI types vs its own
        if caller == "staff":
            login = client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
        else:
            token = SERVICE_TOKEN
        headers = {"Authorization": f"Bearer {token}"}
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) > 50  # the whole API, not an empty schema

        def call(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        for operation in operations:
            for mode in MODES:
                try:
                    _examples(operation, mode, call)
                except hypothesis.errors.Unsatisfiable:
                    continue  # no invalid request exists (an operation without parameters)
                except BaseException as exc:  # schemathesis reports a group of failures
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    findings.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    elapsed = time.monotonic() - started
    assert not findings, f"{len(findings)} operations failed ({elapsed:.0f} s):\n\n" + "\n\n".join(findings)

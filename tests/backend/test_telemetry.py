"""FastAPI's native OpenTelemetry is off unless TIANBAO_TELEMETRY turns it on."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from backend.app import create_app
from backend.db import Database
from backend.settings import Settings


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """A real SDK provider, set globally as an operator's OpenTelemetry setup would (once a process)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another test set the global tracer provider first"
    return exporter


async def _get_health(settings: Settings, db: Database) -> None:
    app = create_app(settings, db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_requests_make_no_spans_by_default(
    spans: InMemorySpanExporter, settings: Settings, db: Database
) -> None:
    spans.clear()
    assert settings.telemetry is False
    await _get_health(settings, db)
    assert spans.get_finished_spans() == ()


async def test_telemetry_on_traces_each_request(
    spans: InMemorySpanExporter, settings: Settings, db: Database
) -> None:
    spans.clear()
    await _get_health(settings.model_copy(update={"telemetry": True}), db)
    names = [span.name for span in spans.get_finished_spans()]
    assert "GET /healthz" in names, names

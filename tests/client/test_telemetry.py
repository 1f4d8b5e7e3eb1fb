"""OpenTelemetry: a client span per call with each attempt, HTTP metrics, the limiter's gauges,
nothing emitted without a provider, and no credential, token or identity in any attribute."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN
from helpers.subprocesses import without_modules
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from verify_access_tokens import NotFoundError, OutcomeUnknownError
from verify_access_tokens._http._compat import is_meter_provider_set
from verify_access_tokens.emulator import Faults, VerifyEmulator

IDENTITY = "user-00000001"


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider, spans
    provider.shutdown()


@pytest.fixture
def reader() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    metric_reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[metric_reader])
    yield provider, metric_reader
    provider.shutdown()


def metrics_by_name(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


async def test_a_create_with_a_429_retry_is_one_client_span_with_each_attempt(
    verify_emulator: VerifyEmulator,
    exporter: tuple[TracerProvider, InMemorySpanExporter],
    reader: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    verify_emulator.set_faults(Faults(reject_first=1))
    tracer_provider, spans = exporter
    meter_provider, metric_reader = reader
    async with verify_emulator.client(
        tracer_provider=tracer_provider, meter_provider=meter_provider, retry_after_max=0.01
    ) as client:
        token = await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        [span] = spans.get_finished_spans()
        assert span.name == "POST /v2/Services/{ServiceSid}/AccessTokens"
        assert span.kind is SpanKind.CLIENT
        attributes = dict(span.attributes or {})
        assert attributes["http.request.method"] == "POST"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["url.template"] == "/v2/Services/{ServiceSid}/AccessTokens"
        assert attributes["http.response.status_code"] == 201
        assert attributes["http.request.resend_count"] == 1
        assert str(attributes["twilio.request_id"]).startswith("RQ")
        assert "error.type" not in attributes
        assert [e.attributes["http.response.status_code"] for e in span.events] == [429, 201]
        metrics = metrics_by_name(metric_reader)
        duration = metrics["http.client.request.duration"].data.data_points
        assert sum(point.count for point in duration) == 2
        assert {point.attributes["http.response.status_code"] for point in duration} == {429, 201}
        [limited] = metrics["verify_access_tokens.rate_limited"].data.data_points
        assert limited.value == 1
        for gauge in ("limit", "in_flight", "waiting"):
            assert metrics[f"verify_access_tokens.flow.{gauge}"].data.data_points
        dumped = repr([span.to_json(), metric_reader.get_metrics_data()])
        for secret in (AUTH_TOKEN, verify_emulator.auth_token, token.token, IDENTITY):
            assert secret not in dumped
        assert verify_emulator.service_sid not in dumped


async def test_a_failed_call_marks_its_span_with_the_error(
    verify_emulator: VerifyEmulator, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    tracer_provider, spans = exporter
    async with verify_emulator.client(tracer_provider=tracer_provider) as client:
        with pytest.raises(NotFoundError):
            await client.access_tokens.fetch(verify_emulator.service_sid, "YK" + "0" * 32)
        verify_emulator.set_faults(Faults(lost_response_rate=1.0))
        with pytest.raises(OutcomeUnknownError):
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    fetched, created = spans.get_finished_spans()
    assert fetched.name == "GET /v2/Services/{ServiceSid}/AccessTokens/{Sid}"
    assert fetched.status.status_code is StatusCode.ERROR
    assert dict(fetched.attributes or {})["error.type"] == "NotFoundError"
    assert dict(fetched.attributes or {})["http.response.status_code"] == 404
    assert dict(created.attributes or {})["error.type"] == "OutcomeUnknownError"


async def test_without_a_provider_no_span_is_started(verify_emulator: VerifyEmulator) -> None:
    async with verify_emulator.client() as client:
        telemetry = client._transport.telemetry
        assert telemetry is not None
        assert not telemetry.tracing()  # the global providers are the API's proxies
        assert not telemetry.active()  # so a call records nothing
        await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)


def test_the_meter_provider_check_tells_the_apis_proxy_from_a_real_one(
    reader: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    """The one use of OpenTelemetry's internals (verify_access_tokens._http._compat)."""
    assert not is_meter_provider_set(metrics.get_meter_provider())
    assert is_meter_provider_set(reader[0])


def test_without_opentelemetry_the_client_works_and_refuses_a_provider() -> None:
    code = (
        without_modules("opentelemetry")
        + f"""
from verify_access_tokens import ConfigurationError, VerifyClient
from verify_access_tokens._http import _telemetry
client = VerifyClient("{ACCOUNT_SID}", "{AUTH_TOKEN}")
assert client._transport.telemetry is None and not _telemetry.AVAILABLE
try:
    VerifyClient("{ACCOUNT_SID}", "{AUTH_TOKEN}", tracer_provider=object())
except ConfigurationError as error:
    print(error)
"""
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "tracer_provider: needs OpenTelemetry" in done.stdout


def test_a_global_provider_set_after_the_client_is_used_within_64_calls() -> None:
    """The global providers are set once, at start-up: looked at again every 64 calls."""
    code = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from verify_access_tokens.emulator import VerifyEmulator

async def main():
    async with VerifyEmulator() as emulator, emulator.client() as client:
        create = client.access_tokens.create
        await create(emulator.service_sid, identity="user-00000001")
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(provider)
        for i in range(64):
            await create(emulator.service_sid, identity=f"user-{i:08d}")
        print(len(spans.get_finished_spans()))

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 1 <= int(done.stdout) <= 64

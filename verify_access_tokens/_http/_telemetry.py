"""OpenTelemetry traces and metrics of each call, when the app configured a provider.

Optional (the ``otel`` extra: ``opentelemetry-api``). Without the package the client holds no
`Telemetry` and pays nothing. With it, the providers given to the client are used, else the
global ones; until the app sets one of them, a call records nothing, and the global
providers are looked at once every `RECHECK_EVERY` calls (a provider is set once, at start-up).
Spans and metrics follow the HTTP client semantic conventions; no attribute carries a
credential, a token, an identity or a sid (``url.template``, not the URL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import yarl

from .._core._validation import sid_rule
from .._exceptions import APIStatusError, ConfigurationError, VerifyError
from .._version import __version__
from ._compat import is_meter_provider_set
from ._types import RawResponse

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

    from .._flow import Limiter

try:
    from opentelemetry import metrics, trace
except ImportError:  # pragma: no cover - run in tests/client/test_telemetry.py's subprocess
    metrics = trace = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "Telemetry"]

AVAILABLE: Final = trace is not None
RECHECK_EVERY: Final = 64
_SCOPE: Final = "verify_access_tokens"


class Telemetry:
    """One client's instruments: a tracer, the request-duration histogram, 429s, the limiter."""

    def __init__(
        self,
        base_url: str,
        limiter: Limiter,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        """Build the instruments.

        Args:
            base_url: The origin: ``server.address`` and ``server.port``.
            limiter: The client's limiter, read by the observable gauges.
            tracer_provider: A tracer provider, or ``None`` for the global one.
            meter_provider: A meter provider, or ``None`` for the global one.
        """
        url = yarl.URL(base_url)
        self._server: dict[str, Any] = {
            "server.address": url.host or "",
            "server.port": url.port or 443,
        }
        self._explicit_tracer = tracer_provider is not None
        self._explicit_meter = meter_provider is not None
        self._active = self._explicit_tracer or self._explicit_meter
        self._unchecked = 0  # calls left before the global providers are looked at again
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(
            _SCOPE, __version__
        )
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(_SCOPE, __version__)
        self._duration = meter.create_histogram(
            "http.client.request.duration", unit="s", description="Duration of HTTP requests."
        )
        self._rate_limited = meter.create_counter(
            "verify_access_tokens.rate_limited",
            unit="{response}",
            description="Answers of 429 (Twilio's 20429: not processed).",
        )
        for name, read, what in (
            ("limit", lambda: limiter.limit, "Requests the client lets be in flight."),
            ("in_flight", lambda: limiter.in_flight, "Requests in flight."),
            ("waiting", lambda: limiter.state().waiting, "Calls waiting for a slot."),
        ):
            meter.create_observable_gauge(
                f"verify_access_tokens.flow.{name}",
                callbacks=[_observe(read, self._server)],
                unit="{request}",
                description=what,
            )

    def tracing(self) -> bool:
        """Whether spans are wanted: a provider was given, or the app set a global one."""
        return self._explicit_tracer or not isinstance(
            trace.get_tracer_provider(), trace.ProxyTracerProvider
        )

    def active(self) -> bool:
        """Whether anything would be recorded: a tracer or a meter provider is there."""
        if self._active:
            return True
        if self._unchecked:
            self._unchecked -= 1
            return False
        self._unchecked = RECHECK_EVERY - 1
        self._active = self.tracing() or is_meter_provider_set(metrics.get_meter_provider())
        return self._active

    async def traced(
        self, method: str, template: str, sending: Awaitable[RawResponse]
    ) -> RawResponse:
        """Await ``sending`` inside a client span named ``"{method} {template}"``, if wanted."""
        if not self.tracing():
            return await sending
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.template": template,
            **self._server,
        }
        span = self._tracer.start_span(
            f"{method} {template}", kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        with trace.use_span(span, end_on_exit=True, record_exception=False):
            try:
                raw = await sending
            except VerifyError as error:
                _final(span, error)
                span.set_attribute("error.type", type(error).__name__)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
                raise
            _final(span, raw)
            return raw

    def attempt(self, method: str, outcome: RawResponse | VerifyError, duration: float) -> None:
        """Record one attempt: the duration histogram, a span event, a 429."""
        attributes: dict[str, Any] = {"http.request.method": method, **self._server}
        status = _status(outcome)
        if status is not None:
            attributes["http.response.status_code"] = status
        if isinstance(outcome, VerifyError):
            attributes["error.type"] = str(status) if status else type(outcome).__name__
        self._duration.record(duration, attributes)
        if status == 429:
            self._rate_limited.add(1, self._server)
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event("http.attempt", attributes)


def _status(outcome: RawResponse | VerifyError) -> int | None:
    if isinstance(outcome, RawResponse | APIStatusError):
        return outcome.status
    return None


def _final(span: Any, outcome: RawResponse | VerifyError) -> None:
    """The last attempt's status, the retries and Twilio's request id (its own shape only)."""
    cause = getattr(outcome, "cause", None) or outcome
    status = _status(cause)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    attempts = cause.attempts
    if attempts > 1:
        span.set_attribute("http.request.resend_count", attempts - 1)
    request_id = (
        cause.headers.get("Twilio-Request-Id")
        if isinstance(cause, RawResponse)
        else cause.request_id
    )
    if request_id and sid_rule(request_id, "RQ") is None:  # anything else could echo a secret
        span.set_attribute("twilio.request_id", request_id)


def _observe(read: Any, attributes: dict[str, Any]) -> Any:
    def callback(_options: Any) -> Iterable[Any]:
        value = read()
        if value is not None:
            yield metrics.Observation(value, attributes)

    return callback


def telemetry_for(
    base_url: str, limiter: Limiter, tracer_provider: Any, meter_provider: Any
) -> Telemetry | None:
    """The client's OpenTelemetry instruments, when the ``otel`` extra is installed."""
    if AVAILABLE:
        return Telemetry(
            base_url, limiter, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
    for name, given in (("tracer_provider", tracer_provider), ("meter_provider", meter_provider)):
        if given is not None:
            raise ConfigurationError(
                name, "needs OpenTelemetry: pip install 'verify-access-tokens[otel]'"
            )
    return None

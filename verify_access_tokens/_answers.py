"""What a backend answers its own caller when a call to Verify failed: one mapping, any framework.

The FastAPI router answers with it, and so can an aiohttp.web, Starlette or Django handler:
`endpoint_answer` turns a `VerifyError` into a status, headers and the JSON error shape of
Twilio's sample backends, ``{"error": {"message": ..., "moreInfo": ...}}``. Messages are fixed
texts: nothing the upstream said is echoed to the caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientStateError,
    OutcomeUnknownError,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    VerifyError,
)

__all__ = ["CLIENT_UNUSABLE", "EndpointAnswer", "endpoint_answer"]

NO_STORE: Final = {"Cache-Control": "no-store"}
CLIENT_UNUSABLE: Final = (
    "the server's verification client is closed or belongs to another event loop"
)


@attrs.frozen
class EndpointAnswer:
    """An HTTP answer for a backend's caller: status, headers and a JSON body.

    Attributes:
        status: The HTTP status to answer with.
        message: A fixed text, safe to show the caller.
        more_info: A link to Twilio's page for its error code, or ``None``.
        headers: Headers to send: ``Cache-Control: no-store`` always, ``Retry-After`` when
            the caller may try again later.
    """

    status: int
    message: str
    more_info: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=lambda: dict(NO_STORE))

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body: ``{"error": {"message": ..., "moreInfo": ...}}``."""
        return {"error": {"message": self.message, "moreInfo": self.more_info}}


def _answer(
    status: int, message: str, more_info: str | None = None, retry_after: str | None = None
) -> EndpointAnswer:
    headers = dict(NO_STORE)
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return EndpointAnswer(status, message, more_info, headers)


def _more_info(error: VerifyError) -> str | None:
    # Built from Twilio's numeric code, never copied from the server's text.
    if isinstance(error, APIStatusError) and error.code is not None:
        return f"https://www.twilio.com/docs/errors/{error.code}"
    return None


def endpoint_answer(error: VerifyError) -> EndpointAnswer:
    """The answer a backend gives its caller for ``error``, whatever its web framework.

    - 400: a `RequestValidationError` of ``identity`` (the caller's own input);
    - 429 with ``Retry-After``: Twilio's rate limit, still after the client's retries;
    - 503 with ``Retry-After: 1``: nothing was sent (the deadline ran out waiting), or the
      client is closed;
    - 502 / 504: Twilio failed or timed out (``outcome unknown`` for a create that may have
      made a token);
    - 500: anything else, a bug of the server's own.

    Args:
        error: What ``create`` or ``fetch`` raised.

    Returns:
        The `EndpointAnswer`: send ``answer.body`` as JSON with ``answer.status`` and
        ``answer.headers``.
    """
    if isinstance(error, RequestValidationError) and error.field == "identity":
        return _answer(400, str(error))
    if isinstance(error, RateLimitError):
        retry_after = str(max(1, math.ceil(error.retry_after or 1)))
        return _answer(
            429,
            "too many requests to the verification service; retry later",
            _more_info(error),
            retry_after,
        )
    if isinstance(error, OutcomeUnknownError):
        if isinstance(error.cause, APITimeoutError):
            return _answer(504, "the verification service timed out; outcome unknown")
        return _answer(502, "the verification service failed; outcome unknown")
    if isinstance(error, APITimeoutError):
        if not error.request_sent:  # it never left this machine: safe to send again
            return _answer(
                503,
                "the verification service could not be reached in time; nothing was sent, "
                "retry later",
                retry_after="1",
            )
        return _answer(504, "the verification service timed out")
    if isinstance(error, APIStatusError | APIConnectionError | ResponseValidationError):
        return _answer(502, "the verification service failed", _more_info(error))
    if isinstance(error, ClientStateError):
        return _answer(503, CLIENT_UNUSABLE)
    return _answer(500, "internal server error")

"""The one exception hierarchy of the package.

Every failure a caller can meet is a :class:`VerifyError`, so ``except VerifyError`` is always
enough. Messages are built only from things that are safe to show: status codes, Twilio error
codes, method and path, field names, and server text (Twilio's message, a status line) after a
:class:`Scrubber` removed the client's credentials from it and capped its length. Credentials and
the JWT ``token`` are never passed into an exception, so they cannot reach ``str``, ``repr`` or a
traceback.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchStoppedError",
    "ClientStateError",
    "ConfigurationError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ResponseValidationError",
    "ServerError",
    "VerifyError",
]


SERVER_TEXT_MAX: Final = 500
REDACTED: Final = "<redacted>"


class Scrubber:
    """Removes the client's credentials from server-provided text and caps its length.

    A server or proxy may echo the request's ``Authorization`` header back in its error message,
    its status line or its headers; everything a server said passes through here before it
    reaches an exception, a log record or the CLI.
    """

    __slots__ = ("_secrets",)

    def __init__(self, authorization: str) -> None:
        secrets = {authorization}
        scheme, _, encoded = authorization.partition(" ")
        if scheme == "Basic" and encoded:
            secrets.add(encoded)
            try:
                pair = base64.b64decode(encoded, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):  # pragma: no cover - we built it
                pair = ""
            secrets.update((pair, pair.partition(":")[2]))
        secrets.discard("")
        # Longest first, so that the Basic value goes before the base64 part it contains.
        self._secrets = tuple(sorted(secrets, key=len, reverse=True))

    def __call__(self, text: str, limit: int = SERVER_TEXT_MAX) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if len(text) > limit:
            text = text[:limit] + f"... ({len(text) - limit} more characters)"
        return text

    def __repr__(self) -> str:
        return "Scrubber(<redacted>)"


class VerifyError(Exception):
    """Base class of every error raised by this package.

    ``attempts`` is how many HTTP attempts were made before this error was raised (0 when it
    was raised before anything was sent).
    """

    attempts: int = 0


class ConfigurationError(VerifyError, ValueError):
    """Credentials, base URL or another client setting is missing or malformed.

    ``setting`` names the argument or environment variable at fault; the value is never echoed.
    """

    def __init__(self, setting: str, rule: str) -> None:
        self.setting = setting
        self.rule = rule
        super().__init__(f"{setting}: {rule}")


class RequestValidationError(VerifyError, ValueError):
    """A request parameter broke a documented rule; raised before anything is sent."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class ResponseValidationError(VerifyError):
    """The server answered 2xx but the body is not a valid access token resource.

    ``field`` is the JSON path of the offending field (``"$"`` for the whole body).
    """

    def __init__(self, field: str, problem: str, *, status: int | None = None) -> None:
        self.field = field
        self.problem = problem
        self.status = status
        super().__init__(f"invalid response body at {field}: {problem}")


class ClientStateError(VerifyError, RuntimeError):
    """The client was used in a way its lifecycle forbids (closed, or from another event loop)."""


class APIConnectionError(VerifyError):
    """The request could not be completed at the network level.

    ``request_sent`` is ``False`` when the failure provably happened before the request reached
    the server (for example a refused connection): only then is a ``create`` safe to retry.
    """

    def __init__(self, message: str, *, method: str, url: str, request_sent: bool = True) -> None:
        self.method = method
        self.url = url
        self.request_sent = request_sent
        super().__init__(f"{message} ({method} {url})")


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, or the per-call deadline)."""


class APIStatusError(VerifyError):
    """The server answered with a non-success HTTP status.

    ``retry_after`` is the server's ``Retry-After`` in seconds when it sent one (429, 503).
    """

    def __init__(
        self,
        *,
        status: int,
        message: str,
        method: str,
        url: str,
        code: int | None = None,
        more_info: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.code = code
        self.message = message
        self.more_info = more_info
        self.request_id = request_id
        self.method = method
        self.url = url
        code_part = f" (Twilio code {code})" if code is not None else ""
        super().__init__(f"HTTP {status}{code_part}: {message} [{method} {url}]")


class BadRequestError(APIStatusError):
    """400: Twilio rejected a parameter (for example code 60200)."""


class AuthenticationError(APIStatusError):
    """401: the credentials were refused (code 20003)."""


class PermissionDeniedError(APIStatusError):
    """403: the credentials may not use this service."""


class NotFoundError(APIStatusError):
    """404: unknown service or access token (code 20404)."""


class RateLimitError(APIStatusError):
    """429: too many requests (code 20429). ``retry_after`` is in seconds, when known."""


class ServerError(APIStatusError):
    """5xx (or another unexpected status): trouble at Twilio or a proxy in between."""


class OutcomeUnknownError(VerifyError):
    """A ``create`` failed after the request may have reached Twilio.

    Verify has no idempotency key, so the access token may or may not exist, and re-sending the
    request could mint a second one. The underlying error is ``cause`` (also ``__cause__``). A
    2xx answer that is not a usable token (202, 204, a body cut off at ``max_response_bytes`` or
    failing validation) is one too: ``cause`` is then the :class:`ResponseValidationError`.
    """

    def __init__(self, cause: VerifyError) -> None:
        self.cause = cause
        super().__init__(
            f"outcome unknown: the create request may have created an access token; "
            f"it was not re-sent, because a retry could mint a second token. Cause: {cause}"
        )


class BatchStoppedError(VerifyError):
    """A batch item that ``stop()`` caught waiting in the rate limiter: nothing was sent."""

    def __init__(self) -> None:
        super().__init__("the batch was stopped before this request was sent")

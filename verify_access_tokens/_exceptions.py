"""The one exception hierarchy of the package; `_http._error_mapping` maps failures onto it.

Every failure a caller can meet is a `VerifyError`, so ``except VerifyError`` is always
enough, and every one has ``request_id`` and ``attempts``::

    VerifyError                         request_id (None: no answer), attempts (0: none sent)
    ├── ConfigurationError (ValueError)      a client setting; raised at construction
    ├── RequestValidationError (ValueError)  a request parameter; raised before sending
    ├── ClientStateError (RuntimeError)      closed client, or used from another event loop
    ├── OutcomeUnknownError                  a create that may have made a token (``cause``)
    └── APIError                             method, url, request_id, attempts
        ├── ResponseValidationError          a 2xx whose body is not a usable token
        ├── APIConnectionError               network failure (``request_sent``)
        │   └── APITimeoutError
        └── APIStatusError                   a non-2xx answer (3xx, 409, 422 ... as such)
            ├── BadRequestError              400
            ├── AuthenticationError          401
            ├── PermissionDeniedError        403
            ├── NotFoundError                404
            ├── RateLimitError               429
            └── ServerError                  5xx

Messages are built only from things that are safe to show: status codes, Twilio error codes,
method and path, field names, and server text (Twilio's message, a status line) after
`_http._scrub.Scrubber` removed the client's credentials from it and capped its length.
Credentials and the JWT ``token`` are never passed into an exception, so they cannot reach
``str``, ``repr`` or a traceback.
"""

from __future__ import annotations

import http
from typing import Any, ClassVar


class VerifyError(Exception):
    """Base class of every error raised by this package.

    ``request_id`` is Twilio's ``Twilio-Request-Id`` of the answer behind the error, ``None``
    when no answer came (or it did not have Twilio's shape), so that
    ``except VerifyError as e: log(e.request_id)`` always works. ``attempts`` is how many HTTP
    attempts were made before this error was raised (0 when it was raised before anything was
    sent).

    Every error pickles with its class, message and public attributes, so it crosses a process
    boundary (``ProcessPoolExecutor``, Celery, pytest-xdist) as it is; a ``__cause__`` that is a
    `VerifyError` goes with it, any other one is left behind.
    """

    request_id: str | None = None
    attempts: int = 0

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce calls ``cls(*args)``, which the keyword-only constructors below
        # cannot take: rebuild without the constructor, then restore the public attributes
        # (whatever a subclass adds, without a list to keep up to date). Messages and public
        # attributes are free of credentials; private ones are not carried.
        state = {
            name: value
            for name, value in vars(self).items()
            if not name.startswith("_") or name == "__notes__"
        }
        if isinstance(self.__cause__, VerifyError):
            state["__cause__"] = self.__cause__  # set back by BaseException.__setstate__
        return (_rebuild, (type(self), self.args), state)


class APIError(VerifyError):
    """A request was attempted: which one, Twilio's request id when known, and how many tries.

    ``method`` and ``url`` are ``None`` only for a body checked outside a request.

    Args:
        message: The error text, already free of credentials.
        method: HTTP method of the request (default ``None``).
        url: URL of the request (default ``None``).
        request_id: Twilio's ``Twilio-Request-Id`` of the answer, when known (default ``None``).
        attempts: HTTP attempts made (default 0).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        request_id: str | None = None,
        attempts: int = 0,
    ) -> None:
        self.method = method
        self.url = url
        self.request_id = request_id
        self.attempts = attempts
        super().__init__(message)


class ConfigurationError(VerifyError, ValueError):
    """Credentials, base URL or another client setting is missing or malformed.

    ``setting`` names the argument or environment variable at fault; the value is never echoed.

    Args:
        setting: The argument or environment variable at fault.
        rule: The rule it broke, without its value.
    """

    def __init__(self, setting: str, rule: str) -> None:
        self.setting = setting
        self.rule = rule
        super().__init__(f"{setting}: {rule}")


class RequestValidationError(VerifyError, ValueError):
    """A request parameter broke a documented rule; raised before anything is sent.

    Args:
        field: The parameter at fault (``identity``, ``ttl`` ...).
        rule: The rule it broke, without its value.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class ResponseValidationError(APIError):
    """The server answered 2xx but the body is not a valid access token resource.

    ``field`` is the JSON path of the offending field (``"$"`` for the whole body).

    Args:
        field: JSON path of the offending field, such as ``$.ttl`` (default ``"$"``).
        problem: What is wrong with it (default ``"not an access token"``).
        status: The HTTP status of the answer (default ``None``).
        method: HTTP method of the request (default ``None``).
        url: URL of the request (default ``None``).
        request_id: Twilio's request id, when it has Twilio's shape (default ``None``).
        attempts: HTTP attempts made (default 0).
    """

    def __init__(
        self,
        field: str = "$",
        problem: str = "not an access token",
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        request_id: str | None = None,
        attempts: int = 0,
    ) -> None:
        self.field = field
        self.problem = problem
        self.status = status
        super().__init__(
            f"invalid response body at {field}: {problem}",
            method=method,
            url=url,
            request_id=request_id,
            attempts=attempts,
        )


class ClientStateError(VerifyError, RuntimeError):
    """The client was used in a way its lifecycle forbids (closed, or from another event loop)."""


class APIConnectionError(APIError):
    """The request could not be completed at the network level; no answer came.

    ``request_sent`` is ``False`` when the failure provably happened before the request reached
    the server (for example a refused connection): only then is a ``create`` safe to retry.

    Args:
        message: What failed, already free of credentials (default ``"connection failed"``).
        method: HTTP method of the request (default ``None``).
        url: URL of the request (default ``None``).
        request_sent: Whether the request may have reached the server (default ``True``).
        attempts: HTTP attempts made (default 0).
    """

    def __init__(
        self,
        message: str = "connection failed",
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = True,
        attempts: int = 0,
    ) -> None:
        self.request_sent = request_sent
        where = f" ({method} {url})" if method is not None else ""
        super().__init__(f"{message}{where}", method=method, url=url, attempts=attempts)


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, the attempt's timeout, or the call's deadline).

    Its message names the limit that ran out and its value, as the caller sets it:
    ``timeout=35 s``, ``sock_connect=5 s``, ``sock_read=...`` or ``deadline=60 s``.
    """


class APIStatusError(APIError):
    """The server answered with a non-success HTTP status (one without a subclass as such).

    ``retry_after`` is the server's ``Retry-After`` in seconds when it sent one (429, 503).
    Each subclass knows its status, so a test builds one in one call: ``RateLimitError()``,
    ``NotFoundError(code=20404)``, ``RateLimitError(retry_after=2.0)``.

    Args:
        status: The HTTP status (default: the subclass's own; required for this class).
        message: Twilio's ``message`` (or the status line's reason), credentials removed
            (default: the status's reason phrase).
        method: HTTP method of the request (default ``"POST"``).
        url: URL of the request (default ``""``).
        code: Twilio's error code, such as 20404 (default ``None``).
        more_info: Twilio's ``more_info`` link (default ``None``).
        request_id: Twilio's ``Twilio-Request-Id``, when known (default ``None``).
        retry_after: The server's ``Retry-After``, in seconds (default ``None``).
        attempts: HTTP attempts made (default 0).
        concurrent_requests: The account's requests in flight, from
            ``Twilio-Concurrent-Requests`` (default ``None``: not sent or malformed).
        request_duration: Seconds Twilio spent on the request, from
            ``Twilio-Request-Duration`` (default ``None``: not sent or malformed).
    """

    method: str
    url: str
    _remedy: ClassVar[str] = ""  # what the caller should do, ending the message
    _status: ClassVar[int | None] = None  # a subclass's own status

    def __init__(
        self,
        *,
        status: int | None = None,
        message: str | None = None,
        method: str = "POST",
        url: str = "",
        code: int | None = None,
        more_info: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        attempts: int = 0,
        concurrent_requests: int | None = None,
        request_duration: float | None = None,
    ) -> None:
        if status is None:
            if self._status is None:
                raise TypeError(f"{type(self).__name__}() needs status=")
            status = self._status
        if message is None:
            message = _reason(status)
        self.status = status
        self.retry_after = retry_after
        self.concurrent_requests = concurrent_requests
        self.request_duration = request_duration
        self.code = code
        self.message = message
        self.more_info = more_info
        code_part = f" (Twilio code {code})" if code is not None else ""
        super().__init__(
            f"HTTP {status}{code_part}: {message} [{method} {url}]{self._remedy}",
            method=method,
            url=url,
            request_id=request_id,
            attempts=attempts,
        )


class BadRequestError(APIStatusError):
    """400: Twilio rejected a parameter (for example code 60200)."""

    _status = 400


class AuthenticationError(APIStatusError):
    """401: the credentials were refused (code 20003).

    Its message says which settings to check: ``TWILIO_ACCOUNT_SID`` with ``TWILIO_AUTH_TOKEN``,
    or ``TWILIO_API_KEY`` with ``TWILIO_API_SECRET`` (or the client's matching arguments).
    """

    _remedy = (
        "; check the credentials: TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, or TWILIO_API_KEY "
        "with TWILIO_API_SECRET (or the VerifyClient arguments of the same names)"
    )
    _status = 401


class PermissionDeniedError(APIStatusError):
    """403: the credentials may not use this service.

    Its message says what to check: that ``TWILIO_ACCOUNT_SID`` owns the service, and that the
    API key (``TWILIO_API_KEY``), if one is used, is allowed to use Verify.
    """

    _remedy = (
        "; check that TWILIO_ACCOUNT_SID is the account that owns this service and, if you use "
        "an API key (TWILIO_API_KEY), that the key may use Verify"
    )
    _status = 403


class NotFoundError(APIStatusError):
    """404: unknown service or access token (code 20404)."""

    _status = 404


class RateLimitError(APIStatusError):
    """429: too many requests (code 20429). ``retry_after`` is in seconds, when known."""

    _status = 429


class ServerError(APIStatusError):
    """5xx: trouble at Twilio or a proxy in between.

    3xx, 409, 422 ... are plain `APIStatusError`. Built without ``status``, it is a 500.
    """

    _status = 500


class OutcomeUnknownError(VerifyError):
    """A ``create`` failed after the request may have reached Twilio.

    Verify has no idempotency key, so the access token may or may not exist, and re-sending the
    request could mint a second one. Its message names the remedy: create again when a second
    token is harmless (or opt in with ``retry_ambiguous_creates=True``), else reconcile later.
    The underlying error is ``cause`` (also ``__cause__``). A 2xx answer that is not a usable
    token (202, 204, a body cut off at ``max_response_bytes`` or failing validation) is one too:
    ``cause`` is then the `ResponseValidationError`.

    Args:
        cause: The underlying error; its ``attempts`` and ``request_id`` are this error's too
            (for a test: ``OutcomeUnknownError(APITimeoutError())``).
    """

    def __init__(self, cause: VerifyError) -> None:
        self.cause = cause
        self.attempts = cause.attempts
        self.request_id = cause.request_id
        self.__cause__ = cause
        super().__init__(
            "outcome unknown: the create request may have created an access token, and it was not "
            "re-sent because a retry could mint a second one. To recover, create again if a "
            "second token is harmless to you (an unused one expires after its ttl); "
            "retry_ambiguous_creates=True makes the client do that itself. Otherwise record the "
            f"identity to reconcile later. Cause: {cause}"
        )


def _reason(status: int) -> str:
    """The status's standard phrase: the message of an answer that brought none."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _rebuild(cls: type[VerifyError], args: tuple[Any, ...]) -> VerifyError:
    """Unpickle an error: its class and ``args``, without calling its constructor."""
    error = cls.__new__(cls)
    error.args = args
    return error

"""The endpoint's answers when it refuses or fails, and what the operator's log says about them.

Private to `verify_access_tokens.fastapi` (which re-exports `EndpointError`): one
place maps every failure (hook, body, upstream error, bug) to the JSON error shape of Twilio's
sample backends, with fixed messages, and logs the failures an operator must see: upstream
ones at WARNING (error class, Twilio code, HTTP status, request id, attempts; never a secret,
the identity only as an 8-character hash prefix), a deployment bug or a real bug at ERROR.
"""

# No ``from __future__ import annotations``, like the router module FastAPI introspects.
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError as ParameterValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException  # FastAPI's own is a subclass
from starlette.requests import ClientDisconnect

from verify_access_tokens import (
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

logger: Final = logging.getLogger("verify_access_tokens.fastapi")

NO_STORE: Final = {"Cache-Control": "no-store"}


class EndpointError(Exception):
    """An answer for the mobile client: status, a safe message, optional headers.

    Raise it from an authorization hook to refuse a caller with the endpoint's JSON error shape,
    ``{"error": {"message": ..., "moreInfo": ...}}`` (an ``HTTPException`` works too; its
    ``detail`` becomes the message). The router raises it for every answer other than 200.

    Args:
        status: The HTTP status of the answer.
        message: The message the mobile client sees; it must be safe to show.
        more_info: A link explaining the error (default ``None``, sent as ``null``).
        headers: Extra headers of the answer (default none).

    Attributes:
        status: The HTTP status of the answer.
        message: The message the mobile client sees.
        more_info: The ``moreInfo`` link, or ``None``.
        headers: The extra headers of the answer (``Cache-Control: no-store`` is always added).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        more_info: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.more_info = more_info
        self.headers = dict(headers or {})
        super().__init__(f"{status}: {message}")

    def response(self) -> JSONResponse:
        """The JSON answer: ``{"error": {"message", "moreInfo"}}``, not to be cached.

        Returns:
            A ``JSONResponse`` with this error's status and headers plus
            ``Cache-Control: no-store``.
        """
        body = {"error": {"message": self.message, "moreInfo": self.more_info}}
        return JSONResponse(body, status_code=self.status, headers=self.headers | NO_STORE)


def _more_info(exc: APIStatusError) -> str | None:
    # Built from Twilio's numeric code, never copied from the server's text.
    return f"https://www.twilio.com/docs/errors/{exc.code}" if exc.code is not None else None


CLIENT_UNUSABLE: Final = (
    "the server's verification client is closed or belongs to another event loop"
)


def upstream_error(exc: VerifyError) -> EndpointError:
    """What a mobile client can act on, with fixed messages: nothing from upstream is echoed."""
    if isinstance(exc, RequestValidationError) and exc.field == "identity":
        return EndpointError(400, str(exc))
    if isinstance(exc, RateLimitError):
        retry_after = str(max(1, math.ceil(exc.retry_after or 1)))
        return EndpointError(
            429,
            "too many requests to the verification service; retry later",
            more_info=_more_info(exc),
            headers={"Retry-After": retry_after},
        )
    if isinstance(exc, OutcomeUnknownError):
        if isinstance(exc.cause, APITimeoutError):
            return EndpointError(504, "the verification service timed out; outcome unknown")
        return EndpointError(502, "the verification service failed; outcome unknown")
    if isinstance(exc, APITimeoutError):
        if not exc.request_sent:  # it never left this machine: safe to send again
            return EndpointError(
                503,
                "the verification service could not be reached in time; nothing was sent, "
                "retry later",
                headers={"Retry-After": "1"},
            )
        return EndpointError(504, "the verification service timed out")
    if isinstance(exc, APIStatusError | APIConnectionError | ResponseValidationError):
        more_info = _more_info(exc) if isinstance(exc, APIStatusError) else None
        return EndpointError(502, "the verification service failed", more_info=more_info)
    if isinstance(exc, ClientStateError):
        return EndpointError(503, CLIENT_UNUSABLE)
    return EndpointError(500, "internal server error")


def _facts(exc: VerifyError) -> tuple[object, ...]:
    """Class, Twilio code, HTTP status, request id, attempts: attributes, never message text."""
    name = type(exc).__name__
    if isinstance(exc, OutcomeUnknownError):
        name = f"{name}({type(exc.cause).__name__})"
        exc = exc.cause
    return (
        name,
        getattr(exc, "code", None),
        getattr(exc, "status", None),
        getattr(exc, "request_id", None),
        exc.attempts,
    )


def upstream_failure(exc: VerifyError, identity_ref: str | None = None) -> EndpointError:
    """`upstream_error`'s answer, logged for the operator as its status calls for.

    Args:
        exc: What the client raised.
        identity_ref: The identity's hash prefix (never the identity), or ``None``.

    Returns:
        The answer for the mobile client.
    """
    answer = upstream_error(exc)
    if isinstance(exc, ClientStateError):
        logger.error(
            "access-token endpoint: %s (answered 503): a deployment bug; build the VerifyClient "
            "in the app's lifespan, or in a dependency returning it",
            CLIENT_UNUSABLE,
            exc_info=exc,
        )
    elif answer.status == 500:
        logger.error("access-token endpoint failed (answered 500)", exc_info=exc)
    elif answer.status != 400:  # a 400 is the caller's own identity: nothing for the operator
        logger.warning(
            "access-token upstream failure: %s code=%s status=%s request_id=%s attempts=%s "
            "identity=%s answered=%d",
            *_facts(exc),
            identity_ref,
            answer.status,
        )
    return answer


_CREDENTIALS: Final = ("header", "cookie")


def parameter_error(exc: ParameterValidationError) -> EndpointError:
    """A hook's own FastAPI parameters failed: 401 when credentials are missing, else 422.

    The message names the parameters (``header authorization``), never the values sent; the
    refusal is logged at INFO, without a traceback: it is the caller's doing, not a bug.
    """
    errors = [e for e in exc.errors() if isinstance(e, Mapping)]
    places = [tuple(str(part) for part in e.get("loc", ())) for e in errors]
    names = ", ".join(" ".join(place) for place in places)[:200] or "a parameter"
    missing = all(
        e.get("type") == "missing" and place[:1] in {(c,) for c in _CREDENTIALS}
        for e, place in zip(errors, places, strict=True)
    )
    if errors and missing:
        answer = EndpointError(401, f"missing credentials: {names}")
    else:
        answer = EndpointError(422, f"invalid request parameters: {names}")
    logger.info("access-token request refused (%d): %s", answer.status, names)
    return answer


class JSONErrorRoute(APIRoute):
    """Every failure of this route (hook, body, upstream, bug) answers with the JSON shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except EndpointError as exc:
                return exc.response()
            except HTTPException as exc:
                message = exc.detail if isinstance(exc.detail, str) else "request refused"
                return EndpointError(exc.status_code, message, headers=exc.headers).response()
            except ParameterValidationError as exc:
                return parameter_error(exc).response()
            except VerifyError as exc:
                return upstream_failure(exc).response()
            except ClientDisconnect:
                # The caller went away (or was closed past the body time limit): nobody reads
                # the answer.
                logger.info("access-token request: the caller disconnected before its body")
                return EndpointError(400, "request body incomplete").response()
            except Exception:
                logger.exception("access-token endpoint failed (answered 500)")
                return EndpointError(500, "internal server error").response()

        return handle

"""The endpoint's answers when it refuses or fails, and what the operator's log says about them.

Private to `verify_access_tokens.fastapi` (which re-exports `EndpointError`): one
place maps every failure (hook, body, upstream error, bug) to the JSON error shape of Twilio's
sample backends, with fixed messages, and logs the failures an operator must see: upstream
ones at WARNING (error class, Twilio code, HTTP status, request id, attempts; never a secret,
the identity only as an 8-character hash prefix), a deployment bug or a real bug at ERROR.
"""

# No ``from __future__ import annotations``, like the router module FastAPI introspects.
import logging
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
    ClientStateError,
    OutcomeUnknownError,
    VerifyError,
    endpoint_answer,
)

logger: Final = logging.getLogger("verify_access_tokens.fastapi")

NO_STORE: Final = {"Cache-Control": "no-store"}  # every answer: a token is never cached


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


def upstream_error(exc: VerifyError) -> EndpointError:
    """`endpoint_answer`'s mapping, as the router's exception."""
    answer = endpoint_answer(exc)
    return EndpointError(
        answer.status, answer.message, more_info=answer.more_info, headers=answer.headers
    )


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


def _network_reason(exc: VerifyError) -> str:
    """For a network failure, what failed: ``: cannot connect to host:443: connection refused``.

    The client's message says it, scrubbed of any credential.
    """
    cause = exc.cause if isinstance(exc, OutcomeUnknownError) else exc
    return f": {cause}" if isinstance(cause, APIConnectionError) else ""


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
            answer.message,
            exc_info=exc,
        )
    elif answer.status == 500:
        logger.error("access-token endpoint failed (answered 500)", exc_info=exc)
    elif answer.status != 400:  # a 400 is the caller's own identity: nothing for the operator
        logger.warning(
            "access-token upstream failure: %s code=%s status=%s request_id=%s attempts=%s "
            "identity=%s answered=%d%s",
            *_facts(exc),
            identity_ref,
            answer.status,
            _network_reason(exc),
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


def warn_loudly(message: str, *args: object) -> None:
    """Log a warning that must be seen even where logging is not configured.

    The package logger has a ``NullHandler``, which would swallow it; then it goes to the
    standard library's ``logging.lastResort`` (stderr) as an unconfigured program's would.
    """
    log: logging.Logger | None = logger
    while log is not None:
        if any(not isinstance(h, logging.NullHandler) for h in log.handlers):
            logger.warning(message, *args)
            return
        log = log.parent if log.propagate else None
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 0, message, args, None)
    if logging.lastResort is not None:  # pragma: no branch - None only if a program unset it
        logging.lastResort.handle(record)

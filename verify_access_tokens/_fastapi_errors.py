"""The endpoint's answers when it refuses or fails, and their OpenAPI description.

Private to `verify_access_tokens.fastapi` (which re-exports `EndpointError`): one
place maps every failure (hook, body, upstream error, bug) to the JSON error shape of Twilio's
sample backends, with fixed messages, and describes the same statuses for ``/docs``.
"""

# No ``from __future__ import annotations``, like the router module FastAPI introspects.
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException  # FastAPI's own is a subclass

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

    Raise it from an authorization hook to refuse a caller with the endpoint's JSON error shape
    (an ``HTTPException`` works too; its ``detail`` becomes the message).

    Args:
        status: The HTTP status of the answer.
        message: The message the mobile client sees; it must be safe to show.
        more_info: A link explaining the error (default ``None``).
        headers: Extra headers of the answer (default none).
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
        """The JSON answer: ``{"error": {"message", "moreInfo"}}``, not to be cached."""
        body = {"error": {"message": self.message, "moreInfo": self.more_info}}
        return JSONResponse(body, status_code=self.status, headers=self.headers | NO_STORE)


def _more_info(exc: APIStatusError) -> str | None:
    # Built from Twilio's numeric code, never copied from the server's text.
    return f"https://www.twilio.com/docs/errors/{exc.code}" if exc.code is not None else None


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
        return EndpointError(504, "the verification service timed out")
    if isinstance(exc, APIStatusError | APIConnectionError | ResponseValidationError):
        more_info = _more_info(exc) if isinstance(exc, APIStatusError) else None
        return EndpointError(502, "the verification service failed", more_info=more_info)
    if isinstance(exc, ClientStateError):
        return EndpointError(503, "the server is not ready or shutting down")
    return EndpointError(500, "internal server error")


def _object_schema(required: list[str], *names: str) -> dict[str, Any]:
    properties = {name: {"type": "string"} for name in names}
    return {"type": "object", "required": required, "properties": properties}


_ERROR_SCHEMA: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": _object_schema(["message"], "message", "moreInfo")},
}
_ERRORS: Final = {
    "400": "identity missing or invalid",
    "401": "the authorization hook refused an unauthenticated caller",
    "403": "this caller may not enroll this identity",
    "405": "method other than POST",
    "429": "Twilio rate-limited the request; see Retry-After",
    "502": "Twilio failed (the token may or may not exist)",
    "504": "Twilio timed out",
}
# FastAPI cannot infer a body the endpoint parses itself: describe it for /docs and clients.
OPENAPI: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": _object_schema(["identity"], "identity")}
            for media in ("application/x-www-form-urlencoded", "application/json")
        },
    },
    "responses": {
        "200": {
            "description": "the enrollment token, for the identity sent to Twilio",
            "content": {
                "application/json": {
                    "schema": _object_schema(
                        ["token", "serviceSid", "identity", "factorType"],
                        "token",
                        "serviceSid",
                        "identity",
                        "factorType",
                    )
                }
            },
        },
        **{
            status: {
                "description": description,
                "content": {"application/json": {"schema": _ERROR_SCHEMA}},
            }
            for status, description in _ERRORS.items()
        },
    },
}


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
            except VerifyError as exc:
                return upstream_error(exc).response()
            except Exception:
                logger.exception("access-token endpoint failed")
                return EndpointError(500, "internal server error").response()

        return handle

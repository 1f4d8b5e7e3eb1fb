"""The OpenAPI description of the access-token route: exactly the statuses it can answer.

Private to `verify_access_tokens.fastapi`. FastAPI cannot infer a body the endpoint parses
itself, nor the error shape: both are described here. ``401``, ``403`` and ``422`` depend on
the authorization hook, so the description is built per router.
"""

from typing import Any, Final


def _object_schema(required: list[str], *names: str) -> dict[str, Any]:
    properties = {name: {"type": "string"} for name in names}
    return {"type": "object", "required": required, "properties": properties}


_ERROR: Final = _object_schema(["message", "moreInfo"], "message")
_ERROR["properties"]["moreInfo"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
_ERROR_SCHEMA: Final = {"type": "object", "required": ["error"], "properties": {"error": _ERROR}}

_ALWAYS: Final = {
    "400": "identity missing, invalid or repeated; body not UTF-8 or not JSON",
    "413": "request body over 16 KiB",
    "415": "content type neither form-encoded nor JSON",
    "429": "Twilio rate-limited the request; see Retry-After",
    "500": "a bug (logged with its traceback)",
    "502": "Twilio failed or refused the server's credentials (a create's outcome may be unknown)",
    "503": "nothing was sent to Twilio in time (see Retry-After), or the server's client is closed",
    "504": "Twilio timed out",
}
_WITH_HOOK: Final = {
    "401": "the authorization hook refused an unauthenticated caller, or its credentials "
    "(a required header or cookie) are missing",
    "403": "this caller may not enroll this identity",
}
HOOK_PARAMETERS: Final = {"422": "a parameter of the authorization hook is invalid"}


def route_openapi(*, hook: bool) -> dict[str, Any]:
    """The ``openapi_extra`` of the POST route.

    Args:
        hook: Whether an authorization hook is given (``401`` and ``403`` are then possible).

    Returns:
        A fresh dict, with the body's ``identity`` optional until `require_identity`.
    """
    errors = _ALWAYS | (_WITH_HOOK if hook else {})
    return {
        "requestBody": {  # optional: a hook's login may say who it is (see require_identity)
            "required": False,
            "content": {
                media: {"schema": _object_schema([], "identity")}
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
                status: error_response(description)
                for status, description in sorted(errors.items())
            },
        },
    }


def error_response(description: str) -> dict[str, Any]:
    """One error status's OpenAPI response object, with the error shape."""
    return {"description": description, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}


def require_identity(openapi: dict[str, Any]) -> None:
    """Mark the body's ``identity`` required: the route's dependencies ask for it."""
    body = openapi["requestBody"]
    body["required"] = True
    for media in body["content"].values():
        media["schema"]["required"] = ["identity"]

"""The public names: what a user imports stays importable, from where they import it.

A move inside the package (a private module renamed, a subpackage made) must not change any
line of this file.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC: dict[str, set[str]] = {
    "verify_access_tokens": {
        "APIConnectionError", "APIError", "APIResponse", "APIStatusError", "APITimeoutError",
        "AccessToken", "AccessTokens", "AuthenticationError", "BadRequestError", "BatchSummary",
        "ClientStateError", "ConfigurationError", "EndpointAnswer", "EnrollmentBatch",
        "EnrollmentRequest", "EnrollmentResult", "FactorType", "LimiterState", "NotFoundError",
        "OutcomeUnknownError", "PermissionDeniedError", "RateLimitError",
        "RequestValidationError", "ResponseValidationError", "ServerError", "VerifyClient",
        "VerifyError", "__version__", "endpoint_answer",
    },
    "verify_access_tokens.models": {
        "APIResponse", "AccessToken", "EnrollmentRequest", "EnrollmentResult", "FactorType",
    },
    "verify_access_tokens.client": {"VerifyClient"},
    "verify_access_tokens.resources": {"AccessTokens"},
    "verify_access_tokens.resources.access_tokens": {"AccessTokens"},
    "verify_access_tokens.emulator": {"Counters", "Faults", "VerifyEmulator"},
    "verify_access_tokens.testing": {
        "access_token", "access_token_body", "aioresponses", "twilio_error_body",
        "verify_client", "verify_emulator",
    },
    "verify_access_tokens.fastapi": {
        "EndpointError", "access_token_router", "identity_hash", "offered_identity",
        "requested_identity",
    },
    "verify_access_tokens.cli": {"build_parser", "main"},
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_each_public_module_exports_exactly_its_names(module: str) -> None:
    imported = importlib.import_module(module)
    assert set(imported.__all__) == PUBLIC[module]
    for name in imported.__all__:
        assert getattr(imported, name) is not None


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_classes_say_they_come_from_a_public_module(module: str) -> None:
    """``repr`` and tracebacks show where a user imports a class from, not a private file."""
    imported = importlib.import_module(module)
    for name in imported.__all__:
        value = getattr(imported, name)
        if isinstance(value, type):
            owner = value.__module__
            assert not any(part.startswith("_") for part in owner.split(".")), (name, owner)


def test_the_package_shows_no_public_name_outside_its_all() -> None:
    """httpx's test_exported_members: the public surface changes only on purpose."""
    import verify_access_tokens

    # ("@..." names are pytest's assertion-rewriting helpers: the package is also a plugin.)
    public = {name for name in dir(verify_access_tokens) if name[0] not in "_@"}
    submodules = {"client", "models", "resources", "cli", "emulator", "fastapi", "testing"}
    assert public - submodules - {"annotations"} <= PUBLIC["verify_access_tokens"]


def test_top_level_classes_show_the_package_as_their_module() -> None:
    import verify_access_tokens

    for name in verify_access_tokens.__all__:
        value = getattr(verify_access_tokens, name)
        if isinstance(value, type):
            assert value.__module__ == "verify_access_tokens", name
    assert repr(verify_access_tokens.VerifyClient).startswith(
        "<class 'verify_access_tokens.VerifyClient'"
    )

"""Async-first client for Twilio Verify V2 enrollment Access Tokens.

>>> from verify_access_tokens import VerifyClient, FactorType
"""

import sys as _sys

import attrs as _attrs

from ._answers import EndpointAnswer, endpoint_answer
from ._batch._engine import BatchSummary, EnrollmentBatch
from ._core._log import configure_from_env as _configure_logging_from_env
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    ConfigurationError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
    VerifyError,
)
from ._flow import LimiterState
from ._version import __version__
from .client import VerifyClient
from .models import AccessToken, APIResponse, EnrollmentRequest, EnrollmentResult, FactorType
from .resources import AccessTokens

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponse",
    "APIStatusError",
    "APITimeoutError",
    "AccessToken",
    "AccessTokens",
    "AuthenticationError",
    "BadRequestError",
    "BatchSummary",
    "ClientStateError",
    "ConfigurationError",
    "EndpointAnswer",
    "EnrollmentBatch",
    "EnrollmentRequest",
    "EnrollmentResult",
    "FactorType",
    "LimiterState",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ResponseValidationError",
    "ServerError",
    "VerifyClient",
    "VerifyError",
    "__version__",
    "endpoint_answer",
]

# Public classes show as ``verify_access_tokens.X`` in tracebacks, reprs and mypy messages, not
# as the private module that happens to define them (openai-python does the same). The string
# annotations of attrs classes are resolved first, while their own module is known: cattrs would
# otherwise look them up in this package's namespace.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith(__name__ + "."):
        if _attrs.has(_obj):
            _attrs.resolve_types(_obj, {**globals(), **vars(_sys.modules[_obj.__module__])})
        _obj.__module__ = __name__
del _name, _obj

_configure_logging_from_env()

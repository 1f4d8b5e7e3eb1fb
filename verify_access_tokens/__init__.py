"""Async-first client for Twilio Verify V2 enrollment Access Tokens.

>>> from verify_access_tokens import VerifyClient, FactorType
"""

from ._batch._engine import BatchSummary, EnrollmentBatch
from ._core._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchStoppedError,
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
from ._core._log import configure_from_env as _configure_logging_from_env
from ._version import __version__
from .client import VerifyClient
from .models import AccessToken, APIResponse, EnrollmentRequest, EnrollmentResult, FactorType
from .resources import AccessTokens

__all__ = [
    "APIConnectionError",
    "APIResponse",
    "APIStatusError",
    "APITimeoutError",
    "AccessToken",
    "AccessTokens",
    "AuthenticationError",
    "BadRequestError",
    "BatchStoppedError",
    "BatchSummary",
    "ClientStateError",
    "ConfigurationError",
    "EnrollmentBatch",
    "EnrollmentRequest",
    "EnrollmentResult",
    "FactorType",
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
]

_configure_logging_from_env()

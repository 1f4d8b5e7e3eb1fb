"""Every default of the package, in one place, so that a change of policy is one edit."""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://verify.twilio.com"
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_ATTEMPT_TIMEOUT: Final = 35.0  # connect (5 s) plus 30 s for the answer
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_DEADLINE: Final = 60.0
DEFAULT_RETRY_AFTER_MAX: Final = 60.0
DEFAULT_POOL_LIMIT: Final = 100
DEFAULT_KEEPALIVE_TIMEOUT: Final = 30.0
DEFAULT_MAX_RESPONSE_BYTES: Final = 1024 * 1024  # Twilio's access-token bodies are under 2 KB

BACKOFF_BASE: Final = 0.5
BACKOFF_MAX: Final = 8.0
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})

USER_AGENT_NAME: Final = "verify-access-tokens"

ENV_ACCOUNT_SID: Final = "TWILIO_ACCOUNT_SID"
ENV_AUTH_TOKEN: Final = "TWILIO_AUTH_TOKEN"
ENV_API_KEY: Final = "TWILIO_API_KEY"
ENV_API_SECRET: Final = "TWILIO_API_SECRET"
ENV_REGION: Final = "TWILIO_REGION"
ENV_EDGE: Final = "TWILIO_EDGE"
ENV_BASE_URL: Final = "VERIFY_ACCESS_TOKENS_BASE_URL"

# A batch item's 429s ("not processed") are re-sent apart from max_retries, this many times,
# each after a short jittered pause doubling from REQUEUE_PAUSE_FIRST up to REQUEUE_PAUSE_MAX
# (a Retry-After too is cut to it): the limiter, which has just cut its window, paces them.
RATE_LIMIT_PATIENCE: Final = 20
REQUEUE_PAUSE_FIRST: Final = 0.1
REQUEUE_PAUSE_MAX: Final = 2.0

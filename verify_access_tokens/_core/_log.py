"""The package logger, quiet by default.

``VERIFY_ACCESS_TOKENS_LOG=debug|info`` attaches a stderr handler at import, for a quick look
without touching application code. Only metadata is ever logged (method, path, status, Twilio
request id, attempt, backoff): never bodies, headers, credentials or tokens.
"""

from __future__ import annotations

import logging
import os
from typing import Final

ENV_LOG: Final = "VERIFY_ACCESS_TOKENS_LOG"

logger: Final = logging.getLogger("verify_access_tokens")
logger.addHandler(logging.NullHandler())


def configure_from_env(value: str | None = None) -> logging.Handler | None:
    """Attach a stderr handler when the env var (or ``value``) names a level; else do nothing."""
    level_name = (value if value is not None else os.environ.get(ENV_LOG, "")).strip().upper()
    if level_name not in ("DEBUG", "INFO"):
        return None
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level_name)
    return handler

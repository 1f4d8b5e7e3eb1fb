"""``serve``'s log lines: each one timestamped (ISO 8601, UTC), uvicorn's included, as text or JSON.

``--log-format text`` keeps uvicorn's look behind the time (``2026-12-07T09:00:00.123Z INFO:
...``); ``--log-format json`` writes one object per line (``time``, ``level``, ``logger``,
``message``) for a log pipeline. The messages are the same either way, and no more: the package
scrubs credentials from what it logs before a formatter sees it.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
from typing import Any, Final

LOG_FORMATS: Final = ("text", "json")
_PACKAGE_FORMAT: Final = "%(levelname)s:     %(name)s: %(message)s"


def utc_time(record: logging.LogRecord) -> str:
    """The record's time as ISO 8601 UTC with milliseconds: ``2026-12-07T09:00:00.123Z``."""
    moment = _dt.datetime.fromtimestamp(record.created, _dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """A line as it was, with the UTC time in front."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{utc_time(record)} {super().format(record)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def formatter(log_format: str) -> logging.Formatter:
    """The package's formatter for ``log_format``."""
    return JsonFormatter() if log_format == "json" else TextFormatter(_PACKAGE_FORMAT)


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """Uvicorn's own logging configuration with the time in front of each line, or in JSON."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name, formatter_config in config["formatters"].items():
        if log_format == "json":
            config["formatters"][name] = {"()": f"{__name__}.JsonFormatter"}
        else:
            formatter_config["()"] = f"{__name__}.{_TEXT_OF[name]}"
    return config


def _uvicorn_text(base: str) -> type[logging.Formatter]:
    """Uvicorn's formatter class ``base`` (colours, level prefix), with the UTC time in front."""
    import uvicorn.logging

    parent: type[logging.Formatter] = getattr(uvicorn.logging, base)

    class Timestamped(parent):  # type: ignore[valid-type,misc]
        def format(self, record: logging.LogRecord) -> str:
            return f"{utc_time(record)} {super().format(record)}"

    Timestamped.__name__ = Timestamped.__qualname__ = f"Timestamped{base}"
    return Timestamped


_TEXT_OF: Final = {"default": "UvicornText", "access": "UvicornAccessText"}


def __getattr__(name: str) -> type[logging.Formatter]:
    """Uvicorn's formatters with a time, made on first use (uvicorn is an optional extra)."""
    if name == "UvicornText":
        return _uvicorn_text("DefaultFormatter")
    if name == "UvicornAccessText":
        return _uvicorn_text("AccessFormatter")
    raise AttributeError(name)

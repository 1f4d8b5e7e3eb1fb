"""``enroll``'s INPUT formats: lines, CSV and JSONL, parsed lazily into `EnrollmentRequest` items.

The format comes from ``--format``, else from the extension (``.csv``, ``.jsonl``, ``.ndjson``),
else from the first line: a JSON value is JSONL, a header with an ``identity`` column (split by
``,`` ``;`` or a tab) is CSV, and anything else is one identity per line, where a first line that
is only ``identity`` (any case) is a header, with a note. CSV column names match whatever their
case, spaces, dashes and underscores (``Friendly Name``, ``friendly_name``,
``FactorFriendlyName``); a column the tool does not use is named once on stderr.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .. import ConfigurationError, EnrollmentRequest

FORMATS = ("auto", "lines", "csv", "jsonl")
DELIMITERS = (",", ";", "\t")
_COLUMNS = {"identity": "identity", "friendlyname": "name", "factorfriendlyname": "name"}


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def format_from_name(path: str, requested: str) -> str:
    """The format ``--format`` or the extension names, or ``"auto"`` to look at the first line."""
    if requested != "auto" or path == "-":
        return requested
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "auto")


def sniff_delimiter(header: str) -> str | None:
    """The delimiter with which ``header`` has an identity column, or None."""
    for delimiter in DELIMITERS:
        fields = next(csv.reader([header], delimiter=delimiter), [])
        if any(_normal(field) == "identity" for field in fields):
            return delimiter
    return None


def format_from_first_line(line: str, fmt: str) -> str:
    """Resolve ``"auto"`` from the first non-blank line of the input."""
    if fmt != "auto":
        return fmt
    text = line.strip()
    if text.startswith(("{", '"')):
        return "jsonl"
    if _normal(text) != "identity" and sniff_delimiter(text) is not None:
        return "csv"
    return "lines"


def has_header(first_line: str, fmt: str) -> bool:
    """Whether the input's first non-blank line is a header rather than an item."""
    resolved = format_from_first_line(first_line, fmt)
    return resolved == "csv" or (resolved == "lines" and _normal(first_line) == "identity")


def decoded_lines(stream: Iterable[bytes | str]) -> Iterator[str]:
    """UTF-8 lines, a leading byte-order mark (Excel's "CSV UTF-8") dropped.

    A line that is not UTF-8 is a ConfigurationError naming it rather than a UnicodeDecodeError.
    """
    for number, raw in enumerate(stream, 1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise ConfigurationError("INPUT", f"line {number} is not valid UTF-8") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def read_items(
    stream: Iterable[bytes | str], fmt: str, note: Callable[[str], None]
) -> Iterator[EnrollmentRequest]:
    """Lazily parse input lines into requests; blank lines are skipped.

    Values are not checked here: a JSONL identity, name or ttl of the wrong type is that
    identity's ``failed`` result (``RequestValidationError``), like any other bad value.

    Args:
        stream: The input's lines, bytes or text.
        fmt: One of `FORMATS`; ``"auto"`` is resolved from the first non-blank line.
        note: Called with each remark for the user (a header taken as such, ignored columns).
    """
    lines = decoded_lines(stream)
    if fmt == "auto" or fmt == "lines":
        first = next((line for line in lines if line.strip()), None)
        if first is None:
            return
        fmt = format_from_first_line(first, fmt)
        lines = itertools.chain([first], lines)
    if fmt == "csv":
        yield from _csv_items(lines, note)
    elif fmt == "jsonl":
        yield from _jsonl_items(lines)
    else:
        yield from _line_items(lines, note)


def _line_items(lines: Iterator[str], note: Callable[[str], None]) -> Iterator[EnrollmentRequest]:
    first = True
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if first and _normal(text) == "identity":
            note(f"INPUT: its first line {text!r} is taken as a header, not an identity")
        else:
            yield EnrollmentRequest(text)
        first = False


def _jsonl_items(lines: Iterator[str]) -> Iterator[EnrollmentRequest]:
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise ConfigurationError("INPUT", f"line {number} is not valid JSON") from None
        if isinstance(data, str):
            yield EnrollmentRequest(data)
        elif isinstance(data, dict) and "identity" in data:
            yield EnrollmentRequest(
                data["identity"],
                factor_friendly_name=data.get("friendly_name"),
                ttl=data.get("ttl"),
            )
        else:
            raise ConfigurationError("INPUT", f"line {number} needs an 'identity' key")


def _csv_items(lines: Iterator[str], note: Callable[[str], None]) -> Iterator[EnrollmentRequest]:
    first = next((line for line in lines if line.strip()), "")
    delimiter = sniff_delimiter(first)
    if delimiter is None:
        shown = first.strip()[:80]
        raise ConfigurationError(
            "INPUT",
            "a CSV input needs a header with an 'identity' column, its columns separated by "
            f"',' ';' or a tab; its first line is {shown!r}",
        )
    rows = _csv_rows(itertools.chain([first], lines), delimiter)
    header = [_COLUMNS.get(_normal(name)) for name in next(rows)]
    at = header.index("identity")
    name_at = header.index("name") if "name" in header else None
    unknown = [name.strip() for name, use in zip(next(_csv_rows([first], delimiter)), header,
                                                  strict=True) if use is None]  # fmt: skip
    if unknown:
        note(f"INPUT: ignoring the columns {', '.join(repr(n) for n in unknown)}")
    for row in rows:
        identity = row[at].strip() if len(row) > at else ""
        if identity:
            name = row[name_at].strip() if name_at is not None and len(row) > name_at else ""
            yield EnrollmentRequest(identity, factor_friendly_name=name or None)


def _csv_rows(lines: Iterable[str], delimiter: str) -> Iterator[list[str]]:
    """Yield csv.reader's rows.

    A line it cannot parse (a NUL, a field past its size limit) is a ConfigurationError naming
    the line rather than a csv.Error.
    """
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfigurationError("INPUT", f"line {reader.line_num}: {exc}") from None
        yield row

"""``enroll``'s INPUT formats: lines, CSV and JSONL, parsed lazily into `EnrollmentRequest` items.

The format comes from ``--format``, else from the extension (``.csv``, ``.jsonl``, ``.ndjson``),
else from the first line: a JSON value is JSONL, a header with the identity column (split by
``,`` ``;`` or a tab) is CSV, and anything else is one identity per line, where a first line that
is only ``identity`` (any case) is a header, with a note. CSV column names match whatever their
case, spaces, dashes and underscores (``Friendly Name``, ``friendly_name``,
``FactorFriendlyName``); a column the tool does not use is named once on stderr.

CSV is read strictly, one physical line per row: a quoted field that does not close on its own
line (a broken quote in an export) is an error naming that line, never a field that swallows the
rows after it. Lines are counted as they are read (`InputCount`), so a run accounts for each.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs

from ... import ConfigurationError, EnrollmentRequest

FORMATS = ("auto", "lines", "csv", "jsonl")
DELIMITERS = (",", ";", "\t")
IDENTITY_COLUMN = "identity"
_NAME_COLUMNS = ("friendlyname", "factorfriendlyname")

Numbered = tuple[int, str]


@attrs.define
class InputCount:
    """What the lines of INPUT turned out to be: items, blank or comment lines, a header."""

    lines: int = 0
    items: int = 0
    skipped: int = 0  # blank lines, and comment lines (``#`` first) of the lines and CSV formats
    headers: int = 0

    @property
    def unreadable(self) -> int:
        """Lines read but neither an item, a header nor skipped: the one a run stopped at."""
        return self.lines - self.items - self.skipped - self.headers


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def format_from_name(path: str, requested: str) -> str:
    """The format ``--format`` or the extension names, or ``"auto"`` to look at the first line."""
    if requested != "auto" or path == "-":
        return requested
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "auto")


def _header_fields(header: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([header.rstrip("\r\n")], delimiter=delimiter, strict=True), [])
    except csv.Error:
        return []


def sniff_delimiter(header: str, column: str = IDENTITY_COLUMN) -> str | None:
    """The delimiter with which ``header`` has the identity ``column``, or None."""
    for delimiter in DELIMITERS:
        if any(_normal(field) == _normal(column) for field in _header_fields(header, delimiter)):
            return delimiter
    return None


def format_from_first_line(line: str, fmt: str, column: str = IDENTITY_COLUMN) -> str:
    """Resolve ``"auto"`` from the first non-blank line of the input."""
    if fmt != "auto":
        return fmt
    text = line.strip()
    if text.startswith("{"):
        return "jsonl"
    if _normal(text) != _normal(column) and sniff_delimiter(text, column) is not None:
        return "csv"  # a quoted header ("identity","name") too, before a JSON string
    if text.startswith('"'):
        return "jsonl"
    return "lines"


def decoded_lines(stream: Iterable[bytes | str], count: InputCount) -> Iterator[Numbered]:
    """Numbered UTF-8 lines, a leading byte-order mark (Excel's "CSV UTF-8") dropped.

    A line that is not UTF-8 is a ConfigurationError naming it rather than a UnicodeDecodeError.
    """
    for number, raw in enumerate(stream, 1):
        count.lines = number  # read, whatever it turns out to be
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise ConfigurationError("INPUT", f"line {number} is not valid UTF-8") from None
        yield number, text.removeprefix("\ufeff") if number == 1 else text


def read_items(
    stream: Iterable[bytes | str],
    fmt: str,
    note: Callable[[str], None],
    count: InputCount | None = None,
    *,
    identity_column: str = IDENTITY_COLUMN,
) -> Iterator[EnrollmentRequest]:
    """Lazily parse input lines into requests; blank and comment lines are counted, not sent.

    Values are not checked here: a JSONL identity, name or ttl of the wrong type is that
    identity's ``failed`` result (``RequestValidationError``), like any other bad value.

    Args:
        stream: The input's lines, bytes or text.
        fmt: One of `FORMATS`; ``"auto"`` is resolved from the first non-blank line.
        note: Called with each remark for the user (a header taken as such, ignored columns).
        count: Counts the lines read and what they were (default: a throwaway one).
        identity_column: The CSV column holding the identity (``--identity-column``).
    """
    count = count if count is not None else InputCount()
    lines = _counting_blanks(decoded_lines(stream, count), count)
    first = next(lines, None)
    if first is None:
        return
    fmt = format_from_first_line(first[1], fmt, identity_column)
    lines = itertools.chain([first], lines)
    if fmt == "csv":
        items = _csv_items(lines, note, count, identity_column)
    elif fmt == "jsonl":
        items = _jsonl_items(lines)
    else:
        items = _line_items(lines, note, count, identity_column)
    for item in items:
        count.items += 1
        yield item


def _counting_blanks(lines: Iterator[Numbered], count: InputCount) -> Iterator[Numbered]:
    """The lines that hold something; blank ones (and ``#`` comments) are counted here."""
    for number, line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            count.skipped += 1
            continue
        yield number, line


def _line_items(
    lines: Iterator[Numbered], note: Callable[[str], None], count: InputCount, column: str
) -> Iterator[EnrollmentRequest]:
    first = True
    for _, line in lines:
        text = line.strip()
        if first and _normal(text) in (IDENTITY_COLUMN, _normal(column)):
            count.headers += 1
            note(f"INPUT: its first line {text!r} is taken as a header, not an identity")
        else:
            yield EnrollmentRequest(text)
        first = False


def _jsonl_items(lines: Iterator[Numbered]) -> Iterator[EnrollmentRequest]:
    for number, line in lines:
        try:
            data = json.loads(line)
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


def _csv_items(
    lines: Iterator[Numbered], note: Callable[[str], None], count: InputCount, column: str
) -> Iterator[EnrollmentRequest]:
    number, first = next(lines, (0, ""))
    delimiter = sniff_delimiter(first, column)
    if delimiter is None:
        raise ConfigurationError("INPUT", _no_identity_column(first, column))
    names = _csv_row(number, first, delimiter)
    count.headers += 1
    normal = [_normal(name) for name in names]
    at = normal.index(_normal(column))
    name_at = next((i for i, n in enumerate(normal) if n in _NAME_COLUMNS), None)
    unused = [name.strip() for i, name in enumerate(names) if i not in (at, name_at)]
    if unused:
        note(f"INPUT: ignoring the columns {', '.join(repr(n) for n in unused)}")
    for number, line in lines:
        row = _csv_row(number, line, delimiter)
        identity = row[at].strip() if len(row) > at else ""
        if not identity:
            count.skipped += 1  # a row without an identity: nothing to send
            continue
        name = row[name_at].strip() if name_at is not None and len(row) > name_at else ""
        yield EnrollmentRequest(identity, factor_friendly_name=name or None)


def _csv_row(number: int, line: str, delimiter: str) -> list[str]:
    """One physical line as one CSV row; a quote that does not close on it names the line."""
    try:
        return next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter, strict=True), [])
    except csv.Error as exc:
        problem = str(exc)
        if "end of data" in problem:
            problem = (
                'a quoted field is not closed on this line (write a quote inside a field twice: "")'
            )
        elif "expected after" in problem:
            problem = 'text after a quoted field\'s closing quote (write a quote twice: "")'
        elif "new-line" in problem:
            problem = "a line break (a bare CR) inside an unquoted field"
        raise ConfigurationError("INPUT", f"line {number}: {problem}") from None


def _no_identity_column(first: str, column: str) -> str:
    fields = next(
        (fields for fields in (_header_fields(first, d) for d in DELIMITERS) if len(fields) > 1),
        _header_fields(first, ","),
    )
    shown = ", ".join(repr(field.strip()[:40]) for field in fields[:20]) or repr(first[:80])
    return (
        f"a CSV input needs a header with an {column!r} column (name another with "
        f"--identity-column), its columns separated by ',' ';' or a tab; its columns are {shown}"
    )

"""What the reference site's build hooks compute, in plain Python (no mkdocs, no griffe).

The hooks (``mkdocs_hooks.py``, ``griffe_defaults.py``) are thin wrappers around these
functions, so ``tests/guide/test_docs.py`` checks them without the docs tooling installed:

- `rendered_default`: a signature default as its value (``2``, ``60.0``), not a constant's
  name or a sentinel, taken from the running package so no value is written twice.
- `cli_reference`: the CLI page, from the parser itself (``build_parser()``), so it cannot drift.
- `slugify` / `headings` / `local_links`: the anchors of the guide's headings and the links
  between README and the pages, so a link to a heading that is gone is caught.
- `leaks`: words of the package's insides that must not reach the site.
"""

from __future__ import annotations

import ast
import contextlib
import enum
import importlib
import inspect
import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent

# ---------------------------------------------------------------------------------------------
# Signature defaults

# Parameters whose signature default is ``None`` but which stand for a package default: the
# rendered signature shows that default's value (from ``_core/_constants.py``, never copied).
NONE_MEANS: dict[str, dict[str, str]] = {
    "verify_access_tokens.client.VerifyClient.__init__": {
        "timeout": "DEFAULT_ATTEMPT_TIMEOUT",
        "pool_limit": "DEFAULT_POOL_LIMIT",
        "keepalive_timeout": "DEFAULT_KEEPALIVE_TIMEOUT",
    },
}

_CONSTANT = re.compile(r"^(?:\w+\.)*[A-Z][A-Z0-9_]*$")  # DEFAULT_X, _constants.DEFAULT_X


def resolve(path: str) -> Any:
    """The runtime object at a dotted ``path`` (``package.module.Class.method``)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def rendered_default(path: str, parameter: str, source: str) -> str | None:
    """How a parameter's default should read on the site, or ``None`` to keep ``source``.

    Args:
        path: Dotted path of the function (``verify_access_tokens.client.VerifyClient.__init__``).
        parameter: The parameter's name.
        source: Its default as written in the source (``DEFAULT_MAX_RETRIES``, ``None``).

    Returns:
        The value's ``repr`` (``2``, ``60.0``) for a default that names a constant or stands
        for one (`NONE_MEANS`); ``Class.MEMBER`` for an enum member; ``...`` for a sentinel
        ("not given: unchanged"); else ``None``.
    """
    from verify_access_tokens._core import _constants

    stands_for = NONE_MEANS.get(path, {}).get(parameter)
    if stands_for is not None and source == "None":
        return repr(getattr(_constants, stands_for))
    if not _CONSTANT.match(source):
        return None
    try:
        value = inspect.signature(resolve(path)).parameters[parameter].default
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return None  # not reachable at runtime (a nested or generated function): as written
    if type(value).__name__ == "NotGiven":  # the sentinel, wherever the package keeps it
        return "..."
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    text = repr(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return text


# ---------------------------------------------------------------------------------------------
# The CLI page

HELP_WIDTH = 82  # what fits the site's text column at 1280 px without scrolling


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    """Help wrapped to ``width`` columns (argparse reads ``COLUMNS``) on every machine."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def cli_commands() -> list[tuple[str, str, Any]]:
    """``(name, one-line help, parser)`` of each subcommand, in the parser's order."""
    import argparse

    from verify_access_tokens.cli import build_parser

    parser = build_parser()
    # argparse has no public way to list subcommands; _actions is stable since Python 3.2.
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]


def cli_reference() -> str:
    """Markdown for every command: its one-line summary and its whole ``--help``."""
    from verify_access_tokens.cli import build_parser

    with _columns(HELP_WIDTH):
        parts = [_help_block(build_parser().format_help())]
        for name, summary, sub in cli_commands():
            parts.append(f"## `{name}`\n\n{summary[:1].upper()}{summary[1:]}.\n")
            parts.append(_help_block(sub.format_help()))
    return "\n".join(parts)


def _help_block(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # argparse colours help on newer Pythons
    return f"```text\n{text.rstrip()}\n```\n"


# ---------------------------------------------------------------------------------------------
# The guide: anchors and links

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6}) (.+?)\s*#*$")
# A Markdown link or image target: [text](target) / ![alt](target), up to a space or ")".
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slugify(text: str) -> str:
    """The anchor Python-Markdown's ``toc`` extension gives a heading.

    Its default ``slugify``, restated so the tests need no Markdown package; the build checks
    that both agree on every heading of the guide (``mkdocs_hooks.on_config``).
    """
    plain = re.sub(r"`([^`]*)`", r"\1", text)
    plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", plain)
    plain = re.sub(r"[*_]", "", plain)
    plain = unicodedata.normalize("NFKD", plain).encode("ascii", "ignore").decode("ascii")
    plain = re.sub(r"[^\w\s-]", "", plain).strip().lower()
    return re.sub(r"[-\s]+", "-", plain)


def headings(markdown: str) -> Iterator[tuple[int, str]]:
    """``(level, text)`` of each ATX heading outside fenced code blocks."""
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)) is not None:
            yield len(match.group(1)), match.group(2)


def anchors(markdown: str) -> set[str]:
    """The anchors a page's headings get (a repeated heading gets ``_1``, ``_2`` ...)."""
    seen: set[str] = set()
    for _, text in headings(markdown):
        slug = base = slugify(text)
        count = 0
        while slug in seen:
            count += 1
            slug = f"{base}_{count}"
        seen.add(slug)
    return seen


def local_links(markdown: str) -> list[str]:
    """Every link target outside code (fenced blocks and inline code) that is not a URL."""
    fenced = False
    found = []
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):
                found.append(target)
    return found


# ---------------------------------------------------------------------------------------------
# Words of the package's insides

LEAKS = re.compile(
    r"APIResource|WithHttpInfo|NOT_GIVEN|NotGiven|\bDEFAULT_[A-Z_]+|seed's|\bthe seed\b"
)


def leaks(text: str) -> list[str]:
    """Internal words found in ``text`` (rendered HTML or Markdown), each once, in order."""
    return list(dict.fromkeys(match.group(0) for match in LEAKS.finditer(text)))

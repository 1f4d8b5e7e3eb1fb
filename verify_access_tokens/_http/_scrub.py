"""Credentials out of server text: what a server or proxy said, scrubbed before anyone sees it.

Server text (Twilio's message, a proxy's page, a status line, aiohttp's own text quoting what
the server sent) passes through a `Scrubber` before it reaches an exception, a log record or
the CLI.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from typing import Final
from urllib.parse import quote, quote_plus

SERVER_TEXT_MAX: Final = 500
REDACTED: Final = "<redacted>"


class Scrubber:
    """Removes credentials from server-provided text and caps its length.

    A server or proxy may echo the request's ``Authorization`` (or a proxy's
    ``Proxy-Authorization``) back in its error message, its status line or its headers;
    everything a server said passes through here before it reaches an exception, a log record
    or the CLI. Each whole form of a credential (the header value, its base64, ``user:secret``,
    the secret, and each of them percent-encoded) is replaced in any letter case, and so is any
    run of at least :data:`FRAGMENT` characters of the base64 or the secret (plain or
    percent-encoded): a server that cuts the text (aiohttp quotes only the first 100 bytes of an
    over-long status line) must not leave most of a secret behind.
    """

    __slots__ = ("_fragments", "_pattern")

    def __init__(self, authorization: str, proxy_authorization: str | None = None) -> None:
        secrets: set[str] = set()
        fragments: set[str] = set()
        # The client's header is UTF-8 (ours); aiohttp encodes a proxy's in latin-1.
        for value, encoding in ((authorization, "utf-8"), (proxy_authorization, "latin-1")):
            if value is not None:
                _add_basic_forms(value, encoding, secrets, fragments)
        secrets.discard("")
        # Longest first, so that the Basic value goes before the base64 part it contains.
        alternatives = "|".join(map(re.escape, sorted(secrets, key=len, reverse=True)))
        self._pattern = re.compile(alternatives, re.IGNORECASE) if alternatives else None
        self._fragments = frozenset(fragments)

    def __call__(self, text: str, limit: int = SERVER_TEXT_MAX) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        more = len(text) - limit
        if more > 0:
            text = text[:limit]
        text = self._redact_fragments(text)  # after the cap: its cost is bounded by ``limit``
        return text + f"... ({more} more characters)" if more > 0 else text

    def _redact_fragments(self, text: str) -> str:
        """Replace every run of text covered by windows of a credential's characters."""
        fragments = self._fragments
        folded = _ascii_lower(text)  # same length as ``text``: indices carry over
        spans: list[list[int]] = []
        for i in range(len(folded) - FRAGMENT + 1):
            if folded[i : i + FRAGMENT] in fragments:
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = i + FRAGMENT
                else:
                    spans.append([i, i + FRAGMENT])
        if not spans:
            return text
        parts: list[str] = []
        end = 0
        for start, stop in spans:
            parts += (text[end:start], REDACTED)
            end = stop
        parts.append(text[end:])
        return "".join(parts)

    def __repr__(self) -> str:
        return "Scrubber(<redacted>)"


FRAGMENT: Final = 8  # a shorter run of a secret is not redacted on its own (too many false hits)
_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _ascii_lower(text: str) -> str:
    """``text`` with ASCII letters lower-cased; unlike ``str.lower``, never changes its length."""
    return text.translate(_ASCII_LOWER)


def _add_basic_forms(value: str, encoding: str, secrets: set[str], fragments: set[str]) -> None:
    """The forms of a ``Basic`` credential to replace whole, and the ones to match in part."""
    secrets.add(value)
    scheme, _, encoded = value.partition(" ")
    if scheme != "Basic" or not encoded:
        return  # pragma: no cover - we build Basic headers only
    try:
        pair = base64.b64decode(encoded, validate=True).decode(encoding)
    except (binascii.Error, UnicodeDecodeError):  # pragma: no cover - we built it
        pair = ""
    secret = pair.partition(":")[2]
    for form in (value, encoded, pair, secret):
        secrets.update((form, quote(form), quote(form, safe=""), quote_plus(form, safe="")))
    for plain in (encoded, ":" + secret):
        for form in (plain, quote(plain), quote(plain, safe="")):
            form = _ascii_lower(form)
            fragments.update(form[i : i + FRAGMENT] for i in range(len(form) - FRAGMENT + 1))

"""The resume index: what ``enroll`` decides for each identity of INPUT, in bounded memory.

An identity's last record decides (a later run's lines follow an earlier's), and all a decision
needs is kept: one small integer per identity (its state, below), in one dict whose values are
interned small ints. No record, token or message is kept. The same dict records the identities
this run has taken, so a repeated identity is seen as such (``benchmarks/bench_resume.py``
measures a 1 000 000-identity journal, and compares an ``sqlite3`` index).

The headers of earlier runs say which service the file belongs to, and the ttl and friendly
name the last run used.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import re
from collections.abc import Iterable
from typing import Any

import attrs

from ._journal import CREATED, FAILED, HEADER, NOT_SENT, SENDING, UNKNOWN

# The lines this tool writes start the same way: they are read without a full JSON parse (the
# token makes up most of a line). Anything else, escapes included, takes the json.loads path.
_FAST = re.compile(rb'\{"identity": "([^"\\]*)", "status": "(created|sending)"')
_EXPIRES = re.compile(rb'"expires_at": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"')

# States. TAKEN is added to an identity's state once this run has taken it from INPUT.
DONE, EXPIRED, IN_FLIGHT, RETRY, FINAL, NEW = range(6)
TAKEN = 8


@attrs.define
class ResumeIndex:
    """Each identity's state, and what the earlier runs' headers said."""

    states: dict[str, int] = attrs.field(factory=dict)
    service_sid: str | None = None  # the first header's: the file belongs to it
    ttl: int | None = None  # the last header's
    friendly_name: str | None = None  # the last header's
    has_header: bool = False

    def state(self, identity: str) -> int:
        """The state of ``identity``: `NEW` when no earlier run recorded it."""
        return self.states.get(identity, NEW)

    def plan(self) -> str:
        """What a resume will do with the identities the results file holds, before it starts."""
        counts = collections.Counter(state % TAKEN for state in self.states.values())
        parts = [f"{counts[DONE]} done (skipped)"]
        if counts[EXPIRED]:
            parts.append(f"{counts[EXPIRED]} expired, to re-mint (--keep-expired skips them)")
        if counts[IN_FLIGHT]:
            parts.append(
                f"{counts[IN_FLIGHT]} in flight when the last run ended, to send again "
                "(possible duplicates)"
            )
        if counts[RETRY]:
            parts.append(f"{counts[RETRY]} failed or unknown, to send again")
        if counts[FINAL]:
            parts.append(f"{counts[FINAL]} failed for good (skipped)")
        return "resuming: " + ", ".join(parts) + "; identities of INPUT not in it are new"

    def take(self, identity: str) -> int:
        """Mark ``identity`` as taken by this run; return the state it had, `TAKEN` included."""
        state = self.states.get(identity, NEW)
        if state < TAKEN:
            self.states[identity] = state + TAKEN
        return state


def read_index(
    lines: Iterable[bytes], *, now: _dt.datetime, keep_expired: bool, retry_failed_all: bool
) -> ResumeIndex:
    """Build the index from a results file's lines.

    A line that is not a JSON object (cut short by a crash, or absurdly nested) is ignored: that
    identity is decided by its other lines, or is new. An expiry that cannot be read counts as
    valid, like a record written before ``expires_at`` existed.

    Args:
        lines: The results file's lines, oldest first.
        now: The time expiries are compared with.
        keep_expired: Count a created identity as done even when its token expired.
        retry_failed_all: Send failed items again even when their error would recur.
    """
    index = ResumeIndex()
    states = index.states
    now_text = now.astimezone(_dt.UTC).isoformat()
    now_bytes = now_text[:19].encode()
    for line in lines:
        fast = _FAST.match(line)
        if fast is not None:
            identity_bytes, status_bytes = fast.groups()
            if status_bytes == b"sending":
                states[identity_bytes.decode()] = IN_FLIGHT
                continue
            expires = _EXPIRES.search(line, fast.end())
            if expires is not None:
                valid = keep_expired or expires[1][:19] > now_bytes
                states[identity_bytes.decode()] = DONE if valid else EXPIRED
                continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            continue
        if not isinstance(record, dict):
            continue
        if record.get("record") == HEADER:
            _read_header(index, record)
            continue
        identity = record.get("identity")
        if identity is None:
            continue
        status = record.get("status")
        if status == CREATED:
            state = DONE if keep_expired or not _expired(record, now, now_text) else EXPIRED
        elif status == SENDING:
            state = IN_FLIGHT
        elif status in (UNKNOWN, NOT_SENT):
            state = RETRY
        elif status == FAILED:
            error = record.get("error")
            again = not isinstance(error, dict) or error.get("retryable", True) is not False
            state = RETRY if again or retry_failed_all else FINAL
        else:
            continue
        states[identity if isinstance(identity, str) else str(identity)] = state
    return index


def _read_header(index: ResumeIndex, record: dict[str, Any]) -> None:
    service = record.get("service_sid")
    if index.service_sid is None and isinstance(service, str):
        index.service_sid = service
    ttl = record.get("ttl")
    index.ttl = ttl if isinstance(ttl, int) else None
    name = record.get("friendly_name")
    index.friendly_name = name if isinstance(name, str) else None
    index.has_header = True


def _expired(record: dict[str, Any], now: _dt.datetime, now_text: str) -> bool:
    """Whether a created record's token has expired.

    Not when its expiry cannot be read (malformed, without a time zone, out of range). The
    common case, an ``expires_at`` this tool wrote (UTC, ``Z``), is compared as text.
    """
    expires = record.get("expires_at")
    if isinstance(expires, str) and len(expires) == 20 and expires.endswith("Z"):
        return expires[:19] <= now_text[:19]
    try:
        if isinstance(expires, str):
            moment = _dt.datetime.fromisoformat(expires)
        else:
            created = _dt.datetime.fromisoformat(record["date_created"])
            moment = created + _dt.timedelta(seconds=int(record["ttl"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        return False
    return moment.utcoffset() is not None and moment <= now

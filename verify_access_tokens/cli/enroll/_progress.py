"""``enroll``'s progress: a tqdm bar on a terminal, else a line on stderr every 10 s.

The total is shown only when it is known (INPUT is a regular file, checked before the run);
otherwise the count goes up without one. Items decided without a request (already enrolled,
repeated) count too. Notes go through `say`, which writes above a running bar, never into it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

PROGRESS_EVERY = 10.0  # seconds between progress lines when there is no progress bar


class ProgressLines:
    """Without tqdm (or a terminal): a count and a rate on stderr every PROGRESS_EVERY s."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.started = self.last = time.monotonic()

    def update(self, done: int) -> None:
        self.done += done
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            rate = self.done / (now - self.started) if now > self.started else 0.0
            of = f"/{self.total}" if self.total is not None else ""
            print(
                f"progress: {self.done}{of} done, {self.failed} failed, {rate:.0f}/s",
                file=sys.stderr,
                flush=True,
            )

    def set_postfix(self, errors: int) -> None:
        self.failed = errors

    def close(self) -> None:
        """The summary line follows; nothing to tidy up."""


_bar: Any = None  # the running tqdm bar, which `say` writes above


def say(text: str) -> None:
    """A note for the user on stderr, above the progress bar when one runs."""
    line = f"note: {text}"
    if _bar is not None:
        _bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


def progress(total: int | None, quiet: bool) -> Any:
    """The progress display for ``total`` items (None: unknown), or None when ``quiet``."""
    global _bar
    if quiet:
        return None
    if sys.stderr.isatty():
        try:
            import tqdm  # noqa: F401
        except ImportError:
            pass
        else:
            _bar = _tqdm_bar()(total=total, unit="id", file=sys.stderr, dynamic_ncols=True)
            return _bar
    return ProgressLines(total)


def _tqdm_bar() -> type[Any]:
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        def close(self) -> None:
            global _bar
            _bar = None
            super().close()

    return Bar

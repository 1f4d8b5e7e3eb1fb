"""A batch's running totals."""

from __future__ import annotations

import collections
import time

import attrs

from ..models import EnrollmentResult


@attrs.define
class BatchSummary:
    """Running totals of a batch; final once the iteration ends.

    Attributes:
        succeeded: Items that got their token (default 0).
        failed: Failed items counted by error class name, such as ``"RateLimitError"``.
        retried: Extra HTTP attempts beyond the first, summed over the items (default 0).
        started_at: ``time.perf_counter()`` when the iteration started (default ``None``).
        finished_at: ``time.perf_counter()`` when it ended (default ``None``: still running).
    """

    succeeded: int = 0
    failed: collections.Counter[str] = attrs.field(factory=collections.Counter)
    retried: int = 0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def failed_total(self) -> int:
        """Failed items, whatever the error (``failed`` counts them by error type)."""
        return sum(self.failed.values())

    @property
    def total(self) -> int:
        """Items finished so far: succeeded or failed."""
        return self.succeeded + self.failed_total

    @property
    def elapsed(self) -> float:
        """Seconds since the iteration started (until it ended); 0.0 before it starts."""
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return end - self.started_at

    @property
    def rate(self) -> float:
        """Completed items per second."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def record(self, result: EnrollmentResult) -> None:
        """Count one finished item; the batch calls this once per result.

        Args:
            result: The item's outcome.
        """
        if result.error is None:
            self.succeeded += 1
        else:
            self.failed[type(result.error).__name__] += 1
        self.retried += max(0, result.attempts - 1)

"""The emulator's counters: written by the app and by the fault injector, read by tests."""

from __future__ import annotations

import attrs


@attrs.define
class Counters:
    """What the emulator saw and did; read them in tests to prove what reached the server.

    Attributes:
        requests: Requests received, whatever became of them.
        tokens_created: Access tokens created (a lost answer's token included).
        fetches: Tokens fetched successfully.
        rate_limited: Requests answered 429, by ``Faults.rate_limit`` or
            ``Faults.max_concurrent``.
        concurrency_limited: Requests answered 429 by ``Faults.max_concurrent`` or
            ``Faults.reject_first``.
        peak_in_flight: Most requests in flight at once (429s included) since the start.
        errors_injected: Requests answered 503 by ``Faults.error_rate``.
        dropped: Connections closed without an answer by ``Faults.drop_rate``.
        unauthorized: Requests answered 401 (wrong or missing credentials).
        bad_requests: Requests answered 400 (a parameter broke a rule).
        not_found: Requests answered 404 (unknown service or token).
        responses_lost: Creates whose token was made but whose answer was dropped.
    """

    requests: int = 0
    tokens_created: int = 0
    fetches: int = 0
    rate_limited: int = 0
    concurrency_limited: int = 0
    peak_in_flight: int = 0
    errors_injected: int = 0
    dropped: int = 0
    unauthorized: int = 0
    bad_requests: int = 0
    not_found: int = 0
    responses_lost: int = 0

    @property
    def faults_injected(self) -> int:
        """Requests a fault was injected into: 429s, 503s, dropped and lost answers."""
        return self.rate_limited + self.errors_injected + self.dropped + self.responses_lost

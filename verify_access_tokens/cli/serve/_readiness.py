"""``serve``'s readiness: whether a token can be minted now, asked of Twilio at most every 30 s.

A check is one ``fetch`` of a sid that does not exist: a 404 says the credentials work and the
upstream answers (and creates nothing). Refused credentials (401, 403), an upstream that cannot
be reached, or a 5xx make the endpoint not ready (503) until a later check succeeds. A 429 is
ready: the account is busy, its credentials are fine, and pulling every replica out of a load
balancer under load would make it worse. Checks share one upstream call: however many probes
arrive, at most one request is in flight, and its answer serves them all for `CHECK_EVERY`. A
request cut on a pooled connection the server had closed is sent once more, on a new one: a
stale keep-alive connection must not take the endpoint out for 30 s.
"""

from __future__ import annotations

import asyncio
from typing import Final

from ... import APIConnectionError, NotFoundError, RateLimitError, VerifyClient, VerifyError

CHECK_EVERY: Final = 30.0  # seconds an answer of the upstream is trusted
PROBE_SID: Final = "YK" + "0" * 32  # no token has it: a fetch of it is a 404 when all is well


class Readiness:
    """The last check's answer, and the one check in flight."""

    def __init__(self, client: VerifyClient, service_sid: str) -> None:
        self._client = client.with_options(max_retries=0, deadline=10.0)
        self._service_sid = service_sid
        self._checked_at = -CHECK_EVERY
        self._problem: str | None = None
        self._lock = asyncio.Lock()

    async def problem(self) -> str | None:
        """Why a token cannot be minted now, or ``None``.

        Asks Twilio when the last answer is older than `CHECK_EVERY`: one request, whoever
        else asks meanwhile.
        """
        loop = asyncio.get_running_loop()
        async with self._lock:
            if loop.time() - self._checked_at >= CHECK_EVERY:
                self._problem = await self._check()
                self._checked_at = loop.time()
            return self._problem

    async def _check(self) -> str | None:
        try:
            return await self._probe()
        except APIConnectionError as exc:
            if not exc.request_sent:
                return _problem(exc)
        try:  # a pooled connection the server had closed: once more, on a new one
            return await self._probe()
        except APIConnectionError as exc:
            return _problem(exc)

    async def _probe(self) -> str | None:
        """One ``fetch`` of `PROBE_SID`; a connection failure is raised for `_check`."""
        try:
            await self._client.access_tokens.fetch(self._service_sid, PROBE_SID)
        except (NotFoundError, RateLimitError):
            return None  # answered with the credentials accepted
        except APIConnectionError:
            raise
        except VerifyError as exc:
            return _problem(exc)
        return None  # pragma: no cover - the probe sid exists: the credentials work too


def _problem(exc: VerifyError) -> str:
    return f"the verification service {_why(exc)}"


def _why(exc: VerifyError) -> str:
    status = getattr(exc, "status", None)
    if status in (401, 403):
        return f"refused the credentials (HTTP {status})"
    if status is not None:
        return f"answered HTTP {status}"
    return "could not be reached"

"""The batch's result iterator, which any task may close at any moment."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

from ..models import EnrollmentResult


class Results(AsyncIterator[EnrollmentResult]):
    """The batch's iterator: its generator behind a gate that ``aclose()`` shuts first.

    A generator being closed counts as running, so a consumer asking for its next result while
    another task closes it would get "asynchronous generator is already running"; behind the
    gate its loop ends instead, once the one shared close has finished.
    """

    __slots__ = ("__weakref__", "_closing", "_generator", "_shut")

    def __init__(self, generator: AsyncGenerator[EnrollmentResult, None]) -> None:
        self._generator = generator
        self._shut = False
        self._closing: asyncio.Future[None] | None = None

    async def __anext__(self) -> EnrollmentResult:
        if self._shut:
            await self.aclose()
            raise StopAsyncIteration
        return await self._generator.__anext__()

    @property
    def running(self) -> bool:
        """Whether a task is inside the generator: awaiting its next result, or closing it."""
        return cast(types.AsyncGeneratorType[EnrollmentResult, None], self._generator).ag_running

    def shut(self) -> None:
        self._shut = True

    async def aclose(self) -> None:
        """Close the generator once; every caller waits for that one close."""
        self._shut = True
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._generator.aclose())
        await asyncio.shield(self._closing)

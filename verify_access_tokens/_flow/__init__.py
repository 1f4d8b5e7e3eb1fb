"""Flow control: how many requests a client has in flight, and who waits for a slot.

Twilio limits an account by its requests in flight, shared by every process and host that uses
it. One `Limiter` per client bounds what that client has in flight; how many (the window) is
the `Limit`'s decision: fixed, or adaptive (`AdaptiveLimit` finds the account's remaining
concurrency from 429s, as TCP finds a path's capacity from losses). The split follows Netflix's
concurrency-limits: the waiting room (`Limiter`, handing out `Slot` tokens) apart from the
algorithm (`Limit`). A `Gate` beside it paces a batch at a fixed rate and ends its waits when
the batch stops.
"""

from __future__ import annotations

import math
from typing import Literal

import aiohttp

from ._gate import Gate, TurnRefused
from ._limiter import Limiter, LimiterState, Slot
from ._limits import AdaptiveLimit, FixedLimit

__all__ = ["Gate", "Limiter", "LimiterState", "Slot", "TurnRefused", "make_limiter", "pool_size_of"]


def make_limiter(setting: int | Literal["adaptive"] | None, pool_size: float) -> Limiter:
    """The limiter ``max_in_flight`` asks for, never above ``pool_size``."""
    if setting == "adaptive":
        return Limiter(AdaptiveLimit(maximum=pool_size), pool_size)
    return Limiter(FixedLimit(math.inf if setting is None else setting), pool_size)


def pool_size_of(session: aiohttp.ClientSession) -> float:
    """How many connections a lent session's pool opens to one host (inf: no bound)."""
    connector = session.connector
    if connector is None:
        return math.inf
    bounds = [bound for bound in (connector.limit, connector.limit_per_host) if bound]
    return min(bounds, default=math.inf)

"""The base of every resource: its one way to reach the network is the client's ``_request``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import VerifyClient

__all__ = ["APIResource"]


class APIResource:
    """Holds the client and binds its request seam once, as ``self._request``."""

    def __init__(self, client: VerifyClient) -> None:
        self._client = client
        self._request = client._request

"""The base of every resource: its one way to reach the network is the client's ``_request``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from ..client import VerifyClient

__all__ = ["APIResource", "ResourceAttribute"]

R = TypeVar("R", bound="APIResource")


class APIResource:
    """Holds the client and binds its request seam once, as ``self._request``."""

    def __init__(self, client: VerifyClient) -> None:
        self._client = client
        self._request = client._request


class ResourceAttribute(Generic[R]):
    """A client's resource attribute, such as ``client.access_tokens``.

    Each client stores its own resource in its instance dictionary, which wins over this
    (non-data) descriptor, so reading it costs nothing. On the class it gives the resource's
    class, so ``help(VerifyClient)`` lists it, and ``mock.create_autospec(VerifyClient,
    instance=True)`` has ``access_tokens`` with its methods, signatures checked.
    """

    def __init__(self, resource: type[R]) -> None:
        self._resource = resource
        self.__doc__ = resource.__doc__

    @overload
    def __get__(self, instance: None, owner: Any = None) -> type[R]: ...

    @overload
    def __get__(self, instance: object, owner: Any = None) -> R: ...

    def __get__(self, instance: object, owner: Any = None) -> R | type[R]:
        if instance is None:
            return self._resource
        raise AttributeError("the client has no resources before __init__ ran")

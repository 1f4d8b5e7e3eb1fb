"""API resources: one module per Verify resource, each built on the client's transport."""

from .access_tokens import AccessTokens

__all__ = ["AccessTokens"]

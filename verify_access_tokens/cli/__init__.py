"""The ``verify-access-tokens`` command line: an app on top of the public API.

``_main`` holds the parser and the small commands (demo, emulator, create, fetch); ``_enroll``
the batch command and its results journal; ``_serve`` the Verify Push backend endpoint.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]

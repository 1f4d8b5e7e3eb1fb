"""The ``verify-access-tokens`` command line: an app on top of the public API.

``_main`` holds the parser and maps errors to exit codes; ``_commands`` the small commands (demo,
emulator, create, fetch); ``_output`` what they print; ``_enroll`` the batch command and
``_journal`` its results file; ``_serve`` the Verify Push backend endpoint.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]

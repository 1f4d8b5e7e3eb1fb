"""Source for a child Python process that must run as on a machine without some packages."""

from __future__ import annotations

import textwrap


def without_modules(*names: str) -> str:
    """Python source to run first in a child process: importing any of the top-level packages
    ``names`` fails with ModuleNotFoundError, as when they are not installed."""
    return textwrap.dedent(
        f"""
        import sys

        class _Absent:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {names!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, _Absent())
        """
    )

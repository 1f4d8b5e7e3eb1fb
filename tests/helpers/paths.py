"""Where things are: the repository, the package under test, and the tests' own data.

Every test builds its paths from these, so a test file can move between folders of tests/
without a ``Path(__file__).parent.parent`` to recount.
"""

from __future__ import annotations

from pathlib import Path

import verify_access_tokens

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
DATA = TESTS / "data"
TLS = DATA / "tls"  # a test CA and a certificate for 127.0.0.1 (tls/README.md)
OPENAPI = DATA / "twilio_verify_v2_access_tokens.openapi.json"  # OPENAPI_NOTICE.md
PACKAGE = Path(verify_access_tokens.__file__).resolve().parent


def module_name(path: Path) -> str:
    """The dotted name of one of the package's files: ``verify_access_tokens._http._body``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

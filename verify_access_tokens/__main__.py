"""``python -m verify_access_tokens``: the same as the ``verify-access-tokens`` command."""

from verify_access_tokens.cli._main import main

raise SystemExit(main())

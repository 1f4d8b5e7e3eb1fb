"""A local, stateful stand-in for ``verify.twilio.com``'s Access Token endpoints.

Run it in-process (``async with VerifyEmulator() as emu``), from the CLI
(``verify-access-tokens emulator``) or through the pytest plugin's ``verify_emulator`` fixture.
It shares the client's validation rules and models, never its transport.
"""

from ._app import Counters, VerifyEmulator
from ._faults import Faults

__all__ = ["Counters", "Faults", "VerifyEmulator"]

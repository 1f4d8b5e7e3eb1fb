"""A local, stateful stand-in for ``verify.twilio.com``'s Access Token endpoints.

Run it in-process (``async with VerifyEmulator() as emu``), from the CLI
(``verify-access-tokens emulator``) or through the pytest plugin's ``verify_emulator`` fixture.
It shares the client's validation rules and models, never its transport.
"""

from ._app import VerifyEmulator
from ._counters import Counters
from ._faults import Faults

for _public in (Counters, Faults, VerifyEmulator):
    _public.__module__ = __name__  # shown, documented and pickled as the emulator's

__all__ = ["Counters", "Faults", "VerifyEmulator"]

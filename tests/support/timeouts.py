"""How long a test's client waits for an in-process or loopback emulator.

An emulator that is not told to hang answers at once, but a loaded machine (CI, or the
suite beside other work) can take seconds to run a large page; a tight timeout then turns
into a retry the test did not expect (a pagination test counted 4 calls instead of 3 after
a 2 s timeout). Tests of timeouts build their own client with a short one.
"""

from __future__ import annotations

EMULATOR_TIMEOUT_SECONDS = 30.0

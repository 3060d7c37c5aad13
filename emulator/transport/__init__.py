"""Transports: how an emulated card reaches a reader.

- :mod:`eidemu.emulator.transport.vpcd`: the card side of vsmartcard's vpcd protocol (the virtual
  reader driver loaded by pcscd), in normal mode (the card connects to vpcd) and reverse
  mode (the card listens and vpcd connects).
- :mod:`eidemu.emulator.transport.pcscd`: a private pcscd with a vpcd reader, for tests and demos,
  started without touching the system's pcscd.

Transports move bytes: they never parse card commands. The card core never imports them.
"""

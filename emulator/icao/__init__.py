"""ICAO Doc 9303-11 security mechanisms as a codec shared by the chip and the terminal.

BAC (§4.3), PACE (§4.4), Chip Authentication (§6.2) and Active Authentication (§6.1):
the key derivations, the cryptographic steps of both roles and the encodings of their
data objects. No APDU handling and no card state: the card applet and the inspection
system build on these functions; secure messaging itself is
:mod:`eidemu.emulator.iso7816.sm`.

Modules: :mod:`.oids` (protocol OIDs, standardized domain parameters), :mod:`.kdf`
(KDF, MRZ, passwords), :mod:`.session` (cipher, MAC, secure-messaging keys), :mod:`.bac`,
:mod:`.pace`, :mod:`.ca`, :mod:`.aa`, :mod:`.mse` (MSE:Set AT/KAT data), :mod:`.ec` and
:mod:`.dh` (the groups), :mod:`.errors`.
"""

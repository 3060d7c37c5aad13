"""A test application that establishes secure-messaging keys, to show the SM path end to end.

Not a real protocol: a small stand-in for BAC or PACE (ICAO Doc 9303-11 §4.3, §4.4) that
ends the way they do, with :meth:`Channel.start_secure_messaging`. With the card's static
3DES key K (``keys`` of the profile, a TEST key):

1. ``00 84 00 00 08``: GET CHALLENGE, the card's RND.ICC (8 bytes).
2. ``00 82 00 <K ref> 10 <3DES-CBC(K, 0, RND.IFD || RND.ICC)> 10``: MUTUAL AUTHENTICATE.
   The card checks RND.ICC, answers ``3DES-CBC(K, 0, RND.ICC || RND.IFD)`` (unprotected:
   the session starts with the next command) and installs a 3DES session with

   - K_seed = the first 16 bytes of SHA-256(K || RND.ICC || RND.IFD),
   - K_enc = SHA-1(K_seed || 00000001)[:16], K_mac = SHA-1(K_seed || 00000002)[:16]
     (the key derivation of ICAO Doc 9303-11 §9.7.1),
   - SSC = RND.ICC[4:8] || RND.IFD[4:8] (as BAC computes it).
"""

from __future__ import annotations

import hashlib
import hmac

from eidemu.emulator.cardos.card import Channel
from eidemu.emulator.cardos.commands import IsoApplication
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.crypto import BlockAlgorithm, cbc_decrypt, cbc_encrypt
from eidemu.emulator.iso7816.sm import CardSession, SessionKeys
from eidemu.emulator.iso7816.sw import INS, SW, CardError


def derive_session(static_key: bytes, rnd_icc: bytes, rnd_ifd: bytes) -> SessionKeys:
    """The demo's session keys and SSC (see the module docstring); both sides use it."""
    seed = hashlib.sha256(static_key + rnd_icc + rnd_ifd).digest()[:16]
    k_enc = hashlib.sha1(seed + b"\x00\x00\x00\x01").digest()[:16]
    k_mac = hashlib.sha1(seed + b"\x00\x00\x00\x02").digest()[:16]
    ssc = int.from_bytes(rnd_icc[4:8] + rnd_ifd[4:8], "big")
    return SessionKeys(BlockAlgorithm.TDES, k_enc, k_mac, ssc)


class SmDemoApplication(IsoApplication):
    """The ISO commands plus the demo's MUTUAL AUTHENTICATE (INS 82)."""

    type_name = "test-sm-demo"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.handlers[INS.EXTERNAL_AUTHENTICATE] = self.mutual_authenticate

    def mutual_authenticate(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        key = self.card.keys.get(cmd.p2)
        if key is None or key.algorithm is not BlockAlgorithm.TDES:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no 3DES key {cmd.p2:02X}")
        challenge, channel.security.challenge = channel.security.challenge, b""
        if len(challenge) != 8:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "GET CHALLENGE (8 bytes) first")
        if len(cmd.data) != 16:
            raise CardError(SW.WRONG_LENGTH, "RND.IFD || RND.ICC, enciphered: 16 bytes")
        plain = cbc_decrypt(BlockAlgorithm.TDES, key.value, bytes(8), cmd.data)
        rnd_ifd, rnd_icc = plain[:8], plain[8:]
        if not hmac.compare_digest(rnd_icc, challenge):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, "authentication failed")
        channel.start_secure_messaging(CardSession(derive_session(key.value, rnd_icc, rnd_ifd)))
        return cbc_encrypt(BlockAlgorithm.TDES, key.value, bytes(8), rnd_icc + rnd_ifd)

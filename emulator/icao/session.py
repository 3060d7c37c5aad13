"""Block-cipher primitives of the protocols and the secure-messaging sessions they open.

The cipher and MAC of 9303-11 §9.8 (3DES-CBC with the ISO/IEC 9797-1 MAC algorithm 3, or
AES-CBC with AES-CMAC truncated to 8 bytes) as small functions for BAC cryptograms, PACE
nonces and tokens; and :class:`SecureMessagingKeys`, the result of BAC, PACE or Chip
Authentication, which opens a session of the shared secure-messaging core
(:mod:`eidemu.emulator.iso7816.sm`) in either role.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eidemu.emulator.iso7816.crypto import (
    BlockAlgorithm,
    aes_cmac,
    cbc_decrypt,
    cbc_encrypt,
    pad_iso9797_m2,
    retail_mac,
)
from eidemu.emulator.iso7816.sm import CardSession, SessionKeys, TerminalSession

from .oids import CipherSuite


def encrypt_cbc(cipher: CipherSuite, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    """CBC encryption of whole blocks, zero IV unless given (9303-11 §9.8.6.1, §4.4.3.1)."""
    return cbc_encrypt(BlockAlgorithm(cipher.algorithm), key, iv or bytes(cipher.block_size), data)


def decrypt_cbc(cipher: CipherSuite, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    """CBC decryption of whole blocks, zero IV unless given."""
    if not data or len(data) % cipher.block_size:
        raise ValueError(f"a cryptogram of {len(data)} bytes is not whole {cipher.block_size}-byte blocks")
    return cbc_decrypt(BlockAlgorithm(cipher.algorithm), key, iv or bytes(cipher.block_size), data)


def mac(cipher: CipherSuite, key: bytes, data: bytes) -> bytes:
    """The 8-byte MAC of 9303-11 §9.8.6: 3DES: ISO/IEC 9797-1 MAC algorithm 3 after
    padding method 2; AES: AES-CMAC (NIST SP 800-38B) truncated to 8 bytes."""
    if cipher.algorithm == "3des":
        return retail_mac(key, pad_iso9797_m2(data, 8))
    return aes_cmac(key, data)[:8]


@dataclass(frozen=True)
class SecureMessagingKeys:
    """Session keys KS_enc, KS_mac and the starting send sequence counter (9303-11 §9.8).

    BAC starts the SSC from the challenges (§9.8.2); PACE and Chip Authentication start
    it at 0 (§9.8.3, §6.2.2). Keys never appear in a repr.
    """

    cipher: CipherSuite
    ks_enc: bytes = field(repr=False)
    ks_mac: bytes = field(repr=False)
    ssc: int = 0

    def session_keys(self) -> SessionKeys:
        """A fresh, mutable SSC holder of the shared secure-messaging core."""
        return SessionKeys(BlockAlgorithm(self.cipher.algorithm), self.ks_enc, self.ks_mac, self.ssc)

    def chip_session(self) -> CardSession:
        """The chip's side of the session: unwrap commands, wrap responses."""
        return CardSession(self.session_keys())

    def terminal_session(self) -> TerminalSession:
        """The terminal's side: wrap commands, unwrap and check responses."""
        return TerminalSession(self.session_keys())

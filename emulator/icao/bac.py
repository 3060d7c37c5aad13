"""Basic Access Control (ICAO 9303-11 §4.3, worked example Appendix D.3), both roles.

The terminal (IFD) derives K_enc and K_mac from the MRZ, takes the chip's challenge
RND.IC (GET CHALLENGE), and sends E_IFD || M_IFD in EXTERNAL AUTHENTICATE; the chip checks
it and answers E_IC || M_IC. Both then derive the 3DES session keys from K.IFD xor K.IC
and start the SSC from the challenges (§9.8.2).
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field

from .ec import RandomSource
from .errors import AuthenticationFailed, ProtocolError, SequenceError
from .kdf import KDF_ENC, KDF_MAC, bac_key_seed, kdf, mrz_information
from .oids import TDES
from .session import SecureMessagingKeys, decrypt_cbc, encrypt_cbc, mac

#: Length of EXTERNAL AUTHENTICATE's data and of the chip's answer (§4.3.4.2)
CRYPTOGRAM_LENGTH = 40


@dataclass(frozen=True)
class BacKeys:
    """The document basic access keys K_enc, K_mac (9303-11 §9.7.2). Never in a repr."""

    k_enc: bytes = field(repr=False)
    k_mac: bytes = field(repr=False)

    @classmethod
    def from_seed(cls, key_seed: bytes) -> BacKeys:
        return cls(kdf(key_seed, KDF_ENC, TDES), kdf(key_seed, KDF_MAC, TDES))

    @classmethod
    def from_mrz(cls, document_number: str, date_of_birth: str, date_of_expiry: str) -> BacKeys:
        """Keys from the MRZ fields (9303-11 §9.7.2: K_seed = SHA-1(MRZ information)[:16])."""
        return cls.from_seed(bac_key_seed(mrz_information(document_number, date_of_birth, date_of_expiry)))

    def cryptogram(self, plaintext: bytes) -> bytes:
        """E || M: 3DES-CBC (zero IV) of the 32-byte plaintext, then its retail MAC."""
        encrypted = encrypt_cbc(TDES, self.k_enc, plaintext)
        return encrypted + mac(TDES, self.k_mac, encrypted)

    def open(self, cryptogram: bytes) -> bytes:
        """Check M and decrypt E; :class:`AuthenticationFailed` if the MAC does not verify."""
        if len(cryptogram) != CRYPTOGRAM_LENGTH:
            raise ProtocolError(f"BAC cryptogram of {len(cryptogram)} bytes, expected {CRYPTOGRAM_LENGTH}")
        encrypted, checksum = cryptogram[:32], cryptogram[32:]
        if not hmac.compare_digest(mac(TDES, self.k_mac, encrypted), checksum):
            raise AuthenticationFailed("BAC cryptogram MAC does not verify")
        return decrypt_cbc(TDES, self.k_enc, encrypted)


def session_keys(k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> SecureMessagingKeys:
    """KS_enc, KS_mac from K_seed = K.IFD xor K.IC, and SSC = RND.IC[4:] || RND.IFD[4:]
    (9303-11 §4.3.3.3, §9.8.2)."""
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic))
    ssc = int.from_bytes(rnd_ic[-4:] + rnd_ifd[-4:], "big")
    return SecureMessagingKeys(TDES, kdf(seed, KDF_ENC, TDES), kdf(seed, KDF_MAC, TDES), ssc)


class BacTerminal:
    """The inspection system's side of BAC (9303-11 §4.3.3.1 steps 1-3, §4.3.3.3)."""

    def __init__(self, keys: BacKeys, rng: RandomSource = os.urandom) -> None:
        self._keys = keys
        self._rng = rng
        self._rnd_ic = b""
        self._rnd_ifd = b""
        self._k_ifd = b""

    def external_authenticate_data(self, rnd_ic: bytes) -> bytes:
        """E_IFD || M_IFD for the chip's challenge: S = RND.IFD || RND.IC || K.IFD."""
        if len(rnd_ic) != 8:
            raise ProtocolError(f"RND.IC of {len(rnd_ic)} bytes, expected 8")
        self._rnd_ic = rnd_ic
        self._rnd_ifd = self._rng(8)
        self._k_ifd = self._rng(16)
        return self._keys.cryptogram(self._rnd_ifd + rnd_ic + self._k_ifd)

    def finish(self, response: bytes) -> SecureMessagingKeys:
        """Check the chip's E_IC || M_IC (its RND.IFD and RND.IC must be ours) and derive
        the session keys; :class:`AuthenticationFailed` otherwise."""
        if not self._k_ifd:
            raise SequenceError("BAC answer before EXTERNAL AUTHENTICATE data was made")
        plain = self._keys.open(response)
        rnd_ic, rnd_ifd, k_ic = plain[:8], plain[8:16], plain[16:32]
        if not (hmac.compare_digest(rnd_ic, self._rnd_ic) and hmac.compare_digest(rnd_ifd, self._rnd_ifd)):
            raise AuthenticationFailed("chip's answer does not carry our challenges")
        return session_keys(self._k_ifd, k_ic, self._rnd_ic, self._rnd_ifd)


class BacChip:
    """The chip's side of BAC (9303-11 §4.3.3.1 steps 1 and 4, §4.3.3.3)."""

    def __init__(self, keys: BacKeys, rng: RandomSource = os.urandom) -> None:
        self._keys = keys
        self._rng = rng
        self._rnd_ic = b""

    def challenge(self) -> bytes:
        """RND.IC, the 8-byte answer to GET CHALLENGE; a new one replaces the old."""
        self._rnd_ic = self._rng(8)
        return self._rnd_ic

    def external_authenticate(self, data: bytes) -> tuple[bytes, SecureMessagingKeys]:
        """Check E_IFD || M_IFD and answer E_IC || M_IC with the session keys.

        :class:`AuthenticationFailed` if the MAC fails or the challenge is not ours
        (the chip answers ``6300``, §4.3.4.2); the challenge is used once either way.
        """
        rnd_ic, self._rnd_ic = self._rnd_ic, b""
        if not rnd_ic:
            raise SequenceError("EXTERNAL AUTHENTICATE without a preceding GET CHALLENGE")
        plain = self._keys.open(data)
        rnd_ifd, their_rnd_ic, k_ifd = plain[:8], plain[8:16], plain[16:32]
        if not hmac.compare_digest(their_rnd_ic, rnd_ic):
            raise AuthenticationFailed("EXTERNAL AUTHENTICATE does not carry the chip's challenge")
        k_ic = self._rng(16)
        answer = self._keys.cryptogram(rnd_ic + rnd_ifd + k_ic)
        return answer, session_keys(k_ifd, k_ic, rnd_ic, rnd_ifd)

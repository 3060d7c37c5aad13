"""Block ciphers, CBC and MACs shared by card commands, secure messaging and applications.

Everything here is cryptography's own CBC mode, ECB for single blocks and CMAC; the
module only names the algorithms the cards use and builds the ISO/IEC 9797-1 constructions
from them:

- :class:`BlockAlgorithm`: 3DES (2- or 3-key, ISO/IEC 18033-3) and AES (FIPS 197), with
  their block sizes;
- :func:`cbc_encrypt` / :func:`cbc_decrypt`: CBC mode (ISO/IEC 10116:2017 §7);
- :func:`pad_iso9797_m2`: ISO/IEC 9797-1:2011 padding method 2;
- :func:`retail_mac`: ISO/IEC 9797-1:2011 MAC algorithm 3 with DES (the "retail MAC" of
  ICAO Doc 9303-11 §9.8.6.1), built from DES-CBC and 3DES-CBC;
- :func:`aes_cmac`: CMAC with AES (NIST SP 800-38B, RFC 4493).
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC


class BlockAlgorithm(StrEnum):
    """The block ciphers cards use, by the name profiles give them (``3des``, ``aes``)."""

    TDES = "3des"
    AES = "aes"

    @property
    def block_size(self) -> int:
        """Block length in bytes: 8 for 3DES, 16 for AES."""
        return 8 if self is _TDES else 16

    @property
    def key_sizes(self) -> tuple[int, ...]:
        """Key lengths in bytes: 2- or 3-key 3DES; AES-128, -192 or -256."""
        return (16, 24) if self is _TDES else (16, 24, 32)

    def cipher(self, key: bytes) -> TripleDES | algorithms.AES:
        """cryptography's algorithm object for ``key``."""
        if self is _TDES:
            return triple_des(key)
        return algorithms.AES(key)


# Enum members used per command are bound once: an attribute look-up on an Enum class costs
# a few hundred nanoseconds in Python 3.11, several times over on every APDU.
_TDES = BlockAlgorithm.TDES


def triple_des(key: bytes) -> TripleDES:
    """3DES with a 2-key (K1 K2, used as K1 K2 K1) or 3-key bundle (ISO/IEC 18033-3)."""
    if len(key) == 16:
        key = key + key[:8]
    if len(key) != 24:
        raise ValueError("a 3DES key is 16 or 24 bytes")
    return TripleDES(key)


def cbc_encrypt(algorithm: BlockAlgorithm, key: bytes, iv: bytes, data: bytes) -> bytes:
    """CBC encryption of whole blocks, no padding (ISO/IEC 10116:2017 §7). ValueError for
    an IV that is not one block or data that is not whole blocks (cryptography checks)."""
    encryptor = Cipher(algorithm.cipher(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def cbc_decrypt(algorithm: BlockAlgorithm, key: bytes, iv: bytes, data: bytes) -> bytes:
    """CBC decryption of whole blocks, no padding removed (ISO/IEC 10116:2017 §7). ValueError
    as for :func:`cbc_encrypt`."""
    decryptor = Cipher(algorithm.cipher(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def encrypt_block(algorithm: BlockAlgorithm, key: bytes, block: bytes) -> bytes:
    """One block enciphered on its own (ECB of a single block): EXTERNAL AUTHENTICATE's
    response to a challenge (ISO/IEC 7816-4:2020 §11.5.4) and the AES secure-messaging IV
    E(KS_enc, SSC) (ICAO Doc 9303-11 §9.8.6.2)."""
    if len(block) != algorithm.block_size:
        raise ValueError(f"one block is {algorithm.block_size} bytes")
    encryptor = Cipher(algorithm.cipher(key), modes.ECB()).encryptor()  # noqa: S305 - a single block
    return encryptor.update(block) + encryptor.finalize()


def pad_iso9797_m2(data: bytes, block: int) -> bytes:
    """ISO/IEC 9797-1:2011 padding method 2: ``80`` then ``00`` up to a block boundary."""
    data += b"\x80"
    return data + bytes(-len(data) % block)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1:2011 MAC algorithm 3 with DES and a 16-byte key K1 || K2.

    ``data`` must already be padded to whole 8-byte blocks. The MAC is DES-CBC under K1 over
    the blocks, with the last block's output then deciphered under K2 and enciphered under
    K1 again. Enciphering the last block under K1, deciphering under K2 and enciphering
    under K1 is 2-key 3DES (K1 K2 K1), so the MAC is DES-CBC(K1) over all blocks but the
    last, continued by one block of 3DES-CBC(K1 K2) from that chaining value.
    """
    if len(key) != 16:
        raise ValueError("the retail MAC key is 16 bytes (K1 || K2)")
    if not data or len(data) % 8:
        raise ValueError("the retail MAC needs padded data: whole 8-byte blocks")
    k1 = key[:8]
    chaining = bytes(8)
    if len(data) > 8:
        chaining = cbc_encrypt(_TDES, k1 * 3, chaining, data[:-8])[-8:]  # DES = 3DES K1 K1 K1
    return cbc_encrypt(_TDES, key, chaining, data[-8:])


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC, the full 16 bytes (NIST SP 800-38B; RFC 4493)."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()

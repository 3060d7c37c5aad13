"""Block-cipher helpers shared by card commands, secure messaging and applets."""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes


def triple_des(key: bytes) -> TripleDES:
    """3DES with a 2-key (K1 K2, expanded to K1 K2 K1) or 3-key bundle (ISO/IEC 18033-3)."""
    if len(key) == 16:
        key = key + key[:8]
    if len(key) != 24:
        raise ValueError("a 3DES key is 16 or 24 bytes")
    return TripleDES(key)


def block_cipher(algorithm: str, key: bytes) -> TripleDES | algorithms.AES:
    """``3des`` or ``aes`` by name, as profiles give them."""
    if algorithm == "3des":
        return triple_des(key)
    if algorithm == "aes":
        return algorithms.AES(key)
    raise ValueError(f"unknown block cipher {algorithm!r}")


def ecb_encryptor(algorithm: str, key: bytes) -> CipherContext:
    """One-block ECB encryption, as EXTERNAL AUTHENTICATE uses it (ISO 7816-4 §11.5.4)."""
    return Cipher(block_cipher(algorithm, key), modes.ECB()).encryptor()  # noqa: S305


def cbc(algorithm: str, key: bytes, iv: bytes, encrypt: bool) -> CipherContext:
    cipher = Cipher(block_cipher(algorithm, key), modes.CBC(iv))
    return cipher.encryptor() if encrypt else cipher.decryptor()

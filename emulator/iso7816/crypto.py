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


class BlockCipher:
    """CBC on top of long-lived ECB contexts, for the short messages cards protect.

    A fresh cryptography context costs about 30 µs for 3DES (OpenSSL fetches the legacy
    cipher each time), more than the few blocks of a PIN cryptogram take to process. This
    keeps one ECB encryptor and one decryptor per key and chains the blocks itself
    (CBC: C_i = E(P_i xor C_i-1), ISO/IEC 10116 §7). Not thread-safe: one per card.
    """

    def __init__(self, algorithm: str, key: bytes) -> None:
        cipher = Cipher(block_cipher(algorithm, key), modes.ECB())  # noqa: S305 - CBC is built on it
        self._encrypt = cipher.encryptor().update
        self._decrypt = cipher.decryptor().update
        self.block = 8 if algorithm == "3des" else 16

    def _check(self, iv: bytes, data: bytes) -> int:
        n = self.block
        if len(iv) != n or len(data) % n:
            raise ValueError(f"CBC needs a {n}-byte IV and whole {n}-byte blocks")
        return n

    def cbc_encrypt(self, iv: bytes, data: bytes) -> bytes:
        n = self._check(iv, data)
        encrypt, out = self._encrypt, []
        previous = int.from_bytes(iv, "big")
        for i in range(0, len(data), n):
            block = encrypt((int.from_bytes(data[i : i + n], "big") ^ previous).to_bytes(n, "big"))
            previous = int.from_bytes(block, "big")
            out.append(block)
        return b"".join(out)

    def cbc_decrypt(self, iv: bytes, data: bytes) -> bytes:
        # P_i = D(C_i) xor C_i-1: every block deciphered in one call, then one wide XOR.
        n = self._check(iv, data)
        chained = int.from_bytes(iv + data[:-n], "big") if data else 0
        return (int.from_bytes(self._decrypt(data), "big") ^ chained).to_bytes(len(data), "big")

"""BlockCipher's CBC (built on long-lived ECB contexts) against cryptography's own CBC mode."""

import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from eidemu.emulator.iso7816.crypto import BlockCipher, triple_des


@pytest.mark.parametrize("algorithm, key_size, block", [("3des", 16, 8), ("3des", 24, 8), ("aes", 16, 16)])
@pytest.mark.parametrize("blocks", [0, 1, 2, 3, 7])
def test_cbc_matches_cryptography(algorithm, key_size, block, blocks):
    key, iv, data = os.urandom(key_size), os.urandom(block), os.urandom(block * blocks)
    reference = Cipher(triple_des(key) if algorithm == "3des" else algorithms.AES(key), modes.CBC(iv))
    expected = reference.encryptor().update(data)
    cipher = BlockCipher(algorithm, key)
    assert cipher.cbc_encrypt(iv, data) == expected
    assert cipher.cbc_decrypt(iv, expected) == data
    assert reference.decryptor().update(expected) == data
    # The same object again (the ECB contexts are long-lived and must carry no state).
    assert cipher.cbc_decrypt(iv, cipher.cbc_encrypt(iv, data)) == data


def test_cbc_refuses_partial_blocks_and_bad_ivs():
    cipher = BlockCipher("3des", bytes(range(16)))
    with pytest.raises(ValueError, match="whole 8-byte blocks"):
        cipher.cbc_encrypt(bytes(8), bytes(9))
    with pytest.raises(ValueError, match="8-byte IV"):
        cipher.cbc_decrypt(bytes(7), bytes(8))

"""Active Authentication of ICAO 9303-11 §6.1: the RSA worked example's message
representative, ISO/IEC 9796-2 scheme 1 round trips with the format checked, and plain ECDSA."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eidemu.emulator.icao import oids
from eidemu.emulator.icao.aa import (
    ecdsa_sign,
    ecdsa_verify,
    message_representative,
    recoverable_length,
    rsa_sign,
    rsa_verify,
)
from eidemu.emulator.icao.errors import AuthenticationFailed

from . import vectors as v
from .vectors import replay

# TEST keys, generated per run (the worked example publishes no key pair)
RSA_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
RSA_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_worked_example_message_representative() -> None:
    assert recoverable_length(1024, "sha1") == len(v.AA_M1) == 106
    assert message_representative(v.AA_M1, v.AA_RND_IFD) == v.AA_F
    assert v.AA_F[-21:-1] == v.AA_HASH


def test_worked_example_signed_and_recovered() -> None:
    signature = rsa_sign(RSA_1024, v.AA_RND_IFD, rng=replay(v.AA_M1))
    assert len(signature) == 128
    numbers = RSA_1024.public_key().public_numbers()
    assert pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(128, "big") == v.AA_F
    recovered = rsa_verify(RSA_1024.public_key(), v.AA_RND_IFD, signature)
    assert (recovered.m1, recovered.hash_name, recovered.digest) == (v.AA_M1, "sha1", v.AA_HASH)


@pytest.mark.parametrize(("key", "hash_name", "trailer"), [(RSA_2048, "sha1", "BC"), (RSA_2048, "sha256", "34CC")])
def test_rsa_round_trip_and_format(key: rsa.RSAPrivateKey, hash_name: str, trailer: str) -> None:
    challenge = bytes.fromhex("0102030405060708")
    signature = rsa_sign(key, challenge, hash_name)
    numbers = key.public_key().public_numbers()
    f = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert f[0] == 0x6A
    assert f.hex().upper().endswith(trailer)
    assert rsa_verify(key.public_key(), challenge, signature).hash_name == hash_name


def test_rsa_verify_refuses_another_challenge_key_or_corruption() -> None:
    challenge = bytes.fromhex("F173589974BF40C6")
    signature = rsa_sign(RSA_1024, challenge)
    with pytest.raises(AuthenticationFailed, match="recovered hash"):
        rsa_verify(RSA_1024.public_key(), bytes(8), signature)
    with pytest.raises(AuthenticationFailed, match=r"not 6A|trailer|recovered hash"):
        rsa_verify(RSA_1024.public_key(), challenge, signature[:-1] + bytes([signature[-1] ^ 1]))
    with pytest.raises(AuthenticationFailed, match="signature of 127 bytes"):
        rsa_verify(RSA_1024.public_key(), challenge, signature[1:])
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(AuthenticationFailed):
        rsa_verify(other.public_key(), challenge, signature)


@pytest.mark.parametrize(
    ("curve", "algorithm", "size"),
    [
        (ec.BrainpoolP256R1(), oids.ECDSA_PLAIN_SHA256, 64),
        (ec.SECP384R1(), oids.ECDSA_PLAIN_SHA384, 96),
        (ec.SECP256R1(), oids.ECDSA_WITH_SHA256, 64),
    ],
)
def test_ecdsa_round_trip(curve: ec.EllipticCurve, algorithm: str, size: int) -> None:
    key = ec.generate_private_key(curve)
    challenge = bytes.fromhex("F173589974BF40C6")
    signature = ecdsa_sign(key, challenge, algorithm)
    assert len(signature) == size
    ecdsa_verify(key.public_key(), challenge, signature, algorithm)
    with pytest.raises(AuthenticationFailed, match="does not verify"):
        ecdsa_verify(key.public_key(), bytes(8), signature, algorithm)
    with pytest.raises(AuthenticationFailed, match="plain ECDSA signature of"):
        ecdsa_verify(key.public_key(), challenge, signature[:-1], algorithm)

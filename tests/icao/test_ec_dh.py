"""The pure-Python curve arithmetic and DH groups, checked against OpenSSL through
``cryptography`` (an independent implementation) and against the group laws."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import dh, ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from eidemu.emulator.icao import oids
from eidemu.emulator.icao.ca import CaChip, CaTerminal
from eidemu.emulator.icao.dh import GROUPS, DHError, group, unsigned_integer
from eidemu.emulator.icao.ec import CURVES, PointError, curve
from eidemu.emulator.icao.kdf import KDF_ENC, kdf

OPENSSL_CURVES = {
    "secp192r1": ec.SECP192R1(),
    "secp224r1": ec.SECP224R1(),
    "secp256r1": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
    "secp521r1": ec.SECP521R1(),
    "brainpoolP256r1": ec.BrainpoolP256R1(),
    "brainpoolP384r1": ec.BrainpoolP384R1(),
    "brainpoolP512r1": ec.BrainpoolP512R1(),
}


@pytest.mark.parametrize("name", sorted(OPENSSL_CURVES))
def test_public_keys_match_openssl(name: str) -> None:
    c = curve(name)
    key = ec.generate_private_key(OPENSSL_CURVES[name])
    expected = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    k = key.private_numbers().private_value
    pure = c.multiply(k, c.generator)  # the pure-Python arithmetic, not the OpenSSL shortcut
    assert pure is not None and c.encode_point(pure) == expected
    assert c.public_key(k) == pure


@pytest.mark.parametrize("name", sorted(CURVES))
def test_group_laws(name: str) -> None:
    c = curve(name)
    g = c.generator
    assert c.contains(g)
    assert c.multiply(c.n, g) is None
    assert c.add(c.multiply(c.n - 1, g), g) is None
    assert c.multiply(2, g) == c.add(g, g)
    assert c.multiply(5, g) == c.add(c.multiply(2, g), c.multiply(3, g))
    k = 0xDEADBEEF12345
    assert c.multiply_generator(k) == c.multiply(k, g)
    p = c.multiply(0xC0FFEE, g)
    assert p is not None
    q = c.multiply(k, p)
    assert q is not None and c.shared_x(k, p) == c.encode_scalar(q.x)
    row = next(r for r in oids.STANDARDIZED_DOMAIN_PARAMETERS.values() if r.name == name)
    assert c.p.bit_length() == row.bits


def test_point_decoding_refuses_bad_encodings() -> None:
    c = curve("brainpoolP256r1")
    good = c.encode_point(c.generator)
    assert c.decode_point(good) == c.generator
    with pytest.raises(PointError, match="not an uncompressed brainpoolP256r1 point"):
        c.decode_point(b"\x02" + good[1:33])
    with pytest.raises(PointError, match="not on brainpoolP256r1"):
        c.decode_point(good[:-1] + bytes([good[-1] ^ 1]))


# cryptography deprecates finite-field DH; it serves here only as an independent oracle
FFDH_DEPRECATED = pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")


@FFDH_DEPRECATED
@pytest.mark.parametrize("name", sorted(GROUPS))
def test_dh_groups(name: str) -> None:
    g = group(name)
    assert pow(g.g, g.q, g.p) == 1
    assert (g.p - 1) % g.q == 0
    row = next(r for r in oids.STANDARDIZED_DOMAIN_PARAMETERS.values() if r.name == name)
    assert g.p.bit_length() == row.bits
    # cryptography (OpenSSL) agrees on the public value of a key on these parameters
    numbers = dh.DHParameterNumbers(g.p, g.g, g.q)
    key = numbers.parameters().generate_private_key()
    assert g.public_value(key.private_numbers().x) == key.public_key().public_numbers().y


def test_dh_decoding() -> None:
    g = group("modp1024_160")
    y = g.public_value(12345)
    assert g.decode(unsigned_integer(y)) == y
    assert g.decode(g.encode(y)) == y
    with pytest.raises(DHError, match="subgroup"):
        g.decode(g.encode(g.p - 1))
    with pytest.raises(DHError, match="129 bytes"):
        g.decode(bytes(129))
    assert unsigned_integer(0) == b"\x00"
    assert unsigned_integer(0x0100) == b"\x01\x00"


def test_kdf_hash_follows_the_key_length() -> None:
    """9303-11 §9.7.1: SHA-1 up to 128-bit keys, SHA-256 for AES-192 and AES-256."""
    secret = bytes(range(32))
    assert kdf(secret, KDF_ENC, oids.AES_256) == hashlib.sha256(secret + b"\x00\x00\x00\x01").digest()
    assert kdf(secret, KDF_ENC, oids.AES_192) == hashlib.sha256(secret + b"\x00\x00\x00\x01").digest()[:24]
    assert kdf(secret, KDF_ENC, oids.AES_128) == hashlib.sha1(secret + b"\x00\x00\x00\x01").digest()[:16]


@FFDH_DEPRECATED
def test_chip_key_from_cryptography_objects() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    chip = CaChip.from_private_key(oids.ID_CA_ECDH_AES_CBC_CMAC_128, key)
    assert chip.public_key() == key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    terminal = CaTerminal(chip.protocol_oid, chip.domain, chip.public_key())
    assert chip.authenticate(terminal.ephemeral_public_key) == terminal.session_keys()
    g = group("modp2048_224")
    dh_key = dh.DHParameterNumbers(g.p, g.g, g.q).parameters().generate_private_key()
    dh_chip = CaChip.from_private_key(oids.ID_CA_DH_AES_CBC_CMAC_128, dh_key)
    assert int.from_bytes(dh_chip.public_key(), "big") == dh_key.public_key().public_numbers().y
    assert str(dh_key.private_numbers().x) not in repr(dh_chip)
    assert f"{dh_key.private_numbers().x:x}" not in repr(dh_chip).lower()

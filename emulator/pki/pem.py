"""How the TEST PKIs write what they generate: keys, certificates, times and the keyUsage bits."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """A TEST private key as unencrypted PKCS#8 PEM (every key of the TEST PKIs)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def iso_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def key_usage(**granted: bool) -> x509.KeyUsage:
    """RFC 5280 §4.2.1.3 keyUsage: the bits named ``True``, every other bit clear."""
    unknown = set(granted) - set(KEY_USAGE_BITS)
    if unknown:
        raise ValueError(f"not keyUsage bits: {', '.join(sorted(unknown))}")
    return x509.KeyUsage(**{bit: granted.get(bit, False) for bit in KEY_USAGE_BITS})

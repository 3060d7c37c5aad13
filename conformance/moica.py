"""A relying party's view of the citizen digital certificate card (generation 1).

:class:`MoicaCard` talks to any :class:`~eidemu.conformance.connection.CardConnection` the way the
card's middleware does (the public description of its generation-1 command interface,
restated in docs/moica-card.md): SELECT by FID with CLA 80, READ BINARY in chunks of at most 200 bytes, the
PKCS#15 directories read until their padding, the protected VERIFY, and the RSA private
operation (2 x ``80 EA`` + ``80 C1``) on blocks the host pads itself.

The transport protection of PIN blocks is implemented here independently of the card side
(both follow the reading documented in ``docs/moica-card.md``), and the tests pin both to
an ``openssl enc`` computation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import algos, cms, x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from eidemu.emulator.formats import pkcs15

from .connection import CardConnection

# The documented TEST transport key (ASCII "MOICA-TEST-ONLY!"), the emulator's default.
TEST_TRANSPORT_KEY = b"MOICA-TEST-ONLY!"
CHUNK = 200  # reference: "clients read in chunks of at most 200 (C8) bytes"

SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")  # RFC 8017 §9.2 note 1


class MoicaError(Exception):
    """The card answered a status word other than the expected one."""

    def __init__(self, command: str, sw: int) -> None:
        super().__init__(f"{command}: card answered {sw:04X}")
        self.command = command
        self.sw = sw


class InvalidPinError(MoicaError):
    """63Cx: wrong PIN, ``attempts_remaining`` tries left."""

    def __init__(self, command: str, sw: int) -> None:
        super().__init__(command, sw)
        self.attempts_remaining = sw & 0x0F


class PinBlockedError(MoicaError):
    """6983: the PIN is blocked; only the issuer can unblock it."""


@dataclass(frozen=True)
class PinStatus:
    """What VERIFY without data says about a PIN (ISO/IEC 7816-4:2020 §11.5.6).

    ``verified``: the PIN is verified in the current session (``9000``). ``tries_left``: the
    remaining tries (``63Cx``, ``0`` for ``6983`` blocked); None when the card does not say
    (a verified PIN answers ``9000`` without a count)."""

    verified: bool
    tries_left: int | None

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0


@dataclass(frozen=True)
class KeyInfo:
    """A private key as the PrKDF describes it."""

    id: bytes
    label: str
    key_reference: int
    modulus_bits: int
    usage: frozenset[str]


@dataclass(frozen=True)
class CertificateInfo:
    """A certificate as the CDF describes it: where it is in EF 08F2."""

    id: bytes
    label: str
    authority: bool
    path: bytes
    index: int
    length: int


def _tdes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(TripleDES(key + key[:8]), modes.CBC(iv)).encryptor()  # 2-key 3DES as K1 K2 K1
    return enc.update(data) + enc.finalize()


def _pad8(data: bytes) -> bytes:
    n = 8 - len(data) % 8
    return data + bytes((n,)) * n


def protect_pin_data(key: bytes, iv: bytes, plain: bytes) -> bytes:
    """IV || 3DES-CBC(K, IV, PKCS7(plain || CBC-MAC(plain))), the data of the protected
    PIN commands (reference, "VERIFY is protected"; reading in docs/moica-card.md)."""
    mac = _tdes_cbc_encrypt(key, iv, _pad8(plain))[-8:]
    return iv + _tdes_cbc_encrypt(key, iv, _pad8(plain + mac))


def pin_block(pin: str) -> bytes:
    """The PIN as ASCII, padded with FF to 10 bytes."""
    raw = pin.encode("ascii")
    if not 6 <= len(raw) <= 8:
        raise ValueError("a MOICA PIN has 6 to 8 characters")
    return raw.ljust(10, b"\xff")


def strip_type2_padding(block: bytes) -> bytes:
    """RSAES-PKCS1-v1_5 decoding (RFC 8017 §7.2.2 step 3) of the raw decrypted block."""
    sep = block.find(b"\x00", 2)
    if block[:2] != b"\x00\x02" or sep < 10:
        raise ValueError("decryption error")
    return block[sep + 1 :]


class MoicaCard:
    """Middleware-style access to a generation-1 card over one CardConnection."""

    def __init__(
        self,
        connection: CardConnection,
        transport_key: bytes = TEST_TRANSPORT_KEY,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.connection = connection
        self.transport_key = transport_key
        self.random = random

    # -- transmission ------------------------------------------------------------------------

    def transmit(self, apdu: bytes, what: str) -> tuple[bytes, int]:
        response = self.connection.transmit(apdu)
        if len(response) < 2:
            raise MoicaError(what, 0)
        return response[:-2], (response[-2] << 8) | response[-1]

    def _expect_ok(self, apdu: bytes, what: str) -> bytes:
        data, sw = self.transmit(apdu, what)
        if sw != 0x9000:
            raise MoicaError(what, sw)
        return data

    # -- files -------------------------------------------------------------------------------

    def select(self, fid: int) -> None:
        """``80 A4 00 00 02 <FID>``: the card answers exactly 9000; 61xx is a failure."""
        self._expect_ok(bytes((0x80, 0xA4, 0x00, 0x00, 0x02)) + fid.to_bytes(2, "big"), f"SELECT {fid:04X}")

    def select_path(self, path: bytes | str) -> None:
        """Select each FID of an absolute path in turn, from the MF."""
        raw = bytes.fromhex(path) if isinstance(path, str) else path
        fids = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
        if fids[0] != 0x3F00:
            fids.insert(0, 0x3F00)
        for fid in fids:
            self.select(fid)

    def read_binary(self, offset: int, length: int) -> bytes:
        """``80 B0``: up to ``length`` bytes from ``offset`` of the current EF, in 200-byte chunks."""
        out = bytearray()
        while len(out) < length:
            n = min(CHUNK, length - len(out))
            pos = offset + len(out)
            data, sw = self.transmit(bytes((0x80, 0xB0, pos >> 8, pos & 0xFF, n)), f"READ BINARY {pos:04X}")
            out += data
            if sw == 0x6282 or (sw == 0x9000 and len(data) < n):
                break  # end of file
            if sw != 0x9000:
                raise MoicaError(f"READ BINARY {pos:04X}", sw)
        return bytes(out)

    def read_until_padding(self, limit: int = 0x2000) -> bytes:
        """Read the current EF in chunks until the DER sequence ends in padding (the card
        reports no size on SELECT)."""
        out = b""
        while len(out) < limit:
            chunk = self.read_binary(len(out), CHUNK)
            out += chunk
            if pkcs15.directory_complete(out) or len(chunk) < CHUNK:
                break
        return out

    def read_file(self, path: str, length: int) -> bytes:
        self.select_path(path)
        return self.read_binary(0, length)

    # -- card identity -------------------------------------------------------------------------

    def card_number(self) -> str:
        """EF 0900/0903: 16 ASCII characters, two capital letters and 14 digits."""
        return self.read_file("3F0009000903", 16).decode("ascii")

    def version(self) -> bytes:
        """EF 0900/0905: a client reads 20 bytes and checks the first 8 are ``CHT V32N``."""
        return self.read_file("3F0009000905", 20)

    def is_moica(self) -> bool:
        return self.version().startswith(b"CHT V32N")

    # -- PKCS#15 discovery ---------------------------------------------------------------------

    def directory(self, fid: int) -> list[bytes]:
        """The DER objects of a directory EF in DF 5030."""
        self.select_path(bytes.fromhex("3F005030") + fid.to_bytes(2, "big"))
        return pkcs15.split_directory(self.read_until_padding())

    def private_keys(self) -> list[KeyInfo]:
        """PrKDF (5030/4100) entries (PKCS#15 v1.1 §6.2)."""
        keys = []
        for der in self.directory(0x4100):
            obj = pkcs15.PrivateRsaKeyObject.load(der)
            common = obj["class_attributes"]
            keys.append(
                KeyInfo(
                    id=common["id"].native,
                    label=obj["common_object_attributes"]["label"].native or "",
                    key_reference=common["key_reference"].native,
                    modulus_bits=obj["type_attributes"]["modulus_length"].native,
                    usage=frozenset(common["usage"].native),
                )
            )
        return keys

    def certificates(self) -> list[CertificateInfo]:
        """CDF (5030/4104) entries (PKCS#15 v1.1 §6.5), each a Path with index and length."""
        found = []
        for der in self.directory(0x4104):
            obj = pkcs15.X509CertificateObject.load(der)
            path = obj["type_attributes"]["value"]
            found.append(
                CertificateInfo(
                    id=obj["class_attributes"]["id"].native,
                    label=obj["common_object_attributes"]["label"].native or "",
                    authority=bool(obj["class_attributes"]["authority"].native),
                    path=path["efid_or_path"].native,
                    index=path["index"].native,
                    length=path["length"].native,
                )
            )
        return found

    def read_certificate(self, info: CertificateInfo) -> x509.Certificate:
        self.select_path(info.path)
        return x509.Certificate.load(self.read_binary(info.index, info.length))

    def certificate(self, cert_id: bytes) -> x509.Certificate:
        for info in self.certificates():
            if info.id == cert_id:
                return self.read_certificate(info)
        raise KeyError(cert_id)

    def key_reference(self, key_id: bytes) -> int:
        for key in self.private_keys():
            if key.id == key_id:
                return key.key_reference
        raise KeyError(key_id)

    def public_key(self, key_reference: int) -> tuple[int, int]:
        """(modulus, exponent) from the public-key records of EF 5030/0810 (reference,
        "Public keys": record k exponent, records k+2, k+3 the word-reversed modulus)."""
        self.select_path("3F0050300810")
        records = {}
        for number in (key_reference, key_reference + 2, key_reference + 3):
            data = self._expect_ok(bytes((0x80, 0xB2, number, 0x00, 0x81)), f"READ RECORD {number}")
            if len(data) != 129 or data[0] != number:
                raise MoicaError(f"READ RECORD {number}: malformed record", 0x9000)
            records[number] = data[1:]
        exponent = int.from_bytes(records[key_reference][:4], "big")
        data = records[key_reference + 2] + records[key_reference + 3]
        words = [data[i : i + 4] for i in range(0, 256, 4)]
        return int.from_bytes(b"".join(reversed(words)), "big"), exponent

    # -- PIN -----------------------------------------------------------------------------------

    def _pin_command(self, header: bytes, plain: bytes, what: str) -> None:
        body = protect_pin_data(self.transport_key, self.random(8), plain)
        _, sw = self.transmit(header + bytes((len(body),)) + body, what)
        if sw == 0x9000:
            return
        if sw & 0xFFF0 == 0x63C0:
            raise InvalidPinError(what, sw)
        if sw == 0x6983:
            raise PinBlockedError(what, sw)
        raise MoicaError(what, sw)

    def verify_pin(self, pin: str) -> None:
        """Protected VERIFY ``8C 20 00 01 20 <IV> <24 bytes>``."""
        self._pin_command(b"\x8c\x20\x00\x01", pin_block(pin), "VERIFY")

    def pin_status(self) -> PinStatus:
        """VERIFY without data: verified, or the tries left (``63Cx``; ``6983`` blocked)."""
        _, sw = self.transmit(b"\x8c\x20\x00\x01", "VERIFY status")
        if sw == 0x9000:
            return PinStatus(verified=True, tries_left=None)
        if sw & 0xFFF0 == 0x63C0:
            return PinStatus(verified=False, tries_left=sw & 0x0F)
        if sw == 0x6983:
            return PinStatus(verified=False, tries_left=0)
        raise MoicaError("VERIFY status", sw)

    def change_pin(self, old: str, new: str) -> None:
        """Protected CHANGE REFERENCE DATA ``8C 24 00 01 28 <IV> <32 bytes>``."""
        self._pin_command(b"\x8c\x24\x00\x01", pin_block(old) + pin_block(new), "CHANGE REFERENCE DATA")

    def unblock(self, issuer_key: bytes, issuer_key_ref: int, new_pin: str | None = None) -> None:
        """The issuer-authorised unblock: GET CHALLENGE, EXTERNAL AUTHENTICATE with the
        issuer key, RESET RETRY COUNTER (optionally with a protected new PIN)."""
        challenge = self._expect_ok(b"\x80\x84\x00\x00\x08", "GET CHALLENGE")
        enc = Cipher(TripleDES(issuer_key + issuer_key[:8]), modes.ECB()).encryptor()  # noqa: S305 - one-block challenge response
        response = enc.update(challenge) + enc.finalize()
        self._expect_ok(bytes((0x80, 0x82, 0x00, issuer_key_ref, 0x08)) + response, "EXTERNAL AUTHENTICATE")
        if new_pin is None:
            self._expect_ok(b"\x80\x2c\x03\x01", "RESET RETRY COUNTER")
        else:
            self._pin_command(b"\x8c\x2c\x02\x01", pin_block(new_pin), "RESET RETRY COUNTER")

    # -- private-key operations ----------------------------------------------------------------

    def private_operation(self, key_reference: int, block: bytes) -> bytes:
        """Raw RSA on a 256-byte block: ``80 EA 82`` + ``80 EA 02`` then ``80 C1 00 00 00``."""
        if len(block) != 256:
            raise ValueError("the block is 256 bytes")
        self._expect_ok(bytes((0x80, 0xEA, 0x82, key_reference, 0x80)) + block[:128], "EA first half")
        self._expect_ok(bytes((0x80, 0xEA, 0x02, key_reference, 0x80)) + block[128:], "EA last half")
        result = self._expect_ok(b"\x80\xc1\x00\x00\x00", "C1 fetch result")
        if len(result) != 256:
            raise MoicaError("C1 fetch result: short", 0x9000)
        return result

    def sign_sha256(self, key_reference: int, digest: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.1): the host builds the block."""
        if len(digest) != 32:
            raise ValueError("a SHA-256 digest is 32 bytes")
        t = SHA256_DIGEST_INFO_PREFIX + digest
        return self.private_operation(key_reference, b"\x00\x01" + b"\xff" * (256 - 3 - len(t)) + b"\x00" + t)

    def decrypt(self, key_reference: int, ciphertext: bytes) -> bytes:
        """RSAES-PKCS1-v1_5 decryption (RFC 8017 §7.2.2): raw operation on the card, host unpads."""
        return strip_type2_padding(self.private_operation(key_reference, ciphertext))

    # -- CMS -------------------------------------------------------------------------------------

    def cms_sign_detached(
        self,
        document: bytes,
        signer: x509.Certificate,
        chain: list[x509.Certificate],
        key_reference: int,
        signing_time: dt.datetime | None = None,
    ) -> bytes:
        """A detached CMS SignedData (RFC 5652 §5) over ``document``, signed by the card.

        Signed attributes contentType, messageDigest and signingTime (§11); the signature is
        RSASSA-PKCS1-v1_5/SHA-256 over the DER of the attribute SET (§5.4).
        """
        digest = hashlib.sha256(document).digest()
        when = signing_time or dt.datetime.now(dt.UTC).replace(microsecond=0)
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
                cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": when})]}),
            ]
        )
        signature = self.sign_sha256(key_reference, hashlib.sha256(signed_attrs.dump()).digest())
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {"issuer": signer.issuer, "serial_number": signer.serial_number}
                        )
                    }
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v1",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {"content_type": "data"},
                "certificates": [signer, *chain],
                "signer_infos": [signer_info],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


__all__ = [
    "TEST_TRANSPORT_KEY",
    "CertificateInfo",
    "InvalidPinError",
    "KeyInfo",
    "MoicaCard",
    "MoicaError",
    "PinBlockedError",
    "pin_block",
    "protect_pin_data",
    "strip_type2_padding",
]

"""The citizen digital certificate card (自然人憑證, MOICA), generation-1 command interface.

Behaviour follows the public description of the generation-1 command interface;
where that reference is silent the card behaves as an ISO/IEC 7816-4:2020 card would, and
``docs/moica-card.md`` lists every such choice. The pieces a generation-2 application (a
GlobalPlatform applet behind SCP03) would share are kept apart from the generation-1
command set: :class:`CardKey` (an on-card RSA key pair), :func:`rsa_private_operation`,
:func:`public_key_records` and :class:`TransportCipher` (the protected-PIN cryptogram).

Class byte rule (reference: "every command uses CLA 80; CLA 00 is answered 6E00"):

* ``80``: every proprietary and file command;
* ``8C``: the protected PIN commands (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER
  with a new PIN), whose data is the transport-key cryptogram;
* ``00``: only MANAGE SECURITY ENVIRONMENT and PERFORM SECURITY OPERATION, the ISO second
  path for signing and deciphering (reference: "ISO MSE/PSO templates ... also appear in
  middleware"), which middleware sends with the interindustry class; every other
  instruction with CLA ``00`` answers ``6E00``. (MANAGE CHANNEL and GET RESPONSE with CLA
  ``00`` are answered by the card OS below the application.)
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum, unique
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..cardos.card import ApplicationState, Card, Channel, Handler, OptionError
from ..cardos.commands import READ, IsoApplication
from ..cardos.fs import DF, File, RecordEF
from ..cardos.security import Pin
from ..formats.files import CONTENT_LIMIT, read_bounded
from ..iso7816.apdu import CommandAPDU
from ..iso7816.crypto import BlockAlgorithm, cbc_decrypt, cbc_encrypt
from ..iso7816.sw import INS, SW, CardError, verify_failed
from ..iso7816.tlv import TLVError, iter_tlv

log = logging.getLogger("eidemu.moica")

ATR_GEN1 = bytes.fromhex("3BB8130081 31FA52434854 4D4F494341A5".replace(" ", ""))
"""Generation-1 ATR (pcsc-tools smartcard_list.txt); historical bytes spell ``CHTMOICA``."""

# A documented TEST transport key (ASCII "MOICA-TEST-ONLY!"), never a vendor key: the real
# key lives inside the issuer's middleware and is not published (reference, "VERIFY is
# protected"). A profile may give another one as the ``transport_key`` option.
DEFAULT_TRANSPORT_KEY = b"MOICA-TEST-ONLY!"

RSA_BLOCK = 256  # 2048-bit keys only: the EA command carries exactly two halves of 128 bytes
HALF = 128
RECORD_DATA = 128  # public-key records: record number + 128 bytes (reference, "Public keys")

CLA_PROPRIETARY = 0x80
CLA_PROTECTED = 0x8C
CLA_INTERINDUSTRY = 0x00

_TDES = BlockAlgorithm.TDES  # bound once: Enum class attribute look-ups are slow in Python 3.11

INS_PRIVATE_OPERATION = 0xEA
INS_FETCH_RESULT = 0xC1

# ISO/IEC 7816-8:2019, PERFORM SECURITY OPERATION: P1-P2 of COMPUTE DIGITAL SIGNATURE and DECIPHER.
PSO_CDS = 0x9E9A
PSO_DECIPHER = 0x8086


@unique
class ControlReferenceTemplate(IntEnum):
    """The templates MANAGE SECURITY ENVIRONMENT SET names in P2 (ISO/IEC 7816-4:2020 §11.5)."""

    AUTHENTICATION = 0xA4  # AT
    CONFIDENTIALITY = 0xB8  # CT
    DIGITAL_SIGNATURE = 0xB6  # DST


class KeyUsage(StrEnum):
    """What an on-card key pair is for, by the name profiles give it."""

    SIGN = "sign"
    DECRYPT = "decrypt"


# -- the protected-PIN cryptogram ----------------------------------------------------------


def pkcs7_pad(data: bytes, block: int = 8) -> bytes:
    """PKCS#7 padding (RFC 5652 §6.3): n bytes of value n, 1 <= n <= block."""
    n = block - len(data) % block
    return data + bytes((n,)) * n


def padded_length(n: int, block: int = 8) -> int:
    """``len(pkcs7_pad(x))`` for ``len(x) == n``: the next whole block, never zero padding."""
    return (n // block + 1) * block


def pkcs7_unpad(data: bytes, block: int = 8) -> bytes | None:
    """Undo :func:`pkcs7_pad`; None when the padding is malformed."""
    if not data or len(data) % block:
        return None
    n = data[-1]
    if not 1 <= n <= block or data[-n:] != bytes((n,)) * n:
        return None
    return data[:-n]


@dataclass(frozen=True, repr=False)
class TransportCipher:
    """The transport protection of PIN blocks (reference, "VERIFY is protected").

    Reading of the reference, byte for byte (PIN ``123456``)::

        P   = PIN padded with FF to 10 bytes              31 32 33 34 35 36 FF FF FF FF
        MAC = last 8 bytes of 3DES-CBC(K, IV, PKCS7(P))   PKCS7 adds 06 x6 -> 16 bytes
        C   = 3DES-CBC(K, IV, PKCS7(P || MAC))            18 bytes + 06 x6 -> 24 bytes
        data field = IV (8) || C (24)                      Lc = 32 = 0x20

    K is a 2-key (16-byte) 3DES key. The second PKCS#7 padding is what makes the
    reference's 24 bytes add up: 10 + 8 = 18 bytes cannot be CBC-encrypted without
    padding, and 24 is the next multiple of 8. CHANGE REFERENCE DATA protects ``old ||
    new`` (20 bytes; MAC over PKCS7 to 24; 28 + 4 padding = 32 bytes, Lc = 40) and
    RESET RETRY COUNTER the new PIN alone, the same way.
    """

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != 16:
            raise ValueError("the transport key is a 2-key 3DES key of 16 bytes")

    def __repr__(self) -> str:  # keys never appear in logs
        return "TransportCipher(key=<redacted>)"

    def mac(self, iv: bytes, data: bytes) -> bytes:
        """The scheme's CBC-MAC, computed as the scheme defines it: the last block of
        3DES-CBC(K, IV, PKCS7(data)), chained from the IV."""
        return cbc_encrypt(_TDES, self.key, iv, pkcs7_pad(data))[-8:]

    def protect(self, iv: bytes, plain: bytes) -> bytes:
        """The cryptogram C of ``plain`` (the host side of the exchange)."""
        if len(iv) != 8:
            raise ValueError("the IV is 8 bytes")
        return cbc_encrypt(_TDES, self.key, iv, pkcs7_pad(plain + self.mac(iv, plain)))

    def unprotect(self, iv: bytes, cryptogram: bytes, plain_length: int) -> bytes:
        """The protected ``plain_length`` bytes, or CardError 6988 if the cryptogram is not one.

        Decipher, remove the padding, recompute the MAC over the plain bytes from the IV
        (:meth:`mac`) and compare. Padding and MAC are checked together and fail the same
        way, so the card offers no padding oracle; the MAC comparison is constant-time.
        """
        if len(cryptogram) % 8 or not cryptogram or len(iv) != 8:
            raise CardError(SW.WRONG_LENGTH, "cryptogram is not a whole number of 3DES blocks")
        body = pkcs7_unpad(cbc_decrypt(_TDES, self.key, iv, cryptogram))
        ok = body is not None and len(body) == plain_length + 8
        plain = body[:plain_length] if ok and body is not None else bytes(plain_length)
        expected = self.mac(iv, plain)
        received = body[plain_length:] if ok and body is not None else bytes(8)
        if not (hmac.compare_digest(expected, received) and ok):
            raise CardError(SW.INCORRECT_SM_DATA_OBJECTS, "PIN cryptogram does not verify")
        return plain


# -- RSA keys on the card ----------------------------------------------------------------


@dataclass(repr=False)
class CardKey:
    """An RSA key pair held by the card, addressed by its key reference.

    ``key_id`` is the PKCS#15/PKCS#11 identifier (``SIGN`` or ``KEYX``). The private key
    never leaves this object: no command returns it and ``repr`` hides it.
    """

    ref: int
    key_id: str
    usage: KeyUsage
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def __repr__(self) -> str:
        return f"CardKey(ref={self.ref:#04x}, id={self.key_id!r}, usage={self.usage.value!r}, private_key=<redacted>)"

    @property
    def public_numbers(self) -> rsa.RSAPublicNumbers:
        return self.private_key.public_key().public_numbers()

    @classmethod
    def from_pem(cls, ref: int, key_id: str, usage: KeyUsage, path: Path) -> CardKey:
        stat = path.stat()
        key = _load_private_key(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path.name}: not an RSA private key")
        if key.key_size != 8 * RSA_BLOCK:
            raise ValueError(f"{path.name}: the generation-1 card holds RSA-2048 keys, not {key.key_size}-bit")
        return cls(ref, key_id, usage, key)


@functools.lru_cache(maxsize=64)
def _load_private_key(path: str, mtime_ns: int, size: int) -> PrivateKeyTypes:
    """Parse (and validate) a PEM key once per file version: cryptography's RSA key check
    costs about 50 ms, and test harnesses rebuild cards from their profile before every
    test. Key objects are immutable, so cards may share them."""
    del mtime_ns, size  # part of the cache key only: an edited file is read again
    return serialization.load_pem_private_key(read_bounded(path, CONTENT_LIMIT, "key file"), password=None)


# DigestInfo prefixes (RFC 8017 §9.2, note 1): recognising them lets a PKCS#1 v1.5
# signature block take OpenSSL's constant-time signing path instead of Python integers.
_DIGEST_INFO_PREFIXES: dict[bytes, hashes.HashAlgorithm] = {
    bytes.fromhex("3021300906052b0e03021a05000414"): hashes.SHA1(),  # noqa: S303 - recognising, not choosing, SHA-1
    bytes.fromhex("302d300d06096086480165030402040500041c"): hashes.SHA224(),
    bytes.fromhex("3031300d060960864801650304020105000420"): hashes.SHA256(),
    bytes.fromhex("3041300d060960864801650304020205000430"): hashes.SHA384(),
    bytes.fromhex("3051300d060960864801650304020305000440"): hashes.SHA512(),
}


# Made once: constructing them runs ABC checks, microseconds on every signature.
_PKCS1V15 = padding.PKCS1v15()
_PREHASHED = {prefix: utils.Prehashed(algorithm) for prefix, algorithm in _DIGEST_INFO_PREFIXES.items()}


def emsa_pkcs1_v15(digest_info: bytes, k: int = RSA_BLOCK) -> bytes:
    """EMSA-PKCS1-v1_5 encoding of a DigestInfo (RFC 8017 §9.2 step 5): ``00 01 FF.. 00 T``."""
    if len(digest_info) > k - 11:
        raise ValueError("DigestInfo too long for the modulus")
    return b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info


def _as_signature_block(block: bytes) -> tuple[bytes, utils.Prehashed] | None:
    """(digest, its Prehashed) when ``block`` is the EMSA-PKCS1-v1_5 encoding of a known DigestInfo."""
    if block[:2] != b"\x00\x01":
        return None
    sep = block.find(b"\x00", 2)
    if sep < 10 or block[2:sep] != b"\xff" * (sep - 2):
        return None
    digest_info = block[sep + 1 :]
    for prefix, algorithm in _DIGEST_INFO_PREFIXES.items():
        if digest_info.startswith(prefix) and len(digest_info) == len(prefix) + algorithm.digest_size:
            return digest_info[len(prefix) :], _PREHASHED[prefix]
    return None


def rsa_private_operation(key: rsa.RSAPrivateKey, block: bytes, random: Callable[[int], bytes] = os.urandom) -> bytes:
    """Raw RSA: ``block ^ d mod n`` as a big-endian string of the modulus length (RFC 8017 §5.1.2).

    The host pads (reference, "RSA private operation"). A PKCS#1 v1.5 signature block of a
    known digest goes through OpenSSL, whose output is the same bytes; anything else is
    computed with CRT and RSA blinding. Raises CardError 6A80 when the block is not
    smaller than the modulus.
    """
    k = (key.key_size + 7) // 8
    if len(block) != k:
        raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "input is not an integer below the modulus")
    recognised = _as_signature_block(block)  # 00 01 ... is always below the modulus
    if recognised is not None:
        digest, prehashed = recognised
        return key.sign(digest, _PKCS1V15, prehashed)
    numbers = key.private_numbers()
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    m = int.from_bytes(block, "big")
    if m >= n:
        raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "input is not an integer below the modulus")
    while True:
        r = int.from_bytes(random(k), "big") % n
        if r > 1:
            try:
                r_inv = pow(r, -1, n)
            except ValueError:
                continue
            break
    blinded = (m * pow(r, e, n)) % n
    p, q = numbers.p, numbers.q
    m1 = pow(blinded, numbers.dmp1, p)
    m2 = pow(blinded, numbers.dmq1, q)
    h = (numbers.iqmp * (m1 - m2)) % p
    s = ((m2 + h * q) * r_inv) % n
    return s.to_bytes(k, "big")


def public_key_records(key_ref: int, e: int, n: int) -> dict[int, bytes]:
    """The card's public-key records for key reference ``k`` (reference, "Public keys").

    Record ``k``: the public exponent in its first 4 data bytes, big endian, then zeros.
    Records ``k+2`` and ``k+3``: the 256 modulus bytes cut into 32-bit words with the word
    order reversed (the last 4 bytes of the modulus first; bytes inside a word keep their
    order). Record ``k+1`` is not described publicly; the emulator fills it with zeros.
    """
    modulus = n.to_bytes(RSA_BLOCK, "big")
    words = [modulus[i : i + 4] for i in range(0, RSA_BLOCK, 4)]
    reversed_words = b"".join(reversed(words))
    return {
        key_ref: e.to_bytes(4, "big").ljust(RECORD_DATA, b"\x00"),
        key_ref + 1: bytes(RECORD_DATA),
        key_ref + 2: reversed_words[:RECORD_DATA],
        key_ref + 3: reversed_words[RECORD_DATA:],
    }


def modulus_from_records(record_2: bytes, record_3: bytes) -> int:
    """Inverse of the modulus part of :func:`public_key_records`."""
    data = record_2 + record_3
    words = [data[i : i + 4] for i in range(0, len(data), 4)]
    return int.from_bytes(b"".join(reversed(words)), "big")


# -- the application -------------------------------------------------------------------


@dataclass(frozen=True)
class KeyOption:
    """One on-card key pair of the ``keys`` option."""

    ref: int
    """The key reference commands name in P2 (one byte)."""
    id: str
    """The PKCS#15/PKCS#11 identifier, ``SIGN`` or ``KEYX``."""
    usage: KeyUsage
    private_key: Path
    """A PEM file; profiles give it relative to the profile file."""


@dataclass(frozen=True)
class MoicaOptions:
    """The options of :class:`MoicaGen1Application` (profile ``default_application.options``).

    ``transport_key``: the 2-key 3DES key protecting PIN blocks, 16 bytes (default: the
    TEST key ``DEFAULT_TRANSPORT_KEY``, ASCII ``MOICA-TEST-ONLY!``). ``pin``: the PIN
    reference the protected PIN commands name in P2. ``public_key_ef``: the record EF
    holding the public-key records. ``keys``: the on-card key pairs; their public halves
    must match the records of ``public_key_ef`` (checked when the card is built, so a stale
    profile is refused).
    """

    transport_key: bytes = DEFAULT_TRANSPORT_KEY
    pin: int = 0x01
    public_key_ef: str = "3F00/5030/0810"
    keys: tuple[KeyOption, ...] = ()

    def __post_init__(self) -> None:
        if len(self.transport_key) != 16:
            raise OptionError("transport_key", "the transport key is a 2-key 3DES key of 16 bytes")


@dataclass(frozen=True)
class SecurityEnvironment:
    """What MANAGE SECURITY ENVIRONMENT SET chose for PERFORM SECURITY OPERATION
    (ISO/IEC 7816-4:2020 §11.5): the template and the key reference."""

    template: ControlReferenceTemplate
    key_ref: int


@dataclass(frozen=True)
class PendingRsaOperation:
    """The first half of a two-command private-key operation (``80 EA 82``)."""

    key_ref: int
    first_half: bytes


@dataclass
class MoicaChannelState(ApplicationState):
    """The application's volatile state on one logical channel."""

    security_environment: SecurityEnvironment | None = None
    pending_operation: PendingRsaOperation | None = None
    result: bytes | None = None
    """The last private-operation result, for ``80 C1``."""


class MoicaGen1Application(IsoApplication):
    """The generation-1 card (HiCOS), as the card-level default application.

    Its profile options are :class:`MoicaOptions`.
    """

    type_name = "moica-gen1"
    options_type = MoicaOptions
    options: MoicaOptions

    def __init__(self, card: Card, df: DF, aid: bytes = b"", options: MoicaOptions | None = None) -> None:
        super().__init__(card, df, aid, options)
        opts = self.options
        self.transport = TransportCipher(opts.transport_key)
        self.pin_ref = opts.pin
        if self.pin_ref not in card.pins:
            raise OptionError("pin", f"PIN {self.pin_ref:02X} is not defined in the profile")
        self.keys: dict[int, CardKey] = {}
        for i, spec in enumerate(opts.keys):
            if spec.ref in self.keys:
                raise OptionError(f"keys[{i}].ref", f"duplicate key reference {spec.ref:02X}")
            try:
                self.keys[spec.ref] = CardKey.from_pem(spec.ref, spec.id, spec.usage, spec.private_key)
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise OptionError(f"keys[{i}].private_key", f"cannot load {spec.private_key.name}: {reason}") from None
        self.public_key_ef = self._public_key_ef(opts.public_key_ef)
        self._check_public_records()

        # Handlers by class byte; ``self.handlers`` (from IsoApplication) is replaced by the
        # CLA 80 table so nothing ISO-specific is reachable by accident.
        self.handlers = {
            INS.SELECT: self.select_file,
            INS.READ_BINARY: self.read_binary,
            INS.READ_RECORD: self.read_public_key_record,
            INS.GET_CHALLENGE: self.get_challenge,
            INS.EXTERNAL_AUTHENTICATE: self.external_authenticate,
            INS.VERIFY: self.plain_verify,
            INS.RESET_RETRY_COUNTER: self.reset_retry_counter,
            INS_PRIVATE_OPERATION: self.private_operation,
            INS_FETCH_RESULT: self.fetch_result,
        }
        self.protected_handlers: dict[int, Handler] = {
            INS.VERIFY: self.protected_verify,
            INS.CHANGE_REFERENCE_DATA: self.protected_change_reference_data,
            INS.RESET_RETRY_COUNTER: self.reset_retry_counter,
        }
        self.interindustry_handlers: dict[int, Handler] = {
            INS.MANAGE_SECURITY_ENVIRONMENT: self.manage_security_environment,
            INS.PERFORM_SECURITY_OPERATION: self.perform_security_operation,
        }

    # -- configuration checks -------------------------------------------------------------

    def _public_key_ef(self, path: str) -> RecordEF | None:
        try:
            f = self.card.mf.find_path(path)
        except (KeyError, ValueError):
            if self.keys:
                raise OptionError("public_key_ef", f"{path} is not in the file tree") from None
            return None
        if not isinstance(f, RecordEF):
            raise OptionError("public_key_ef", f"{path} is not a record EF")
        return f

    def _check_public_records(self) -> None:
        """Refuse a profile whose public-key records disagree with its private keys."""
        if self.public_key_ef is None:
            return
        records = self.public_key_ef.records
        for i, (ref, key) in enumerate(self.keys.items()):
            pub = key.public_numbers
            expected = public_key_records(ref, pub.e, pub.n)
            for number, data in expected.items():
                if number in (ref + 1,):
                    continue
                if number > len(records) or records[number - 1] != data:
                    raise OptionError(
                        f"keys[{i}]",
                        f"record {number} of {self.public_key_ef.path} does not match key {ref:02X} "
                        "(stale profile? regenerate it with python3 -m eidemu.emulator.pki.moica_profiles)",
                    )

    # -- dispatch by class byte --------------------------------------------------------------

    def accepts_class(self, cla: int) -> bool:
        return cla in (CLA_PROPRIETARY, CLA_PROTECTED, CLA_INTERINDUSTRY)

    def process(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if cmd.cla == CLA_PROPRIETARY:
            table = self.handlers
        elif cmd.cla == CLA_PROTECTED:
            table = self.protected_handlers
        elif cmd.cla == CLA_INTERINDUSTRY:
            table = self.interindustry_handlers
            if cmd.ins not in table:
                raise CardError(SW.CLA_NOT_SUPPORTED, "the card takes CLA 80 except for MSE/PSO")
        else:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        handler = table.get(cmd.ins)
        if handler is None:
            raise CardError(SW.INS_NOT_SUPPORTED)
        return handler(cmd, channel)

    # -- files -------------------------------------------------------------------------------

    def select_response(self, cmd: CommandAPDU, target: File) -> bytes:
        """SELECT answers a plain 9000 without FCI, whatever P2 asks (reference: clients
        treat 61xx after SELECT as failure)."""
        return b""

    def read_public_key_record(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``80 B2 <rec> 00 81``: the record number then the record's 128 bytes (reference,
        "Public keys"). P2 ``00`` (or ISO ``04``) reads record P1 of the current EF."""
        if cmd.p2 not in (0x00, 0x04):
            raise CardError(SW.INCORRECT_P1_P2, "P2 00: record number in P1, current EF")
        if cmd.ne is None or cmd.data:
            raise CardError(SW.WRONG_LENGTH, "READ RECORD needs Le and no data")
        if cmd.p1 == 0:
            raise CardError(SW.INCORRECT_P1_P2, "record numbers start at 1")
        ef = self._current_ef(channel)
        if not isinstance(ef, RecordEF):
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE_STRUCTURE)
        self.check_access(ef, READ, channel)
        response = bytes((cmd.p1,)) + ef.record(cmd.p1)
        if cmd.ne < len(response):
            raise CardError(0x6C00 | len(response), "Le does not match the record length")
        return response

    # -- PIN commands ---------------------------------------------------------------------

    def _split_protected(self, cmd: CommandAPDU, plain_length: int) -> bytes:
        """IV || cryptogram → the protected plain bytes (see :class:`TransportCipher`)."""
        expected = 8 + padded_length(plain_length + 8)
        if len(cmd.data) != expected:
            raise CardError(SW.WRONG_LENGTH, f"protected data is IV + cryptogram, {expected} bytes")
        return self.transport.unprotect(cmd.data[:8], cmd.data[8:], plain_length)

    def _user_pin(self, p2: int) -> Pin:
        if p2 != self.pin_ref:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no PIN with reference {p2:02X}")
        return self.pin(p2)

    def _verify_preamble(self, cmd: CommandAPDU, channel: Channel) -> tuple[Pin, bytes | None]:
        """Shared by both VERIFY forms: P1, the PIN reference, the status query without
        data (ISO/IEC 7816-4:2020 §11.5), and a blocked PIN (6983) before anything is counted."""
        if cmd.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1_P2)
        pin = self._user_pin(cmd.p2)
        if not cmd.data:
            return pin, self.verify_pin(pin, b"", channel)
        if pin.blocked:
            raise CardError(SW.AUTHENTICATION_METHOD_BLOCKED, "PIN blocked")
        return pin, None

    def protected_verify(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``8C 20 00 01 20 <IV> <24 bytes>``: VERIFY with the transport-protected PIN block.

        No data: the PIN status (9000 when verified, else 63Cx/6983), as ISO/IEC 7816-4:2020
        §11.5. A cryptogram that does not verify answers 6988 and costs no try (it says
        nothing about the PIN); a wrong PIN costs one: 63C2, 63C1, then 6983.
        """
        pin, status = self._verify_preamble(cmd, channel)
        if status is not None:
            return status
        block = self._split_protected(cmd, pin.pad_to or 10)
        return self.verify_pin(pin, block, channel)

    def plain_verify(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``80 20 00 01 <PIN>``: refused. The card only takes protected PIN blocks.

        Choice where the reference says "rejected and may consume a try": a plain VERIFY
        with data consumes a try and answers 63Cx (6983 once none are left), whatever the
        PIN, so a host that leaks the PIN on the wire learns it at once. Without data it
        reports the PIN status like the protected form.
        """
        pin, status = self._verify_preamble(cmd, channel)
        if status is not None:
            return status
        channel.security.verified_pins.discard(pin.ref)
        pin.remaining -= 1
        self.card.persist()
        if pin.blocked:
            raise CardError(SW.AUTHENTICATION_METHOD_BLOCKED, "plain VERIFY refused; PIN now blocked")
        raise verify_failed(pin.remaining)

    def protected_change_reference_data(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``8C 24 00 01 28 <IV> <32 bytes>``: protected ``old || new`` PIN blocks (10 + 10).

        The new PIN must be 6 to 8 characters (6A80 otherwise, checked before the old PIN
        so a malformed request costs no try). The counter is reset on success.
        """
        if cmd.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1_P2)
        pin = self._user_pin(cmd.p2)
        if pin.blocked:
            raise CardError(SW.AUTHENTICATION_METHOD_BLOCKED, "PIN blocked")
        n = pin.pad_to or 10
        plain = self._split_protected(cmd, 2 * n)
        new_value = pin.format_value(plain[n:])
        self.verify_pin(pin, plain[:n], channel)
        pin.value = new_value
        pin.remaining = pin.max_tries
        self.card.persist()
        return b""

    def reset_retry_counter(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """The unblock path: RESET RETRY COUNTER after the issuer's EXTERNAL AUTHENTICATE.

        Modelled on MOICA's remote unblock (reference, "PIN rules"): the middleware gets
        a challenge (``80 84 00 00 08``), the issuer answers it with its key
        (``80 82 00 <key ref> 08 <3DES-ECB(issuer key, challenge)>``), then

        * ``80 2C 03 01``: reset the counter, PIN unchanged;
        * ``8C 2C 02 01 20 <IV> <24 bytes>``: reset and set the transport-protected new PIN.

        The PIN's ``unblock`` access condition (``auth:<issuer key ref>``) must hold; the
        authentication is used up by the reset, so every unblock needs a fresh exchange.
        """
        pin = self._user_pin(cmd.p2)
        if not pin.unblock.satisfied_by(channel.security):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, "issuer authentication required")
        new_value = None
        if cmd.cla == CLA_PROTECTED and cmd.p1 == 0x02:
            n = pin.pad_to or 10
            new_value = pin.format_value(self._split_protected(cmd, n))
        elif cmd.cla == CLA_PROPRIETARY and cmd.p1 == 0x03:
            if cmd.data:
                raise CardError(SW.WRONG_LENGTH, "P1 03 takes no data")
        else:
            raise CardError(SW.INCORRECT_P1_P2, "80 2C 03 (reset) or 8C 2C 02 (reset with new PIN)")
        if new_value is not None:
            pin.value = new_value
        pin.remaining = pin.max_tries
        self.card.persist()
        channel.security.authenticated_keys.clear()
        return b""

    # -- private-key operations --------------------------------------------------------------

    def _key(self, ref: int) -> CardKey:
        key = self.keys.get(ref)
        if key is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no key with reference {ref:02X}")
        return key

    def _require_pin(self, channel: Channel) -> None:
        if self.pin_ref not in channel.security.verified_pins:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, "VERIFY first")

    def private_operation(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``80 EA 82 <ref> 80 <first 128>`` then ``80 EA 02 <ref> 80 <last 128>`` (reference,
        "RSA private operation"): raw RSA with key ``ref`` on the 256-byte block.

        The result waits for ``80 C1``; if the second command carries Le, its first Le
        bytes come back at once. Only after a successful VERIFY (else 6982).
        """
        state = self.channel_state(channel)
        if cmd.p1 not in (0x82, 0x02):
            raise CardError(SW.INCORRECT_P1_P2, "P1 82 (first half) or 02 (last half)")
        if len(cmd.data) != HALF:
            raise CardError(SW.WRONG_LENGTH, "each half is 128 bytes")
        self._require_pin(channel)
        key = self._key(cmd.p2)
        if cmd.p1 == 0x82:
            state.result = None
            state.pending_operation = PendingRsaOperation(key.ref, cmd.data)
            return b""
        pending, state.pending_operation = state.pending_operation, None
        if pending is None or pending.key_ref != key.ref:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "send the first half (P1 82) with this key first")
        state.result = rsa_private_operation(key.private_key, pending.first_half + cmd.data, self.card.random)
        return state.result[: cmd.ne] if cmd.ne else b""

    def fetch_result(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``80 C1 <off hi> <off lo> <len>``: bytes of the last private-operation result."""
        result = self.channel_state(channel).result
        if result is None:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "no result to fetch")
        if cmd.ne is None or cmd.data:
            raise CardError(SW.WRONG_LENGTH, "80 C1 needs Le and no data")
        offset = cmd.p1p2
        if offset >= len(result):
            raise CardError(SW.WRONG_P1_P2, "offset beyond the result")
        chunk = result[offset : offset + cmd.ne]
        if len(chunk) < cmd.ne and cmd.ne != 256:
            raise CardError(SW.END_OF_FILE_REACHED, data=chunk)
        return chunk

    # -- the ISO second path (ISO/IEC 7816-8:2019, ISO/IEC 7816-4:2020 §11.5) -----------

    def manage_security_environment(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``00 22 41 B6|B8|A4 <Lc> 84 01 <ref> [80 01 <alg>]``: choose the key for PSO.

        ``84`` names the key reference, ``80`` the algorithm (ignored: the card computes
        raw RSA or PKCS#1 v1.5 as the PSO input shows).
        """
        try:
            template = ControlReferenceTemplate(cmd.p2)
        except ValueError:
            template = None
        if cmd.p1 != 0x41 or template is None:
            raise CardError(SW.INCORRECT_P1_P2, "MSE SET 41 with template A4, B6 or B8")
        try:
            objects = {tlv.tag: tlv.value for tlv in iter_tlv(cmd.data)}
        except TLVError:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "bad control reference template") from None
        ref = objects.get(0x84)
        if ref is None or len(ref) != 1:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "key reference DO 84 missing")
        key = self._key(ref[0])
        self.channel_state(channel).security_environment = SecurityEnvironment(template, key.ref)
        return b""

    def perform_security_operation(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """PSO COMPUTE DIGITAL SIGNATURE (``2A 9E 9A``) and DECIPHER (``2A 80 86``).

        CDS takes either the full 256-byte block (raw, as the EA path) or a DigestInfo,
        which the card pads (EMSA-PKCS1-v1_5, RFC 8017 §9.2). DECIPHER takes the padding
        indicator ``00`` and the ciphertext and returns the raw 256-byte block, like the EA
        path: the host strips the type-2 padding, so the card offers no padding oracle.
        Long data arrives by command chaining or in an extended APDU.
        """
        if cmd.p1p2 not in (PSO_CDS, PSO_DECIPHER):
            raise CardError(SW.INCORRECT_P1_P2, "PSO 9E9A (sign) or 8086 (decipher)")
        self._require_pin(channel)
        environment = self.channel_state(channel).security_environment
        if environment is None:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "MANAGE SECURITY ENVIRONMENT first")
        key = self._key(environment.key_ref)
        data = cmd.data
        if cmd.p1p2 == PSO_CDS:
            if len(data) != RSA_BLOCK:
                try:
                    data = emsa_pkcs1_v15(data)
                except ValueError:
                    raise CardError(SW.WRONG_LENGTH, "DigestInfo too long") from None
        else:
            if len(data) != RSA_BLOCK + 1 or data[0] != 0x00:
                raise CardError(SW.WRONG_LENGTH, "padding indicator 00 and a 256-byte cryptogram")
            data = data[1:]
        return rsa_private_operation(key.private_key, data, self.card.random)

    # -- per-channel state -------------------------------------------------------------------

    def on_select(self, channel: Channel) -> None:
        channel.app_state = MoicaChannelState()

    @staticmethod
    def channel_state(channel: Channel) -> MoicaChannelState:
        """This application's state on ``channel`` (fresh if the channel holds none yet)."""
        return channel.state(MoicaChannelState)

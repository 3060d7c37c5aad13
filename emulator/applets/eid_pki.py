"""The citizen-certificate zone of the eID chip: an ISO/IEC 7816-8 / 7816-15 PKI application.

The published design (docs/eid.md, "Citizen-certificate zone") gives the zone its own PIN
of 6 to 8 digits and the signature and encryption key pairs of the holder's citizen
certificate. Everything else here is the emulator's choice, made with the interindustry
commands only, so that a generic PKCS#15 middleware (OpenSC) can use the zone:

* selected by the PKCS#15 AID ``A0 00 00 00 63 50 4B 43 53 2D 31 35`` (PKCS #15 v1.1 §5.4.1,
  ISO/IEC 7816-15:2004 §8.3), or by selecting its DF ``3F00/5015`` by path as EF.DIR in the
  MF gives it (what OpenSC does);
* VERIFY (``00 20 00 <ref>``, P1 ``FF`` resets the status), CHANGE REFERENCE DATA (P1 ``00``
  old || new, ``01`` new after VERIFY) and RESET RETRY COUNTER with the PUK (P1 ``00`` PUK ||
  new PIN, ``01`` PUK only), ISO/IEC 7816-4:2020 §11.5; retry counters persisted before the
  comparison (:class:`eidemu.emulator.cardos.security.Pin`);
* MANAGE SECURITY ENVIRONMENT SET (``00 22 41 B6|B8|A4``, ISO/IEC 7816-4:2020 §11.5.11) with
  DO ``84`` (or ``83``) the key reference and DO ``80`` the algorithm reference
  (:class:`Algorithm`); DO ``81`` (the key file, as OpenSC adds it) is accepted and ignored;
* PERFORM SECURITY OPERATION (ISO/IEC 7816-8:2019 §5.4, §5.9): COMPUTE DIGITAL SIGNATURE
  (``00 2A 9E 9A``) with RSA PKCS#1 v1.5 over a DigestInfo (RFC 8017 §9.2) or RSA-PSS over a
  hash (RFC 8017 §9.1), DECIPHER (``00 2A 80 86``, padding indicator ``00`` then the
  cryptogram; RSAES-PKCS1-v1_5, RFC 8017 §7.2.2, the plaintext is returned);
* INTERNAL AUTHENTICATE (``00 88 00 <ref|00>``, ISO/IEC 7816-4:2020 §11.5.6): the client
  authentication signature, PKCS#1 v1.5 type 1 padding of the data as given (a TLS client's
  DigestInfo).

Key usage is enforced: a key serves only the templates its usage allows (MSE answers
``6A80`` otherwise) and a PSO must match the template set (``6985``). Every private-key
operation needs the zone's PIN verified on the channel (``6982``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum, unique
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from ..cardos.card import ApplicationState, Card, Channel, OptionError
from ..cardos.commands import IsoApplication
from ..cardos.fs import DF
from ..cardos.security import AccessCondition, ConditionKind, Pin
from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import INS, SW, CardError
from ..iso7816.tlv import TLVError, iter_tlv
from .moica import CardKey, KeyUsage, emsa_pkcs1_v15, rsa_private_operation

PKCS15_AID = bytes.fromhex("A000000063504B43532D3135")
"""PKCS #15 v1.1 §5.4.1: the AID of a PKCS#15 application (RID A000000063, PIX "PKCS-15")."""

PSO_CDS = 0x9E9A
PSO_DECIPHER = 0x8086
_PSS_HASHES: dict[int, hashes.HashAlgorithm] = {32: hashes.SHA256(), 48: hashes.SHA384(), 64: hashes.SHA512()}


@unique
class Template(IntEnum):
    """The control reference templates of MSE SET (ISO/IEC 7816-4:2020 §11.5.11, Table 78)."""

    AUTHENTICATION = 0xA4  # AT: INTERNAL AUTHENTICATE
    CONFIDENTIALITY = 0xB8  # CT: PSO DECIPHER
    DIGITAL_SIGNATURE = 0xB6  # DST: PSO COMPUTE DIGITAL SIGNATURE


@unique
class Algorithm(IntEnum):
    """Algorithm references of DO ``80`` (the emulator's choice; docs/eid.md lists them)."""

    RSA_PKCS1 = 0x02  # PKCS#1 v1.5: signature over a DigestInfo, or type-2 decipherment
    RSA_PSS = 0x05  # RSASSA-PSS, MGF1 with the hash of the input's length, salt = hash length


class PkiKeyUsage(StrEnum):
    """What a zone key serves, by the name profiles give it."""

    SIGN = "sign"  # DST only: the non-repudiation key
    AUTHENTICATE = "authenticate"  # AT, CT and DST: client authentication and decipherment


_ALLOWED: dict[PkiKeyUsage, frozenset[Template]] = {
    PkiKeyUsage.SIGN: frozenset((Template.DIGITAL_SIGNATURE,)),
    # The authentication key also signs through PSO: generic middleware (OpenSC) computes
    # a TLS client signature with PSO COMPUTE DIGITAL SIGNATURE, not INTERNAL AUTHENTICATE.
    PkiKeyUsage.AUTHENTICATE: frozenset(
        (Template.AUTHENTICATION, Template.CONFIDENTIALITY, Template.DIGITAL_SIGNATURE)
    ),
}
_DEFAULT_ALGORITHM = Algorithm.RSA_PKCS1


def _algorithm(value: bytes | None, template: Template) -> Algorithm:
    """DO ``80`` of MSE SET: absent means PKCS#1 v1.5; PSS serves signatures only (6A80)."""
    if value is None:
        return _DEFAULT_ALGORITHM
    known = {a.value: a for a in Algorithm}
    algorithm = known.get(value[0]) if len(value) == 1 else None
    if algorithm is None or (algorithm is Algorithm.RSA_PSS and template is not Template.DIGITAL_SIGNATURE):
        raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "algorithm reference not supported")
    return algorithm


@dataclass(frozen=True)
class PkiKeyOption:
    """One key pair of the ``keys`` option."""

    ref: int
    usage: PkiKeyUsage
    private_key: Path
    """A PEM file (RSA-2048), given relative to the profile."""


@dataclass(frozen=True, repr=False)
class PkiPinOption:
    """The zone's PIN and its PUK (kept in the application's options so the zone stays one
    block of the profile; registered with the card's other PINs and persisted with them)."""

    value: str
    puk: str
    ref: int = 0x91
    puk_ref: int = 0x92
    tries: int = 3
    puk_tries: int = 10
    min_length: int = 6
    max_length: int = 8

    def __repr__(self) -> str:  # PINs never appear in logs
        return f"PkiPinOption(ref={self.ref:#04x}, puk_ref={self.puk_ref:#04x}, value=<redacted>)"


@dataclass(frozen=True)
class EidPkiOptions:
    """Options of :class:`EidPkiApplication`: the PIN/PUK and the key pairs."""

    pin: PkiPinOption | None = None
    keys: tuple[PkiKeyOption, ...] = ()


@dataclass(frozen=True)
class SecurityEnvironment:
    """What MSE SET chose: template, key reference and algorithm."""

    template: Template
    key_ref: int
    algorithm: Algorithm


@dataclass
class PkiChannelState(ApplicationState):
    """The application's volatile state on one channel."""

    environment: SecurityEnvironment | None = None


@dataclass(repr=False)
class ZoneKey:
    """A key pair of the zone and what it may be used for."""

    key: CardKey
    usage: PkiKeyUsage = field(default=PkiKeyUsage.SIGN)

    def __repr__(self) -> str:
        return f"ZoneKey(ref={self.key.ref:#04x}, usage={self.usage.value!r}, private_key=<redacted>)"


class EidPkiApplication(IsoApplication):
    """The citizen-certificate zone (see the module docstring); options :class:`EidPkiOptions`."""

    type_name = "eid-pki"
    enters_by_path = True  # OpenSC selects 3F00/5015 by path (EF.DIR), never by the AID
    options_type = EidPkiOptions
    options: EidPkiOptions

    def __init__(self, card: Card, df: DF, aid: bytes = b"", options: EidPkiOptions | None = None) -> None:
        super().__init__(card, df, aid, options)
        opts = self.options
        if opts.pin is None:
            raise OptionError("pin", "the zone needs its PIN and PUK")
        self.pin_ref, self.puk_ref = opts.pin.ref, opts.pin.puk_ref
        self._register_pins(opts.pin)
        self.keys: dict[int, ZoneKey] = {}
        for i, spec in enumerate(opts.keys):
            if spec.ref in self.keys:
                raise OptionError(f"keys[{i}].ref", f"duplicate key reference {spec.ref:02X}")
            usage = KeyUsage.SIGN if spec.usage is PkiKeyUsage.SIGN else KeyUsage.DECRYPT
            try:
                key = CardKey.from_pem(spec.ref, f"{spec.ref:02X}", usage, spec.private_key)
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise OptionError(f"keys[{i}].private_key", f"cannot load {spec.private_key.name}: {reason}") from None
            self.keys[spec.ref] = ZoneKey(key, spec.usage)
        self.handlers.update(
            {
                INS.MANAGE_SECURITY_ENVIRONMENT: self.manage_security_environment,
                INS.PERFORM_SECURITY_OPERATION: self.perform_security_operation,
                INS.INTERNAL_AUTHENTICATE: self.internal_authenticate,
            }
        )
        for ins in (INS.UPDATE_BINARY, INS.UPDATE_RECORD, INS.APPEND_RECORD, INS.EXTERNAL_AUTHENTICATE):
            self.handlers.pop(ins, None)

    def _register_pins(self, spec: PkiPinOption) -> None:
        if spec.ref == spec.puk_ref:
            raise OptionError("pin.puk_ref", "the PUK needs a reference of its own")
        for ref, name in ((spec.ref, "pin.ref"), (spec.puk_ref, "pin.puk_ref")):
            if ref in self.card.pins:
                raise OptionError(name, f"PIN reference {ref:02X} is already used on this card")
        for value, name in ((spec.value, "pin.value"), (spec.puk, "pin.puk")):
            if not value.isdigit() or not spec.min_length <= len(value) <= spec.max_length:
                raise OptionError(name, f"must be {spec.min_length} to {spec.max_length} digits")
        self.card.pins[spec.puk_ref] = Pin(
            spec.puk_ref, spec.puk.encode(), spec.puk_tries, name="citizen-certificate PUK",
            min_length=spec.min_length, max_length=spec.max_length,
        )  # fmt: skip
        self.card.pins[spec.ref] = Pin(
            spec.ref, spec.value.encode(), spec.tries, name="citizen-certificate PIN",
            min_length=spec.min_length, max_length=spec.max_length, puk_ref=spec.puk_ref,
            unblock=AccessCondition(ConditionKind.PIN, spec.puk_ref),
        )  # fmt: skip

    # -- PINs: only the zone's own ----------------------------------------------------------

    def pin(self, p2: int) -> Pin:
        """The zone answers for its PIN and PUK only (6A88 for any other reference)."""
        if p2 not in (self.pin_ref, self.puk_ref):
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no PIN with reference {p2:02X} in this application")
        return super().pin(p2)

    def _require_pin(self, channel: Channel) -> None:
        pin = self.card.pins[self.pin_ref]
        if self.pin_ref not in channel.security.verified_pins or pin.blocked:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, "VERIFY the zone PIN first")

    # -- MSE SET ------------------------------------------------------------------------------

    def manage_security_environment(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``00 22 41 B6|B8|A4 <84 01 ref> [80 01 alg]`` (P1 ``81`` is taken for B8 too, as
        OpenSC sends it). A new SET replaces the environment of this channel."""
        try:
            template = Template(cmd.p2)
        except ValueError:
            raise CardError(SW.INCORRECT_P1_P2, "MSE SET with template A4, B6 or B8") from None
        if cmd.p1 != 0x41 and not (cmd.p1 == 0x81 and template is Template.CONFIDENTIALITY):
            raise CardError(SW.INCORRECT_P1_P2, "MSE SET: P1 41")
        try:
            objects = {tlv.tag: tlv.value for tlv in iter_tlv(cmd.data)}
        except TLVError:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "bad control reference template") from None
        if set(objects) - {0x80, 0x81, 0x83, 0x84}:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "only DOs 80, 81, 83 and 84 are taken")
        ref = objects.get(0x84, objects.get(0x83))
        if ref is None or len(ref) != 1:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "key reference DO 84 missing")
        zone_key = self.keys.get(ref[0])
        if zone_key is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no key with reference {ref[0]:02X}")
        if template not in _ALLOWED[zone_key.usage]:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, f"key {ref[0]:02X} does not serve this template")
        algorithm = _algorithm(objects.get(0x80), template)
        self.channel_state(channel).environment = SecurityEnvironment(template, zone_key.key.ref, algorithm)
        return b""

    def _environment(self, channel: Channel, template: Template) -> tuple[SecurityEnvironment, ZoneKey]:
        environment = self.channel_state(channel).environment
        if environment is None or environment.template is not template:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "no security environment for this operation")
        return environment, self.keys[environment.key_ref]

    # -- PSO ----------------------------------------------------------------------------------

    def perform_security_operation(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """COMPUTE DIGITAL SIGNATURE (``9E9A``) and DECIPHER (``8086``), ISO/IEC 7816-8:2019."""
        if cmd.p1p2 not in (PSO_CDS, PSO_DECIPHER):
            raise CardError(SW.INCORRECT_P1_P2, "PSO 9E9A (sign) or 8086 (decipher)")
        self._require_pin(channel)
        if cmd.p1p2 == PSO_CDS:
            environment, zone_key = self._environment(channel, Template.DIGITAL_SIGNATURE)
            if environment.algorithm is Algorithm.RSA_PSS:
                return self._sign_pss(zone_key.key.private_key, cmd.data)
            return self._sign_pkcs1(zone_key.key.private_key, cmd.data)
        _, zone_key = self._environment(channel, Template.CONFIDENTIALITY)
        return self._decipher(zone_key.key.private_key, cmd.data)

    def _sign_pkcs1(self, key: rsa.RSAPrivateKey, data: bytes) -> bytes:
        """EMSA-PKCS1-v1_5 (RFC 8017 §9.2) of the DigestInfo (or TLS data) as sent, then RSASP1."""
        k = (key.key_size + 7) // 8
        if not data or len(data) > k - 11:
            raise CardError(SW.WRONG_LENGTH, f"the data to sign is 1 to {k - 11} bytes")
        return rsa_private_operation(key, emsa_pkcs1_v15(data, k), self.card.random)

    @staticmethod
    def _sign_pss(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
        """RSASSA-PSS (RFC 8017 §8.1) over a hash of 32, 48 or 64 bytes (SHA-256/384/512,
        told by its length); MGF1 with the same hash and a salt as long as the hash."""
        algorithm = _PSS_HASHES.get(len(data))
        if algorithm is None:
            raise CardError(SW.WRONG_LENGTH, "RSA-PSS takes a SHA-256, SHA-384 or SHA-512 hash")
        scheme = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        return key.sign(data, scheme, utils.Prehashed(algorithm))

    @staticmethod
    def _decipher(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
        """Padding indicator ``00`` then the cryptogram (ISO/IEC 7816-8:2019 §5.9); RSAES-PKCS1-v1_5
        decryption (RFC 8017 §7.2.2). A cryptogram that does not decrypt answers 6A80."""
        k = (key.key_size + 7) // 8
        if len(data) != k + 1:
            raise CardError(SW.WRONG_LENGTH, f"padding indicator and a {k}-byte cryptogram")
        if data[0] != 0x00:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "padding indicator must be 00")
        try:
            return key.decrypt(data[1:], padding.PKCS1v15())
        except ValueError:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "cryptogram does not decipher") from None

    # -- INTERNAL AUTHENTICATE ---------------------------------------------------------

    def internal_authenticate(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """``00 88 00 <key ref|00> <data>``: the client-authentication signature (PKCS#1 v1.5
        type 1 padding of the data, RFC 8017 §9.2 step 5). P2 ``00`` uses the key of the AT
        environment; otherwise P2 names an authentication key."""
        if cmd.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1_P2, "P1 00: the algorithm of the environment")
        if cmd.p2 == 0x00:
            self._require_pin(channel)
            _, zone_key = self._environment(channel, Template.AUTHENTICATION)
        else:
            zone_key_or_none = self.keys.get(cmd.p2)
            if zone_key_or_none is None:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no key with reference {cmd.p2:02X}")
            if Template.AUTHENTICATION not in _ALLOWED[zone_key_or_none.usage]:
                raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, f"key {cmd.p2:02X} is not an authentication key")
            self._require_pin(channel)
            zone_key = zone_key_or_none
        return self._sign_pkcs1(zone_key.key.private_key, cmd.data)

    # -- per-channel state -----------------------------------------------------------------

    def on_select(self, channel: Channel) -> None:
        channel.app_state = PkiChannelState()

    @staticmethod
    def channel_state(channel: Channel) -> PkiChannelState:
        return channel.state(PkiChannelState)
